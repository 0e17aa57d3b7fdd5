"""The stack's customer-managed KMS key (`security.customerManagedKey`): in the prod plan every
store of the stack's data is encrypted with it and the app's roles may use it through exactly
the services that need it; the dev plan has no key at all. The key policy and the IAM
statements are linted by parliament."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import parliament
import pulumi
import pytest
from shipped_sites import shipped_site

from pulumi_django.cli.plan import Plan
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.stack_key import StackKey, StackKeyArgs
from pulumi_django.config.names import kms_alias_name
from pulumi_django.recorder import MOCK_ACCOUNT, RecordedResource, Recording, record
from pulumi_django.rendering.iam_policies import (
    database_secret_policy,
    execution_role_policy,
    media_storage_policy,
)
from pulumi_django.rendering.stack_key_policy import key_arn_parts, stack_key_policy

KEY_TYPE = "aws:kms/key:Key"
ALIAS_TYPE = "aws:kms/alias:Alias"
SSE_TYPE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
ACCOUNT = "123456789012"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
REPOSITORY = f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/shop"
LOG_GROUP = f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/ecs/site/prod/shop"
RDS_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:rds!db-0f1e2d-AbCdEf"
CACHE_SECRET = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:shop-auth-token-QwErTy"
PARAMETER = f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/shop/stripe-key"
MEDIA_BUCKET = "arn:aws:s3:::shop-media-0a1b2c3"


def _only(resource: RecordedResource, argument: str) -> Any:
    return resource.inputs.get(argument)


def _ecr_key(resource: RecordedResource, argument: str) -> Any:
    (configuration,) = resource.inputs[argument]
    assert configuration["encryptionType"] == "KMS"
    return configuration.get("kmsKey")


def _sse_kms_key(resource: RecordedResource, argument: str) -> Any:
    (rule,) = resource.inputs[argument]
    default = rule["applyServerSideEncryptionByDefault"]
    assert default["sseAlgorithm"] == "aws:kms"
    assert rule["bucketKeyEnabled"] is True  # one KMS request per bucket key, not per object
    return default.get("kmsMasterKeyId")


# Every resource type and argument that holds the stack's data, the resources it applies to (a
# name pattern; `.*`: every one of the type in the plan), and how to read the key it names.
ENCRYPTED_WITH_THE_STACK_KEY: list[tuple[str, str, str, Callable[..., Any]]] = [
    ("aws:rds/instance:Instance", ".*", "kmsKeyId", _only),
    ("aws:rds/instance:Instance", ".*", "performanceInsightsKmsKeyId", _only),
    ("aws:rds/instance:Instance", ".*", "masterUserSecretKmsKeyId", _only),
    ("aws:elasticache/replicationGroup:ReplicationGroup", ".*", "kmsKeyId", _only),
    ("aws:secretsmanager/secret:Secret", ".*", "kmsKeyId", _only),
    ("aws:cloudwatch/logGroup:LogGroup", ".*", "kmsKeyId", _only),
    # RDS's exported-log groups: created (or taken as RDS made them) after the instance, by a
    # dynamic resource that associates the key.
    ("pulumi-python:dynamic/database:RdsLogGroup", ".*", "kms_key_arn", _only),
    ("aws:ecr/repository:Repository", ".*", "encryptionConfigurations", _ecr_key),
    (SSE_TYPE, "bigfoot-media", "rules", _sse_kms_key),
]


@pytest.fixture(scope="module")
def prod(stack_plan: Callable[[str], Plan]) -> Recording:
    return stack_plan("prod").recording


@pytest.mark.parametrize(
    ("type_", "names", "argument", "read"),
    ENCRYPTED_WITH_THE_STACK_KEY,
    ids=[f"{row[0].split(':')[-1]}.{row[2]}" for row in ENCRYPTED_WITH_THE_STACK_KEY],
)
def test_prod_encrypts_each_store_of_data_with_the_stack_key(
    prod: Recording, type_: str, names: str, argument: str, read: Callable[..., Any]
) -> None:
    key = prod.one(KEY_TYPE)
    arn = prod.outputs["stackKeyArn"]
    assert key_arn_parts(arn) == ("aws", "us-east-1", MOCK_ACCOUNT)
    resources = prod.find(type_, names)
    assert resources, f"no {type_} {names} in the prod plan"
    for resource in resources:
        assert read(resource, argument) == arn, f"{resource.name}.{argument}"
        assert prod.depends_on(resource.urn, key.urn), f"{resource.name} waits for the key"


def test_static_files_keep_sse_s3(prod: Recording) -> None:
    """The static publisher compares ETags with MD5s, which SSE-KMS objects do not keep."""
    (rule,) = prod.one(SSE_TYPE, "bigfoot-static").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_prod_key_rotates_is_aliased_and_outlives_the_stack(prod: Recording) -> None:
    key = prod.one(KEY_TYPE)
    assert key.inputs["enableKeyRotation"] is True
    assert key.inputs["keyUsage"] == "ENCRYPT_DECRYPT"
    assert key.inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert key.inputs["deletionWindowInDays"] == 30
    assert key.options.get("retainOnDelete") is True
    alias = prod.one(ALIAS_TYPE)
    # Unique per stack: `alias/<name>-` and 6 hex of the project, stack and name.
    assert alias.inputs["name"] == kms_alias_name("bigfoot", prod.project, prod.stack)
    assert re.fullmatch(r"alias/bigfoot-[0-9a-f]{6}", alias.inputs["name"])
    assert prod.depends_on(alias.urn, key.urn)
    assert prod.one("pulumi-django:security:StackKey").custom is False


def test_prod_roles_may_use_the_key_only_through_secrets_manager_and_s3(prod: Recording) -> None:
    arn = prod.outputs["stackKeyArn"]
    granted: dict[str, list[dict[str, Any]]] = {}
    for policy in prod.find("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            if "kms:" in json.dumps(statement["Action"]):
                granted.setdefault(policy.name, []).append(statement)
    services = {
        "secretsmanager.us-east-1.amazonaws.com": "kms:EncryptionContext:SecretARN",
        "s3.us-east-1.amazonaws.com": "kms:EncryptionContext:aws:s3:arn",
    }
    for name, statements in granted.items():
        for statement in statements:
            assert statement["Effect"] == "Allow" and statement["Resource"] == arn, name
            conditions = {
                key: value
                for test in statement["Condition"].values()
                for key, value in test.items()
            }
            # One service each, and the encryption context it names: never the key as such.
            assert services[conditions["kms:ViaService"]] in conditions, name
    # The execution role decrypts exactly the task's secrets, each encrypted with the key.
    (execution,) = granted["bigfoot-execution"]
    allowed = set(execution["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"])
    task_secrets = {
        f"arn:aws:secretsmanager:us-east-1:{MOCK_ACCOUNT}:secret:{name}-AbCdEf"
        for name in ("bigfoot-auth-token", "bigfoot-django-secret-key")
    }
    assert task_secrets <= allowed
    assert all(":secretsmanager:" in secret for secret in allowed)
    (media,) = granted["bigfoot-task-media"]
    assert sorted(media["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]


def test_dev_has_no_key_and_keeps_aws_managed_keys(stack_plan: Callable[[str], Plan]) -> None:
    dev = stack_plan("dev").recording
    assert dev.find(KEY_TYPE) == [] and dev.find(ALIAS_TYPE) == []
    assert dev.find("pulumi-django:security:StackKey") == []
    assert "stackKeyArn" not in dev.outputs
    for resource in dev.resources:
        text = json.dumps(resource.inputs)
        assert ":kms:" not in text and "KmsKeyId" not in text, resource.name
        assert "kmsKeyId" not in resource.inputs, resource.name
    (configuration,) = dev.one("aws:ecr/repository:Repository").inputs["encryptionConfigurations"]
    assert configuration == {"encryptionType": "AES256"}
    (rule,) = dev.one(SSE_TYPE, "bigfoot-dev-media").inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}


def test_prod_key_lets_cloudfront_decrypt_only_when_media_is_public(
    prod: Recording, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Public media is read by the distribution through OAC, which decrypts as CloudFront."""
    public = shipped_site(tmp_path_factory, "prod", media={"access": "public"})
    assert "cloudfront.amazonaws.com" in public.one(KEY_TYPE).inputs["policy"]
    assert "cloudfront.amazonaws.com" not in prod.one(KEY_TYPE).inputs["policy"]


