"""`pulumi-django init`: make an existing Django project deployable.

Inspects the app in its own interpreter (settings module, WSGI/ASGI entry points, STATIC_ROOT,
database engine), then writes what the stack needs and the app lacks: the stack file, a
Dockerfile and .dockerignore, the runtime kit in requirements.txt, and, where no Pulumi project
exists yet, Pulumi.yaml, a __main__.py that builds the ready-made stack from the installed
pulumi_django and a .gitignore. Never replaces a file without --force (a kept file is reported
with what it lacks); prints the lines the settings still need.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, get_args

from pulumi_django.cli.commands import interpreter_path
from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.app_discovery import AppDeclarations
    from pulumi_django.cli.scaffold import AppSettings, ImageRecipe

DEFAULT_STACK = "dev"
SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"
MEDIA_DIR = "media"
# The advice for an app inspected in the wrong interpreter (pulumi-django's own, say).
PYTHON_ADVICE = "pass --python PATH, the interpreter of the app's environment"
# A Dockerfile's RUN commands that install Python requirements, and system packages.
PIP_INSTALL = re.compile(r"\bpip3?\s+install\b")
SYSTEM_INSTALL = re.compile(r"\b(apt-get|apt|apk)\b")
DependencyFile = Literal["requirements.txt", "pyproject.toml"]
# Asking the app's interpreter whether it has pip (a start of Python and one lookup).
PIP_CHECK_TIMEOUT_SECONDS = 30
PIP_FOUND = "import importlib.util, sys; sys.exit(not importlib.util.find_spec('pip'))"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--app",
        default=".",
        metavar="DIR",
        help="the Django project's directory, the one with manage.py (default: the current one)",
    )
    parser.add_argument(
        "--cwd",
        default=".",
        metavar="DIR",
        help="the Pulumi project directory: where the stack file goes (default: the current one)",
    )
    parser.add_argument(
        "--stack", default=DEFAULT_STACK, help=f"stack name (default: {DEFAULT_STACK})"
    )
    parser.add_argument(
        "--target", default="aws", metavar="aws|local", help="where to deploy (default: aws)"
    )
    parser.add_argument(
        "--python",
        type=interpreter_path,
        metavar="PATH",
        help="the app's interpreter, recorded as django:app.python (default: the one a stack "
        "of the project records for the app, else this one)",
    )
    parser.add_argument("--force", action="store_true", help="replace files that exist")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"written": [...], "settingsLines": [...], ...} instead of text',
    )


@dataclass(frozen=True)
class Inspection:
    """What init learnt about the app."""

    app_dir: Path
    python: str
    python_origin: str | None  # "--python", or the stack file recording it; None: this one
    settings_module: str
    settings_origin: str  # where the module's name came from, for the report
    settings_file: Path | None
    declared: AppDeclarations
    python_version: str  # "3.12"
    django_version: str


@dataclass(frozen=True)
class FileChange:
    """A file init writes: created (replaced only with --force) or, for the user's own
    requirements.txt, appended to."""

    path: Path
    text: str
    append: bool = False
    note: str = ""
    # What the file already there lacks that the stack relies on, said when it is kept.
    lacks: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """What init would write, the lines the settings still need, and what to warn about."""

    changes: list[FileChange]
    settings_lines: list[str]
    warnings: list[str]


@dataclass(frozen=True)
class DependencyPlan:
    """How the image gets its dependencies."""

    file: DependencyFile  # the file the image installs
    changes: list[FileChange]  # to requirements.txt
    extra: list[str]  # installed beside that file, on pip's command line
    added: list[str]  # the requirement lines init adds (to the file or the command line)
    installed: list[str]  # every requirement line the image installs


@dataclass
class Outcome:
    written: list[FileChange] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)


def run(args: argparse.Namespace) -> int:
    from pulumi_django.cli.stackfile import STACK_NAME
    from pulumi_django.config import StackConfig

    targets = get_args(StackConfig.model_fields["target"].annotation)
    if args.target not in targets:
        raise UsageError(f"--target {args.target}: unknown target; choose {' or '.join(targets)}")
    if not STACK_NAME.match(args.stack):
        raise UsageError(f"--stack {args.stack!r}: not a stack name (letters, digits, _ . -)")
    project_dir = Path(args.cwd).absolute()
    if not project_dir.is_dir():
        raise UsageError(f"--cwd {args.cwd}: no such directory")
    app_dir = Path(args.app).absolute()
    if not (app_dir / "manage.py").is_file():
        raise UsageError(
            f"--app {args.app}: no manage.py in {app_dir}; "
            "point --app at the Django project's directory"
        )
    unread: list[str] = []
    chosen = (args.python, "--python") if args.python else None
    chosen = chosen or recorded_python(project_dir, app_dir, args.stack, unread)
    python, origin = chosen or (None, None)
    inspection = inspect_app(app_dir, python, origin)
    plan = plan_changes(inspection, project_dir, args)
    warnings = [*unread, *plan.warnings]
    outcome = write_changes(plan.changes, force=args.force)
    steps = next_steps(inspection, project_dir, args)
    if args.json:
        report = json_report(inspection, outcome, plan.settings_lines, steps)
        print(json.dumps({**report, "warnings": warnings}, indent=2), flush=True)
    else:
        print(text_report(inspection, outcome, plan.settings_lines, steps), end="", flush=True)
    for warning in warnings:  # last, where a reader of the report sees it
        print(f"pulumi-django init: warning: {warning}", file=sys.stderr)
    return 0


def recorded_python(
    project_dir: Path, app_dir: Path, stack: str, unread: list[str]
) -> tuple[str, str] | None:
    """The interpreter a stack of the project records for this app (`django:app.python`, with
    `app.context` naming `app_dir`), absolute, and the stack file recording it: a second `init`,
    for another stack or target, needs no `--python` again. The stack's own file first (an
    `init --force` again), else the one that all others agree on; None when none records one.
    A stack file whose config does not load or validate is passed over, and said so in
    `unread`: the interpreter it may record could be the one the user expects. One that
    Pulumi.yaml's `config:` gives every stack is credited to Pulumi.yaml, and counts with no
    stack file at all."""
    from pulumi_django.app_resolution import app_interpreter
    from pulumi_django.cli.stackfile import available_stacks, load_stack_file, project_default
    from pulumi_django.config import NAMESPACE, parse_stack_config
    from pulumi_django.config.app import AppConfig
    from pulumi_django.errors import PulumiDjangoError

    def interpreter_of(app: AppConfig | None) -> str | None:
        """The interpreter `app` records, when it is this app's."""
        if app is None or app.python is None:
            return None
        if (project_dir / app.context).resolve() != app_dir.resolve():
            return None
        return app_interpreter(app, project_dir)

    shared = None
    if (project_dir / "Pulumi.yaml").is_file():
        try:
            default = project_default(project_dir, f"{NAMESPACE}:app")
            shared = interpreter_of(None if default is None else AppConfig.model_validate(default))
        except (PulumiDjangoError, ValueError) as error:
            unread.append(f"Pulumi.yaml not read for the app's interpreter: {one_line(error)}")
    found = {shared: "Pulumi.yaml"} if shared else {}
    for name in sorted(available_stacks(project_dir), key=lambda name: name != stack):
        try:
            app = parse_stack_config(*load_stack_file(project_dir, name).namespace(NAMESPACE)).app
        except PulumiDjangoError as error:
            unread.append(
                f"Pulumi.{name}.yaml not read for the app's interpreter: {one_line(error)}"
            )
            continue
        python = interpreter_of(app)
        if python is None:
            continue
        where = "Pulumi.yaml" if python == shared else f"Pulumi.{name}.yaml"
        if name == stack:
            return python, f"django:app.python in {where}"
        found.setdefault(python, where)
    if len(found) > 1:
        raise UsageError(
            "the project's stacks record different interpreters for the app ("
            + ", ".join(f"{python} in {where}" for python, where in found.items())
            + "); pass --python PATH"
        )
    return next(
        ((python, f"django:app.python in {where}") for python, where in found.items()), None
    )


