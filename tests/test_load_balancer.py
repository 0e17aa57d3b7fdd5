"""The load balancer as `pulumi up` registers it: CloudFront only, quick draining, 403 default."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.load_balancer import (
    MAX_DEFAULT_DEREGISTRATION_DELAY,
    ORIGIN_VERIFY_HEADER,
    TLS_POLICY,
    LoadBalancer,
    LoadBalancerArgs,
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
    "public_subnet_ids": ["subnet-public-a", "subnet-public-b"],
    "security_group_ids": ["sg-load-balancer", "sg-load-balancer-http"],
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


def test_alb_is_public_in_public_subnets_behind_its_security_group() -> None:
    recording = record_load_balancer(stack_config())
    alb = recording.one(ALB, "web-alb")
    assert alb.inputs["loadBalancerType"] == "application"
    assert alb.inputs["internal"] is False
    assert alb.inputs["subnets"] == ["subnet-public-a", "subnet-public-b"]
    assert alb.inputs["securityGroups"] == ["sg-load-balancer", "sg-load-balancer-http"]
    assert alb.inputs["dropInvalidHeaderFields"] is True
    assert "accessLogs" not in alb.inputs


def test_every_child_belongs_to_the_component() -> None:
    recording = record_load_balancer(stack_config())
    component = recording.one("pulumi-django:fleet:LoadBalancer", "web")
    children = recording.children(component.urn)
    assert {child.type for child in children} == {ALB, TARGET_GROUP, LISTENER, RULE}
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
    assert {child.type for child in recording.children(component.urn)} == {TARGET_GROUP, RULE}
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
            public_subnet_ids=NETWORK["public_subnet_ids"],
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
            public_subnet_ids=NETWORK["public_subnet_ids"],
            security_group_ids=NETWORK["security_group_ids"],
            target_group=theirs,
        )

    recording = record_args(args)
    (group,) = recording.find(TARGET_GROUP)
    assert group.name == "theirs"
    assert recording.one(RULE).property_dependencies["actions"] == [group.urn]
    assert recording.outputs["target_group_arn_suffix"] == "targetgroup/theirs/0123456789abcdef"


def test_with_everything_brought_only_the_rule_is_created(lookups: None) -> None:
    recording = record_args(
        lambda: LoadBalancerArgs(
            origin_verify_secret=ORIGIN_SECRET,
            load_balancer=THEIR_ALB,
            listener=THEIR_LISTENER,
            target_group=THEIR_TARGET_GROUP,
        )
    )
    component = recording.one("pulumi-django:fleet:LoadBalancer", "web")
    assert [child.type for child in recording.children(component.urn)] == [RULE]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, r"LoadBalancerArgs.vpc_id is required unless target_group"),
        ({"vpc_id": "vpc-1"}, r"public_subnet_ids is required unless load_balancer"),
        (
            {"target_group": THEIR_TARGET_GROUP, "public_subnet_ids": ["subnet-a"]},
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
