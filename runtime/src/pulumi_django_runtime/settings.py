"""Django settings from the environment pulumi-django injects, one helper per concern.

Every helper reads `os.environ` (or the mapping it is given) and returns plain settings values;
none of them requires a variable. A helper returns None (or an empty dict) when its variables
are absent, so the caller keeps its own value: that is how `configure()` leaves a developer's
`runserver` alone and how `collectstatic` runs at image build time with no secret, database or
cache. A variable that is set but unusable raises `ImproperlyConfigured` with one line naming it.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from pulumi_django_runtime.db.iam import REGION as AWS_REGION
from pulumi_django_runtime.db.iam import TLS_SSL_MODES

Environ = Mapping[str, str]

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off", ""})
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$")

POSTGRESQL_ENGINE = "django.db.backends.postgresql"
ROTATING_POSTGRESQL_ENGINE = "pulumi_django_runtime.db.postgresql"
IAM_POSTGRESQL_ENGINE = "pulumi_django_runtime.db.postgresql_iam"
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
FILE_SYSTEM_STORAGE = "django.core.files.storage.FileSystemStorage"
HASHED_STATIC_STORAGE = "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
S3_MEDIA_STORAGE = "pulumi_django_runtime.storage.MediaStorage"
# Django's own STORAGES, for a settings module that names none.
DEFAULT_STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": FILE_SYSTEM_STORAGE},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
MEDIA_ACCESS_CHOICES = ("public", "private")
DEFAULT_MEDIA_URL = "/media/"
DEFAULT_MEDIA_LOCATION = "media"
DEFAULT_MEDIA_URL_EXPIRY_SECONDS = 3600
DEFAULT_HSTS_SECONDS = 3600
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _environ(environ: Environ | None) -> Environ:
    return os.environ if environ is None else environ


def env_str(name: str, environ: Environ | None = None) -> str | None:
    """The variable's value with surrounding blanks removed; None when unset or blank."""
    value = _environ(environ).get(name, "").strip()
    return value or None


def env_bool(name: str, default: bool, environ: Environ | None = None) -> bool:
    """`1/true/yes/on` or `0/false/no/off` (any case); `default` when unset."""
    raw = _environ(environ).get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r}: use 1/true/yes/on or 0/false/no/off")


def env_int(name: str, default: int, environ: Environ | None = None) -> int:
    """A whole number; `default` when unset or blank."""
    raw = env_str(name, environ)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r}: expected a whole number") from None


def env_list(name: str, environ: Environ | None = None) -> list[str] | None:
    """A comma list, blanks dropped; None when the variable is unset (an empty list when it is
    set to nothing, which for DJANGO_ALLOWED_HOSTS means: no host at all)."""
    raw = _environ(environ).get(name)
    if raw is None:
        return None
    return [item.strip() for item in raw.split(",") if item.strip()]


def is_deployment(environ: Environ | None = None) -> bool:
    """True in every place the stack runs the app (AWS, local Docker, the rehearsal): they all
    inject DJANGO_SECRET_KEY, and nothing else does (not the image build, not `runserver`)."""
    return env_str("DJANGO_SECRET_KEY", environ) is not None


def debug_setting(environ: Environ | None = None) -> bool | None:
    """DJANGO_DEBUG when set; False in a deployment without it; otherwise None (keep yours)."""
    if "DJANGO_DEBUG" in _environ(environ):
        return env_bool("DJANGO_DEBUG", False, environ)
    return False if is_deployment(environ) else None


