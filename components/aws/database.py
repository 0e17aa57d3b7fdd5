"""RDS PostgreSQL in private subnets: encrypted, TLS only, its master password kept by RDS
in Secrets Manager so that no password ever sits in Pulumi config or state."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from pulumi_django._mock_answers import (
    MOCK_ACCOUNT,
    mock_arn,
    mock_region,
    or_mock_answer,
    under_mocks,
)
from pulumi_django.components.args import ComponentArgsError, arg, check_name, resource_ref
from pulumi_django.components.site import POSTGRES_PORT
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.config.names import AUTONAME_EXAMPLE, postgres_major
from pulumi_django.config.security import ENHANCED_MONITORING_INTERVALS
from pulumi_django.errors import PulumiDjangoError
from pulumi_django.providers.aws_session import AwsSession, session_input
from pulumi_django.providers.data_store_guard import DataStoreGuard
from pulumi_django.providers.rds_log_group import RdsLogGroup
from pulumi_django.rendering.log_bucket_policy import rds_monitoring_assume_role_policy

# `postgresql` is the server log (slow statements, errors); `upgrade` records engine upgrades.
LOG_EXPORTS = ["postgresql", "upgrade"]
# The free tier of Performance Insights keeps 7 days.
PERFORMANCE_INSIGHTS_DAYS = 7
# The random part of the final snapshot's identifier (8 hex digits), drawn once per instance.
SNAPSHOT_SUFFIX_BYTES = 4
# What a unit test's mocks, answering nothing for the random suffix, are taken to have drawn.
MOCK_SNAPSHOT_SUFFIX = "0a1b2c3d"
# Where RDS writes an exported log, `<prefix><identifier>/<log>` (and creates the group, never
# expiring, unless it exists).
RDS_LOG_GROUP_PREFIX = "/aws/rds/instance/"
DEFAULT_LOG_RETENTION_DAYS = 30
REPLACEMENT_CONSEQUENCE = (
    "RDS would create a new, empty instance and delete this one (after its final snapshot, "
    "unless skipFinalSnapshot)"
)
# Enhanced monitoring: the AWS managed policy that lets its agent write the OS metrics to
# CloudWatch Logs (the account's `RDSOSMetrics` log group). The intervals RDS accepts are
# `config.security.ENHANCED_MONITORING_INTERVALS`.
ENHANCED_MONITORING_POLICY = "iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


# What a unit test's mocks, answering nothing for the instance's DbiResourceId, stand in with.
MOCK_RESOURCE_ID = "db-ABCDEFGHIJKLMNOPQRSTUVWXY0"


@dataclass(frozen=True)
class AppDatabaseRole:
    """The app's own PostgreSQL role (`database.appUsername`), which the release creates and
    updates as the master user; the app logs in as it with an RDS IAM token (`auth="iam"`,
    which needs the instance's `resource_id`, its DbiResourceId) or with a generated password
    kept in a secret of its own (`auth="password"`). docs/security.md."""

    username: str = "app"
    auth: Literal["iam", "password"] = "iam"
    resource_id: pulumi.Input[str] | None = None


def parameter_group_family(engine_version: str) -> str:
    """`17` or `17.4` -> `postgres17`: RDS names families by major version from 10 on."""
    return f"postgres{postgres_major(engine_version)}"


def replacement_identity(
    config: DatabaseConfig, kms_key_arn: pulumi.Input[str] | None
) -> dict[str, pulumi.Input[str]]:
    """The instance's inputs RDS sets only at creation (a change to one replaces the instance),
    under the config keys that set them."""
    return {
        "engine": "postgres",
        "database.name": config.name,
        "database.username": config.username,
        # The key's ARN; "" for the AWS managed key (random keepers take strings only).
        "security.customerManagedKey": "" if kms_key_arn is None else kms_key_arn,
    }


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
    kms_key_arn: pulumi.Input[str] | None = arg(
        "A customer-managed KMS key's ARN (`StackKey.arn`) for the storage, Performance "
        "Insights and the master user secret. Changing it replaces the instance (RDS cannot "
        "re-encrypt one in place). Default: None, the AWS managed keys `aws/rds` and "
        "`aws/secretsmanager`.",
        default=None,
    )
    enhanced_monitoring_seconds: int = arg(
        "RDS enhanced monitoring: seconds between OS metric samples, one of "
        f"{', '.join(map(str, ENHANCED_MONITORING_INTERVALS))} "
        "(`security.enhancedMonitoringSeconds`). Default: 0, off.",
        default=0,
    )
    monitoring_role: aws.iam.Role | pulumi.Input[str] | None = arg(
        "The IAM role (resource or ARN) RDS enhanced monitoring assumes, instead of the one "
        "created here (trusting `monitoring.rds.amazonaws.com` for this account's instances, "
        "with AmazonRDSEnhancedMonitoringRole attached). Default: None, one is created when "
        "`enhanced_monitoring_seconds` is set.",
        default=None,
    )
    protect: bool = arg(
        "Pulumi's `protect` on the instance: `pulumi destroy`, removing it from the program or "
        "a change that replaces it stops with an error until a `pulumi up` turned this off "
        "(`django:protect`). Default: True.",
        default=True,
    )
    allow_replacement: bool = arg(
        "Let a change that replaces the instance go through (a new database name or master "
        "user, another KMS key, another network); without it such a change is refused at "
        "preview by the instance's guard, one line naming it (`django:allowReplacement`). "
        "Default: False.",
        default=False,
    )
    network_identity: Mapping[str, pulumi.Input[str]] = arg(
        "What identifies the network the instance lives in, by config key (e.g. "
        "`{'network.cidr': '10.0.0.0/16'}`): a change to it moves the instance out of its "
        "subnets, which the guard refuses like a replacement. Default: none, not guarded.",
        default_factory=dict,
    )
    log_retention_days: int = arg(
        "Days CloudWatch Logs keeps the exported logs: their log groups (RDS's own names, "
        "`/aws/rds/instance/<identifier>/<log>`) are created once the instance exists, or "
        "taken as RDS created them, and given this retention (`RdsLogGroup`). Default: 30.",
        default=DEFAULT_LOG_RETENTION_DAYS,
    )
    aws_session: AwsSession | None = arg(
        "The AWS identity the log groups' boto3 calls act as (profile, roles to assume). "
        "Default: the stack's `aws:` settings, as the site's AWS provider reads them.",
        default=None,
    )

    def __post_init__(self) -> None:
        if self.enhanced_monitoring_seconds not in ENHANCED_MONITORING_INTERVALS:
            raise ComponentArgsError(
                f"DatabaseArgs.enhanced_monitoring_seconds = {self.enhanced_monitoring_seconds}: "
                f"RDS accepts one of {', '.join(map(str, ENHANCED_MONITORING_INTERVALS))}"
            )
        if self.monitoring_role is not None and not self.enhanced_monitoring_seconds:
            raise ComponentArgsError(
                "DatabaseArgs.monitoring_role needs enhanced_monitoring_seconds: RDS refuses a "
                "monitoring role with monitoring off"
            )
        if (self.subnet_ids is None) == (self.subnet_group is None):
            raise ComponentArgsError(
                "DatabaseArgs: give either subnet_ids (a subnet group is created over them) "
                "or subnet_group (yours), not both and not neither"
            )


class Database(pulumi.ComponentResource):
    """The master user's credentials are in the secret at `master_secret_arn` (JSON with
    `username` and `password`), which RDS creates and rotates; the release (migrations) uses
    them. The app connects as `app_role` (docs/security.md).

    Children: `instance`; `subnet_group` and `parameter_group` are None when brought;
    `monitoring_role` and `monitoring_policy_attachment`, set when enhanced monitoring is on and
    no role is brought; `guard` (refuses a change that would replace the instance),
    `snapshot_suffix` (the random part of the final snapshot's identifier, drawn again only
    when the instance is replaced) and `log_groups` (`RdsLogGroup` by exported log, with
    retention).

    The instance keeps the identifier Pulumi generates (`<name>-db-` and 7 random characters):
    an explicit one would rename a deployed instance in place, changing its endpoint under
    the running tasks (docs/operations.md, "Stateful resources").

    The parameter group created here is one per major version (`<name>-params-postgres17`): a
    major upgrade creates the new one, moves the instance to it in the same ModifyDBInstance
    call as the engine version, and deletes the old one last (docs/operations.md)."""

    address: pulumi.Output[str]
    port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    username: pulumi.Output[str]
    master_secret_arn: pulumi.Output[str]
    resource_id: pulumi.Output[str]
    app_role: AppDatabaseRole
    instance: aws.rds.Instance
    subnet_group: aws.rds.SubnetGroup | None
    parameter_group: aws.rds.ParameterGroup | None
    monitoring_role: aws.iam.Role | None
    monitoring_policy_attachment: aws.iam.RolePolicyAttachment | None
    identifier: pulumi.Output[str]
    guard: DataStoreGuard
    snapshot_suffix: random.RandomId
    log_groups: dict[str, RdsLogGroup]

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("Database", name, major=postgres_major(args.config.engine_version))
        super().__init__("pulumi-django:database:Database", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        identity = replacement_identity(config, args.kms_key_arn)
        self.guard = guard = DataStoreGuard(
            f"{name}-db-guard",
            kind="database",
            resource=f"RDS instance {name}-db",
            identity={**identity, **args.network_identity},
            allow_replacement=args.allow_replacement,
            consequence=REPLACEMENT_CONSEQUENCE,
            allow_hint="To replace it on purpose, add database to django:allowReplacement "
            "(DatabaseArgs.allow_replacement) for that `pulumi up`",
            immediate={"database.engineVersion (major)": postgres_major(config.engine_version)},
            apply_immediately=config.apply_immediately,
            immediate_hint="RDS takes the new major's parameter group only with an immediate "
            "upgrade: set database.applyImmediately to true for that `pulumi up`",
            opts=child,
        )
        guarded = pulumi.ResourceOptions(parent=self, depends_on=[guard])
        # Drawn once, and again only when the instance is replaced (a replacement-forcing input
        # or its network changes): a replacement's new instance, or the next one after a
        # destroy, never meets its predecessor's final snapshot (DBSnapshotAlreadyExists), while
        # every plan of the same state names the same one. The old instance's deletion uses the
        # snapshot name in its own state.
        self.snapshot_suffix = suffix = random.RandomId(
            f"{name}-db-snapshot-id",
            byte_length=SNAPSHOT_SUFFIX_BYTES,
            keepers={**identity, **args.network_identity},
            opts=child,
        )
        final_snapshot = pulumi.Output.concat(
            f"{name}-final-", or_mock_answer(suffix.hex, MOCK_SNAPSHOT_SUFFIX)
        )
        self.subnet_group = self.parameter_group = None
        subnet_group = args.subnet_group
        if subnet_group is None:
            self.subnet_group = subnet_group = aws.rds.SubnetGroup(
                f"{name}-subnets",
                subnet_ids=args.subnet_ids,
                description=f"{name}: private subnets only",
                opts=guarded,
            )
        parameter_group = args.parameter_group
        if parameter_group is None:
            family = parameter_group_family(config.engine_version)
            # One group per major version: a major upgrade creates the new family's group
            # before the instance moves to it, and deletes the old one after (it is no longer
            # declared). The alias keeps the group a stack had before this naming.
            self.parameter_group = parameter_group = aws.rds.ParameterGroup(
                f"{name}-params-{family}",
                family=family,
                description=f"{name}: TLS only, slow statements logged",
                parameters=database_parameters(config),
                opts=pulumi.ResourceOptions(
                    parent=self, aliases=[pulumi.Alias(name=f"{name}-params")]
                ),
            )
        region = or_mock_answer(
            aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region,
            mock_region(),
        )
        monitoring_role_arn = self._monitoring_role(name, args, region, child)
        self.instance = instance = aws.rds.Instance(
            f"{name}-db",
            # No `identifier`: Pulumi's auto-name stays, so a deployed instance keeps its name
            # and endpoint (an explicit one renames it in place, under the running tasks).
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
            kms_key_id=args.kms_key_arn,
            master_user_secret_kms_key_id=args.kms_key_arn,
            db_subnet_group_name=resource_ref(subnet_group, "name"),
            vpc_security_group_ids=[args.security_group_id],
            publicly_accessible=False,
            parameter_group_name=resource_ref(parameter_group, "name"),
            multi_az=config.multi_az,
            deletion_protection=config.deletion_protection,
            skip_final_snapshot=config.skip_final_snapshot,
            final_snapshot_identifier=None if config.skip_final_snapshot else final_snapshot,
            backup_retention_period=config.backup_retention_days,
            backup_window=config.backup_window,
            maintenance_window=config.maintenance_window,
            copy_tags_to_snapshot=True,
            # The app's own role logs in with IAM tokens (database.appAuth: iam); the master
            # keeps its password. docs/security.md.
            iam_database_authentication_enabled=config.app_auth == "iam",
            enabled_cloudwatch_logs_exports=LOG_EXPORTS,
            monitoring_interval=args.enhanced_monitoring_seconds or None,
            monitoring_role_arn=monitoring_role_arn,
            performance_insights_enabled=config.performance_insights,
            performance_insights_retention_period=PERFORMANCE_INSIGHTS_DAYS
            if config.performance_insights
            else None,
            performance_insights_kms_key_id=args.kms_key_arn
            if config.performance_insights
            else None,
            # On by default: a deferred change shows in every preview until the maintenance
            # window, and a major upgrade needs it (database.applyImmediately).
            apply_immediately=config.apply_immediately,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[guard]),
        )
        self.identifier = or_mock_answer(instance.identifier, f"{name}-db{AUTONAME_EXAMPLE}")
        self.log_groups = self._log_groups(name, args, region)
        self.address = or_mock_answer(instance.address, f"{name}-db.mock.rds.amazonaws.com")
        self.port = instance.port
        self.database_name = instance.db_name
        self.username = instance.username
        mocked_arn = mock_arn("secretsmanager", f"secret:rds!{name}-db") if under_mocks() else None
        self.master_secret_arn = instance.master_user_secrets.apply(
            lambda secrets: _secret_arn(secrets, mocked_arn)
        )
        # The DbiResourceId names the instance in `rds-db:connect` grants.
        self.resource_id = or_mock_answer(instance.resource_id, MOCK_RESOURCE_ID)
        self.app_role = AppDatabaseRole(
            username=config.app_username, auth=config.app_auth, resource_id=self.resource_id
        )
        self.register_outputs(
            {
                "address": self.address,
                "port": self.port,
                "database_name": self.database_name,
                "username": self.username,
                "master_secret_arn": self.master_secret_arn,
                "identifier": self.identifier,
                "resource_id": self.resource_id,
            }
        )

    def _log_groups(
        self, name: str, args: DatabaseArgs, region: pulumi.Output[str]
    ) -> dict[str, RdsLogGroup]:
        """The log groups RDS exports to, given a retention (and the key) once the instance
        exists: RDS creates a group that never expires on its first export unless one exists
        (terraform-provider-aws #5348), and the identifier is the instance's auto-name, known
        only then; `RdsLogGroup` creates the group or takes RDS's. Named after the identifier,
        they follow it: a replacement's instance gets groups of its own; the old ones stay until
        their logs expire."""
        session = session_input(args.aws_session)
        # RDS stores (and names the groups after) the identifier in lowercase.
        stored = self.identifier.apply(str.lower)
        return {
            log: RdsLogGroup(
                f"{name}-db-{log}-logs",
                log_group_name=pulumi.Output.concat(RDS_LOG_GROUP_PREFIX, stored, "/", log),
                retention_in_days=args.log_retention_days,
                kms_key_arn=args.kms_key_arn,
                region=region,
                aws_session=session,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.instance]),
            )
            for log in LOG_EXPORTS
        }

    def _monitoring_role(
        self,
        name: str,
        args: DatabaseArgs,
        region: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str] | None:
        """The enhanced monitoring role's ARN, None when monitoring is off. A created role's ARN
        resolves once the managed policy is attached: RDS refuses a role without it
        (`IAM role ARN value is invalid or does not include the required permissions for:
        ENHANCED_MONITORING`), so the instance waits for the attachment."""
        self.monitoring_role = self.monitoring_policy_attachment = None
        if not args.enhanced_monitoring_seconds:
            return None
        if args.monitoring_role is not None:
            return resource_ref(args.monitoring_role, "arn")
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account_id = or_mock_answer(
            aws.get_caller_identity_output(opts=invoke).account_id, MOCK_ACCOUNT
        )
        partition = or_mock_answer(aws.get_partition_output(opts=invoke).partition, "aws")
        role = self.monitoring_role = aws.iam.Role(
            f"{name}-monitoring",
            description=f"{name}: RDS enhanced monitoring writes OS metrics to CloudWatch Logs",
            assume_role_policy=pulumi.Output.all(partition, region, account_id).apply(
                lambda values: json.dumps(
                    rds_monitoring_assume_role_policy(
                        partition=values[0], region=values[1], account_id=values[2]
                    )
                )
            ),
            opts=child,
        )
        attachment = self.monitoring_policy_attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            role=role.name,
            policy_arn=partition.apply(lambda part: f"arn:{part}:{ENHANCED_MONITORING_POLICY}"),
            opts=child,
        )
        return pulumi.Output.all(role.arn, attachment.id).apply(lambda values: str(values[0]))


def _secret_arn(
    secrets: Sequence[aws.rds.outputs.InstanceMasterUserSecret] | None, mocked_arn: str | None
) -> str:
    """The secret RDS made; `mocked_arn` stands in when a unit test's mocks report none."""
    arn = (secrets[0].secret_arn if secrets else None) or mocked_arn
    if not arn:
        raise PulumiDjangoError("RDS reported no managed master user secret")
    return arn
