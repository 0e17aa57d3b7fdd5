"""The app task recorded against mocks for a dev-like and a prod-like stack: every default of
the task definition, its secrets, logs and IAM, as the engine would receive them."""

from __future__ import annotations

import json
from typing import Any

import parliament
import pulumi
import pytest
from ecs_request import register_task_definition_problems
from fleet_stacks import DEV_LIKE, PROD_LIKE, SECRET_KEY_MARKER, STACKS, stack_config

from pulumi_django.config import StackConfig
from pulumi_django.config.app import SECRET_LOOKING
from pulumi_django.recorder import MOCK_ACCOUNT, SECRET, Recording, record
from pulumi_django.rendering.iam_policies import secret_resource_arn

REGION = "us-east-1"
IMAGE_REF = f"{MOCK_ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/shop@sha256:{'cd' * 32}"
REPOSITORY_ARN = f"arn:aws:ecr:{REGION}:{MOCK_ACCOUNT}:repository/shop"
DATABASE_SECRET = f"arn:aws:secretsmanager:{REGION}:{MOCK_ACCOUNT}:secret:rds!db-42-AbCdEf"
CACHE_SECRET = f"arn:aws:secretsmanager:{REGION}:{MOCK_ACCOUNT}:secret:shop-auth-QwErTy"
EXTRA_POLICY = f"arn:aws:iam::{MOCK_ACCOUNT}:policy/shop-uploads"
SITE_HOST = "shop.example.com"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
# Task definition inputs of the Pulumi provider that ECS never sees (tags are converted).
PROVIDER_ONLY = {"skipDestroy", "trackLatest", "region", "tags"}
# What the mocked RandomPassword returns: a stand-in for a generated key.
GENERATED_KEY = "x" * 64


def record_task(config: StackConfig, policy_arns: tuple[str, ...] = ()) -> Recording:
    def program() -> None:
        from pulumi_django.components.aws.app_task import AppTask, CacheEndpoint, DatabaseEndpoint

        task = AppTask(
            f"{config.name}-app",
            config=config,
            image_ref=IMAGE_REF,
            repository_arn=REPOSITORY_ARN,
            database=DatabaseEndpoint(
                host="db.internal",
                port=5432,
                name="app",
                username="django",
                secret_arn=DATABASE_SECRET,
            ),
            cache=CacheEndpoint(url="rediss://cache.internal:6379/0", auth_secret_arn=CACHE_SECRET),
            site_host=SITE_HOST,
            site_url=f"https://{SITE_HOST}",
            static_url=f"https://{SITE_HOST}/static/",
            vpc_cidr="10.0.0.0/16",
            task_role_policy_arns=policy_arns,
            tags=config.tags,
        )
        for output in (
            "cluster_arn", "cluster_name", "task_definition_arn", "family", "app_container_name",
            "log_group_name", "execution_role_arn", "task_role_arn", "django_secret_arn",
        ):  # fmt: skip
            pulumi.export(output, getattr(task, output))

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": REGION})


@pytest.fixture(scope="module", params=sorted(STACKS))
def stack(request: pytest.FixtureRequest) -> tuple[StackConfig, Recording]:
    config = STACKS[request.param]()
    return config, record_task(config)


def containers(recording: Recording) -> dict[str, dict[str, Any]]:
    text = recording.one(TASK_DEFINITION).inputs["containerDefinitions"]
    return {definition["name"]: definition for definition in json.loads(text)}


def name_values(items: list[dict[str, str]], key: str = "value") -> dict[str, str]:
    return {item["name"]: item[key] for item in items}


def lint(document: dict[str, Any]) -> list[str]:
    return [f.issue for f in parliament.analyze_policy_string(json.dumps(document)).findings]


def test_task_definition_is_fargate_sized_and_built_for_the_fleet(
    stack: tuple[StackConfig, Recording],
) -> None:
    config, recording = stack
    inputs = recording.one(TASK_DEFINITION).inputs
    assert inputs["requiresCompatibilities"] == ["FARGATE"]
    assert inputs["networkMode"] == "awsvpc"
    assert inputs["cpu"] == str(config.fleet.cpu)
    assert inputs["memory"] == str(config.fleet.memory)
    assert inputs["runtimePlatform"] == {
        "operatingSystemFamily": "LINUX",
        "cpuArchitecture": config.fleet.architecture,
    }
    assert inputs["family"] == f"{config.name}-app"
    assert inputs["tags"] == config.tags
    # Old revisions stay ACTIVE for rollbacks.
    assert inputs["skipDestroy"] is True


