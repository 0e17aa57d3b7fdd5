"""The opt-in audit controls (`security.accessLogs`, `security.flowLogs`,
`security.enhancedMonitoringSeconds`) as the shipped stacks plan them: in prod every log goes
to the stack's log bucket through the writer its policy admits, and RDS enhanced monitoring has
its role; dev has none of it. The requests AWS would receive are checked against botocore's
service models."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import botocore.session
import pulumi
import pytest
from botocore.validate import ParamValidator
from pydantic import ValidationError

from pulumi_django.cli.plan import Plan
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.database import Database, DatabaseArgs
from pulumi_django.components.aws.network import Network, NetworkArgs
from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.config.network import ExistingNetwork, NetworkConfig
from pulumi_django.config.security import ENHANCED_MONITORING_INTERVALS, SecurityConfig
from pulumi_django.recorder import MOCK_ACCOUNT, Recording, record

LOG_BUCKET = "pulumi-django:logs:LogBucket"
BUCKET = "aws:s3/bucket:Bucket"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
ALB = "aws:lb/loadBalancer:LoadBalancer"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
DELIVERY_SOURCE = "aws:cloudwatch/logDeliverySource:LogDeliverySource"
DELIVERY_DESTINATION = "aws:cloudwatch/logDeliveryDestination:LogDeliveryDestination"
DELIVERY = "aws:cloudwatch/logDelivery:LogDelivery"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
VPC = "aws:ec2/vpc:Vpc"
INSTANCE = "aws:rds/instance:Instance"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"


def log_bucket(recording: Recording) -> tuple[str, Any]:
    """The log bucket's name and its policy resource (the bucket under the LogBucket)."""
    component = recording.one(LOG_BUCKET)
    (bucket,) = [r for r in recording.find(BUCKET) if r.parent == component.urn]
    (policy,) = [r for r in recording.find(BUCKET_POLICY) if r.parent == component.urn]
    return bucket.inputs.get("bucket", bucket.name), policy


def waits_for(resource: Any, prop: str, dependency: Any) -> bool:
    return dependency.urn in resource.property_dependencies.get(prop, [])


def test_prod_sends_the_alb_access_logs_to_the_log_bucket(
    stack_plan: Callable[[str], Plan],
) -> None:
    recording = stack_plan("prod").recording
    bucket, policy = log_bucket(recording)
    alb = recording.one(ALB)
    assert alb.inputs["accessLogs"] == {"bucket": bucket, "prefix": "bigfoot", "enabled": True}
    # ELB checks its permission when access logs are turned on: the grant comes first.
    assert waits_for(alb, "accessLogs", policy)
    grant = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    writer = grant["LoadBalancerWritesAccessLogs"]
    assert writer["Principal"] == {"AWS": "arn:aws:iam::127311923021:root"}  # us-east-1's ELB
    assert writer["Resource"] == f"arn:aws:s3:::{bucket}/bigfoot/AWSLogs/{MOCK_ACCOUNT}/*"


def test_prod_delivers_cloudfront_standard_logs_from_us_east_1_to_the_log_bucket(
    stack_plan: Callable[[str], Plan],
) -> None:
    recording = stack_plan("prod").recording
    bucket, policy = log_bucket(recording)
    distribution = recording.one(DISTRIBUTION)
    source = recording.one(DELIVERY_SOURCE)
    destination = recording.one(DELIVERY_DESTINATION)
    delivery = recording.one(DELIVERY)
    assert {source.inputs["region"], destination.inputs["region"], delivery.inputs["region"]} == {
        "us-east-1"
    }
    assert source.inputs["logType"] == "ACCESS_LOGS"
    assert source.inputs["resourceArn"].endswith(":distribution/bigfoot-cdn-id")
    assert waits_for(source, "resourceArn", distribution)
    assert destination.inputs["deliveryDestinationConfiguration"] == {
        "destinationResourceArn": f"arn:aws:s3:::{bucket}/cloudfront"
    }
    assert waits_for(destination, "deliveryDestinationConfiguration", policy)
    assert delivery.inputs["deliverySourceName"] == source.inputs["name"]
    assert source.inputs["name"] == "cloudfront-bigfoot-cdn-id"  # after the distribution's id
    assert waits_for(delivery, "deliverySourceName", source)
    assert waits_for(delivery, "deliveryDestinationArn", destination)
    # No legacy logging: that would need ACLs on the bucket.
    assert "loggingConfig" not in distribution.inputs
    grant = {s["Sid"]: s for s in json.loads(policy.inputs["policy"])["Statement"]}
    assert grant["CloudFrontLogsDeliveryWrites"]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT}:*"
    }


