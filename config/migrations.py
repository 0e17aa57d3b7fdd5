"""The migration job every release runs before the fleet moves."""

from pydantic import Field, field_validator

from ..migration_check.analyzer import ACKNOWLEDGED_NAME_HELP, acknowledged_name
from .base import Section, Text


class AcknowledgedMigration(Section):
    """A migration, or every migration of an app, allowed on purpose despite unsafe findings."""

    migration: str = Field(
        description="`app_label.migration_name`, e.g. `shop.0007_drop_price`; or `app_label.*` "
        "(also written `app_label`) for every migration of an app, e.g. `wagtailusers.*` for a "
        "library upgrade, including its later migrations until the entry is removed."
    )
    reason: str = Field(min_length=10, description="Why it is safe for this release.")

    @field_validator("migration")
    @classmethod
    def _name(cls, value: str) -> str:
        try:
            return acknowledged_name(value)
        except ValueError:
            raise ValueError(ACKNOWLEDGED_NAME_HELP) from None


class MigrationsConfig(Section):
    """Migrate once per release, after the safety check, before any task is replaced."""

    command: list[Text] = Field(
        default_factory=lambda: ["python", "manage.py", "migrate", "--noinput"],
        min_length=1,
        description="Command the migration job runs in the new image.",
    )
    release_commands: list[list[Text]] = Field(
        default_factory=list,
        description="Further commands run after migrating, in order (e.g. `createcachetable`).",
    )
    timeout_seconds: int = Field(
        900, ge=30, le=86400, description="Longest a migration job may run."
    )
    check: bool = Field(True, description="Refuse migrations that would break the running version.")
    acknowledged: list[AcknowledgedMigration] = Field(
        default_factory=list,
        description="Migrations (or whole apps) allowed despite unsafe findings, each with a "
        "reason.",
    )
