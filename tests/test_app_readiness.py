"""The plan's app readiness: stock `django-admin startproject` apps, as they come and adapted
with the runtime kit's documented line, imported in their interpreter under the stack's
environment. Each probe is shared by the tests that read it (one subprocess each)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from django_projects import split_settings, start_project
from shared_files import made_once

from pulumi_django.app_discovery import AppDiscoveryError
from pulumi_django.app_resolution import resolve_app_config
from pulumi_django.cli.app_readiness import AppReadiness, assess_app, judge
from pulumi_django.cli.stackfile import read_stack_config
from pulumi_django.config import StackConfig, parse_stack_config

ROOT = Path(__file__).resolve().parent.parent
KIT_LINE = "from pulumi_django_runtime import configure; configure(globals())\n"


def stack(project_dir: Path, target: str = "local", **app: Any) -> StackConfig:
    """A stack of the app in `project_dir`/mysite, resolved as the plan resolves it."""
    values = {"target": target, "app": json.dumps({"context": "mysite", **app})}
    return resolve_app_config(parse_stack_config(values, set()), project_dir)


def kit_app(parent: Path) -> Path:
    """A stock project after the documented steps: the kit's line at the end of the settings,
    and a Dockerfile that sets STATIC_ROOT where `collectstatic` writes in the image."""
    project = start_project(parent)
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + KIT_LINE)
    (project / "Dockerfile").write_text(
        "FROM python:3.12-slim AS build\nENV STATIC_ROOT=/build/ignored\n"
        "FROM python:3.12-slim\nWORKDIR /app\n"
        "ENV PATH=/venv/bin:$PATH \\\n    STATIC_ROOT=/app/staticfiles\n"
    )
    return project


def assessed(parent: Path, target: str = "local") -> tuple[Path, AppReadiness]:
    return parent, assess_app(stack(parent, target=target), parent)


@pytest.fixture(scope="module")
def stock_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AppReadiness]:
    """A stock project as `startproject` wrote it (SQLite, no STATIC_ROOT, no health
    endpoint), and its readiness: made once for the session's workers."""
    return made_once(
        tmp_path_factory, "readiness-stock", lambda parent: assessed(start_project(parent).parent)
    )


@pytest.fixture
def stock_parent(stock_app: tuple[Path, AppReadiness]) -> Path:
    return stock_app[0]


@pytest.fixture
def stock(stock_app: tuple[Path, AppReadiness]) -> AppReadiness:
    return stock_app[1]


def test_the_check_writes_nothing_into_the_app(stock_parent: Path, stock: AppReadiness) -> None:
    """No bytecode, and no db.sqlite3 from the health request (SQLite opens it on connect)."""
    assert stock.errors
    written = {path.name for path in (stock_parent / "mysite").rglob("*")}
    assert written == {"manage.py", "mysite", "__init__.py", "settings.py", "urls.py"} | {
        "wsgi.py",
        "asgi.py",
    }


@pytest.fixture(scope="module")
def kit_made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AppReadiness]:
    """`kit_app`, and its readiness on AWS: made once for the session's workers."""
    return made_once(
        tmp_path_factory, "readiness-kit", lambda parent: assessed(kit_app(parent).parent, "aws")
    )


@pytest.fixture
def kit_parent(kit_made: tuple[Path, AppReadiness]) -> Path:
    return kit_made[0]


@pytest.fixture
def kit(kit_made: tuple[Path, AppReadiness]) -> AppReadiness:
    return kit_made[1]


def test_bigfoot_is_ready() -> None:
    config = read_stack_config(ROOT, "local")
    readiness = assess_app(config, ROOT)
    assert readiness.errors == []
    assert readiness.warnings == []
    assert readiness.as_json()["ready"] is True


def test_a_kit_configured_stock_app_is_ready(kit: AppReadiness) -> None:
    assert kit.errors == []
    assert kit.warnings == []
    assert kit.settings_module == "mysite.settings"


def test_a_stock_app_with_sqlite_gets_the_database_error(stock: AppReadiness) -> None:
    assert (
        "settings mysite.settings: DATABASES['default'] is django.db.backends.sqlite3 under the "
        "stack's environment, not PostgreSQL; read DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, "
        "DATABASE_USER, DATABASE_PASSWORD and DATABASE_SSLMODE" in "\n".join(stock.errors)
    )