def test_prod_logs_the_vpcs_flows_to_the_log_bucket(stack_plan: Callable[[str], Plan]) -> None:
    recording = stack_plan("prod").recording
    bucket, policy = log_bucket(recording)
    flow_log = recording.one(FLOW_LOG)
    assert flow_log.inputs["trafficType"] == "ALL"
    assert flow_log.inputs["logDestinationType"] == "s3"
    assert flow_log.inputs["logDestination"] == f"arn:aws:s3:::{bucket}/vpc-flow-logs"
    assert waits_for(flow_log, "vpcId", recording.one(VPC))
    # Made after the grant, so the delivery finds its statement and writes none of its own.
    assert waits_for(flow_log, "logDestination", policy)


def test_prod_monitors_the_database_os_with_its_own_role(stack_plan: Callable[[str], Plan]) -> None:
    recording = stack_plan("prod").recording
    instance = recording.one(INSTANCE)
    role = recording.one(ROLE, name=r".*-monitoring")
    attachment = recording.one(ATTACHMENT, name=r".*-monitoring")
    assert instance.inputs["monitoringInterval"] == 60
    assert instance.inputs["monitoringRoleArn"] == f"arn:aws:iam::{MOCK_ACCOUNT}:role/{role.name}"
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "monitoring.rds.amazonaws.com"}]
    assert attachment.inputs["policyArn"] == MONITORING_POLICY
    assert waits_for(attachment, "role", role)
    # RDS refuses a role whose policy is not attached yet.
    assert waits_for(instance, "monitoringRoleArn", attachment)


def test_prod_has_every_audit_control_and_dev_none(stack_plan: Callable[[str], Plan]) -> None:
    prod = stack_plan("prod").recording
    dev = stack_plan("dev").recording
    audit_types = [LOG_BUCKET, FLOW_LOG, DELIVERY_SOURCE, DELIVERY_DESTINATION, DELIVERY]
    assert all(prod.find(type_) for type_ in audit_types)
    assert not any(dev.find(type_) for type_ in audit_types)
    assert "accessLogs" in prod.one(ALB).inputs
    assert "accessLogs" not in dev.one(ALB).inputs
    assert prod.one(INSTANCE).inputs.get("monitoringInterval") == 60
    assert not dev.one(INSTANCE).inputs.get("monitoringInterval")
    assert "monitoringRoleArn" not in dev.one(INSTANCE).inputs
    assert not dev.find(ROLE, name=r".*-monitoring")
    assert "logBucket" in stack_plan("prod").as_json()["outputs"]
    assert "logBucket" not in stack_plan("dev").as_json()["outputs"]


# What AWS receives, against botocore's service models.

_SESSION = botocore.session.get_session()


def request_problems(service: str, operation: str, request: dict[str, Any]) -> list[str]:
    """Member names, types, required members and ranges (ParamValidator) and enum values."""
    shape: Any = _SESSION.get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(request, shape)
    problems = report.generate_report().splitlines() if report.has_errors() else []
    return problems + _enum_problems(request, shape, operation)


def _enum_problems(value: Any, shape: Any, path: str) -> list[str]:
    if shape.type_name == "structure" and isinstance(value, dict):
        return [
            problem
            for name, item in value.items()
            if name in shape.members
            for problem in _enum_problems(item, shape.members[name], f"{path}.{name}")
        ]
    if shape.type_name == "list" and isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _enum_problems(item, shape.member, path)]
    if shape.type_name == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} is not one of {shape.enum}"]
    return []


def test_the_log_requests_are_ones_aws_accepts(stack_plan: Callable[[str], Plan]) -> None:
    recording = stack_plan("prod").recording
    flow_log = recording.one(FLOW_LOG).inputs
    source = recording.one(DELIVERY_SOURCE)
    destination = recording.one(DELIVERY_DESTINATION)
    requests = [
        (
            "ec2",
            "CreateFlowLogs",
            {
                "ResourceIds": [flow_log["vpcId"]],
                "ResourceType": "VPC",
                "TrafficType": flow_log["trafficType"],
                "LogDestinationType": flow_log["logDestinationType"],
                "LogDestination": flow_log["logDestination"],
            },
        ),
        (
            "logs",
            "PutDeliverySource",
            {
                "name": source.inputs["name"],
                "resourceArn": source.inputs["resourceArn"],
                "logType": source.inputs["logType"],
            },
        ),
        (
            "logs",
            "PutDeliveryDestination",
            {
                "name": destination.inputs["name"],
                "outputFormat": destination.inputs["outputFormat"],
                "deliveryDestinationConfiguration": destination.inputs[
                    "deliveryDestinationConfiguration"
                ],
            },
        ),
    ]
    for service, operation, request in requests:
        assert request_problems(service, operation, request) == [], operation
    # An S3 destination is an S3 ARN (bucket/prefix), and the prefix is no CloudWatch Logs one.
    arn = destination.inputs["deliveryDestinationConfiguration"]["destinationResourceArn"]
    assert re.fullmatch(r"arn:aws:s3:::[a-z0-9.-]+/cloudfront", arn)


