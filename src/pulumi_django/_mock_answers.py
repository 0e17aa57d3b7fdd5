"""Sane answers for what a unit test's mocks leave empty.

Pulumi's standard recipe (`pulumi.runtime.set_mocks` with a `Mocks` whose `call` returns `{}`
and whose `new_resource` echoes the inputs) answers every invoke with nothing and gives no
resource its computed outputs. Components that read such a value (the region, a VPC's CIDR,
an endpoint address) use these helpers, so that a user's own unit test of a program built
from them runs. Under a real engine nothing here changes a value: an empty answer there stays
the error it was.
"""

from __future__ import annotations

import hashlib
from typing import TypeVar

import pulumi
from pulumi.runtime import mocks, settings

T = TypeVar("T")

# What a mocked resource's ARN says for its account; the region comes from `mock_region`.
MOCK_ACCOUNT = "123456789012"
# Without `aws:region` in a test's config, the region a mocked program is taken to run in.
MOCK_REGION = "us-east-1"


def under_mocks() -> bool:
    """Whether the program runs against `pulumi.runtime.set_mocks` (a user's unit test, or
    `pulumi-django plan`) rather than a real engine."""
    return isinstance(settings.get_monitor(), mocks.MockMonitor)


def mock_region() -> str:
    """The region a mocked program runs in: the test's `aws:region`, or us-east-1."""
    return pulumi.Config("aws").get("region") or MOCK_REGION


def mock_arn(service: str, resource: str) -> str:
    """An ARN of the mocked account and region, e.g. `mock_arn("secretsmanager", "secret:x")`."""
    return f"arn:aws:{service}:{mock_region()}:{MOCK_ACCOUNT}:{resource}"


def or_mock_answer(value: pulumi.Output[T], answer: T) -> pulumi.Output[T]:
    """`value`, or `answer` when mocks left it empty; untouched under a real engine."""
    if not under_mocks():
        return value
    return value.apply(lambda resolved: resolved or answer)


def mock_image_digest(reference: str) -> str:
    """The digest (or local image ID) a mocked registry or Docker engine gives the image
    `reference` names: derived from it, so a reference always resolves alike and another one
    (a moved tag's new value) otherwise."""
    return "sha256:" + hashlib.sha256(reference.encode()).hexdigest()


def mock_ecr_digest(registry_id: str, region: str, repository: str, tag: str) -> str:
    """The digest `aws.ecr.get_image` answers offline for a tag of an ECR repository."""
    return mock_image_digest(f"{registry_id}.dkr.ecr.{region}/{repository}:{tag}")
