"""The shipped AWS stacks (dev, prod) end to end under the offline plan: everything is there,
wired in the release order, with the safe defaults, and no secret leaks into the plan."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pulumi_django.cli.plan import Plan

AWS_STACKS = ["dev", "prod"]


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_release_order_is_enforced_by_dependencies(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    steps = stack_plan(stack).release_order()
    assert [step.step.key for step in steps] == ["image", "static", "check", "migrate", "fleet"]
    assert all(step.ordered for step in steps[1:]), [(s.step.key, s.ordered) for s in steps]


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_the_fleet_waits_for_migrations_which_wait_for_static_files_and_image(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    service = recording.one("aws:ecs/service:Service")
    job = recording.one("pulumi-python:dynamic/migrations:MigrationJob")
    check = recording.one("pulumi-python:dynamic/migrations:MigrationCheck")
    release = recording.one("pulumi-python:dynamic/static:StaticRelease")
    image = recording.one("docker:index/image:Image")
    task_definition = recording.one("aws:ecs/taskDefinition:TaskDefinition")
    assert recording.depends_on(service.urn, job.urn)
    assert recording.depends_on(job.urn, check.urn)
    assert recording.depends_on(check.urn, release.urn)
    assert recording.depends_on(release.urn, image.urn)
    assert recording.depends_on(job.urn, task_definition.urn)
    # Nothing of the release waits for the fleet: no cycle, and the old fleet keeps serving
    # until every earlier step has succeeded.
    assert not recording.depends_on(job.urn, service.urn)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_component_is_present_once(stack: str, stack_plan: Callable[[str], Plan]) -> None:
    recording = stack_plan(stack).recording
    for token in [
        "pulumi-django:site:AwsSite",
        "pulumi-django:network:Network",
        "pulumi-django:database:Database",
        "pulumi-django:cache:Cache",
        "pulumi-django:fleet:LoadBalancer",
        "pulumi-django:static:StaticSite",
        "pulumi-django:media:MediaStorage",
        "pulumi-django:fleet:AppImage",
        "pulumi-django:fleet:AppTask",
        "pulumi-django:migrations:MigrationJob",
        "pulumi-django:fleet:AppService",
    ]:
        component = recording.one(token)
        assert component.custom is False
    site = recording.one("pulumi-django:site:AwsSite")
    assert all(
        resource.parent is not None
        for resource in recording.resources
        if resource.type != "pulumi:pulumi:Stack"
    )
    assert all(
        resource.parent == site.urn
        for resource in recording.resources
        if resource.type.startswith("pulumi-django:") and resource.urn != site.urn
    )


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_rolling_update_safety_is_on(stack: str, stack_plan: Callable[[str], Plan]) -> None:
    service = stack_plan(stack).recording.one("aws:ecs/service:Service").inputs
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert service["deploymentMinimumHealthyPercent"] == 100
    assert service["deploymentMaximumPercent"] == 200
    assert service["waitForSteadyState"] is True
    assert service["networkConfiguration"]["assignPublicIp"] is False


def test_prod_is_highly_available_and_dev_relaxes_explicitly(
    stack_plan: Callable[[str], Plan],
) -> None:
    prod = stack_plan("prod").recording
    dev = stack_plan("dev").recording
    prod_db = prod.one("aws:rds/instance:Instance").inputs
    dev_db = dev.one("aws:rds/instance:Instance").inputs
    assert prod_db["multiAz"] is True and prod_db["deletionProtection"] is True
    assert dev_db["multiAz"] is False and dev_db["deletionProtection"] is False
    assert prod.one("aws:elasticache/replicationGroup:ReplicationGroup").inputs[
        "automaticFailoverEnabled"
    ]
    assert len(prod.find("aws:ec2/natGateway:NatGateway")) == 3
    assert len(dev.find("aws:ec2/natGateway:NatGateway")) == 1
    assert prod.one("aws:ecs/service:Service").inputs["desiredCount"] == 3


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_no_secret_value_reaches_the_plan(stack: str, stack_plan: Callable[[str], Plan]) -> None:
    plan = stack_plan(stack)
    text = json.dumps(plan.as_json())
    # The mocks make every generated password a run of x's; none may appear unmasked.
    assert "xxxxxxxxxxxxxxxx" not in text
    task = plan.recording.one("aws:ecs/taskDefinition:TaskDefinition").inputs
    definitions = json.loads(task["containerDefinitions"])
    for container in definitions:
        names = {item["name"] for item in container.get("environment", [])}
        assert not names & {"DATABASE_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY"}
    app = next(c for c in definitions if c["name"] == "app")
    secrets = {item["name"] for item in app["secrets"]}
    assert secrets >= {"DATABASE_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY"}


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_only_cloudfront_reaches_the_load_balancer(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    open_rules = [
        rule
        for rule in recording.find("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
    ]
    assert open_rules == []
    distribution = recording.one("aws:cloudfront/distribution:Distribution").inputs
    headers = [
        header for origin in distribution["origins"] for header in origin.get("customHeaders", [])
    ]
    assert headers == [{"name": "X-Origin-Verify", "value": "[secret]"}]


@pytest.mark.parametrize(("stack", "name"), [("dev", "bigfoot-dev"), ("prod", "bigfoot")])
def test_every_aws_resource_is_tagged_through_the_sites_provider(
    stack: str, name: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    provider = recording.one("pulumi:providers:aws")
    assert json.loads(provider.inputs["defaultTags"]) == {
        "tags": {"app": name, "managed-by": "pulumi-django", "environment": stack}
    }
    assert provider.inputs["region"] == "us-east-1"
    aws_resources = [r for r in recording.resources if r.type.startswith("aws:")]
    assert aws_resources
    assert {r.provider.rsplit("::", 1)[0] for r in aws_resources} == {provider.urn}
    # No resource repeats the shared tags by hand; only per-resource `Name` tags remain.
    assert {key for r in aws_resources for key in r.inputs.get("tags", {})} <= {"Name"}


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_taggable_resource_carries_the_stack_tags_as_aws_applies_them(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    from pulumi_django.cli.plan_diff.model import _by_urn, _taggable

    plan = stack_plan(stack).as_json()
    taggable = [r for r in plan["resources"] if _taggable(r["type"])]
    # Every resource that took the tags by hand before (buckets, roles, the cluster, ...).
    assert len(taggable) > 40
    for resource in _by_urn(plan).values():
        if _taggable(resource["type"]):
            assert resource["inputs"]["tags"]["managed-by"] == "pulumi-django", resource["urn"]
            assert resource["inputs"]["tags"]["environment"] == stack, resource["urn"]
