"""RDS PostgreSQL as `pulumi up` registers it: private, encrypted, TLS only, its password kept
by RDS in Secrets Manager; prod's safety nets on by default, dev's relaxations explicit."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml

from pulumi_django.cli.plan_diff import (
    HEAD_REF,
    PlanDiff,
    Side,
    diff_json,
    diff_plans,
    render_markdown,
    render_text,
)
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.database import (
    DEFAULT_LOG_RETENTION_DAYS,
    LOG_EXPORTS,
    MOCK_SNAPSHOT_SUFFIX,
    SNAPSHOT_SUFFIX_BYTES,
    Database,
    DatabaseArgs,
    parameter_group_family,
)
from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.config.names import AUTONAME_EXAMPLE
from pulumi_django.providers.aws_session import AwsSession
from pulumi_django.recorder import MOCK_ACCOUNT, Recording, record

INSTANCE = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
RANDOM_ID = "random:index/randomId:RandomId"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
RDS_LOG_GROUP = "pulumi-python:dynamic/database:RdsLogGroup"
GUARD = "pulumi-python:dynamic/data:DataStoreGuard"
PRIVATE_SUBNETS = ["subnet-private-a", "subnet-private-b"]
DATABASE_GROUP = "sg-database"

PROD = DatabaseConfig()
DEV = DatabaseConfig(
    multi_az=False, deletion_protection=False, skip_final_snapshot=True, performance_insights=False
)


OUTPUTS = ("address", "port", "database_name", "username", "master_secret_arn")


def scalar_outputs(database: Database) -> dict[str, Any]:
    return {output: getattr(database, output) for output in OUTPUTS}


def record_database(
    config: DatabaseConfig,
    exports: Callable[[Database], Mapping[str, Any]] = scalar_outputs,
    bring: Callable[[], Mapping[str, Any]] = dict,
    **args: Any,
) -> Recording:
    """`args` are DatabaseArgs' other fields (by default the private subnets and the database
    group); `bring` makes, inside the program, groups of the user's own to pass as args."""

    def program() -> None:
        defaults = {"subnet_ids": PRIVATE_SUBNETS, "security_group_id": DATABASE_GROUP}
        database = Database("data", DatabaseArgs(config=config, **{**defaults, **args, **bring()}))
        for output, value in exports(database).items():
            pulumi.export(output, value)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


def instance(recording: Recording) -> dict[str, Any]:
    return recording.one(INSTANCE).inputs


@pytest.fixture(scope="module")
def prod() -> Recording:
    return record_database(PROD)


@pytest.fixture(scope="module")
def dev() -> Recording:
    return record_database(DEV)


@pytest.fixture(params=["prod", "dev"])
def either(request: pytest.FixtureRequest) -> Recording:
    recording: Recording = request.getfixturevalue(request.param)
    return recording


def test_config_defaults_are_production_safe() -> None:
    assert PROD.multi_az and PROD.deletion_protection and PROD.performance_insights
    assert not PROD.skip_final_snapshot
    assert PROD.backup_retention_days >= 7


def test_only_private_subnets_and_the_database_group(either: Recording) -> None:
    inputs = instance(either)
    subnet_group = either.one(SUBNET_GROUP)
    assert subnet_group.inputs["subnetIds"] == PRIVATE_SUBNETS
    assert inputs["dbSubnetGroupName"] == f"{subnet_group.name}-a1b2c3d"  # its mocked auto-name
    assert inputs["publiclyAccessible"] is False
    assert inputs["vpcSecurityGroupIds"] == [DATABASE_GROUP]
    assert either.depends_on(either.one(INSTANCE).urn, subnet_group.urn)


def test_storage_is_encrypted_gp3_that_grows_to_its_ceiling(either: Recording) -> None:
    inputs = instance(either)
    assert inputs["storageEncrypted"] is True
    assert inputs["storageType"] == "gp3"
    assert inputs["allocatedStorage"] == PROD.allocated_storage_gb
    assert inputs["maxAllocatedStorage"] == PROD.max_allocated_storage_gb


