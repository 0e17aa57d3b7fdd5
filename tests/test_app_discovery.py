"""What an app declares, read from its own files and settings: the example app, a stock
`django-admin startproject` project and one with a settings package (Wagtail's layout)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from django_projects import files_under, split_settings, start_project

from pulumi_django.app_discovery import (
    AppDiscoveryError,
    discover,
    probe,
    settings_module_of,
)
from pulumi_django.app_resolution import image_environment, image_static_root

BIGFOOT = Path(__file__).resolve().parent.parent / "examples" / "bigfoot"


@pytest.fixture(scope="module")
def stock_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return start_project(tmp_path_factory.mktemp("stock"))


@pytest.fixture(scope="module")
def package_settings_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = start_project(tmp_path_factory.mktemp("split"), "newsroom")
    split_settings(project, "newsroom")
    return project


def test_settings_module_of_a_stock_project_is_read_from_its_files(stock_project: Path) -> None:
    assert settings_module_of(stock_project) == "mysite.settings"
    assert settings_module_of(BIGFOOT) == "bigfoot.settings"


def test_the_production_entry_point_wins_over_manage_py_development_settings(
    package_settings_project: Path,
) -> None:
    assert settings_module_of(package_settings_project) == "newsroom.settings.production"


def test_a_deployment_takes_the_production_settings_beside_the_ones_the_app_names(
    tmp_path: Path,
) -> None:
    """Stock Wagtail: manage.py and wsgi.py both name `settings.dev`, there is no asgi.py, and
    `settings/production.py` sits beside it. `init` and a hand-written stack file (which leaves
    `settingsModule` unset) both deploy the production module."""
    from pulumi_django.app_discovery import production_settings_module
    from pulumi_django.app_resolution import resolve_app_config
    from pulumi_django.config import StackConfig

    project = start_project(tmp_path, "newsroom")
    split_settings(project, "newsroom")
    wsgi = project / "newsroom" / "wsgi.py"
    wsgi.write_text(wsgi.read_text().replace("settings.production", "settings.dev"))
    (project / "newsroom" / "asgi.py").unlink()
    assert settings_module_of(project) == "newsroom.settings.dev"
    assert production_settings_module(project, "newsroom.settings.dev") == (
        "newsroom.settings.production"
    )
    config = StackConfig.model_validate(
        {"name": "news", "target": "local", "app": {"context": str(project)}}
    )
    resolved = resolve_app_config(config, tmp_path)
    assert resolved.app.settings_module == "newsroom.settings.production"
    assert resolved.app.wsgi_app == "newsroom.wsgi:application"


def test_settings_module_assigned_outright_is_found(tmp_path: Path) -> None:
    (tmp_path / "manage.py").write_text(
        "import os\nos.environ['DJANGO_SETTINGS_MODULE'] = 'shop.conf.live'\n"
    )
    assert settings_module_of(tmp_path) == "shop.conf.live"


def test_no_settings_module_anywhere_is_none_and_discovery_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "manage.py").write_text("import os\nprint(os.environ['DJANGO_SETTINGS_MODULE'])\n")
    assert settings_module_of(tmp_path) is None
    with pytest.raises(AppDiscoveryError, match=r"set django:app\.settingsModule"):
        discover(tmp_path)


def test_bigfoot_declares_its_own_names_under_its_images_environment() -> None:
    declared = discover(BIGFOOT, environment=image_environment(BIGFOOT / "Dockerfile"))
    assert declared.settings_module == "bigfoot.settings"
    assert declared.wsgi_app == "bigfoot.wsgi:application"
    assert declared.asgi_app == "bigfoot.asgi:application"
    # Where the image has it: the same directory under /app (or /app/staticfiles itself).
    assert image_static_root(declared.static_root or "", BIGFOOT) == "/app/staticfiles"
    assert declared.database_engine == "django.db.backends.postgresql"
    assert declared.staticfiles_backend == (
        "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
    )
    assert "sightings" in declared.installed_apps
    assert declared.middleware[0] == "pulumi_django_runtime.health.HealthCheckMiddleware"


def test_the_given_environment_reaches_the_settings() -> None:
    declared = discover(BIGFOOT, environment={"DATABASE_URL": "sqlite:////tmp/never-opened.db"})
    assert declared.database_engine == "django.db.backends.sqlite3"


def test_a_stock_project_declares_sqlite_and_no_static_root(stock_project: Path) -> None:
    before = files_under(stock_project)
    declared = discover(stock_project)
    assert declared.settings_module == "mysite.settings"
    assert declared.wsgi_app == "mysite.wsgi:application"
    # No ASGI_APPLICATION in stock settings: the asgi.py startproject wrote next to wsgi.py.
    assert declared.asgi_app == "mysite.asgi:application"
    assert declared.static_root is None
    assert declared.database_engine == "django.db.backends.sqlite3"
    assert "django.contrib.admin" in declared.installed_apps
    assert files_under(stock_project) == before  # no bytecode, no db.sqlite3


def test_a_settings_package_reports_the_host_path_of_its_static_root(
    package_settings_project: Path,
) -> None:
    declared = discover(package_settings_project)
    assert declared.settings_module == "newsroom.settings.production"
    assert declared.static_root == str(package_settings_project / "collected")
    dev = discover(package_settings_project, settings_module="newsroom.settings.dev")
    assert dev.settings_module == "newsroom.settings.dev"
    assert dev.static_root is None


def test_a_settings_module_that_does_not_exist_is_named(stock_project: Path) -> None:
    with pytest.raises(AppDiscoveryError, match=r"settings mysite\.setings do not import.*"):
        discover(stock_project, settings_module="mysite.setings")


def test_a_missing_interpreter_is_named(stock_project: Path, tmp_path: Path) -> None:
    missing = tmp_path / "venv" / "bin" / "python"
    with pytest.raises(AppDiscoveryError, match=f"interpreter {missing}: no such file"):
        discover(stock_project, python=str(missing))


def test_an_interpreter_without_django_is_named(stock_project: Path, tmp_path: Path) -> None:
    # This interpreter without its site-packages: a Python the app's requirements are not in.
    bare = tmp_path / "python"
    bare.write_text(f'#!/bin/sh\nexec {sys.executable} -S "$@"\n')
    bare.chmod(bare.stat().st_mode | stat.S_IXUSR)
    with pytest.raises(AppDiscoveryError, match=f"interpreter {bare}: cannot import Django"):
        discover(stock_project, python=str(bare))


def test_a_health_request_that_opens_sqlite_creates_no_database_file(tmp_path: Path) -> None:
    project = start_project(tmp_path)
    urls = project / "mysite" / "urls.py"
    urls.write_text(
        urls.read_text()
        + "\nfrom django.db import connection\nfrom django.http import HttpResponse\n\n"
        "def healthz(request):\n"
        "    connection.ensure_connection()\n"
        "    return HttpResponse('ok')\n\n"
        "urlpatterns.append(path('healthz', healthz))\n"
    )
    settings = project / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "ALLOWED_HOSTS = ['*']\n")
    before = files_under(project)
    report = probe(project, "mysite.settings", health_path="/healthz")
    assert report["health"]["status"] == 200
    assert files_under(project) == before
