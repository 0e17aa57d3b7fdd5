"""The two versions of the app a rehearsal releases one over the other, and their files.

Each side (`--from`, `--to`) names one of:

- `WORKTREE`: the app's working tree as it is, uncommitted changes and untracked files included;
- a release variant of the app (`DIR/releases/<name>/release.toml`): the working tree plus that
  variant's overlay files (`rehearsal.releases`), as the example apps ship theirs. A variant
  wins over a git ref of the same name: in examples/bigfoot, `--to v2` is its variant even if
  the repository has a `v2` tag (name the commit another way to get the tag: `v2^0`);
- a commit-ish of the git repository that holds the app (`HEAD`, `origin/main`, a tag, a sha).

Whatever the side, a version's files are what the image's build context holds of them: what
that version's own `.dockerignore` keeps, and never `.git` nor a virtualenv (a directory
holding `pyvenv.cfg`), which belong to the machine, not to the app.

A ref's files are what `git archive` exports of its commit, which is not always what a
checkout of it would send Docker: files marked `export-ignore` in `.gitattributes` are left
out and `export-subst` placeholders are filled in; files kept in Git LFS come out as their
pointer files, not their content; and for an app in a git submodule, the ref names a commit
of the submodule's own repository, not of the repository that holds it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pulumi_django.build_context import (
    IgnorePattern,
    context_entries,
    is_ignored,
    read_dockerignore,
)
from pulumi_django.cli.git_plan import (
    Repository,
    extract_tree,
    head_state,
    repository_of,
    resolve_commit,
)
from pulumi_django.cli.rehearsal.releases import (
    RELEASES_DIR,
    current_release,
    overlay_chain,
    overlay_files,
    read_releases,
    release_names,
)
from pulumi_django.errors import UsageError
from pulumi_django.static_publish import key_safe

WORKTREE = "WORKTREE"
DEFAULT_FROM = "HEAD"
# The static files' release id and the versions' directory names: short and printable.
MAX_RELEASE_NAME = 40
SHORT_COMMIT = 8
# Added to the --to side's release name when both sides would have the same one.
DISTINCT_SUFFIX = "-new"
DOCKERIGNORE = ".dockerignore"
GIT_DIR = ".git"
VENV_MARKER = "pyvenv.cfg"

SourceKind = Literal["worktree", "ref", "variant"]


@dataclass(frozen=True)
class VersionSource:
    """One side of a rehearsal: what was asked for and the version it resolved to."""

    spec: str  # as given: `HEAD`, `WORKTREE`, `v2`, ...
    kind: SourceKind
    label: str  # what the report shows: `v2`, `WORKTREE`, `HEAD@1a2b3c4d`, `1a2b3c4d`
    release_name: str  # the static files' release id and directory names: `v2`, `1a2b3c4d`
    commit: str | None = None  # a ref's commit


def resolve_sides(
    app_dir: Path, from_spec: str | None, to_spec: str | None
) -> tuple[VersionSource, VersionSource]:
    """The versions before and after the release: `--from` (default HEAD) and `--to` (default
    WORKTREE, so that a rehearsal with no flags rehearses the uncommitted changes). A release
    variant is released over the app's current variant (`v1`, else the working tree) unless
    `--from` says otherwise, as the example apps' variants always were."""
    to_spec = WORKTREE if to_spec is None else to_spec
    if from_spec is None:
        from_spec = DEFAULT_FROM
        if to_spec in release_names(app_dir):
            from_spec = current_release(app_dir) or WORKTREE
    previous = resolve_source(app_dir, from_spec, "--from")
    release = resolve_source(app_dir, to_spec, "--to")
    if release.release_name == previous.release_name:
        # The static files of both are published side by side, by release name.
        kept = previous.release_name[: MAX_RELEASE_NAME - len(DISTINCT_SUFFIX)]
        release = replace(release, release_name=kept + DISTINCT_SUFFIX)
    return previous, release