def test_rds_keeps_the_password_in_secrets_manager(either: Recording) -> None:
    assert instance(either)["manageMasterUserPassword"] is True
    for resource in either.resources:
        assert not {"password", "passwordWo"} & set(resource.inputs), resource.name
    recorded = either.one(INSTANCE)
    assert either.outputs["master_secret_arn"] == (
        f"arn:aws:secretsmanager:us-east-1:{MOCK_ACCOUNT}:secret:rds!{recorded.name}"
    )


def test_parameter_group_forces_tls_and_logs_slow_statements(either: Recording) -> None:
    group = either.one(PARAMETER_GROUP)
    assert group.inputs["family"] == "postgres17"
    parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert parameters == {
        "rds.force_ssl": "1",
        "log_min_duration_statement": str(PROD.slow_query_ms),
    }
    assert instance(either)["parameterGroupName"] == f"{group.name}-a1b2c3d"
    assert either.depends_on(either.one(INSTANCE).urn, group.urn)
    # Static on older majors: an immediate apply would be refused there.
    force_ssl = next(p for p in group.inputs["parameters"] if p["name"] == "rds.force_ssl")
    assert force_ssl["applyMethod"] == "pending-reboot"


def test_engine_upgrades_and_windows(either: Recording) -> None:
    inputs = instance(either)
    assert inputs["engine"] == "postgres"
    assert inputs["engineVersion"] == PROD.engine_version
    assert inputs["autoMinorVersionUpgrade"] is True
    # Applied during `pulumi up`: a deferred change would show in every preview until the
    # maintenance window, and a major upgrade needs it.
    assert inputs["applyImmediately"] is True
    assert inputs["allowMajorVersionUpgrade"] is True
    assert inputs["backupWindow"] == PROD.backup_window
    assert inputs["maintenanceWindow"] == PROD.maintenance_window


def test_backups_logs_and_children(either: Recording) -> None:
    inputs = instance(either)
    assert inputs["backupRetentionPeriod"] >= 7
    assert inputs["copyTagsToSnapshot"] is True  # the provider's default tags reach snapshots
    assert "postgresql" in inputs["enabledCloudwatchLogsExports"]
    component = either.one("pulumi-django:database:Database")
    for resource in either.resources:
        if resource.custom:
            assert resource.parent == component.urn, resource.name
            assert "tags" not in resource.inputs, resource.name


def test_prod_has_every_safety_net(prod: Recording) -> None:
    inputs = instance(prod)
    assert inputs["multiAz"] is True
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"] == f"data-final-{MOCK_SNAPSHOT_SUFFIX}"
    assert inputs["performanceInsightsEnabled"] is True
    assert inputs["performanceInsightsRetentionPeriod"] == 7


def test_dev_relaxes_exactly_what_its_config_says(dev: Recording, prod: Recording) -> None:
    relaxed = instance(dev)
    assert relaxed["multiAz"] is False
    assert relaxed["deletionProtection"] is False
    assert relaxed["skipFinalSnapshot"] is True
    assert relaxed["performanceInsightsEnabled"] is False
    strict = instance(prod)
    differing = {key for key in set(strict) | set(relaxed) if strict.get(key) != relaxed.get(key)}
    assert differing == {
        "multiAz",
        "deletionProtection",
        "skipFinalSnapshot",
        "finalSnapshotIdentifier",
        "performanceInsightsEnabled",
        "performanceInsightsRetentionPeriod",
    }


def test_outputs(prod: Recording) -> None:
    name = prod.one(INSTANCE).name
    assert prod.outputs["address"] == f"{name}.abcdefghijkl.us-east-1.rds.amazonaws.com"
    assert prod.outputs["port"] == 5432
    assert prod.outputs["database_name"] == PROD.name
    assert prod.outputs["username"] == PROD.username


