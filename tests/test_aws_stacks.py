"""The shipped AWS stacks (dev, prod) end to end under the offline plan: everything is there,
wired in the release order, with the safe defaults, and no secret leaks into the plan."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from pulumi_django.cli.plan import Plan
from pulumi_django.recorder import RecordedResource, Recording

AWS_STACKS = ["dev", "prod"]
# The web fleet's components; the background workers' (`WorkerService`) have their own service
# and task definition beside these.
WEB_FLEET = ("pulumi-django:fleet:AppService", "pulumi-django:fleet:AppTask")


def web(recording: Recording, type_: str) -> RecordedResource:
    """The web fleet's one resource of `type_` (its ECS service, its task definition)."""
    owners = {resource.urn for resource in recording.resources if resource.type in WEB_FLEET}
    [found] = [resource for resource in recording.find(type_) if resource.parent in owners]
    return found


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
    service = web(recording, "aws:ecs/service:Service")
    job = recording.one("pulumi-python:dynamic/migrations:MigrationJob")
    check = recording.one("pulumi-python:dynamic/migrations:MigrationCheck")
    release = recording.one("pulumi-python:dynamic/static:StaticRelease")
    image = recording.one("docker:index/image:Image")
    task_definition = web(recording, "aws:ecs/taskDefinition:TaskDefinition")
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
    service = web(stack_plan(stack).recording, "aws:ecs/service:Service").inputs
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
    assert web(prod, "aws:ecs/service:Service").inputs["desiredCount"] == 3


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_no_secret_value_reaches_the_plan(stack: str, stack_plan: Callable[[str], Plan]) -> None:
    plan = stack_plan(stack)
    text = json.dumps(plan.as_json())
    # The mocks make every generated password a run of x's; none may appear unmasked.
    assert "xxxxxxxxxxxxxxxx" not in text
    # In no container of the web task or of a background worker's.
    for task in plan.recording.find("aws:ecs/taskDefinition:TaskDefinition"):
        for container in json.loads(task.inputs["containerDefinitions"]):
            names = {item["name"] for item in container.get("environment", [])}
            assert not names & {"DATABASE_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY"}
    task = web(plan.recording, "aws:ecs/taskDefinition:TaskDefinition").inputs
    definitions = json.loads(task["containerDefinitions"])
    app = next(c for c in definitions if c["name"] == "app")
    secrets = {item["name"] for item in app["secrets"]}
    # The app logs in to the database with IAM tokens: it has no database password at all.
    assert secrets >= {"REDIS_PASSWORD", "DJANGO_SECRET_KEY"}
    assert "DATABASE_PASSWORD" not in secrets


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


# --- The edge: CloudFront to a private load balancer (docs/security.md) ---------------------

ALB = "aws:lb/loadBalancer:LoadBalancer"
VPC_ORIGIN = "aws:cloudfront/vpcOrigin:VpcOrigin"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
ANY_ADDRESS = ("0.0.0.0/0", "::/0")
# Every status code CloudFront caches an error for (10 s unless told otherwise).
CACHED_ERROR_CODES = {400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504}


def _by_id(recording: Recording, type_: str) -> dict[str, RecordedResource]:
    """Resources of a type by the id the mocks give them (`<name>-id`), as inputs name them."""
    return {f"{resource.name}-id": resource for resource in recording.find(type_)}


def _routes_to_the_internet(recording: Recording, subnet_id: str) -> bool:
    """Whether a subnet's route table sends anything to an internet gateway (a public one)."""
    tables = {
        association.inputs.get("routeTableId")
        for association in recording.find("aws:ec2/routeTableAssociation:RouteTableAssociation")
        if association.inputs.get("subnetId") == subnet_id
    }
    gateways = set(_by_id(recording, "aws:ec2/internetGateway:InternetGateway"))
    return any(
        route.inputs.get("gatewayId") in gateways
        for route in recording.find("aws:ec2/route:Route")
        if route.inputs.get("routeTableId") in tables
    )


