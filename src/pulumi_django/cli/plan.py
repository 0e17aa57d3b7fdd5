"""The offline plan: a stack's program run under the mock runtime, shown as a tree and as JSON.

The JSON is a contract other tools consume (extend it, never rename fields):
{"stack", "project", "target", "resources": [{"urn", "type", "name", "custom", "parent",
"dependencies", "propertyDependencies", "provider", "inputs"}], "outputs", "releaseOrder",
"migrationCheck", "appReadiness"}

A ready-made stack names its `target` (`django:target`: `aws`, `local`) and its app in
`django:app`. A program of one's own (no `django:target`) has the target `program`, and the
checks run on the app its recording shows it builds (`program_app`); when it builds none,
`migrationCheck.skipped` says why and `appReadiness` is null.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import runpy
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pulumi

from pulumi_django.app_discovery import AppDiscoveryError
from pulumi_django.app_resolution import resolve_app_config
from pulumi_django.cli.app_readiness import (
    AppKey,
    AppReadiness,
    assess_app,
    readiness_lines,
    stack_key,
)
from pulumi_django.cli.program_app import NO_CHECK, NoAppDeployed, program_app_config, program_key
from pulumi_django.cli.stackfile import StackFile, interpreter_label, load_stack_file
from pulumi_django.config import NAMESPACE, StackConfig, parse_stack_config
from pulumi_django.errors import UsageError
from pulumi_django.migration_check import (
    OFFLINE_APP_ENVIRONMENT,
    CheckResult,
    MigrationCheckError,
    format_report,
    run_check,
)
from pulumi_django.recorder import RecordedResource, Recording, record
from pulumi_django.release import StepInPlan, release_order

TARGET_KEY = "django:target"
# The target of a program of one's own: its stack file has no `django:target`.
PROGRAM_TARGET = "program"
CHECK_OFF = "migrations.check is off"
APP_CHECKS_SKIPPED = "not asked for (the app's checks were skipped)"
# `plan` printed the plan, but the app's readiness check found errors: it would not deploy.
APP_NOT_READY_EXIT_CODE = 1
Result = TypeVar("Result")


@dataclass
class MigrationReport:
    """The migration safety check of the stack's app, offline. With no deployed version to
    compare with, it is a first deploy: every migration counted, none judged (`--diff-against`
    judges the ones added since a ref)."""

    app_dir: Path | None  # None: a program of one's own that builds no app
    result: CheckResult | None
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        body = (
            self.result.to_json()
            if self.result
            else {"checked": [], "findings": [], "firstDeploy": False}
        )
        app_dir = str(self.app_dir) if self.app_dir else None
        return {**body, "appDir": app_dir, "skipped": self.skipped}


@dataclass
class Plan:
    stack_file: StackFile
    recording: Recording
    migrations: MigrationReport
    # None, as `config`: a program of one's own that builds no app (`migrations.skipped` says).
    readiness: AppReadiness | None
    # The app's config the checks ran with: the stack's, or the one the program's recording shows.
    config: StackConfig | None

    @property
    def target(self) -> str:
        return self.stack_file.config.get(TARGET_KEY, PROGRAM_TARGET)

    @property
    def ready(self) -> bool:
        """Nothing in the app stops a release (no app: nothing to stop)."""
        return self.readiness is None or self.readiness.ready

    def release_order(self) -> list[StepInPlan]:
        return release_order(self.recording)

    @property
    def warnings(self) -> list[str]:
        """The stack's relaxations a deployment would go through with: one line each."""
        return config_warnings(self.config) if self.config is not None else []

    def as_json(self) -> dict[str, Any]:
        return {
            "stack": self.recording.stack,
            "project": self.recording.project,
            "target": self.target,
            "resources": [resource.as_json() for resource in self.recording.resources],
            "outputs": self.recording.outputs,
            "releaseOrder": [
                {
                    "step": found.step.key,
                    "title": found.step.title,
                    "resources": [resource.urn for resource in found.resources],
                    "after": found.after.key if found.after else None,
                    "ordered": found.ordered,
                }
                for found in self.release_order()
            ],
            "migrationCheck": self.migrations.as_json(),
            "appReadiness": self.readiness.as_json() if self.readiness else None,
            "warnings": self.warnings,
        }


