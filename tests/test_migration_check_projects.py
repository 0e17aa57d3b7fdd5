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
from django_projects import files_under, start_project

from pulumi_django.cli import main
from pulumi_django.migration_check import MigrationCheckError, run_check
from pulumi_django.rehearsal.servers import Postgres, free_port

pytestmark = pytest.mark.slow

CONTRIB_APPS = ("admin", "auth", "contenttypes", "sessions")
ORDER_MODEL = """from django.conf import settings
from django.db import models


class Order(models.Model):
    customer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    placed = models.DateTimeField(auto_now_add=True)
"""
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


def test_stock_sqlite_settings_are_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stock settings use db.sqlite3 and ignore DATABASE_URL: refused before any database
    is opened, so no db.sqlite3 and no __pycache__ appear in the project."""
    project = start_project(tmp_path)
    before = files_under(project)
    unreachable = f"postgres://postgres@127.0.0.1:{free_port()}/shop"
    for arguments in (["--database-url", unreachable], ["--offline", "--all"]):
        assert main(check(project, *arguments)) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1
        assert (
            "error: the settings use SQLite (django.db.backends.sqlite3) and ignore DATABASE_URL, "
            "not PostgreSQL: the check knows PostgreSQL only and opens no other database; make "
            "the settings read DATABASE_URL, e.g. with "
            "`from pulumi_django_runtime import configure; configure(globals())`"
        ) in error
    assert files_under(project) == before


def test_contrib_history_is_a_first_deploy_then_only_the_new_migration_is_judged(
    tmp_path: Path, pg: Postgres, capsys: pytest.CaptureFixture[str]
) -> None:
    project = start_project(tmp_path)
    settings = project / "mysite" / "settings.py"
    settings.write_text(
        settings.read_text().replace(
            "'django.contrib.staticfiles',", "'django.contrib.staticfiles',\n    'shop',"
        )
        + "\nimport dj_database_url\n\nDATABASES = {'default': dj_database_url.config()}\n"
    )
    (project / "shop" / "migrations").mkdir(parents=True)
    (project / "shop" / "__init__.py").write_text("")
    (project / "shop" / "migrations" / "__init__.py").write_text("")
    (project / "shop" / "models.py").write_text(ORDER_MODEL)
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
