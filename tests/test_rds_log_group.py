"""RDS's exported-log groups expire (issue 15, item 12) without the instance being renamed
(item 9): `RdsLogGroup` runs after the instance, creates `/aws/rds/instance/<id>/<log>` when it
is missing or takes it as RDS created it, puts the retention and associates the stack's key.
CloudWatch Logs is moto (in process) for the group's state, and botocore Stubbers (which check
each request against the service model) for the KMS calls moto does not implement."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fake_aws import AWS_TEST_ENVIRONMENT
from moto import mock_aws
from stub_clients import stub_client

from pulumi_django.providers.rds_log_group import (
    RdsLogGroupError,
    RdsLogGroupProvider,
)

GROUP = "/aws/rds/instance/shop-db-1a2b3c4/postgresql"
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
SESSION = {"profile": "ops", "assume_roles": []}


def props(**changes: Any) -> dict[str, Any]:
    return {
        "log_group_name": GROUP,
        "retention_in_days": 30,
        "kms_key_arn": None,
        "region": "us-east-1",
        "aws_session": None,
        "found_existing": None,
        "__provider": "serialized",
        **changes,
    }


@pytest.fixture
def logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """CloudWatch Logs in moto; the provider's own clients (boto3's default chain) reach it."""
    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield boto3.client("logs", region_name="us-east-1")


def retention(logs: Any, name: str = GROUP) -> int | None:
    (group,) = logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
    value: int | None = group.get("retentionInDays")
    return value


def test_a_missing_group_is_created_with_the_retention(logs: Any) -> None:
    created = RdsLogGroupProvider().create(props())
    assert created.id == GROUP
    assert retention(logs) == 30
    outs = created.outs or {}
    assert outs["found_existing"] is False
    assert outs["log_group_name"] == GROUP and "__provider" not in outs


def test_a_group_rds_created_first_is_taken_and_made_to_expire(logs: Any) -> None:
    """RDS's first export won the race: the group exists, never expiring."""
    logs.create_log_group(logGroupName=GROUP)
    assert retention(logs) is None
    created = RdsLogGroupProvider().create(props(retention_in_days=90))
    assert (created.outs or {})["found_existing"] is True
    assert retention(logs) == 90


def test_a_new_retention_is_put_on_the_same_group(logs: Any) -> None:
    provider = RdsLogGroupProvider()
    old = props()
    provider.create(old)
    new = props(retention_in_days=7)
    diff = provider.diff(GROUP, old, new)
    assert diff.changes and diff.replaces == []
    provider.update(GROUP, old, new)
    assert retention(logs) == 7


def test_delete_leaves_the_group_and_its_logs(logs: Any) -> None:
    provider = RdsLogGroupProvider()
    provider.create(props())
    provider.delete(GROUP, props())
    assert retention(logs) == 30


# ---------------------------------------------------------------- the KMS key, behind Stubbers


def stubbed_logs() -> tuple[Any, Stubber]:
    client = stub_client("logs")
    return client, Stubber(client)


def test_a_new_group_is_created_encrypted_with_the_key_as_the_stacks_identity() -> None:
    client, stub = stubbed_logs()
    stub.add_response("create_log_group", {}, {"logGroupName": GROUP, "kmsKeyId": KEY})
    stub.add_response("put_retention_policy", {}, {"logGroupName": GROUP, "retentionInDays": 30})
    asked: list[tuple[Any, ...]] = []

    def clients(service: str, region: str | None, session: Any = None) -> Any:
        asked.append((service, region, session))
        return client

    with stub:
        RdsLogGroupProvider(clients).create(props(kms_key_arn=KEY, aws_session=SESSION))
    stub.assert_no_pending_responses()
    assert asked == [("logs", "us-east-1", SESSION)]


def test_the_key_is_associated_with_a_group_rds_created() -> None:
    client, stub = stubbed_logs()
    stub.add_client_error(
        "create_log_group", "ResourceAlreadyExistsException", "The specified log group exists"
    )
    stub.add_response("put_retention_policy", {}, {"logGroupName": GROUP, "retentionInDays": 30})
    stub.add_response("associate_kms_key", {}, {"logGroupName": GROUP, "kmsKeyId": KEY})
    with stub:
        outs = RdsLogGroupProvider(lambda *_a, **_k: client).create(props(kms_key_arn=KEY)).outs
    stub.assert_no_pending_responses()
    assert (outs or {})["found_existing"] is True


def test_a_key_removed_is_disassociated() -> None:
    client, stub = stubbed_logs()
    stub.add_client_error("create_log_group", "ResourceAlreadyExistsException", "exists")
    stub.add_response("put_retention_policy", {}, {"logGroupName": GROUP, "retentionInDays": 30})
    stub.add_response("disassociate_kms_key", {}, {"logGroupName": GROUP})
    provider = RdsLogGroupProvider(lambda *_a, **_k: client)
    old, new = props(kms_key_arn=KEY), props()
    assert provider.diff(GROUP, old, new).changes
    with stub:
        provider.update(GROUP, old, new)
    stub.assert_no_pending_responses()


def test_a_refusal_names_the_group_and_the_permission() -> None:
    client, stub = stubbed_logs()
    stub.add_client_error("create_log_group", "ResourceAlreadyExistsException", "exists")
    stub.add_client_error("put_retention_policy", "AccessDeniedException", "not authorized")
    with stub, pytest.raises(RdsLogGroupError) as raised:
        RdsLogGroupProvider(lambda *_a, **_k: client).create(props())
    message = str(raised.value)
    assert message.startswith(f"log group {GROUP}: AccessDeniedException: not authorized")
    assert "needs logs:PutRetentionPolicy" in message
    assert "\n" not in message


# ---------------------------------------------------------------- diff


@pytest.mark.parametrize(
    ("changes", "changed", "replaces"),
    [
        ({}, False, []),
        # Another identity acting on the same group is no change to it.
        ({"aws_session": SESSION}, False, []),
        ({"retention_in_days": 90}, True, []),
        ({"kms_key_arn": KEY}, True, []),
        # A replaced instance's new identifier: a group of its own; the old one is left.
        (
            {"log_group_name": "/aws/rds/instance/shop-db-9f8e7d6/postgresql"},
            True,
            ["log_group_name"],
        ),
        ({"region": "eu-west-1"}, True, ["region"]),
    ],
)
def test_diff_on_the_name_the_retention_and_the_key(
    changes: dict[str, Any], changed: bool, replaces: list[str]
) -> None:
    diff = RdsLogGroupProvider().diff(GROUP, props(), props(**changes))
    assert diff.changes is changed
    assert diff.replaces == replaces
    assert diff.delete_before_replace is False