def internet_exposure(recording: Recording) -> list[str]:
    """Everything in a plan that puts the app's load balancer on the internet, or the path from
    CloudFront to it across the internet: an internet-facing ALB, one in a subnet routed to an
    internet gateway, a rule admitting an address range (or a prefix list) to an ALB's groups,
    a CloudFront origin that is neither S3 behind origin access control nor a VPC origin of an
    internal ALB (a custom origin, over `http-only` or not, goes through the internet)."""
    found: list[str] = []
    albs = recording.find(ALB)
    vpc_origin_urns = {resource.urn for resource in recording.find(VPC_ORIGIN)}
    for alb in albs:
        if alb.inputs.get("internal") is not True:
            found.append(f"{alb.name} is internet-facing")
        subnets = alb.inputs.get("subnets") or []
        found += [
            f"{alb.name} sits in {subnet}, routed to the internet"
            for subnet in subnets
            if _routes_to_the_internet(recording, subnet)
        ]
        groups = set(alb.inputs.get("securityGroups") or [])
        for group in recording.find("aws:ec2/securityGroup:SecurityGroup"):
            if f"{group.name}-id" in groups and group.inputs.get("ingress"):
                found.append(f"{group.name} of {alb.name} has inline ingress")
        for rule in recording.find("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
            if rule.inputs.get("securityGroupId") in groups:
                source = rule.inputs.get("referencedSecurityGroupId")
                # CloudFront's VPC-origin group, looked up once the VPC origin made it.
                if not source or not vpc_origin_urns & set(rule.dependencies):
                    opened = rule.inputs.get("cidrIpv4") or rule.inputs.get("cidrIpv6")
                    opened = opened or rule.inputs.get("prefixListId") or source
                    found.append(f"{rule.name} admits {opened} to {alb.name}, not the VPC origin")
        for rule in recording.find("aws:ec2/securityGroupRule:SecurityGroupRule"):
            if (
                rule.inputs.get("securityGroupId") in groups
                and rule.inputs.get("type") == "ingress"
            ):
                found.append(f"{rule.name} admits {rule.inputs.get('cidrBlocks')} to {alb.name}")
    internal_albs = {alb.urn for alb in albs if alb.inputs.get("internal") is True}
    vpc_origins = _by_id(recording, VPC_ORIGIN)
    for distribution in recording.find(DISTRIBUTION):
        for origin in distribution.inputs.get("origins", []):
            where = f"{distribution.name} origin {origin['originId']}"
            if "customOriginConfig" in origin:
                policy = origin["customOriginConfig"].get("originProtocolPolicy")
                found.append(
                    f"{where} goes through the internet ({policy}) to {origin['domainName']}"
                )
            elif "vpcOriginConfig" in origin:
                vpc_origin = vpc_origins.get(origin["vpcOriginConfig"].get("vpcOriginId"))
                if vpc_origin is None:
                    found.append(f"{where} names a VPC origin the plan does not make")
                elif not internal_albs & set(
                    vpc_origin.property_dependencies.get("vpcOriginEndpointConfig", [])
                ):
                    found.append(f"{where} reaches something other than an internal ALB")
            elif not (
                origin.get("originAccessControlId")
                and ".s3." in origin["domainName"]
                and origin["domainName"].endswith(".amazonaws.com")
            ):
                found.append(f"{where} is neither S3 behind origin access control nor a VPC origin")
    return found


def cached_errors(recording: Recording) -> list[str]:
    """The error codes a distribution of the plan would keep serving from its cache."""
    found: list[str] = []
    for distribution in recording.find(DISTRIBUTION):
        ttls = {
            response["errorCode"]: response.get("errorCachingMinTtl")
            for response in distribution.inputs.get("customErrorResponses", [])
        }
        found += [
            f"{distribution.name} caches {code} for {ttls.get(code, '10 (the default)')} s"
            for code in sorted(CACHED_ERROR_CODES)
            if ttls.get(code) != 0
        ]
    return found


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_no_load_balancer_is_on_the_internet_nor_reached_across_it(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    assert recording.find(ALB), "the stack has a load balancer"
    assert internet_exposure(recording) == []
    # The one way in: CloudFront's VPC-origin group, on the port the VPC origin uses.
    (alb,) = recording.find(ALB)
    rules = [
        rule
        for rule in recording.find("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if rule.inputs["securityGroupId"] in alb.inputs["securityGroups"]
    ]
    endpoint = recording.one(VPC_ORIGIN).inputs["vpcOriginEndpointConfig"]
    port = 443 if endpoint["originProtocolPolicy"] == "https-only" else 80
    assert [(rule.inputs["fromPort"], rule.inputs["toPort"]) for rule in rules] == [(port, port)]


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_cloudfront_caches_none_of_the_apps_errors(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    assert cached_errors(stack_plan(stack).recording) == []


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_what_needs_the_internet_gateway_waits_for_it(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    """A VPC origin needs an internet gateway attached to its VPC; a NAT gateway needs one to
    reach anything. Neither may be created before it."""
    recording = stack_plan(stack).recording
    gateway = recording.one("aws:ec2/internetGateway:InternetGateway")
    vpc_origins = recording.find(VPC_ORIGIN)
    assert vpc_origins, "CloudFront reaches the load balancer through a VPC origin"
    waiting = [*vpc_origins, *recording.find("aws:ec2/natGateway:NatGateway")]
    assert all(gateway.urn in resource.dependencies for resource in waiting)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_every_health_check_asks_liveness_and_readiness_is_an_output(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    """A database failover or cache maintenance must fail none of the checks ECS acts on: the
    target group's, both containers' and the proxy's wait for a HEALTHY app all ask
    `app.healthCheckPath` (liveness); the readiness path reaches the app, and the stack
    outputs its URL for people and alarms."""
    recording = stack_plan(stack).recording
    health = recording.one("aws:lb/targetGroup:TargetGroup").inputs["healthCheck"]
    assert (health["path"], health["matcher"]) == ("/healthz", "200")
    definitions = json.loads(
        web(recording, "aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"]
    )
    by_name = {definition["name"]: definition for definition in definitions}
    environment = {pair["name"]: pair["value"] for pair in by_name["app"]["environment"]}
    assert environment["DJANGO_HEALTH_CHECK_PATH"] == "/healthz"
    assert environment["DJANGO_READINESS_PATH"] == "/readyz"
    for definition in definitions:
        command = " ".join(definition["healthCheck"]["command"])
        assert "/healthz" in command and "/readyz" not in command
    assert by_name["proxy"]["dependsOn"] == [{"containerName": "app", "condition": "HEALTHY"}]
    assert recording.outputs["readinessUrl"] == f"{recording.outputs['url']}/readyz"
