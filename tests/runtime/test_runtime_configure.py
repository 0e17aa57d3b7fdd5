"""configure() on the settings of a stock `django-admin startproject`: what the deployment's
environment replaces, what it leaves alone, and the one-line errors for unusable values."""

from __future__ import annotations

import copy
import importlib.metadata
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from runtime_projects import start_project, stock_settings

import pulumi_django_runtime
from pulumi_django_runtime import HEALTH_MIDDLEWARE, configure
from pulumi_django_runtime.settings import database_settings, media_storage, storages_settings

KIT = "pulumi-django-runtime"
SECRET_ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-1234-AbCdEf"
# What the AWS stack injects (src/pulumi_django/rendering/container_definitions.py), plus the
# STATIC_ROOT the image sets.
AWS = {
    "DJANGO_SECRET_KEY": "from-secrets-manager",
    "DJANGO_ALLOWED_HOSTS": "shop.example",
    "DJANGO_CSRF_TRUSTED_ORIGINS": "https://shop.example",
    "STATIC_URL": "https://shop.example/static/r42/",
    "STATIC_ROOT": "/app/staticfiles",
    "DATABASE_HOST": "db.internal",
    "DATABASE_PORT": "5432",
    "DATABASE_NAME": "shop",
    "DATABASE_USER": "django",
    "DATABASE_PASSWORD": "p@ss:w/rd?#",
    "DATABASE_SSLMODE": "require",
    "DATABASE_SECRET_ARN": SECRET_ARN,
    "REDIS_URL": "rediss://cache.internal:6379/0",
    "REDIS_PASSWORD": "auth-token",
    "MEDIA_URL": "/media/",
    "MEDIA_BUCKET": "shop-media",
    "MEDIA_REGION": "eu-west-1",
}
DEPLOYMENT_OWNED = {
    "SECRET_KEY",
    "DEBUG",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASES",
    "CACHES",
    "STATIC_URL",
    "STATIC_ROOT",
    "MEDIA_URL",
    "MEDIA_ROOT",
    "STORAGES",
    "MIDDLEWARE",
    "INSTALLED_APPS",  # django.contrib.postgres added, the user's apps as they are
    "LOGGING",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS",
}


