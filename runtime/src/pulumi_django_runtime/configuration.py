"""`configure(globals())`: the deployment's settings laid over a user's settings module.

The rule: a setting the deployment owns is replaced only when the environment provides it;
every other setting, and every deployment setting whose variables are absent, stays as the
settings module wrote it. The unconditional changes are the health middleware and, in a forked
process, database connections of its own (`forking.py`). See the table in runtime/README.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from typing import Any

from pulumi_django_runtime.forking import forget_connections_in_forked_children
from pulumi_django_runtime.settings import (
    DEFAULT_STORAGES,
    Environ,
    cache_settings,
    database_settings,
    debug_setting,
    env_list,
    env_str,
    is_deployment,
    logging_settings,
    media_settings,
    security_settings,
    static_settings,
    storages_settings,
)

HEALTH_MIDDLEWARE = "pulumi_django_runtime.health.HealthCheckMiddleware"
POSTGRES_APP = "django.contrib.postgres"

# What a database URL or the DATABASE_* variables describe. The user's other keys of
# DATABASES['default'] (ATOMIC_REQUESTS, TEST, DISABLE_SERVER_SIDE_CURSORS...) win over the
# defaults dj-database-url fills in.
CONNECTION_KEYS = frozenset(
    {"ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "OPTIONS", "SECRET_ARN", "IAM_REGION"}
    | {"CONN_MAX_AGE", "CONN_HEALTH_CHECKS"}
)
# The user's key prefix, timeout and versioning of CACHES['default'] survive the move to Redis.
CACHE_KEYS_KEPT = frozenset({"KEY_PREFIX", "KEY_FUNCTION", "TIMEOUT", "VERSION"})
# Django 4.2's predecessors of STORAGES; Django refuses both forms at once.
LEGACY_STORAGE_SETTINGS = {"DEFAULT_FILE_STORAGE": "default", "STATICFILES_STORAGE": "staticfiles"}
# Behind the stack's proxy these are the deployment's; the others only get a default.
PROXY_SETTINGS = frozenset({"SECURE_PROXY_SSL_HEADER", "USE_X_FORWARDED_HOST"})
SECURITY_VARIABLES = {
    "SESSION_COOKIE_SECURE": "DJANGO_SECURE_COOKIES",
    "CSRF_COOKIE_SECURE": "DJANGO_SECURE_COOKIES",
    "SECURE_HSTS_SECONDS": "DJANGO_HSTS_SECONDS",
}


def configure(settings: MutableMapping[str, Any], environ: Environ | None = None) -> None:
    """Lay the deployment's settings over `settings` (a settings module's `globals()`).

    Call it last in settings.py: `configure(globals())`. Idempotent. Never requires a variable,
    so `collectstatic` at image build time and `runserver` on a laptop run with the module's
    own values; a variable that is set but unusable raises ImproperlyConfigured naming it."""
    env = os.environ if environ is None else environ
    secret_key = env_str("DJANGO_SECRET_KEY", env)
    if secret_key is not None:
        settings["SECRET_KEY"] = secret_key
    debug = debug_setting(env)
    if debug is not None:
        settings["DEBUG"] = debug
    for setting, variable in (
        ("ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS"),
        ("CSRF_TRUSTED_ORIGINS", "DJANGO_CSRF_TRUSTED_ORIGINS"),
    ):
        values = env_list(variable, env)
        if values is not None:
            settings[setting] = values
    _configure_database(settings, env)
    _configure_cache(settings, env)
    settings.update(static_settings(env))
    settings.update(media_settings(env))
    _configure_storages(settings, env)
    if is_deployment(env):
        _configure_security(settings, env)
        if not settings.get("LOGGING"):
            settings["LOGGING"] = logging_settings(env)
    settings["MIDDLEWARE"] = with_health_middleware(settings.get("MIDDLEWARE", []))
    forget_connections_in_forked_children()


def with_health_middleware(middleware: list[str] | tuple[str, ...]) -> list[str]:
    """`middleware` with the health middleware first (moved there if it is listed elsewhere):
    it must answer before anything calls `request.get_host()`, which checks ALLOWED_HOSTS."""
    return [HEALTH_MIDDLEWARE, *(name for name in middleware if name != HEALTH_MIDDLEWARE)]


def _configure_database(settings: MutableMapping[str, Any], env: Environ) -> None:
    connection = database_settings(env)
    if not connection:
        return
    databases = dict(settings.get("DATABASES") or {})
    own = databases.get("default") or {}
    kept = {key: value for key, value in own.items() if key not in CONNECTION_KEYS}
    if is_postgresql(str(own.get("ENGINE", ""))) and own.get("OPTIONS"):
        # The user's own PostgreSQL options (a search_path, a pool, an isolation level) stay;
        # where both set one (sslmode, connect_timeout), the deployment's wins.
        connection["OPTIONS"] = {**own["OPTIONS"], **connection.get("OPTIONS", {})}
    databases["default"] = connection | kept
    settings["DATABASES"] = databases
    if is_postgresql(connection["ENGINE"]):
        settings["INSTALLED_APPS"] = with_postgres_app(settings.get("INSTALLED_APPS", []))


def is_postgresql(engine: str) -> bool:
    """Django's PostgreSQL backend, PostGIS's, or one built on them (the kit's own)."""
    return "postgresql" in engine or "postgis" in engine


def with_postgres_app(installed_apps: list[str] | tuple[str, ...]) -> list[str]:
    """`installed_apps` with django.contrib.postgres: a project developed on SQLite and deployed
    on PostgreSQL may use models that need it there (Wagtail's search index does, and Django's
    system check then refuses to `migrate` without it). It has no models of its own."""
    apps = list(installed_apps)
    return apps if POSTGRES_APP in apps else [*apps, POSTGRES_APP]


def _configure_cache(settings: MutableMapping[str, Any], env: Environ) -> None:
    cache = cache_settings(env)
    if not cache:
        return
    caches = dict(settings.get("CACHES") or {})
    kept = {
        key: value for key, value in (caches.get("default") or {}).items() if key in CACHE_KEYS_KEPT
    }
    caches["default"] = kept | cache
    settings["CACHES"] = caches


def _configure_storages(settings: MutableMapping[str, Any], env: Environ) -> None:
    current = _current_storages(settings)
    wanted = storages_settings(current, env)
    if wanted == current:
        return
    for legacy in LEGACY_STORAGE_SETTINGS:
        settings.pop(legacy, None)
    settings["STORAGES"] = wanted


def _current_storages(settings: Mapping[str, Any]) -> dict[str, Any]:
    """STORAGES as Django would see it, with Django 4.2's DEFAULT_FILE_STORAGE and
    STATICFILES_STORAGE folded in (so they can be replaced by STORAGES)."""
    storages = {
        alias: dict(spec) for alias, spec in (settings.get("STORAGES") or DEFAULT_STORAGES).items()
    }
    for legacy, alias in LEGACY_STORAGE_SETTINGS.items():
        if settings.get(legacy):
            storages[alias] = {"BACKEND": settings[legacy]}
    return storages


def _configure_security(settings: MutableMapping[str, Any], env: Environ) -> None:
    for setting, value in security_settings(bool(settings.get("DEBUG")), env).items():
        if setting in PROXY_SETTINGS or SECURITY_VARIABLES.get(setting, "") in env:
            settings[setting] = value
        else:
            settings.setdefault(setting, value)
