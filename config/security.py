"""The controls a security review asks for: each one key, off by default (they cost money),
on in the prod stack. Their costs are on docs/security.md."""

from pydantic import Field, field_validator

from .base import Section

# The intervals RDS accepts for enhanced monitoring (`CreateDBInstance`'s `MonitoringInterval`);
# 0: off.
ENHANCED_MONITORING_INTERVALS = (0, 1, 5, 10, 15, 30, 60)


class SecurityConfig(Section):
    """Opt-in audit and encryption controls (aws)."""

    customer_managed_key: bool = Field(
        False,
        description="Encrypt the stack's data (RDS, Performance Insights, ElastiCache, Secrets "
        "Manager, CloudWatch Logs, ECR, S3 media) with one customer-managed KMS key of its own "
        "instead of AWS-managed keys; static files keep SSE-S3.",
    )
    access_logs: bool = Field(
        False, description="ALB and CloudFront access logs, to a log bucket of the stack's own."
    )
    flow_logs: bool = Field(False, description="VPC flow logs of the stack's VPC.")
    log_retention_days: int = Field(
        365,
        ge=1,
        description="Days the log bucket keeps each access and flow log file before S3 deletes "
        "it (with `accessLogs` or `flowLogs`).",
    )
    # A whole number checked against the list, not a `Literal` of ints: strict `int` refuses
    # `true` (which a Literal containing 1 takes as 1) and text, with the key's path.
    enhanced_monitoring_seconds: int = Field(
        0,
        description="RDS enhanced monitoring interval in seconds, one of "
        f"{', '.join(map(str, ENHANCED_MONITORING_INTERVALS))}; 0: off.",
    )

    @field_validator("enhanced_monitoring_seconds")
    @classmethod
    def _monitoring_interval(cls, seconds: int) -> int:
        if seconds not in ENHANCED_MONITORING_INTERVALS:
            raise ValueError(
                "RDS accepts one of "
                f"{', '.join(map(str, ENHANCED_MONITORING_INTERVALS))} seconds (0: off)"
            )
        return seconds