def test_whole_request_is_valid_for_ecs(stack: tuple[StackConfig, Recording]) -> None:
    _, recording = stack
    inputs = recording.one(TASK_DEFINITION).inputs
    request = {
        **{key: value for key, value in inputs.items() if key not in PROVIDER_ONLY},
        "containerDefinitions": json.loads(inputs["containerDefinitions"]),
        "tags": [{"key": key, "value": value} for key, value in inputs["tags"].items()],
    }
    assert register_task_definition_problems(request) == []


def test_app_runs_the_image_by_digest(stack: tuple[StackConfig, Recording]) -> None:
    _, recording = stack
    assert containers(recording)["app"]["image"] == IMAGE_REF


def test_no_secret_value_anywhere_in_what_the_engine_receives(
    stack: tuple[StackConfig, Recording],
) -> None:
    _, recording = stack
    everything = json.dumps([r.as_json() for r in recording.resources]) + json.dumps(
        recording.outputs
    )
    assert SECRET_KEY_MARKER not in everything
    assert GENERATED_KEY not in everything
    version = recording.one("aws:secretsmanager/secretVersion:SecretVersion")
    assert version.inputs["secretString"] == SECRET
    for definition in containers(recording).values():
        for name, value in name_values(definition.get("environment", [])).items():
            # The one secret-looking name carries the secret's ARN, never its value.
            if SECRET_LOOKING.search(name):
                assert (name, value) == ("DATABASE_SECRET_ARN", DATABASE_SECRET)


def test_secrets_come_from_secrets_manager_and_ssm_by_reference(
    stack: tuple[StackConfig, Recording],
) -> None:
    config, recording = stack
    secret_arn = recording.outputs["django_secret_arn"]
    app = containers(recording)["app"]
    assert name_values(app["secrets"], "valueFrom") == {
        "DATABASE_PASSWORD": f"{DATABASE_SECRET}:password::",
        "REDIS_PASSWORD": CACHE_SECRET,
        "DJANGO_SECRET_KEY": secret_arn,
        **config.app.secrets,
    }
    assert "secrets" not in containers(recording)["proxy"]


def test_containers_are_hardened(stack: tuple[StackConfig, Recording]) -> None:
    config, recording = stack
    by_name = containers(recording)
    assert by_name["app"]["readonlyRootFilesystem"] is True
    for definition in by_name.values():
        assert all(int(part) > 0 for part in definition["user"].split(":"))
        assert definition["stopTimeout"] == config.stop_timeout_seconds
        assert definition["stopTimeout"] > config.app.graceful_timeout_seconds
        assert set(definition["healthCheck"]) >= {"command", "interval", "timeout", "retries"}
    assert by_name["proxy"]["portMappings"] == [
        {"containerPort": config.proxy.port, "protocol": "tcp"}
    ]


def test_logs_go_to_one_group_with_the_configured_retention(
    stack: tuple[StackConfig, Recording],
) -> None:
    config, recording = stack
    log_group = recording.one("aws:cloudwatch/logGroup:LogGroup").inputs
    assert log_group["retentionInDays"] == config.fleet.log_retention_days
    assert recording.outputs["log_group_name"] == log_group["name"]
    for name, definition in containers(recording).items():
        options = definition["logConfiguration"]["options"]
        assert options["awslogs-group"] == log_group["name"]
        assert options["awslogs-region"] == REGION
        assert options["awslogs-stream-prefix"] == name


def test_cluster_has_container_insights(stack: tuple[StackConfig, Recording]) -> None:
    _, recording = stack
    cluster = recording.one("aws:ecs/cluster:Cluster").inputs
    assert cluster["settings"] == [{"name": "containerInsights", "value": "enabled"}]


def execution_policy(recording: Recording) -> dict[str, Any]:
    (policy,) = [p for p in recording.find(ROLE_POLICY) if p.name.endswith("-execution")]
    return json.loads(policy.inputs["policy"])


def test_execution_role_reads_exactly_the_task_secrets(
    stack: tuple[StackConfig, Recording],
) -> None:
    config, recording = stack
    document = execution_policy(recording)
    assert lint(document) == []
    granted: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        resources = statement["Resource"]
        granted[statement["Sid"]] = {resources} if isinstance(resources, str) else set(resources)
    expected_secrets = {
        DATABASE_SECRET,
        CACHE_SECRET,
        recording.outputs["django_secret_arn"],
        *(secret_resource_arn(arn) for arn in config.app.secrets.values()),
    }
    read = granted["ReadTaskSecrets"] | granted.get("ReadTaskParameters", set())
    assert read == expected_secrets
    assert granted["PullAppImage"] == {REPOSITORY_ARN}
    log_group_arn = (
        f"arn:aws:logs:{REGION}:{MOCK_ACCOUNT}:log-group:{recording.outputs['log_group_name']}"
    )
    assert granted["WriteTaskLogs"] == {f"{log_group_arn}:log-stream:*"}