def test_the_interval_choices_are_the_ones_rds_documents() -> None:
    """RDS's model lists the valid values in prose only; the config and the component accept
    exactly those."""
    request: Any = _SESSION.get_service_model("rds").operation_model("CreateDBInstance")
    member = request.input_shape.members["MonitoringInterval"]
    documented = re.search(r"Valid Values: <code>([^<]*)</code>", member.documentation)
    assert documented is not None
    valid = tuple(int(value) for value in documented.group(1).split("|"))
    assert valid == ENHANCED_MONITORING_INTERVALS
    accepted = []
    for seconds in range(-1, 3601):
        try:
            accepted.append(SecurityConfig(enhanced_monitoring_seconds=seconds))
        except ValidationError:
            continue
    assert tuple(config.enhanced_monitoring_seconds for config in accepted) == valid
    with pytest.raises(ValidationError):
        SecurityConfig.model_validate({"enhancedMonitoringSeconds": True})


# The components' own arguments.


def record_program(program: Callable[[], None]) -> Recording:
    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "eu-west-1"})


def test_a_brought_monitoring_role_is_used_as_it_is() -> None:
    theirs = f"arn:aws:iam::{MOCK_ACCOUNT}:role/their-rds-monitoring"

    def program() -> None:
        Database(
            "data",
            DatabaseArgs(
                config=DatabaseConfig(),
                subnet_ids=["subnet-a", "subnet-b"],
                security_group_id="sg-db",
                enhanced_monitoring_seconds=15,
                monitoring_role=theirs,
            ),
        )

    recording = record_program(program)
    instance = recording.one(INSTANCE).inputs
    assert instance["monitoringInterval"] == 15
    assert instance["monitoringRoleArn"] == theirs
    assert not recording.find(ROLE) and not recording.find(ATTACHMENT)


def test_the_monitoring_role_trusts_this_accounts_instances_in_the_region() -> None:
    def program() -> None:
        Database(
            "data",
            DatabaseArgs(
                subnet_ids=["subnet-a", "subnet-b"],
                security_group_id="sg-db",
                enhanced_monitoring_seconds=30,
            ),
        )

    (statement,) = json.loads(record_program(program).one(ROLE).inputs["assumeRolePolicy"])[
        "Statement"
    ]
    assert statement["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:rds:eu-west-1:{MOCK_ACCOUNT}:db:*"
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"enhanced_monitoring_seconds": 2},
            r"DatabaseArgs.enhanced_monitoring_seconds = 2: RDS accepts one of 0, 1, 5, 10, 15, "
            r"30, 60",
        ),
        (
            {"monitoring_role": "arn:aws:iam::123456789012:role/x"},
            r"DatabaseArgs.monitoring_role needs enhanced_monitoring_seconds",
        ),
    ],
)
def test_database_monitoring_mistakes_are_one_line_errors(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message):
        DatabaseArgs(subnet_ids=["subnet-a"], security_group_id="sg-db", **args)


def test_an_existing_vpc_gets_its_flow_log_too() -> None:
    destination = "arn:aws:s3:::their-logs/vpc-flow-logs"

    def program() -> None:
        Network(
            "net",
            NetworkArgs(
                config=NetworkConfig(
                    existing=ExistingNetwork(
                        vpc_id="vpc-0123456789abcdef0",
                        public_subnet_ids=["subnet-pub-a", "subnet-pub-b"],
                        private_subnet_ids=["subnet-a", "subnet-b"],
                    )
                ),
                flow_logs_destination=destination,
            ),
        )
        pulumi.export("ok", True)

    flow_log = record_program(program).one(FLOW_LOG).inputs
    assert flow_log["vpcId"] == "vpc-0123456789abcdef0"
    assert flow_log["logDestination"] == destination


def test_log_retention_is_a_year_by_default_and_at_least_a_day() -> None:
    assert SecurityConfig().log_retention_days == 365
    with pytest.raises(ConfigError) as raised:
        parse_stack_config(
            {"target": "aws", "security": json.dumps({"logRetentionDays": 0})}, set()
        )
    assert any("django:security.logRetentionDays = 0" in p for p in raised.value.problems)
