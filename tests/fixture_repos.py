"""Throwaway git repositories holding an example app and its release variants as commits, so
that the suite rehearses between git refs as a user's project does.

`app_history("bigfoot", tmp_path, ["v2"])` commits examples/bigfoot as it is (without its
`releases/` folder) on `main`, then each variant's overlay files as one commit on a branch of
the variant's name made from that first commit, and leaves `main` checked out.
`apply_variant` writes a variant's files into a working tree without committing them.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pulumi_django.cli.rehearsal.releases import RELEASES_DIR, overlay_files

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
FIRST_BRANCH = "main"
# No global config is read or changed: the identity is given on each commit. Files are copied
# with a new modification time: with the source's, a changed file of the same size can look
# unchanged to git's stat cache and be left out of a commit.
IDENTITY = ("-c", "user.name=pulumi-django tests", "-c", "user.email=tests@example.invalid")


def git(repository: Path, *args: str) -> str:
    """`git -C repository ARGS`: its output; a failure fails the test with git's words."""
    done = subprocess.run(
        ["git", "-C", str(repository), *IDENTITY, *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def app_history(
    example: str, destination: Path, variants: Sequence[str] = (), *, subdirectory: str = ""
) -> dict[str, str]:
    """A new repository at `destination` with the example app at `subdirectory` (its top by
    default): `main` and each of `variants` as branches, mapped to their commits."""
    app_dir = destination / subdirectory
    git(destination.parent, "init", "--quiet", f"--initial-branch={FIRST_BRANCH}", destination.name)
    copy_example(example, app_dir)
    commits = {FIRST_BRANCH: commit_all(destination, f"{example} as it is")}
    for variant in variants:
        git(destination, "checkout", "--quiet", "-b", variant, commits[FIRST_BRANCH])
        apply_variant(example, app_dir, variant)
        commits[variant] = commit_all(destination, f"{example} {variant}")
    git(destination, "checkout", "--quiet", FIRST_BRANCH)
    return commits


def copy_example(example: str, app_dir: Path) -> None:
    """The example's files that git sees (tracked or not, but not ignored: no bytecode, no
    local leftovers), as they are in this checkout, without its release variants."""
    source = EXAMPLES / example
    listed = git(source, "ls-files", "--cached", "--others", "--exclude-standard", "-z", ".")
    for relative in sorted(filter(None, listed.split("\0"))):
        path = source / relative
        if Path(relative).parts[0] == RELEASES_DIR or not path.is_file():
            continue  # a variant, or a file deleted and not yet committed
        target = app_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)


def apply_variant(example: str, app_dir: Path, variant: str) -> list[Path]:
    """Writes the example's variant (its overlay files, base variants first) over the app at
    `app_dir`, uncommitted; returns the paths written, relative to `app_dir`."""
    files = overlay_files(EXAMPLES / example, variant)
    for relative, file in files.items():
        target = app_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target)
    return sorted(files)


def commit_all(repository: Path, message: str) -> str:
    """Commits every change (untracked files too); the new commit's sha."""
    git(repository, "add", "--all")
    git(repository, "commit", "--quiet", "--allow-empty", "--message", message)
    return git(repository, "rev-parse", "HEAD").strip()