@pytest.mark.parametrize(
    ("version", "family"), [("17", "postgres17"), ("16.4", "postgres16"), ("13.15", "postgres13")]
)
def test_parameter_group_family_follows_the_major(version: str, family: str) -> None:
    assert parameter_group_family(version) == family
    recording = record_database(DatabaseConfig(engine_version=version))
    assert recording.one(PARAMETER_GROUP).inputs["family"] == family
    assert instance(recording)["engineVersion"] == version


def test_slow_statement_threshold_is_configurable() -> None:
    recording = record_database(DatabaseConfig(slow_query_ms=0))
    parameters = {
        p["name"]: p["value"] for p in recording.one(PARAMETER_GROUP).inputs["parameters"]
    }
    assert parameters["log_min_duration_statement"] == "0"


# --- your own subnet and parameter groups, and the children --------------------------------


def children(database: Database) -> dict[str, Any]:
    return {
        "instance": database.instance.urn,
        "subnet_group": database.subnet_group.urn if database.subnet_group else None,
        "parameter_group": database.parameter_group.urn if database.parameter_group else None,
    }


def test_every_child_is_an_attribute() -> None:
    recording = record_database(PROD, exports=children)
    assert recording.outputs == {
        "instance": recording.one(INSTANCE).urn,
        "subnet_group": recording.one(SUBNET_GROUP).urn,
        "parameter_group": recording.one(PARAMETER_GROUP).urn,
    }


def test_a_subnet_group_brought_by_name_is_used_and_none_is_created() -> None:
    recording = record_database(
        PROD, exports=children, subnet_ids=None, subnet_group="shared-private"
    )
    assert not recording.find(SUBNET_GROUP)
    assert instance(recording)["dbSubnetGroupName"] == "shared-private"
    assert recording.outputs["subnet_group"] is None
    assert recording.outputs["parameter_group"] == recording.one(PARAMETER_GROUP).urn


def test_a_parameter_group_brought_by_name_is_used_and_none_is_created() -> None:
    recording = record_database(PROD, exports=children, parameter_group="org-postgres17")
    assert not recording.find(PARAMETER_GROUP)
    assert instance(recording)["parameterGroupName"] == "org-postgres17"
    assert recording.outputs["parameter_group"] is None
    assert recording.outputs["subnet_group"] == recording.one(SUBNET_GROUP).urn


def test_groups_brought_as_resources_are_referenced_by_name() -> None:
    def bring() -> dict[str, Any]:
        return {
            "subnet_group": aws.rds.SubnetGroup("mine", subnet_ids=PRIVATE_SUBNETS),
            "parameter_group": aws.rds.ParameterGroup("mine", family="postgres17"),
        }

    recording = record_database(PROD, bring=bring, subnet_ids=None)
    subnets, parameters = recording.one(SUBNET_GROUP), recording.one(PARAMETER_GROUP)
    assert subnets.name == parameters.name == "mine"  # the user's, not ours
    inputs = instance(recording)
    assert inputs["dbSubnetGroupName"] == "mine-a1b2c3d"  # the mocked auto-names
    assert inputs["parameterGroupName"] == "mine-a1b2c3d"
    assert recording.depends_on(recording.one(INSTANCE).urn, subnets.urn)
    assert recording.depends_on(recording.one(INSTANCE).urn, parameters.urn)


@pytest.mark.parametrize(
    "args",
    [{"subnet_ids": None}, {"subnet_ids": PRIVATE_SUBNETS, "subnet_group": "shared-private"}],
    ids=["neither", "both"],
)
def test_subnets_come_from_exactly_one_argument(args: dict[str, Any]) -> None:
    with pytest.raises(ComponentArgsError) as raised:
        DatabaseArgs(security_group_id=DATABASE_GROUP, **args)
    assert str(raised.value) == (
        "DatabaseArgs: give either subnet_ids (a subnet group is created over them) or "
        "subnet_group (yours), not both and not neither"
    )