def one_line(error: Exception) -> str:
    """An error of several lines (a count of problems, then one per line) as one warning line."""
    return " ".join(str(error).split())


def inspect_app(app_dir: Path, python: str | None, python_origin: str | None) -> Inspection:
    """The app's production settings module, imported in `python` (the `--python` given or the
    one a stack records, as `python_origin` says; both None: this interpreter) with the
    placeholder environment of the offline plan, its installed apps loaded, and the versions
    its image must match. Settings that do not import there stop init:
    it would otherwise describe the app, and pick its image's Python, from the wrong interpreter."""
    from pulumi_django.app_discovery import (
        InterpreterError,
        module_file,
        probe,
        probed_declarations,
        production_settings_module,
        settings_module_of,
    )

    interpreter = python or sys.executable
    explicit = os.environ.get(SETTINGS_VARIABLE)
    if explicit:
        module, origin = explicit, f"${SETTINGS_VARIABLE}"
    else:
        named = settings_module_of(app_dir)
        if not named:
            raise UsageError(
                f"{app_dir}: neither manage.py nor wsgi.py sets {SETTINGS_VARIABLE}; run init "
                f"with {SETTINGS_VARIABLE}=yourproject.settings"
            )
        module = production_settings_module(app_dir, named)
        origin = (
            "named by the app's wsgi.py/asgi.py/manage.py"
            if module == named
            else f"the production settings beside {named}, which the app names"
        )
    try:
        report = probe(app_dir, module, python=interpreter)
    except InterpreterError as error:
        if python_origin is None:
            raise UsageError(f"{error}, or {PYTHON_ADVICE}") from None
        if python_origin == "--python":
            raise UsageError(f"--python: {error}") from None
        raise UsageError(f"{python_origin}: {error}; fix it there or pass --python PATH") from None
    if report["settingsError"] or report.get("setupError"):
        raise UsageError(
            settings_failure(
                module,
                report,
                interpreter,
                python_origin=python_origin,
                from_environment=bool(explicit),
            )
        )
    declared = probed_declarations(app_dir, module, report)
    if not declared.wsgi_app and not declared.asgi_app:
        raise UsageError(
            f"settings {module} declare neither WSGI_APPLICATION nor ASGI_APPLICATION; "
            "set WSGI_APPLICATION = 'yourproject.wsgi.application'"
        )
    return Inspection(
        app_dir=app_dir,
        python=interpreter,
        python_origin=python_origin,
        settings_module=module,
        settings_origin=origin,
        settings_file=module_file(app_dir, module),
        declared=declared,
        python_version=".".join(report["pythonVersion"].split(".")[:2]),
        django_version=report["django"],
    )