@pytest.fixture(scope="module")
def stock(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return stock_settings(start_project(tmp_path_factory.mktemp("stock")))


def configured(settings: dict[str, Any], **environ: str) -> dict[str, Any]:
    result = copy.deepcopy(settings)
    configure(result, environ)
    return result


def changed(before: dict[str, Any], after: dict[str, Any]) -> set[str]:
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def test_without_the_deployment_only_the_health_middleware_is_added(
    stock: dict[str, Any],
) -> None:
    """`runserver` on a laptop, `manage.py test`: the user's SQLite, DEBUG and key stay."""
    local = configured(stock)
    assert changed(stock, local) == {"MIDDLEWARE"}
    assert local["MIDDLEWARE"] == [HEALTH_MIDDLEWARE, *stock["MIDDLEWARE"]]
    assert local["DATABASES"]["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert local["DEBUG"] is True


def test_on_aws_the_deployment_owns_its_settings_and_nothing_else(stock: dict[str, Any]) -> None:
    deployed = configured(stock, **AWS)
    assert changed(stock, deployed) <= DEPLOYMENT_OWNED
    for untouched in ("TEMPLATES", "ROOT_URLCONF", "AUTH_PASSWORD_VALIDATORS"):
        assert deployed[untouched] == stock[untouched]
    assert deployed["MIDDLEWARE"][1:] == stock["MIDDLEWARE"]
    assert deployed["INSTALLED_APPS"] == [*stock["INSTALLED_APPS"], "django.contrib.postgres"]

    assert deployed["SECRET_KEY"] == "from-secrets-manager"
    assert deployed["DEBUG"] is False  # startproject's DEBUG = True never reaches production
    assert deployed["ALLOWED_HOSTS"] == ["shop.example"]
    assert deployed["CSRF_TRUSTED_ORIGINS"] == ["https://shop.example"]
    database = deployed["DATABASES"]["default"]
    assert database["ENGINE"] == "pulumi_django_runtime.db.postgresql"
    assert (database["HOST"], database["NAME"], database["USER"]) == (
        "db.internal",
        "shop",
        "django",
    )
    assert database["PASSWORD"] == "p@ss:w/rd?#"
    assert database["SECRET_ARN"] == SECRET_ARN
    assert database["OPTIONS"]["sslmode"] == "require"
    cache = deployed["CACHES"]["default"]
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    assert (cache["LOCATION"], cache["OPTIONS"]["password"]) == (AWS["REDIS_URL"], "auth-token")
    assert deployed["STATIC_URL"] == AWS["STATIC_URL"]
    assert deployed["STATIC_ROOT"] == "/app/staticfiles"
    assert deployed["STORAGES"]["staticfiles"]["BACKEND"].endswith("ManifestStaticFilesStorage")
    assert (
        deployed["STORAGES"]["default"]["BACKEND"] == "pulumi_django_runtime.storage.MediaStorage"
    )
    assert deployed["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")
    assert deployed["SESSION_COOKIE_SECURE"] is deployed["CSRF_COOKIE_SECURE"] is True
    assert deployed["SECURE_HSTS_SECONDS"] > 0
    assert deployed["LOGGING"]["handlers"]["stdout"]["stream"] == "ext://sys.stdout"


def test_configure_is_idempotent(stock: dict[str, Any]) -> None:
    for environ in ({}, AWS):
        once = configured(stock, **environ)
        assert configured(once, **environ) == once
    assert configured(stock, **AWS)["MIDDLEWARE"].count(HEALTH_MIDDLEWARE) == 1


def test_each_setting_changes_only_when_its_variables_are_set(stock: dict[str, Any]) -> None:
    assert changed(stock, configured(stock, DATABASE_URL="postgres://u:p@db/app")) == {
        "DATABASES",
        "INSTALLED_APPS",
        "MIDDLEWARE",
    }
    assert changed(stock, configured(stock, REDIS_URL="redis://cache:6379/0")) == {
        "CACHES",
        "MIDDLEWARE",
    }
    assert changed(stock, configured(stock, DJANGO_ALLOWED_HOSTS="a.example")) == {
        "ALLOWED_HOSTS",
        "MIDDLEWARE",
    }
    # The image build: STATIC_ROOT only, and no secret, database or cache.
    building = configured(stock, STATIC_ROOT="/app/staticfiles")
    assert changed(stock, building) == {"STATIC_ROOT", "STORAGES", "MIDDLEWARE"}


def test_the_users_other_database_and_cache_keys_survive(stock: dict[str, Any]) -> None:
    own = copy.deepcopy(stock)
    own["DATABASES"]["default"]["ATOMIC_REQUESTS"] = True
    own["DATABASES"]["reports"] = {"ENGINE": "django.db.backends.sqlite3", "NAME": "r.db"}
    own["CACHES"] = {"default": {"BACKEND": "x.Cache", "KEY_PREFIX": "shop", "TIMEOUT": 60}}
    deployed = configured(own, **AWS)
    assert deployed["DATABASES"]["default"]["ATOMIC_REQUESTS"] is True
    assert deployed["DATABASES"]["reports"] == own["DATABASES"]["reports"]
    assert "sqlite" not in str(deployed["DATABASES"]["default"])
    cache = deployed["CACHES"]["default"]
    assert (cache["KEY_PREFIX"], cache["TIMEOUT"]) == ("shop", 60)
    assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


def test_the_users_own_postgresql_options_survive_under_the_deployments(
    stock: dict[str, Any],
) -> None:
    own = copy.deepcopy(stock)
    own["DATABASES"]["default"] = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "shop",
        "OPTIONS": {"options": "-c search_path=shop", "sslmode": "disable"},
    }
    options = configured(own, **AWS)["DATABASES"]["default"]["OPTIONS"]
    assert options["options"] == "-c search_path=shop"
    assert options["sslmode"] == "require"
    # A SQLite project's options mean nothing to PostgreSQL and are dropped.
    sqlite_options = configured(
        stock
        | {
            "DATABASES": {
                "default": {
                    "ENGINE": "django.db.backends.sqlite3",
                    "NAME": "x",
                    "OPTIONS": {"timeout": 20},
                }
            }
        },
        **AWS,
    )
    assert "timeout" not in sqlite_options["DATABASES"]["default"]["OPTIONS"]


def test_postgresql_brings_django_contrib_postgres_once(stock: dict[str, Any]) -> None:
    deployed = configured(stock, **AWS)
    assert deployed["INSTALLED_APPS"].count("django.contrib.postgres") == 1
    assert configured(deployed, **AWS)["INSTALLED_APPS"] == deployed["INSTALLED_APPS"]
    assert "django.contrib.postgres" not in configured(stock)["INSTALLED_APPS"]
    postgis = configured(stock, DATABASE_URL="postgis://u:p@db/app")
    assert postgis["DATABASES"]["default"]["ENGINE"] == "django.contrib.gis.db.backends.postgis"
    assert "django.contrib.postgres" in postgis["INSTALLED_APPS"]


def test_debug_from_the_environment_drops_the_https_only_settings(stock: dict[str, Any]) -> None:
    debugging = configured(stock, **AWS, DJANGO_DEBUG="yes")
    assert debugging["DEBUG"] is True
    assert "SECURE_PROXY_SSL_HEADER" not in debugging
    assert "SESSION_COOKIE_SECURE" not in debugging
    assert configured(stock, DJANGO_DEBUG="off")["DEBUG"] is False


def test_cookie_and_hsts_variables_win_and_otherwise_the_users_values_stay(
    stock: dict[str, Any],
) -> None:
    own = {**stock, "SECURE_HSTS_SECONDS": 31536000, "SESSION_COOKIE_SECURE": False}
    kept = configured(own, **AWS)
    assert (kept["SECURE_HSTS_SECONDS"], kept["SESSION_COOKIE_SECURE"]) == (31536000, False)
    plain_http = configured(own, **AWS, DJANGO_SECURE_COOKIES="0", DJANGO_HSTS_SECONDS="0")
    assert plain_http["CSRF_COOKIE_SECURE"] is False
    assert plain_http["SECURE_HSTS_SECONDS"] == 0


def test_the_users_logging_stays(stock: dict[str, Any]) -> None:
    own = {**stock, "LOGGING": {"version": 1, "root": {"level": "WARNING"}}}
    assert configured(own, **AWS)["LOGGING"] == own["LOGGING"]
    assert configured(stock, **AWS, DJANGO_LOG_LEVEL="debug")["LOGGING"]["root"]["level"] == (
        "DEBUG"
    )


def test_the_health_middleware_moves_first_when_listed_elsewhere(stock: dict[str, Any]) -> None:
    own = {**stock, "MIDDLEWARE": (*stock["MIDDLEWARE"][:2], HEALTH_MIDDLEWARE)}
    assert configured(own)["MIDDLEWARE"] == [HEALTH_MIDDLEWARE, *stock["MIDDLEWARE"][:2]]


@pytest.mark.parametrize(
    ("backend", "kept"),
    [
        ("storages.backends.s3.S3ManifestStaticStorage", True),
        ("django.contrib.staticfiles.storage.ManifestStaticFilesStorage", True),
        ("django.contrib.staticfiles.storage.StaticFilesStorage", False),
        ("storages.backends.s3.S3StaticStorage", False),
    ],
)
def test_a_hashed_static_storage_of_the_users_is_kept(backend: str, kept: bool) -> None:
    storages = storages_settings(
        {"staticfiles": {"BACKEND": backend}}, {"STATIC_ROOT": "/app/staticfiles"}
    )
    expected = backend if kept else "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
    assert storages["staticfiles"]["BACKEND"] == expected


def test_django_42s_storage_settings_are_folded_into_storages(stock: dict[str, Any]) -> None:
    legacy = {
        **stock,
        "STATICFILES_STORAGE": "django.contrib.staticfiles.storage.StaticFilesStorage",
    }
    deployed = configured(legacy, STATIC_ROOT="/app/staticfiles", MEDIA_ROOT="/srv/media")
    assert "STATICFILES_STORAGE" not in deployed
    assert deployed["STORAGES"]["staticfiles"]["BACKEND"].endswith("ManifestStaticFilesStorage")


def test_media_on_the_local_filesystem() -> None:
    assert media_storage({"MEDIA_ROOT": "/srv/media"}) == {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": "/srv/media"},
    }
    assert media_storage({}) == {}


def test_media_on_s3_is_private_with_expiring_urls_unless_public() -> None:
    private = media_storage({"MEDIA_BUCKET": "b", "MEDIA_URL_EXPIRY_SECONDS": "600"})["OPTIONS"]
    assert private["bucket_name"] == "b"
    assert private["location"] == "media"
    assert (private["querystring_auth"], private["querystring_expire"]) == (True, 600)
    assert private["file_overwrite"] is False
    assert "public_url" not in private
    public = media_storage(
        {"MEDIA_BUCKET": "b", "MEDIA_ACCESS": "public", "MEDIA_LOCATION": "/uploads/"}
    )["OPTIONS"]
    assert (public["querystring_auth"], public["public_url"]) == (False, "/media/")
    assert public["location"] == "uploads"
    # MEDIA_ROOT is for local Docker and the rehearsal; with a bucket it is not used.
    assert "MEDIA_ROOT" not in configured({}, MEDIA_BUCKET="b", MEDIA_ROOT="/srv/media")


def test_database_options_that_only_postgresql_understands_stay_off_other_engines() -> None:
    sqlite = database_settings({"DATABASE_URL": "sqlite:////tmp/app.db"})
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    assert "sslmode" not in sqlite.get("OPTIONS", {})
    postgres = database_settings({"DATABASE_URL": "postgres://u:p@db/app?sslmode=verify-full"})
    assert postgres["OPTIONS"]["sslmode"] == "verify-full"  # the URL's own sslmode wins
    assert postgres["CONN_HEALTH_CHECKS"] is True


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG='maybe': use 1/true/yes/on or 0/false/no/off"),
        ({"DATABASE_HOST": "db"}, "DATABASE_NAME is not set; set it next to DATABASE_HOST"),
        (
            {"DATABASE_URL": "postgres://db/app", "DATABASE_CONN_MAX_AGE": "1m"},
            "DATABASE_CONN_MAX_AGE='1m': expected a whole number",
        ),
        (
            {"DATABASE_URL": "postgres://db/app", "DATABASE_SECRET_ARN": "rds!db-1"},
            "DATABASE_SECRET_ARN='rds!db-1': expected a Secrets Manager secret ARN",
        ),
        (
            {"DATABASE_URL": "sqlite:////tmp/a.db", "DATABASE_SECRET_ARN": SECRET_ARN},
            "DATABASE_SECRET_ARN works with PostgreSQL only",
        ),
        ({"DATABASE_SECRET_ARN": SECRET_ARN}, "DATABASE_SECRET_ARN is set without DATABASE_HOST"),
        ({"REDIS_URL": "cache:6379"}, "REDIS_URL='cache:6379': expected redis://"),
        ({"STATIC_URL": "/static"}, "STATIC_URL='/static': a URL prefix must end with '/'"),
        ({"MEDIA_BUCKET": "b", "MEDIA_ACCESS": "open"}, "MEDIA_ACCESS='open': use public or"),
        (
            {"MEDIA_BUCKET": "b", "MEDIA_URL_EXPIRY_SECONDS": "0"},
            "MEDIA_URL_EXPIRY_SECONDS=0: expected a number of seconds above 0",
        ),
        ({"DJANGO_SECRET_KEY": "k", "DJANGO_LOG_LEVEL": "loud"}, "DJANGO_LOG_LEVEL='LOUD': use"),
    ],
)
def test_an_unusable_value_is_one_line_naming_the_variable(
    stock: dict[str, Any], environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        configured(stock, **environ)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_the_kit_imports_without_boto3_or_django_storages(tmp_path: Path) -> None:
    """The app image of a project that is not on AWS installs the kit without the [aws] extra;
    asking for S3 media there says what to install."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\nfor name in ('boto3', 'botocore', 'storages'):\n    sys.modules[name] = None\n"
    )
    code = (
        "import pulumi_django_runtime.health, pulumi_django_runtime.db.postgresql.base\n"
        "from pulumi_django_runtime import configure\n"
        "s = {}\n"
        "configure(s, {'DJANGO_SECRET_KEY': 'k', 'MEDIA_ROOT': '/srv/media'})\n"
        "print(s['STORAGES']['default']['BACKEND'])\n"
        "configure(s, {'MEDIA_BUCKET': 'b'})\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "django.core.files.storage.FileSystemStorage", result.stderr
    assert result.stderr.rstrip().endswith(
        "ImproperlyConfigured: MEDIA_BUCKET is set but django-storages is not installed; "
        "install pulumi-django-runtime[aws]"
    )


def test_the_kit_never_depends_on_pulumi() -> None:
    """The app image installs the kit: pulumi and pulumi-aws must never come with it."""
    requirements = [Requirement(line) for line in importlib.metadata.requires(KIT) or []]
    assert {"django", "dj-database-url"} <= {canonicalize_name(r.name) for r in requirements}
    assert not [r for r in requirements if canonicalize_name(r.name).startswith("pulumi")]
    assert importlib.metadata.version(KIT) == pulumi_django_runtime.__version__
