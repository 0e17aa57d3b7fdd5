"""`pulumi-django init`: make an existing Django project deployable.

Inspects the app in its own interpreter (settings module, WSGI/ASGI entry points, STATIC_ROOT,
database engine), then writes what the stack needs and the app lacks: the stack file, a
Dockerfile and .dockerignore, the runtime kit in requirements.txt, and, where no Pulumi project
exists yet, Pulumi.yaml and a __main__.py that builds the ready-made stack from the installed
pulumi_django. Never replaces a file without --force; prints the lines the settings still need.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal, get_args

from ..errors import UsageError

if TYPE_CHECKING:
    from ..app_discovery import AppDeclarations
    from ..scaffold import AppSettings, ImageRecipe

DEFAULT_STACK = "dev"
SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"
MEDIA_DIR = "media"
VERSIONS_TIMEOUT_SECONDS = 60
VERSIONS_SCRIPT = "import sys, django; print('%d.%d' % sys.version_info[:2], django.get_version())"
DependencyFile = Literal["requirements.txt", "pyproject.toml"]


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
        metavar="PATH",
        help="the app's interpreter, recorded as django:app.python (default: this one)",
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


@dataclass
class Outcome:
    written: list[FileChange] = field(default_factory=list)
    skipped: dict[Path, str] = field(default_factory=dict)


def run(args: argparse.Namespace) -> int:
    from ..config import StackConfig
    from ..stackfile import STACK_NAME

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
    if args.python and not Path(args.python).is_file():
        raise UsageError(f"--python {args.python}: no such file")
    inspection = inspect_app(app_dir, args.python or sys.executable)
    changes, settings = plan_changes(inspection, project_dir, args)
    outcome = write_changes(changes, force=args.force, settings_module=inspection.settings_module)
    steps = next_steps(inspection, project_dir, args)
    if args.json:
        print(json.dumps(json_report(inspection, outcome, settings, steps), indent=2))
    else:
        print(text_report(inspection, outcome, settings, steps), end="")
    return 0


def inspect_app(app_dir: Path, python: str) -> Inspection:
    """The app's production settings module, imported in `python` with the placeholder
    environment of the offline plan, and the versions its image must match."""
    from ..app_discovery import (
        discover,
        module_file,
        production_settings_module,
        settings_module_of,
    )

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
    declared = discover(app_dir, python=python, settings_module=module)
    if not declared.wsgi_app and not declared.asgi_app:
        raise UsageError(
            f"settings {module} declare neither WSGI_APPLICATION nor ASGI_APPLICATION; "
            "set WSGI_APPLICATION = 'yourproject.wsgi.application'"
        )
    python_version, django_version = interpreter_versions(python)
    return Inspection(
        app_dir=app_dir,
        python=python,
        settings_module=module,
        settings_origin=origin,
        settings_file=module_file(app_dir, module),
        declared=declared,
        python_version=python_version,
        django_version=django_version,
    )


def interpreter_versions(python: str) -> tuple[str, str]:
    """(Python "3.12", Django "5.2.1") of the app's interpreter: the image is built to match."""
    try:
        completed = subprocess.run(
            [python, "-c", VERSIONS_SCRIPT],
            capture_output=True,
            text=True,
            timeout=VERSIONS_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise UsageError(f"interpreter {python}: {error}") from None
    words = completed.stdout.split()
    if completed.returncode != 0 or len(words) != 2:
        said = completed.stderr.strip().splitlines()
        raise UsageError(f"interpreter {python}: {said[-1] if said else 'no version'}")
    return words[0], words[1]


def plan_changes(
    inspection: Inspection, project_dir: Path, args: argparse.Namespace
) -> tuple[list[FileChange], list[str]]:
    """Every file init would write, and the lines the settings module still needs."""
    from .. import scaffold

    app_dir = inspection.app_dir
    kit = scaffold.runtime_kit_requirement()
    app = app_settings(inspection, project_dir, args.python)
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
    wanted = scaffold.image_requirements(kit, app.server)
    dependencies, requirement_changes, extra = dependency_plan(inspection, wanted)
    recipe = scaffold.ImageRecipe(
        python_version=inspection.python_version,
        settings_module=inspection.settings_module,
        static_root=app.static_root,
        server=app.server,
        server_app=app.served_app,
        dependencies=dependencies,
        extra_requirements=tuple(extra),
    )
    changes += [
        FileChange(app_dir / "Dockerfile", scaffold.render_dockerfile(recipe)),
        FileChange(
            app_dir / ".dockerignore",
            scaffold.render_dockerignore(
                generated_dirs=generated_dirs(recipe),
                extra=foreign_paths(app_dir, project_dir, inspection.python),
            ),
        ),
        *requirement_changes,
    ]
    settings_file = inspection.settings_file
    usage = scaffold.configure_call(settings_file.read_text() if settings_file else "")
    return changes, scaffold.settings_lines(usage)


def aws_region() -> str:
    """The region the AWS CLI and SDKs would use from the environment, else us-east-1."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def django_project_name(inspection: Inspection) -> str:
    """The Django project's name: the settings module's top package (`mysite`)."""
    return inspection.settings_module.split(".")[0]


def app_settings(inspection: Inspection, project_dir: Path, python: str | None) -> AppSettings:
    from ..app_resolution import image_static_root
    from ..config.app import AppConfig
    from ..scaffold import AppSettings

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
        python=project_relative(Path(python), project_dir) if python else None,
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


def dependency_plan(
    inspection: Inspection, wanted: dict[str, tuple[str, ...]]
) -> tuple[DependencyFile, list[FileChange], list[str]]:
    """How the image gets its dependencies: (the file it installs, the requirements.txt change,
    requirements installed beside that file). The user's requirements.txt gets what it lacks
    appended; a pyproject.toml is never edited (its lacking requirements go on pip's command
    line); with neither, a requirements.txt is written, pinning the app's Django."""
    from .. import scaffold

    requirements = inspection.app_dir / "requirements.txt"
    pyproject = inspection.app_dir / "pyproject.toml"
    if requirements.is_file():
        text = requirements.read_text()
        missing = scaffold.missing_requirements(text, wanted)
        change = FileChange(
            requirements,
            scaffold.append_requirements(text, missing),
            append=True,
            note="added " + ", ".join(missing),
        )
        return "requirements.txt", [change] if missing else [], []
    if pyproject.is_file():
        declared = project_dependencies(pyproject)
        return "pyproject.toml", [], scaffold.missing_requirements("\n".join(declared), wanted)
    lines = [f"Django=={inspection.django_version}", *wanted]
    written = FileChange(requirements, scaffold.append_requirements("", lines))
    return "requirements.txt", [written], []


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
    from ..app_resolution import IMAGE_APP_DIR

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
    interpreter = Path(python).absolute()
    for venv in (interpreter.parent.parent, Path(sys.prefix)):
        if venv != app_dir and venv.is_relative_to(app_dir):
            patterns.append(f"{venv.relative_to(app_dir).as_posix()}/")
    return patterns


def write_changes(changes: list[FileChange], *, force: bool, settings_module: str) -> Outcome:
    """Writes each change; an existing file is kept (and reported) unless `force`. A kept
    Dockerfile is reported with what it lacks that the stack relies on."""
    outcome = Outcome()
    for change in changes:
        if change.path.exists() and not change.append and not force:
            lacks = (
                dockerfile_shortfalls(change.path, settings_module)
                if change.path.name == "Dockerfile"
                else []
            )
            exists = f"exists but lacks {'; '.join(lacks)}" if lacks else "exists"
            outcome.skipped[change.path] = f"{exists}; --force replaces it"
            continue
        change.path.write_text(change.text)
        outcome.written.append(change)
    return outcome


def dockerfile_shortfalls(dockerfile: Path, settings_module: str) -> list[str]:
    """What an existing Dockerfile lacks that the stack relies on, one short phrase each."""
    from ..app_resolution import image_environment
    from ..build_context import final_stage_volumes

    text = dockerfile.read_text()
    lacks = []
    if "/tmp" not in final_stage_volumes(text):  # noqa: S108 - the path the image declares
        lacks.append('VOLUME ["/tmp"] (the root filesystem is read-only)')
    if "collectstatic" not in text:
        lacks.append("collectstatic at build time")
    elif image_environment(dockerfile).get(SETTINGS_VARIABLE) != settings_module:
        lacks.append(f"ENV {SETTINGS_VARIABLE}={settings_module} for collectstatic")
    return lacks


def next_steps(inspection: Inspection, project_dir: Path, args: argparse.Namespace) -> list[str]:
    """The commands that follow, in order."""
    from ..scaffold import runtime_kit_requirement

    python = shell_path(inspection.python)
    if (inspection.app_dir / "requirements.txt").is_file():
        requirements = shell_path(str(inspection.app_dir / "requirements.txt"))
        install = f"{python} -m pip install -r {requirements}"
    else:
        install = f"{python} -m pip install {json.dumps(runtime_kit_requirement())}"
    cwd = "" if project_dir == Path.cwd() else f" --cwd {shell_path(str(project_dir))}"
    return [
        install,
        f"pulumi-django plan --stack {args.stack}{cwd}",
        f"pulumi stack select --create {args.stack}",
        "pulumi up",
    ]


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
        f"(Python {inspection.python_version}, {shell_path(inspection.python)}):",
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
