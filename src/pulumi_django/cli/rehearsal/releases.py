"""Release variants of an example app: the app's working tree plus an overlay.

`<app>/releases/<name>/` holds `release.toml` (`description`, optional `base`: another release
applied first) and files whose paths, relative to that directory, are paths in the app: each
one adds or replaces the app's file. The app as it is, with no overlay files, is release `v1`.
The variants themselves (`releases/`) are never part of a version of the app
(`rehearsal.sources` exports the versions).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from pulumi_django.errors import UsageError

RELEASES_DIR = "releases"
RELEASE_FILE = "release.toml"


@dataclass(frozen=True)
class Release:
    name: str
    description: str
    base: str | None
    directory: Path

    def files(self) -> list[Path]:
        """Overlay files, relative to the app directory."""
        return sorted(
            path.relative_to(self.directory)
            for path in self.directory.rglob("*")
            if path.is_file()
            and path.name != RELEASE_FILE
            and "__pycache__" not in path.parts
            and path.suffix != ".pyc"
        )


def release_names(app_dir: Path) -> list[str]:
    """The names of the releases under `app_dir/releases/` (none when it has no such folder),
    without reading their manifests."""
    return sorted(manifest.parent.name for manifest in _manifests(app_dir))


def _manifests(app_dir: Path) -> list[Path]:
    return sorted((app_dir / RELEASES_DIR).glob(f"*/{RELEASE_FILE}"))


def read_releases(app_dir: Path) -> dict[str, Release]:
    """Every release under `app_dir/releases/`, by name."""
    releases = {}
    root = app_dir / RELEASES_DIR
    for manifest in _manifests(app_dir):
        try:
            data = tomllib.loads(manifest.read_text())
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"{manifest}: not valid TOML: {error}") from None
        description, base = data.get("description"), data.get("base")
        if not isinstance(description, str) or not description.strip():
            raise UsageError(f'{manifest}: set description = "..." (what this release changes)')
        if base is not None and not isinstance(base, str):
            raise UsageError(f"{manifest}: base must be the name of another release")
        name = manifest.parent.name
        releases[name] = Release(name, description.strip(), base, manifest.parent)
    if not releases:
        raise UsageError(f"no releases in {root}: expected {root}/<name>/{RELEASE_FILE}")
    return releases


def overlay_chain(releases: dict[str, Release], name: str) -> list[Release]:
    """`name` and its bases, the deepest base first (the order the overlays are applied in)."""
    chain: list[Release] = []
    current: str | None = name
    while current is not None:
        if current not in releases:
            known = ", ".join(sorted(releases))
            wanted_by = f" (base of {chain[-1].name})" if chain else ""
            raise UsageError(f"unknown release {current!r}{wanted_by}; known releases: {known}")
        if any(release.name == current for release in chain):
            raise UsageError(f"release {name!r}: base releases form a cycle through {current!r}")
        chain.append(releases[current])
        current = releases[current].base
    return chain[::-1]


def current_release(app_dir: Path) -> str | None:
    """The release that is the app as it is (no base, no overlay files), e.g. `v1`, or None
    when the app has no such release."""
    for release in read_releases(app_dir).values():
        if release.base is None and not release.files():
            return release.name
    return None


def overlay_files(app_dir: Path, name: str) -> dict[Path, Path]:
    """The files release `name` adds to or replaces in the app: each path relative to the app
    directory, with the file that has its content (a later overlay of the chain wins)."""
    return {
        relative: release.directory / relative
        for release in overlay_chain(read_releases(app_dir), name)
        for relative in release.files()
    }
