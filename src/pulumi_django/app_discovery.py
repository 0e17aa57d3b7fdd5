"""What a Django app declares about itself: its settings module, WSGI/ASGI entry points,
STATIC_ROOT, database engine and static storage, read by importing its settings in the app's own
interpreter.

The settings module is found statically (manage.py, wsgi.py, asgi.py: no import); everything
else comes from `app_probe.py`, run in a subprocess of the app's interpreter with the app
directory on sys.path and the placeholder environment of the offline plan, since the real
secrets and database exist only in a deployment. Nothing here imports the app into this process
and nothing writes into the app directory. Safe for deploy-time code: no CLI module is imported.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import app_runs
from .errors import PulumiDjangoError
from .migration_check.runner import OFFLINE_APP_ENVIRONMENT

PROBE = Path(__file__).resolve().with_name("app_probe.py")
PROBE_TIMEOUT_SECONDS = 60.0
SETTINGS_VARIABLE = "DJANGO_SETTINGS_MODULE"
# The connection variables a stack gives the app (DATABASE_URL, DATABASE_HOST..., REDIS_URL...).
STACK_OWNED = re.compile(r"^(DATABASE|REDIS)_\w+$")
# The production server's entry points come first: manage.py often names development settings
# (Wagtail's `mysite.settings.dev`), while wsgi.py/asgi.py name what a deployment runs.
ENTRY_POINT_FILES = ("wsgi.py", "asgi.py")


class AppDiscoveryError(PulumiDjangoError):
    """The app could not be inspected; the one-line message says what to fix."""


class InterpreterError(AppDiscoveryError):
    """The app's interpreter does not start (`app_runs.start_failure` says why) or has no
    Django; callers prefix the key or flag that named it."""


@dataclass(frozen=True)
class AppDeclarations:
    """What the app's settings declare, under the environment the stack injects."""

    settings_module: str | None
    wsgi_app: str | None  # "pkg.wsgi:application"
    # ASGI_APPLICATION, else the asgi.py next to the WSGI module: startproject writes one but
    # no setting names it (only Channels reads ASGI_APPLICATION).
    asgi_app: str | None
    static_root: str | None  # absolute, as the host sees it (the app dir, not the image's /app)
    database_engine: str | None
    staticfiles_backend: str | None
    installed_apps: tuple[str, ...]
    middleware: tuple[str, ...]


def settings_module_of(app_dir: Path) -> str | None:
    """The DJANGO_SETTINGS_MODULE the app sets for itself, read without importing anything:
    its wsgi.py/asgi.py (next to the settings manage.py names, else in any top-level package),
    then manage.py. None when no file sets a literal module name."""
    from_manage = _settings_default(app_dir / "manage.py")
    if from_manage:
        package_dirs = [app_dir / from_manage.split(".")[0]]
    else:
        package_dirs = sorted(path.parent for path in app_dir.glob("*/__init__.py"))
    for package_dir in package_dirs:
        for name in ENTRY_POINT_FILES:
            found = _settings_default(package_dir / name)
            if found:
                return found
    return from_manage


# Apps often name their development settings for themselves (Wagtail's manage.py and wsgi.py
# name `mysite.settings.dev`); a deployment takes the production module beside it.
PRODUCTION_MODULES = ("production", "prod")


def production_settings_module(app_dir: Path, module: str) -> str:
    """`module`, or a production module beside it (`pkg.settings.production` for
    `pkg.settings.dev`, or inside it when `module` is a package)."""
    is_package = module_file(app_dir, module, package_only=True) is not None
    package = module if is_package else module.rpartition(".")[0]
    if not package or module.rpartition(".")[2] in PRODUCTION_MODULES:
        return module
    for name in PRODUCTION_MODULES:
        if module_file(app_dir, f"{package}.{name}"):
            return f"{package}.{name}"
    return module


def module_file(app_dir: Path, module: str, *, package_only: bool = False) -> Path | None:
    """The source file of `module` under `app_dir` (`a/b.py` or `a/b/__init__.py`), if any."""
    base = app_dir.joinpath(*module.split("."))
    candidates = [base / "__init__.py"]
    if not package_only:
        candidates.insert(0, base.with_suffix(".py"))
    return next((path for path in candidates if path.is_file()), None)


def discover(
    app_dir: Path,
    *,
    python: str | None = None,
    settings_module: str | None = None,
    environment: Mapping[str, str] | None = None,
) -> AppDeclarations:
    """Imports the app's settings in `python` (default: this interpreter) and reads what they
    declare. `settings_module` defaults to `settings_module_of(app_dir)`; `environment` is added
    to the offline placeholders (secret key, database and cache URLs). AppDiscoveryError when the
    interpreter, Django or the settings are missing or broken."""
    module = settings_module or settings_module_of(app_dir)
    if not module:
        raise AppDiscoveryError(
            f"{app_dir}: no manage.py, wsgi.py or asgi.py sets {SETTINGS_VARIABLE}; "
            "set django:app.settingsModule"
        )
    report = probe(app_dir, module, python=python, environment=environment)
    if report["settingsError"]:
        raise AppDiscoveryError(
            f"settings {module} do not import with {report['python']}: {report['settingsError']}"
        )
    return probed_declarations(app_dir, module, report)


