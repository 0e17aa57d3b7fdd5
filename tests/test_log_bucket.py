"""The log bucket: its policy lets exactly the AWS services that deliver the stack's logs write
where they write (linted by parliament), the ALB's writer as AWS documents it per region, and
the bucket is private, SSE-S3, ACL-free, expiring and kept when removed."""

from __future__ import annotations

import json
from typing import Any

import parliament
import pulumi
import pytest

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.log_bucket import (
    DEFAULT_RETENTION_DAYS,
    LogBucket,
    LogBucketArgs,
)
from pulumi_django.recorder import MOCK_ACCOUNT, Recording, record
from pulumi_django.rendering.log_bucket_policy import (
    DeliveredLogs,
    log_bucket_policy,
    rds_monitoring_assume_role_policy,
)

ACCOUNT = "123456789012"
BUCKET = "arn:aws:s3:::site-logs"
FLOW_LOGS = DeliveredLogs("FlowLogsDeliveryWrites", "vpc-flow-logs", "eu-west-1")
CLOUDFRONT = DeliveredLogs("CloudFrontLogsDeliveryWrites", "cloudfront", "us-east-1")
BUCKET_TYPE = "aws:s3/bucket:Bucket"
POLICY_TYPE = "aws:s3/bucketPolicy:BucketPolicy"


def findings(document: str | dict[str, Any]) -> list[tuple[str, Any]]:
    text = document if isinstance(document, str) else json.dumps(document)
    return [(f.issue, f.detail) for f in parliament.analyze_policy_string(text).findings]


def statements(document: str) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in json.loads(document)["Statement"]}


def full_policy(region: str = "eu-west-1") -> str:
    return log_bucket_policy(
        BUCKET,
        account_id=ACCOUNT,
        region=region,
        load_balancer_prefix="site",
        delivered=[FLOW_LOGS, CLOUDFRONT],
    )


def test_log_bucket_policy_passes_parliament() -> None:
    assert findings(full_policy()) == []
    assert findings(full_policy("ap-south-2")) == []


def test_the_linter_catches_a_delivery_grant_on_the_wrong_resource() -> None:
    """parliament is not a rubber stamp here: the ACL check granted on the objects is caught."""
    document = json.loads(full_policy())
    for statement in document["Statement"]:
        if statement["Sid"] == "AWSLogDeliveryAclCheck":
            statement["Resource"] = f"{BUCKET}/*"
    assert "RESOURCE_MISMATCH" in [issue for issue, _ in findings(document)]


