"""StackKey: one customer-managed KMS key for the stack's data (`security.customerManagedKey`).

RDS storage, Performance Insights and the master user secret, ElastiCache at rest, the stack's
Secrets Manager secrets, CloudWatch Logs, the ECR repository and the media bucket (SSE-KMS with
an S3 Bucket Key) are encrypted with it when each component is given its ARN (`kms_key_arn`);
given none, they keep AWS managed keys (or SSE-S3), as before. Static files keep SSE-S3: the
static publisher compares an object's ETag with its MD5, which only SSE-S3 (and SSE-C) keep.

The key rotates its material every year, has an alias `alias/<name>-<6 hex of the project,
stack and name>` (unique per stack: an alias is unique per account and region), and outlives
the stack
by default: snapshots, retained buckets and log groups encrypted with it are unreadable
without it. The key policy is rendered by `rendering.stack_key_policy`, which explains who may
use the key and how; docs/security.md has the cost and what turning it on does to a running
stack (the database, the cache and the repository are replaced).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import ComponentArgsError, arg
from pulumi_django.config.names import RULES, kms_alias_name, rule_problems
from pulumi_django.rendering.stack_key_policy import stack_key_policy

STACK_KEY_TYPE = "pulumi-django:security:StackKey"
# KMS waits 7 to 30 days before it deletes a key scheduled for deletion; the longest wait
# leaves the most time to notice that something still needed it.
MAX_DELETION_WINDOW_DAYS = 30
MIN_DELETION_WINDOW_DAYS = 7


@dataclass(frozen=True, kw_only=True)
class StackKeyArgs:
    """The key's alias, who besides the account may use it, and what a destroy does."""

    alias: str | None = arg(
        "The alias after `alias/` (letters, digits, `/`, `_`, `-`; not `aws/...`; at most 250). "
        "Unique per account and region. Default: None, the component's name and 6 hexadecimal "
        "characters of the project, stack and name (`<name>-<hex>`), unique per stack.",
        default=None,
    )
    cloudfront_reads: bool = arg(
        "Let CloudFront (Origin Access Control) decrypt objects encrypted with the key: needed "
        "when public media is served from a bucket encrypted with it. Default: False.",
        default=False,
    )
    deletion_window_days: int = arg(
        "Days KMS waits before deleting the key once its deletion is scheduled (7-30). "
        "Default: 30.",
        default=MAX_DELETION_WINDOW_DAYS,
    )
    retain_on_delete: bool = arg(
        "Keep the key when the component is deleted (`pulumi destroy`): the final database "
        "snapshot, retained buckets and log groups stay readable; schedule its deletion by hand "
        "once nothing needs it. Default: True.",
        default=True,
    )

    def __post_init__(self) -> None:
        if self.alias is not None:
            check_alias(self.alias, "StackKeyArgs.alias")
        if not MIN_DELETION_WINDOW_DAYS <= self.deletion_window_days <= MAX_DELETION_WINDOW_DAYS:
            raise ComponentArgsError(
                f"StackKeyArgs.deletion_window_days: {self.deletion_window_days} is not between "
                f"{MIN_DELETION_WINDOW_DAYS} and {MAX_DELETION_WINDOW_DAYS}, the days KMS accepts"
            )


def check_alias(alias: str, where: str) -> None:
    """Raises ComponentArgsError unless KMS accepts `alias/<alias>` for a customer's key (the
    rule `config/names.py` holds every alias to)."""
    reasons = [reason for _, reason, _ in rule_problems(RULES["kms-alias"], f"alias/{alias}")]
    if reasons:
        raise ComponentArgsError(f"{where}: {alias!r} gives alias/{alias}: {'; '.join(reasons)}")


class StackKey(pulumi.ComponentResource):
    """A symmetric KMS key with yearly rotation, its key policy and its alias.

    Children: `key` and `alias`. Components take `arn` as their `kms_key_arn`."""

    key: aws.kms.Key
    alias: aws.kms.Alias
    arn: pulumi.Output[str]
    key_id: pulumi.Output[str]
    alias_name: str

    def __init__(
        self, name: str, args: StackKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(STACK_KEY_TYPE, name, None, opts)
        self.alias_name = (
            f"alias/{args.alias}"
            if args.alias is not None
            else kms_alias_name(name, pulumi.get_project(), pulumi.get_stack())
        )
        invoke = pulumi.InvokeOutputOptions(parent=self)
        policy = pulumi.Output.all(
            aws.get_partition_output(opts=invoke).partition,
            aws.get_region_output(opts=invoke).region,
            aws.get_caller_identity_output(opts=invoke).account_id,
        ).apply(
            lambda values: json.dumps(
                stack_key_policy(
                    partition=values[0],
                    region=values[1],
                    account_id=values[2],
                    cloudfront_reads=args.cloudfront_reads,
                )
            )
        )
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"{name}: the stack's data (RDS, ElastiCache, Secrets Manager, "
            "CloudWatch Logs, ECR, S3 media)",
            key_usage="ENCRYPT_DECRYPT",
            customer_master_key_spec="SYMMETRIC_DEFAULT",
            enable_key_rotation=True,
            deletion_window_in_days=args.deletion_window_days,
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=args.retain_on_delete),
        )
        self.alias = aws.kms.Alias(
            f"{name}-key",
            name=self.alias_name,
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = self.key.arn
        self.key_id = self.key.key_id
        self.register_outputs(
            {"arn": self.arn, "key_id": self.key_id, "alias_name": self.alias_name}
        )
