"""Whether the stack's app can be deployed as configured: its settings imported in the app's own
interpreter under the environment the stack injects (placeholders for secrets, database and
cache), judged against what a release needs. The plan shows the result and fails on errors.

Errors stop a release for sure (the site would not start, not pass its health check, or not
serve its static files); warnings are what the release or the running site would trip on.
Each finding is one line naming the key or the file to fix. `judge` is pure: the probe's
report in, findings out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

from pulumi_django.app_discovery import AppDiscoveryError, InterpreterError, probe
from pulumi_django.app_probe import FOREIGN_HOST
from pulumi_django.app_resolution import (
    IAM_DATABASE_ENGINE,
    PLACEHOLDER_HOST,
    PLACEHOLDER_SITE_HOST,
    database_variables,
    deployment_environment,
    image_static_root,
)
from pulumi_django.config import NAMESPACE, StackConfig
from pulumi_django.config.app import AppConfig

# What the runtime kit's health middleware answers with, on liveness and readiness alike.
HEALTH_HEADER = "pulumi-django-runtime"
KIT_FIX = "add `from pulumi_django_runtime import configure; configure(globals())` to its end"
HASHED_STORAGES = "ManifestStaticFilesStorage or a subclass"
# Caches that live inside one process: each replica would see its own.
PROCESS_LOCAL_CACHES = frozenset(
    {
        "django.core.cache.backends.locmem.LocMemCache",
        "django.core.cache.backends.dummy.DummyCache",
    }
)
# The hosts the placeholder environment gives: settings that read it report these.
PLACEHOLDER_DATABASE_HOST = PLACEHOLDER_HOST
PLACEHOLDER_ALLOWED_HOSTS = PLACEHOLDER_SITE_HOST.split(",")

# How a finding names an app setting (an `AppConfig` field) where its user sets it: a stack
# file's key, or the field of the `AppConfig` a program of one's own builds its components with.
AppKey = Callable[[str], str]


def stack_key(field: str) -> str:
    """A stack file's key for an `AppConfig` field: `django:app.settingsModule`."""
    return f"{NAMESPACE}:app.{AppConfig.model_fields[field].alias}"


@dataclass
class AppReadiness:
    """The app's readiness for the stack: what was imported with which interpreter, and the
    findings. `ready` when there is no error."""

    app_dir: Path
    python: str
    settings_module: str
    server: str
    python_version: str | None = None
    python_prefix: str | None = None  # sys.prefix as the app's interpreter reported it
    django: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.errors

    def as_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "errors": self.errors,
            "warnings": self.warnings,
            "appDir": str(self.app_dir),
            "python": self.python,
            "pythonVersion": self.python_version,
            "pythonPrefix": self.python_prefix,
            "django": self.django,
            "settingsModule": self.settings_module,
            "server": self.server,
        }


def assess_app(
    config: StackConfig,
    project_dir: Path,
    *,
    python_source: str = "django:app.python",
    key: AppKey = stack_key,
) -> AppReadiness:
    """Imports the stack's app (`config` resolved by `resolve_app_config`) in its interpreter
    and judges it; `python_source` names what chose the interpreter, and `key` the settings,
    for the messages."""
    app = config.app
    app_dir = (project_dir / app.context).resolve()
    interpreter = app.python or ""
    readiness = AppReadiness(app_dir, interpreter, app.settings_module, app.server)
    if not (app_dir / "manage.py").is_file():
        # The program built no app from it (it would have refused the context): not a Django app.
        readiness.warnings.append(f"{key('context')}: no manage.py in {app_dir}; not inspected")
        return readiness
    try:
        report = probe(
            app_dir,
            app.settings_module,
            python=interpreter,
            environment=deployment_environment(config, app_dir),
            wsgi_app=app.wsgi_app if app.server == "gunicorn" else None,
            asgi_app=app.asgi_app if app.server == "uvicorn" else None,
            health_path=app.health_check_path,
        )
    except InterpreterError as error:
        readiness.errors.append(f"{python_source}: {error}")
        return readiness
    except AppDiscoveryError as error:
        readiness.errors.append(str(error))
        return readiness
    readiness.python_version = report.get("pythonVersion")
    readiness.python_prefix = report.get("prefix")
    readiness.django = report.get("django")
    errors, warnings = judge(config, report, app_dir, key)
    readiness.errors += errors
    readiness.warnings += warnings
    return readiness


