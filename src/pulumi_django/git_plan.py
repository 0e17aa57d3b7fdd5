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
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .plan_diff import HEAD_REF, MigrationReview, PlanDiff, Side, diff_plans

PLAN_TIMEOUT_SECONDS = 600.0
MIGRATIONS = ":(glob)**/migrations/0*.py"


@dataclass(frozen=True)
class Repository:
    """The git work tree holding a Pulumi project, and where the project sits in it."""

    top: Path
    project: Path  # relative to `top`

    def git(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return _git(cwd or self.top, *args)


def review_against(project_dir: Path, stack: str, ref: str) -> PlanDiff:
    """The working tree's plan of `stack` compared with the plan at `ref`, and the migration
    check of the migrations added since `ref`. UsageError for a bad ref or a failing plan."""
    from .plan import plan_stack_or_explain

    repository = find_repository(project_dir)
    commit = resolve_commit(repository, ref)
    head_commit, dirty = head_state(repository)
    head = plan_stack_or_explain(project_dir, stack)
    base = plan_at_commit(repository, commit, stack, ref)
    diff = diff_plans(
        base or {},
        head.as_json(),
        stack=stack,
        base_side=Side(ref, commit, found=base is not None),
        head_side=Side(HEAD_REF, head_commit, dirty=dirty),
    )
    diff.migrations = review_migrations(repository, commit, project_dir, stack)
    return diff


def find_repository(project_dir: Path) -> Repository:
    found = _git(project_dir, "rev-parse", "--show-toplevel")
    if found.returncode != 0:
        raise UsageError(f"--diff-against needs a git repository: {project_dir} is not in one")
    top = Path(found.stdout.strip()).resolve()
    return Repository(top, project_dir.resolve().relative_to(top))


def resolve_commit(repository: Repository, ref: str) -> str:
    found = repository.git(
        "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise UsageError(
            f"--diff-against {ref}: no such commit, branch or tag in {repository.top} "
            "(in CI, fetch the base branch: actions/checkout with fetch-depth: 0)"
        )
    return found.stdout.strip()


def head_state(repository: Repository) -> tuple[str | None, bool]:
    """The commit checked out (None in a repository without one) and whether the tree has
    changes not committed, untracked files included."""
    head = repository.git("rev-parse", "--verify", "--quiet", "HEAD")
    status = repository.git("status", "--porcelain", "--", str(repository.project))
    return (head.stdout.strip() or None), bool(status.stdout.strip())


def plan_at_commit(
    repository: Repository, commit: str, stack: str, ref: str
) -> dict[str, Any] | None:
    """The plan JSON of `stack` at `commit`, or None when the stack has no file there."""
    with tempfile.TemporaryDirectory(prefix="pulumi-django-plan-") as scratch:
        checkout = Path(scratch) / "tree"
        extract_tree(repository, commit, checkout)
        project = checkout / repository.project
        if (
            not (project / "Pulumi.yaml").is_file()
            or not (project / f"Pulumi.{stack}.yaml").is_file()
        ):
            return None
        environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        if is_pulumi_django_checkout(checkout):
            links = link_tree(checkout, Path(scratch) / "links")
            environment["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(links), os.environ.get("PYTHONPATH")])
            )
        command = [sys.executable, "-P", "-m", "pulumi_django.cli", "plan", "--stack", stack]
        try:
            completed = subprocess.run(
                [*command, "--cwd", str(project), "--json", "-"],
                cwd=scratch,
                env=environment,
                capture_output=True,
                text=True,
                timeout=PLAN_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise UsageError(
                f"the plan of stack {stack} at {ref} did not finish in {PLAN_TIMEOUT_SECONDS:.0f} s"
            ) from None
    if completed.returncode != 0:
        said = "\n".join(completed.stderr.strip().splitlines()[-12:]) or "it said nothing"
        raise UsageError(f"the plan of stack {stack} at {ref} ({commit[:12]}) failed:\n{said}")
    try:
        document: dict[str, Any] = json.loads(completed.stdout)
    except ValueError:
        raise UsageError(f"the plan of stack {stack} at {ref} printed no plan JSON") from None
    return document


def extract_tree(repository: Repository, commit: str, destination: Path) -> None:
    """The commit's files (as `git archive` exports them) under `destination`."""
    archive = subprocess.run(
        ["git", "-C", str(repository.top), "archive", "--format=tar", commit],
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        raise UsageError(f"git archive {commit[:12]} failed: {archive.stderr.decode().strip()}")
    destination.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")


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
    repository: Repository, commit: str, project_dir: Path, stack: str
) -> MigrationReview | None:
    """The migration check of the migrations added since `commit` (committed or not) in the
    app of the stack (`app.context`, `app.settingsModule`). Offline: no database. None when
    the app's directory is not in the repository. A check that cannot run is reported in the
    review, not raised: the rest of the review still stands."""
    from .migration_check import MigrationCheckError
    from .plan import check_offline
    from .stackfile import read_stack_config

    config = read_stack_config(project_dir.resolve(), stack)
    context = (project_dir / config.app.context).resolve()
    if not context.is_dir() or not context.is_relative_to(repository.top):
        return None
    added = added_migrations(repository, commit, context)
    if not added:
        return MigrationReview(added=[])
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
    """Migration files under `context` that `commit` does not have, relative to `context`."""
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
    return sorted(paths, key=lambda path: (str(Path(path).parent), Path(path).name))


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise UsageError("--diff-against needs git, which is not installed") from None