def test_roles_trust_only_ecs_tasks_of_this_account(stack: tuple[StackConfig, Recording]) -> None:
    _, recording = stack
    roles = recording.find(ROLE)
    assert len(roles) == 2
    for role in roles:
        document = json.loads(role.inputs["assumeRolePolicy"])
        (statement,) = document["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": MOCK_ACCOUNT}
        # Linted as the role's own resource policy (IAM refuses a Resource in a trust policy).
        statement["Resource"] = f"arn:aws:iam::{MOCK_ACCOUNT}:role/{role.name}"
        assert lint(document) == []


def task_role_grants(recording: Recording) -> list[str]:
    task_role = next(r for r in recording.find(ROLE) if r.name.endswith("-task"))
    return [
        resource.name
        for resource in [*recording.find(ROLE_POLICY), *recording.find(ATTACHMENT)]
        if recording.depends_on(resource.urn, task_role.urn)
    ]


def test_task_role_may_only_read_the_database_secret_by_default() -> None:
    recording = record_task(stack_config(PROD_LIKE))
    assert task_role_grants(recording) == ["shop-app-task-database-secret"]
    document = json.loads(
        recording.one(ROLE_POLICY, "shop-app-task-database-secret").inputs["policy"]
    )
    assert lint(document) == []
    assert document["Statement"] == [
        {
            "Sid": "ReadDatabaseSecret",
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": DATABASE_SECRET,
        }
    ]


def test_app_is_told_which_secret_to_read_again_after_a_rotation(
    stack: tuple[StackConfig, Recording],
) -> None:
    _, recording = stack
    environment = name_values(containers(recording)["app"]["environment"])
    assert environment["DATABASE_SECRET_ARN"] == DATABASE_SECRET
    # The password itself still arrives at task start, through the execution role.
    assert (
        name_values(containers(recording)["app"]["secrets"], "valueFrom")["DATABASE_PASSWORD"]
        == f"{DATABASE_SECRET}:password::"
    )


def test_task_role_gets_ecs_exec_only_when_enabled_and_extra_policies_when_given() -> None:
    recording = record_task(stack_config(DEV_LIKE), policy_arns=(EXTRA_POLICY,))
    assert sorted(task_role_grants(recording)) == [
        "shop-dev-app-task-database-secret",
        "shop-dev-app-task-exec",
        "shop-dev-app-task-policy-0",
    ]
    exec_policy = json.loads(recording.one(ROLE_POLICY, "shop-dev-app-task-exec").inputs["policy"])
    assert lint(exec_policy) == []
    attachment = recording.one(ATTACHMENT).inputs
    assert attachment["policyArn"] == EXTRA_POLICY


def test_task_definition_waits_for_the_execution_and_database_secret_policies(
    stack: tuple[StackConfig, Recording],
) -> None:
    _, recording = stack
    policies = [
        p
        for p in recording.find(ROLE_POLICY)
        if p.name.endswith(("-execution", "-database-secret"))
    ]
    assert len(policies) == 2
    for policy in policies:
        assert recording.depends_on(recording.one(TASK_DEFINITION).urn, policy.urn)


def test_outputs_name_what_the_service_and_migration_job_need(
    stack: tuple[StackConfig, Recording],
) -> None:
    config, recording = stack
    outputs = recording.outputs
    assert outputs["app_container_name"] == "app"
    assert outputs["family"] == f"{config.name}-app"
    assert outputs["task_definition_arn"].endswith(f":task-definition/{config.name}-app:1")
    assert (
        outputs["execution_role_arn"] == recording.one(TASK_DEFINITION).inputs["executionRoleArn"]
    )
    assert outputs["task_role_arn"] == recording.one(TASK_DEFINITION).inputs["taskRoleArn"]
    assert outputs["cluster_arn"].startswith(f"arn:aws:ecs:{REGION}:{MOCK_ACCOUNT}:cluster/")


@pytest.mark.parametrize(
    ("document", "secret_key", "expect_random"),
    [(PROD_LIKE, SECRET_KEY_MARKER, False), (DEV_LIKE, None, True)],
)
def test_django_secret_key_is_the_configured_one_or_generated(
    document: dict[str, object], secret_key: str | None, expect_random: bool
) -> None:
    recording = record_task(stack_config(document, secret_key=secret_key))
    generated = recording.find("random:index/randomPassword:RandomPassword")
    assert bool(generated) is expect_random
    if expect_random:
        (password,) = generated
        assert password.inputs["length"] >= 50  # Django's check wants 50 or more characters
