"""The load balancer as `pulumi up` registers it: internal, reached only through CloudFront's VPC
origin, quick draining, 403 default."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.load_balancer import (
    MAX_DEFAULT_DEREGISTRATION_DELAY,
    MOCK_VPC_ORIGIN_GROUP_ID,
    ORIGIN_VERIFY_HEADER,
    TLS_POLICY,
    VPC_ORIGIN_SERVICE_GROUP,
    LoadBalancer,
    LoadBalancerArgs,
    vpc_origin_name,
)
from pulumi_django.config import StackConfig
from pulumi_django.recorder import (
    MOCK_ACCOUNT,
    MOCK_INVOKES,
    SECRET,
    RecordedResource,
    Recording,
    record,
)

ALB = "aws:lb/loadBalancer:LoadBalancer"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
VPC_ORIGIN = "aws:cloudfront/vpcOrigin:VpcOrigin"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
ORIGIN_SECRET = "origin-secret-value-0123456789"
LB_CERTIFICATE = (
    "arn:aws:acm:eu-west-1:123456789012:certificate/0f0f0f0f-1111-2222-3333-444455556666"
)
DOMAIN = {
    "name": "www.example.com",
    "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/aaaa-bbbb",
}
# Resources of the user's account, brought by ARN.
THEIR_ALB = (
    f"arn:aws:elasticloadbalancing:us-east-1:{MOCK_ACCOUNT}:loadbalancer/app/shared/"
    "50dc6c495c0c9188"
)
THEIR_LISTENER = (
    f"arn:aws:elasticloadbalancing:us-east-1:{MOCK_ACCOUNT}:listener/app/shared/50dc6c495c0c9188/"
    "f2f7dc8efc522ab2"
)
THEIR_TARGET_GROUP = (
    f"arn:aws:elasticloadbalancing:us-east-1:{MOCK_ACCOUNT}:targetgroup/web/73e2d6bc24d8a067"
)
NETWORK = {
    "vpc_id": "vpc-0a1b2c3d",
    "subnet_ids": ["subnet-private-a", "subnet-private-b"],
    "security_group_ids": ["sg-load-balancer"],
}
OUTPUTS = (
    "dns_name",
    "zone_id",
    "arn",
    "arn_suffix",
    "target_group_arn",
    "target_group_arn_suffix",
)


def stack_config(**sections: Any) -> StackConfig:
    return StackConfig.model_validate({"target": "aws", **sections})


def stack_args(config: StackConfig, **extra: Any) -> LoadBalancerArgs:
    """The arguments AwsSite gives the load balancer for `config`."""
    return LoadBalancerArgs(
        config=config.load_balancer,
        origin_verify_secret=ORIGIN_SECRET,
        proxy_port=config.proxy.port,
        health_check_path=config.app.health_check_path,
        graceful_timeout_seconds=config.app.graceful_timeout_seconds,
        certificate_arn=config.domain.load_balancer_certificate_arn if config.domain else None,
        **{**NETWORK, **extra},
    )


def record_args(
    args: Callable[[], LoadBalancerArgs], built: list[LoadBalancer] | None = None
) -> Recording:
    """`args` is called inside the program, so that resources it builds are registered there."""

    def program() -> None:
        component = LoadBalancer("web", args())
        for output in OUTPUTS:
            pulumi.export(output, getattr(component, output))
        if built is not None:
            built.append(component)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


def record_load_balancer(
    config: StackConfig,
    *,
    access_logs_bucket: str | None = None,
    built: list[LoadBalancer] | None = None,
) -> Recording:
    return record_args(lambda: stack_args(config, access_logs_bucket=access_logs_bucket), built)


def target_group(recording: Recording) -> RecordedResource:
    return recording.one(TARGET_GROUP)


def test_alb_is_internal_in_private_subnets_behind_its_security_group() -> None:
    recording = record_load_balancer(stack_config())
    alb = recording.one(ALB, "web-alb")
    assert alb.inputs["loadBalancerType"] == "application"
    assert alb.inputs["internal"] is True
    assert alb.inputs["subnets"] == ["subnet-private-a", "subnet-private-b"]
    assert alb.inputs["securityGroups"] == ["sg-load-balancer"]
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert "accessLogs" not in alb.inputs


def test_every_child_belongs_to_the_component() -> None:
    recording = record_load_balancer(stack_config())
    component = recording.one("pulumi-django:fleet:LoadBalancer", "web")
    children = recording.children(component.urn)
    assert {child.type for child in children} == {ALB, TARGET_GROUP, LISTENER, RULE, VPC_ORIGIN}
    assert all(child.name.startswith("web-") for child in children)


@pytest.mark.parametrize("idle_timeout", [60, 240])
def test_idle_timeout_comes_from_config(idle_timeout: int) -> None:
    recording = record_load_balancer(
        stack_config(loadBalancer={"idleTimeoutSeconds": idle_timeout})
    )
    assert recording.one(ALB).inputs["idleTimeout"] == idle_timeout


def test_deletion_protection_is_on_by_default() -> None:
    assert record_load_balancer(stack_config()).one(ALB).inputs["enableDeletionProtection"]


def test_deletion_protection_comes_from_the_load_balancer_section() -> None:
    """Not from the database's: each section says what it protects."""
    config = stack_config(
        loadBalancer={"deletionProtection": False}, database={"deletionProtection": True}
    )
    assert record_load_balancer(config).one(ALB).inputs["enableDeletionProtection"] is False