# --- the shipped stack files ---------------------------------------------------------------


def stack_values(project_root: Path, stack: str) -> dict[str, str]:
    """The `django:` keys of a shipped stack file, as Pulumi hands them to the program."""
    document = yaml.safe_load((project_root / f"Pulumi.{stack}.yaml").read_text())
    return {
        key.removeprefix("django:"): value if isinstance(value, str) else json.dumps(value)
        for key, value in document["config"].items()
        if key.startswith("django:")
    }


def test_prod_stack_keeps_every_safety_net(project_root: Path) -> None:
    config = parse_stack_config(stack_values(project_root, "prod"), set()).database
    assert config.multi_az and config.deletion_protection and config.performance_insights
    assert not config.skip_final_snapshot


def test_dev_stack_writes_its_relaxations_down(project_root: Path) -> None:
    values = stack_values(project_root, "dev")
    written = json.loads(values["database"])
    assert {"multiAz": False, "deletionProtection": False, "skipFinalSnapshot": True}.items() <= (
        written.items()
    )
    config = parse_stack_config(values, set()).database
    assert not config.multi_az and not config.deletion_protection and config.skip_final_snapshot


# --- config mistakes -----------------------------------------------------------------------


def database_problems(database: dict[str, Any], **sections: dict[str, Any]) -> list[str]:
    values = {"target": "aws", "database": json.dumps(database)}
    values |= {key: json.dumps(section) for key, section in sections.items()}
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(values, set())
    return raised.value.problems


@pytest.mark.parametrize(
    ("database", "path", "says"),
    [
        ({"backupRetentionDays": 3}, "django:database.backupRetentionDays = 3", "greater than"),
        ({"backupRetentionDays": 36}, "django:database.backupRetentionDays = 36", "less than"),
        ({"instanceClass": "t4g.small"}, "django:database.instanceClass", "db.t4g.small"),
        ({"instanceClass": "db.large"}, "django:database.instanceClass", "wrong format"),
        ({"engineVersion": "9.6"}, "django:database.engineVersion", "below 11"),
        ({"engineVersion": "latest"}, "django:database.engineVersion", "wrong format"),
        (
            {"allocatedStorageGb": 100, "maxAllocatedStorageGb": 100},
            "django:database:",
            "maxAllocatedStorageGb must exceed allocatedStorageGb",
        ),
        (
            {"backupWindow": "03:30-04:30", "maintenanceWindow": "sun:04:00-sun:05:00"},
            "django:database:",
            "overlaps maintenanceWindow",
        ),
        (
            {"backupWindow": "23:45-00:30", "maintenanceWindow": "mon:00:00-mon:01:00"},
            "django:database:",
            "overlaps maintenanceWindow",
        ),
        ({"backupWindow": "03:00-03:15"}, "django:database:", "30 minutes or more"),
        ({"backupWindow": "25:00-25:30"}, "django:database:", "not a time of day"),
        ({"maintenanceWindow": "sunday 04:00"}, "django:database.maintenanceWindow", "ddd:hh:mm"),
        ({"multiAZ": False}, "django:database.multiAZ", "unknown key"),
    ],
)
def test_database_mistakes_name_their_key(database: dict[str, Any], path: str, says: str) -> None:
    [problem] = database_problems(database)
    assert problem.startswith(path), problem
    assert says in problem, problem


def test_windows_that_touch_without_overlap_are_accepted() -> None:
    config = DatabaseConfig(backup_window="23:30-00:00", maintenance_window="sun:00:00-sun:00:30")
    assert config.backup_window == "23:30-00:00"


