"""Settings for the Bigfoot app, read from environment variables (see docs/example-app.md).

Production is the default: without DJANGO_DEBUG the app refuses to start unless its secret key,
database and cache are configured. The one exception is `collectstatic`, which runs while the
image is built, when no secret, database or cache exists yet.
"""

import os
import re
import sys
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# `manage.py collectstatic` (or `django-admin collectstatic`) at image build time.
BUILDING_IMAGE = sys.argv[1:2] == ["collectstatic"]

SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use 1/true/yes/on or 0/false/no/off")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None


def env_list(name: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def required(name: str, why: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value and not BUILDING_IMAGE:
        raise ImproperlyConfigured(f"{name} is not set; {why}")
    return value


DEBUG = env_bool("DJANGO_DEBUG", default=False)
SECRET_KEY = required("DJANGO_SECRET_KEY", "set it to a long random string, kept secret")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "sightings",
]

MIDDLEWARE = [
    # First: load balancers probe with the task's IP as Host, which ALLOWED_HOSTS rejects,
    # so /healthz is answered before anything calls request.get_host().
    "bigfoot.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "bigfoot.urls"
WSGI_APPLICATION = "bigfoot.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
    },
]


def database_settings() -> dict[str, Any]:
    """DATABASE_URL, or the DATABASE_* parts (a managed password cannot be put into a URL)."""
    connection: dict[str, Any]
    if os.environ.get("DATABASE_URL"):
        connection = dict(dj_database_url.parse(os.environ["DATABASE_URL"]))
    elif os.environ.get("DATABASE_HOST"):
        connection = {
            "ENGINE": "django.db.backends.postgresql",
            "HOST": os.environ["DATABASE_HOST"],
            "PORT": os.environ.get("DATABASE_PORT", "5432"),
            "NAME": required("DATABASE_NAME", "set it next to DATABASE_HOST"),
            "USER": required("DATABASE_USER", "set it next to DATABASE_HOST"),
            "PASSWORD": os.environ.get("DATABASE_PASSWORD", ""),
        }
    elif BUILDING_IMAGE:
        return {}
    else:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set; set it, or set DATABASE_HOST, DATABASE_NAME, "
            "DATABASE_USER and DATABASE_PASSWORD"
        )
    connection["OPTIONS"] = {
        "sslmode": os.environ.get("DATABASE_SSLMODE", "prefer"),
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5),
        **connection.get("OPTIONS", {}),
    }
    # Persistent connections, checked before reuse after an idle period or a failover.
    connection["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60)
    connection["CONN_HEALTH_CHECKS"] = True
    return connection | rotating_password(connection["ENGINE"])


def rotating_password(engine: str) -> dict[str, str]:
    """With DATABASE_SECRET_ARN, the backend that re-reads a password RDS has rotated (the
    DATABASE_PASSWORD a task got at start stops working for new connections)."""
    arn = os.environ.get("DATABASE_SECRET_ARN", "").strip()
    if not arn:
        return {}
    if not SECRET_ARN.match(arn):
        raise ImproperlyConfigured(
            f"DATABASE_SECRET_ARN={arn!r}: expected a Secrets Manager secret ARN "
            "(arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
        )
    if engine != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_SECRET_ARN works with PostgreSQL only")
    return {"ENGINE": "bigfoot.db.postgresql", "SECRET_ARN": arn}


_database = database_settings()
DATABASES = {"default": _database} if _database else {}


def cache_settings() -> dict[str, Any]:
    """Redis when REDIS_URL is set; process-local memory only for DEBUG and image builds."""
    url = os.environ.get("REDIS_URL", "").strip()
    if url:
        options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
        if os.environ.get("REDIS_PASSWORD"):
            options["password"] = os.environ["REDIS_PASSWORD"]
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "bigfoot",
            "OPTIONS": options,
        }
    if DEBUG or BUILDING_IMAGE:
        return {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    raise ImproperlyConfigured(
        "REDIS_URL is not set; set it (redis:// or rediss://), or set DJANGO_DEBUG=1 to use "
        "a process-local cache"
    )


CACHES = {"default": cache_settings()}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STATIC_URL = os.environ.get("STATIC_URL", "/static/")
STATIC_ROOT = os.environ.get("STATIC_ROOT", "/app/staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Hashed names (bigfoot.3f1c2a9e8b7d.css) may be cached forever; staticfiles.json maps
    # each file to its hashed name and ships inside the image.
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage",
    },
}

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto. The Host header is never taken
# from X-Forwarded-Host.
USE_X_FORWARDED_HOST = False
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 3600)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=True)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stdout"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}