def test_access_logs_go_to_the_given_bucket() -> None:
    recording = record_load_balancer(stack_config(), access_logs_bucket="logs-bucket")
    assert recording.one(ALB).inputs["accessLogs"] == {
        "bucket": "logs-bucket",
        "prefix": "web",
        "enabled": True,
    }


def test_target_group_targets_task_ips_on_the_proxy_port_with_the_app_health_check() -> None:
    recording = record_load_balancer(
        stack_config(
            proxy={"port": 8181},
            app={"healthCheckPath": "/-/ready"},
            loadBalancer={
                "healthCheckIntervalSeconds": 15,
                "healthyThreshold": 3,
                "unhealthyThreshold": 4,
            },
        )
    )
    group = target_group(recording).inputs
    assert group["targetType"] == "ip"
    assert group["protocol"] == "HTTP"
    assert group["port"] == 8181
    assert group["vpcId"] == "vpc-0a1b2c3d"
    check = group["healthCheck"]
    assert check["path"] == "/-/ready"
    assert check["matcher"] == "200"
    assert check["port"] == "traffic-port"
    assert (check["interval"], check["healthyThreshold"], check["unhealthyThreshold"]) == (15, 3, 4)
    assert check["timeout"] < check["interval"]


def test_health_check_timeout_stays_below_the_shortest_interval() -> None:
    recording = record_load_balancer(stack_config(loadBalancer={"healthCheckIntervalSeconds": 5}))
    check = target_group(recording).inputs["healthCheck"]
    assert check["timeout"] < check["interval"] == 5


def test_default_health_check_tuning_takes_a_bad_task_out_within_half_a_minute() -> None:
    check = target_group(record_load_balancer(stack_config())).inputs["healthCheck"]
    assert check["interval"] * check["unhealthyThreshold"] <= 30
    assert check["interval"] * check["healthyThreshold"] <= 20


@pytest.mark.parametrize(
    ("graceful", "expected"),
    [(25, 30), (10, 15), (1, 6), (90, MAX_DEFAULT_DEREGISTRATION_DELAY)],
)
def test_deregistration_delay_derives_from_the_graceful_timeout(
    graceful: int, expected: int
) -> None:
    recording = record_load_balancer(stack_config(app={"gracefulTimeoutSeconds": graceful}))
    delay = target_group(recording).inputs["deregistrationDelay"]
    assert delay == expected
    assert delay <= 30  # never AWS's 300 s per batch of tasks


