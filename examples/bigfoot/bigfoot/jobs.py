"""A tiny background-job runner on Redis lists, with no dependency beyond the `redis` client
the cache already uses.

A job is a function registered by name in an app's `jobs.py` (found by autodiscovery, as the
admin finds `admin.py`):

    from bigfoot.jobs import enqueue, job

    @job("sightings.sighting_reported")               # queue "default"
    def sighting_reported(sighting_id: int) -> None: ...

    enqueue("sightings.sighting_reported", sighting_id=42)

`enqueue` pushes `{"job": name, "kwargs": {...}, "enqueued_at": ...}` as JSON onto the Redis
list `bigfoot:jobs:<queue>` (the cache's Redis: `REDIS_URL`, `REDIS_PASSWORD`);
`manage.py run_worker --queue NAME` pops and runs them, and `manage.py run_scheduler` enqueues
the periodic ones. A worker runs a job by its name in *its own* version of the app: a job that
a new release enqueues before every worker runs that release fails on an old worker as an
unknown job (or with a TypeError, when the new release passes new arguments). Define a job (and
accept new arguments) one release before enqueueing it.

Without Redis (no `REDIS_URL`) and with `DEBUG` on, as in `runserver` on a laptop, `enqueue`
runs the job in place; without Redis in production it is an ImproperlyConfigured error.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KEY_PREFIX = "bigfoot:jobs:"
DEFAULT_QUEUE = "default"
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
JOB_MODULE = "jobs"

JobFunction = Callable[..., object]


class UnknownJob(LookupError):
    """No job of that name in this version of the app."""


@dataclass(frozen=True)
class Job:
    name: str
    function: JobFunction
    queue: str = DEFAULT_QUEUE
    # Enqueued by `run_scheduler` every `--every` seconds.
    periodic: bool = False


_registry: dict[str, Job] = {}
_discovered = threading.Lock()
_discovery_done = False
_clients: dict[float | None, Any] = {}


def job(
    name: str, *, queue: str = DEFAULT_QUEUE, periodic: bool = False
) -> Callable[[JobFunction], JobFunction]:
    """Registers the decorated function as the job `name` on `queue`."""

    def register(function: JobFunction) -> JobFunction:
        _registry[name] = Job(name, function, queue, periodic)
        return function

    return register


def discover() -> None:
    """Imports every installed app's `jobs` module once, so that every job is registered."""
    global _discovery_done
    with _discovered:
        if not _discovery_done:
            from django.utils.module_loading import autodiscover_modules

            autodiscover_modules(JOB_MODULE)
            _discovery_done = True


def get_job(name: str) -> Job:
    discover()
    try:
        return _registry[name]
    except KeyError:
        known = ", ".join(sorted(_registry)) or "none"
        raise UnknownJob(
            f"unknown job {name!r}: this version of the app has no such job (it has: {known})"
        ) from None


def periodic_jobs() -> list[Job]:
    discover()
    return [found for _, found in sorted(_registry.items()) if found.periodic]


def queue_key(queue: str) -> str:
    return KEY_PREFIX + queue


def redis_client(socket_timeout: float | None = None) -> Any:
    """The process's client of the cache's Redis (the runtime kit sets CACHES from REDIS_URL
    and REDIS_PASSWORD), or None when the cache is not Redis."""
    import redis
    from django.conf import settings

    cache = settings.CACHES.get("default", {})
    if cache.get("BACKEND") != REDIS_CACHE:
        return None
    if socket_timeout not in _clients:
        options = dict(cache.get("OPTIONS") or {})
        if socket_timeout is not None:
            options["socket_timeout"] = socket_timeout
        _clients[socket_timeout] = redis.Redis.from_url(cache["LOCATION"], **options)
    return _clients[socket_timeout]


def encode(name: str, kwargs: dict[str, Any]) -> str:
    enqueued_at = datetime.now(UTC).isoformat()
    return json.dumps({"job": name, "kwargs": kwargs, "enqueued_at": enqueued_at})


def enqueue(name: str, /, **kwargs: Any) -> None:
    """Pushes the job `name` with `kwargs` (JSON values) onto its queue."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    found = get_job(name)
    client = redis_client()
    if client is None:
        if settings.DEBUG:
            found.function(**kwargs)
            return
        raise ImproperlyConfigured(f"job {name}: jobs need Redis; set REDIS_URL")
    client.rpush(queue_key(found.queue), encode(name, kwargs))


def run(payload: str | bytes) -> str:
    """Runs one job popped from a queue; returns its name. Raises what the job raises, and
    UnknownJob for a name this version does not have."""
    message = json.loads(payload)
    found = get_job(message["job"])
    found.function(**message.get("kwargs", {}))
    return found.name


def job_name(payload: str | bytes) -> str:
    """The job's name as a worker's log names it, whatever the payload holds."""
    try:
        return str(json.loads(payload)["job"])
    except (ValueError, KeyError, TypeError):
        return "?"


def redis_errors() -> tuple[type[Exception], ...]:
    """What a lost or refused Redis connection raises."""
    import redis

    return (redis.ConnectionError, redis.TimeoutError)