def recorded_note(origin: str | None) -> str:
    """`, from django:app.python in Pulumi.dev.yaml` when a stack file chose the interpreter."""
    return f", from {origin}" if origin and origin != "--python" else ""


def settings_failure(
    module: str,
    report: dict[str, Any],
    interpreter: str,
    *,
    python_origin: str | None,
    from_environment: bool,
) -> str:
    """One line for settings that do not import (or whose INSTALLED_APPS do not), with the fix
    when the error tells it: a module missing from the interpreter is the wrong interpreter (or
    requirements not installed yet); a settings module that does not exist, taken from the
    shell's environment, is that variable's mistake. An interpreter a stack file chose is named
    with that file: the user did not pass it this time."""
    error = report["settingsError"] or report["setupError"]
    if python_origin not in (None, "--python"):
        interpreter = f"{interpreter} ({python_origin})"
    subject = f"settings {module}"
    if from_environment:
        subject += f" (from the {SETTINGS_VARIABLE} environment variable)"
    fails = "do not import" if report["settingsError"] else "do not load their INSTALLED_APPS"
    missing = re.match(r"ModuleNotFoundError: No module named '([^']+)'", error)
    if missing and f"{module}.".startswith(f"{missing.group(1)}."):
        advice = (
            f"unset {SETTINGS_VARIABLE} or set it to the app's settings module"
            if from_environment
            else ""
        )
    elif error.startswith(("ModuleNotFoundError:", "ImportError:")):
        advice = (
            "install the app's requirements into it"
            if python_origin
            else f"{PYTHON_ADVICE}, or install the app's requirements into this one"
        )
    else:
        advice = ""
    if advice:
        return f"{subject} {fails} with {interpreter} ({error}); {advice}"
    return f"{subject} {fails} with {interpreter}: {error}"


