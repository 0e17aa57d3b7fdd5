"""The user program of docs/library.md (examples/library_program): a database and a cache in an
existing VPC, an app service on an existing cluster behind an existing load balancer, and the
release it deploys, step by step (image, static files, migrations, fleet). Its unit tests,
written as a user would: under `pulumi_django.testing`, and under the SDK's standard
`pulumi.runtime.set_mocks` recipe with a plain `Mocks` of the test's own."""

from __future__ import annotations

import contextlib
import json
import re
import runpy
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import settings

from pulumi_django.cli.commands.plan import unordered_steps
from pulumi_django.cli.plan import plan_stack
from pulumi_django.testing import MOCK_ACCOUNT, SECRET, Recording, record, release_order

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "examples" / "library_program" / "__main__.py"
PROJECT = "shop"
PRIVATE_SUBNETS = ["subnet-0a0000000000000a1", "subnet-0a0000000000000a2"]
CLUSTER_ARN = "arn:aws:ecs:eu-west-1:111122223333:cluster/platform"
LOAD_BALANCER_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:111122223333:loadbalancer/app/platform/50dc6c495c0c9188"
)
LISTENER_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:111122223333:listener/app/platform/"
    "50dc6c495c0c9188/f2f7dc8efc522ab2"
)
TARGET_GROUP_ARN = (
    "arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/shop/73e2d6bc24d8a067"
)
LOAD_BALANCER_GROUP = "sg-0123456789abcdef0"
STATIC_BUCKET = "shop-static-files"
CONFIG = {
    "aws:region": "eu-west-1",
    "shop:vpc": json.dumps(
        {
            "vpcId": "vpc-0a1b2c3d4e5f60718",
            "publicSubnetIds": ["subnet-0b0000000000000b1", "subnet-0b0000000000000b2"],
            "privateSubnetIds": PRIVATE_SUBNETS,
        }
    ),
    "shop:loadBalancer": json.dumps(
        {
            "arn": LOAD_BALANCER_ARN,
            "listenerArn": LISTENER_ARN,
            "targetGroupArn": TARGET_GROUP_ARN,
            "securityGroupId": LOAD_BALANCER_GROUP,
        }
    ),
    "shop:clusterArn": CLUSTER_ARN,
    "shop:staticBucket": STATIC_BUCKET,
    "shop:host": "shop.example.com",
    "shop:originVerifySecret": "s3cr3t-origin-header-value",
}
SECRET_KEYS = ["shop:originVerifySecret"]
# What exists already and must not be created again.
EXISTING = {
    "aws:ec2/vpc:Vpc",
    "aws:ec2/subnet:Subnet",
    "aws:ec2/internetGateway:InternetGateway",
    "aws:ec2/natGateway:NatGateway",
    "aws:ecs/cluster:Cluster",
    "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
    "aws:lb/loadBalancer:LoadBalancer",
    "aws:lb/listener:Listener",
    "aws:lb/targetGroup:TargetGroup",
    "aws:s3/bucket:Bucket",
}
CREATED = {
    "aws:rds/instance:Instance": 1,
    "aws:rds/subnetGroup:SubnetGroup": 1,
    "aws:elasticache/replicationGroup:ReplicationGroup": 1,
    "aws:ecs/taskDefinition:TaskDefinition": 1,
    "aws:ecs/service:Service": 1,
    "aws:lb/listenerRule:ListenerRule": 1,
    # How the user's distribution reaches the existing internal ALB.
    "aws:cloudfront/vpcOrigin:VpcOrigin": 1,
    # The app's, the database's and the cache's; the load balancer's is the user's.
    "aws:ec2/securityGroup:SecurityGroup": 3,
    # The release's steps.
    "aws:ecr/repository:Repository": 1,
    "docker:index/image:Image": 1,
    "pulumi-python:dynamic/static:StaticRelease": 1,
    "pulumi-python:dynamic/migrations:MigrationCheck": 1,
    "pulumi-python:dynamic/migrations:MigrationJob": 1,
}
RELEASE_STEPS = ["image", "static", "check", "migrate", "fleet"]
MIGRATION_TASKS = (
    "pulumi-python:dynamic/migrations:MigrationCheck",
    "pulumi-python:dynamic/migrations:MigrationJob",
)


def run_program() -> dict[str, Any]:
    """The program as `pulumi up` runs it: its `__main__.py`, top to bottom, in its directory
    (the app's build context is relative to it)."""
    with contextlib.chdir(PROGRAM.parent):
        return runpy.run_path(str(PROGRAM))