def test_configured_deregistration_delay_wins() -> None:
    recording = record_load_balancer(stack_config(loadBalancer={"deregistrationDelaySeconds": 45}))
    assert target_group(recording).inputs["deregistrationDelay"] == 45


def test_default_request_survives_draining_plus_graceful_stop() -> None:
    """ECS stops a task only after draining; then the app has its graceful time again."""
    config = stack_config()
    delay = target_group(record_load_balancer(config)).inputs["deregistrationDelay"]
    assert delay + config.app.graceful_timeout_seconds >= config.app.timeout_seconds


def assert_forbidden_by_default(listener: RecordedResource) -> None:
    assert listener.inputs["defaultActions"] == [
        {
            "type": "fixed-response",
            "fixedResponse": {
                "contentType": "text/plain",
                "messageBody": "Forbidden",
                "statusCode": "403",
            },
        }
    ]


def assert_forwards_only_with_the_origin_header(
    recording: Recording, listener: RecordedResource
) -> None:
    rule = recording.one(RULE)
    assert rule.property_dependencies["listenerArn"] == [listener.urn]
    assert rule.inputs["conditions"] == [
        {"httpHeader": {"httpHeaderName": ORIGIN_VERIFY_HEADER, "values": [SECRET]}}
    ]
    group = target_group(recording)
    assert rule.inputs["actions"] == [
        {
            "type": "forward",
            "targetGroupArn": f"arn:aws:elasticloadbalancing:us-east-1:{MOCK_ACCOUNT}:"
            f"targetgroup/{group.name}/0123456789abcdef",
        }
    ]
    assert rule.property_dependencies["actions"] == [group.urn]
    assert rule.inputs["priority"] == 1


def test_without_a_certificate_http_serves_only_requests_with_the_origin_header() -> None:
    recording = record_load_balancer(stack_config(domain=DOMAIN))
    listeners = recording.find(LISTENER)
    assert [(listener.inputs["port"], listener.inputs["protocol"]) for listener in listeners] == [
        (80, "HTTP")
    ]
    assert_forbidden_by_default(listeners[0])
    assert_forwards_only_with_the_origin_header(recording, listeners[0])


def test_with_a_certificate_http_redirects_and_https_serves() -> None:
    recording = record_load_balancer(
        stack_config(domain={**DOMAIN, "loadBalancerCertificateArn": LB_CERTIFICATE})
    )
    http = recording.one(LISTENER, "web-http")
    assert http.inputs["port"] == 80
    assert http.inputs["defaultActions"] == [
        {
            "type": "redirect",
            "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"},
        }
    ]
    https = recording.one(LISTENER, "web-https")
    assert (https.inputs["port"], https.inputs["protocol"]) == (443, "HTTPS")
    assert https.inputs["certificateArn"] == LB_CERTIFICATE
    assert https.inputs["sslPolicy"] == TLS_POLICY
    assert_forbidden_by_default(https)
    assert_forwards_only_with_the_origin_header(recording, https)


def test_origin_secret_never_appears_in_plain_text() -> None:
    recording = record_load_balancer(stack_config())
    everything = json.dumps([resource.as_json() for resource in recording.resources])
    assert ORIGIN_SECRET not in everything


@pytest.mark.parametrize(
    ("domain", "https"),
    [
        (None, False),
        (DOMAIN, False),
        ({**DOMAIN, "loadBalancerCertificateArn": LB_CERTIFICATE}, True),
    ],
)
def test_https_output_tells_whether_the_origin_speaks_tls(
    domain: dict[str, str] | None, https: bool
) -> None:
    built: list[LoadBalancer] = []
    record_load_balancer(stack_config(domain=domain), built=built)
    assert built[0].https is https
    # What StaticSite gets to put the ALB behind its distribution.
    assert built[0].origin.https is https
    assert built[0].origin.dns_name is built[0].dns_name
    assert built[0].origin.origin_verify_secret == ORIGIN_SECRET


def test_the_origin_secret_stays_secret_in_the_rules_outputs() -> None:
    rule = record_load_balancer(stack_config()).one("aws:lb/listenerRule:ListenerRule")
    assert rule.options["additionalSecretOutputs"] == ["conditions"]


