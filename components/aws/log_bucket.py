"""LogBucket: the private S3 bucket the stack's audit logs are delivered to.

The ALB's access logs (under its prefix), VPC flow logs (`vpc-flow-logs/`) and CloudFront's
standard logs (`cloudfront/`) land here, each written by the AWS service that AWS documents for
it and by nothing else (`rendering.log_bucket_policy`). The bucket has what every bucket of the
stack has (no public access, no ACLs, TLS only) and:

- SSE-S3, never KMS: Elastic Load Balancing delivers access logs only to SSE-S3 buckets, so the
  stack's customer-managed key does not apply here;
- an expiry: every log file is deleted `retention_days` after it was written (an S3 lifecycle
  rule, free of charge), so the bucket's size settles at about that many days of logs;
- retained by default: removing the bucket from the stack, or destroying the stack, leaves the
  bucket and its logs in place (an audit trail outlives what it audits); the expiry keeps
  running on it.

Writers wait for their grant: `bucket_name`, `flow_logs_destination` and
`cloudfront_logs_destination` resolve once the bucket policy exists, so an ALB, a flow log or a
log delivery built on them is created after it (ELB checks its permission when access logs are
turned on, and a flow log or delivery made before its grant would write its own statement into
the policy).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django._mock_answers import MOCK_ACCOUNT, mock_region, or_mock_answer
from pulumi_django.components.args import ComponentArgsError, arg
from pulumi_django.components.aws.private_bucket import (
    BucketControls,
    bucket_policy,
    lock_down_bucket,
)
from pulumi_django.rendering.log_bucket_policy import (
    CLOUDFRONT_LOG_REGION,
    DeliveredLogs,
    log_bucket_policy,
)

# A year: long enough for an incident found months later, and what audit standards commonly
# ask for (PCI DSS keeps audit logs 12 months).
DEFAULT_RETENTION_DAYS = 365
FLOW_LOGS_PREFIX = "vpc-flow-logs"
CLOUDFRONT_PREFIX = "cloudfront"
# A delivery never leaves a multipart upload behind for long; a crashed one costs until aborted.
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


@dataclass(frozen=True, kw_only=True)
class LogBucketArgs:
    """How long logs are kept, which writers the bucket admits, and what a removal does."""

    retention_days: int = arg(
        "Days a log file is kept before S3 deletes it (`security.logRetentionDays`). Default: "
        f"{DEFAULT_RETENTION_DAYS}.",
        default=DEFAULT_RETENTION_DAYS,
    )
    load_balancer_prefix: str | None = arg(
        "Key prefix the stack's ALB writes its access logs under (LoadBalancer writes under "
        "its name): the region's load-balancer log writer may put objects there. Default: "
        "None, no ALB logs.",
        default=None,
    )
    flow_logs: bool = arg(
        f"Admit VPC flow logs under `{FLOW_LOGS_PREFIX}/` (the destination is "
        "`flow_logs_destination`). Default: off.",
        default=False,
    )
    cloudfront_logs: bool = arg(
        f"Admit CloudFront standard logs (v2) under `{CLOUDFRONT_PREFIX}/` (the destination "
        "is `cloudfront_logs_destination`). Default: off.",
        default=False,
    )
    retain_on_delete: bool = arg(
        "Leave the bucket and its logs (and its policy, encryption and expiry) in place when "
        "it is removed from the stack or the stack is destroyed. Default: True.",
        default=True,
    )

    def __post_init__(self) -> None:
        if self.retention_days < 1:
            raise ComponentArgsError(
                f"LogBucketArgs.retention_days = {self.retention_days}: give 1 day or more"
            )
        prefix = self.load_balancer_prefix
        if prefix is not None and (
            not prefix or prefix.strip("/") != prefix or "AWSLogs" in prefix
        ):
            raise ComponentArgsError(
                f"LogBucketArgs.load_balancer_prefix = {prefix!r}: give a non-empty prefix "
                "without leading or trailing slashes and without 'AWSLogs' (ELB adds it)"
            )


class LogBucket(pulumi.ComponentResource):
    """The log bucket. Children: `bucket`, `bucket_controls` (public access block, SSE-S3,
    ownership controls), `lifecycle` (the expiry) and `bucket_policy` (`policy_document`).

    `flow_logs_destination` and `cloudfront_logs_destination` are the S3 ARNs (bucket and
    prefix) to hand to a flow log and to a CloudFront log delivery; None unless admitted."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    policy_document: pulumi.Output[str]
    flow_logs_destination: pulumi.Output[str] | None
    cloudfront_logs_destination: pulumi.Output[str] | None
    bucket: aws.s3.Bucket
    bucket_controls: BucketControls
    lifecycle: aws.s3.BucketLifecycleConfiguration
    bucket_policy: aws.s3.BucketPolicy

    def __init__(
        self, name: str, args: LogBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:logs:LogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = or_mock_answer(aws.get_region_output(opts=invoke).region, mock_region())
        account_id = or_mock_answer(
            aws.get_caller_identity_output(opts=invoke).account_id, MOCK_ACCOUNT
        )

        # force_destroy stays off: a destroy must never delete the audit trail with the bucket.
        self.bucket = aws.s3.Bucket(f"{name}-logs", force_destroy=False, opts=child)
        self.bucket_controls = lock_down_bucket(f"{name}-logs", self.bucket, child)
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-logs",
            bucket=self.bucket.id,
            # No filter: each rule applies to the whole bucket, which holds logs alone.
            rules=[
                {
                    "id": "expire-logs",
                    "status": "Enabled",
                    "expiration": {"days": args.retention_days},
                },
                {
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_INCOMPLETE_UPLOADS_DAYS
                    },
                },
            ],
            opts=child,
        )

        delivered = self._delivered(args, region)
        self.policy_document = pulumi.Output.all(
            self.bucket.arn, account_id, region, delivered
        ).apply(
            lambda values: log_bucket_policy(
                values[0],
                account_id=values[1],
                region=values[2],
                load_balancer_prefix=args.load_balancer_prefix,
                delivered=values[3],
            )
        )
        self.bucket_policy = bucket_policy(
            f"{name}-logs", self.bucket, self.bucket_controls, self.policy_document, child
        )

        self.bucket_name = self._after_policy(self.bucket.bucket)
        self.bucket_arn = self._after_policy(self.bucket.arn)
        self.flow_logs_destination = (
            self.bucket_arn.apply(lambda arn: f"{arn}/{FLOW_LOGS_PREFIX}")
            if args.flow_logs
            else None
        )
        self.cloudfront_logs_destination = (
            self.bucket_arn.apply(lambda arn: f"{arn}/{CLOUDFRONT_PREFIX}")
            if args.cloudfront_logs
            else None
        )
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "flow_logs_destination": self.flow_logs_destination,
                "cloudfront_logs_destination": self.cloudfront_logs_destination,
            }
        )

    @staticmethod
    def _delivered(
        args: LogBucketArgs, region: pulumi.Output[str]
    ) -> pulumi.Output[list[DeliveredLogs]]:
        """The delivery service's writers: flow logs from the stack's region, CloudFront's from
        us-east-1."""
        return region.apply(
            lambda stack_region: [
                *(
                    [DeliveredLogs("FlowLogsDeliveryWrites", FLOW_LOGS_PREFIX, stack_region)]
                    if args.flow_logs
                    else []
                ),
                *(
                    [
                        DeliveredLogs(
                            "CloudFrontLogsDeliveryWrites",
                            CLOUDFRONT_PREFIX,
                            CLOUDFRONT_LOG_REGION,
                        )
                    ]
                    if args.cloudfront_logs
                    else []
                ),
            ]
        )

    def _after_policy(self, value: pulumi.Output[str]) -> pulumi.Output[str]:
        """`value`, resolved once the bucket policy exists (and carrying it as a dependency)."""
        return pulumi.Output.all(value, self.bucket_policy.id).apply(lambda values: values[0])