def test_multi_az_database_cannot_use_an_existing_network_with_one_private_subnet() -> None:
    existing = {
        "vpcId": "vpc-0123456789abcdef0",
        "publicSubnetIds": ["subnet-a", "subnet-b"],
        "privateSubnetIds": ["subnet-c"],
    }
    [problem] = database_problems({"multiAz": True}, network={"existing": existing})
    assert problem.startswith("django:network.existing.privateSubnetIds"), problem
    assert "Multi-AZ" in problem


# --- replacement safety: identifier, final snapshot, guard, protection ---------------------


def test_the_instance_keeps_pulumis_auto_name(either: Recording) -> None:
    """An explicit identifier would rename a deployed (auto-named) instance in place: a new
    endpoint at once, under the tasks still running the old release."""
    assert "identifier" not in instance(either)
    assert "identifierPrefix" not in instance(either)
    assert "identifier" not in either.one(INSTANCE).property_dependencies


def test_the_final_snapshot_is_drawn_per_instance(prod: Recording) -> None:
    """A fixed final snapshot name makes a second destroy, or a replacement, fail with
    DBSnapshotAlreadyExists: the name carries a random part drawn with the instance."""
    inputs, suffix = instance(prod), prod.one(RANDOM_ID)
    assert suffix.name == "data-db-snapshot-id"
    assert inputs["finalSnapshotIdentifier"] == f"data-final-{MOCK_SNAPSHOT_SUFFIX}"
    assert prod.one(INSTANCE).property_dependencies["finalSnapshotIdentifier"] == [suffix.urn]
    assert suffix.inputs["byteLength"] == SNAPSHOT_SUFFIX_BYTES == len(MOCK_SNAPSHOT_SUFFIX) // 2


@pytest.mark.parametrize("name", ["data", "a", "shop-prod-2", "x" * 20])
def test_the_final_snapshot_name_keeps_rdss_rules(name: str) -> None:
    """1 to 255 letters, digits and hyphens, a letter first, no `--`, no hyphen last."""

    def program() -> None:
        args = DatabaseArgs(
            config=PROD, subnet_ids=PRIVATE_SUBNETS, security_group_id=DATABASE_GROUP
        )
        Database(name, args)

    recording = record(
        program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"}
    )
    snapshot = instance(recording)["finalSnapshotIdentifier"]
    assert re.fullmatch(r"[A-Za-z](?:-?[A-Za-z0-9])*", snapshot), snapshot
    assert len(snapshot) <= 255


KEEPERS = {
    "engine": "postgres",
    "database.name": PROD.name,
    "database.username": PROD.username,
    "security.customerManagedKey": "",
}


def test_the_random_part_is_drawn_again_exactly_when_the_instance_is_replaced(
    prod: Recording,
) -> None:
    """Its keepers are the inputs RDS sets only at creation: the replacement (created, under
    a new auto-name, before the old instance is deleted) gets a new final snapshot name."""
    assert prod.one(RANDOM_ID).inputs["keepers"] == KEEPERS
    renamed = record_database(DatabaseConfig(name="shop", username="admin"))
    assert renamed.one(RANDOM_ID).inputs["keepers"] == {
        **KEEPERS,
        "database.name": "shop",
        "database.username": "admin",
    }
    # What RDS changes in place keeps it, and so the snapshot name.
    resized = record_database(
        DatabaseConfig(instance_class="db.r7g.large", engine_version="18", multi_az=False)
    )
    assert resized.one(RANDOM_ID).inputs == prod.one(RANDOM_ID).inputs


def test_a_dev_instance_without_final_snapshot_names_none(dev: Recording) -> None:
    assert "finalSnapshotIdentifier" not in instance(dev)


def test_the_instance_waits_for_its_guard_which_knows_its_identity(prod: Recording) -> None:
    guard = prod.one(GUARD)
    assert guard.name == "data-db-guard"
    assert guard.urn in prod.one(INSTANCE).dependencies
    assert guard.urn in prod.one(SUBNET_GROUP).dependencies
    assert guard.inputs["identity"] == KEEPERS
    assert guard.inputs["allow_replacement"] is False
    assert guard.inputs["immediate"] == {"database.engineVersion (major)": "17"}
    assert guard.inputs["apply_immediately"] is True


