"""The app task's IAM documents: linted by parliament, and granting exactly what they must."""

from __future__ import annotations

import json
from typing import Any

import parliament
import pytest

from pulumi_django.rendering.iam_policies import (
    check_statement,
    database_secret_policy,
    ecs_tasks_assume_role_policy,
    exec_command_policy,
    execution_role_policy,
    extra_statements_policy,
    media_storage_policy,
    secret_resource_arn,
)

ACCOUNT = "123456789012"
REPOSITORY = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/django-prod-app"
LOG_GROUP = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/site/prod/django-prod"
RDS_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:rds!db-0f1e2d-AbCdEf"
CACHE_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:cache-auth-123-QwErTy"
PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/site/stripe-key"
VALUE_FROMS = [f"{RDS_SECRET}:password::", CACHE_SECRET, PARAMETER]


def findings(document: dict[str, Any]) -> list[tuple[str, Any]]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return [(finding.issue, finding.detail) for finding in policy.findings]


def statements(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {statement["Sid"]: statement for statement in document["Statement"]}


def as_list(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else value


def test_execution_policy_passes_parliament() -> None:
    document = execution_role_policy(
        repository_arn=REPOSITORY, log_group_arn=LOG_GROUP, secret_value_froms=VALUE_FROMS
    )
    assert findings(document) == []


def test_execution_policy_grants_exactly_the_task_secrets_and_log_group() -> None:
    granted = statements(
        execution_role_policy(
            repository_arn=REPOSITORY, log_group_arn=LOG_GROUP, secret_value_froms=VALUE_FROMS
        )
    )
    assert as_list(granted["ReadTaskSecrets"]["Resource"]) == sorted([RDS_SECRET, CACHE_SECRET])
    assert as_list(granted["ReadTaskSecrets"]["Action"]) == ["secretsmanager:GetSecretValue"]
    assert as_list(granted["ReadTaskParameters"]["Resource"]) == [PARAMETER]
    assert granted["PullAppImage"]["Resource"] == REPOSITORY
    assert granted["WriteTaskLogs"]["Resource"] == f"{LOG_GROUP}:log-stream:*"
    # The only wildcard resource is the ECR login, which has no resource type.
    wildcards = [sid for sid, s in granted.items() if "*" in as_list(s["Resource"])]
    assert wildcards == ["EcrLogin"]
    assert as_list(granted["EcrLogin"]["Action"]) == ["ecr:GetAuthorizationToken"]


def test_execution_policy_without_parameters_has_no_ssm_statement() -> None:
    granted = statements(
        execution_role_policy(
            repository_arn=REPOSITORY, log_group_arn=LOG_GROUP, secret_value_froms=[CACHE_SECRET]
        )
    )
    assert "ReadTaskParameters" not in granted
    assert as_list(granted["ReadTaskSecrets"]["Resource"]) == [CACHE_SECRET]


def test_execution_policy_refuses_what_is_not_a_secret() -> None:
    with pytest.raises(ValueError, match="not a Secrets Manager or SSM parameter ARN"):
        execution_role_policy(
            repository_arn=REPOSITORY,
            log_group_arn=LOG_GROUP,
            secret_value_froms=[f"arn:aws:s3:::bucket/{ACCOUNT}/key"],
        )


def test_linter_catches_a_mis_scoped_grant() -> None:
    """The linter is not a rubber stamp: log writes scoped to the group, not its streams."""
    document = execution_role_policy(
        repository_arn=REPOSITORY, log_group_arn=LOG_GROUP, secret_value_froms=[CACHE_SECRET]
    )
    for statement in document["Statement"]:
        if statement["Sid"] == "WriteTaskLogs":
            statement["Resource"] = f"arn:aws:s3:::{ACCOUNT}-logs"
    assert [issue for issue, _ in findings(document)] == ["RESOURCE_MISMATCH"]


@pytest.mark.parametrize(
    ("value_from", "resource"),
    [
        (f"{RDS_SECRET}:password::", RDS_SECRET),
        (f"{RDS_SECRET}:password:AWSCURRENT:", RDS_SECRET),
        (RDS_SECRET, RDS_SECRET),
        (PARAMETER, PARAMETER),
    ],
)
def test_secret_resource_arn_drops_json_key_and_version(value_from: str, resource: str) -> None:
    assert secret_resource_arn(value_from) == resource


def test_trust_policy_is_for_ecs_tasks_of_this_account_and_region() -> None:
    document = ecs_tasks_assume_role_policy(partition="aws", region="eu-west-1", account_id=ACCOUNT)
    (statement,) = document["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:eu-west-1:{ACCOUNT}:*"},
    }
    # IAM refuses a Resource element in a trust policy.
    assert "Resource" not in statement


def test_execution_role_trust_is_for_ecs_tasks_of_this_account() -> None:
    document = ecs_tasks_assume_role_policy(
        partition="aws", region="eu-west-1", account_id=ACCOUNT, source_arn=False
    )
    (statement,) = document["Statement"]
    assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_trust_policy_passes_parliament_as_the_roles_resource_policy() -> None:
    """parliament reads every document as an identity policy; a trust policy is the role's own
    resource policy, so it is linted with the role as its resource."""
    document = ecs_tasks_assume_role_policy(partition="aws", region="eu-west-1", account_id=ACCOUNT)
    for statement in document["Statement"]:
        statement["Resource"] = f"arn:aws:iam::{ACCOUNT}:role/django-prod-task"
    assert findings(document) == []


def test_exec_command_policy_passes_parliament() -> None:
    document = exec_command_policy()
    assert findings(document) == []
    (statement,) = document["Statement"]
    assert all(action.startswith("ssmmessages:") for action in statement["Action"])


def test_database_secret_policy_reads_exactly_that_secret() -> None:
    document = database_secret_policy(RDS_SECRET)
    assert findings(document) == []
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
    assert statement["Resource"] == RDS_SECRET


@pytest.mark.parametrize(
    "not_a_secret",
    [f"{RDS_SECRET}:password::", PARAMETER, "*", f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:*"],
)
def test_database_secret_policy_refuses_anything_but_one_secret_arn(not_a_secret: str) -> None:
    with pytest.raises(ValueError, match="not a Secrets Manager secret ARN"):
        database_secret_policy(not_a_secret)


MEDIA_BUCKET = "arn:aws:s3:::shop-media-0a1b2c3"


def test_media_policy_passes_parliament_and_grants_the_files_under_its_prefix() -> None:
    document = media_storage_policy(MEDIA_BUCKET, "uploads/site")
    assert findings(document) == []
    granted = statements(document)
    files = granted["ReadWriteMediaFiles"]
    assert files["Resource"] == f"{MEDIA_BUCKET}/uploads/site/*"
    assert sorted(as_list(files["Action"])) == [
        "s3:AbortMultipartUpload",
        "s3:DeleteObject",
        "s3:GetObject",
        "s3:PutObject",
    ]
    # S3Storage.exists() needs a 404 for a missing key, which only a lister gets.
    listing = granted["TellMissingMediaFromForbidden"]
    assert (listing["Action"], listing["Resource"]) == ("s3:ListBucket", MEDIA_BUCKET)
    # And nothing else: no version removal, no ACL, nothing on the bucket's own settings.
    assert set(granted) == {"ReadWriteMediaFiles", "TellMissingMediaFromForbidden"}


def test_media_policy_on_another_partition() -> None:
    document = media_storage_policy("arn:aws-us-gov:s3:::shop-media", "media")
    assert statements(document)["ReadWriteMediaFiles"]["Resource"] == (
        "arn:aws-us-gov:s3:::shop-media/media/*"
    )


@pytest.mark.parametrize(
    ("bucket_arn", "location", "message"),
    [
        ("arn:aws:s3:::shop-media/media", "media", "not an S3 bucket ARN"),
        ("arn:aws:s3:::*", "media", "not an S3 bucket ARN"),
        (RDS_SECRET, "media", "not an S3 bucket ARN"),
        (MEDIA_BUCKET, "/media/", "no slash at its ends"),
        (MEDIA_BUCKET, "", "no slash at its ends"),
        (MEDIA_BUCKET, "media/*", "no slash at its ends"),
    ],
)
def test_media_policy_refuses_what_would_widen_it(
    bucket_arn: str, location: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        media_storage_policy(bucket_arn, location)


QUEUE = f"arn:aws:sqs:eu-west-1:{ACCOUNT}:django-prod-jobs"
SEND_TO_QUEUE = {
    "Sid": "SendJobs",
    "Effect": "Allow",
    "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
    "Resource": QUEUE,
}
NO_OTHER_REGION = {
    "Effect": "Deny",
    "Action": "sqs:*",
    "Resource": "*",
    "Condition": {"StringNotEquals": {"aws:RequestedRegion": "eu-west-1"}},
}


def test_extra_statements_policy_passes_parliament_and_keeps_the_statements_as_given() -> None:
    document = extra_statements_policy([SEND_TO_QUEUE, NO_OTHER_REGION])
    assert findings(document) == []
    assert document == {"Version": "2012-10-17", "Statement": [SEND_TO_QUEUE, NO_OTHER_REGION]}


def test_linter_catches_a_mistyped_extra_statement() -> None:
    """What the checks here leave to IAM (an action that does not exist), parliament sees."""
    document = extra_statements_policy([{**SEND_TO_QUEUE, "Action": "sqs:SendMesage"}])
    assert [issue for issue, _ in findings(document)] == ["UNKNOWN_ACTION"]


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ({"Effect": "Allow", "Action": "sqs:SendMessage"}, "missing Resource"),
        ({"Action": "s3:GetObject", "Resource": "*"}, "missing Effect"),
        ({**SEND_TO_QUEUE, "Principal": "*"}, "unknown keys Principal"),
        ({**SEND_TO_QUEUE, "Effect": "allow"}, "use Allow or Deny"),
        ("sqs:SendMessage", "a statement is a mapping"),
    ],
)
def test_extra_statements_must_be_identity_policy_statements(statement: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_statement(statement)
    with pytest.raises(ValueError, match=problem):
        extra_statements_policy([SEND_TO_QUEUE, statement])


def test_an_extra_policy_needs_a_statement() -> None:
    with pytest.raises(ValueError, match="at least one statement"):
        extra_statements_policy([])