# The key policy and the IAM statements, linted.


def findings(document: dict[str, Any]) -> list[tuple[str, Any]]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return [(finding.issue, finding.detail) for finding in policy.findings]


def as_key_resource_policy(document: dict[str, Any], key_arn: str = KEY) -> dict[str, Any]:
    """The key policy as parliament can lint it. parliament reads every document as an identity
    policy: in a key policy `"*"` is the key itself, so each statement gets the key as its
    resource. The account's administration statement (`kms:*`, AWS's documented default key
    policy statement, checked by value instead) is left out: on a key resource parliament would
    list every KMS action that takes no key (CreateKey, the custom key stores), which a key
    policy cannot grant anyway."""
    statements = [s for s in document["Statement"] if s.get("Sid") != "AccountAdministersKey"]
    assert len(statements) == len(document["Statement"]) - 1
    return {**document, "Statement": [{**s, "Resource": key_arn} for s in statements]}


@pytest.mark.parametrize("cloudfront_reads", [False, True])
def test_key_policy_passes_parliament(cloudfront_reads: bool) -> None:
    document = stack_key_policy(
        partition="aws", region="eu-west-1", account_id=ACCOUNT, cloudfront_reads=cloudfront_reads
    )
    assert findings(as_key_resource_policy(document)) == []
    assert all(statement["Resource"] == "*" for statement in document["Statement"])


