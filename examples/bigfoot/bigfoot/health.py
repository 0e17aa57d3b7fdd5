"""/healthz: 200 `ok` only when this process can use its database and its cache."""

import logging
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers

HEALTH_PATH = "/healthz"
logger = logging.getLogger(__name__)


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


CHECKS: dict[str, Callable[[], None]] = {"database": check_database, "cache": check_cache}


def failures() -> list[str]:
    """One short reason per failing check; details go to the log, not to the prober."""
    reasons = []
    for name, check in CHECKS.items():
        try:
            check()
        except Exception as error:
            logger.warning("health check %s failed: %r", name, error)
            reasons.append(f"{name} unavailable: {type(error).__name__}")
    return reasons


def health_response() -> HttpResponse:
    reasons = failures()
    response = HttpResponse(
        "; ".join(reasons) or "ok", status=503 if reasons else 200, content_type="text/plain"
    )
    add_never_cache_headers(response)
    return response


class HealthCheckMiddleware:
    """Answers /healthz before the Host header is validated (probes send the task's IP)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH and request.method in ("GET", "HEAD"):
            return health_response()
        return self.get_response(request)