def plan_changes(inspection: Inspection, project_dir: Path, args: argparse.Namespace) -> Plan:
    """Every file init would write, the lines the settings module still needs, and warnings."""
    from pulumi_django.cli import scaffold

    app_dir = inspection.app_dir
    kit = scaffold.runtime_kit_requirement()
    app = app_settings(inspection, project_dir)
    name = django_project_name(inspection)
    changes: list[FileChange] = []
    if not (project_dir / "Pulumi.yaml").is_file():
        changes += [
            FileChange(
                project_dir / "Pulumi.yaml",
                scaffold.render_project_file(
                    name=scaffold.project_name(name), virtualenv=pulumi_virtualenv(project_dir)
                ),
            ),
            FileChange(
                project_dir / "__main__.py",
                scaffold.render_program(name=scaffold.project_name(name)),
            ),
        ]
        if not (project_dir / ".gitignore").exists():
            venvs = virtualenvs_inside(project_dir, inspection.python)
            changes.append(
                FileChange(project_dir / ".gitignore", scaffold.render_gitignore(virtualenvs=venvs))
            )
    changes.append(
        FileChange(
            project_dir / f"Pulumi.{args.stack}.yaml",
            scaffold.render_stack_file(
                stack=args.stack,
                target=args.target,
                name=scaffold.resource_name(name, args.stack),
                app=app,
                region=aws_region(),
            ),
        )
    )
    dependencies = dependency_plan(inspection, scaffold.image_requirements(kit, app.server))
    recipe = scaffold.ImageRecipe(
        python_version=inspection.python_version,
        settings_module=inspection.settings_module,
        static_root=app.static_root,
        server=app.server,
        server_app=app.served_app,
        dependencies=dependencies.file,
        extra_requirements=tuple(dependencies.extra),
    )
    dockerfile = app_dir / "Dockerfile"
    dockerignore = app_dir / ".dockerignore"
    needs_git = any("git+" in line.split("#", 1)[0] for line in dependencies.installed)
    changes += [
        FileChange(
            dockerfile,
            scaffold.render_dockerfile(recipe),
            lacks=tuple(
                dockerfile_shortfalls(dockerfile, inspection.settings_module, needs_git=needs_git)
            )
            if dockerfile.is_file()
            else (),
        ),
        FileChange(
            dockerignore,
            scaffold.render_dockerignore(
                generated_dirs=generated_dirs(recipe),
                extra=foreign_paths(app_dir, project_dir, inspection.python),
            ),
            lacks=tuple(dockerignore_shortfalls(app_dir, args.stack, inspection.python))
            if dockerignore.is_file()
            else (),
        ),
        *dependencies.changes,
    ]
    settings_file = inspection.settings_file
    usage = scaffold.configure_call(settings_file.read_text() if settings_file else "")
    local_source = scaffold.local_install_url()
    warnings = []
    if local_source and kit in dependencies.added:
        where = "requirements.txt" if dependencies.file == "requirements.txt" else "the Dockerfile"
        warnings.append(
            f"the runtime kit's line in {where} points at the published repository "
            f"{scaffold.REPOSITORY} (pulumi-django was installed from {local_source}, which "
            "no image build can reach); to build with your own copy, change it to a URL your "
            "image build can reach"
        )
    return Plan(changes, scaffold.settings_lines(usage), warnings)


def aws_region() -> str:
    """The region the AWS CLI and SDKs would use from the environment, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def django_project_name(inspection: Inspection) -> str:
    """The Django project's name: the settings module's top package (`mysite`)."""
    return inspection.settings_module.split(".")[0]


def app_settings(inspection: Inspection, project_dir: Path) -> AppSettings:
    from pulumi_django.app_resolution import image_static_root
    from pulumi_django.cli.scaffold import AppSettings
    from pulumi_django.config.app import AppConfig

    declared = inspection.declared
    static_root = (
        image_static_root(declared.static_root, inspection.app_dir.resolve())
        if declared.static_root
        else AppConfig.model_fields["static_root"].default
    )
    return AppSettings(
        context=Path(os.path.relpath(inspection.app_dir, project_dir)).as_posix(),
        settings_module=inspection.settings_module,
        wsgi_app=declared.wsgi_app,
        asgi_app=declared.asgi_app,
        static_root=static_root,
        python=(
            project_relative(Path(inspection.python), project_dir)
            if inspection.python_origin
            else None
        ),
    )


def project_relative(path: Path, project_dir: Path) -> str:
    """Relative to the project when inside it (the stack file then works in any checkout),
    absolute otherwise. Never resolved: a venv's python is a symlink that must stay one."""
    absolute = Path(os.path.normpath(path.absolute()))
    if absolute.is_relative_to(project_dir):
        return absolute.relative_to(project_dir).as_posix()
    return str(absolute)


