"""The application load balancer and its target group."""

from pydantic import Field

from .base import Section


class LoadBalancerConfig(Section):
    """ALB timings (the defaults keep releases fast without cutting requests) and its deletion
    protection."""

    idle_timeout_seconds: int = Field(
        60, ge=1, le=4000, description="Idle connection timeout; app keep-alive is set above it."
    )
    health_check_interval_seconds: int = Field(
        10, ge=5, le=300, description="Seconds between target health checks."
    )
    healthy_threshold: int = Field(
        2, ge=2, le=10, description="Passing checks before a target takes traffic."
    )
    unhealthy_threshold: int = Field(
        3, ge=2, le=10, description="Failing checks before a target is taken out."
    )
    deletion_protection: bool = Field(
        True,
        description=(
            "Refuse to delete the ALB: `pulumi destroy`, and an update that replaces it, fail "
            "until this is turned off."
        ),
    )
    deregistration_delay_seconds: int | None = Field(
        None,
        ge=0,
        le=3600,
        description="Draining time; default: the app's graceful timeout + 5 s, at most 30 s.",
    )