def database_settings(environ: Environ | None = None) -> dict[str, Any]:
    """DATABASES['default'] from DATABASE_URL, or from DATABASE_HOST/PORT/NAME/USER/PASSWORD
    (the form AWS uses: a managed password cannot be put into a URL); {} when neither is set.

    PostgreSQL gets DATABASE_SSLMODE (default `prefer`; a `sslmode` in the URL wins) and
    DATABASE_CONNECT_TIMEOUT (5 s). Every engine gets persistent connections
    (DATABASE_CONN_MAX_AGE, 60 s; use 0 under ASGI) checked before reuse. With
    DATABASE_SECRET_ARN the engine becomes the backend that follows RDS password rotation; with
    DATABASE_IAM_REGION, the backend that logs in with RDS IAM tokens (TLS required)."""
    env = _environ(environ)
    url, host = env_str("DATABASE_URL", env), env_str("DATABASE_HOST", env)
    connection: dict[str, Any]
    if url:
        try:
            connection = dict(dj_database_url.parse(url))
        except ValueError as error:
            raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {error}") from None
    elif host:
        connection = {
            "ENGINE": POSTGRESQL_ENGINE,
            "HOST": host,
            "PORT": env_str("DATABASE_PORT", env) or "5432",
            "NAME": _required_with("DATABASE_NAME", "DATABASE_HOST", env),
            "USER": _required_with("DATABASE_USER", "DATABASE_HOST", env),
            "PASSWORD": env.get("DATABASE_PASSWORD", ""),
        }
    elif env_str("DATABASE_SECRET_ARN", env):
        raise ImproperlyConfigured(
            "DATABASE_SECRET_ARN is set without DATABASE_HOST or DATABASE_URL; set one of them"
        )
    else:
        return {}
    if connection["ENGINE"] == POSTGRESQL_ENGINE:
        connection["OPTIONS"] = {
            "sslmode": env_str("DATABASE_SSLMODE", env) or "prefer",
            "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", 5, env),
            **connection.get("OPTIONS", {}),
        }
    # Persistent connections, checked before reuse after an idle period or a failover.
    connection["CONN_MAX_AGE"] = env_int("DATABASE_CONN_MAX_AGE", 60, env)
    connection["CONN_HEALTH_CHECKS"] = True
    return (
        connection
        | rotating_password(connection["ENGINE"], env)
        | iam_authentication(connection, env)
    )


def _required_with(name: str, companion: str, environ: Environ) -> str:
    value = env_str(name, environ)
    if value is None:
        raise ImproperlyConfigured(f"{name} is not set; set it next to {companion}")
    return value


def rotating_password(engine: str, environ: Environ | None = None) -> dict[str, str]:
    """With DATABASE_SECRET_ARN: the ENGINE and SECRET_ARN of the backend that re-reads a
    password RDS has rotated (the DATABASE_PASSWORD a task got at start stops working for new
    connections); {} without it."""
    arn = env_str("DATABASE_SECRET_ARN", environ)
    if arn is None:
        return {}
    if not SECRET_ARN.match(arn):
        raise ImproperlyConfigured(
            f"DATABASE_SECRET_ARN={arn!r}: expected a Secrets Manager secret ARN "
            "(arn:aws:secretsmanager:<region>:<account>:secret:<name>)"
        )
    if engine != POSTGRESQL_ENGINE:
        raise ImproperlyConfigured(
            f"DATABASE_SECRET_ARN works with PostgreSQL only (the database engine is {engine})"
        )
    return {"ENGINE": ROTATING_POSTGRESQL_ENGINE, "SECRET_ARN": arn}


def iam_authentication(
    connection: dict[str, Any], environ: Environ | None = None
) -> dict[str, Any]:
    """With DATABASE_IAM_REGION: the ENGINE and IAM_REGION of the backend that logs in with an
    RDS IAM token per new connection, and an sslmode that never sends one in plain text
    (`require` unless DATABASE_SSLMODE names a stricter one); {} without it."""
    region = env_str("DATABASE_IAM_REGION", environ)
    if region is None:
        return {}
    if not AWS_REGION.match(region):
        raise ImproperlyConfigured(
            f"DATABASE_IAM_REGION={region!r}: expected the RDS instance's region, e.g. eu-west-1"
        )
    if env_str("DATABASE_SECRET_ARN", environ) is not None:
        raise ImproperlyConfigured(
            "DATABASE_IAM_REGION and DATABASE_SECRET_ARN are both set: the app logs in with IAM "
            "tokens or with the secret's password; unset one"
        )
    if connection["ENGINE"] != POSTGRESQL_ENGINE:
        raise ImproperlyConfigured(
            "DATABASE_IAM_REGION works with PostgreSQL only "
            f"(the database engine is {connection['ENGINE']})"
        )
    options = dict(connection.get("OPTIONS", {}))
    if env_str("DATABASE_SSLMODE", environ) is None and options.get("sslmode") == "prefer":
        options["sslmode"] = "require"
    if options.get("sslmode") not in TLS_SSL_MODES:
        raise ImproperlyConfigured(
            f"DATABASE_SSLMODE={options.get('sslmode')!r}: RDS accepts IAM tokens over TLS only; "
            f"use one of {', '.join(sorted(TLS_SSL_MODES))}"
        )
    return {"ENGINE": IAM_POSTGRESQL_ENGINE, "IAM_REGION": region, "OPTIONS": options}


