"""The AWS migration steps as `pulumi up` registers them (mock-recorded): the check waits for what
the release builds first, the job waits for the check, the fleet waits for the job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws

from pulumi_django.components.aws.cluster import Cluster, ClusterArgs
from pulumi_django.components.aws.migration_job import MigrationJob, MigrationJobArgs
from pulumi_django.config.migrations import MigrationsConfig
from pulumi_django.providers.migration_check import MigrationCheck
from pulumi_django.providers.migration_job import MigrationTaskRun
from pulumi_django.recorder import SECRET, Recording, record
from pulumi_django.release import release_order
from pulumi_django.rendering.container_definitions import release_log_prefix

IMAGE = "docker:index/image:Image"
STATIC = "pulumi-python:dynamic/static:StaticRelease"
CHECK = "pulumi-python:dynamic/migrations:MigrationCheck"
JOB = "pulumi-python:dynamic/migrations:MigrationJob"
SERVICE = "aws:ecs/service:Service"
COMPONENT = "pulumi-django:migrations:MigrationJob"
DIGEST = f"shop-image@sha256:{'0' * 64}"
CLUSTER_ARN = "arn:aws:ecs:us-east-1:123456789012:cluster/shop"


def record_release(
    migrations: dict[str, Any] | None = None,
    built: list[MigrationJob] | None = None,
    *,
    cluster: Callable[[], Any] = lambda: CLUSTER_ARN,
    region: str | None = "us-east-1",
) -> Recording:
    """Image, static release, migration steps (appended to `built`) in the cluster `cluster()`
    makes, then a service gated on them, as the stack wires them (stand-ins with the real type
    tokens for the other steps). The stack's region is eu-west-1, so that a job given no
    `region` shows it took the provider's."""
    config = MigrationsConfig.model_validate(migrations or {})
    built = [] if built is None else built

    def program() -> None:
        image = pulumi.CustomResource(
            IMAGE, "shop-image", {"imageName": "shop-image:v2", "repoDigest": None}
        )
        repo_digest = image.repoDigest  # type: ignore[attr-defined]
        static = pulumi.CustomResource(STATIC, "shop-static", {"release_id": repo_digest})
        migrations_step = MigrationJob(
            "shop-migrations",
            MigrationJobArgs(
                config=config,
                settings_module="shop.settings",
                cluster=cluster(),
                task_definition_arn="arn:aws:ecs:us-east-1:123456789012:task-definition/shop-app:7",
                container_name="app",
                subnet_ids=["subnet-0a", "subnet-0b"],
                security_group_ids=["sg-0app"],
                log_group_name="/ecs/shop-app",
                release_id=repo_digest,
                service_name="shop-app",
                region=region,
                after=[image, static],
            ),
        )
        built.append(migrations_step)
        pulumi.CustomResource(
            SERVICE,
            "shop-app",
            {"name": "shop-app"},
            opts=pulumi.ResourceOptions(depends_on=[migrations_step]),
        )
        pulumi.export("applied", migrations_step.applied_migrations)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "eu-west-1"})


def test_the_release_order_is_image_static_check_job_fleet() -> None:
    recording = record_release()

    order = release_order(recording)

    assert [step.step.key for step in order] == ["image", "static", "check", "migrate", "fleet"]
    assert all(step.ordered for step in order[1:])
    check = recording.one(CHECK, "shop-migrations-check")
    job = recording.one(JOB, "shop-migrations-job")
    assert recording.depends_on(check.urn, recording.one(IMAGE).urn)
    assert recording.depends_on(check.urn, recording.one(STATIC).urn)
    assert recording.depends_on(job.urn, check.urn)
    assert not recording.depends_on(check.urn, job.urn)
    assert recording.depends_on(recording.one(SERVICE).urn, job.urn)


def test_the_steps_are_children_of_the_component() -> None:
    recording = record_release()

    component = recording.one(COMPONENT, "shop-migrations")

    assert {child.name for child in recording.children(component.urn)} == {
        "shop-migrations-check",
        "shop-migrations-job",
    }


def test_the_job_runs_the_configured_commands_of_this_release() -> None:
    recording = record_release(
        {
            "releaseCommands": [["python", "manage.py", "createcachetable"]],
            "timeoutSeconds": 1200,
        }
    )

    job = recording.one(JOB).inputs

    assert job["commands"] == [
        ["python", "manage.py", "migrate", "--noinput"],
        ["python", "manage.py", "createcachetable"],
    ]
    assert job["timeout_seconds"] == 1200
    assert job["release_id"] == DIGEST
    assert job["service_name"] == "shop-app"
    assert job["container_name"] == "app"
    # The release's prefix, as its task definition's containers log under it.
    assert job["log_stream_prefix"] == release_log_prefix(DIGEST) == "r-" + "0" * 12
    assert job["subnet_ids"] == ["subnet-0a", "subnet-0b"]
    assert job["__provider"] == SECRET


def test_the_check_gets_the_settings_and_the_acknowledgements() -> None:
    recording = record_release(
        {
            "acknowledged": [
                {"migration": "shop.0007_drop_price", "reason": "unused since release 41"}
            ]
        }
    )

    check = recording.one(CHECK).inputs

    assert check["settings_module"] == "shop.settings"
    assert check["acknowledged"] == {"shop.0007_drop_price": "unused since release 41"}
    assert check["release_id"] == DIGEST
    assert check["log_stream_prefix"] == release_log_prefix(DIGEST)
    assert check["timeout_seconds"] == 900


def test_without_the_check_the_job_waits_for_the_release_itself() -> None:
    recording = record_release({"check": False})

    assert recording.find(CHECK) == []
    job = recording.one(JOB)
    assert recording.depends_on(job.urn, recording.one(IMAGE).urn)
    assert recording.depends_on(job.urn, recording.one(STATIC).urn)
    order = release_order(recording)
    assert [step.step.key for step in order] == ["image", "static", "migrate", "fleet"]
    assert all(step.ordered for step in order[1:])


def test_the_task_runs_are_the_component_s_attributes() -> None:
    built: list[MigrationJob] = []
    record_release(built=built)
    record_release({"check": False}, built=built)

    with_check, without_check = built

    assert isinstance(with_check.check, MigrationCheck)
    assert isinstance(with_check.job, MigrationTaskRun)
    assert without_check.check is None
    assert isinstance(without_check.job, MigrationTaskRun)


def test_the_cluster_is_a_component_an_ecs_cluster_or_an_arn() -> None:
    def arn_of(cluster: Callable[[], Any]) -> str:
        return str(record_release(cluster=cluster).one(JOB).inputs["cluster_arn"])

    component = arn_of(lambda: Cluster("shop", ClusterArgs()))
    ecs_cluster = arn_of(lambda: aws.ecs.Cluster("shop-cluster"))

    assert arn_of(lambda: CLUSTER_ARN) == CLUSTER_ARN
    assert component.startswith("arn:aws:ecs:") and component.endswith(":cluster/shop-cluster")
    assert ecs_cluster == component


def test_the_region_defaults_to_the_provider_s() -> None:
    explicit = record_release().one(JOB).inputs["region"]
    default = record_release(region=None).one(JOB).inputs["region"]

    assert (explicit, default) == ("us-east-1", "eu-west-1")