def test_only_tls_reaches_the_bucket() -> None:
    deny = statements(full_policy())["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert deny["Resource"] == [BUCKET, f"{BUCKET}/*"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


@pytest.mark.parametrize(
    ("region", "principal"),
    [
        # Regions opened before August 2022: the region's Elastic Load Balancing account.
        ("us-east-1", {"AWS": "arn:aws:iam::127311923021:root"}),
        ("eu-west-1", {"AWS": "arn:aws:iam::156460612806:root"}),
        ("ap-northeast-1", {"AWS": "arn:aws:iam::582318560864:root"}),
        ("us-gov-west-1", {"AWS": "arn:aws:iam::048591011584:root"}),
        # Regions opened since: the log delivery service principal.
        ("ap-south-2", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
        ("eu-central-2", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
        ("me-central-1", {"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}),
    ],
)
def test_the_alb_writer_is_the_one_aws_documents_for_the_region(
    region: str, principal: dict[str, str]
) -> None:
    writer = statements(full_policy(region))["LoadBalancerWritesAccessLogs"]
    assert writer["Principal"] == principal
    assert writer["Action"] == "s3:PutObject"
    # ELB adds AWSLogs/<account>/ after the prefix; nothing else is writable.
    assert writer["Resource"] == f"{BUCKET}/site/AWSLogs/{ACCOUNT}/*"


def test_the_elb_account_arn_follows_the_bucket_partition() -> None:
    document = log_bucket_policy(
        "arn:aws-cn:s3:::site-logs",
        account_id=ACCOUNT,
        region="cn-north-1",
        load_balancer_prefix="site",
    )
    writer = statements(document)["LoadBalancerWritesAccessLogs"]
    assert writer["Principal"] == {"AWS": "arn:aws-cn:iam::638102146993:root"}


def test_delivered_logs_are_written_by_this_accounts_deliveries_only() -> None:
    granted = statements(full_policy())
    flow = granted["FlowLogsDeliveryWrites"]
    cloudfront = granted["CloudFrontLogsDeliveryWrites"]
    for statement, prefix, region in (
        (flow, "vpc-flow-logs", "eu-west-1"),
        (cloudfront, "cloudfront", "us-east-1"),  # CloudFront's deliveries live in us-east-1
    ):
        assert statement["Principal"] == {"Service": "delivery.logs.amazonaws.com"}
        assert statement["Action"] == "s3:PutObject"
        assert statement["Resource"] == f"{BUCKET}/{prefix}/AWSLogs/{ACCOUNT}/*"
        assert statement["Condition"] == {
            "StringEquals": {
                "aws:SourceAccount": ACCOUNT,
                "s3:x-amz-acl": "bucket-owner-full-control",
            },
            "ArnLike": {"aws:SourceArn": f"arn:aws:logs:{region}:{ACCOUNT}:*"},
        }
    check = granted["AWSLogDeliveryAclCheck"]
    assert check["Resource"] == BUCKET
    assert check["Action"] == ["s3:GetBucketAcl", "s3:ListBucket"]
    assert check["Condition"]["ArnLike"]["aws:SourceArn"] == [
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:*",
        f"arn:aws:logs:us-east-1:{ACCOUNT}:*",
    ]


def test_a_bucket_without_writers_admits_nobody() -> None:
    document = log_bucket_policy(BUCKET, account_id=ACCOUNT, region="us-east-1")
    assert list(statements(document)) == ["DenyInsecureTransport"]


def test_rds_monitoring_trust_is_for_this_accounts_instances() -> None:
    document = rds_monitoring_assume_role_policy(
        partition="aws", region="eu-west-1", account_id=ACCOUNT
    )
    (statement,) = document["Statement"]
    assert statement["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:rds:eu-west-1:{ACCOUNT}:db:*"},
    }
    assert "Resource" not in statement  # IAM refuses one in a trust policy
    # Linted as the role's own resource policy (parliament reads identity policies).
    statement["Resource"] = f"arn:aws:iam::{ACCOUNT}:role/site-monitoring"
    assert findings(document) == []


# The component, recorded under the mocks.


def record_log_bucket(args: LogBucketArgs, region: str = "eu-west-1") -> Recording:
    def program() -> None:
        logs = LogBucket("site", args)
        pulumi.export("bucket_name", logs.bucket_name)
        pulumi.export("flow_logs_destination", logs.flow_logs_destination)
        pulumi.export("cloudfront_logs_destination", logs.cloudfront_logs_destination)

    return record(program, project="pulumi-django", stack="prod", config={"aws:region": region})


ALL_WRITERS = LogBucketArgs(load_balancer_prefix="site", flow_logs=True, cloudfront_logs=True)


def test_the_bucket_is_private_sse_s3_and_acl_free() -> None:
    recording = record_log_bucket(ALL_WRITERS)
    block = recording.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[key]
        for key in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    encryption = recording.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    # ELB delivers access logs to SSE-S3 buckets only.
    assert encryption["rules"] == [
        {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}
    ]
    ownership = recording.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert recording.one(BUCKET_TYPE).inputs["forceDestroy"] is False


def test_every_log_file_expires_after_the_retention() -> None:
    for days in (DEFAULT_RETENTION_DAYS, 30):
        recording = record_log_bucket(LogBucketArgs(retention_days=days, flow_logs=True))
        rules = recording.one(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        ).inputs["rules"]
        expiry = next(rule for rule in rules if "expiration" in rule)
        assert expiry["status"] == "Enabled"
        assert expiry["expiration"] == {"days": days}
        assert "filter" not in expiry  # the whole bucket


def test_the_bucket_and_its_settings_outlive_a_destroy_by_default() -> None:
    kept = record_log_bucket(ALL_WRITERS)
    children = [r for r in kept.resources if r.custom]
    assert children and all(r.options.get("retainOnDelete") is True for r in children)
    relaxed = record_log_bucket(LogBucketArgs(load_balancer_prefix="site", retain_on_delete=False))
    assert not any(r.options.get("retainOnDelete") for r in relaxed.resources)


def test_the_policy_admits_the_writers_asked_for_in_the_stacks_region() -> None:
    recording = record_log_bucket(ALL_WRITERS, region="eu-west-1")
    document = recording.one(POLICY_TYPE).inputs["policy"]
    assert findings(document) == []
    granted = statements(document)
    bucket_arn = f"arn:aws:s3:::{recording.outputs['bucket_name']}"
    assert granted["LoadBalancerWritesAccessLogs"]["Principal"] == {
        "AWS": "arn:aws:iam::156460612806:root"
    }
    assert granted["LoadBalancerWritesAccessLogs"]["Resource"] == (
        f"{bucket_arn}/site/AWSLogs/{MOCK_ACCOUNT}/*"
    )
    assert granted["FlowLogsDeliveryWrites"]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:logs:eu-west-1:{MOCK_ACCOUNT}:*"
    }
    assert granted["CloudFrontLogsDeliveryWrites"]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:logs:us-east-1:{MOCK_ACCOUNT}:*"
    }
    assert recording.outputs["flow_logs_destination"] == f"{bucket_arn}/vpc-flow-logs"
    assert recording.outputs["cloudfront_logs_destination"] == f"{bucket_arn}/cloudfront"

    alb_only = record_log_bucket(LogBucketArgs(load_balancer_prefix="site"))
    assert list(statements(alb_only.one(POLICY_TYPE).inputs["policy"])) == [
        "DenyInsecureTransport",
        "LoadBalancerWritesAccessLogs",
    ]
    assert alb_only.outputs.get("flow_logs_destination") is None
    assert alb_only.outputs.get("cloudfront_logs_destination") is None


def test_the_policy_waits_for_the_public_access_block() -> None:
    recording = record_log_bucket(ALL_WRITERS)
    policy = recording.one(POLICY_TYPE)
    block = recording.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert recording.depends_on(policy.urn, block.urn)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"retention_days": 0}, r"LogBucketArgs.retention_days = 0: give 1 day or more"),
        ({"load_balancer_prefix": "/site"}, r"LogBucketArgs.load_balancer_prefix = '/site'"),
        ({"load_balancer_prefix": ""}, r"LogBucketArgs.load_balancer_prefix = ''"),
        ({"load_balancer_prefix": "AWSLogs"}, r"without 'AWSLogs' \(ELB adds it\)"),
    ],
)
def test_bad_args_are_one_line_errors(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ComponentArgsError, match=message):
        LogBucketArgs(**args)