def config_warnings(config: StackConfig) -> list[str]:
    """One line per data store whose replacement guard `allowReplacement` turns off."""
    return [
        f"{NAMESPACE}:allowReplacement: the replacement guard of the {store} is off: a change "
        f"that replaces it (and loses its data) goes through at `pulumi up`; remove {store} "
        "from the list once that deployment is done"
        for store in config.allow_replacement
    ]


def plan_stack(
    project_dir: Path, stack: str, *, python: str | None = None, app_checks: bool = True
) -> Plan:
    """Runs the project's program for `stack` under mocks, and checks the app's migrations and
    readiness in its interpreter (`python`, a `--python` flag, overrides `app.python`): the
    stack's app, or the one a program of one's own builds; not with `app_checks=False`
    (`migrationCheck.skipped` says so). Raises UsageError for a bad stack name or file, and
    the program's own ConfigError for invalid config.

    A ready-made stack's app is known from its stack file alone, so its checks (other
    processes: the app's interpreter) start first and run while this one runs the program,
    which imports the Pulumi SDK's modules for seconds: one check at a time while the program
    holds a core, both at once when it is done (`_Cores`); the plan then waits for whichever
    finishes last. Their results are cached per content of what they read (`app_runs`)."""
    stack_file = load_stack_file(project_dir.resolve(), stack)
    ready_made = TARGET_KEY in stack_file.config
    if python and ready_made:
        stack_file = with_app_python(stack_file, python)
    if not app_checks:
        skipped = MigrationReport(None, None, APP_CHECKS_SKIPPED)
        return Plan(stack_file, _record_program(stack_file), skipped, None, None)
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="plan-app-checks") as pool:
        cores = _Cores()
        checks = (
            pool.submit(_stack_app_checks, stack_file, python, pool, cores) if ready_made else None
        )
        try:
            recording = _record_program(stack_file)
        finally:
            cores.program_done()
        if checks is None:
            return _plan_program(stack_file, recording, python, pool)
        config, readiness, migrations = checks.result()
    return Plan(stack_file, recording, migrations, readiness, config)


class _Cores:
    """The cores the app's checks may take: one while the program runs (it takes another), and
    one more once it is done, so that the second check need not wait for the first. A local
    stack's program is done in a fraction of a second; an AWS stack's imports take seconds,
    during which the checks run one after the other."""

    def __init__(self) -> None:
        self._free = threading.Semaphore(1)

    def program_done(self) -> None:
        self._free.release()

    def run(self, function: Callable[..., Result], *args: Any, **kwargs: Any) -> Result:
        with self._free:
            return function(*args, **kwargs)


def _record_program(stack_file: StackFile) -> Recording:
    def program() -> None:
        with _program_context(stack_file):
            runpy.run_path(str(stack_file.program), run_name="__main__")

    recording = record(
        program,
        project=stack_file.project,
        stack=stack_file.stack,
        config=stack_file.config,
        secret_keys=stack_file.secret_keys,
    )
    recording.resources = _tree_order(recording.resources)
    return recording


def _stack_app_checks(
    stack_file: StackFile, python: str | None, pool: Executor, cores: _Cores
) -> tuple[StackConfig, AppReadiness, MigrationReport]:
    """A ready-made stack's app config, resolved as its program resolves it, and the app's
    readiness and migration check under it, each on a core the program leaves (`cores`)."""
    config = stack_config(stack_file)
    source = interpreter_label(stack_file, python)
    migrations = pool.submit(
        cores.run, check_app_migrations, stack_file, config, python_source=source
    )
    readiness = cores.run(assess_app, config, stack_file.project_dir, python_source=source)
    return config, readiness, migrations.result()


def _plan_program(
    stack_file: StackFile, recording: Recording, python: str | None, pool: Executor
) -> Plan:
    """A program of one's own: its app's checks, as the recording shows the app, named by the
    `AppConfig` fields the program sets; none when it builds no app. The two checks run at
    once (`pool`): nothing else is left to do."""
    try:
        found = program_app_config(recording, stack_file.project_dir)
    except NoAppDeployed as nothing:
        return Plan(stack_file, recording, MigrationReport(None, None, str(nothing)), None, None)
    config = _resolved(stack_file, found, python)
    source = "--python" if python else "the interpreter running pulumi-django (pass --python)"
    readiness = pool.submit(
        assess_app, config, stack_file.project_dir, python_source=source, key=program_key
    )
    migrations = check_app_migrations(
        stack_file, config, key=program_key, check_off=NO_CHECK, python_source=source
    )
    return Plan(stack_file, recording, migrations, readiness.result(), config)


