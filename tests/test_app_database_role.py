"""The app connects as its own database role, never as the RDS master user; the release
(migration check and job) keeps the master and sets the role up before `migrate`; and every
secret version the task definition, the check and the job read is a dependency of them.

From the offline plans of the shipped stacks (`plan --json`'s resources) and of the prod stack
with `database.appAuth: password`. The role step's SQL is tested against PostgreSQL in
tests/runtime/test_runtime_app_role.py, the IAM tokens in tests/runtime/test_runtime_iam_auth.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import parliament
import pytest
from ecs_request import REGISTER_TASK_DEFINITION, register_task_definition_problems
from release_task_stubs import APP_TASK_DEFINITION, task_props
from shipped_sites import shipped_site

from pulumi_django.cli.plan import Plan
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.app_task import DatabaseEndpoint
from pulumi_django.components.aws.database import AppDatabaseRole
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.providers.release_task import derived_definition, release_task
from pulumi_django.recorder import Recording
from pulumi_django.rendering.iam_policies import database_connect_policy, rds_db_user_arn

REGION = "us-east-1"
ACCOUNT = "123456789012"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SECRET = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
JOB = "pulumi-python:dynamic/migrations:MigrationJob"
CHECK = "pulumi-python:dynamic/migrations:MigrationCheck"
INSTANCE = "aws:rds/instance:Instance"
MASTER_SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!bigfoot-db"


def site_name(plan: Plan) -> str:
    assert plan.config is not None
    return plan.config.name


def master_secret(name: str) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!{name}-db"


ROLE_STEP = ["python", "-m", "pulumi_django_runtime.db.app_role"]


@pytest.fixture(scope="module")
def password_mode(tmp_path_factory: pytest.TempPathFactory) -> Recording:
    """The shipped prod stack with `database.appAuth: password`."""
    return shipped_site(tmp_path_factory, "prod", database={"appAuth": "password"})


def app_container(recording: Recording) -> dict[str, Any]:
    """The web task's `app` container (the background workers' task definitions have none)."""
    return next(
        item
        for task in recording.find(TASK_DEFINITION)
        for item in json.loads(task.inputs["containerDefinitions"])
        if item["name"] == "app"
    )


def environment(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container["environment"]}


def secrets(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["valueFrom"] for item in container.get("secrets", [])}


def task_role_policies(recording: Recording) -> dict[str, dict[str, Any]]:
    return {
        policy.name: json.loads(policy.inputs["policy"])
        for policy in recording.find(ROLE_POLICY, r".*-task-.*")
    }


def lint(document: dict[str, Any]) -> list[tuple[str, Any]]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return [(finding.issue, finding.detail) for finding in policy.findings]


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_fleet_logs_in_as_its_own_role_with_iam_tokens(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    master = DatabaseConfig().username
    app = app_container(recording)
    env = environment(app)
    assert env["DATABASE_USER"] == "app" != master
    assert env["DATABASE_IAM_REGION"] == REGION
    assert env["DATABASE_SSLMODE"] == "require"
    # No password at all: neither the master's secret nor a password variable.
    assert "DATABASE_SECRET_ARN" not in env
    assert "DATABASE_PASSWORD" not in secrets(app)
    assert not any("rds!" in value for value in secrets(app).values())
    assert recording.one(INSTANCE).inputs["iamDatabaseAuthenticationEnabled"] is True


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_task_role_may_connect_as_the_app_user_of_this_instance_only(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    plan = stack_plan(stack)
    name = site_name(plan)
    policies = task_role_policies(plan.recording)
    connect = policies[f"{name}-task-database-connect"]
    assert connect["Statement"] == [
        {
            "Sid": "ConnectAsTheAppDatabaseUser",
            "Effect": "Allow",
            "Action": "rds-db:connect",
            "Resource": f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:"
            "db-ABCDEFGHIJKLMNOPQRSTUVWXY0/app",
        }
    ]
    assert lint(connect) == []
    # The app's AWS identity can no longer read the master password.
    assert f"{name}-task-database-secret" not in policies
    assert master_secret(name) not in json.dumps(policies)


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_release_runs_as_the_master_and_sets_the_role_up_before_migrate(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    plan = stack_plan(stack)
    recording, name = plan.recording, site_name(plan)
    job, check = recording.one(JOB), recording.one(CHECK)
    commands = job.inputs["commands"]
    assert commands[0] == [*ROLE_STEP, "--user", "app", "--auth", "iam", "--region", REGION]
    assert commands[1][:3] == ["python", "manage.py", "migrate"]
    overrides = {
        "environment": {
            "DATABASE_USER": DatabaseConfig().username,
            "DATABASE_IAM_REGION": None,
            "DATABASE_SECRET_ARN": None,
        },
        "secrets": {"DATABASE_PASSWORD": f"{master_secret(name)}:password::"},
    }
    assert job.inputs["container_overrides"] == check.inputs["container_overrides"] == overrides
    # ECS (the execution role) reads the master secret for the release tasks, and only ECS.
    execution = json.loads(recording.one(ROLE_POLICY, f"{name}-execution").inputs["policy"])
    read = next(s for s in execution["Statement"] if s["Sid"] == "ReadTaskSecrets")
    assert master_secret(name) in read["Resource"]


def test_the_release_tasks_get_the_masters_login_in_place_of_the_apps() -> None:
    """What ECS registers for the job: the app container with the master's user and password,
    no IAM region, valid for RegisterTaskDefinition."""
    overrides = {
        "environment": {"DATABASE_USER": "django", "DATABASE_IAM_REGION": None},
        "secrets": {"DATABASE_PASSWORD": f"{MASTER_SECRET}:password::"},
    }
    definition = json.loads(json.dumps(APP_TASK_DEFINITION))
    app = definition["containerDefinitions"][1]
    app["environment"] += [
        {"name": "DATABASE_USER", "value": "app"},
        {"name": "DATABASE_IAM_REGION", "value": REGION},
    ]
    app["secrets"] = [{"name": "DJANGO_SECRET_KEY", "valueFrom": "arn:key"}]
    task = release_task(
        task_props(container_overrides=overrides),
        purpose="migration job",
        group_prefix="pulumi-django-migrate",
        command=["python", "manage.py", "migrate"],
        timeout_seconds=60,
    )
    request = derived_definition(definition, task, list(REGISTER_TASK_DEFINITION.members))
    [container] = request["containerDefinitions"]
    assert environment(container)["DATABASE_USER"] == "django"
    assert "DATABASE_IAM_REGION" not in environment(container)
    assert secrets(container) == {
        "DATABASE_PASSWORD": f"{MASTER_SECRET}:password::",
        "DJANGO_SECRET_KEY": "arn:key",
    }
    assert register_task_definition_problems(request) == []


def test_password_auth_gives_the_role_a_secret_of_its_own(password_mode: Recording) -> None:
    recording = password_mode
    secret = recording.one(SECRET, "bigfoot-app-database")
    version = recording.one(SECRET_VERSION, "bigfoot-app-database")
    assert secret.urn in version.property_dependencies["secretId"]
    # The generated password (a run of x's under mocks) stays secret in the plan.
    assert version.inputs["secretString"] == "[secret]"
    assert "x" * 16 not in json.dumps([resource.as_json() for resource in recording.resources])
    app_secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:bigfoot-app-database-AbCdEf"
    app = app_container(recording)
    assert environment(app)["DATABASE_USER"] == "app"
    assert environment(app)["DATABASE_SECRET_ARN"] == app_secret
    assert "DATABASE_IAM_REGION" not in environment(app)
    assert secrets(app)["DATABASE_PASSWORD"] == f"{app_secret}:password::"
    assert recording.one(INSTANCE).inputs["iamDatabaseAuthenticationEnabled"] is False

    policies = task_role_policies(recording)
    assert "bigfoot-task-database-connect" not in policies
    read = policies["bigfoot-task-database-secret"]["Statement"][0]
    assert (read["Action"], read["Resource"]) == ("secretsmanager:GetSecretValue", app_secret)

    job = recording.one(JOB)
    step = job.inputs["commands"][0]
    assert step[: len(ROLE_STEP) + 4] == [*ROLE_STEP, "--user", "app", "--auth", "password"]
    assert step[-2] == "--password-version"  # a new password is a new run of the job
    assert job.inputs["container_overrides"]["secrets"] == {
        "DATABASE_PASSWORD": f"{MASTER_SECRET}:password::",
        "DATABASE_APP_PASSWORD": f"{app_secret}:password::",
    }
    assert job.inputs["container_overrides"]["environment"]["DATABASE_SECRET_ARN"] is None


# --- item 8: a secret's value exists before anything that reads it ----------------------------


def secrets_read(resource: dict[str, Any]) -> set[str]:
    """The Secrets (URNs) whose ARN reaches `resource`'s inputs."""
    return {
        urn
        for urns in resource["propertyDependencies"].values()
        for urn in urns
        if urn.split("::")[-2].split("$")[-1] == SECRET
    }


