"""RDS PostgreSQL as `pulumi up` registers it: private, encrypted, TLS only, its password kept
by RDS in Secrets Manager; prod's safety nets on by default, dev's relaxations explicit."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
import yaml

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.database import (
    Database,
    DatabaseArgs,
    parameter_group_family,
)
from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.recorder import MOCK_ACCOUNT, Recording, record

INSTANCE = "aws:rds/instance:Instance"
SUBNET_GROUP = "aws:rds/subnetGroup:SubnetGroup"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
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
    assert inputs["applyImmediately"] is False
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
    assert inputs["finalSnapshotIdentifier"] == "data-final-snapshot"
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
