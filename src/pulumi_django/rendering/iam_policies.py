"""IAM policy documents of the app task, as plain dicts: the least each role needs.

Kept free of Pulumi so that tests can feed the documents to an IAM policy linter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_django.rendering.stack_key_policy import (
    s3_objects_key_statement,
    secrets_decrypt_statement,
)

VERSION = "2012-10-17"
ECS_TASKS_SERVICE = "ecs-tasks.amazonaws.com"

# Pulling an image: the token call has no resource type, so it can only be granted on "*".
ECR_PULL_ACTIONS = (
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
)
# A pull through an ECR pull-through cache rule imports the image from the upstream registry
# into a repository under the rule's prefix, created on the first pull if it does not exist.
ECR_PULL_THROUGH_CACHE_ACTIONS = ("ecr:BatchImportUpstreamImage", "ecr:CreateRepository")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:PutLogEvents")
# What the SSM agent of ECS Exec calls from inside the task; these actions have no resource type.
EXEC_COMMAND_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
# django-storages' S3 backend on the media files; multipart uploads (large files) are created,
# filled and completed under s3:PutObject.
MEDIA_OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
)

Policy = dict[str, Any]


def ecs_tasks_assume_role_policy(
    *, partition: str, region: str, account_id: str, source_arn: bool = True
) -> Policy:
    """Trust for ECS tasks of this account (and, with `source_arn`, this region) only: no
    confused deputy. AWS documents `aws:SourceArn` for the task role; the execution role is
    assumed on the task's behalf before it runs, so it gets the account condition alone."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arn:
        condition["ArnLike"] = {"aws:SourceArn": f"arn:{partition}:ecs:{region}:{account_id}:*"}
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "EcsTasksOfThisAccount",
                "Effect": "Allow",
                "Principal": {"Service": ECS_TASKS_SERVICE},
                "Action": "sts:AssumeRole",
                "Condition": condition,
            }
        ],
    }


def secret_resource_arn(value_from: str) -> str:
    """The secret or parameter an ECS `valueFrom` reads, without a JSON key or version suffix.

    `arn:aws:secretsmanager:r:a:secret:name-AbCdEf:password::` -> `...:secret:name-AbCdEf`."""
    parts = value_from.split(":")
    if len(parts) > 7 and parts[2] == "secretsmanager":
        return ":".join(parts[:7])
    return value_from


def execution_role_policy(
    *,
    repository_arn: str,
    log_group_arn: str,
    secret_value_froms: Iterable[str],
    kms_key_arn: str | None = None,
) -> Policy:
    """What the ECS agent needs to start the task: pull this repository's images, read
    exactly the task's secrets and write its one log group (the proxy image's pull is
    `proxy_image_pull_policy`'s). With the stack's own KMS key (`kms_key_arn`), also decrypt it
    through Secrets Manager for those secrets (ECR and CloudWatch Logs use the key with their
    own grant or key-policy permission, not the role's)."""
    secret_arns = sorted({secret_resource_arn(value) for value in secret_value_froms})
    by_service = {
        "secretsmanager": sorted(a for a in secret_arns if a.split(":")[2] == "secretsmanager"),
        "ssm": sorted(a for a in secret_arns if a.split(":")[2] == "ssm"),
    }
    unknown = sorted(set(secret_arns) - {*by_service["secretsmanager"], *by_service["ssm"]})
    if unknown:
        raise ValueError(f"not a Secrets Manager or SSM parameter ARN: {', '.join(unknown)}")
    statements: list[dict[str, Any]] = [
        {
            "Sid": "PullAppImage",
            "Effect": "Allow",
            "Action": list(ECR_PULL_ACTIONS),
            "Resource": repository_arn,
        },
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": "ecr:GetAuthorizationToken",
            "Resource": "*",
        },
        {
            "Sid": "WriteTaskLogs",
            "Effect": "Allow",
            "Action": list(LOG_ACTIONS),
            "Resource": f"{log_group_arn}:log-stream:*",
        },
    ]
    if by_service["secretsmanager"]:
        statements.append(
            {
                "Sid": "ReadTaskSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": by_service["secretsmanager"],
            }
        )
        if kms_key_arn is not None:
            statements.append(
                secrets_decrypt_statement(
                    "DecryptTaskSecrets", kms_key_arn, by_service["secretsmanager"]
                )
            )
    if by_service["ssm"]:
        statements.append(
            {
                "Sid": "ReadTaskParameters",
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": by_service["ssm"],
            }
        )
    return {"Version": VERSION, "Statement": statements}