# --- Escape hatches and bring your own ----------------------------------------------------


def their_alb(_args: Any, region: str) -> dict[str, Any]:
    """`aws.lb.get_load_balancer` as AWS answers it for the user's ALB."""
    return {
        "arn": THEIR_ALB,
        "arnSuffix": "app/shared/50dc6c495c0c9188",
        "dnsName": f"shared-1234.{region}.elb.amazonaws.com",
        "zoneId": "Z35SXDOTRQ7X7K",
    }


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(MOCK_INVOKES, "aws:lb/getLoadBalancer:getLoadBalancer", their_alb)


def test_every_child_is_a_typed_attribute() -> None:
    built: list[LoadBalancer] = []
    recording = record_load_balancer(stack_config(), built=built)
    (component,) = built
    assert isinstance(component.load_balancer, aws.lb.LoadBalancer)
    assert isinstance(component.target_group, aws.lb.TargetGroup)
    assert isinstance(component.http_listener, aws.lb.Listener)
    assert component.https_listener is None  # no certificate: port 80 serves
    assert isinstance(component.listener_rule, aws.lb.ListenerRule)
    assert recording.one(LISTENER).name == "web-http"


def test_with_a_certificate_both_listeners_are_attributes() -> None:
    built: list[LoadBalancer] = []
    config = stack_config(domain={**DOMAIN, "loadBalancerCertificateArn": LB_CERTIFICATE})
    record_load_balancer(config, built=built)
    assert isinstance(built[0].http_listener, aws.lb.Listener)
    assert isinstance(built[0].https_listener, aws.lb.Listener)


def test_a_brought_load_balancer_object_gets_the_listeners_and_no_alb_is_created() -> None:
    built: list[LoadBalancer] = []

    def args() -> LoadBalancerArgs:
        theirs = aws.lb.LoadBalancer("shared", load_balancer_type="application")
        return LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET, vpc_id="vpc-0a1b2c3d", load_balancer=theirs
        )

    recording = record_args(args, built)
    (alb,) = recording.find(ALB)
    assert alb.name == "shared" and alb.parent != recording.one(name="web").urn
    listener = recording.one(LISTENER, "web-http")
    assert listener.property_dependencies["loadBalancerArn"] == [alb.urn]
    assert built[0].load_balancer is None
    assert recording.outputs["dns_name"] == "shared-123456.us-east-1.elb.amazonaws.com"
    assert recording.outputs["arn_suffix"] == "app/shared/0123456789abcdef"


def test_a_brought_load_balancer_arn_is_looked_up(lookups: None) -> None:
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET, vpc_id="vpc-0a1b2c3d", load_balancer=THEIR_ALB
        )
    )
    assert recording.find(ALB) == []
    assert recording.one(LISTENER).inputs["loadBalancerArn"] == THEIR_ALB
    assert recording.outputs["arn"] == THEIR_ALB
    assert recording.outputs["dns_name"] == "shared-1234.us-east-1.elb.amazonaws.com"
    assert recording.outputs["zone_id"] == "Z35SXDOTRQ7X7K"
    assert recording.outputs["arn_suffix"] == "app/shared/50dc6c495c0c9188"


def test_a_brought_listener_gets_only_the_forwarding_rule(lookups: None) -> None:
    built: list[LoadBalancer] = []
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            vpc_id="vpc-0a1b2c3d",
            load_balancer=THEIR_ALB,
            listener=THEIR_LISTENER,
            priority=120,
        ),
        built,
    )
    component = recording.one("pulumi-django:fleet:LoadBalancer", "web")
    children = {child.type for child in recording.children(component.urn)}
    assert children == {TARGET_GROUP, RULE, VPC_ORIGIN}
    rule = recording.one(RULE)
    assert rule.inputs["listenerArn"] == THEIR_LISTENER
    assert rule.inputs["priority"] == 120
    assert rule.inputs["conditions"] == [
        {"httpHeader": {"httpHeaderName": ORIGIN_VERIFY_HEADER, "values": [SECRET]}}
    ]
    assert rule.options["additionalSecretOutputs"] == ["conditions"]
    assert built[0].https is True  # CloudFront reaches a brought listener over HTTPS
    assert built[0].http_listener is None and built[0].https_listener is None


