"""The app fleet on ECS Fargate, its rolling-update policy and its task role's extra grants."""

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

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


def _fargate_cpu(cpu: int) -> int:
    if cpu not in FARGATE_MEMORY:
        raise ValueError(f"not a Fargate size; use one of {list(FARGATE_MEMORY)}")
    return cpu


# Task CPU units: one of Fargate's sizes (the web fleet's, a background process's).
FargateCpu = Annotated[int, AfterValidator(_fargate_cpu)]


def check_fargate_memory(cpu: int, memory: int) -> None:
    """Refuses `memory` (MiB) that Fargate does not pair with `cpu` units."""
    allowed = FARGATE_MEMORY[cpu]
    if memory not in allowed:
        raise ValueError(
            f"memory {memory} does not fit cpu {cpu}; "
            f"use {allowed.start}..{allowed.stop - 1} in steps of {allowed.step}"
        )


def check_count_bounds(
    floor: int,
    count: int,
    ceiling: int,
    count_key: str,
    *,
    defaults: Mapping[str, str] | None = None,
) -> None:
    """Refuses a task count (`count_key`) outside its autoscaling bounds, showing the values
    seen; `defaults` notes, by key, where one came from when it was not given."""
    if floor <= count <= ceiling:
        return
    notes = defaults or {}
    seen = ", ".join(
        f"{key} {value}" + (f" ({notes[key]})" if key in notes else "")
        for key, value in (("minCount", floor), (count_key, count), ("maxCount", ceiling))
    )
    raise ValueError(f"need minCount <= {count_key} <= maxCount; got {seen}")


LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1827, 3653)
# An AWS managed policy (account `aws`) or a customer managed one (an account ID).
MANAGED_POLICY_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(aws|\d{12}):policy/[\w+=,.@/-]+$")
# `service:Action`, wildcards allowed (`s3:Get*`), or `*`.
IAM_ACTION = re.compile(r"^(\*|[a-z0-9-]+:[A-Za-z0-9*?]+)$")


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


def _as_list(value: Any) -> Any:
    """IAM takes one item where it takes a list of them."""
    return [value] if isinstance(value, str) else value


# One string or a list of them, as IAM writes `Action` and `Resource`; read as a list.
OneOrMore = Annotated[list[str], BeforeValidator(_as_list)]


class PolicyStatement(Section):
    """One IAM statement, keyed as IAM writes it (`Effect`, `Action`, `Resource`, ...)."""

    sid: str | None = Field(
        None, alias="Sid", pattern=r"^[A-Za-z0-9]+$", description="Statement ID: letters, digits."
    )
    effect: Literal["Allow", "Deny"] = Field(alias="Effect", description="`Allow` or `Deny`.")
    action: OneOrMore = Field(
        alias="Action", description="IAM actions, one or a list, e.g. `sqs:SendMessage`, `s3:Get*`."
    )
    resource: OneOrMore = Field(
        alias="Resource", description="ARNs the actions apply to (one or a list), or `*`."
    )
    condition: dict[str, dict[str, Any]] | None = Field(
        None,
        alias="Condition",
        description="IAM condition block: operator, then key, then value(s), e.g. "
        "`{StringEquals: {aws:RequestedRegion: eu-west-1}}`.",
    )

    @field_validator("action")
    @classmethod
    def _actions(cls, actions: list[str]) -> list[str]:
        if not actions:
            raise ValueError("give at least one action")
        for action in actions:
            if not IAM_ACTION.match(action):
                raise ValueError(
                    f"{action!r} is not an IAM action: `service:Action`, e.g. s3:GetObject"
                )
        return actions

    @field_validator("resource")
    @classmethod
    def _resources(cls, resources: list[str]) -> list[str]:
        if not resources:
            raise ValueError("give at least one resource")
        for resource in resources:
            if resource != "*" and not resource.startswith("arn:"):
                raise ValueError(f"{resource!r} is not a resource: an ARN (arn:...) or *")
        return resources

    def document(self) -> dict[str, Any]:
        """The statement as IAM reads it."""
        return self.model_dump(by_alias=True, exclude_none=True)


class TaskRoleConfig(Section):
    """What the app may do in AWS besides reading its database secret and its media files."""

    managed_policy_arns: list[str] = Field(
        default_factory=list,
        description="Managed IAM policies attached to the app's task role, by ARN: AWS's "
        "(`arn:aws:iam::aws:policy/...`) or your account's.",
    )
    statements: list[PolicyStatement] = Field(
        default_factory=list,
        description="IAM statements granted to the app's task role, as one inline policy "
        "(`<name>-task-extra`).",
    )

    @field_validator("managed_policy_arns")
    @classmethod
    def _policy_arns(cls, arns: list[str]) -> list[str]:
        for arn in arns:
            if not MANAGED_POLICY_ARN.match(arn):
                raise ValueError(
                    f"{arn!r} is not a managed policy ARN "
                    "(arn:aws:iam::aws:policy/NAME or arn:aws:iam::ACCOUNT_ID:policy/NAME)"
                )
        return arns


class FleetConfig(Section):
    """Tasks, their size, scaling and release policy."""

    desired_count: int = Field(2, ge=1, le=1000, description="Tasks running normally.")
    min_count: int = Field(2, ge=1, le=1000, description="Autoscaling floor.")
    max_count: int = Field(6, ge=1, le=1000, description="Autoscaling ceiling.")
    cpu: FargateCpu = Field(
        512, description="Task CPU units: 256, 512, 1024, 2048, 4096, 8192, 16384."
    )
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
    task_role: TaskRoleConfig = Field(
        default_factory=TaskRoleConfig,
        description="Extra permissions of the app's task role, the AWS identity its code runs as.",
    )

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch keeps logs for one of {list(LOG_RETENTION_DAYS)} days")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> "FleetConfig":
        check_fargate_memory(self.cpu, self.memory)
        given = self.model_fields_set
        check_count_bounds(
            self.min_count,
            self.desired_count,
            self.max_count,
            "desiredCount",
            defaults={
                key: "default"
                for key, field in (
                    ("minCount", "min_count"),
                    ("desiredCount", "desired_count"),
                    ("maxCount", "max_count"),
                )
                if field not in given
            },
        )
        return self