def test_a_stock_app_without_the_health_middleware_gets_the_health_error(
    stock: AppReadiness,
) -> None:
    assert any(
        error.startswith(
            "django:app.healthCheckPath: no health endpoint at /healthz answering before "
            "ALLOWED_HOSTS (Host 10.0.1.23 got 400); add pulumi_django_runtime's middleware"
        )
        for error in stock.errors
    )


def test_a_stock_app_gets_one_line_per_other_problem(stock: AppReadiness) -> None:
    assert len(stock.errors) == 4
    assert any("no STATIC_ROOT under the stack's environment" in e for e in stock.errors)
    assert any("StaticFilesStorage writes no hashed names" in e for e in stock.errors)
    warned = "\n".join(stock.warnings)
    for problem in ("DEBUG is True", "SECRET_KEY ignores", "LocMemCache", "ALLOWED_HOSTS"):
        assert problem in warned
    assert all("\n" not in line for line in [*stock.errors, *stock.warnings])


def test_another_apps_own_names_are_the_defaults(tmp_path: Path) -> None:
    project = start_project(tmp_path)
    split_settings(project)
    app = stack(tmp_path).app
    assert app.settings_module == "mysite.settings.production"  # wsgi.py's, not manage.py's
    assert app.wsgi_app == "mysite.wsgi:application"
    assert app.asgi_app == "mysite.asgi:application"
    assert app.static_root == "/app/collected"  # BASE_DIR / "collected", copied to /app
    assert app.python == sys.executable


def test_an_app_server_with_no_entry_point_declared_is_named(tmp_path: Path) -> None:
    project = start_project(tmp_path)
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text().replace("WSGI_APPLICATION", "# WSGI_APPLICATION"))
    with pytest.raises(
        AppDiscoveryError,
        match=r"^django:app\.wsgiApp: .*/mysite declares no WSGI_APPLICATION for gunicorn; "
        r"set django:app\.wsgiApp$",
    ):
        stack(tmp_path)


def test_a_wsgi_typo_and_a_wrong_static_root_are_named(kit_parent: Path) -> None:
    config = stack(kit_parent, wsgiApp="mysite.wsgi:aplication", staticRoot="/app/static")
    readiness = assess_app(config, kit_parent)
    assert len(readiness.errors) == 2
    wsgi, static = readiness.errors
    assert wsgi.startswith(
        "django:app.wsgiApp: mysite.wsgi:aplication (for gunicorn) does not import: "
    )
    assert "aplication" in wsgi
    assert static == (
        "django:app.staticRoot: /app/static differs from the STATIC_ROOT the settings "
        "declare (/app/staticfiles in the image); make them the same"
    )


def test_an_asgi_server_without_an_asgi_app_is_an_error(kit_parent: Path) -> None:
    config = stack(kit_parent, server="uvicorn", asgiApp="mysite.routing:application")
    readiness = assess_app(config, kit_parent)
    assert len(readiness.errors) == 1
    assert readiness.errors[0].startswith(
        "django:app.asgiApp: mysite.routing:application (for uvicorn) does not import: "
        "ModuleNotFoundError"
    )


def test_a_settings_module_that_does_not_exist_is_the_one_error(kit_parent: Path) -> None:
    config = stack(kit_parent, settingsModule="mysite.setings")
    assert config.app.wsgi_app == "mysite.wsgi:application"  # from the files, not bigfoot's
    assert assess_app(config, kit_parent).errors == [
        "django:app.settingsModule: mysite.setings does not import: "
        "ModuleNotFoundError: No module named 'mysite.setings'"
    ]


def test_an_error_of_djangos_system_checks_is_an_error(tmp_path: Path) -> None:
    """`migrate` runs Django's system checks first and refuses to run on an error (a stock
    Wagtail site on PostgreSQL without django.contrib.postgres did): the plan says so."""
    project = kit_app(tmp_path)
    app = project / "shop"
    app.mkdir()
    (app / "__init__.py").write_text("")
    (app / "models.py").write_text(
        "from django.db import models\n\n\nclass Item(models.Model):\n"
        "    name = models.CharField()\n"
        "    owner = models.ForeignKey('nowhere.Owner', on_delete=models.CASCADE)\n"
    )
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text().replace("INSTALLED_APPS = [", "INSTALLED_APPS = [\n    'shop',")
    )
    readiness = assess_app(stack(tmp_path, target="aws"), tmp_path)
    checks = [error for error in readiness.errors if "system check" in error]
    # The missing model is told twice by Django (fields.E300 and a lazy reference), once a line.
    assert len(checks) == 2
    assert any(
        check.startswith(
            "settings mysite.settings: Django's system check fails, so `migrate` would refuse "
            "to run: fields.E300: Field defines a relation with model 'nowhere.Owner'"
        )
        for check in checks
    )


