"""The log bucket's policy, and the trust of the RDS enhanced monitoring role: plain documents,
free of Pulumi, so that tests feed them to an IAM linter.

Who writes to the log bucket, and how AWS documents each writer:

- the ALB's access logs: Elastic Load Balancing writes `<prefix>/AWSLogs/<account>/...`. In the
  regions that existed before August 2022 the writer is an ELB account of the region (its
  `root`); in the regions opened since, the `logdelivery.elasticloadbalancing.amazonaws.com`
  service principal ("Enable access logs for your Application Load Balancer", step 2). The
  principal is not honoured in the older regions, so the region decides. SSE-S3 only.
- VPC flow logs and CloudFront standard logging (v2): CloudWatch Logs' delivery service,
  `delivery.logs.amazonaws.com`, writes `<prefix>/AWSLogs/<account>/...` with the
  `bucket-owner-full-control` ACL header, and reads the bucket's ACL first, both scoped to the
  account's deliveries by `aws:SourceAccount` and `aws:SourceArn` ("Amazon S3 bucket permissions
  for flow logs"; "Logs sent to Amazon S3" in the CloudWatch Logs guide). CloudFront's deliveries
  live in us-east-1 whatever the bucket's region.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .iam_policies import VERSION
from .static_bucket_policy import deny_insecure_transport

ELB_LOG_DELIVERY_SERVICE = "logdelivery.elasticloadbalancing.amazonaws.com"
LOG_DELIVERY_SERVICE = "delivery.logs.amazonaws.com"
RDS_MONITORING_SERVICE = "monitoring.rds.amazonaws.com"
# CloudFront is global; its log deliveries (sources, destinations) are made in us-east-1.
CLOUDFRONT_LOG_REGION = "us-east-1"

# The Elastic Load Balancing account of each region opened before August 2022, the writer of
# its load balancers' access logs (AWS's table, the same as terraform-provider-aws's
# `aws_elb_service_account`). A region not listed here uses the service principal.
ELB_ACCOUNT_IDS = {
    "us-east-1": "127311923021",
    "us-east-2": "033677994240",
    "us-west-1": "027434742980",
    "us-west-2": "797873946194",
    "af-south-1": "098369216593",
    "ap-east-1": "754344448648",
    "ap-southeast-3": "589379963580",
    "ap-south-1": "718504428378",
    "ap-northeast-3": "383597477331",
    "ap-northeast-2": "600734575887",
    "ap-southeast-1": "114774131450",
    "ap-southeast-2": "783225319266",
    "ap-northeast-1": "582318560864",
    "ca-central-1": "985666609251",
    "eu-central-1": "054676820928",
    "eu-west-1": "156460612806",
    "eu-west-2": "652711504416",
    "eu-south-1": "635631232127",
    "eu-west-3": "009996457667",
    "eu-north-1": "897822967062",
    "me-south-1": "076674570225",
    "sa-east-1": "507241528517",
    "us-gov-west-1": "048591011584",
    "us-gov-east-1": "190560391635",
    "cn-north-1": "638102146993",
    "cn-northwest-1": "037604701340",
}

Policy = dict[str, Any]


@dataclass(frozen=True)
class DeliveredLogs:
    """Logs CloudWatch Logs' delivery service writes under `prefix` (no slashes at its ends),
    for deliveries made in `source_region`; `sid` names the statement."""

    sid: str
    prefix: str
    source_region: str


def arn_partition(arn: str) -> str:
    """`aws`, `aws-cn` or `aws-us-gov`: the second field of an ARN."""
    return arn.split(":", 2)[1]


def load_balancer_log_writer(region: str, partition: str) -> dict[str, str]:
    """The principal that writes a region's ALB access logs."""
    account = ELB_ACCOUNT_IDS.get(region)
    if account is not None:
        return {"AWS": f"arn:{partition}:iam::{account}:root"}
    return {"Service": ELB_LOG_DELIVERY_SERVICE}


def log_bucket_policy(
    bucket_arn: str,
    *,
    account_id: str,
    region: str,
    load_balancer_prefix: str | None = None,
    delivered: Sequence[DeliveredLogs] = (),
) -> str:
    """TLS only; the ALB of `region` writes its access logs under `load_balancer_prefix` (none
    when None); the delivery service writes each of `delivered` under its prefix. Every write
    is confined to `<prefix>/AWSLogs/<account_id>/`."""
    partition = arn_partition(bucket_arn)
    statements: list[dict[str, Any]] = [deny_insecure_transport(bucket_arn)]
    if load_balancer_prefix is not None:
        statements.append(
            {
                "Sid": "LoadBalancerWritesAccessLogs",
                "Effect": "Allow",
                "Principal": load_balancer_log_writer(region, partition),
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{load_balancer_prefix}/AWSLogs/{account_id}/*",
            }
        )
    for logs in delivered:
        statements.append(
            {
                "Sid": logs.sid,
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY_SERVICE},
                "Action": "s3:PutObject",
                "Resource": f"{bucket_arn}/{logs.prefix}/AWSLogs/{account_id}/*",
                "Condition": {
                    "StringEquals": {
                        "aws:SourceAccount": account_id,
                        "s3:x-amz-acl": "bucket-owner-full-control",
                    },
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:logs:{logs.source_region}:{account_id}:*"
                    },
                },
            }
        )
    if delivered:
        regions = sorted({logs.source_region for logs in delivered})
        source_arns = [f"arn:{partition}:logs:{source}:{account_id}:*" for source in regions]
        statements.append(
            {
                "Sid": "AWSLogDeliveryAclCheck",
                "Effect": "Allow",
                "Principal": {"Service": LOG_DELIVERY_SERVICE},
                "Action": ["s3:GetBucketAcl", "s3:ListBucket"],
                "Resource": bucket_arn,
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {
                        "aws:SourceArn": source_arns[0] if len(source_arns) == 1 else source_arns
                    },
                },
            }
        )
    return json.dumps({"Version": VERSION, "Statement": statements}, indent=2)


def rds_monitoring_assume_role_policy(*, partition: str, region: str, account_id: str) -> Policy:
    """Trust for RDS enhanced monitoring of this account's DB instances in `region` only (the
    confused-deputy conditions of "Setting up and enabling Enhanced Monitoring"). The instance
    is named by the provider after the role exists, so its ARN is matched by pattern."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "RdsMonitoringOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": RDS_MONITORING_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {"aws:SourceArn": f"arn:{partition}:rds:{region}:{account_id}:db:*"},
                },
            }
        ],
    }
