"""The AWS site's own provider: the stack's `aws:` settings forwarded, the site's tags as
default tags, an `aws:` setting it cannot forward refused, and a program's provider used."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pytest
from fleet_stacks import DEV_LIKE, stack_config

from pulumi_django.components.aws.site import tagged_provider
from pulumi_django.config import ConfigError
from pulumi_django.recorder import record


def provider_inputs(aws_config: dict[str, str]) -> dict:
    config = stack_config(DEV_LIKE)
    recording = record(
        lambda: tagged_provider("shop", config, pulumi.ResourceOptions()),
        project="p",
        stack="dev",
        config=aws_config,
    )
    return recording.one("pulumi:providers:aws").inputs


def test_forwards_the_stacks_aws_settings_and_merges_its_default_tags() -> None:
    inputs = provider_inputs(
        {
            "aws:skipMetadataApiCheck": "true",
            "aws:maxRetries": "7",
            "aws:endpoints": json.dumps([{"s3": "http://127.0.0.1:4566"}]),
            "aws:region": "eu-west-1",
            "aws:profile": "ops",
            "aws:allowedAccountIds": json.dumps(["123456789012"]),
            "aws:assumeRoles": json.dumps(
                [{"roleArn": "arn:aws:iam::123456789012:role/deploy", "sessionName": "ci"}]
            ),
            "aws:defaultTags": json.dumps({"tags": {"cost-center": "42", "app": "other"}}),
        }
    )
    assert inputs["region"] == "eu-west-1"
    assert inputs["profile"] == "ops"
    assert inputs["skipMetadataApiCheck"] == "true"
    assert inputs["maxRetries"] == "7"
    assert json.loads(inputs["endpoints"]) == [{"s3": "http://127.0.0.1:4566"}]
    assert json.loads(inputs["allowedAccountIds"]) == ["123456789012"]
    roles = json.loads(inputs["assumeRoles"])
    assert roles == [{"roleArn": "arn:aws:iam::123456789012:role/deploy", "sessionName": "ci"}]
    # The stack's own default tags are kept; the site's tags win where both name a key.
    assert json.loads(inputs["defaultTags"])["tags"] == {
        "cost-center": "42",
        "app": "shop-dev",
        "managed-by": "pulumi-django",
    }


def test_refuses_an_aws_setting_the_provider_does_not_know_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"aws:skipRegionValidatoin: the AWS provider has no"):
        provider_inputs({"aws:region": "eu-west-1", "aws:skipRegionValidatoin": "true"})


def test_a_program_that_brings_its_own_aws_provider_keeps_it() -> None:
    from pulumi_django.components.aws.site import AwsSite

    config = stack_config(DEV_LIKE)

    def program() -> None:
        own = aws.Provider("own", region="eu-west-1")
        AwsSite("shop-dev", config, pulumi.ResourceOptions(providers=[own]))

    recording = record(program, project="p", stack="dev", config={"aws:region": "eu-west-1"})
    providers = recording.find("pulumi:providers:aws")
    assert [p.name for p in providers] == ["own"]
    assert all(
        r.provider.rsplit("::", 1)[0] == providers[0].urn
        for r in recording.resources
        if r.type.startswith("aws:")
    )


def test_a_secret_aws_setting_stays_secret() -> None:
    config = stack_config(DEV_LIKE)
    recording = record(
        lambda: tagged_provider("shop", config, pulumi.ResourceOptions()),
        project="p",
        stack="dev",
        config={"aws:region": "eu-west-1", "aws:secretKey": "hunter2-not-in-the-plan"},
        secret_keys=["aws:secretKey"],
    )
    inputs = recording.one("pulumi:providers:aws").inputs
    assert "hunter2" not in json.dumps(inputs)


def test_a_provider_inherited_from_a_parent_component_is_kept() -> None:
    from pulumi_django.components.aws.site import AwsSite

    config = stack_config(DEV_LIKE)

    def program() -> None:
        own = aws.Provider("other-account", region="eu-west-1")
        parent = pulumi.ComponentResource(
            "acme:infra:Shop", "shop", None, pulumi.ResourceOptions(providers=[own])
        )
        AwsSite("shop-dev", config, pulumi.ResourceOptions(parent=parent))

    recording = record(program, project="p", stack="dev", config={"aws:region": "eu-west-1"})
    assert [p.name for p in recording.find("pulumi:providers:aws")] == ["other-account"]