def proxy_cache_repositories_arn(
    *, partition: str, region: str, account_id: str, prefix: str
) -> str:
    """Every repository an ECR pull-through cache rule with `prefix` fills: `<prefix>/*`."""
    return f"arn:{partition}:ecr:{region}:{account_id}:repository/{prefix}/*"


def proxy_image_pull_policy(repositories_arn: str) -> Policy:
    """Execution-role permission to pull the proxy image through the stack's ECR pull-through
    cache rule (`proxy_cache_repositories_arn`), and nothing else of the registry: read its
    images, and, should a task's pull be the cache's first (the deploy fills it beforehand,
    `providers.proxy_image`), import them from the upstream registry into a repository under
    the prefix, created if missing (AWS, "IAM permissions required to sync an upstream
    registry with an Amazon ECR private registry"; the Service Authorization Reference gives
    both actions the `repository` resource type). The registry login
    (`ecr:GetAuthorizationToken`, on `*` only) is in the execution role's main policy."""
    if not re.fullmatch(
        r"arn:aws[a-z-]*:ecr:[a-z0-9-]+:\d{12}:repository/[a-z0-9._-]+(/[a-z0-9._-]+)*/\*",
        repositories_arn,
    ):
        raise ValueError(f"not the repositories of a pull-through cache prefix: {repositories_arn}")
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "PullProxyImageThroughCache",
                "Effect": "Allow",
                "Action": [*ECR_PULL_ACTIONS, *ECR_PULL_THROUGH_CACHE_ACTIONS],
                "Resource": repositories_arn,
            }
        ],
    }


def database_secret_policy(secret_arn: str, kms_key_arn: str | None = None) -> Policy:
    """Task-role permission to read the RDS-managed database secret again after a rotation
    (the execution role reads it only at task start). Without `kms_key_arn` no `kms:Decrypt`:
    RDS encrypts the secret with the AWS managed key `aws/secretsmanager`, whose key policy
    lets Secrets Manager decrypt for any principal of the account allowed to read the secret;
    with the stack's own key, decrypting it through Secrets Manager for this secret only."""
    parts = secret_arn.split(":")
    # arn:<partition>:secretsmanager:<region>:<account>:secret:<name> (names have no colon)
    if len(parts) != 7 or parts[2] != "secretsmanager" or parts[5] != "secret":
        raise ValueError(f"not a Secrets Manager secret ARN: {secret_arn}")
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ReadDatabaseSecret",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": secret_arn,
            },
            *(
                [secrets_decrypt_statement("DecryptDatabaseSecret", kms_key_arn, [secret_arn])]
                if kms_key_arn is not None
                else []
            ),
        ],
    }


# An RDS instance's DbiResourceId, e.g. db-ABCDEFGHIJKLMNOPQRSTUVWXY0.
DBI_RESOURCE_ID = re.compile(r"^db-[A-Z0-9]+$")
# PostgreSQL role names the stack creates (database.appUsername).
DATABASE_USER = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


def rds_db_user_arn(
    *, partition: str, region: str, account_id: str, resource_id: str, username: str
) -> str:
    """The ARN `rds-db:connect` names one database user of one instance by:
    `arn:<partition>:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<user>`."""
    if not DBI_RESOURCE_ID.match(resource_id):
        raise ValueError(f"not an RDS instance's DbiResourceId (db-...): {resource_id}")
    if not DATABASE_USER.match(username):
        raise ValueError(f"not a database user name: {username}")
    return f"arn:{partition}:rds-db:{region}:{account_id}:dbuser:{resource_id}/{username}"


def database_connect_policy(db_user_arn: str) -> Policy:
    """Task-role permission to log in as the app's database user with an IAM authentication
    token (RDS IAM database authentication), on that one instance, as that one user."""
    parts = db_user_arn.split(":")
    if len(parts) != 7 or parts[2] != "rds-db" or parts[5] != "dbuser" or "/" not in parts[6]:
        raise ValueError(f"not an rds-db:connect database user ARN: {db_user_arn}")
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ConnectAsTheAppDatabaseUser",
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": db_user_arn,
            }
        ],
    }