def test_a_brought_target_group_arn_is_forwarded_to_and_needs_no_vpc() -> None:
    built: list[LoadBalancer] = []
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            subnet_ids=NETWORK["subnet_ids"],
            security_group_ids=NETWORK["security_group_ids"],
            target_group=THEIR_TARGET_GROUP,
        ),
        built,
    )
    assert recording.find(TARGET_GROUP) == []
    assert built[0].target_group is None
    assert recording.one(RULE).inputs["actions"] == [
        {"type": "forward", "targetGroupArn": THEIR_TARGET_GROUP}
    ]
    assert recording.outputs["target_group_arn"] == THEIR_TARGET_GROUP
    # CloudWatch names a target group by the part after the account.
    assert recording.outputs["target_group_arn_suffix"] == "targetgroup/web/73e2d6bc24d8a067"


def test_a_brought_target_group_object_gives_its_own_suffix() -> None:
    def args() -> LoadBalancerArgs:
        theirs = aws.lb.TargetGroup("theirs", target_type="ip", port=8080, protocol="HTTP")
        return LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            subnet_ids=NETWORK["subnet_ids"],
            security_group_ids=NETWORK["security_group_ids"],
            target_group=theirs,
        )

    recording = record_args(args)
    (group,) = recording.find(TARGET_GROUP)
    assert group.name == "theirs"
    assert recording.one(RULE).property_dependencies["actions"] == [group.urn]
    assert recording.outputs["target_group_arn_suffix"] == "targetgroup/theirs/0123456789abcdef"


def test_with_everything_brought_only_the_rule_and_the_vpc_origin_are_created(
    lookups: None,
) -> None:
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            load_balancer=THEIR_ALB,
            listener=THEIR_LISTENER,
            target_group=THEIR_TARGET_GROUP,
        )
    )
    component = recording.one("pulumi-django:fleet:LoadBalancer", "web")
    # In either order: neither waits for the other, so which registers first is the event loop's.
    assert sorted(child.type for child in recording.children(component.urn)) == sorted(
        [RULE, VPC_ORIGIN]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, r"LoadBalancerArgs.vpc_id is required unless target_group"),
        ({"vpc_id": "vpc-1"}, r"subnet_ids is required unless load_balancer"),
        (
            {"target_group": THEIR_TARGET_GROUP, "subnet_ids": ["subnet-a"]},
            r"security_group_ids is required unless load_balancer",
        ),
        (
            {**NETWORK, "listener": THEIR_LISTENER},
            r"LoadBalancerArgs.listener needs load_balancer",
        ),
        (
            {
                "vpc_id": "vpc-1",
                "load_balancer": THEIR_ALB,
                "listener": THEIR_LISTENER,
                "certificate_arn": LB_CERTIFICATE,
            },
            r"LoadBalancerArgs.certificate_arn is for the component's own HTTPS listener",
        ),
        (
            {"vpc_id": "vpc-1", "load_balancer": THEIR_ALB, "access_logs_bucket": "logs"},
            r"LoadBalancerArgs.access_logs_bucket is for the component's own ALB",
        ),
    ],
)
def test_arguments_that_do_not_fit_are_one_line_naming_the_argument(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message) as raised:
        LoadBalancerArgs(origin_verify_secret=ORIGIN_SECRET, **args)
    assert "\n" not in str(raised.value)


# --- The way in: CloudFront's VPC origin, never the internet ---------------------------------


def vpc_origin(recording: Recording) -> dict[str, Any]:
    config: dict[str, Any] = recording.one(VPC_ORIGIN, "web-origin").inputs[
        "vpcOriginEndpointConfig"
    ]
    return config


