"""The migration check on a stock `django-admin startproject` project, shaped unlike the scenario
project: Django's contrib apps and their historic migrations, a local app, settings a user
wrote. The check never writes into the project, and says what it refuses in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import django
import pytest
from django_projects import files_under, split_settings, start_project

from pulumi_django.caches import CACHE_VARIABLE
from pulumi_django.cli import main
from pulumi_django.cli.rehearsal.servers import Postgres, free_port
from pulumi_django.migration_check import MigrationCheckError, run_check

pytestmark = pytest.mark.slow

CONTRIB_APPS = ("admin", "auth", "contenttypes", "sessions")
ORDER_MODEL = """from django.conf import settings
from django.db import models


class Order(models.Model):
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    placed = models.DateTimeField(auto_now_add=True)
"""
CONFIGURE_LINE = "from pulumi_django_runtime import configure; configure(globals())"
UNSAFE_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]
    operations = [
        migrations.AddField("order", "note", models.CharField(max_length=100, default="")),
    ]
"""


@pytest.fixture(autouse=True)
def user_cache(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Neither bytecode variable is set in a developer's shell: keeping bytecode out of the
    project is the check's own job. It goes to the user's cache (here a temporary one)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.delenv("PYTHONPYCACHEPREFIX", raising=False)
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)  # `make unit` sets it
    cache_home = tmp_path_factory.getbasetemp() / "cache-home"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_home))
    yield cache_home


def check(project: Path, *arguments: str) -> list[str]:
    return [
        "check-migrations",
        "--settings",
        "mysite.settings",
        "--pythonpath",
        str(project),
        *arguments,
    ]


def manage(project: Path, database_url: str, *arguments: str) -> None:
    """The user's own `manage.py` run (setup, not under test: no bytecode left behind)."""
    subprocess.run(
        [sys.executable, "manage.py", *arguments],
        cwd=project,
        env={**os.environ, "DATABASE_URL": database_url, "PYTHONDONTWRITEBYTECODE": "1"},
        check=True,
        capture_output=True,
    )


def contrib_migrations() -> set[str]:
    """The historic migrations Django ships for the contrib apps a stock project installs."""
    contrib = Path(django.__file__).parent / "contrib"
    return {
        f"{app}.{path.stem}"
        for app in CONTRIB_APPS
        for path in (contrib / app / "migrations").glob("0*.py")
    }


def unreachable_database() -> str:
    return f"postgres://postgres@127.0.0.1:{free_port()}/shop"


def add_shop_app(project: Path) -> None:
    """A local app `shop` with an Order model, installed; its migrations are the test's."""
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'shop',"
        )
    )
    (project / "shop" / "migrations").mkdir(parents=True)
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "migrations" / "__init__.py").write_text("")
    (project / "shop" / "models.py").write_text(ORDER_MODEL)