def probed_declarations(app_dir: Path, module: str, report: Mapping[str, Any]) -> AppDeclarations:
    """What a probe's report (of settings that imported) says the settings declare."""
    declared = _declarations_of(module, report["declarations"])
    if declared.asgi_app or not declared.wsgi_app:
        return declared
    package = declared.wsgi_app.partition(":")[0].rpartition(".")[0]
    sibling = app_dir.joinpath(*package.split("."), "asgi.py") if package else None
    if sibling is None or not sibling.is_file():
        return declared
    return dataclasses.replace(declared, asgi_app=f"{package}.asgi:application")


def declared_in_files(app_dir: Path, settings_module: str) -> AppDeclarations:
    """What the app's files declare without importing anything: the settings module, and the
    `wsgi.py`/`asgi.py` of its top-level package (where `startproject` puts them)."""
    package = settings_module.split(".")[0]

    def entry_point(name: str) -> str | None:
        found = (app_dir / package / f"{name}.py").is_file()
        return f"{package}.{name}:application" if found else None

    return AppDeclarations(
        settings_module=settings_module,
        wsgi_app=entry_point("wsgi"),
        asgi_app=entry_point("asgi"),
        static_root=None,
        database_engine=None,
        staticfiles_backend=None,
        installed_apps=(),
        middleware=(),
    )


def probe(
    app_dir: Path,
    settings_module: str,
    *,
    python: str | None = None,
    environment: Mapping[str, str] | None = None,
    wsgi_app: str | None = None,
    asgi_app: str | None = None,
    health_path: str | None = None,
    timeout: float = PROBE_TIMEOUT_SECONDS,
) -> dict[str, Any]:
    """Runs `app_probe.py` in the app's interpreter and returns its JSON report (see the script).
    InterpreterError when the interpreter is missing or has no Django, AppDiscoveryError when
    the probe fails."""
    interpreter = python or sys.executable
    if not app_dir.is_dir():
        raise AppDiscoveryError(f"{app_dir}: no such app directory")
    command = [interpreter, str(PROBE), "--app-dir", str(app_dir), "--settings", settings_module]
    for flag, value in (("--wsgi", wsgi_app), ("--asgi", asgi_app), ("--health-path", health_path)):
        if value:
            command += [flag, value]
    # An environment with connection variables is the stack's (`deployment_environment`): this
    # shell's (a DATABASE_URL exported for development) and the placeholders must not stand in
    # for, or add to, those the stack injects.
    given = environment or {}
    stack_given = any(STACK_OWNED.match(name) for name in given)
    child_environment = {
        **{
            name: value
            for name, value in os.environ.items()
            if not (stack_given and STACK_OWNED.match(name))
        },
        **({} if stack_given else OFFLINE_APP_ENVIRONMENT),
        **given,
        "PYTHONDONTWRITEBYTECODE": "1",
        SETTINGS_VARIABLE: settings_module,
    }
    try:
        completed = app_runs.run(
            command,
            app_dir=app_dir,
            environment=child_environment,
            cwd=app_dir,  # the image's WORKDIR is the app directory too
            timeout=timeout,
            # Under the stack's placeholders nothing it connects to is real: its report depends
            # on files alone.
            cached=stack_given,
        )
    except OSError as error:
        raise InterpreterError(
            f"interpreter {interpreter}: {app_runs.start_failure(interpreter, error)}"
        ) from None
    except subprocess.TimeoutExpired:
        raise AppDiscoveryError(
            f"importing {settings_module} with {interpreter} took over {timeout:.0f} s"
        ) from None
    try:
        report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise InterpreterError(
            f"interpreter {interpreter}: printed no probe report (exit status "
            f"{completed.returncode}): {app_runs.last_line(completed.stderr) or 'said nothing'}"
        ) from None
    if report["django"] is None:
        raise InterpreterError(f"interpreter {interpreter}: {app_runs.NO_DJANGO}")
    return report


def _declarations_of(settings_module: str, declared: Mapping[str, Any]) -> AppDeclarations:
    """The probe's `declarations` as AppDeclarations; dotted entry points become `module:attr`."""
    return AppDeclarations(
        settings_module=settings_module,
        wsgi_app=_entry_point(declared["wsgiApplication"]),
        asgi_app=_entry_point(declared["asgiApplication"]),
        static_root=declared["staticRoot"],
        database_engine=declared["databaseEngine"],
        staticfiles_backend=declared["staticfilesBackend"],
        installed_apps=tuple(declared["installedApps"]),
        middleware=tuple(declared["middleware"]),
    )


def _entry_point(dotted: str | None) -> str | None:
    """ "pkg.wsgi.application" -> "pkg.wsgi:application", the app servers' form."""
    if not dotted or "." not in dotted:
        return None
    module, attribute = dotted.rsplit(".", 1)
    return f"{module}:{attribute}"


def _settings_default(path: Path) -> str | None:
    """The literal module a file gives DJANGO_SETTINGS_MODULE, via `os.environ.setdefault(...)`
    or `os.environ[...] = ...`; None when the file is missing, unparsable or sets none."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "setdefault"
            and len(node.args) == 2
            and _is_literal(node.args[0], SETTINGS_VARIABLE)
            and _is_literal(node.args[1])
        ):
            return str(node.args[1].value)  # type: ignore[attr-defined]
        if (
            isinstance(node, ast.Assign)
            and any(
                isinstance(target, ast.Subscript) and _is_literal(target.slice, SETTINGS_VARIABLE)
                for target in node.targets
            )
            and _is_literal(node.value)
        ):
            return str(node.value.value)  # type: ignore[attr-defined]
    return None


def _is_literal(node: ast.AST, expected: str | None = None) -> bool:
    return (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (expected is None or node.value == expected)
    )
