"""Runs the analyzer in the app's own interpreter (or builds the command that does) and reads
its result back. The analyzer needs Django and the project, so it never runs in this process.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .. import app_runs
from ..caches import bytecode_cache
from ..errors import PulumiDjangoError
from .analyzer import NO_DJANGO, POSTGRESQL_SCHEMES, CheckResult, acknowledged_name

ANALYZER = Path(__file__).with_name("analyzer.py")
# What a deployment gives the app's settings and only a deployment knows. The offline check
# (the plan's, `check-migrations --offline`) never connects anywhere, so these only let the
# settings module import.
OFFLINE_APP_ENVIRONMENT = {
    "DJANGO_SECRET_KEY": "offline-check-only",
    "DJANGO_ALLOWED_HOSTS": "localhost",
    "DATABASE_URL": "postgres://offline.invalid/plan",
    "REDIS_URL": "redis://offline.invalid:6379/0",
}
DEFAULT_TIMEOUT_SECONDS = 600.0


class Acknowledged(Protocol):
    """A migration allowed on purpose, e.g. the stack config's `AcknowledgedMigration`."""

    @property
    def migration(self) -> str: ...

    @property
    def reason(self) -> str: ...


# {"app_label.migration_name" or "app_label.*": reason}, or the stack config's
# `migrations.acknowledged`.
Acknowledgements = Mapping[str, str] | Iterable[Acknowledged]


class MigrationCheckError(PulumiDjangoError):
    """The check could not run (bad settings, unreachable database...); the message says why."""


def analyzer_source() -> str:
    """The analyzer's source: one file, stdlib and Django only, runnable as `python -c`."""
    return ANALYZER.read_text(encoding="utf-8")


def analyzer_arguments(
    settings: str,
    *,
    pythonpath: str | None = None,
    labels: Sequence[str] = (),
    check_all: bool = False,
    offline: bool = False,
    one_release: bool = False,
    first_deploy: bool = False,
    acknowledged: Acknowledgements = (),
    json_output: bool = True,
) -> list[str]:
    """The analyzer's command-line arguments (after the program) for one check."""
    arguments = ["--settings", settings]
    if pythonpath:
        arguments += ["--pythonpath", pythonpath]
    if check_all:
        arguments.append("--all")
    if offline:
        arguments.append("--offline")
    if one_release:
        arguments.append("--one-release")
    if first_deploy:
        arguments.append("--first-deploy")
    for migration, reason in acknowledgement_reasons(acknowledged).items():
        arguments += ["--acknowledge", f"{migration}={reason}"]
    if json_output:
        arguments.append("--json")
    return [*arguments, *labels]


def embedded_command(arguments: Sequence[str], python: str = "python") -> list[str]:
    """`python -c PROGRAM ARGUMENTS` running the analyzer, compressed, e.g. in the app image."""
    packed = base64.b64encode(zlib.compress(analyzer_source().encode("utf-8"), 9)).decode()
    program = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{packed}')))"
    return [python, "-c", program, *arguments]


def run_check(
    settings: str,
    *,
    pythonpath: str | None = None,
    python: str | None = None,
    python_source: str = "--python",
    database_url: str | None = None,
    labels: Sequence[str] = (),
    check_all: bool = False,
    offline: bool = False,
    one_release: bool = False,
    first_deploy: bool = False,
    acknowledged: Acknowledgements = (),
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    environment: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> CheckResult:
    """Checks the app's migrations with its own interpreter; MigrationCheckError if it cannot.

    By default the migrations not yet applied to the app's database (none judged when the
    database is new: a first deploy); `check_all` or `labels` (`app_label` or
    `app_label.migration_name`) pick others, each judged as its own release unless
    `one_release`. `first_deploy` asserts nothing runs yet, without a database.
    `database_url` becomes the analyzer's DATABASE_URL; `acknowledged` allows migrations (or
    whole apps) on purpose, each with a reason; `environment` adds variables the app's
    settings need to import; `cwd` is where it runs (default: here); `python_source` names what
    chose `python` (the flag, a stack key) in the errors. An offline check of the project on
    `pythonpath` is cached by what it read (`app_runs`).
    """
    if database_url:
        require_postgresql_url(database_url)
    interpreter = python or sys.executable
    named = f"interpreter {interpreter}"
    command = [
        interpreter,
        str(ANALYZER),
        *analyzer_arguments(
            settings,
            pythonpath=pythonpath,
            labels=labels,
            check_all=check_all,
            offline=offline,
            one_release=one_release,
            first_deploy=first_deploy,
            acknowledged=acknowledged,
        ),
    ]
    environment = {**os.environ, **(environment or {})}
    if database_url:
        environment["DATABASE_URL"] = database_url
    if not environment.get("PYTHONPYCACHEPREFIX") and not environment.get(
        "PYTHONDONTWRITEBYTECODE"
    ):
        environment["PYTHONPYCACHEPREFIX"] = str(bytecode_cache(environment))
    try:
        completed = app_runs.run(
            command,
            app_dir=Path(pythonpath or "."),
            environment=environment,
            cwd=cwd,
            timeout=timeout,
            # Offline, with the project on `pythonpath`, it reads files and nothing else.
            cached=offline and not database_url and pythonpath is not None,
        )
    except OSError as error:
        raise MigrationCheckError(
            f"{python_source}: {named}: {app_runs.start_failure(interpreter, error)}"
        ) from None
    except subprocess.TimeoutExpired:
        raise MigrationCheckError(f"the check did not finish within {timeout:.0f} s") from None
    if completed.returncode not in app_runs.COMPLETED:
        said = app_runs.last_line(completed.stderr)
        if said is None:
            raise MigrationCheckError(
                f"{python_source}: {named}: exited with status {completed.returncode} and "
                "said nothing"
            )
        if said.startswith(f"error: {NO_DJANGO}"):
            raise MigrationCheckError(f"{python_source}: {named}: {app_runs.NO_DJANGO}")
        raise MigrationCheckError(said.removeprefix("error: "))
    try:
        result = CheckResult.from_json(json.loads(completed.stdout))
    except (ValueError, KeyError, TypeError):
        raise MigrationCheckError(
            f"{python_source}: {named}: printed no check result (exit status "
            f"{completed.returncode}): {app_runs.last_line(completed.stderr) or 'said nothing'}"
        ) from None
    if completed.stderr.strip():
        sys.stderr.write(completed.stderr)
    return result


def require_postgresql_url(database_url: str) -> None:
    """MigrationCheckError unless `database_url` names a PostgreSQL database: the rules are
    PostgreSQL's, and the app's settings would open any other one (SQLite creating its file).
    The message names the scheme only, never the URL and its password."""
    scheme, separator, _ = database_url.partition("://")
    if not separator:
        problem = "is not a URL"
    elif scheme.lower() in POSTGRESQL_SCHEMES:
        return
    else:
        problem = f"is a {scheme} URL: the check knows PostgreSQL only"
    raise MigrationCheckError(
        f"--database-url {problem}; give the app's PostgreSQL database, "
        "postgres://USER:PASSWORD@HOST:PORT/NAME"
    )


def acknowledgement_reasons(acknowledged: Acknowledgements) -> dict[str, str]:
    """{"app_label.migration_name" or "app_label.*": reason}: the form the analyzer and the
    release steps take (a whole app given as `app_label` becomes `app_label.*`)."""
    pairs = (
        acknowledged.items()
        if isinstance(acknowledged, Mapping)
        else ((item.migration, item.reason) for item in acknowledged)
    )
    return {acknowledged_name(migration): reason for migration, reason in pairs}
