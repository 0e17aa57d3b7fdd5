"""The health endpoint: 200 `ok` only when this process can use its database and its cache.

`HealthCheckMiddleware` answers GET/HEAD on DJANGO_HEALTH_CHECK_PATH (default `/healthz`)
before anything reads the Host header: load balancers probe with the task's IP as Host, which
ALLOWED_HOSTS rightly refuses for pages. `configure()` puts it first in MIDDLEWARE.

Checks: the default database (a `SELECT 1`), the default cache (a write and a read back, not
for DummyCache, which never keeps anything), then the project's own `HEALTH_CHECKS`:
`{"name": "dotted.path.to.callable"}`, each called with no argument, failing by raising.
A failure answers 503 with one short reason per failing check (`<name> unavailable:
<error class>`); the details go to the log, not to the prober.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.module_loading import import_string

HEALTH_PATH_VARIABLE = "DJANGO_HEALTH_CHECK_PATH"
DEFAULT_HEALTH_PATH = "/healthz"
# Lets tools (pulumi-django's readiness check among them) tell this endpoint from a page that
# merely answers 200.
RECOGNITION_HEADER = ("X-Health-Check", "pulumi-django-runtime")
DUMMY_DATABASE = "django.db.backends.dummy"
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"

Check = Callable[[], object]
logger = logging.getLogger(__name__)


def health_path() -> str:
    path = os.environ.get(HEALTH_PATH_VARIABLE, "").strip() or DEFAULT_HEALTH_PATH
    if not path.startswith("/"):
        raise ImproperlyConfigured(f"{HEALTH_PATH_VARIABLE}={path!r}: a path starts with '/'")
    return path


def check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        if cursor.fetchone() != (1,):
            raise RuntimeError("SELECT 1 did not return 1")


def check_cache() -> None:
    key, value = f"healthz:{uuid.uuid4().hex}", uuid.uuid4().hex
    cache.set(key, value, timeout=30)
    if cache.get(key) != value:
        raise RuntimeError("a value written to the cache did not read back")
    cache.delete(key)


def configured_checks() -> dict[str, Check]:
    """The checks this project's settings call for, in the order they run."""
    checks: dict[str, Check] = {}
    if settings.DATABASES.get("default", {}).get("ENGINE", DUMMY_DATABASE) != DUMMY_DATABASE:
        checks["database"] = check_database
    if settings.CACHES.get("default", {}).get("BACKEND") != DUMMY_CACHE:
        checks["cache"] = check_cache
    extra = getattr(settings, "HEALTH_CHECKS", {}) or {}
    if not isinstance(extra, dict):
        raise ImproperlyConfigured(
            "HEALTH_CHECKS must be a dict of name -> dotted path of a callable"
        )
    for name, path in extra.items():
        try:
            checks[name] = import_string(path)
        except ImportError as error:
            raise ImproperlyConfigured(f"HEALTH_CHECKS[{name!r}]: {error}") from None
    return checks


def failures(checks: dict[str, Check]) -> list[str]:
    """One short reason per failing check."""
    reasons = []
    for name, check in checks.items():
        try:
            check()
        except Exception as error:
            logger.warning("health check %s failed: %r", name, error)
            reasons.append(f"{name} unavailable: {type(error).__name__}")
    return reasons


def health_response(checks: dict[str, Check]) -> HttpResponse:
    reasons = failures(checks)
    response = HttpResponse(
        "; ".join(reasons) or "ok", status=503 if reasons else 200, content_type="text/plain"
    )
    add_never_cache_headers(response)
    response[RECOGNITION_HEADER[0]] = RECOGNITION_HEADER[1]
    return response


class HealthCheckMiddleware:
    """Answers the health path before the Host header is validated (probes send the task's
    IP). The path and the checks are read once, when Django loads its middleware, so a wrong
    HEALTH_CHECKS entry stops the server at start instead of failing every probe."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.path = health_path()
        self.checks = configured_checks()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == self.path and request.method in ("GET", "HEAD"):
            return health_response(self.checks)
        return self.get_response(request)