def test_a_urlconf_that_does_not_import_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """Django's URL check imports urls.py and raises when it cannot: one line, like the rest."""
    project = kit_app(tmp_path)
    (project / "mysite" / "urls.py").write_text("import nowhere_to_be_found\n")
    readiness = assess_app(stack(tmp_path, target="aws"), tmp_path)
    assert any(
        "system check fails" in error
        and "the checks raise ModuleNotFoundError: No module named 'nowhere_to_be_found'" in error
        for error in readiness.errors
    ), readiness.errors


def test_settings_that_do_not_import_are_the_only_error(tmp_path: Path) -> None:
    config = parse_stack_config({"target": "aws"}, set())
    broken = {"settingsError": "ImproperlyConfigured: REDIS_URL is not set"}
    assert judge(config, broken, tmp_path) == (
        [
            "django:app.settingsModule: bigfoot.settings does not import: "
            "ImproperlyConfigured: REDIS_URL is not set"
        ],
        [],
    )


def test_a_missing_interpreter_is_named_by_its_key_or_flag(kit_parent: Path) -> None:
    missing = kit_parent / "venv" / "bin" / "python"
    with pytest.raises(
        AppDiscoveryError, match=f"^django:app.python: interpreter {missing}: no such file$"
    ):
        stack(kit_parent, python="venv/bin/python")
    # The default app's names need no import: the readiness check finds it.
    config = read_stack_config(ROOT, "local", python=str(missing))
    readiness = assess_app(config, ROOT, python_source="--python")
    assert readiness.errors == [f"--python: interpreter {missing}: no such file"]


def report(**health: Any) -> dict[str, Any]:
    """A probe report of a ready app, with the health request's outcome replaced."""
    return {
        "declarations": {
            "databaseEngine": "pulumi_django_runtime.db.postgresql_iam",
            "databaseHost": "offline.invalid",
            "staticRoot": "/app/staticfiles",
            "staticfilesBackend": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
            "cacheBackend": "django.core.cache.backends.redis.RedisCache",
            "debug": False,
            "secretKeyFromEnvironment": True,
            "allowedHosts": ["localhost"],
        },
        "database": {"vendor": "postgresql", "error": None},
        "staticStorage": {"hashed": True, "error": None},
        "health": {"path": "/healthz", "status": 200, "header": None, "error": None, **health},
    }


@pytest.mark.parametrize(
    ("status", "header", "errors", "warnings"),
    [
        (200, None, 0, 0),
        # The kit checking the database on the load balancer's path: a failover replaces tasks.
        (503, "pulumi-django-runtime", 0, 1),
        (503, None, 0, 1),  # some endpoint answered: it cannot be told apart offline
        (404, None, 1, 0),
        (301, None, 1, 0),  # SECURE_SSL_REDIRECT before the health check
    ],
)
def test_the_health_answer_decides(
    tmp_path: Path, status: int, header: str | None, errors: int, warnings: int
) -> None:
    config = parse_stack_config({"target": "aws"}, set())
    found = judge(config, report(status=status, header=header), tmp_path)
    assert (len(found[0]), len(found[1])) == (errors, warnings)


@pytest.mark.parametrize(
    ("header", "kind", "why"),
    [
        (None, None, "make it answer 200 without them (liveness)"),
        ("pulumi-django-runtime", "readiness", "it is django:app.readinessPath"),
        ("pulumi-django-runtime", None, "the runtime kit in the app's environment predates"),
        ("pulumi-django-runtime", "liveness", "the project's HEALTH_CHECKS fail"),
    ],
)
def test_a_health_path_that_needs_the_database_is_warned_of_as_a_fleet_restart(
    tmp_path: Path, header: str | None, kind: str | None, why: str
) -> None:
    """The load balancer and the container checks request app.healthCheckPath: offline (no
    database, no cache) it must answer 200, or a database failover gets every task replaced."""
    config = parse_stack_config({"target": "aws"}, set())
    found = judge(config, report(status=503, header=header, kind=kind), tmp_path)
    assert found[0] == []
    [warning] = [line for line in found[1] if "healthCheckPath" in line]
    assert warning.startswith(
        "django:app.healthCheckPath: /healthz answered 503 without the database and cache "
        "(offline), so a failover would get every task replaced: "
    )
    assert why in warning
    ok = judge(config, report(status=200, header=header, kind="liveness"), tmp_path)
    assert not [line for line in ok[1] if "healthCheckPath" in line]


