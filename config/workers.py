"""Background workers (Celery, RQ, Django tasks...) and one optional scheduler, run from the
app's image and released in the same order as the web fleet: after the migration job."""

import re

from pydantic import Field, field_validator, model_validator

from .base import Section, Text
from .fleet import FargateCpu, check_count_bounds, check_fargate_memory
from .names import WORKER_NAME_MAX

WORKER_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
# ECS waits at most this long between SIGTERM and SIGKILL.
MAX_STOP_TIMEOUT_SECONDS = 120
# The scheduler has no jobs to finish; its stop timeout bounds the overlap of two schedulers.
SCHEDULER_STOP_TIMEOUT_SECONDS = 10
# The scheduler's key beside the workers' (`workerServices`, `workerContainers`) and its
# container's name: no worker may be named so.
SCHEDULER_NAME = "scheduler"


class ProcessHealthCheck(Section):
    """A background process's own health check (ECS's container health check; Docker's
    HEALTHCHECK locally). ECS replaces a task whose check keeps failing, and a release whose
    new tasks never turn healthy trips the circuit breaker."""

    command: list[Text] = Field(
        min_length=1,
        description="Run as is in the container (no shell; exit 0 is healthy), e.g. `[celery, "
        "-A, proj, inspect, ping, -d, celery@worker]`; for variables, a shell: `[sh, -c, "
        "'celery -A proj inspect ping -d celery@$HOSTNAME']`.",
    )
    interval_seconds: int = Field(30, ge=5, le=300, description="Seconds between checks.")
    timeout_seconds: int = Field(
        10, ge=2, le=120, description="A check running longer than this failed."
    )
    retries: int = Field(
        3, ge=1, le=10, description="Failures in a row that make the process unhealthy."
    )
    start_period_seconds: int = Field(
        60, ge=0, le=300, description="Failures in the first seconds after start do not count."
    )


class ProcessSize(Section):
    """A Fargate task size and the warm-shutdown time of a background process."""

    cpu: FargateCpu = Field(512, description="Task CPU units (Fargate sizes, as `fleet.cpu`).")
    memory: int = Field(1024, description="Task memory, MiB; must suit `cpu`.")
    stop_timeout_seconds: int = Field(
        MAX_STOP_TIMEOUT_SECONDS,
        ge=2,
        le=MAX_STOP_TIMEOUT_SECONDS,
        description="Warm shutdown: after SIGTERM the process gets this long to finish the "
        "jobs it is running before SIGKILL (ECS allows 120 s at most; Docker is given the "
        "same locally).",
    )
    health_check: ProcessHealthCheck | None = Field(
        None,
        description="The process's own health check; none by default (ECS then counts a task "
        "as healthy once it runs, and replaces it only when it exits).",
    )

    @model_validator(mode="after")
    def _memory_fits(self) -> "ProcessSize":
        check_fargate_memory(self.cpu, self.memory)
        return self


class WorkerConfig(ProcessSize):
    """One named worker service: a command from the app's image, its count and scaling."""

    command: list[Text] = Field(
        min_length=1,
        description="The worker's command in the app image, e.g. "
        "`[celery, -A, proj, worker, --loglevel, INFO]`.",
    )
    count: int = Field(1, ge=1, le=1000, description="Worker tasks running normally.")
    min_count: int | None = Field(
        None, ge=1, le=1000, description="Autoscaling floor; default: `count`."
    )
    max_count: int | None = Field(
        None,
        ge=1,
        le=1000,
        description="Autoscaling ceiling (target tracking on CPU); default: `count`, no "
        "autoscaling.",
    )
    cpu_target_percent: int = Field(
        70, ge=10, le=95, description="Average CPU autoscaling keeps, when it has room."
    )

    @model_validator(mode="after")
    def _bounds(self) -> "WorkerConfig":
        defaults = {
            "count": "default" if "count" not in self.model_fields_set else None,
            "minCount": "default: count" if self.min_count is None else None,
            "maxCount": "default: count" if self.max_count is None else None,
        }
        check_count_bounds(
            self.floor,
            self.count,
            self.ceiling,
            "count",
            defaults={key: note for key, note in defaults.items() if note is not None},
        )
        return self

    @property
    def floor(self) -> int:
        return self.count if self.min_count is None else self.min_count

    @property
    def ceiling(self) -> int:
        return self.count if self.max_count is None else self.max_count


class SchedulerConfig(ProcessSize):
    """The one periodic-job scheduler (`celery beat`-style): one task, replaced stop-first in a
    release, so two overlap at most while the old one stops."""

    stop_timeout_seconds: int = Field(
        SCHEDULER_STOP_TIMEOUT_SECONDS,
        ge=2,
        le=MAX_STOP_TIMEOUT_SECONDS,
        description="After SIGTERM the scheduler gets this long to exit before SIGKILL: the "
        "longest the old and the new scheduler may overlap in a release (one that exits on "
        "SIGTERM overlaps for no time).",
    )

    command: list[Text] = Field(
        min_length=1,
        description="The scheduler's command in the app image, e.g. "
        "`[celery, -A, proj, beat, --loglevel, INFO]`.",
    )


class WorkersConfig(Section):
    """Background processes beside the web fleet; none by default."""

    services: dict[str, WorkerConfig] = Field(
        default_factory=dict,
        description="Worker services by name (lowercase letters, digits, single hyphens, at "
        f"most {WORKER_NAME_MAX} characters), e.g. `{{celery: {{command: [celery, -A, proj, "
        "worker]}}`.",
    )
    scheduler: SchedulerConfig | None = Field(
        None, description="One scheduler process; none when unset."
    )

    @field_validator("services")
    @classmethod
    def _names(cls, services: dict[str, WorkerConfig]) -> dict[str, WorkerConfig]:
        for name in services:
            if not WORKER_NAME.match(name) or len(name) > WORKER_NAME_MAX:
                raise ValueError(
                    f"worker name {name!r}: lowercase letters, digits and single hyphens, "
                    f"starting with a letter, at most {WORKER_NAME_MAX} characters"
                )
            if name == SCHEDULER_NAME:
                raise ValueError(
                    f"`{SCHEDULER_NAME}` is the scheduler's name; name the worker otherwise"
                )
        return services

    @property
    def enabled(self) -> bool:
        return bool(self.services) or self.scheduler is not None