def unordered_secret_reads(plan: dict[str, Any]) -> list[str]:
    """`reader <- version` for every SecretVersion of a secret that the task definition, the
    migration check or the migration job reads (the job and check run the task definition, so
    they read its secrets too) without depending on it directly."""
    resources = plan["resources"]
    versions = {
        version["propertyDependencies"]["secretId"][0]: version["urn"]
        for version in resources
        if version["type"] == SECRET_VERSION
    }
    task_definition = next(r for r in resources if r["type"] == TASK_DEFINITION)
    missing = []
    for reader in resources:
        if reader["type"] not in (TASK_DEFINITION, JOB, CHECK):
            continue
        read = secrets_read(reader) | secrets_read(task_definition)
        for secret in read:
            version = versions.get(secret)
            if version and version not in reader["dependencies"]:
                missing.append(f"{reader['name']} <- {version.split('::')[-1]}")
    return sorted(missing)


def read_secret_names(plan: dict[str, Any]) -> set[str]:
    resources = plan["resources"]
    task_definition = next(r for r in resources if r["type"] == TASK_DEFINITION)
    return {urn.split("::")[-1] for urn in secrets_read(task_definition)}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_nothing_reads_a_secret_before_its_value_exists(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    name = site_name(stack_plan(stack))
    plan = stack_plan(stack).as_json()
    # The Django key and the cache's AUTH token (the master secret is RDS's, made with the
    # instance, which the task definition waits for through its endpoint).
    assert {f"{name}-django-secret-key", f"{name}-auth-token"} <= read_secret_names(plan)
    assert unordered_secret_reads(plan) == []


def test_with_a_password_its_version_comes_first_too(password_mode: Recording) -> None:
    plan = {"resources": [resource.as_json() for resource in password_mode.resources]}
    assert "bigfoot-app-database" in read_secret_names(plan)
    assert unordered_secret_reads(plan) == []


def test_the_dependency_check_sees_a_missing_edge() -> None:
    """unordered_secret_reads on a task definition that reads a secret without waiting for its
    version (as on main before this change) names the edge."""
    urn = "urn:pulumi:prod::p::pulumi-django:fleet:AppTask$"
    secret, version = f"{urn}{SECRET}::key", f"{urn}{SECRET_VERSION}::key"

    def resource(type_: str, name: str, **fields: Any) -> dict[str, Any]:
        return {"type": type_, "name": name, "urn": f"{urn}{type_}::{name}", **fields}

    plan = {
        "resources": [
            resource(SECRET_VERSION, "key", propertyDependencies={"secretId": [secret]}),
            resource(
                TASK_DEFINITION,
                "task",
                dependencies=[secret],
                propertyDependencies={"containerDefinitions": [secret]},
            ),
        ]
    }
    assert unordered_secret_reads(plan) == ["task <- key"]
    plan["resources"][1]["dependencies"].append(version)
    assert unordered_secret_reads(plan) == []


# --- config and args ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"appUsername": "django"}, "is the master user"),
        ({"username": "shop", "appUsername": "shop"}, "is the master user"),
        ({"appUsername": "rds_app"}, "keeps for itself"),
        ({"appUsername": "pg_app"}, "keeps for itself"),
        ({"appAuth": "trust"}, "'iam' or 'password'"),
    ],
)
def test_the_app_role_is_never_the_master_nor_a_reserved_name(
    section: dict[str, str], problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        DatabaseConfig.model_validate(section)


def test_iam_authentication_needs_the_instances_resource_id() -> None:
    with pytest.raises(ComponentArgsError, match="resource_id"):
        DatabaseEndpoint(
            host="db",
            port=5432,
            name="app",
            username="django",
            secret_arn=MASTER_SECRET,
            app_role=AppDatabaseRole(username="app", auth="iam"),
        )


@pytest.mark.parametrize(
    ("resource_id", "username"),
    [("db-ABC/other", "app"), ("arn:aws:rds:x", "app"), ("db-ABC", "app/*"), ("db-ABC", "*")],
)
def test_the_connect_grant_names_one_user_of_one_instance(resource_id: str, username: str) -> None:
    with pytest.raises(ValueError, match="not "):
        rds_db_user_arn(
            partition="aws",
            region=REGION,
            account_id=ACCOUNT,
            resource_id=resource_id,
            username=username,
        )


def test_the_linter_would_catch_a_connect_grant_on_the_wrong_resource() -> None:
    """parliament knows rds-db:connect's resource type (what the plan test relies on)."""
    document = database_connect_policy(
        rds_db_user_arn(
            partition="aws", region=REGION, account_id=ACCOUNT, resource_id="db-ABC", username="app"
        )
    )
    document["Statement"][0]["Resource"] = f"arn:aws:rds:{REGION}:{ACCOUNT}:db:bigfoot-db"
    assert [issue for issue, _ in lint(document)] == ["RESOURCE_MISMATCH"]
