"""The app task recorded against mocks for a dev-like and a prod-like stack: every default of
the task definition, its secrets, logs and IAM, as the engine would receive them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import parliament
import pulumi
import pulumi_aws as aws
import pytest
from ecs_request import register_task_definition_problems
from fleet_stacks import DEV_LIKE, PROD_LIKE, SECRET_KEY_MARKER, STACKS, stack_config

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.app_task import (
    AppTask,
    AppTaskArgs,
    CacheEndpoint,
    DatabaseEndpoint,
)
from pulumi_django.config import ConfigError, StackConfig
from pulumi_django.config.app import SECRET_LOOKING
from pulumi_django.errors import PulumiDjangoError
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
# Task definition inputs of the Pulumi provider that ECS never sees.
PROVIDER_ONLY = {"skipDestroy", "trackLatest", "region"}
# What the mocked RandomPassword returns: a stand-in for a generated key.
GENERATED_KEY = "x" * 64


SCALAR_OUTPUTS = (
    "task_definition_arn", "family", "app_container_name", "log_group_name",
    "execution_role_arn", "task_role_arn", "django_secret_arn",
)  # fmt: skip
CHILDREN = ("task_definition", "execution_role", "task_role", "log_group", "django_secret")


def task_args(config: StackConfig, **overrides: Any) -> AppTaskArgs:
    """The task's args as AwsSite maps a stack config to them, with `overrides`."""
    return AppTaskArgs(
        **{
            "app": config.app,
            "proxy": config.proxy,
            "fleet": config.fleet,
            "load_balancer": config.load_balancer,
            "secret_key": config.secret_key,
            "stop_timeout_seconds": config.stop_timeout_seconds,
            "image_ref": IMAGE_REF,
            "repository_arn": REPOSITORY_ARN,
            "database": DatabaseEndpoint(
                host="db.internal",
                port=5432,
                name="app",
                username="django",
                secret_arn=DATABASE_SECRET,
            ),
            "cache": CacheEndpoint(
                url="rediss://cache.internal:6379/0", auth_secret_arn=CACHE_SECRET
            ),
            "site_host": SITE_HOST,
            "site_url": f"https://{SITE_HOST}",
            "static_url": f"https://{SITE_HOST}/static/",
            "vpc_cidr": "10.0.0.0/16",
            **overrides,
        }
    )


def record_task(
    config: StackConfig, brought: Callable[[], dict[str, Any]] | None = None, **overrides: Any
) -> Recording:
    """The task of `config` against mocks; `brought()` makes, inside the program, the children
    passed in; every scalar output is exported, and each child's URN or None."""

    def program() -> None:
        task = AppTask(
            f"{config.name}-app",
            task_args(config, **overrides, **(brought() if brought else {})),
        )
        for output in SCALAR_OUTPUTS:
            pulumi.export(output, getattr(task, output))
        for child in CHILDREN:
            resource = getattr(task, child)
            pulumi.export(child, resource.urn if resource is not None else None)

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
    # Old revisions stay ACTIVE for rollbacks.
    assert inputs["skipDestroy"] is True


