"""The stack's customer-managed KMS key: its key policy, and the statements that let the app's
roles use it through one AWS service each. Plain dicts, free of Pulumi, linted by parliament.

Who may use the key, and how (docs/security.md, "Opt-in controls: customer-managed KMS key"):

- The account administers it (`AccountAdministersKey`, the documented default statement): IAM
  policies of the account then decide, and the principal running `pulumi up` uses it through
  them. RDS, Performance Insights, ElastiCache and ECR take the key at creation and create their
  own grants with that principal's permissions; they need nothing in the key policy.
- CloudWatch Logs encrypts as its own service principal, so the key policy names it, limited by
  the encryption context to the log groups of this account and region.
- CloudFront (Origin Access Control) decrypts public media as its own service principal, only
  when media is public.
- The app's roles get `kms:Decrypt` (and, for uploads, `kms:GenerateDataKey`) in their IAM
  policies, each limited by `kms:ViaService` to the one service that asks for it and by the
  encryption context to the stack's secrets or the media bucket: the key policy does not hand
  the key to every principal of the account, as the AWS managed keys' policies do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

KEY_POLICY_VERSION = "2012-10-17"
KMS_KEY_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z-]*):kms:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):key/[A-Za-z0-9-]+"
)
# What CloudWatch Logs does with a log group's key (AWS's documented statement lists
# `Encrypt*`, `Decrypt*`, `ReEncrypt*`, `GenerateDataKey*` and `Describe*` under the encryption
# context condition; DescribeKey requests carry no encryption context, so that condition never
# lets it through, and it is left out here rather than granted without the condition).
LOGS_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# SSE-KMS: PutObject and multipart uploads ask for a data key, GetObject (and a pre-signed GET)
# and multipart uploads decrypt one.
S3_OBJECT_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")


def key_arn_parts(kms_key_arn: str) -> tuple[str, str, str]:
    """(partition, region, account) of a KMS key ARN; ValueError for anything else (an alias,
    a key id, a wildcard), which an IAM statement could not be scoped to."""
    match = KMS_KEY_ARN.fullmatch(kms_key_arn)
    if match is None:
        raise ValueError(
            f"not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>): {kms_key_arn}"
        )
    return match["partition"], match["region"], match["account"]


def dns_suffix(partition: str) -> str:
    """The domain of a partition's service endpoints and principals."""
    return "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"


def via_service(service: str, kms_key_arn: str) -> str:
    """The `kms:ViaService` value of `service` in the key's region, e.g.
    `secretsmanager.us-east-1.amazonaws.com`."""
    partition, region, _ = key_arn_parts(kms_key_arn)
    return f"{service}.{region}.{dns_suffix(partition)}"


def stack_key_policy(
    *, partition: str, region: str, account_id: str, cloudfront_reads: bool = False
) -> dict[str, Any]:
    """The key policy (`Resource: "*"` in a key policy means the key itself)."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "AccountAdministersKey",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:{partition}:iam::{account_id}:root"},
            "Action": "kms:*",
            "Resource": "*",
        },
        {
            "Sid": "CloudWatchLogsEncryptsThisAccountsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.{dns_suffix(partition)}"},
            "Action": list(LOGS_KEY_ACTIONS),
            "Resource": "*",
            "Condition": {
                "StringLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{partition}:logs:{region}:{account_id}:log-group:*"
                    )
                }
            },
        },
    ]
    if cloudfront_reads:
        # The distribution is created after the key (the data tier needs the key first), so the
        # key policy names the account's distributions; the media bucket's policy names the one
        # distribution that may read it, and only media objects are encrypted with this key.
        statements.append(
            {
                "Sid": "CloudFrontDecryptsPublicMedia",
                "Effect": "Allow",
                "Principal": {"Service": "cloudfront.amazonaws.com"},
                "Action": "kms:Decrypt",
                "Resource": "*",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": account_id},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{partition}:cloudfront::{account_id}:distribution/*"
                    },
                },
            }
        )
    return {"Version": KEY_POLICY_VERSION, "Statement": statements}


def secrets_decrypt_statement(
    sid: str, kms_key_arn: str, secret_arns: Iterable[str]
) -> dict[str, Any]:
    """Identity-policy statement: decrypt the stack key, through Secrets Manager, for exactly
    these secrets (Secrets Manager puts the secret's ARN in the encryption context)."""
    secrets = sorted(set(secret_arns))
    if not secrets:
        raise ValueError("a secrets decrypt statement needs at least one secret ARN")
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": "kms:Decrypt",
        "Resource": kms_key_arn,
        "Condition": {
            "StringEquals": {
                "kms:ViaService": via_service("secretsmanager", kms_key_arn),
                "kms:EncryptionContext:SecretARN": secrets,
            }
        },
    }


def s3_objects_key_statement(
    sid: str, kms_key_arn: str, bucket_arn: str, location: str
) -> dict[str, Any]:
    """Identity-policy statement: use the stack key, through S3, for the objects under
    `location` of one bucket. With an S3 Bucket Key the encryption context is the bucket's ARN,
    without one the object's; both are allowed."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": list(S3_OBJECT_KEY_ACTIONS),
        "Resource": kms_key_arn,
        "Condition": {
            "StringEquals": {"kms:ViaService": via_service("s3", kms_key_arn)},
            "StringLike": {
                "kms:EncryptionContext:aws:s3:arn": [bucket_arn, f"{bucket_arn}/{location}/*"]
            },
        },
    }