def cache_settings(environ: Environ | None = None) -> dict[str, Any]:
    """CACHES['default']: Django's RedisCache at REDIS_URL (`redis://`, or `rediss://` for TLS),
    with REDIS_PASSWORD as the AUTH token and 2-second socket timeouts; {} without REDIS_URL."""
    url = env_str("REDIS_URL", environ)
    if url is None:
        return {}
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(f"REDIS_URL={url!r}: expected redis://, rediss:// or unix://")
    options: dict[str, Any] = {"socket_connect_timeout": 2, "socket_timeout": 2}
    password = env_str("REDIS_PASSWORD", environ)
    if password:
        options["password"] = password
    return {"BACKEND": REDIS_CACHE, "LOCATION": url, "OPTIONS": options}


def static_settings(environ: Environ | None = None) -> dict[str, Any]:
    """STATIC_URL from STATIC_URL and STATIC_ROOT from STATIC_ROOT, each when set."""
    values: dict[str, Any] = {}
    url, root = env_str("STATIC_URL", environ), env_str("STATIC_ROOT", environ)
    if url is not None:
        values["STATIC_URL"] = _with_slash("STATIC_URL", url)
    if root is not None:
        values["STATIC_ROOT"] = root
    return values


def _with_slash(name: str, url: str) -> str:
    if not url.endswith("/"):
        raise ImproperlyConfigured(f"{name}={url!r}: a URL prefix must end with '/'")
    return url


def is_hashed_static_storage(backend: str) -> bool:
    """The storage names files by content hash and writes a manifest (Django's
    ManifestStaticFilesStorage, WhiteNoise's CompressedManifestStaticFilesStorage,
    django-storages' S3ManifestStaticStorage...), so old and new releases' files can be served
    side by side. A backend that cannot be imported
    while the settings load (not installed, or its module reads settings) counts as hashed: it
    is the user's choice, and Django reports any error itself when it loads the storage."""
    from django.contrib.staticfiles.storage import ManifestFilesMixin
    from django.utils.module_loading import import_string

    try:
        storage_class = import_string(backend)
    except Exception:
        return True
    return isinstance(storage_class, type) and issubclass(storage_class, ManifestFilesMixin)


def media_settings(environ: Environ | None = None) -> dict[str, Any]:
    """MEDIA_URL (when set; `/media/`, where the stack serves uploads, when only MEDIA_ROOT or
    MEDIA_BUCKET is) and, for local Docker and the rehearsal, MEDIA_ROOT (when set and
    MEDIA_BUCKET is not: uploads then go to S3, and no local directory is used)."""
    values: dict[str, Any] = {}
    url = env_str("MEDIA_URL", environ)
    root, bucket = env_str("MEDIA_ROOT", environ), env_str("MEDIA_BUCKET", environ)
    if url is not None:
        values["MEDIA_URL"] = _with_slash("MEDIA_URL", url)
    elif root is not None or bucket is not None:
        values["MEDIA_URL"] = DEFAULT_MEDIA_URL  # where the stack's proxy serves uploads
    if root is not None and bucket is None:
        values["MEDIA_ROOT"] = root
    return values