def test_whole_request_is_valid_for_ecs(stack: tuple[StackConfig, Recording]) -> None:
    _, recording = stack
    inputs = recording.one(TASK_DEFINITION).inputs
    request = {
        **{key: value for key, value in inputs.items() if key not in PROVIDER_ONLY},
        "containerDefinitions": json.loads(inputs["containerDefinitions"]),
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
    for definition in containers(recording).values():
        options = definition["logConfiguration"]["options"]
        assert options["awslogs-group"] == log_group["name"]
        assert options["awslogs-region"] == REGION
        # The release's prefix (its digest's first 12 hex digits), the same for both.
        assert options["awslogs-stream-prefix"] == "r-" + "cd" * 6


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
    recording = record_task(stack_config(DEV_LIKE), task_role_policy_arns=(EXTRA_POLICY,))
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
    # The cluster is the Cluster component's, not the task's.
    assert recording.find("aws:ecs/cluster:Cluster") == []


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


def test_children_are_exposed() -> None:
    recording = record_task(stack_config(PROD_LIKE))
    for child, type_ in [
        ("task_definition", TASK_DEFINITION),
        ("log_group", "aws:cloudwatch/logGroup:LogGroup"),
        ("django_secret", "aws:secretsmanager/secret:Secret"),
    ]:
        assert recording.outputs[child] == recording.one(type_).urn
    for child, suffix in [("execution_role", "-execution"), ("task_role", "-task")]:
        assert recording.outputs[child] == recording.one(ROLE, f"shop-app{suffix}").urn


MY_EXECUTION_ROLE = f"arn:aws:iam::{MOCK_ACCOUNT}:role/platform-ecs-execution"
MY_TASK_ROLE = f"arn:aws:iam::{MOCK_ACCOUNT}:role/platform-shop-app"


@pytest.mark.parametrize("as_object", [False, True], ids=["arn", "object"])
def test_an_execution_role_of_your_own_replaces_the_role_and_its_policy(as_object: bool) -> None:
    def brought() -> dict[str, Any]:
        role = aws.iam.Role("mine", assume_role_policy="{}") if as_object else MY_EXECUTION_ROLE
        return {"execution_role": role}

    # No repository needed: the execution role that would pull from it is not created here.
    recording = record_task(stack_config(PROD_LIKE), brought, repository_arn=None)
    expected = f"arn:aws:iam::{MOCK_ACCOUNT}:role/mine" if as_object else MY_EXECUTION_ROLE
    task_definition = recording.one(TASK_DEFINITION)
    assert task_definition.inputs["executionRoleArn"] == expected
    assert recording.outputs["execution_role_arn"] == expected
    assert recording.outputs["execution_role"] is None
    assert [p.name for p in recording.find(ROLE_POLICY)] == ["shop-app-task-database-secret"]
    assert [r.name for r in recording.find(ROLE) if r.name != "mine"] == ["shop-app-task"]
    # The task still waits for the task role's grant.
    (grant,) = recording.find(ROLE_POLICY)
    assert recording.depends_on(task_definition.urn, grant.urn)


def test_a_task_role_of_your_own_gets_no_policy_from_here() -> None:
    recording = record_task(stack_config(DEV_LIKE), lambda: {"task_role": MY_TASK_ROLE})
    assert recording.one(TASK_DEFINITION).inputs["taskRoleArn"] == MY_TASK_ROLE
    assert recording.outputs["task_role_arn"] == MY_TASK_ROLE
    assert recording.outputs["task_role"] is None
    assert [r.name for r in recording.find(ROLE)] == ["shop-dev-app-execution"]
    # ECS Exec is on in the dev-like stack, yet nothing is attached to a role not ours.
    assert sorted(p.name for p in recording.find(ROLE_POLICY)) == [
        "shop-dev-app-execution",
        "shop-dev-app-execution-proxy-image",
    ]
    assert recording.find(ATTACHMENT) == []


@pytest.mark.parametrize(
    "extras",
    [
        {"task_role_policy_arns": [EXTRA_POLICY]},
        {"task_role_statements": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]},
        {
            "fleet": stack_config(
                {**PROD_LIKE, "fleet": {"taskRole": {"managedPolicyArns": [EXTRA_POLICY]}}}
            ).fleet
        },
    ],
    ids=["policy-arns", "statements", "config"],
)
def test_extra_grants_for_a_task_role_of_your_own_are_refused(extras: dict[str, Any]) -> None:
    config = stack_config(PROD_LIKE)
    with pytest.raises(PulumiDjangoError, match=r"^AppTaskArgs\.task_role: .*grant it"):
        task_args(config, task_role=MY_TASK_ROLE, **extras)


def test_a_created_execution_role_needs_the_repository() -> None:
    with pytest.raises(PulumiDjangoError, match=r"^AppTaskArgs\.repository_arn: "):
        task_args(stack_config(PROD_LIKE), repository_arn=None)


@pytest.mark.parametrize("as_object", [False, True], ids=["name", "object"])
def test_a_log_group_of_your_own_takes_the_logs(as_object: bool) -> None:
    group = "/platform/shop"

    def brought() -> dict[str, Any]:
        mine = aws.cloudwatch.LogGroup("mine", name=group) if as_object else group
        return {"log_group": mine}

    recording = record_task(stack_config(PROD_LIKE), brought)
    assert [g.name for g in recording.find("aws:cloudwatch/logGroup:LogGroup")] == (
        ["mine"] if as_object else []
    )
    assert recording.outputs["log_group"] is None
    assert recording.outputs["log_group_name"] == group
    for definition in containers(recording).values():
        assert definition["logConfiguration"]["options"]["awslogs-group"] == group
    (write_logs,) = [
        s for s in execution_policy(recording)["Statement"] if s["Sid"] == "WriteTaskLogs"
    ]
    arn = f"arn:aws:logs:{REGION}:{MOCK_ACCOUNT}:log-group:{group}"
    assert write_logs["Resource"] == f"{arn}:log-stream:*"