def plan_stack_or_explain(
    project_dir: Path, stack: str, *, python: str | None = None, app_checks: bool = True
) -> Plan:
    """plan_stack for the CLI: whatever the program refuses with (invalid config, a missing
    build context) becomes a UsageError naming the stack, as `pulumi up` shows it: no traceback."""
    try:
        return plan_stack(project_dir, stack, python=python, app_checks=app_checks)
    except pulumi.RunError as error:
        raise UsageError(f"stack {stack}: {error}") from None


def stack_config(stack_file: StackFile) -> StackConfig:
    """The stack's config resolved against its app, as its program resolves it."""
    return _resolved(stack_file, parse_stack_config(*stack_file.namespace(NAMESPACE)))


def _resolved(stack_file: StackFile, config: StackConfig, python: str | None = None) -> StackConfig:
    """`config` resolved against its app; UsageError naming the stack when it cannot be."""
    try:
        return resolve_app_config(config, stack_file.project_dir, python=python)
    except AppDiscoveryError as error:
        raise UsageError(f"stack {stack_file.stack}: {error}") from None


def with_app_python(stack_file: StackFile, python: str) -> StackFile:
    """`stack_file` with `django:app.python` set to `python` (absolute), as `--python` asks:
    the stack's program, the migration check and the readiness check all use it."""
    key = f"{NAMESPACE}:app"
    try:
        app = json.loads(stack_file.config.get(key) or "{}")
    except ValueError:
        return stack_file  # the program reports the malformed section
    if not isinstance(app, dict):
        return stack_file
    app["python"] = str(Path(python).absolute())
    return dataclasses.replace(stack_file, config={**stack_file.config, key: json.dumps(app)})


def check_app_migrations(
    stack_file: StackFile,
    config: StackConfig | None = None,
    *,
    key: AppKey = stack_key,
    check_off: str = CHECK_OFF,
    python_source: str = "django:app.python",
) -> MigrationReport:
    """The safety check of the stack's app as a first deploy, offline: the project loads, its
    migrations are counted and the acknowledgements name real ones; nothing is judged, since a
    plan has no running version to break. `key` names the settings in the messages, and
    `python_source` the interpreter (as the readiness check names it); `check_off` says why
    there is no check when `migrations.check` is off."""
    config = config or stack_config(stack_file)
    app_dir = (stack_file.project_dir / config.app.context).resolve()
    if not config.migrations.check:
        return MigrationReport(app_dir, None, check_off)
    if not (app_dir / "manage.py").is_file():
        return MigrationReport(app_dir, None, f"no manage.py in {app_dir}")
    module = app_dir.joinpath(*config.app.settings_module.split("."))
    if not (module.with_suffix(".py").is_file() or (module / "__init__.py").is_file()):
        return MigrationReport(
            app_dir,
            None,
            f"{key('settings_module')}: no module {config.app.settings_module!r} in {app_dir}",
        )
    try:
        result = check_offline(config, app_dir, python_source=python_source)
    except MigrationCheckError as error:
        return MigrationReport(app_dir, None, str(error))
    return MigrationReport(app_dir, result)


def check_offline(
    config: StackConfig,
    app_dir: Path,
    labels: Sequence[str] = (),
    *,
    python_source: str = "django:app.python",
) -> CheckResult:
    """The stack's app checked without a database: `labels`, judged as one release (the
    migrations a change adds ship together), or, without labels, every migration as a first
    deploy. Raises MigrationCheckError when the check cannot run (`python_source` names what
    chose the interpreter)."""
    return run_check(
        config.app.settings_module,
        pythonpath=str(app_dir),
        labels=labels,
        offline=True,
        one_release=bool(labels),
        first_deploy=not labels,
        acknowledged=config.migrations.acknowledged,
        python=config.app.python,
        python_source=python_source,
        environment={**OFFLINE_APP_ENVIRONMENT, **config.app.environment},
        cwd=app_dir,  # as the release's check runs in the image: in the app's directory
    )


