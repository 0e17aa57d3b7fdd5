"""The migration job every release runs before the fleet moves."""

import re

from pydantic import Field, field_validator

from .base import Section, Text

MIGRATION_NAME = re.compile(r"^[a-z_][\w]*\.\d{4}_\w+$")


class AcknowledgedMigration(Section):
    """A migration allowed on purpose despite an unsafe finding."""

    migration: str = Field(description="`app_label.migration_name`, e.g. `shop.0007_drop_price`.")
    reason: str = Field(min_length=10, description="Why it is safe for this release.")

    @field_validator("migration")
    @classmethod
    def _name(cls, value: str) -> str:
        if not MIGRATION_NAME.match(value):
            raise ValueError("use app_label.migration_name, e.g. shop.0007_drop_price")
        return value


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
        description="Migrations allowed despite unsafe findings, each with a reason.",
    )