QUEUE = f"arn:aws:sqs:{REGION}:{MOCK_ACCOUNT}:shop-jobs"
TASK_ROLE_CONFIG = {
    "managedPolicyArns": ["arn:aws:iam::aws:policy/AmazonSESFullAccess"],
    "statements": [
        {"Sid": "SendJobs", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": QUEUE}
    ],
}


def test_the_task_role_takes_extra_grants_from_config_and_args() -> None:
    config = stack_config({**PROD_LIKE, "fleet": {"taskRole": TASK_ROLE_CONFIG}})
    uploads = {"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::up/*"}

    def brought() -> dict[str, Any]:
        # An extra statement may hold outputs of the program.
        bucket = aws.s3.Bucket("uploads", bucket="up")
        return {
            "task_role_statements": [
                {**uploads, "Resource": pulumi.Output.concat(bucket.arn, "/*")}
            ]
        }

    recording = record_task(config, brought, task_role_policy_arns=[EXTRA_POLICY])
    assert sorted(task_role_grants(recording)) == [
        "shop-app-task-database-secret",
        "shop-app-task-extra",
        "shop-app-task-policy-0",
        "shop-app-task-policy-1",
    ]
    attached = {r.name: r.inputs["policyArn"] for r in recording.find(ATTACHMENT)}
    assert attached == {
        "shop-app-task-policy-0": "arn:aws:iam::aws:policy/AmazonSESFullAccess",
        "shop-app-task-policy-1": EXTRA_POLICY,
    }
    extra = recording.one(ROLE_POLICY, "shop-app-task-extra")
    document = json.loads(extra.inputs["policy"])
    assert lint(document) == []
    # The config's statement as IAM reads it (Resource read as a list), then the program's.
    configured = {**TASK_ROLE_CONFIG["statements"][0], "Resource": [QUEUE]}
    assert document["Statement"] == [configured, uploads]
    # A task starts only once the app holds what it was granted.
    task_definition = recording.one(TASK_DEFINITION)
    for grant in [extra, *recording.find(ATTACHMENT)]:
        assert recording.depends_on(task_definition.urn, grant.urn)


def test_no_extra_grants_by_default() -> None:
    recording = record_task(stack_config(PROD_LIKE))
    assert recording.find(ROLE_POLICY, ".*-task-extra") == []
    assert recording.find(ATTACHMENT) == []


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Effect": "Allow", "Action": "sqs:*"}, "missing Resource"),
        ({"Effect": "Permit", "Action": "sqs:*", "Resource": "*"}, "Effect 'Permit'"),
    ],
)
def test_a_bad_extra_statement_is_one_line_naming_it(
    statement: dict[str, Any], problem: str
) -> None:
    good = {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}
    with pytest.raises(PulumiDjangoError) as caught:
        task_args(stack_config(PROD_LIKE), task_role_statements=[good, statement])
    message = str(caught.value)
    assert message.startswith("AppTaskArgs.task_role_statements[1]: ")
    assert problem in message and "\n" not in message


@pytest.mark.parametrize(
    ("task_role", "problem"),
    [
        ({"managedPolicyArns": ["AmazonSESFullAccess"]}, "fleet.taskRole.managedPolicyArns"),
        (
            {"managedPolicyArns": ["arn:aws:iam::12345:policy/x"]},
            "fleet.taskRole.managedPolicyArns",
        ),
        (
            {"statements": [{"Effect": "Allow", "Action": "sqs:SendMessage"}]},
            "fleet.taskRole.statements[0].Resource: required",
        ),
        (
            {"statements": [{"Effect": "allow", "Action": "sqs:*", "Resource": "*"}]},
            "fleet.taskRole.statements[0].Effect",
        ),
        (
            {"statements": [{"Effect": "Allow", "Action": "SendMessage", "Resource": "*"}]},
            "fleet.taskRole.statements[0].Action",
        ),
        (
            {"statements": [{"Effect": "Allow", "Action": [], "Resource": "*"}]},
            "fleet.taskRole.statements[0].Action",
        ),
        (
            {"statements": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "my-queue"}]},
            "fleet.taskRole.statements[0].Resource",
        ),
        (
            {
                "statements": [
                    {"Effect": "Allow", "Action": "sqs:*", "Resource": "*", "Principal": "*"}
                ]
            },
            "fleet.taskRole.statements[0].Principal: unknown key",
        ),
    ],
)
def test_task_role_config_mistakes_are_one_line_naming_the_key(
    task_role: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        stack_config({**PROD_LIKE, "fleet": {"taskRole": task_role}})
    (line,) = caught.value.problems
    assert line.startswith(f"django:{problem}"), line
    assert "\n" not in line


def test_task_role_config_defaults_to_no_extra_grants() -> None:
    task_role = stack_config(PROD_LIKE).fleet.task_role
    assert (task_role.managed_policy_arns, task_role.statements) == ([], [])


def test_a_configured_statement_reads_as_iam_writes_it() -> None:
    """One action or resource may stand alone, as in IAM; the policy lists it."""
    statement = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": QUEUE}
    config = stack_config({**PROD_LIKE, "fleet": {"taskRole": {"statements": [statement]}}})
    (parsed,) = config.fleet.task_role.statements
    assert parsed.document() == {
        "Effect": "Allow",
        "Action": ["sqs:SendMessage"],
        "Resource": [QUEUE],
    }


@pytest.mark.parametrize("seconds", [0, 121])
def test_a_stop_timeout_ecs_would_refuse_is_refused_naming_the_arg(seconds: int) -> None:
    from dataclasses import replace

    args = task_args(stack_config(DEV_LIKE))
    with pytest.raises(ComponentArgsError, match=r"^AppTaskArgs\.stop_timeout_seconds: "):
        replace(args, stop_timeout_seconds=seconds)