def test_key_policy_lets_the_account_administer_and_logs_encrypt_its_log_groups() -> None:
    statements = {
        s["Sid"]: s
        for s in stack_key_policy(partition="aws", region="eu-west-1", account_id=ACCOUNT)[
            "Statement"
        ]
    }
    assert set(statements) == {
        "AccountAdministersKey",
        "CloudWatchLogsEncryptsThisAccountsLogGroups",
    }
    # AWS's default key policy statement: the account's IAM policies decide who uses the key.
    assert statements["AccountAdministersKey"] == {
        "Sid": "AccountAdministersKey",
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
        "Action": "kms:*",
        "Resource": "*",
    }
    logs = statements["CloudWatchLogsEncryptsThisAccountsLogGroups"]
    assert logs["Principal"] == {"Service": "logs.eu-west-1.amazonaws.com"}
    assert logs["Condition"] == {
        "StringLike": {
            "kms:EncryptionContext:aws:logs:arn": f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:*"
        }
    }
    assert "kms:Decrypt" in logs["Action"] and "kms:GenerateDataKey" in logs["Action"]
    # Nobody else: no statement for every principal of the account, as AWS managed keys have.
    assert all(
        s["Principal"] != "*" and s["Principal"] != {"AWS": "*"} for s in statements.values()
    )