# Settings written by hand, as a new user does: the database from DATABASE_URL, SQLite without.
HAND_WRITTEN_DATABASE = (
    "import dj_database_url\n"
    "DATABASES = {'default': dj_database_url.config(default=f'sqlite:///{BASE_DIR}/db.sqlite3')}\n"
)
# Or from the variables AWS injects, with Django's own backend and a password.
HAND_WRITTEN_HOST = (
    "import os\n"
    "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', "
    "'HOST': os.environ['DATABASE_HOST'], 'NAME': os.environ['DATABASE_NAME'], "
    "'USER': os.environ['DATABASE_USER'], 'PASSWORD': os.environ.get('DATABASE_PASSWORD', '')}}\n"
)


def hand_written_app(parent: Path, database: str) -> Path:
    """A stock project whose settings read the deployment's variables themselves (no kit)."""
    project = start_project(parent)
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + database)
    return project


def database_errors(readiness: AppReadiness) -> list[str]:
    return [error for error in readiness.errors if "DATABASES['default']" in error]


def test_settings_reading_database_url_are_not_ready_for_aws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AWS injects DATABASE_HOST/PORT/NAME/USER and no DATABASE_URL: such settings would fall
    back to SQLite there, even with a DATABASE_URL exported in the shell running the plan."""
    monkeypatch.setenv("DATABASE_URL", "postgres://me@localhost/dev")
    hand_written_app(tmp_path, HAND_WRITTEN_DATABASE)
    readiness = assess_app(stack(tmp_path, target="aws"), tmp_path)
    assert database_errors(readiness) == [
        "settings mysite.settings: DATABASES['default'] is django.db.backends.sqlite3 under the "
        "stack's environment, not PostgreSQL; read DATABASE_HOST, DATABASE_PORT, DATABASE_NAME, "
        "DATABASE_USER, DATABASE_SSLMODE and DATABASE_IAM_REGION (add `from "
        "pulumi_django_runtime import configure; configure(globals())` to its end)"
    ]


def test_settings_without_the_iam_backend_are_not_ready_for_iam_auth(tmp_path: Path) -> None:
    """With database.appAuth: iam (the default) the task has no password: Django's own
    backend would not log in. With appAuth: password, the same settings connect."""
    hand_written_app(tmp_path, HAND_WRITTEN_HOST)
    readiness = assess_app(stack(tmp_path, target="aws"), tmp_path)
    assert database_errors(readiness) == [
        "settings mysite.settings: DATABASES['default'] is django.db.backends.postgresql under "
        "the stack's environment, not pulumi_django_runtime.db.postgresql_iam: with "
        "django:database.appAuth: iam the app gets no password and must log in with IAM "
        "tokens; add `from pulumi_django_runtime import configure; configure(globals())` to "
        "its end, or set django:database.appAuth: password and read DATABASE_HOST, "
        "DATABASE_PORT, DATABASE_NAME, DATABASE_USER, DATABASE_SSLMODE, DATABASE_SECRET_ARN and "
        "DATABASE_PASSWORD"
    ]
    values = {
        "target": "aws",
        "app": json.dumps({"context": "mysite"}),
        "database": json.dumps({"appAuth": "password"}),
    }
    password = resolve_app_config(parse_stack_config(values, set()), tmp_path)
    assert database_errors(assess_app(password, tmp_path)) == []


def test_only_aws_with_iam_auth_needs_the_iam_backend() -> None:
    config = parse_stack_config({"target": "aws"}, set())
    plain = report()
    plain["declarations"]["databaseEngine"] = "django.db.backends.postgresql"
    assert judge(config, report(), Path())[0] == []
    [error] = judge(config, plain, Path())[0]
    assert "not pulumi_django_runtime.db.postgresql_iam" in error
    local = parse_stack_config({"target": "local"}, set())
    assert judge(local, plain, Path())[0] == []
