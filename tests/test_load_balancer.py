"""The load balancer as `pulumi up` registers it: CloudFront only, quick draining, 403 default."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pulumi_django.components.aws.load_balancer import (
    MAX_DEFAULT_DEREGISTRATION_DELAY,
    ORIGIN_VERIFY_HEADER,
    TLS_POLICY,
    LoadBalancer,
)
from pulumi_django.config import StackConfig
from pulumi_django.recorder import MOCK_ACCOUNT, SECRET, RecordedResource, Recording, record

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


def stack_config(**sections: Any) -> StackConfig:
    return StackConfig.model_validate({"target": "aws", **sections})


def record_load_balancer(
    config: StackConfig,
    *,
    deletion_protection: bool = False,
    access_logs_bucket: str | None = None,
    built: list[LoadBalancer] | None = None,
) -> Recording:
    def program() -> None:
        component = LoadBalancer(
            "web",
            config=config.load_balancer,
            app=config.app,
            proxy_port=config.proxy.port,
            domain=config.domain,
            vpc_id="vpc-0a1b2c3d",
            public_subnet_ids=["subnet-public-a", "subnet-public-b"],
            security_group_ids=["sg-load-balancer", "sg-load-balancer-http"],
            origin_verify_secret=ORIGIN_SECRET,
            deletion_protection=deletion_protection,
            access_logs_bucket=access_logs_bucket,
            tags={"team": "web"},
        )
        if built is not None:
            built.append(component)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


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
    assert alb.inputs["tags"] == {"team": "web"}
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


@pytest.mark.parametrize("protected", [False, True])
def test_deletion_protection_follows_the_input(protected: bool) -> None:
    recording = record_load_balancer(stack_config(), deletion_protection=protected)
    assert recording.one(ALB).inputs["enableDeletionProtection"] is protected


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
        {"type": "forward", "targetGroupArn": f"arn:aws:lb:us-east-1:{MOCK_ACCOUNT}:{group.name}"}
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


def test_the_origin_secret_stays_secret_in_the_rules_outputs() -> None:
    rule = record_load_balancer(stack_config()).one("aws:lb/listenerRule:ListenerRule")
    assert rule.options["additionalSecretOutputs"] == ["conditions"]