@pytest.mark.parametrize(
    ("domain", "policy"),
    [
        (None, "http-only"),
        ({**DOMAIN, "loadBalancerCertificateArn": LB_CERTIFICATE}, "https-only"),
    ],
)
def test_the_vpc_origin_points_at_the_alb_with_https_when_it_has_a_certificate(
    domain: dict[str, str] | None, policy: str
) -> None:
    recording = record_load_balancer(stack_config(domain=domain))
    alb_arn = f"arn:aws:elasticloadbalancing:us-east-1:{MOCK_ACCOUNT}:loadbalancer/app/web-alb/"
    alb_arn += "0123456789abcdef"
    assert vpc_origin(recording) == {
        "name": vpc_origin_name("web", alb_arn, policy),
        "arn": alb_arn,
        "httpPort": 80,
        "httpsPort": 443,
        "originProtocolPolicy": policy,
        "originSslProtocols": {"items": ["TLSv1.2"], "quantity": 1},
    }
    origin = recording.one(VPC_ORIGIN)
    assert origin.property_dependencies["vpcOriginEndpointConfig"] == [recording.one(ALB).urn]


def test_a_brought_listener_is_reached_over_https(lookups: None) -> None:
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            vpc_id="vpc-0a1b2c3d",
            load_balancer=THEIR_ALB,
            listener=THEIR_LISTENER,
        )
    )
    assert vpc_origin(recording)["originProtocolPolicy"] == "https-only"
    assert vpc_origin(recording)["arn"] == THEIR_ALB


def test_the_vpc_origin_is_replaced_never_updated_under_a_new_name() -> None:
    """CloudFront refuses to update or delete a VPC origin a distribution uses, and to make two
    of one name: the replacement is created first, under another name, then the old one goes."""
    options = record_load_balancer(stack_config()).one(VPC_ORIGIN).options
    assert options["replaceOnChanges"] == ["vpcOriginEndpointConfig"]
    assert not options.get("deleteBeforeReplace")
    names = {
        vpc_origin_name("web", arn, policy)
        for arn in (THEIR_ALB, THEIR_ALB.replace("50dc6c495c0c9188", "60dc6c495c0c9188"))
        for policy in ("http-only", "https-only")
    }
    assert len(names) == 4
    assert all(len(name) <= 64 and name.startswith("web-") for name in names)
    assert vpc_origin_name("w" * 80, THEIR_ALB, "http-only") == vpc_origin_name(
        "w" * 80, THEIR_ALB, "http-only"
    )
    assert len(vpc_origin_name("w" * 80, THEIR_ALB, "http-only")) <= 64


def test_the_vpc_origin_waits_for_what_it_is_given() -> None:
    """The site gives the VPC's internet gateway: CloudFront requires one attached."""

    def args() -> LoadBalancerArgs:
        gateway = aws.ec2.InternetGateway("igw", vpc_id="vpc-0a1b2c3d")
        return stack_args(stack_config(), after=[gateway])

    recording = record_args(args)
    gateway = recording.one("aws:ec2/internetGateway:InternetGateway")
    assert gateway.urn in recording.one(VPC_ORIGIN).dependencies