def test_the_guard_knows_the_network_and_what_is_allowed() -> None:
    recording = record_database(
        PROD, network_identity={"network.cidr": "10.0.0.0/16"}, allow_replacement=True
    )
    guard = recording.one(GUARD).inputs
    assert guard["identity"] == {**KEEPERS, "network.cidr": "10.0.0.0/16"}
    assert guard["allow_replacement"] is True
    # A move to another network that replaces the instance draws a new snapshot name too
    # (the name is Pulumi state only: changing it calls no RDS API).
    assert recording.one(RANDOM_ID).inputs["keepers"] == {**KEEPERS, "network.cidr": "10.0.0.0/16"}


def test_the_instance_is_protected_unless_told_otherwise(prod: Recording) -> None:
    assert prod.one(INSTANCE).options.get("protect") is True
    assert not record_database(PROD, protect=False).one(INSTANCE).options.get("protect")


def test_deferring_changes_is_an_explicit_key() -> None:
    deferred = record_database(DatabaseConfig(apply_immediately=False))
    assert instance(deferred)["applyImmediately"] is False
    # ... which the guard knows, to refuse a major upgrade then.
    assert deferred.one(GUARD).inputs["apply_immediately"] is False


# --- exported logs expire -------------------------------------------------------------------


@pytest.mark.parametrize("days", [None, 90])
def test_exported_logs_get_a_retention_once_the_instance_exists(days: int | None) -> None:
    """RDS creates `/aws/rds/instance/<id>/<log>` never expiring on its first export; the
    `RdsLogGroup`s, after the instance (its auto-named identifier is known only then), create
    each group or take RDS's, and give it the retention."""
    recording = (
        record_database(PROD) if days is None else record_database(PROD, log_retention_days=days)
    )
    recorded = recording.one(INSTANCE)
    identifier = f"{recorded.name}{AUTONAME_EXAMPLE}"  # the mocked auto-name
    groups = {group.inputs["log_group_name"]: group for group in recording.find(RDS_LOG_GROUP)}
    assert set(groups) == {f"/aws/rds/instance/{identifier}/{log}" for log in LOG_EXPORTS}
    assert {group.name for group in groups.values()} == {
        f"data-db-{log}-logs" for log in LOG_EXPORTS
    }
    assert set(recorded.inputs["enabledCloudwatchLogsExports"]) == set(LOG_EXPORTS)
    assert not recording.find(LOG_GROUP)  # none the instance would wait for
    for group in groups.values():
        assert group.inputs["retention_in_days"] == (days or DEFAULT_LOG_RETENTION_DAYS)
        assert group.inputs.get("kms_key_arn") is None
        assert group.inputs["region"] == "us-east-1"
        # After the instance, named after its identifier: a replacement's instance gets groups
        # of its own; and the instance does not wait for them.
        assert recorded.urn in group.dependencies
        assert recorded.urn in group.property_dependencies["log_group_name"]
        assert group.urn not in recorded.dependencies


def test_the_log_groups_take_the_stack_key_and_aws_identity() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    session = AwsSession(profile="ops")
    recording = record_database(PROD, kms_key_arn=key, aws_session=session)
    for group in recording.find(RDS_LOG_GROUP):
        assert group.inputs["kms_key_arn"] == key
        assert group.inputs["aws_session"] == session.settings()


def test_database_log_retention_defaults_to_the_fleets_and_takes_cloudwatchs_values() -> None:
    assert DatabaseConfig().log_retention_days is None
    assert DatabaseConfig(log_retention_days=14).log_retention_days == 14
    [problem] = database_problems({"logRetentionDays": 8})
    assert problem.startswith("django:database.logRetentionDays = 8"), problem
    assert "one of [1, 3, 5, 7, 14" in problem