def same_code(app_dir: Path, previous: VersionSource, release: VersionSource) -> bool:
    """Whether both sides hold the same app: two commits whose app directory is one tree
    (`--from origin/main --to HEAD` on a branch that changed something else), or a commit and a
    working tree with nothing changed in the app since it (the default `HEAD` -> `WORKTREE`
    in a clean checkout). Files git ignores are not compared."""
    kinds = {previous.kind, release.kind}
    if kinds == {"worktree"}:
        return True
    if not kinds <= {"ref", "worktree"}:
        return False  # release variants differ by definition
    repository = repository_of(app_dir)
    if repository is None:
        return False
    commits = [side.commit for side in (previous, release) if side.commit is not None]
    if kinds == {"ref", "worktree"}:
        head, changed = head_state(repository)
        if changed or head is None:
            return False
        commits.append(head)
    trees = {_app_tree(repository, commit) for commit in commits}
    return len(trees) == 1 and None not in trees


def _app_tree(repository: Repository, commit: str) -> str | None:
    """The id of the app directory's tree in `commit` (None when git cannot say)."""
    found = repository.git(
        "rev-parse", "--verify", "--quiet", f"{commit}:{_archive_subdirectory(repository)}"
    )
    return found.stdout.strip() or None


def resolve_source(app_dir: Path, spec: str, option: str) -> VersionSource:
    """What `spec` names for the app at `app_dir` (see the module's docstring); a one-line
    UsageError that starts with `option` when it names nothing usable."""
    if spec == WORKTREE:
        return VersionSource(spec, "worktree", WORKTREE, "worktree")
    if spec in release_names(app_dir):
        overlay_chain(read_releases(app_dir), spec)  # a broken base chain fails now
        return VersionSource(spec, "variant", spec, key_safe(spec)[:MAX_RELEASE_NAME])
    return _resolve_ref(app_dir, spec, option)


def _resolve_ref(app_dir: Path, spec: str, option: str) -> VersionSource:
    instead = f"or pass {option} {WORKTREE}"
    if shutil.which("git") is None:
        raise UsageError(f"{option} {spec}: git is not installed; install it, {instead}")
    repository = repository_of(app_dir)
    if repository is None:
        raise UsageError(
            f"{option} {spec}: {app_dir} is not in a git repository; commit the app "
            f"(git init, git add, git commit) {instead}"
        )
    try:
        commit = resolve_commit(repository, spec, option)
    except UsageError as unknown:
        if repository.git("rev-parse", "--verify", "--quiet", "HEAD").returncode != 0:
            raise UsageError(
                f"{option} {spec}: the repository {repository.top} has no commit yet; commit "
                f"the app (git add, git commit) {instead}"
            ) from None
        variants = release_names(app_dir)
        if not variants:
            raise
        raise UsageError(
            f"{unknown}; nor a release variant in {app_dir / RELEASES_DIR} ({', '.join(variants)})"
        ) from None
    short = commit[:SHORT_COMMIT]
    manage = (repository.directory / "manage.py").as_posix()
    if repository.git("cat-file", "-e", f"{commit}:{manage}").returncode != 0:
        raise UsageError(
            f"{option} {spec}: commit {short} has no {manage}, so the app is not in it"
        )
    label = short if commit.startswith(spec) else f"{spec}@{short}"
    return VersionSource(spec, "ref", label, short, commit)


