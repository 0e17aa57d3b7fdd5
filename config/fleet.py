"""The app fleet on ECS Fargate and its rolling-update policy."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section

# Fargate's valid task sizes: CPU units -> allowed memory (MiB).
FARGATE_MEMORY: dict[int, range] = {
    256: range(512, 2049, 512),
    512: range(1024, 4097, 1024),
    1024: range(2048, 8193, 1024),
    2048: range(4096, 16385, 1024),
    4096: range(8192, 30721, 1024),
    8192: range(16384, 61441, 4096),
    16384: range(32768, 122881, 8192),
}
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)


class RollingUpdateConfig(Section):
    """How ECS replaces tasks during a release; every safety is on by default."""

    minimum_healthy_percent: int = Field(
        100, ge=50, le=100, description="Share of desired tasks that must stay healthy."
    )
    maximum_percent: int = Field(
        200, ge=100, le=400, description="Ceiling on running tasks during a release."
    )
    circuit_breaker: bool = Field(True, description="Stop a release whose new tasks keep failing.")
    rollback: bool = Field(
        True, description="Roll back to the last good release when the circuit breaker trips."
    )
    health_check_grace_period_seconds: int = Field(
        60, ge=0, le=2147483647, description="Time a new task gets before health checks count."
    )
    alarm_rollback: bool = Field(
        False,
        description="Also roll back when the target group's 5xx alarm fires during a release.",
    )
    alarm_5xx_threshold: int = Field(
        10,
        ge=1,
        alias="alarm5xxThreshold",
        description="5xx responses per minute that fire the rollback alarm.",
    )

    @model_validator(mode="after")
    def _can_make_progress(self) -> "RollingUpdateConfig":
        if self.maximum_percent <= self.minimum_healthy_percent:
            raise ValueError(
                "maximumPercent must exceed minimumHealthyPercent, or a release can never start"
            )
        if self.rollback and not self.circuit_breaker:
            raise ValueError("rollback needs circuitBreaker: true")
        return self


class AutoscalingConfig(Section):
    """Target tracking on CPU and on requests per target."""

    cpu_target_percent: int = Field(60, ge=10, le=95, description="Average CPU to keep.")
    requests_per_target: int | None = Field(
        1000, ge=1, description="ALB requests per task per minute to keep; null turns it off."
    )


class FleetConfig(Section):
    """Tasks, their size, scaling and release policy."""

    desired_count: int = Field(2, ge=1, le=1000, description="Tasks running normally.")
    min_count: int = Field(2, ge=1, le=1000, description="Autoscaling floor.")
    max_count: int = Field(6, ge=1, le=1000, description="Autoscaling ceiling.")
    cpu: int = Field(512, description="Task CPU units: 256, 512, 1024, 2048, 4096, 8192, 16384.")
    memory: int = Field(1024, description="Task memory, MiB; must suit `cpu` (Fargate's table).")
    architecture: Literal["X86_64", "ARM64"] = Field(
        "X86_64", description="CPU architecture the image is built for."
    )
    rolling_update: RollingUpdateConfig = Field(
        default_factory=RollingUpdateConfig, description="Release policy."
    )
    autoscaling: AutoscalingConfig = Field(
        default_factory=AutoscalingConfig, description="Scaling policy."
    )
    spot_percent: int = Field(0, ge=0, le=100, description="Share of tasks on Fargate Spot.")
    enable_execute_command: bool = Field(
        False, description="Allow ECS Exec into tasks (adds an `ssmmessages` endpoint without NAT)."
    )
    log_retention_days: int = Field(30, description="CloudWatch Logs retention, days.")

    @field_validator("cpu")
    @classmethod
    def _fargate_cpu(cls, cpu: int) -> int:
        if cpu not in FARGATE_MEMORY:
            raise ValueError(f"not a Fargate size; use one of {list(FARGATE_MEMORY)}")
        return cpu

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch keeps logs for one of {list(LOG_RETENTION_DAYS)} days")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> "FleetConfig":
        allowed = FARGATE_MEMORY[self.cpu]
        if self.memory not in allowed:
            raise ValueError(
                f"memory {self.memory} does not fit cpu {self.cpu}; "
                f"use {allowed.start}..{allowed.stop - 1} in steps of {allowed.step}"
            )
        if not self.min_count <= self.desired_count <= self.max_count:
            raise ValueError("need minCount <= desiredCount <= maxCount")
        return self