@pytest.fixture
def service_group(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`aws.ec2.get_security_group` finding CloudFront's VPC-origin group; the asks are kept."""
    asked: list[dict[str, Any]] = []

    def found(args: dict[str, Any], _region: str) -> dict[str, Any]:
        asked.append(dict(args))
        return {"id": "sg-0cloudfrontvpcorigin", "name": VPC_ORIGIN_SERVICE_GROUP}

    monkeypatch.setitem(MOCK_INVOKES, "aws:ec2/getSecurityGroup:getSecurityGroup", found)
    return asked


def record_with_ingress(config: StackConfig, built: list[LoadBalancer]) -> Recording:
    def program() -> None:
        component = LoadBalancer(
            "web", stack_args(config, cloudfront_security_group_id="sg-load-balancer")
        )
        built.append(component)
        # What a distribution built on the origin would wait for.
        pulumi.CustomResource(
            "test:index:Distribution", "cdn", {"vpcOriginId": component.origin.vpc_origin_id}
        )

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


@pytest.mark.parametrize(
    ("domain", "port"),
    [(None, 80), ({**DOMAIN, "loadBalancerCertificateArn": LB_CERTIFICATE}, 443)],
)
def test_the_albs_group_admits_only_cloudfronts_vpc_origin_group(
    service_group: list[dict[str, Any]], domain: dict[str, str] | None, port: int
) -> None:
    built: list[LoadBalancer] = []
    recording = record_with_ingress(stack_config(domain=domain), built)
    (rule,) = recording.find(INGRESS)
    assert rule.inputs == {
        "securityGroupId": "sg-load-balancer",
        "referencedSecurityGroupId": "sg-0cloudfrontvpcorigin",
        "ipProtocol": "tcp",
        "fromPort": port,
        "toPort": port,
        "description": "from CloudFront VPC origin",
        "tags": {"Name": "web-from-vpc-origin"},
    }
    # Looked up in the ALB's VPC, once the VPC origin (which makes the group) exists.
    assert service_group == [{"name": VPC_ORIGIN_SERVICE_GROUP, "vpcId": "vpc-0a1b2c3d"}]
    origin = recording.one(VPC_ORIGIN)
    assert origin.urn in rule.dependencies
    # The distribution moves to the VPC origin only once the ALB lets it in.
    distribution = recording.one("test:index:Distribution")
    assert rule.urn in distribution.property_dependencies["vpcOriginId"]
    assert isinstance(built[0].vpc_origin_ingress, aws.vpc.SecurityGroupIngressRule)
    assert isinstance(built[0].vpc_origin, aws.cloudfront.VpcOrigin)


def test_under_mocks_that_answer_nothing_the_group_reads_as_a_placeholder() -> None:
    recording = record_with_ingress(stack_config(), [])
    rule = recording.one(INGRESS)
    assert rule.inputs["referencedSecurityGroupId"] == MOCK_VPC_ORIGIN_GROUP_ID


def test_without_a_group_to_open_no_rule_is_added() -> None:
    """A brought group admits CloudFront's VPC-origin group itself; a second copy of the rule
    would be refused as a duplicate."""
    built: list[LoadBalancer] = []
    recording = record_load_balancer(stack_config(), built=built)
    assert recording.find(INGRESS) == []
    assert built[0].vpc_origin_ingress is None


def record_distribution(args: Callable[[], LoadBalancerArgs]) -> Recording:
    """The component, and a distribution built on its origin (what StaticSite makes)."""

    def program() -> None:
        component = LoadBalancer("web", args())
        pulumi.CustomResource(
            "test:index:Distribution", "cdn", {"vpcOriginId": component.origin.vpc_origin_id}
        )

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


@pytest.mark.parametrize("group", [None, "sg-load-balancer"], ids=["no-ingress", "ingress"])
@pytest.mark.parametrize("brought", [False, True], ids=["own-listener", "brought-listener"])
def test_the_distribution_waits_for_the_forwarding_rule(
    lookups: None, group: str | None, brought: bool
) -> None:
    """Until the rule exists the listener answers every request 403: CloudFront must not be
    pointed at the VPC origin before it, with or without the ingress rule, on the component's
    listener or a brought one."""
    extra: dict[str, Any] = {"cloudfront_security_group_id": group}
    if brought:
        extra |= {"load_balancer": THEIR_ALB, "listener": THEIR_LISTENER}
    recording = record_distribution(lambda: stack_args(stack_config(), **extra))
    rule = recording.one(RULE)
    assert rule.urn in recording.one("test:index:Distribution").property_dependencies["vpcOriginId"]


def test_the_target_group_has_a_name_of_its_own_for_the_internal_alb() -> None:
    """AWS lets a target group serve one load balancer: the internet-facing ALB of earlier
    releases is replaced, and its `-targets` group cannot follow (TargetGroupAssociationLimit).
    A new logical name, without an alias to the old one, makes a new group for the new ALB;
    the old one is deleted after the service moved (in place: its load balancers update)."""
    group = target_group(record_load_balancer(stack_config()))
    assert group.name == "web-backend"
    assert len("-backend") == len("-targets")
    # The only aliases are pulumi-aws's own, of the type's former token, under the new name.
    assert all(alias.endswith("::web-backend") for alias in group.options.get("aliases", []))


def internet_facing(args: dict[str, Any], region: str) -> dict[str, Any]:
    return {**their_alb(args, region), "internal": False, "vpcId": "vpc-0a1b2c3d"}


def test_a_brought_internet_facing_alb_arn_is_refused_in_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(MOCK_INVOKES, "aws:lb/getLoadBalancer:getLoadBalancer", internet_facing)
    with pytest.raises(ComponentArgsError, match=r"LoadBalancerArgs.load_balancer: .* is inter"):
        record_args(
            lambda: LoadBalancerArgs(
                origin_verify_secret=ORIGIN_SECRET, vpc_id="vpc-0a1b2c3d", load_balancer=THEIR_ALB
            )
        )


def test_a_brought_internet_facing_alb_object_is_refused() -> None:
    def args() -> LoadBalancerArgs:
        theirs = aws.lb.LoadBalancer("shared", load_balancer_type="application", internal=False)
        return LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET, vpc_id="vpc-0a1b2c3d", load_balancer=theirs
        )

    with pytest.raises(ComponentArgsError, match=r"is internet-facing; bring an internal ALB"):
        record_args(args)
    settle_failed_program()


