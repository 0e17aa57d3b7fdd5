"""RDS PostgreSQL (AWS) or a PostgreSQL container (local)."""

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .base import Section, Text
from .fleet import LOG_RETENTION_DAYS

WINDOW = r"^(mon|tue|wed|thu|fri|sat|sun):\d\d:\d\d-(mon|tue|wed|thu|fri|sat|sun):\d\d:\d\d$"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY
# RDS dropped every major below this one (family names are `postgres<major>` from 10 on).
OLDEST_MAJOR = 11


class DatabaseConfig(Section):
    """Defaults are production's; a dev stack relaxes them explicitly."""

    engine_version: Text = Field(
        "17", pattern=r"^\d+(\.\d+)?$", description="PostgreSQL major (or major.minor) version."
    )
    instance_class: str = Field(
        "db.t4g.small",
        pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$",
        description="RDS instance class, e.g. `db.t4g.small`, `db.m7g.large`.",
    )
    name: str = Field("app", pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Database name.")
    username: str = Field(
        "django", pattern=r"^[a-z][a-z0-9_]{0,15}$", description="Master user name."
    )
    app_username: str = Field(
        "app",
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="The app's own PostgreSQL role: the fleet connects as it, with only "
        "CONNECT, USAGE on the schema and the rows of its tables and sequences; the release "
        "creates and updates it as the master user (who alone runs `migrate`). AWS only.",
    )
    app_auth: Literal["iam", "password"] = Field(
        "iam",
        description="How the app's role logs in on AWS: `iam`, an RDS IAM token per new "
        "connection (IAM database authentication on the instance, `rds-db:connect` for the "
        "task role, no password anywhere); `password`, a generated password kept in a Secrets "
        "Manager secret of its own. Switch together with a new `appUsername` (see "
        "docs/security.md).",
    )
    allocated_storage_gb: int = Field(20, ge=20, le=65536, description="Initial gp3 storage, GiB.")
    max_allocated_storage_gb: int = Field(
        100, ge=20, le=65536, description="Storage autoscaling ceiling, GiB."
    )
    multi_az: bool = Field(True, description="Standby in a second AZ with automatic failover.")
    deletion_protection: bool = Field(True, description="Refuse to delete the instance.")
    skip_final_snapshot: bool = Field(False, description="Delete without a final snapshot.")
    backup_retention_days: int = Field(7, ge=7, le=35, description="Automated backups kept, days.")
    performance_insights: bool = Field(True, description="Performance Insights on.")
    slow_query_ms: int = Field(
        500,
        ge=0,
        description="Statements slower than this are logged (`log_min_duration_statement`).",
    )
    backup_window: str = Field(
        "03:00-03:30", pattern=r"^\d\d:\d\d-\d\d:\d\d$", description="Daily backup window, UTC."
    )
    maintenance_window: str = Field(
        "sun:04:00-sun:05:00", description="Weekly maintenance window, UTC."
    )
    apply_immediately: bool = Field(
        True,
        description="Apply a change (instance class, storage, engine version, Multi-AZ...) "
        "during `pulumi up`, with the short outage some of them cause; false defers them to "
        "`maintenanceWindow`, and every preview shows them again until then (a perpetual "
        "diff), and a major `engineVersion` change is refused (RDS takes the new major's "
        "parameter group only with an immediate upgrade).",
    )
    log_retention_days: int | None = Field(
        None,
        description="Days CloudWatch Logs keeps the exported `postgresql` and `upgrade` logs "
        "(RDS's log groups, given this retention once the instance exists); default: "
        "`fleet.logRetentionDays`.",
    )

    @field_validator("maintenance_window")
    @classmethod
    def _window(cls, value: str) -> str:
        if not re.match(WINDOW, value):
            raise ValueError("use ddd:hh:mm-ddd:hh:mm, e.g. sun:04:00-sun:05:00")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int | None) -> int | None:
        if days is not None and days not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch keeps logs for one of {list(LOG_RETENTION_DAYS)} days")
        return days

    @field_validator("app_username")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith(("pg_", "rds")) or value in {"postgres", "public"}:
            raise ValueError(f"{value} is a role name PostgreSQL or RDS keeps for itself")
        return value

    @field_validator("engine_version")
    @classmethod
    def _offered_major(cls, value: str) -> str:
        if int(value.split(".")[0]) < OLDEST_MAJOR:
            raise ValueError(f"RDS no longer runs PostgreSQL below {OLDEST_MAJOR}; use e.g. 17")
        return value

    @model_validator(mode="after")
    def _rds_accepts(self) -> "DatabaseConfig":
        if self.app_username == self.username:
            raise ValueError(
                f"appUsername {self.app_username} is the master user (username); the app needs "
                "a role of its own"
            )
        if self.max_allocated_storage_gb <= self.allocated_storage_gb:
            raise ValueError(
                "maxAllocatedStorageGb must exceed allocatedStorageGb (the autoscaling ceiling)"
            )
        backup_start, backup_length = _span(self.backup_window, MINUTES_PER_DAY)
        maintenance = _span(self.maintenance_window, MINUTES_PER_WEEK)
        if backup_length < 30 or maintenance[1] < 30:
            raise ValueError("backupWindow and maintenanceWindow must each last 30 minutes or more")
        daily_backups = [(day * MINUTES_PER_DAY + backup_start, backup_length) for day in range(7)]
        if any(_overlap(window, maintenance) for window in daily_backups):
            raise ValueError(
                f"backupWindow {self.backup_window} overlaps maintenanceWindow "
                f"{self.maintenance_window}; RDS rejects overlapping windows"
            )
        return self


def _span(window: str, period: int) -> tuple[int, int]:
    """(start minute of the week, length in minutes) of a daily or weekly window."""
    start_text, end_text = window.split("-")
    start, end = _minute_of_week(start_text), _minute_of_week(end_text)
    return start, (end - start) % period


def _minute_of_week(moment: str) -> int:
    """`sun:04:00` or, for a daily window, `04:00` (taken as Monday's)."""
    *day, hours, minutes = moment.split(":")
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{moment} is not a time of day (hh:mm, UTC)")
    return (DAYS.index(day[0]) if day else 0) * MINUTES_PER_DAY + int(hours) * 60 + int(minutes)


def _overlap(first: tuple[int, int], second: tuple[int, int]) -> bool:
    """Whether two weekly windows overlap, including across the Sunday-Monday wrap."""
    (first_start, first_length), (second_start, second_length) = first, second
    return (second_start - first_start) % MINUTES_PER_WEEK < first_length or (
        first_start - second_start
    ) % MINUTES_PER_WEEK < second_length