def judge(
    config: StackConfig, report: Mapping[str, Any], app_dir: Path, key: AppKey = stack_key
) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the probe's `report` for the stack's app in `app_dir`; `key`
    names the settings in them."""
    app = config.app
    settings = f"settings {app.settings_module}"
    if report.get("settingsError"):
        return [
            f"{key('settings_module')}: {app.settings_module} does not import: "
            f"{report['settingsError']}"
        ], []
    if report.get("setupError"):
        return [f"{settings}: Django does not start (django.setup()): {report['setupError']}"], []
    declared = report["declarations"]
    errors = [
        *_entry_point_errors(config, report, key),
        *_database_errors(config, settings, declared, report["database"]),
        *_static_errors(config, settings, declared, report["staticStorage"], app_dir, key),
        *_health_errors(config, report["health"], key),
        *(
            f"{settings}: Django's system check fails, so `migrate` would refuse to run: {error}"
            for error in report.get("systemCheckErrors", [])
        ),
    ]
    return errors, _warnings(config, settings, declared, report["health"], key)


def _entry_point_errors(config: StackConfig, report: Mapping[str, Any], key: AppKey) -> list[str]:
    app = config.app
    field, target, error = (
        ("wsgi_app", app.wsgi_app, report.get("wsgiError"))
        if app.server == "gunicorn"
        else ("asgi_app", app.asgi_app, report.get("asgiError"))
    )
    if error is None:
        return []
    return [f"{key(field)}: {target} (for {app.server}) does not import: {error}"]


def _variables(config: StackConfig) -> str:
    """The database variables the stack's target injects, as a message lists them."""
    names = database_variables(config)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _database_errors(
    config: StackConfig, settings: str, declared: Mapping[str, Any], database: Mapping[str, Any]
) -> list[str]:
    engine = declared["databaseEngine"] or "no database"
    if database["error"]:
        return [f"{settings}: the database backend {engine} does not load: {database['error']}"]
    if database["vendor"] != "postgresql":
        return [
            f"{settings}: DATABASES['default'] is {engine} under the stack's environment, not "
            f"PostgreSQL; read {_variables(config)} ({KIT_FIX})"
        ]
    if (
        config.target == "aws"
        and config.database.app_auth == "iam"
        and declared["databaseEngine"] != IAM_DATABASE_ENGINE
    ):
        password = config.model_copy(
            update={"database": config.database.model_copy(update={"app_auth": "password"})}
        )
        return [
            f"{settings}: DATABASES['default'] is {engine} under the stack's environment, not "
            f"{IAM_DATABASE_ENGINE}: with {NAMESPACE}:database.appAuth: iam the app gets no "
            f"password and must log in with IAM tokens; {KIT_FIX}, or set "
            f"{NAMESPACE}:database.appAuth: password and read {_variables(password)}"
        ]
    return []


def _static_errors(
    config: StackConfig,
    settings: str,
    declared: Mapping[str, Any],
    storage: Mapping[str, Any],
    app_dir: Path,
    key: AppKey,
) -> list[str]:
    errors = []
    static_root = declared["staticRoot"]
    if static_root is None:
        errors.append(
            f"{settings}: no STATIC_ROOT under the stack's environment; set it to "
            f"{config.app.static_root} ({key('static_root')}), e.g. with ENV STATIC_ROOT in "
            f"{config.app.dockerfile} and {KIT_FIX}"
        )
    elif image_static_root(static_root, app_dir) != config.app.static_root:
        errors.append(
            f"{key('static_root')}: {config.app.static_root} differs from the STATIC_ROOT "
            f"the settings declare ({image_static_root(static_root, app_dir)} in the image); "
            "make them the same"
        )
    backend = declared["staticfilesBackend"]
    if storage["error"]:
        errors.append(
            f"{settings}: the static files storage {backend} does not load: {storage['error']}"
        )
    elif not storage["hashed"]:
        errors.append(
            f"{settings}: static files storage {backend} writes no hashed names, so releases "
            f"overwrite each other's files; use {HASHED_STORAGES} ({KIT_FIX})"
        )
    return errors