def test_the_shipped_stacks_keep_rds_logs_as_long_as_the_apps(stack_plan: Any) -> None:
    for stack, days in (("dev", 7), ("prod", 90)):
        recording = stack_plan(stack).recording
        identifier = f"{recording.one(INSTANCE).name}{AUTONAME_EXAMPLE}"
        rds_groups = [
            group
            for group in recording.find(RDS_LOG_GROUP)
            if group.inputs["log_group_name"].startswith(f"/aws/rds/instance/{identifier}/")
        ]
        assert len(rds_groups) == len(LOG_EXPORTS), stack
        assert {group.inputs["retention_in_days"] for group in rds_groups} == {days}, stack


# --- major upgrades -------------------------------------------------------------------------


def plan_document(recording: Recording) -> dict[str, Any]:
    return {"resources": [resource.as_json() for resource in recording.resources]}


def upgrade_diff(before: str, after: str) -> PlanDiff:
    return diff_plans(
        plan_document(record_database(DatabaseConfig(engine_version=before))),
        plan_document(record_database(DatabaseConfig(engine_version=after))),
        stack="dev",
        base_side=Side("v1", "0" * 40),
        head_side=Side(HEAD_REF, None),
    )


def test_one_parameter_group_per_major_version_the_old_name_aliased(prod: Recording) -> None:
    group = prod.one(PARAMETER_GROUP)
    assert group.name == "data-params-postgres17"
    assert group.options["aliases"] == [group.urn.replace("data-params-postgres17", "data-params")]


def test_a_major_upgrade_is_an_in_place_upgrade_with_downtime_in_the_plan_diff() -> None:
    """17 -> 18 in one `pulumi up`: the postgres18 group is created, the instance moves to it
    with the engine version (applied immediately), the postgres17 group goes last; nothing is
    replaced, and the review says the database is offline meanwhile."""
    diff = upgrade_diff("17", "18")
    assert {(r["type"], r["name"]) for r in diff.added} == {
        (PARAMETER_GROUP, "data-params-postgres18")
    }
    assert {(r["type"], r["name"]) for r in diff.removed} == {
        (PARAMETER_GROUP, "data-params-postgres17")
    }
    assert diff.risks == [] and diff.replaced == []
    [change] = [c for c in diff.changed if c.type == INSTANCE]
    assert {c.path: (c.before, c.after) for c in change.inputs} == {
        "engineVersion": ("17", "18"),
        "parameterGroupName": ("data-params-postgres17-a1b2c3d", "data-params-postgres18-a1b2c3d"),
    }
    [upgrade] = diff.upgrades
    assert (upgrade.name, upgrade.kind, upgrade.path) == ("data-db", "database", "engineVersion")
    assert (upgrade.before, upgrade.after) == ("17", "18")
    assert "unavailable" in upgrade.downtime and "Multi-AZ included" in upgrade.downtime
    text = render_text(diff)
    assert "! IN-PLACE UPGRADES WITH DOWNTIME (the data is kept):" in text
    assert f'!   {INSTANCE}  data-db (database): engineVersion "17" -> "18": in-place' in text
    assert '      engineVersion: "17" -> "18"  (in-place upgrade, downtime)' in text
    markdown = render_markdown(diff)
    assert "> **In-place upgrades with downtime (the data is kept):**" in markdown
    assert "| `engineVersion` (in-place upgrade, downtime) |" in markdown
    found = diff_json(diff)
    assert found["summary"]["upgrades"] == 1
    assert found["upgrades"][0]["downtime"] == upgrade.downtime


def test_a_minor_version_change_is_no_major_upgrade() -> None:
    diff = upgrade_diff("17.4", "17.5")
    assert diff.upgrades == [] and diff.added == [] and diff.removed == []
    assert "IN-PLACE" not in render_text(diff)
