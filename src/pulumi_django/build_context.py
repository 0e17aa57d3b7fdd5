"""The app image's build context: a content digest that names each distinct image, and the
Dockerfile contract the task depends on.

The digest becomes the image tag, so the ECR repository can keep tags immutable: the same
context always gets the same tag, and any change to what Docker would send gets a new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pulumi

from pulumi_django.config.app import AppConfig
from pulumi_django.errors import PulumiDjangoError

PLATFORMS = {"X86_64": "linux/amd64", "ARM64": "linux/arm64"}
TAG_LENGTH = 24


def docker_platform(architecture: str) -> str:
    """The Docker platform of an ECS CPU architecture."""
    return PLATFORMS[architecture]


@dataclass(frozen=True)
class IgnorePattern:
    """One line of .dockerignore, as Docker's pattern matcher reads it."""

    exclusion: bool
    regex: re.Pattern[str]

    def matches(self, path: str) -> bool:
        """The path, or one of its parent directories, matches."""
        if self.regex.fullmatch(path):
            return True
        parts = path.split("/")[:-1]
        return any(self.regex.fullmatch("/".join(parts[: i + 1])) for i in range(len(parts)))


def read_dockerignore(context: Path) -> list[IgnorePattern]:
    ignore_file = context / ".dockerignore"
    if not ignore_file.is_file():
        return []
    patterns = []
    for raw in ignore_file.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        if exclusion:
            line = line[1:].strip()
        cleaned = os.path.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        patterns.append(IgnorePattern(exclusion, re.compile(_pattern_regex(cleaned))))
    return patterns


def _pattern_regex(pattern: str) -> str:
    """Translation of Go's filepath.Match syntax plus `**`, as moby/patternmatcher does."""
    regex = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern.startswith("**", index):
                index += 2
                if pattern.startswith("/", index):
                    index += 1
                regex += ".*" if index >= len(pattern) else "(.*/)?"
                continue
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        elif char == "[":
            end = pattern.find("]", index + 1)
            if end == -1:
                regex += re.escape(char)
            else:
                body = pattern[index + 1 : end]
                regex += "[" + ("^" + body[1:] if body.startswith("^") else body) + "]"
                index = end
        else:
            regex += re.escape(char)
        index += 1
    return regex


def is_ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """Docker's rule: patterns apply in order, the last one that matches decides."""
    ignored = False
    for pattern in patterns:
        if pattern.exclusion != ignored:
            continue
        if pattern.matches(path):
            ignored = not pattern.exclusion
    return ignored


def context_entries(
    context: Path,
    patterns: list[IgnorePattern] | None = None,
    leave_out: Callable[[Path, str], bool] | None = None,
) -> Iterator[Path]:
    """Every file, link and directory Docker would send, in a stable order: what `patterns`
    (by default the context's own `.dockerignore`) do not ignore. A link to a directory is an
    entry, never followed.

    `leave_out(entry, relative posix path)` names what to leave out whatever the patterns say,
    for a copy of the context that is not Docker's (the rehearsal's, cli/rehearsal/sources.py);
    a directory it names is never walked into. An ignored directory is not walked into either,
    unless a `!` exception may bring back something below it."""
    if patterns is None:
        patterns = read_dockerignore(context)
    # With a `!` exception anywhere, something under an ignored directory may come back.
    can_prune = not any(pattern.exclusion for pattern in patterns)

    def relative(entry: Path) -> str:
        return entry.relative_to(context).as_posix()

    def left_out(entry: Path) -> bool:
        return leave_out is not None and leave_out(entry, relative(entry))

    for directory, subdirectories, files in os.walk(context):
        base = Path(directory)
        links = [name for name in subdirectories if (base / name).is_symlink()]
        walked = [
            name
            for name in sorted(set(subdirectories) - set(links))
            if not left_out(base / name)
            and not (can_prune and is_ignored(relative(base / name), patterns))
        ]
        subdirectories[:] = walked
        others = [name for name in [*links, *files] if not left_out(base / name)]
        for name in sorted([*walked, *others]):
            entry = base / name
            if not is_ignored(relative(entry), patterns):
                yield entry


def context_digest(context: Path, dockerfile: Path, platform: str) -> str:
    """sha256 over the platform, the Dockerfile and every entry of the context."""
    digest = hashlib.sha256()
    digest.update(json.dumps({"platform": platform}).encode())
    digest.update(_file_digest(dockerfile).encode())
    for entry in sorted(context_entries(context), key=lambda p: p.relative_to(context).as_posix()):
        info = entry.lstat()
        if stat.S_ISLNK(info.st_mode):
            kind, content = "link", str(entry.readlink())
        elif stat.S_ISDIR(info.st_mode):
            kind, content = "dir", ""
        else:
            kind, content = "file", _file_digest(entry)
        record = [entry.relative_to(context).as_posix(), kind, info.st_mode & 0o7777, content]
        digest.update(json.dumps(record).encode() + b"\n")
    return digest.hexdigest()


class BuildContextError(PulumiDjangoError, pulumi.RunError):
    """The app's build context or Dockerfile cannot make the image; Pulumi prints it as one line."""


def build_paths(app: AppConfig, project_dir: Path) -> tuple[Path, Path]:
    """The context and Dockerfile, checked before anything is registered."""
    context = (project_dir / app.context).resolve()
    dockerfile = context / app.dockerfile
    if not context.is_dir():
        raise BuildContextError(f"django:app.context: {context} is not a directory")
    if not dockerfile.is_file():
        raise BuildContextError(f"django:app.dockerfile: {dockerfile} does not exist")
    return context, dockerfile


def project_relative(path: Path) -> str:
    """Relative to the working directory (Pulumi's project directory), so that state does not
    change with where the project is checked out."""
    return os.path.relpath(path, Path.cwd())


def image_tag(context: Path, dockerfile: Path, platform: str) -> str:
    return context_digest(context, dockerfile, platform)[:TAG_LENGTH]


def _file_digest(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def final_stage_volumes(dockerfile_text: str) -> set[str]:
    """Paths the image's last stage declares with VOLUME."""
    volumes: set[str] = set()
    for instruction, arguments in dockerfile_instructions(dockerfile_text):
        if instruction == "FROM":
            volumes.clear()
        elif instruction == "VOLUME":
            text = arguments.strip()
            paths = _json_list(text) if text.startswith("[") else shlex.split(text)
            volumes.update(os.path.normpath(path) for path in paths)
    return volumes


def _json_list(text: str) -> list[str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return shlex.split(text)
    return [str(item) for item in value] if isinstance(value, list) else []


def dockerfile_instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments out."""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not logical and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        if logical.strip():
            instruction, _, arguments = logical.strip().partition(" ")
            yield instruction.upper(), arguments
        logical = ""