def settle_failed_program() -> None:
    """Lets what the failed program left running fail now, seen, rather than be reported as
    never retrieved while a later test runs the event loop."""
    for loop in [o for o in gc.get_objects() if issubclass(type(o), asyncio.BaseEventLoop)]:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if pending and not (loop.is_running() or loop.is_closed()):
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    for future in [o for o in gc.get_objects() if issubclass(type(o), asyncio.Future)]:
        if future.done() and not future.cancelled():
            future.exception()


def test_a_brought_internal_alb_gets_the_vpc_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        MOCK_INVOKES,
        "aws:lb/getLoadBalancer:getLoadBalancer",
        lambda args, region: {**internet_facing(args, region), "internal": True},
    )
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET, vpc_id="vpc-0a1b2c3d", load_balancer=THEIR_ALB
        )
    )
    assert vpc_origin(recording)["arn"] == THEIR_ALB
    assert vpc_origin(recording)["originProtocolPolicy"] == "http-only"


def test_a_brought_alb_reached_by_a_distribution_of_yours_gets_no_vpc_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its scheme is then not the component's to check: an internet-facing one is accepted."""
    monkeypatch.setitem(MOCK_INVOKES, "aws:lb/getLoadBalancer:getLoadBalancer", internet_facing)
    built: list[LoadBalancer] = []
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            load_balancer=THEIR_ALB,
            listener=THEIR_LISTENER,
            target_group=THEIR_TARGET_GROUP,
            vpc_origin=False,
        ),
        built,
    )
    assert recording.find(VPC_ORIGIN) == []
    assert built[0].vpc_origin is None and built[0].vpc_origin_id is None
    with pytest.raises(ComponentArgsError, match=r"LoadBalancer 'web' has no VPC origin"):
        built[0].origin  # noqa: B018 (the property refuses)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({**NETWORK, "vpc_origin": False}, r"vpc_origin=False is for a brought load_balancer"),
        (
            {
                "vpc_id": "vpc-1",
                "load_balancer": THEIR_ALB,
                "vpc_origin": False,
                "cloudfront_security_group_id": "sg-1",
            },
            r"cloudfront_security_group_id admits the VPC origin's group",
        ),
    ],
)
def test_a_vpc_origin_left_out_where_it_cannot_be_is_refused_in_one_line(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message) as raised:
        LoadBalancerArgs(origin_verify_secret=ORIGIN_SECRET, **args)
    assert "\n" not in str(raised.value)