def media_storage(environ: Environ | None = None) -> dict[str, Any]:
    """STORAGES['default'] (uploads): the S3 bucket MEDIA_BUCKET through django-storages, or
    Django's FileSystemStorage at MEDIA_ROOT; {} when neither is set.

    S3: keys under MEDIA_LOCATION (default `media`, so the CloudFront path /media/x is the key
    media/x), region MEDIA_REGION (default: the SDK's, AWS_REGION on ECS). MEDIA_ACCESS
    `private` (the default) gives pre-signed URLs that expire after MEDIA_URL_EXPIRY_SECONDS
    (3600); `public` gives MEDIA_URL + name, served by the site's CloudFront distribution.
    Uploads never overwrite an existing file (Django's own behaviour; S3Storage's default
    would overwrite)."""
    env = _environ(environ)
    bucket = env_str("MEDIA_BUCKET", env)
    if bucket is None:
        root = env_str("MEDIA_ROOT", env)
        return {"BACKEND": FILE_SYSTEM_STORAGE, "OPTIONS": {"location": root}} if root else {}
    if importlib.util.find_spec("storages") is None:
        raise ImproperlyConfigured(
            "MEDIA_BUCKET is set but django-storages is not installed; "
            "install pulumi-django-runtime[aws]"
        )
    access = (env_str("MEDIA_ACCESS", env) or "private").lower()
    if access not in MEDIA_ACCESS_CHOICES:
        raise ImproperlyConfigured(
            f"MEDIA_ACCESS={env['MEDIA_ACCESS']!r}: use {' or '.join(MEDIA_ACCESS_CHOICES)}"
        )
    location = (env_str("MEDIA_LOCATION", env) or DEFAULT_MEDIA_LOCATION).strip("/")
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": location,
        "file_overwrite": False,
        # The bucket's own policy decides (no ACLs: the stack's bucket has them disabled).
        "default_acl": None,
        # Pre-signed URLs with Signature Version 4, which every region accepts.
        "signature_version": "s3v4",
    }
    region = env_str("MEDIA_REGION", env)
    if region:
        options["region_name"] = region
    if access == "public":
        media_url = _with_slash("MEDIA_URL", env_str("MEDIA_URL", env) or DEFAULT_MEDIA_URL)
        options |= {"querystring_auth": False, "public_url": media_url}
    else:
        expiry = env_int("MEDIA_URL_EXPIRY_SECONDS", DEFAULT_MEDIA_URL_EXPIRY_SECONDS, env)
        if expiry <= 0:
            raise ImproperlyConfigured(
                f"MEDIA_URL_EXPIRY_SECONDS={expiry}: expected a number of seconds above 0"
            )
        options |= {"querystring_auth": True, "querystring_expire": expiry}
    return {"BACKEND": S3_MEDIA_STORAGE, "OPTIONS": options}


def storages_settings(
    current: Mapping[str, Any] | None = None, environ: Environ | None = None
) -> dict[str, Any]:
    """STORAGES: `current` (yours; Django's defaults when None) with the deployment's parts.

    `staticfiles` becomes ManifestStaticFilesStorage when STATIC_ROOT is set (the image and
    every deployment set it; a developer's test run does not, so `{% static %}` works there
    without a manifest), unless yours already hashes names. `default` becomes the media
    storage of `media_storage()` when MEDIA_BUCKET or MEDIA_ROOT is set."""
    storages = {alias: dict(spec) for alias, spec in (current or DEFAULT_STORAGES).items()}
    for alias, default in DEFAULT_STORAGES.items():
        storages.setdefault(alias, dict(default))
    if env_str("STATIC_ROOT", environ) is not None:
        static_backend = storages["staticfiles"].get("BACKEND", "")
        if not is_hashed_static_storage(static_backend):
            storages["staticfiles"] = {"BACKEND": HASHED_STATIC_STORAGE}
    media = media_storage(environ)
    if media:
        storages["default"] = media
    return storages


def security_settings(debug: bool, environ: Environ | None = None) -> dict[str, Any]:
    """Behind the stack's TLS-terminating proxy (which sets X-Forwarded-Proto): trust that
    header, never take the Host from X-Forwarded-Host, mark cookies Secure
    (DJANGO_SECURE_COOKIES, default on; `0` only for a site served over plain HTTP, as the
    rehearsal is) and send HSTS (DJANGO_HSTS_SECONDS, default 3600). Nothing when `debug`."""
    if debug:
        return {}
    secure_cookies = env_bool("DJANGO_SECURE_COOKIES", True, environ)
    return {
        "SECURE_PROXY_SSL_HEADER": ("HTTP_X_FORWARDED_PROTO", "https"),
        "USE_X_FORWARDED_HOST": False,
        "SESSION_COOKIE_SECURE": secure_cookies,
        "CSRF_COOKIE_SECURE": secure_cookies,
        "SECURE_HSTS_SECONDS": env_int("DJANGO_HSTS_SECONDS", DEFAULT_HSTS_SECONDS, environ),
    }


def logging_settings(environ: Environ | None = None) -> dict[str, Any]:
    """LOGGING: every record at DJANGO_LOG_LEVEL (default INFO) and above to stdout, where the
    container's log driver (CloudWatch on AWS, `docker logs` locally) collects it. Django's own
    loggers keep their handlers (`disable_existing_loggers` is off)."""
    level = (env_str("DJANGO_LOG_LEVEL", environ) or "INFO").upper()
    if level not in LOG_LEVELS:
        raise ImproperlyConfigured(
            f"DJANGO_LOG_LEVEL={level!r}: use one of {', '.join(LOG_LEVELS)}"
        )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stdout",
                "formatter": "plain",
            },
        },
        "root": {"handlers": ["stdout"], "level": level},
    }