def exec_command_policy() -> Policy:
    """Task-role permissions ECS Exec needs; granted only when `fleet.enableExecuteCommand`."""
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "EcsExecSessions",
                "Effect": "Allow",
                "Action": list(EXEC_COMMAND_ACTIONS),
                "Resource": "*",
            }
        ],
    }


def media_storage_policy(bucket_arn: str, location: str, kms_key_arn: str | None = None) -> Policy:
    """What django-storages' S3 backend does with the media bucket, and nothing more: read,
    write and delete the files under `location`, abort its own failed multipart uploads (boto3
    does so on an error; the lifecycle rule is the fallback), and list the bucket. With the
    stack's own KMS key (SSE-KMS, `kms_key_arn`), also use that key through S3 for this
    bucket's objects: a data key to write, a decrypt to read (pre-signed URLs are signed with
    the task's credentials, so a browser's download uses this grant too).

    The listing is needed: `S3Storage.exists()`, which Django calls before saving a new upload
    under a name of its own, sends HeadObject and takes only a 404 as "absent"; without
    s3:ListBucket S3 answers 403 for a missing key and every such save fails. It is not narrowed
    with an `s3:prefix` condition, because AWS does not document that condition for this
    implicit check, and the bucket holds media alone. Deleting leaves a delete marker (the
    bucket is versioned): no action here can remove a version, so a bug or an intruder with the
    task's credentials cannot destroy the history the lifecycle rule keeps."""
    if not re.fullmatch(r"arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", bucket_arn):
        raise ValueError(f"not an S3 bucket ARN: {bucket_arn}")
    if not re.fullmatch(r"[\w.-]+(/[\w.-]+)*", location):
        raise ValueError(f"media location {location!r}: a key prefix with no slash at its ends")
    return {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "ReadWriteMediaFiles",
                "Effect": "Allow",
                "Action": list(MEDIA_OBJECT_ACTIONS),
                "Resource": f"{bucket_arn}/{location}/*",
            },
            {
                "Sid": "TellMissingMediaFromForbidden",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
            },
            *(
                [s3_objects_key_statement("UseKeyForMediaFiles", kms_key_arn, bucket_arn, location)]
                if kms_key_arn is not None
                else []
            ),
        ],
    }


# The keys of an identity-policy statement the task role's extra statements may use.
REQUIRED_STATEMENT_KEYS = ("Effect", "Action", "Resource")
OPTIONAL_STATEMENT_KEYS = ("Sid", "Condition")


def check_statement(statement: Any) -> None:
    """Raises ValueError unless `statement` is an IAM identity-policy statement this library
    takes: Effect, Action and Resource, optionally Sid and Condition (values may still be
    unresolved Pulumi outputs, so only the plain ones are checked)."""
    if not isinstance(statement, Mapping):
        raise ValueError(f"a statement is a mapping of Effect, Action, Resource; got {statement!r}")
    missing = [key for key in REQUIRED_STATEMENT_KEYS if key not in statement]
    if missing:
        raise ValueError(
            f"missing {', '.join(missing)} (a statement needs Effect, Action, Resource)"
        )
    allowed = (*REQUIRED_STATEMENT_KEYS, *OPTIONAL_STATEMENT_KEYS)
    unknown = sorted(str(key) for key in statement if key not in allowed)
    if unknown:
        raise ValueError(
            f"unknown keys {', '.join(unknown)}; a statement may have {', '.join(allowed)}"
        )
    effect = statement["Effect"]
    if isinstance(effect, str) and effect not in ("Allow", "Deny"):
        raise ValueError(f"Effect {effect!r}: use Allow or Deny")


def extra_statements_policy(statements: Iterable[Mapping[str, Any]]) -> Policy:
    """The task role's extra inline policy: the statements a user grants the app, as given
    (each checked by `check_statement`)."""
    listed = list(statements)
    if not listed:
        raise ValueError("an extra policy needs at least one statement")
    for statement in listed:
        check_statement(statement)
    return {"Version": VERSION, "Statement": [dict(statement) for statement in listed]}