def test_key_policy_lets_cloudfront_decrypt_only_when_media_is_public() -> None:
    statements = stack_key_policy(
        partition="aws", region="eu-west-1", account_id=ACCOUNT, cloudfront_reads=True
    )["Statement"]
    (cloudfront,) = [
        s for s in statements if s["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    ]
    assert cloudfront["Action"] == "kms:Decrypt"
    assert cloudfront["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:cloudfront::{ACCOUNT}:distribution/*"},
    }


def test_key_policy_in_the_china_partition_names_its_logs_principal() -> None:
    statements = stack_key_policy(partition="aws-cn", region="cn-north-1", account_id=ACCOUNT)[
        "Statement"
    ]
    assert statements[1]["Principal"] == {"Service": "logs.cn-north-1.amazonaws.com.cn"}
    assert statements[0]["Principal"] == {"AWS": f"arn:aws-cn:iam::{ACCOUNT}:root"}


def kms_statement(document: dict[str, Any]) -> dict[str, Any]:
    (statement,) = [s for s in document["Statement"] if "kms:" in json.dumps(s["Action"])]
    return statement


def test_execution_policy_with_the_key_passes_parliament_and_decrypts_only_its_secrets() -> None:
    document = execution_role_policy(
        repository_arn=REPOSITORY,
        log_group_arn=LOG_GROUP,
        secret_value_froms=[f"{RDS_SECRET}:password::", CACHE_SECRET, PARAMETER],
        kms_key_arn=KEY,
    )
    assert findings(document) == []
    statement = kms_statement(document)
    assert statement["Sid"] == "DecryptTaskSecrets"
    assert (statement["Action"], statement["Resource"]) == ("kms:Decrypt", KEY)
    assert statement["Condition"] == {
        "StringEquals": {
            "kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com",
            "kms:EncryptionContext:SecretARN": sorted([RDS_SECRET, CACHE_SECRET]),
        }
    }


def test_execution_policy_without_the_key_has_no_kms_statement() -> None:
    document = execution_role_policy(
        repository_arn=REPOSITORY, log_group_arn=LOG_GROUP, secret_value_froms=[CACHE_SECRET]
    )
    assert "kms:" not in json.dumps(document)


def test_database_secret_policy_with_the_key_decrypts_that_secret_only() -> None:
    document = database_secret_policy(RDS_SECRET, KEY)
    assert findings(document) == []
    statement = kms_statement(document)
    assert statement["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] == [RDS_SECRET]
    assert "kms:" not in json.dumps(database_secret_policy(RDS_SECRET))


def test_media_policy_with_the_key_uses_it_through_s3_for_the_bucket_only() -> None:
    document = media_storage_policy(MEDIA_BUCKET, "uploads", KEY)
    assert findings(document) == []
    statement = kms_statement(document)
    assert sorted(statement["Action"]) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert statement["Resource"] == KEY
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"},
        "StringLike": {
            "kms:EncryptionContext:aws:s3:arn": [MEDIA_BUCKET, f"{MEDIA_BUCKET}/uploads/*"]
        },
    }
    assert "kms:" not in json.dumps(media_storage_policy(MEDIA_BUCKET, "uploads"))


def test_linter_catches_a_decrypt_scoped_to_the_wrong_resource() -> None:
    """The linter is not a rubber stamp: kms:Decrypt on a secret's ARN instead of the key's."""
    document = database_secret_policy(RDS_SECRET, KEY)
    kms_statement(document)["Resource"] = RDS_SECRET
    assert [issue for issue, _ in findings(document)] == ["RESOURCE_MISMATCH"]


@pytest.mark.parametrize(
    "not_a_key",
    [
        f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/shop",
        "1234abcd-12ab-34cd-56ef-1234567890ab",
        "alias/shop",
        f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/*",
    ],
)
def test_a_statement_is_only_scoped_to_a_key_arn(not_a_key: str) -> None:
    with pytest.raises(ValueError, match="not a KMS key ARN"):
        database_secret_policy(RDS_SECRET, not_a_key)


# The component on its own.


def record_key(args: StackKeyArgs, name: str = "shop") -> Recording:
    def program() -> None:
        key = StackKey(name, args)
        pulumi.export("arn", key.arn)
        pulumi.export("alias", key.alias_name)

    return record(program, project="site", stack="prod", config={"aws:region": "eu-west-1"})


def test_component_key_and_alias_are_its_children() -> None:
    recording = record_key(StackKeyArgs())
    component = recording.one("pulumi-django:security:StackKey")
    key, alias = recording.one(KEY_TYPE), recording.one(ALIAS_TYPE)
    assert key.parent == component.urn and alias.parent == component.urn
    assert (key.name, alias.name) == ("shop-key", "shop-key")
    assert recording.outputs["alias"] == kms_alias_name("shop", "site", "prod")
    assert recording.outputs["alias"] != kms_alias_name("shop", "site", "dev")
    assert key_arn_parts(recording.outputs["arn"]) == ("aws", "eu-west-1", MOCK_ACCOUNT)
    policy = json.loads(key.inputs["policy"])
    assert findings(as_key_resource_policy(policy)) == []
    assert "cloudfront" not in key.inputs["policy"]


def test_component_options() -> None:
    recording = record_key(
        StackKeyArgs(
            alias="team/shop", cloudfront_reads=True, deletion_window_days=7, retain_on_delete=False
        )
    )
    key = recording.one(KEY_TYPE)
    assert recording.one(ALIAS_TYPE).inputs["name"] == "alias/team/shop"
    assert key.inputs["deletionWindowInDays"] == 7
    assert key.options.get("retainOnDelete") in (None, False)
    assert "cloudfront.amazonaws.com" in key.inputs["policy"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"alias": "aws/rds"}, "StackKeyArgs.alias"),
        ({"alias": "shop key"}, "StackKeyArgs.alias"),
        ({"alias": "shop:1"}, "StackKeyArgs.alias"),
        ({"deletion_window_days": 6}, "between 7 and 30"),
        ({"deletion_window_days": 31}, "between 7 and 30"),
    ],
)
def test_component_refuses_what_kms_would(args: dict[str, Any], message: str) -> None:
    with pytest.raises(ComponentArgsError, match=message):
        StackKeyArgs(**args)


def test_the_component_is_part_of_the_public_api() -> None:
    import pulumi_django

    assert pulumi_django.StackKey is StackKey
    assert pulumi_django.StackKeyArgs is StackKeyArgs