def _health_errors(config: StackConfig, health: Mapping[str, Any], key: AppKey) -> list[str]:
    path = config.app.health_check_path
    status = health["status"]
    if health["error"]:
        return [
            f"{key('health_check_path')}: {path} fails with Host {FOREIGN_HOST}: {health['error']}"
        ]
    # 503: an endpoint that answered, reporting the database and cache unreachable (offline);
    # a warning says what a failover would do then.
    if status in (HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE):
        return []
    return [
        f"{key('health_check_path')}: no health endpoint at {path} answering before "
        f"ALLOWED_HOSTS (Host {FOREIGN_HOST} got {status}); add pulumi_django_runtime's "
        f"middleware ({KIT_FIX})"
    ]


def _failover_warning(health: Mapping[str, Any], key: AppKey) -> str:
    """The health path answered 503 with the database and the cache offline: the load
    balancer's and the container checks would fail in a failover, and ECS replace every task."""
    path = health["path"]
    if health["header"] != HEALTH_HEADER:
        why = "make it answer 200 without them (liveness) and check them on the readiness path"
    elif health.get("kind") == "readiness":
        why = f"it is {key('readiness_path')}; give the health checks a path of their own"
    elif health.get("kind") is None:
        why = "the runtime kit in the app's environment predates liveness; upgrade it"
    else:  # the kit's liveness: the project's HEALTH_CHECKS fail under the stack's environment
        why = "the project's HEALTH_CHECKS fail; keep them to checks of the process itself"
    return (
        f"{key('health_check_path')}: {path} answered 503 without the database and cache "
        f"(offline), so a failover would get every task replaced: {why}"
    )


def _warnings(
    config: StackConfig,
    settings: str,
    declared: Mapping[str, Any],
    health: Mapping[str, Any],
    key: AppKey,
) -> list[str]:
    warnings = []
    if health["status"] == HTTPStatus.SERVICE_UNAVAILABLE:
        warnings.append(_failover_warning(health, key))
    cache = declared["cacheBackend"]
    if cache is None or cache in PROCESS_LOCAL_CACHES:
        warnings.append(
            f"{settings}: CACHES['default'] is {cache or 'not set'} under the stack's "
            f"environment, not the stack's Redis (REDIS_URL): each process caches apart"
        )
    if declared["debug"]:
        warnings.append(f"{settings}: DEBUG is True under the stack's environment")
    if not declared["secretKeyFromEnvironment"]:
        warnings.append(
            f"{settings}: SECRET_KEY ignores DJANGO_SECRET_KEY, so the key is in the code "
            f"({KIT_FIX})"
        )
    if declared["databaseHost"] not in (PLACEHOLDER_DATABASE_HOST, None):
        warnings.append(
            f"{settings}: DATABASES['default'] ignores DATABASE_HOST (HOST "
            f"{declared['databaseHost']!r}); the app would not use the stack's database"
        )
    allowed = declared["allowedHosts"]
    if "*" not in allowed and not set(PLACEHOLDER_ALLOWED_HOSTS) <= set(allowed):
        warnings.append(
            f"{settings}: ALLOWED_HOSTS ignores DJANGO_ALLOWED_HOSTS; the site's own host "
            "would get 400"
        )
    return warnings


def readiness_lines(readiness: AppReadiness) -> list[str]:
    """The plan's text section: a verdict, then one line per finding."""
    if readiness.django:
        runs = f"Python {readiness.python_version} {readiness.python}, Django {readiness.django}"
    else:
        runs = readiness.python
    count = len(readiness.errors)
    verdict = "ready" if readiness.ready else f"NOT deployable ({count} error{'s' * (count > 1)})"
    lines = [f"App readiness ({readiness.app_dir.name}, {runs}): {verdict}"]
    lines += [f"  error: {line}" for line in readiness.errors]
    lines += [f"  warning: {line}" for line in readiness.warnings]
    return lines
