"""The offline plan of a stack as it was at a git ref, run with that ref's own code, and the
review of the working tree against it (`pulumi-django plan --diff-against REF`).

The ref's tree is extracted with `git archive` into a temporary directory (the repository and
its worktrees are left alone) and planned in a subprocess, so that its program and modules
never mix with the working tree's:

- a pulumi-django checkout (it has `src/pulumi_django/`, `components/` and `config/`) is run
  with its own package: a link tree maps `pulumi_django`, `pulumi_django.components` and
  `pulumi_django.config` to the checkout's directories, as pyproject.toml's package-dir does,
  and goes first on PYTHONPATH;
- any other Pulumi project (one that pip-installed pulumi-django) is run with the installed
  package, which is the code it would deploy with.

The app (`django:app.context`) may sit outside the project's directory. In the project's own
repository, the ref's tree holds it. In another repository (a sibling checkout, a submodule),
that repository's tree is extracted beside the project's, placed as the two work trees sit
relative to each other, so that the plan at the ref sees the same relative context path
(`build.context`) with the app's files of its side: `--app-ref`, else the commit a submodule
is pinned to at the ref, else the app repository's HEAD.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_django.build_context import is_ignored, read_dockerignore
from pulumi_django.cli.plan_diff import (
    HEAD_REF,
    AppSides,
    MigrationReview,
    PlanDiff,
    Side,
    diff_plans,
)
from pulumi_django.cli.rehearsal.releases import RELEASE_FILE, RELEASES_DIR
from pulumi_django.config import StackConfig
from pulumi_django.errors import PulumiDjangoError, UsageError

PLAN_TIMEOUT_SECONDS = 600.0
MIGRATIONS = ":(glob)**/migrations/0*.py"
FETCH_HINT = "in CI, fetch the history: actions/checkout with fetch-depth: 0"
SUBMODULE_MODE = "160000"


@dataclass(frozen=True)
class Repository:
    """A git work tree, and the directory a review is about in it (the Pulumi project, or the
    app)."""

    top: Path
    directory: Path  # relative to `top`

    def git(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return _git(cwd or self.top, *args)


@dataclass(frozen=True)
class Version:
    """A repository at the commit a review compares with: the ref as given, the commit."""

    repository: Repository
    ref: str
    commit: str


def review_against(project_dir: Path, stack: str, ref: str, app_ref: str | None = None) -> PlanDiff:
    """The working tree's plan of `stack` compared with the plan at `ref`, and the migration
    check of the migrations added since then in the app the plan checks (the stack's, or the
    one a program of one's own builds). `app_ref` is the commit of the app's side when the app
    is in another repository than the project. UsageError for a bad ref, an app outside git or
    a failing plan.

    The plan at the ref (another process) starts first and runs while this one plans the
    working tree, beside the app its stack file names; in the rare case that the working
    tree's plan shows the app elsewhere (a program of one's own whose app is in another
    repository), it is planned again beside that one."""
    from pulumi_django.cli.plan import plan_stack_or_explain

    project_dir = project_dir.resolve()
    repository = find_repository(project_dir)
    project = Version(repository, ref, resolve_commit(repository, ref, "--diff-against"))
    guessed = _guessed_app_side(project, project_dir, stack, app_ref)
    with contextlib.ExitStack() as running:
        early = None
        if guessed is not _UNKNOWN:
            # What fails here fails again, in its turn, after the working tree's plan.
            with contextlib.suppress(PulumiDjangoError):
                early = running.enter_context(
                    planning_at_commit(project, guessed, project_dir, stack)
                )
        head = plan_stack_or_explain(project_dir, stack)
        app_dir = head.migrations.app_dir
        app = app_version(project, app_dir, app_ref) if app_dir and app_dir.is_dir() else project
        elsewhere = app.repository.top != repository.top
        # In one repository, the app's uncommitted changes are the working tree's too.
        head_commit, dirty = head_state(
            repository, *([] if elsewhere else [app.repository.directory])
        )
        beside = app if elsewhere else None
        if early is not None and _placement(guessed) == _placement(beside):
            base = early()
        else:
            running.close()  # a plan at the ref beside another app, if started, stops
            base = plan_at_commit(project, beside, project_dir, stack)
    diff = diff_plans(
        base or {},
        head.as_json(),
        stack=stack,
        base_side=Side(ref, project.commit, found=base is not None),
        head_side=Side(HEAD_REF, head_commit, dirty=dirty),
    )
    if elsewhere:
        app_head, app_dirty = head_state(app.repository)
        diff.app = AppSides(
            repository=os.path.relpath(app.repository.top, project_dir),
            base=Side(app.ref, app.commit),
            head=Side(HEAD_REF, app_head, dirty=app_dirty),
        )
    # A program of one's own that builds no app has no migrations to review.
    if head.config is not None:
        diff.migrations = review_migrations(
            app.repository, app.commit, project_dir, stack, checked=head.config
        )
    return diff


# `_guessed_app_side` could not tell where the app is before the working tree's plan.
_UNKNOWN = Version(Repository(Path(), Path()), "", "")


def _guessed_app_side(
    project: Version, project_dir: Path, stack: str, app_ref: str | None
) -> Version | None:
    """The app's side to plan the ref beside, as the stack file's `django:app.context` names it
    (the same repository as the project: None), before the working tree's plan says; _UNKNOWN
    when that cannot be told without it (the errors are the plan's to report, in order)."""
    try:
        app_dir = (project_dir / configured_context(project_dir, stack)).resolve()
        app = app_version(project, app_dir, app_ref) if app_dir.is_dir() else project
    except (PulumiDjangoError, OSError):
        return _UNKNOWN
    return app if app.repository.top != project.repository.top else None


def _placement(app: Version | None) -> tuple[Path, str] | None:
    """What the plan at the ref takes of the app's side: its repository and commit."""
    return None if app is None else (app.repository.top, app.commit)


def find_repository(directory: Path, what: str = "") -> Repository:
    """The work tree holding `directory`. `what` names the directory in the error (the
    project's by default)."""
    repository = repository_of(directory)
    if repository is None:
        if what:
            raise UsageError(
                f"--diff-against: {what} {directory} is not in a git repository; commit it to "
                "one (git init, git add, git commit) so that its version at the ref can be planned"
            )
        raise UsageError(f"--diff-against needs a git repository: {directory} is not in one")
    return repository


def repository_of(directory: Path) -> Repository | None:
    """The work tree holding `directory`, or None when it is in none (each command says what
    that means for it)."""
    found = _git(directory, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        return None
    top = Path(found.stdout.strip()).resolve()
    return Repository(top, directory.resolve().relative_to(top))


def app_version(project: Version, app_dir: Path, app_ref: str | None) -> Version:
    """The app's repository at the commit its side of the review is planned with: the
    project's ref when it is the project's repository, else `--app-ref`, else the commit a
    submodule is pinned to at the ref, else the app repository's HEAD."""
    repository = find_repository(app_dir, "the app directory (django:app.context)")
    if repository.top == project.repository.top:
        if app_ref is not None:
            raise UsageError(
                f"--app-ref {app_ref}: the app ({app_dir}) is in the project's repository, "
                f"where --diff-against {project.ref} already applies to it; leave out --app-ref"
            )
        return Version(repository, project.ref, project.commit)
    if app_ref is not None:
        return Version(repository, app_ref, resolve_commit(repository, app_ref, "--app-ref"))
    pinned = submodule_commit(project, repository.top)
    if pinned is not None:
        return Version(repository, project.ref, pinned)
    head = repository.git("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    if head.returncode != 0:
        raise UsageError(
            f"--diff-against: the app's repository {repository.top} has no commit yet; "
            "commit the app, or name its side with --app-ref"
        )
    return Version(repository, "HEAD", head.stdout.strip())


def submodule_commit(project: Version, top: Path) -> str | None:
    """The commit the project's ref pins the submodule at `top` to (None if it is not one of
    its submodules there), checked to be in the submodule's repository."""
    if not top.is_relative_to(project.repository.top):
        return None
    path = top.relative_to(project.repository.top).as_posix()
    entry = project.repository.git("ls-tree", project.commit, "--", path).stdout.split()
    if len(entry) < 3 or entry[0] != SUBMODULE_MODE:
        return None
    commit = entry[2]
    found = _git(top, "cat-file", "-e", f"{commit}^{{commit}}")
    if found.returncode != 0:
        raise UsageError(
            f"--diff-against {project.ref} pins the submodule {path} to {commit[:12]}, which "
            f"its repository does not have: fetch it (git -C {top} fetch origin {commit})"
        )
    return commit


def resolve_commit(repository: Repository, ref: str, option: str) -> str:
    found = repository.git(
        "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise UsageError(
            f"{option} {ref}: no such commit, branch or tag in {repository.top} ({FETCH_HINT})"
        )
    return found.stdout.strip()


def head_state(repository: Repository, *directories: Path) -> tuple[str | None, bool]:
    """The commit checked out (None in a repository without one) and whether the review's
    directories (the repository's own one and `directories`, relative to its top) have changes
    not committed, untracked files included."""
    head = repository.git("rev-parse", "--verify", "--quiet", "HEAD")
    paths = sorted({str(path) for path in (repository.directory, *directories)})
    status = repository.git("status", "--porcelain", "--", *paths)
    return (head.stdout.strip() or None), bool(status.stdout.strip())


def plan_at_commit(
    project: Version, app: Version | None, project_dir: Path, stack: str
) -> dict[str, Any] | None:
    """The plan JSON of `stack` at the project's commit, with the app of `app` (another
    repository) beside it, or None when the stack has no file there."""
    with planning_at_commit(project, app, project_dir, stack) as planned:
        return planned()


@contextlib.contextmanager
def planning_at_commit(
    project: Version, app: Version | None, project_dir: Path, stack: str
) -> Iterator[Callable[[], dict[str, Any] | None]]:
    """`plan_at_commit`, started: the plan runs in its own process while the block runs, and
    the function yielded waits for its JSON. Stopped, and its tree removed, on leaving."""
    from pulumi_django.cli import APP_CHECKS_VARIABLE

    with tempfile.TemporaryDirectory(prefix="pulumi-django-plan-") as scratch:
        versions = [project] if app is None else [project, app]
        placed = extract_side_by_side(versions, Path(scratch) / "tree")
        checkout = placed(project.repository.top)
        copy = placed(project_dir)
        if not (copy / "Pulumi.yaml").is_file() or not (copy / f"Pulumi.{stack}.yaml").is_file():
            yield lambda: None
            return
        keep_absolute_context_beside(copy, stack, project_dir, versions)
        # Its app checks are not part of the review (`review_migrations` is): skipped.
        environment = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", APP_CHECKS_VARIABLE: "skip"}
        if is_pulumi_django_checkout(checkout):
            links = link_tree(checkout, Path(scratch) / "links")
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(links), os.environ.get("PYTHONPATH")])
            )
        command = [sys.executable, "-P", "-m", "pulumi_django.cli", "plan", "--stack", stack]
        # Into files, not pipes: nobody reads its output until it is done.
        output, errors = Path(scratch) / "plan.json", Path(scratch) / "plan.err"
        with output.open("w") as stdout, errors.open("w") as stderr:
            process = subprocess.Popen(
                [*command, "--cwd", str(copy), "--json", "-"],
                cwd=scratch,
                env=environment,
                stdout=stdout,
                stderr=stderr,
            )
        started = time.monotonic()

        def planned() -> dict[str, Any] | None:
            try:
                process.wait(timeout=max(0.0, started + PLAN_TIMEOUT_SECONDS - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise UsageError(
                    f"the plan of stack {stack} at {project.ref} did not finish in "
                    f"{PLAN_TIMEOUT_SECONDS:.0f} s"
                ) from None
            return _plan_document(
                project, stack, process.returncode, output.read_text(), errors.read_text()
            )

        try:
            yield planned
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def _plan_document(
    project: Version, stack: str, returncode: int, stdout: str, stderr: str
) -> dict[str, Any]:
    """The plan JSON the plan at the ref printed; UsageError, with its last words, when it
    failed."""
    from pulumi_django.cli.plan import APP_NOT_READY_EXIT_CODE

    # A plan whose app readiness found errors still printed the whole plan.
    if returncode not in (0, APP_NOT_READY_EXIT_CODE):
        said = "\n".join(stderr.strip().splitlines()[-12:]) or "it said nothing"
        raise UsageError(
            f"the plan of stack {stack} at {project.ref} ({project.commit[:12]}) failed:\n{said}"
        )
    try:
        document: dict[str, Any] = json.loads(stdout)
    except ValueError:
        raise UsageError(
            f"the plan of stack {stack} at {project.ref} printed no plan JSON"
        ) from None
    return document


def extract_side_by_side(versions: Sequence[Version], root: Path) -> Callable[[Path], Path]:
    """Each version's tree under `root`, placed as the work trees sit relative to each other
    (from their common parent directory down), so that a relative path from one into the
    other (`../app`) leads to the same files. Returns where a work-tree path is in the copy."""
    tops = [version.repository.top for version in versions]
    common = Path(os.path.commonpath(tops))

    def placed(path: Path) -> Path:
        return root / path.relative_to(common)

    # The outer one first when one work tree holds the other (a submodule).
    for version in sorted(versions, key=lambda version: len(version.repository.top.parts)):
        extract_tree(version.repository, version.commit, placed(version.repository.top))
    return placed


def keep_absolute_context_beside(
    copy: Path, stack: str, project_dir: Path, versions: Sequence[Version]
) -> None:
    """An absolute `django:app.context` at the ref names the working tree's app: when it is
    in one of the extracted repositories, the copy's stack file gets the same path relative to
    the project instead, which leads to the app's copy at its commit; the plan reads it as
    `project_relative` would write the absolute one (`build.context` does not change)."""
    from pulumi_django.cli.stackfile import set_config_field
    from pulumi_django.config import NAMESPACE

    context = Path(configured_context(copy, stack))
    if not context.is_absolute():
        return
    target = context.resolve()
    if any(target.is_relative_to(version.repository.top) for version in versions):
        relative = os.path.relpath(target, project_dir)
        set_config_field(copy, stack, f"{NAMESPACE}:app", "context", relative)


def configured_context(project_dir: Path, stack: str) -> str:
    """`django:app.context` as the stack file (or the project's default) sets it, read
    without validating the config or inspecting the app: the ref's config may be older than
    this code, and only the plan has the last word on it."""
    from pulumi_django.cli.stackfile import load_stack_file
    from pulumi_django.config import NAMESPACE
    from pulumi_django.config.app import AppConfig

    values, _ = load_stack_file(project_dir, stack).namespace(NAMESPACE)
    try:
        app = json.loads(values.get("app") or "{}")
    except ValueError:  # not an object: the plan says what is wrong with it
        app = {}
    context = app.get("context") if isinstance(app, dict) else None
    return context if isinstance(context, str) else str(AppConfig.model_fields["context"].default)


def extract_tree(
    repository: Repository,
    commit: str,
    destination: Path,
    *,
    directory: str = "",
    failure: str = "",
) -> None:
    """The commit's files (as `git archive` exports them), or only those of its `directory`
    (relative to the top, at the top of `destination`), under `destination`. `failure` begins
    the error when they cannot be written (by default, the plan's)."""
    tree = f"{commit}:{directory}" if directory else commit
    archive = subprocess.run(
        ["git", "-C", str(repository.top), "archive", "--format=tar", tree],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise UsageError(f"git archive {commit[:12]} failed: {archive.stderr.decode().strip()}")
    try:
        # A submodule's directory already exists (empty) in its superproject's tree.
        destination.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            # The data filter (S202), but for links out of the tree.
            tar.extractall(destination, filter=without_outward_links)  # noqa: S202
    except (tarfile.TarError, OSError) as error:
        failure = failure or (
            f"--diff-against: could not extract {commit[:12]} of {repository.top} to plan it"
        )
        raise UsageError(f"{failure}: " + " ".join(str(error).split())) from None


def without_outward_links(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo | None:
    """tarfile's `data` filter, except that a link to an absolute path or out of the tree (a
    committed virtualenv's `bin/python3 -> /usr/bin/python3`) is left out instead of stopping
    the extraction: what it points to is not in the commit, so the plan cannot need it."""
    try:
        return tarfile.data_filter(member, destination)
    except (tarfile.AbsoluteLinkError, tarfile.LinkOutsideDestinationError):
        return None


def is_pulumi_django_checkout(tree: Path) -> bool:
    return (
        (tree / "src" / "pulumi_django" / "__init__.py").is_file()
        and (tree / "components").is_dir()
        and (tree / "config").is_dir()
    )


def link_tree(checkout: Path, destination: Path) -> Path:
    """A directory to put first on PYTHONPATH so that `pulumi_django` is the checkout's:
    `src/pulumi_django/*`, with `components/` and `config/` mapped in as sub-packages."""
    package = destination / "pulumi_django"
    package.mkdir(parents=True)
    mapped = {"components": checkout / "components", "config": checkout / "config"}
    for entry in (checkout / "src" / "pulumi_django").iterdir():
        if entry.name not in mapped:
            (package / entry.name).symlink_to(entry)
    for name, target in mapped.items():
        (package / name).symlink_to(target, target_is_directory=True)
    return destination


def review_migrations(
    repository: Repository,
    commit: str,
    project_dir: Path,
    stack: str,
    *,
    checked: StackConfig | None = None,
) -> MigrationReview | None:
    """The migration check of the migrations added since `commit` (committed or not) in the
    app of the stack (`app.context`, `app.settingsModule`), where `repository` is the one
    holding the app and `commit` the app's side; `checked` is the app's config the working
    tree's plan checked (a program of one's own has no stack config to read it from). Offline:
    no database. They ship together, so they are judged as one release; when they are all of
    the app's migrations, it is a first deploy and none is judged. None when the app's
    directory is not in the repository. A check that cannot run is reported in the review, not
    raised: the rest of the review still stands."""
    from pulumi_django.cli.plan import check_offline
    from pulumi_django.cli.stackfile import read_stack_config
    from pulumi_django.migration_check import MigrationCheckError

    configured = checked.app.context if checked else configured_context(project_dir, stack)
    context = (project_dir / configured).resolve()
    if not context.is_dir() or not context.is_relative_to(repository.top):
        return None
    config = checked or read_stack_config(project_dir.resolve(), stack)
    added = added_migrations(repository, commit, context)
    if not added:
        return MigrationReview(added=[])
    if set(added) >= migration_files(repository, context):
        return MigrationReview(added=added, first_deploy=True)
    # A migration's label: the directory holding `migrations/` is the app (its default label).
    labels = [f"{Path(path).parent.parent.name}.{Path(path).stem}" for path in added]
    try:
        result = check_offline(config, context, labels)
    except MigrationCheckError as error:
        return MigrationReview(added=added, error=str(error))
    return MigrationReview(
        added=added,
        checked=list(result.checked),
        findings=[finding.to_json() for finding in result.findings],
    )


def added_migrations(repository: Repository, commit: str, context: Path) -> list[str]:
    """The app's migration files (`shipped_migrations`) under `context` that `commit` does not
    have, relative to `context`."""
    committed = repository.git(
        "diff",
        "--name-only",
        "--relative",
        "--diff-filter=A",
        commit,
        "--",
        MIGRATIONS,
        cwd=context,
    )
    untracked = repository.git(
        "ls-files", "--others", "--exclude-standard", "--", MIGRATIONS, cwd=context
    )
    for completed in (committed, untracked):
        if completed.returncode != 0:
            raise UsageError(f"git could not list the migrations: {completed.stderr.strip()}")
    paths = {*committed.stdout.split("\n"), *untracked.stdout.split("\n")} - {""}
    return sorted(
        shipped_migrations(paths, context),
        key=lambda path: (str(Path(path).parent), Path(path).name),
    )


def migration_files(repository: Repository, context: Path) -> set[str]:
    """Every migration file of the app (`shipped_migrations`) under `context` in the working
    tree, relative to `context`."""
    listed = repository.git(
        "ls-files", "--cached", "--others", "--exclude-standard", "--", MIGRATIONS, cwd=context
    )
    if listed.returncode != 0:
        raise UsageError(f"git could not list the migrations: {listed.stderr.strip()}")
    return shipped_migrations(set(listed.stdout.split("\n")) - {""}, context)


def shipped_migrations(paths: Iterable[str], context: Path) -> set[str]:
    """The migration files among `paths` (relative to the app's directory `context`) that the
    app's image has: not the files of the rehearsal's release overlays
    (`releases/<name>/`, beside a `release.toml`), which are copies of the app's files for a
    variant, nor what the app's `.dockerignore` keeps out of the build context."""
    ignored = read_dockerignore(context)

    def is_overlay(path: str) -> bool:
        parts = Path(path).parts
        return (
            len(parts) > 2
            and parts[0] == RELEASES_DIR
            and (context / RELEASES_DIR / parts[1] / RELEASE_FILE).is_file()
        )

    return {path for path in paths if not is_overlay(path) and not is_ignored(path, ignored)}


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("--diff-against needs git, which is not installed") from None