def deploy_project(parent: Path, context: str) -> Path:
    """A Pulumi project of its own, `parent/deploy`, whose stack `dev` deploys the app at
    `context` (relative to it)."""
    deploy = parent / "deploy"
    deploy.mkdir()
    (deploy / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (deploy / "__main__.py").write_text("")
    (deploy / "Pulumi.dev.yaml").write_text(
        f"config:\n  django:target: local\n  django:app:\n    context: {context}\n"
    )
    return deploy


NO_DATABASE_URL = (
    "no DATABASE_URL was given: pass --database-url URL, the app's PostgreSQL database "
    "(or --offline with --all or LABEL)"
)
SETTINGS_IGNORE_IT = (
    "the settings use SQLite (django.db.backends.sqlite3) and ignore DATABASE_URL, not "
    "PostgreSQL: the check knows PostgreSQL only and opens no other database; "
)


@pytest.mark.parametrize(
    ("settings_tail", "arguments", "message"),
    [
        pytest.param(
            "",
            ["--database-url", "UNREACHABLE"],
            f"{SETTINGS_IGNORE_IT}make the settings read DATABASE_URL: add `{CONFIGURE_LINE}` "
            "at their end",
            id="stock-settings-given-a-url",
        ),
        pytest.param(
            "",
            ["--offline", "--all"],
            f"{SETTINGS_IGNORE_IT}make the settings read DATABASE_URL: add `{CONFIGURE_LINE}` "
            "at their end",
            id="stock-settings-offline",
        ),
        pytest.param(
            "",
            [],
            "the settings use SQLite (django.db.backends.sqlite3), not PostgreSQL: the check "
            f"knows PostgreSQL only and opens no other database; {NO_DATABASE_URL}, and make the "
            f"settings read it: `{CONFIGURE_LINE}` at their end",
            id="stock-settings-no-url",
        ),
        pytest.param(
            f"\n{CONFIGURE_LINE}\n",
            [],
            f"PostgreSQL only and opens no other database; {NO_DATABASE_URL}\n",
            id="configured-settings-no-url",
        ),
        pytest.param(
            f"\n{CONFIGURE_LINE}\n"
            "DATABASES = {'default': {'ENGINE': 'django.db.backends.sqlite3', 'NAME': 'db'}}\n",
            ["--database-url", "UNREACHABLE"],
            f"{SETTINGS_IGNORE_IT}they call pulumi_django_runtime's configure(globals()), so "
            "something after the call reassigns DATABASES: make the call the last line of the "
            "settings module\n",
            id="configured-then-reassigned",
        ),
        pytest.param(
            f"\n{CONFIGURE_LINE}\n",
            ["--database-url", "sqlite:///db.sqlite3"],
            "error: --database-url is a sqlite URL: the check knows PostgreSQL only; give the "
            "app's PostgreSQL database, postgres://USER:PASSWORD@HOST:PORT/NAME\n",
            id="sqlite-url",
        ),
    ],
)
def test_sqlite_is_refused_saying_what_to_do_and_nothing_is_written(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings_tail: str,
    arguments: list[str],
    message: str,
) -> None:
    """The stock settings use db.sqlite3: refused before any database is opened, so no
    db.sqlite3 and no __pycache__ appear in the project; the one line says whether a
    DATABASE_URL is missing or the settings do not use the one given."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("DATABASE_HOST", raising=False)
    project = start_project(tmp_path)
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + settings_tail)
    before = files_under(project)
    arguments = [unreachable_database() if a == "UNREACHABLE" else a for a in arguments]
    assert main(check(project, *arguments)) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert message in error
    assert files_under(project) == before


def test_settings_that_reassign_databases_after_configure_are_warned_about_offline(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = start_project(tmp_path)
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        f"{settings.read_text()}\n{CONFIGURE_LINE}\n"
        "DATABASES = {'default': {'ENGINE': 'django.db.backends.postgresql', 'NAME': 'own'}}\n"
    )
    assert main(check(project, "--offline", "--all", "--json")) == 0
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert warning.startswith("the settings ignore DATABASE_URL (their database is 'own' at ")
    assert warning.endswith(
        "they call pulumi_django_runtime's configure(globals()), so something after the call "
        "reassigns DATABASES: make the call the last line of the settings module"
    )


def test_the_stack_names_the_settings_module_and_the_app_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An app beside the Pulumi project (`context: ../mysite`) with Wagtail's split settings:
    --stack imports the production module the stack resolves (manage.py names the dev one,
    which uses SQLite) from the app's directory; a flag still wins over the stack."""
    project = start_project(tmp_path)
    add_shop_app(project)
    split_settings(project)
    production = project / "mysite" / "settings" / "production.py"
    production.write_text(f"{production.read_text()}{CONFIGURE_LINE}\n")
    production_module = ("--settings", "mysite.settings.production")
    manage(project, unreachable_database(), "makemigrations", "shop", *production_module)
    (project / "shop" / "migrations" / "0002_order_note.py").write_text(UNSAFE_MIGRATION)
    deploy_project(tmp_path, "../mysite")
    monkeypatch.chdir(tmp_path)
    before = files_under(project)

    stack = ["check-migrations", "--stack", "dev", "--cwd", "deploy"]
    assert main([*stack, "--offline", "--json", "shop"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["checked"] == ["shop.0001_initial", "shop.0002_order_note"]
    assert [f["rule"] for f in document["findings"]] == ["not-null-column-without-db-default"]
    assert files_under(project) == before

    assert main([*stack, "--offline", "--all", "--settings", "mysite.nope"]) == 2
    assert f"no settings module 'mysite.nope' under {project.resolve()};" in capsys.readouterr().err
    assert main([*stack, "--offline", "--all", "--pythonpath", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"no settings module 'mysite.settings.production' under {tmp_path.resolve()};" in error


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "pass --settings MODULE, or --stack NAME to take the stack's"),
        (["--stack", "dev", "--cwd", "deploy"], "django:app.context of stack dev: "),
    ],
)
def test_without_settings_or_app_directory_one_line_says_what_to_pass(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    deploy_project(tmp_path, "../missing")
    monkeypatch.chdir(tmp_path)
    assert main(["check-migrations", "--offline", "--all", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1
    assert message in error


def test_contrib_history_is_a_first_deploy_then_only_the_new_migration_is_judged(
    tmp_path: Path, pg: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    project = start_project(tmp_path)
    add_shop_app(project)
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text()
        + "\nimport dj_database_url\n\nDATABASES = {'default': dj_database_url.config()}\n"
    )
    database_url = pg.create_database("startproject")
    manage(project, database_url, "makemigrations", "shop")
    before = files_under(project)

    assert main(check(project, "--database-url", database_url, "--json")) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["firstDeploy"] is True and first["findings"] == []
    assert set(first["checked"]) == contrib_migrations() | {"shop.0001_initial"}
    assert files_under(project) == before

    manage(project, database_url, "migrate")
    (project / "shop" / "migrations" / "0002_order_note.py").write_text(UNSAFE_MIGRATION)
    before = files_under(project)
    assert main(check(project, "--database-url", database_url, "--json")) == 1
    second = json.loads(capsys.readouterr().out)
    assert second["firstDeploy"] is False
    assert second["checked"] == ["shop.0002_order_note"]
    assert [f["rule"] for f in second["findings"]] == ["not-null-column-without-db-default"]
    allowed = ["--acknowledge", "shop=the note is written by every version since 12"]
    assert main(check(project, "--database-url", database_url, *allowed)) == 0
    assert "Acknowledged: shop.0002_order_note." in capsys.readouterr().out
    assert files_under(project) == before


def test_the_projects_bytecode_goes_to_the_users_cache(tmp_path: Path, user_cache: Path) -> None:
    """The settings are imported (and compiled) before their SQLite database is refused."""
    project = start_project(tmp_path)
    with pytest.raises(MigrationCheckError, match="not PostgreSQL"):
        run_check("mysite.settings", pythonpath=str(project), offline=True, first_deploy=True)
    cached = user_cache / "pulumi-django" / "pycache"
    assert list(cached.rglob("mysite/settings.*.pyc"))
    assert not list(project.rglob("__pycache__"))
