"""RDS PostgreSQL in private subnets: encrypted, TLS only, its master password kept by RDS
in Secrets Manager so that no password ever sits in Pulumi config or state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from pulumi_django.components.site import POSTGRES_PORT
from pulumi_django.config.database import DatabaseConfig

# `postgresql` is the server log (slow statements, errors); `upgrade` records engine upgrades.
LOG_EXPORTS = ["postgresql", "upgrade"]
# The free tier of Performance Insights keeps 7 days.
PERFORMANCE_INSIGHTS_DAYS = 7


def parameter_group_family(engine_version: str) -> str:
    """`17` or `17.4` -> `postgres17`: RDS names families by major version from 10 on."""
    return f"postgres{engine_version.split('.')[0]}"


def database_parameters(config: DatabaseConfig) -> list[aws.rds.ParameterGroupParameterArgsDict]:
    """Server settings the defaults lack: refuse unencrypted connections, log slow statements."""
    return [
        # Static on older majors, where RDS refuses an immediate apply; `pending-reboot` is
        # accepted either way (and 17 already defaults to 1).
        {"name": "rds.force_ssl", "value": "1", "apply_method": "pending-reboot"},
        {"name": "log_min_duration_statement", "value": str(config.slow_query_ms)},
    ]


class Database(pulumi.ComponentResource):
    """The app reads its credentials from the secret at `master_secret_arn` (JSON with
    `username` and `password`), which RDS creates and rotates."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    username: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: DatabaseConfig,
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_id: pulumi.Input[str],
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags or {})
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=subnet_ids,
            description=f"{name}: private subnets only",
            tags=tags,
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            f"{name}-params",
            family=parameter_group_family(config.engine_version),
            description=f"{name}: TLS only, slow statements logged",
            parameters=database_parameters(config),
            tags=tags,
            opts=child,
        )
        instance = aws.rds.Instance(
            f"{name}-db",
            engine="postgres",
            engine_version=config.engine_version,
            # A major version bump in config is deliberate; minor ones arrive on their own
            # in the maintenance window.
            allow_major_version_upgrade=True,
            auto_minor_version_upgrade=True,
            instance_class=config.instance_class,
            db_name=config.name,
            username=config.username,
            manage_master_user_password=True,
            port=POSTGRES_PORT,
            storage_type="gp3",
            allocated_storage=config.allocated_storage_gb,
            max_allocated_storage=config.max_allocated_storage_gb,
            storage_encrypted=True,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group_id],
            publicly_accessible=False,
            parameter_group_name=parameters.name,
            multi_az=config.multi_az,
            deletion_protection=config.deletion_protection,
            skip_final_snapshot=config.skip_final_snapshot,
            final_snapshot_identifier=None
            if config.skip_final_snapshot
            else f"{name}-final-snapshot",
            backup_retention_period=config.backup_retention_days,
            backup_window=config.backup_window,
            maintenance_window=config.maintenance_window,
            copy_tags_to_snapshot=True,
            enabled_cloudwatch_logs_exports=LOG_EXPORTS,
            performance_insights_enabled=config.performance_insights,
            performance_insights_retention_period=PERFORMANCE_INSIGHTS_DAYS
            if config.performance_insights
            else None,
            # Changes wait for the maintenance window unless someone applies them by hand.
            apply_immediately=False,
            tags=tags,
            opts=child,
        )
        self.address = instance.address
        self.port = instance.port
        self.database_name = instance.db_name
        self.username = instance.username
        self.master_secret_arn = instance.master_user_secrets.apply(_secret_arn)
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "database_name": self.database_name,
                "username": self.username,
                "master_secret_arn": self.master_secret_arn,
            }
        )


def _secret_arn(secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret]) -> str:
    arn = secrets[0].secret_arn if secrets else None
    if not arn:
        raise ValueError("RDS reported no managed master user secret")
    return arn
