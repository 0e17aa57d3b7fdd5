"""The Notebook app on a real PostgreSQL and Redis under its production settings, and its image
recipe: the shape of a `django-admin startproject` app adapted only by the documented steps."""

import re
import sys
from pathlib import Path

import pytest
import yaml
from notebook_testing import APP_DIR, PRODUCTION_SETTINGS, clean_environment, collect_static, run
from shared_files import made_once

from pulumi_django.cli.rehearsal.servers import Postgres, Redis

SITE_HOST = "notebook.example.test"
STACKS = ("dev", "local")


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """`collectstatic` as the image build runs it: its STATIC_ROOT and manifest, collected
    once for the session's workers."""

    def make(directory: Path) -> tuple[Path, dict[str, str]]:
        return directory / "static", collect_static(directory / "static")

    return made_once(tmp_path_factory, "notebook-collected", make)


@pytest.mark.slow
def test_django_suite_passes_against_real_postgresql_and_redis(
    servers: tuple[Postgres, Redis],
    database_url: str,
    tmp_path: Path,
    collected: tuple[Path, dict[str, str]],
) -> None:
    static_root, _ = collected
    env = clean_environment(
        DJANGO_SECRET_KEY="notebook-tests-only",  # noqa: S106
        DJANGO_ALLOWED_HOSTS=SITE_HOST,
        DATABASE_URL=database_url,
        REDIS_URL=servers[1].url(),
        STATIC_ROOT=str(static_root),
        MEDIA_ROOT=str(tmp_path / "media"),
    )
    result = run([sys.executable, "manage.py", "test", "journal", "--noinput", "-v", "2"], env)
    assert result.returncode == 0, result.stderr
    database = database_url.rsplit("/", 1)[1]
    assert f"Creating test database for alias 'default' ('test_{database}')" in result.stderr
    ran = re.search(r"^Ran (\d+) tests?", result.stderr, re.MULTILINE)
    assert ran is not None and int(ran.group(1)) >= 8, result.stderr
    assert re.search(r"^OK$", result.stderr, re.MULTILINE), result.stderr


def test_the_image_build_collects_hashed_static_files_with_no_secret_or_database(
    collected: tuple[Path, dict[str, str]],
) -> None:
    """What the Dockerfile's collectstatic does: production settings, nothing else set."""
    _, manifest = collected
    for name in ("journal/notebook.css", "journal/notebook.js", "journal/notebook.svg"):
        assert re.fullmatch(r"journal/notebook\.[0-9a-f]{12}\.\w+", manifest[name]), name
    assert "admin/css/base.css" in manifest
    assert not (APP_DIR / "db.sqlite3").exists()


def test_the_dockerfile_runs_what_the_stacks_deploy() -> None:
    dockerfile = (APP_DIR / "Dockerfile").read_text()
    assert f"DJANGO_SETTINGS_MODULE={PRODUCTION_SETTINGS}" in dockerfile
    assert 'CMD ["uvicorn", "notebook.asgi:application"' in dockerfile
    assert "USER 10001:10001" in dockerfile
    assert 'VOLUME ["/tmp"]' in dockerfile
    for stack in STACKS:
        config = yaml.safe_load((APP_DIR / f"Pulumi.{stack}.yaml").read_text())["config"]
        app = config["django:app"]
        assert (app["context"], app["server"]) == (".", "uvicorn"), stack
        assert app["settingsModule"] == PRODUCTION_SETTINGS, stack
        assert app["asgiApp"] == "notebook.asgi:application", stack


def test_the_image_leaves_out_tests_releases_and_the_pulumi_project() -> None:
    ignored = (APP_DIR / ".dockerignore").read_text().splitlines()
    for entry in ("tests/", "releases/", "Pulumi.*.yaml", "__main__.py", "media/"):
        assert entry in ignored, entry


def test_the_production_settings_end_with_the_documented_kit_lines() -> None:
    settings = (APP_DIR / "notebook/settings/production.py").read_text().strip().splitlines()
    assert settings[-1] == "pulumi_django_runtime.configure(globals())"
    assert "import pulumi_django_runtime" in settings
