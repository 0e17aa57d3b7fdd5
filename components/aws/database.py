"""RDS PostgreSQL in private subnets: encrypted, TLS only, its master password kept by RDS
in Secrets Manager so that no password ever sits in Pulumi config or state."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django._mock_answers import mock_arn, or_mock_answer, under_mocks
from pulumi_django.components.args import ComponentArgsError, arg, resource_ref
from pulumi_django.components.site import POSTGRES_PORT
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.errors import PulumiDjangoError

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


@dataclass(frozen=True, kw_only=True)
class DatabaseArgs:
    """The instance's settings, where it sits, and the groups of yours it uses."""

    config: DatabaseConfig = arg(
        "The database section: engine version, instance class, storage, Multi-AZ, backups, "
        "windows, deletion protection, the slow-statement threshold. Default: the section's "
        "defaults (production's).",
        default_factory=DatabaseConfig,
    )
    security_group_id: pulumi.Input[str] = arg(
        "The database's security group (`Network.database_security_group_id`): the only "
        "group attached, so what it lets in is all that reaches the instance."
    )
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = arg(
        "Private subnets (2 or more AZs) for the subnet group created here "
        "(`Network.private_subnet_ids`). Default: none, which needs `subnet_group`.",
        default=None,
    )
    subnet_group: aws.rds.SubnetGroup | pulumi.Input[str] | None = arg(
        "An RDS subnet group of yours (the resource or its name) instead of one created over "
        "`subnet_ids`. Default: None, one is created.",
        default=None,
    )
    parameter_group: aws.rds.ParameterGroup | pulumi.Input[str] | None = arg(
        "An RDS parameter group of yours (the resource or its name), of the engine version's "
        "family (`postgres17`, ...), instead of the one created here; `config.slowQueryMs` "
        "then does nothing, and TLS is only enforced if yours sets `rds.force_ssl` to 1. "
        "Default: None, one is created that forces TLS and logs slow statements.",
        default=None,
    )

    def __post_init__(self) -> None:
        if (self.subnet_ids is None) == (self.subnet_group is None):
            raise ComponentArgsError(
                "DatabaseArgs: give either subnet_ids (a subnet group is created over them) "
                "or subnet_group (yours), not both and not neither"
            )


class Database(pulumi.ComponentResource):
    """The app reads its credentials from the secret at `master_secret_arn` (JSON with
    `username` and `password`), which RDS creates and rotates.

    Children: `instance`; `subnet_group` and `parameter_group` are None when brought."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    username: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    instance: aws.rds.Instance
    subnet_group: aws.rds.SubnetGroup | None
    parameter_group: aws.rds.ParameterGroup | None

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        self.subnet_group = self.parameter_group = None
        subnet_group = args.subnet_group
        if subnet_group is None:
            self.subnet_group = subnet_group = aws.rds.SubnetGroup(
                f"{name}-subnets",
                subnet_ids=args.subnet_ids,
                description=f"{name}: private subnets only",
                opts=child,
            )
        parameter_group = args.parameter_group
        if parameter_group is None:
            self.parameter_group = parameter_group = aws.rds.ParameterGroup(
                f"{name}-params",
                family=parameter_group_family(config.engine_version),
                description=f"{name}: TLS only, slow statements logged",
                parameters=database_parameters(config),
                opts=child,
            )
        self.instance = instance = aws.rds.Instance(
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
            db_subnet_group_name=resource_ref(subnet_group, "name"),
            vpc_security_group_ids=[args.security_group_id],
            publicly_accessible=False,
            parameter_group_name=resource_ref(parameter_group, "name"),
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
            opts=child,
        )
        self.address = or_mock_answer(instance.address, f"{name}-db.mock.rds.amazonaws.com")
        self.port = instance.port
        self.database_name = instance.db_name
        self.username = instance.username
        mocked_arn = mock_arn("secretsmanager", f"secret:rds!{name}-db") if under_mocks() else None
        self.master_secret_arn = instance.master_user_secrets.apply(
            lambda secrets: _secret_arn(secrets, mocked_arn)
        )
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "database_name": self.database_name,
                "username": self.username,
                "master_secret_arn": self.master_secret_arn,
            }
        )


def _secret_arn(
    secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret] | None, mocked_arn: str | None
) -> str:
    """The secret RDS made; `mocked_arn` stands in when a unit test's mocks report none."""
    arn = (secrets[0].secret_arn if secrets else None) or mocked_arn
    if not arn:
        raise PulumiDjangoError("RDS reported no managed master user secret")
    return arn
