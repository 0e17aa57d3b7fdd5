"""Imports a Django app in its own interpreter and prints, as JSON, what it declares and how it
behaves under the environment it is given: the facts `app_discovery` and `app_readiness` judge.

Runs as a script (`python app_probe.py --app-dir DIR --settings MODULE ...`) in the app's
environment, so it uses only the standard library and Django, never pulumi_django. It never
writes into the app directory: bytecode is off (PYTHONDONTWRITEBYTECODE, set by the caller) and
a SQLite database is swapped for an in-memory one before the health request can create it.
Every step reports its own error instead of stopping the probe, so one run tells everything.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

# The load balancer probes with the task's private IP as Host, which ALLOWED_HOSTS never lists.
FOREIGN_HOST = "10.0.1.23"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app-dir", required=True)
    parser.add_argument("--settings", required=True)
    parser.add_argument("--wsgi", metavar="MODULE:ATTRIBUTE")
    parser.add_argument("--asgi", metavar="MODULE:ATTRIBUTE")
    parser.add_argument("--health-path", metavar="PATH")
    args = parser.parse_args(argv)
    sys.path.insert(0, args.app_dir)
    os.environ["DJANGO_SETTINGS_MODULE"] = args.settings
    report: dict[str, Any] = {
        "python": sys.executable,
        "prefix": sys.prefix,
        "pythonVersion": ".".join(map(str, sys.version_info[:3])),
    }
    try:
        import django
    except ImportError:
        report["django"] = None
        print(json.dumps(report))
        return 0
    report["django"] = django.get_version()
    report["settingsError"] = _failure(lambda: _declarations(args.settings, report))
    if report["settingsError"] is None:
        report["setupError"] = _failure(django.setup)
        if report["setupError"] is None:
            backend = report["declarations"]["staticfilesBackend"]
            report["staticStorage"] = _static_storage(backend)
            report["database"] = _database()
            report["systemCheckErrors"] = _system_check_errors()
            if args.wsgi:
                report["wsgiError"] = _failure(lambda: _import_target(args.wsgi))
            if args.asgi:
                report["asgiError"] = _failure(lambda: _import_target(args.asgi))
            if args.health_path:
                report["health"] = _health(args.health_path)
    print(json.dumps(report))
    return 0


def _declarations(settings_module: str, report: dict[str, Any]) -> None:
    # Importing the module first tells "no such module" apart from Django's lazy settings errors.
    importlib.import_module(settings_module)
    from django.conf import settings

    databases = getattr(settings, "DATABASES", {}) or {}
    caches = getattr(settings, "CACHES", {}) or {}
    storages = getattr(settings, "STORAGES", None) or {}
    static_storage = storages.get("staticfiles", {}).get("BACKEND") or getattr(
        settings, "STATICFILES_STORAGE", None
    )
    static_root = getattr(settings, "STATIC_ROOT", None)
    report["declarations"] = {
        "wsgiApplication": getattr(settings, "WSGI_APPLICATION", None),
        "asgiApplication": getattr(settings, "ASGI_APPLICATION", None),
        "staticRoot": str(Path(static_root).resolve()) if static_root else None,
        "databaseEngine": databases.get("default", {}).get("ENGINE"),
        "cacheBackend": caches.get("default", {}).get("BACKEND"),
        "staticfilesBackend": static_storage,
        "installedApps": list(settings.INSTALLED_APPS),
        "middleware": list(getattr(settings, "MIDDLEWARE", None) or []),
        "databaseHost": databases.get("default", {}).get("HOST"),
        "debug": bool(settings.DEBUG),
        "secretKeyFromEnvironment": _secret_key(settings) == os.environ.get("DJANGO_SECRET_KEY"),
        "allowedHosts": list(settings.ALLOWED_HOSTS),
    }


def _secret_key(settings: Any) -> str | None:
    """SECRET_KEY, or None when it is empty: Django refuses to read an empty one, and settings
    that leave it to the deployment (Wagtail's production.py sets none) still declare the rest."""
    from django.core.exceptions import ImproperlyConfigured

    try:
        return str(settings.SECRET_KEY)
    except ImproperlyConfigured:
        return None


def _database() -> dict[str, Any]:
    """The default database's vendor ("postgresql" for PostgreSQL, PostGIS and backends built
    on them), which loads its backend (and driver) without connecting."""
    from django.db import DEFAULT_DB_ALIAS, connections

    try:
        return {"vendor": connections[DEFAULT_DB_ALIAS].vendor, "error": None}
    except Exception as error:
        return {"vendor": None, "error": _one_line(error)}


def _system_check_errors() -> list[str]:
    """Django's own system checks at ERROR and above, as `manage.py migrate` runs them before
    migrating (say, a model field that needs django.contrib.postgres): one line each. The
    checks that need a database connection are left out: there is none offline."""
    from django.core.checks import ERROR, run_checks

    try:
        messages = run_checks(include_deployment_checks=False)
    except Exception as error:  # a check that raises (a urls.py that does not import) is one too
        return [f"the checks raise {_one_line(error)}"]
    return [
        f"{message.id}: {message.msg}" + (f" ({message.obj})" if message.obj else "")
        for message in messages
        if message.level >= ERROR
    ]


def _static_storage(backend: str | None) -> dict[str, Any]:
    """Whether the static files storage writes hashed names with a manifest, which a release
    needs: old and new versions' files then live side by side and can be cached forever."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.utils.module_loading import import_string

    if not backend:
        return {"hashed": False, "error": None}
    try:
        storage_class = import_string(backend)
    except ImportError as error:
        return {"hashed": False, "error": _one_line(error)}
    hashed = isinstance(storage_class, type) and issubclass(storage_class, ManifestFilesMixin)
    return {"hashed": hashed, "error": None}


def _import_target(target: str) -> None:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    if not hasattr(module, attribute):
        raise AttributeError(f"module {module_name!r} has no attribute {attribute!r}")


def _health(path: str) -> dict[str, Any]:
    """The health path requested as the load balancer does: a foreign Host, no database."""
    from django.db import connections
    from django.test import Client

    try:
        for alias in connections:
            if connections[alias].vendor == "sqlite":
                connections[alias].settings_dict["NAME"] = ":memory:"  # never create db.sqlite3
        response = Client(raise_request_exception=False).get(path, HTTP_HOST=FOREIGN_HOST)
    except Exception as error:
        return {"path": path, "status": None, "header": None, "error": _one_line(error)}
    return {
        "path": path,
        "status": response.status_code,
        "header": response.headers.get("X-Health-Check"),
        # The runtime kit's `liveness` or `readiness`; none from a kit before they were apart.
        "kind": response.headers.get("X-Health-Check-Kind"),
        "error": None,
    }


def _failure(step: Any) -> str | None:
    """None when `step` runs; otherwise its error as one line (type and message)."""
    try:
        step()
    except BaseException as error:  # SystemExit from a settings module is a failure too
        if isinstance(error, KeyboardInterrupt):
            raise
        return _one_line(error)
    return None


def _one_line(error: BaseException) -> str:
    lines = traceback.format_exception_only(type(error), error)
    return " ".join(line.strip() for line in lines if line.strip())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