def pulumi_virtualenv(project_dir: Path) -> str | None:
    """The virtual environment pulumi-django runs in, for Pulumi.yaml; None outside one."""
    if sys.prefix == sys.base_prefix:
        return None
    return project_relative(Path(sys.prefix), project_dir)


def dependency_plan(inspection: Inspection, wanted: dict[str, tuple[str, ...]]) -> DependencyPlan:
    """How the image gets its dependencies. The user's requirements.txt gets what it lacks
    appended; a pyproject.toml is never edited (its lacking requirements go on pip's command
    line); with neither, a requirements.txt is written, pinning the app's Django."""
    from pulumi_django.cli import scaffold

    requirements = inspection.app_dir / "requirements.txt"
    pyproject = inspection.app_dir / "pyproject.toml"
    if requirements.is_file():
        text = requirements.read_text()
        missing = scaffold.missing_requirements(text, wanted)
        appended = scaffold.append_requirements(text, missing)
        change = FileChange(requirements, appended, append=True, note="added " + ", ".join(missing))
        return DependencyPlan(
            "requirements.txt", [change] if missing else [], [], missing, appended.splitlines()
        )
    if pyproject.is_file():
        declared = project_dependencies(pyproject)
        extra = scaffold.missing_requirements("\n".join(declared), wanted)
        return DependencyPlan("pyproject.toml", [], extra, extra, [*declared, *extra])
    lines = [f"Django=={inspection.django_version}", *wanted]
    written = FileChange(requirements, scaffold.append_requirements("", lines))
    return DependencyPlan("requirements.txt", [written], [], lines, lines)


def project_dependencies(pyproject: Path) -> list[str]:
    try:
        document = tomllib.loads(pyproject.read_text())
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"{pyproject}: not valid TOML: {error}") from None
    dependencies = document.get("project", {}).get("dependencies")
    if not isinstance(dependencies, list):
        raise UsageError(
            f"{pyproject}: no [project] dependencies (a Poetry-only file?); export them to "
            "requirements.txt next to manage.py and run init again"
        )
    return [str(line) for line in dependencies]


def generated_dirs(recipe: ImageRecipe) -> list[str]:
    """Directories of the app that are build output or user data, relative to the app."""
    from pulumi_django.app_resolution import IMAGE_APP_DIR

    dirs = []
    static_root = PurePosixPath(recipe.static_root)
    if static_root.is_relative_to(IMAGE_APP_DIR) and static_root != IMAGE_APP_DIR:
        dirs.append(static_root.relative_to(IMAGE_APP_DIR).as_posix())
    return [*dirs, MEDIA_DIR]


def foreign_paths(app_dir: Path, project_dir: Path, python: str) -> list[str]:
    """Patterns for what lives in the app's directory but is not the app: the Pulumi project
    when it shares the directory, the virtual environments inside it."""
    patterns = []
    if project_dir == app_dir:
        patterns += ["Pulumi.yaml", "__main__.py"]
    elif project_dir.is_relative_to(app_dir):
        patterns.append(f"{project_dir.relative_to(app_dir).as_posix()}/")
    return [*patterns, *virtualenvs_inside(app_dir, python)]


def virtualenvs_inside(directory: Path, python: str) -> list[str]:
    """The virtual environments inside `directory`, as `dir/` patterns relative to it: the
    interpreter's, pulumi-django's, and any other with a pyvenv.cfg directly below it."""
    candidates = [
        Path(python).absolute().parent.parent,
        Path(sys.prefix),
        *(config.parent for config in sorted(directory.glob("*/pyvenv.cfg"))),
    ]
    return list(
        dict.fromkeys(
            f"{venv.relative_to(directory).as_posix()}/"
            for venv in candidates
            if venv != directory and venv.is_relative_to(directory)
        )
    )