@contextlib.contextmanager
def _program_context(stack_file: StackFile) -> Iterator[None]:
    """What the Pulumi language host gives a program: its directory as cwd and on sys.path."""
    previous_cwd = Path.cwd()
    program_dir = str(stack_file.program.parent)
    os.chdir(stack_file.project_dir)
    sys.path.insert(0, program_dir)
    try:
        yield
    finally:
        os.chdir(previous_cwd)
        with contextlib.suppress(ValueError):
            sys.path.remove(program_dir)


def _tree_order(resources: list[RecordedResource]) -> list[RecordedResource]:
    """Parents before children, siblings by URN: the same plan always reads the same."""
    by_parent: dict[str | None, list[RecordedResource]] = {}
    for resource in resources:
        by_parent.setdefault(resource.parent, []).append(resource)
    ordered: list[RecordedResource] = []

    def visit(parent: str | None) -> None:
        for child in sorted(by_parent.get(parent, []), key=lambda r: r.urn):
            ordered.append(child)
            visit(child.urn)

    visit(None)
    known = {resource.urn for resource in ordered}
    # A resource whose parent was never registered still belongs in the plan.
    ordered.extend(sorted((r for r in resources if r.urn not in known), key=lambda r: r.urn))
    return ordered


def render_text(plan: Plan) -> str:
    """The resource tree grouped by component, then the release order, then the outputs."""
    recording = plan.recording
    custom = sum(1 for resource in recording.resources if resource.custom)
    lines = [
        f"Stack {recording.stack} (project {recording.project}, target {plan.target}): "
        f"{len(recording.resources)} resources, {custom} of them cloud or Docker resources",
        *(f"warning: {line}" for line in plan.warnings),
        "",
    ]
    children: dict[str | None, list[RecordedResource]] = {}
    for resource in recording.resources:
        children.setdefault(resource.parent, []).append(resource)

    def walk(parent: str | None, prefix: str) -> None:
        kids = children.get(parent, [])
        for index, child in enumerate(kids):
            last = index == len(kids) - 1
            branch = "" if parent is None else ("└─ " if last else "├─ ")
            lines.append(f"{prefix}{branch}{child.type}  {child.name}")
            deeper = "" if parent is None else ("   " if last else "│  ")
            walk(child.urn, prefix + deeper)

    walk(None, "")
    lines += ["", "Release order:"]
    steps = plan.release_order()
    if not steps:
        lines.append("  (no release steps in this stack)")
    numbers = {found.step.key: number for number, found in enumerate(steps, 1)}
    for number, found in enumerate(steps, 1):
        names = ", ".join(resource.name for resource in found.resources)
        if found.after is None:
            gate = ""
        elif found.ordered:
            gate = f"  (waits for step {numbers[found.after.key]})"
        else:
            gate = f"  (NOT ORDERED after step {numbers[found.after.key]}: it can run before it)"
        lines.append(f"  {number}. {found.step.title:<26} {names}{gate}")
    if plan.readiness is None:
        skipped = plan.migrations.skipped
        lines += ["", f"App readiness and migration safety check: skipped: {skipped}"]
    else:
        lines += ["", *readiness_lines(plan.readiness)]
        lines += ["", *_migration_lines(plan.migrations)]
    if recording.outputs:
        lines += ["", "Outputs:"]
        width = max(len(name) for name in recording.outputs)
        for name, value in sorted(recording.outputs.items()):
            shown = "(known after pulumi up)" if value is None else value
            lines.append(f"  {name:<{width}}  {shown}")
    return "\n".join(lines) + "\n"


def _migration_lines(report: MigrationReport) -> list[str]:
    app = f"{report.app_dir.name}, " if report.app_dir else ""
    title = f"Migration safety check ({app}offline):"
    if report.result is None:
        return [title, f"  skipped: {report.skipped}"]
    report_lines = format_report(report.result).splitlines()
    lines = [title, *(f"  {line}" if line else "" for line in report_lines)]
    if report.result.first_deploy:
        lines.append(
            "  Against a deployed version: `plan --diff-against GITREF` judges the migrations "
            "added since then."
        )
    return lines