# --- under pulumi_django.testing ---------------------------------------------------------------


@pytest.fixture(scope="module")
def recording() -> Recording:
    return record(
        run_program, project=PROJECT, stack="test", config=CONFIG, secret_keys=SECRET_KEYS
    )


def test_creates_the_data_tier_and_the_service_and_nothing_that_exists(
    recording: Recording,
) -> None:
    types = Counter(resource.type for resource in recording.resources)
    assert {type_: types[type_] for type_ in CREATED} == CREATED
    assert {type_ for type_ in EXISTING if types[type_]} == set()


def test_the_existing_resources_are_used_where_they_are_needed(recording: Recording) -> None:
    service = recording.one("aws:ecs/service:Service")
    assert service.inputs["cluster"] == CLUSTER_ARN
    assert service.inputs["loadBalancers"][0]["targetGroupArn"] == TARGET_GROUP_ARN
    rule = recording.one("aws:lb/listenerRule:ListenerRule")
    assert rule.inputs["listenerArn"] == LISTENER_ARN
    assert rule.inputs["priority"] == 10
    assert json.dumps(rule.inputs["actions"]).count(TARGET_GROUP_ARN) == 1
    # The origin header's value stays a secret in the rule.
    assert SECRET in json.dumps(rule.inputs["conditions"])
    subnets = recording.one("aws:rds/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == PRIVATE_SUBNETS
    # The app's group admits the user's load balancer group.
    admitted = [
        rule.inputs.get("referencedSecurityGroupId")
        for rule in recording.find("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
    ]
    assert LOAD_BALANCER_GROUP in admitted


def test_the_release_runs_step_by_step(recording: Recording) -> None:
    """Each step waits for the one before, so a failed step stops the release there."""
    steps = release_order(recording)
    assert [found.step.key for found in steps] == RELEASE_STEPS
    assert all(found.ordered for found in steps[1:]), [(s.step.key, s.ordered) for s in steps]


def test_the_release_runs_where_the_existing_resources_are(recording: Recording) -> None:
    image = recording.one("docker:index/image:Image")
    assert image.inputs["build"]["context"] == "../notebook"
    static = recording.one("pulumi-python:dynamic/static:StaticRelease")
    assert static.inputs["bucket"] == STATIC_BUCKET
    for type_ in ("MigrationCheck", "MigrationJob"):
        task = recording.one(f"pulumi-python:dynamic/migrations:{type_}")
        assert task.inputs["cluster_arn"] == CLUSTER_ARN
        assert task.inputs["subnet_ids"] == PRIVATE_SUBNETS


def test_the_data_tiers_transform_reaches_every_child(recording: Recording) -> None:
    for type_ in ("pulumi-django:database:Database", "pulumi-django:cache:Cache"):
        tier = recording.one(type_)
        children = [recording.by_urn()[urn] for urn in recording.descendants(tier.urn)]
        assert len(children) >= 3
        assert {child.name: child.options.get("retainOnDelete") for child in children} == {
            child.name: True for child in children
        }
    assert recording.one("aws:ecs/service:Service").options.get("retainOnDelete") is None


def test_the_fleet_connects_as_the_apps_own_role_and_the_release_as_the_master(
    recording: Recording,
) -> None:
    """No transform: `Database` turns IAM authentication on for the app's role, the fleet logs
    in as that role with a token, and the release's tasks as the master, setting the role up."""
    instance = recording.one("aws:rds/instance:Instance")
    assert instance.inputs["iamDatabaseAuthenticationEnabled"] is True
    master = instance.inputs["username"]
    definitions = json.loads(
        recording.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"]
    )
    (app,) = [c for c in definitions if c["name"] == "app"]
    environment = {e["name"]: e["value"] for e in app["environment"]}
    assert environment["DATABASE_USER"] == "app" != master
    assert environment["DATABASE_IAM_REGION"] == "eu-west-1"
    # No password of the master's (nor any) reaches the fleet.
    assert not [s["name"] for s in app.get("secrets", []) if s["name"].startswith("DATABASE")]
    job = recording.one("pulumi-python:dynamic/migrations:MigrationJob").inputs
    check = recording.one("pulumi-python:dynamic/migrations:MigrationCheck").inputs
    for task in (check, job):
        assert task["container_overrides"]["environment"]["DATABASE_USER"] == master
        assert "rds!" in task["container_overrides"]["secrets"]["DATABASE_PASSWORD"]
    setup, migrate = job["commands"]
    assert setup[:3] == ["python", "-m", "pulumi_django_runtime.db.app_role"]
    assert setup[setup.index("--user") + 1] == "app"
    assert migrate[-2:] == ["migrate", "--noinput"]
    # Neither the task definition nor the release's tasks start before the cache's token exists.
    token = recording.one("aws:secretsmanager/secretVersion:SecretVersion", "shop-auth-token")
    for type_ in ("aws:ecs/taskDefinition:TaskDefinition", *MIGRATION_TASKS):
        assert recording.depends_on(recording.one(type_).urn, token.urn), type_


def test_the_program_exports_what_it_built(recording: Recording) -> None:
    assert recording.outputs["databaseAddress"].endswith(".rds.amazonaws.com")
    assert recording.outputs["serviceName"]
    assert recording.outputs["cacheEndpoint"]
    assert recording.outputs["releaseImage"].startswith(f"{MOCK_ACCOUNT}.dkr.ecr.eu-west-1.")
    origin = recording.one("aws:cloudfront/vpcOrigin:VpcOrigin")
    assert recording.outputs["vpcOriginId"] == f"{origin.name}-id"
    assert origin.inputs["vpcOriginEndpointConfig"]["arn"] == LOAD_BALANCER_ARN


# --- under the SDK's standard recipe -------------------------------------------------------------


class EchoMocks(pulumi.runtime.Mocks):
    """The SDK documentation's recipe: every resource echoes its inputs, every invoke answers
    nothing; the test keeps what was created."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.created.append(args.typ)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:  # type: ignore[override]
        return {}


@pytest.fixture
def echo_mocks() -> Iterator[EchoMocks]:
    mocks = EchoMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="test", preview=False)
    pulumi.runtime.set_all_config(CONFIG, SECRET_KEYS)
    yield mocks
    settings.ROOT.set(None)
    pulumi.runtime.set_all_config({}, [])
    # A program that failed leaves its outputs' tasks in the process-wide settings, where the
    # next program would await them (`pulumi.runtime.test` clears them before, not after).
    settings.SETTINGS.outputs.clear()


def test_runs_under_the_sdks_standard_mocks(echo_mocks: EchoMocks) -> None:
    @pulumi.runtime.test
    def check() -> pulumi.Output[None]:
        program = run_program()
        service = program["service"].service

        def verify(values: list[Any]) -> None:
            cluster, balancers, subnet_group_subnets = values
            assert cluster == CLUSTER_ARN
            assert balancers[0]["target_group_arn"] == TARGET_GROUP_ARN
            assert subnet_group_subnets == PRIVATE_SUBNETS

        return pulumi.Output.all(
            service.cluster,
            service.load_balancers,
            program["database"].subnet_group.subnet_ids,
        ).apply(verify)

    check()
    created = Counter(echo_mocks.created)
    assert {type_: created[type_] for type_ in CREATED} == CREATED
    assert {type_ for type_ in EXISTING if created[type_]} == set()


# --- pulumi-django plan ---------------------------------------------------------------------------


def test_the_plan_checks_the_app_the_program_builds(tmp_path: Path) -> None:
    """`plan --cwd` on the program: the release in order, and the app it builds (its build
    context, next to the program's directory) ready, so the command exits 0."""
    project = tmp_path / "library_program"
    project.mkdir()
    for name in ("__main__.py", "Pulumi.yaml"):
        (project / name).write_text((PROGRAM.parent / name).read_text())
    (tmp_path / "notebook").symlink_to(ROOT / "examples" / "notebook")
    config = {
        key: json.loads(value) if value.startswith("{") else value for key, value in CONFIG.items()
    }
    (project / "Pulumi.dev.yaml").write_text(json.dumps({"config": config}))  # JSON is YAML
    plan = plan_stack(project, "dev")
    assert [found.step.key for found in plan.release_order()] == RELEASE_STEPS
    assert unordered_steps(plan) == []
    assert plan.readiness is not None and plan.ready, plan.readiness
    assert plan.migrations.app_dir == ROOT / "examples" / "notebook"
    assert plan.migrations.result is not None


# --- the README's example ------------------------------------------------------------------------


def test_the_readmes_unit_test_example_passes() -> None:
    section = (ROOT / "README.md").read_text().split("## Using the components from another")[1]
    example = next(
        block
        for block in re.findall(r"```python\n(.*?)```", section.split("\n## ")[0], re.S)
        if "pulumi_django.testing" in block
    )
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 (our own README)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert tests
    for test in tests:
        test()