def write_changes(changes: list[FileChange], *, force: bool) -> Outcome:
    """Writes each change; an existing file is kept (and reported with what it lacks) unless
    `force`."""
    outcome = Outcome()
    for change in changes:
        if change.path.exists() and not change.append and not force:
            lacks = f"exists but lacks {'; '.join(change.lacks)}" if change.lacks else "exists"
            outcome.skipped[change.path] = f"{lacks}; --force replaces it"
            continue
        change.path.write_text(change.text)
        outcome.written.append(change)
    return outcome


def dockerfile_shortfalls(
    dockerfile: Path, settings_module: str, *, needs_git: bool = False
) -> list[str]:
    """What an existing Dockerfile lacks that the stack relies on, one short phrase each.
    `needs_git`: a requirement the image installs is a `git+` URL (the runtime kit's line), so
    the stage running pip needs git, which slim Python images lack."""
    from pulumi_django.app_resolution import image_environment
    from pulumi_django.build_context import dockerfile_instructions, final_stage_volumes

    text = dockerfile.read_text()
    lacks = []
    if "/tmp" not in final_stage_volumes(text):  # noqa: S108 - the path the image declares
        lacks.append('VOLUME ["/tmp"] (the root filesystem is read-only)')
    if "collectstatic" not in text:
        lacks.append("collectstatic at build time")
    elif image_environment(dockerfile).get(SETTINGS_VARIABLE) != settings_module:
        lacks.append(f"ENV {SETTINGS_VARIABLE}={settings_module} for collectstatic")
    commands = [arguments for name, arguments in dockerfile_instructions(text) if name == "RUN"]
    installs_requirements = any(PIP_INSTALL.search(command) for command in commands)
    has_git = any(SYSTEM_INSTALL.search(command) and installs_git(command) for command in commands)
    if needs_git and installs_requirements and not has_git:
        lacks.append("git before pip install (a requirement is a git+ URL: apt-get install git)")
    return lacks


def installs_git(command: str) -> bool:
    """Whether a shell command names the `git` package (`git`, or pinned `git=1:2.39.5-0`)."""
    words = re.split(r"[\s;&|]+", command)
    return any(word == "git" or word.startswith("git=") for word in words)


def dockerignore_shortfalls(app_dir: Path, stack: str, python: str) -> list[str]:
    """The entries an existing .dockerignore lacks whose paths must stay out of the image: the
    git history, the stack files (encrypted secrets), the virtualenvs (another platform's), the
    rehearsal's release overlays. One phrase, as `dockerfile_shortfalls` gives them."""
    from pulumi_django.build_context import is_ignored, read_dockerignore
    from pulumi_django.cli.rehearsal.releases import RELEASES_DIR

    patterns = read_dockerignore(app_dir)
    entries = {
        ".git": ".git",
        "Pulumi.*.yaml": f"Pulumi.{stack}.yaml",
        **{venv: venv.rstrip("/") for venv in [".venv/", *virtualenvs_inside(app_dir, python)]},
        f"{RELEASES_DIR}/": RELEASES_DIR,
    }
    missing = [entry for entry, path in entries.items() if not is_ignored(path, patterns)]
    return [f"{', '.join(missing)} (they would enter the image)"] if missing else []


def next_steps(inspection: Inspection, project_dir: Path, args: argparse.Namespace) -> list[str]:
    """The commands that follow, in order."""
    from pulumi_django.cli.scaffold import runtime_kit_requirement

    if (inspection.app_dir / "requirements.txt").is_file():
        what = f"-r {shell_path(str(inspection.app_dir / 'requirements.txt'))}"
    else:
        what = json.dumps(runtime_kit_requirement())
    cwd = "" if project_dir == Path.cwd() else f" --cwd {shell_path(str(project_dir))}"
    return [
        install_command(inspection.python, what),
        f"pulumi-django plan --stack {args.stack}{cwd}",
        f"pulumi stack select --create {args.stack}{cwd}",
        f"pulumi up{cwd}",
    ]