def export_source(app_dir: Path, source: VersionSource, destination: Path) -> Path:
    """Writes the version's files into `destination` (which must not exist) as the image's
    build context would hold them, and returns it."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    try:
        if source.kind == "ref":
            _export_commit(app_dir, source, destination)
        elif source.kind == "variant":
            build_variant(app_dir, source.spec, destination)
        else:
            _copy_context(app_dir, destination, ContextRules.read(app_dir))
    except OSError as error:
        raise UsageError(f"could not export {source.label} of {app_dir}: {error}") from None
    return destination


def _export_commit(app_dir: Path, source: VersionSource, destination: Path) -> None:
    repository = repository_of(app_dir)
    if repository is None or source.commit is None:
        raise UsageError(f"{source.label}: {app_dir} is no longer in a git repository")
    # `git archive` writes every file of the commit: the build context is copied out of them.
    with tempfile.TemporaryDirectory(prefix=".archive-", dir=destination.parent) as scratch:
        files = Path(scratch)
        extract_tree(
            repository,
            source.commit,
            files,
            directory=_archive_subdirectory(repository),
            failure=f"could not export {source.label} of {app_dir}",
        )
        _copy_context(files, destination, ContextRules.read(files))


def _archive_subdirectory(repository: Repository) -> str:
    """The app's directory as `git archive` names a tree in a commit ("" at the top)."""
    return "" if repository.directory == Path() else repository.directory.as_posix()


def build_variant(app_dir: Path, name: str, destination: Path) -> Path:
    """Release variant `name` of the app in `app_dir`, built into `destination` (which must
    not exist) as the rehearsal builds it: the app's build context, then the variant's
    overlays from the deepest base up. An unknown name, a base cycle or a variant without a
    description is a UsageError."""
    overlays = overlay_files(app_dir, name)
    # The variant's files decide what is ignored: its own .dockerignore when it has one.
    dockerignore = overlays.get(Path(DOCKERIGNORE))
    rules = ContextRules.read(
        dockerignore.parent if dockerignore else app_dir, top_level=(RELEASES_DIR,)
    )
    _copy_context(app_dir, destination, rules)
    for relative, file in overlays.items():
        if not rules.leaves_out(file, relative.as_posix()):
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(file, target)
    return destination


@dataclass(frozen=True)
class ContextRules:
    """What a version's build context leaves out: what its `.dockerignore` ignores, and always
    `.git` (the repository, not the app), a virtualenv (a directory holding `pyvenv.cfg`) and
    the `top_level` names; with no `.dockerignore`, Python's bytecode too (built for another
    interpreter, and rebuilt anyway)."""

    patterns: list[IgnorePattern]
    has_dockerignore: bool
    top_level: tuple[str, ...] = ()

    @classmethod
    def read(cls, directory: Path, top_level: tuple[str, ...] = ()) -> ContextRules:
        """The rules of the `.dockerignore` in `directory`, if any."""
        has_dockerignore = (directory / DOCKERIGNORE).is_file()
        return cls(read_dockerignore(directory), has_dockerignore, top_level)

    def always_left_out(self, path: Path, relative: str) -> bool:
        """`path`, at `relative` (posix) in the app, stays out whatever the `.dockerignore`
        says; a directory with everything below it."""
        name = path.name
        if name == GIT_DIR or ("/" not in relative and name in self.top_level):
            return True
        if (path / VENV_MARKER).is_file():
            return True
        return not self.has_dockerignore and (name == "__pycache__" or name.endswith(".pyc"))

    def leaves_out(self, path: Path, relative: str) -> bool:
        """`path`, at `relative` (posix) in the app, is not in the build context."""
        return self.always_left_out(path, relative) or is_ignored(relative, self.patterns)


def _copy_context(source: Path, destination: Path, rules: ContextRules) -> None:
    """Copies what the build context holds of `source` into `destination`: regular files and
    links (as links), and the directories kept; a socket or a pipe has nothing to copy. The
    walk is the image digest's (build_context.context_entries), with the rules' own
    patterns and what they always leave out."""
    destination.mkdir()
    for entry in context_entries(source, rules.patterns, rules.always_left_out):
        target = destination / entry.relative_to(source)
        if entry.is_symlink() or entry.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(entry, target, follow_symlinks=False)
        elif entry.is_dir():
            target.mkdir(parents=True, exist_ok=True)
