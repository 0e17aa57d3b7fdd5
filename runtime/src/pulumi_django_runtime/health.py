"""The health endpoints: liveness (is this process serving?) and readiness (can it reach what
it needs?), both answered before anything reads the Host header.

- **Liveness**, on DJANGO_HEALTH_CHECK_PATH (default `/healthz`, the stack's
  `app.healthCheckPath`): what the load balancer and the container health checks ask, and what
  the proxy container waits for. It answers `200 ok` when this process answers and the
  project's own `HEALTH_CHECKS` (checks of this process: configuration it needs, files it
  reads) pass. It never touches the database or the cache: when they fail over, every task
  would fail this check at once, and ECS would replace the whole fleet with tasks that cannot
  pass it either.
- **Readiness**, on DJANGO_READINESS_PATH (default `/readyz`, the stack's `app.readinessPath`):
  for people, alarms and tools. The default database (a `SELECT 1`), the default cache (a write
  and a read back, not for DummyCache, which never keeps anything), then `HEALTH_CHECKS`, then
  `READINESS_CHECKS` (the project's checks of other services it reaches over the network).

`HEALTH_CHECKS` and `READINESS_CHECKS` are `{"name": "dotted.path.to.callable"}`, each called
with no argument, failing by raising. A failure answers 503 with one short reason per failing
check (`<name> unavailable: <error class>`); the details go to the log, not to the prober.
When both paths are the same, that path is readiness (what the one health path checked before
the two were apart).

`HealthCheckMiddleware` answers both on GET/HEAD: load balancers probe with the task's IP as
Host, which ALLOWED_HOSTS rightly refuses for pages. `configure()` puts it first in MIDDLEWARE.
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
READINESS_PATH_VARIABLE = "DJANGO_READINESS_PATH"
DEFAULT_READINESS_PATH = "/readyz"
# Lets tools (pulumi-django's readiness check among them) tell this endpoint from a page that
# merely answers 200.
RECOGNITION_HEADER = ("X-Health-Check", "pulumi-django-runtime")
# Which of the two endpoints answered: `liveness` or `readiness`.
KIND_HEADER = "X-Health-Check-Kind"
LIVENESS, READINESS = "liveness", "readiness"
DUMMY_DATABASE = "django.db.backends.dummy"
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"

Check = Callable[[], object]
logger = logging.getLogger(__name__)


def _path(variable: str, default: str) -> str:
    path = os.environ.get(variable, "").strip() or default
    if not path.startswith("/"):
        raise ImproperlyConfigured(f"{variable}={path!r}: a path starts with '/'")
    return path


def health_path() -> str:
    """The liveness path (the load balancer's and the container checks')."""
    return _path(HEALTH_PATH_VARIABLE, DEFAULT_HEALTH_PATH)


def readiness_path() -> str:
    return _path(READINESS_PATH_VARIABLE, DEFAULT_READINESS_PATH)


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


def project_checks(setting: str) -> dict[str, Check]:
    """The project's checks in `setting` (`HEALTH_CHECKS` or `READINESS_CHECKS`), imported."""
    declared = getattr(settings, setting, {}) or {}
    if not isinstance(declared, dict):
        raise ImproperlyConfigured(f"{setting} must be a dict of name -> dotted path of a callable")
    checks: dict[str, Check] = {}
    for name, path in declared.items():
        try:
            checks[name] = import_string(path)
        except ImportError as error:
            raise ImproperlyConfigured(f"{setting}[{name!r}]: {error}") from None
    return checks


def liveness_checks() -> dict[str, Check]:
    """What liveness runs: the project's own checks of this process, never a network service."""
    return project_checks("HEALTH_CHECKS")


def readiness_checks() -> dict[str, Check]:
    """What readiness runs, in order: database, cache, HEALTH_CHECKS, READINESS_CHECKS."""
    checks: dict[str, Check] = {}
    if settings.DATABASES.get("default", {}).get("ENGINE", DUMMY_DATABASE) != DUMMY_DATABASE:
        checks["database"] = check_database
    if settings.CACHES.get("default", {}).get("BACKEND") != DUMMY_CACHE:
        checks["cache"] = check_cache
    own = project_checks("HEALTH_CHECKS")
    checks.update(own)  # as before readiness was apart: one named `database` replaces it
    for name, check in project_checks("READINESS_CHECKS").items():
        if name in own:
            raise ImproperlyConfigured(
                f"READINESS_CHECKS[{name!r}]: HEALTH_CHECKS has a check of that name; rename one"
            )
        checks[name] = check
    return checks


# Before liveness and readiness were apart, the one health path ran these.
configured_checks = readiness_checks


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


def health_response(checks: dict[str, Check], kind: str = READINESS) -> HttpResponse:
    reasons = failures(checks)
    response = HttpResponse(
        "; ".join(reasons) or "ok", status=503 if reasons else 200, content_type="text/plain"
    )
    add_never_cache_headers(response)
    response[RECOGNITION_HEADER[0]] = RECOGNITION_HEADER[1]
    response[KIND_HEADER] = kind
    return response


class HealthCheckMiddleware:
    """Answers the liveness and readiness paths before the Host header is validated (probes
    send the task's IP). The paths and the checks are read once, when Django loads its
    middleware, so a wrong HEALTH_CHECKS or READINESS_CHECKS entry stops the server at start
    instead of failing every probe."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.path = health_path()
        self.readiness_path = readiness_path()
        self.checks = readiness_checks()
        self.liveness_checks = liveness_checks()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("GET", "HEAD"):
            # The same path for both is readiness: the stricter answer wins.
            if request.path_info == self.readiness_path:
                return health_response(self.checks, READINESS)
            if request.path_info == self.path:
                return health_response(self.liveness_checks, LIVENESS)
        return self.get_response(request)