def install_command(python: str, what: str) -> str:
    """The command that installs `what` (pip's arguments) with the app's interpreter: its pip;
    `uv pip` into a virtualenv uv made, which has no pip; else pip bootstrapped first (a
    virtualenv made `--without-pip`)."""
    shown = shell_path(python)
    if has_pip(python):
        return f"{shown} -m pip install {what}"
    if made_by_uv(python):
        return f"uv pip install --python {shown} {what}"
    return f"{shown} -m ensurepip && {shown} -m pip install {what}"


def has_pip(python: str) -> bool:
    """Whether `python` can run `-m pip`; an interpreter that does not answer is taken to
    have it (the report then says what it always said)."""
    try:
        found = subprocess.run(
            [python, "-c", PIP_FOUND],
            capture_output=True,
            timeout=PIP_CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return True
    return found.returncode == 0


def made_by_uv(python: str) -> bool:
    """Whether `python` is a virtualenv's that uv made: its pyvenv.cfg (beside the bin
    directory, the interpreter's link not followed) names uv's version."""
    try:
        config = (Path(python).parent.parent / "pyvenv.cfg").read_text(errors="replace")
    except OSError:
        return False
    return any(line.split("=")[0].strip() == "uv" for line in config.splitlines())


def shell_path(path: str) -> str:
    """A path as short as it can be written from the current directory."""
    relative = os.path.relpath(path)
    return relative if not relative.startswith("../..") else path


def json_report(
    inspection: Inspection, outcome: Outcome, settings: list[str], steps: list[str]
) -> dict[str, Any]:
    """`written` and `settingsLines` are the contract; the other keys are extras."""
    declared = inspection.declared
    return {
        "written": [str(change.path) for change in outcome.written],
        "settingsLines": settings,
        "settingsFile": str(inspection.settings_file) if inspection.settings_file else None,
        "skipped": [{"path": str(path), "reason": why} for path, why in outcome.skipped.items()],
        "app": {
            "dir": str(inspection.app_dir),
            "python": inspection.python,
            "pythonFrom": inspection.python_origin,
            "settingsModule": inspection.settings_module,
            "wsgiApp": declared.wsgi_app,
            "asgiApp": declared.asgi_app,
            "staticRoot": declared.static_root,
            "databaseEngine": declared.database_engine,
        },
        "nextSteps": steps,
    }


def database_note(engine: str | None, *, configured: bool) -> str:
    """The engine the settings declare under the placeholder environment, and what to expect."""
    if engine and "postgresql" in engine:
        return engine
    if not configured:
        return f"{engine or 'none'} (configure(globals()) switches to PostgreSQL at DATABASE_URL)"
    return f"{engine or 'none'}: not PostgreSQL, which the stack runs; `plan` will refuse it"


def text_report(
    inspection: Inspection, outcome: Outcome, settings: list[str], steps: list[str]
) -> str:
    declared = inspection.declared
    lines = [
        f"Django {inspection.django_version} app in {shell_path(str(inspection.app_dir))} "
        f"(Python {inspection.python_version}, {shell_path(inspection.python)}"
        f"{recorded_note(inspection.python_origin)}):",
        f"  settings     {inspection.settings_module} ({inspection.settings_origin})",
        f"  WSGI         {declared.wsgi_app or 'none'}",
        f"  ASGI         {declared.asgi_app or 'none'}",
        f"  STATIC_ROOT  {declared.static_root or 'unset'}",
        f"  database     {database_note(declared.database_engine, configured=not settings)}",
        "",
    ]
    if outcome.written:
        lines.append("Written:")
        lines += [
            f"  {shell_path(str(change.path))}" + (f" ({change.note})" if change.note else "")
            for change in outcome.written
        ]
    if outcome.skipped:
        lines.append("Kept:")
        lines += [f"  {shell_path(str(path))}: {why}" for path, why in outcome.skipped.items()]
    lines.append("")
    where = shell_path(str(inspection.settings_file or inspection.settings_module))
    if settings:
        lines.append(f"Add to the end of {where}:")
        lines += [f"  {line}" for line in settings]
    else:
        lines.append(f"{where} already calls pulumi_django_runtime.configure.")
    lines += ["", "Then:"]
    lines += [f"  {index}. {step}" for index, step in enumerate(steps, start=1)]
    return "\n".join(lines) + "\n"
