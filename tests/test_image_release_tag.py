"""A re-push can never collide: pulumi-docker pushes to a mutable `build-<context>` tag, and each
pushed digest gets its own immutable `release-<digest>` tag (ECR's retag, behind a Stubber);
the lifecycle rule counts releases by that tag."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from fleet_stacks import STACKS
from stub_clients import stub_client
from test_app_image import IMAGE, LIFECYCLE, REPOSITORY, record_image

from pulumi_django.components.aws.app_image import lifecycle_policy
from pulumi_django.providers.image_tag import (
    ImageReleaseTagProvider,
    ImageTagError,
    release_tag,
)

TAG = "pulumi-python:dynamic/fleet:ImageReleaseTag"
REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop"
DIGEST = "sha256:" + "ab" * 32
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json"})


def stubbed_ecr() -> tuple[Any, Stubber]:
    client = stub_client("ecr")
    return client, Stubber(client)


def props(**changes: Any) -> dict[str, Any]:
    return {
        "image_ref": f"{REPO}@{DIGEST}",
        "repository_name": "shop",
        "registry_id": "123456789012",
        "region": "us-east-1",
        "aws_session": {"profile": "ops", "assume_roles": []},
        "tag": None,
        "__provider": "serialized",
        **changes,
    }


def expect_retag(stub: Stubber) -> None:
    where = {"repositoryName": "shop", "registryId": "123456789012"}
    stub.add_response(
        "batch_get_image",
        {
            "images": [
                {
                    **where,
                    "imageId": {"imageDigest": DIGEST},
                    "imageManifest": MANIFEST,
                    "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
                }
            ],
            "failures": [],
        },
        {
            **where,
            "imageIds": [{"imageDigest": DIGEST}],
            "acceptedMediaTypes": [
                "application/vnd.oci.image.index.v1+json",
                "application/vnd.docker.distribution.manifest.list.v2+json",
                "application/vnd.oci.image.manifest.v1+json",
                "application/vnd.docker.distribution.manifest.v2+json",
            ],
        },
    )
    stub.add_response(
        "put_image",
        {"image": {**where, "imageId": {"imageDigest": DIGEST, "imageTag": "x"}}},
        {
            **where,
            "imageManifest": MANIFEST,
            "imageManifestMediaType": "application/vnd.oci.image.index.v1+json",
            "imageTag": "release-" + "ab" * 32,
            "imageDigest": DIGEST,
        },
    )


def test_each_pushed_digest_gets_its_own_release_tag_with_the_stack_s_identity() -> None:
    ecr, stub = stubbed_ecr()
    expect_retag(stub)
    asked: list[tuple[Any, ...]] = []

    def clients(service: str, region: str | None, session: Any = None) -> Any:
        asked.append((service, region, session))
        return ecr

    with stub:
        created = ImageReleaseTagProvider(clients).create(props())
    stub.assert_no_pending_responses()
    assert created.id == "release-" + "ab" * 32
    outs = created.outs or {}
    assert outs["tag"] == "release-" + "ab" * 32
    assert outs["image_ref"] == f"{REPO}@{DIGEST}"  # what the task definition references
    assert "__provider" not in outs
    assert asked == [("ecr", "us-east-1", {"profile": "ops", "assume_roles": []})]


def test_a_retried_up_finds_the_tag_already_there() -> None:
    ecr, stub = stubbed_ecr()
    stub.add_response(
        "batch_get_image",
        {"images": [{"imageManifest": MANIFEST, "imageId": {"imageDigest": DIGEST}}]},
    )
    stub.add_client_error("put_image", "ImageAlreadyExistsException", "already exists")
    with stub:
        outs = ImageReleaseTagProvider(lambda *_a, **_k: ecr).create(props()).outs or {}
    assert outs["tag"] == "release-" + "ab" * 32


def test_a_refused_tag_names_the_permissions() -> None:
    ecr, stub = stubbed_ecr()
    stub.add_client_error("batch_get_image", "AccessDeniedException", "not authorized")
    with stub, pytest.raises(ImageTagError, match=r"needs ecr:BatchGetImage and ecr:PutImage"):
        ImageReleaseTagProvider(lambda *_a, **_k: ecr).create(props())


def test_only_a_new_digest_or_repository_tags_again() -> None:
    provider = ImageReleaseTagProvider()
    olds = props(tag="release-x")
    assert provider.diff("id", olds, props()).changes is False
    for name, value in [("aws_session", None), ("region", "eu-west-1")]:
        assert provider.diff("id", olds, props(**{name: value})).changes is False
    moved = props(image_ref=f"{REPO}@sha256:{'cd' * 32}")
    assert provider.diff("id", olds, moved).changes is True
    with pytest.raises(ImageTagError, match="has no sha256 digest"):
        release_tag(f"{REPO}:latest")


# ---------------------------------------------------------------- in the plan


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from test_app_image import make_project

    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_image_is_tagged_before_anything_uses_its_digest(project: Path) -> None:
    recording = record_image(STACKS["prod-like"](), project)
    tag = recording.one(TAG)
    image = recording.one(IMAGE)
    repository_url = recording.outputs["repository_url"]
    assert tag.inputs["image_ref"] == f"{repository_url}@sha256:{'0' * 64}"
    assert tag.inputs["repository_name"] == recording.one(REPOSITORY).name
    assert recording.depends_on(tag.urn, image.urn)
    assert recording.outputs["image_ref"] == tag.inputs["image_ref"]
    # The push tag is the only mutable one; the release tag is never.
    repository = recording.one(REPOSITORY).inputs
    filters = [item["filter"] for item in repository["imageTagMutabilityExclusionFilters"]]
    push_tag = image.inputs["imageName"].rsplit(":", 1)[1]
    assert any(fnmatch.fnmatchcase(push_tag, pattern) for pattern in filters)
    assert not any(fnmatch.fnmatchcase(release_tag(tag.inputs["image_ref"]), p) for p in filters)


def test_planning_the_image_twice_plans_the_same_inputs(project: Path) -> None:
    """No per-run value anywhere (a random tag would rebuild and push on every `pulumi up`)."""

    def inputs() -> dict[str, Any]:
        recording = record_image(STACKS["prod-like"](), project)
        return {resource.urn: resource.inputs for resource in recording.resources}

    assert inputs() == inputs()


# ---------------------------------------------------------------- the lifecycle rule


def expired(policy: dict[str, Any], images: dict[str, tuple[float, set[str]]]) -> set[str]:
    """ECR's documented lifecycle evaluation: rules by priority; a rule's candidates are its
    selected images beyond `countNumber`, newest first by push time; an image selected by a
    rule of higher priority is never expired by a later one."""
    selected_before: set[str] = set()
    gone: set[str] = set()
    for rule in sorted(policy["rules"], key=lambda item: item["rulePriority"]):
        selection = rule["selection"]
        if selection["tagStatus"] == "untagged":
            chosen = [name for name, (_, tags) in images.items() if not tags]
        else:
            chosen = [
                name
                for name, (_, tags) in images.items()
                if tags
                and all(
                    any(fnmatch.fnmatchcase(tag, pattern) for tag in tags)
                    for pattern in selection["tagPatternList"]
                )
            ]
        chosen.sort(key=lambda name: images[name][0], reverse=True)
        gone |= {name for name in chosen[selection["countNumber"] :] if name not in selected_before}
        selected_before |= set(chosen)
    return gone


def test_the_lifecycle_keeps_the_newest_releases_whatever_else_was_pushed(project: Path) -> None:
    recording = record_image(STACKS["dev-like"](), project)  # keepReleases: 2
    policy = json.loads(recording.one(LIFECYCLE).inputs["policy"])
    assert policy == lifecycle_policy(2)
    images = {
        "legacy": (0, {"0123456789abcdef01234567"}),  # pushed before release tags
        "r0": (0.5, {"release-0"}),
        "r1": (1, {"build-a", "release-1"}),
        "r2": (2, {"release-2"}),  # its context pushed again: the push tag moved to r3
        "r3": (3, {"build-b", "release-3"}),
        "crashed": (4, set()),  # pushed, state lost; the retry moved its push tag
        "r4": (5, {"build-c", "release-4"}),
        "failed-1": (6, {"build-d"}),  # pushed, never tagged (the tag call failed)
        "failed-2": (7, {"build-e"}),
        "failed-3": (8, {"build-f"}),
    }
    gone = expired(policy, images)
    # The 2 x keepReleases newest releases stay (a rollback target may be among the older of
    # them), however many newer untagged or build-only images exist.
    assert {"r1", "r2", "r3", "r4"}.isdisjoint(gone)
    assert "r0" in gone
    # Pushes never released go beyond the newest tagged; untagged ones by their own count.
    assert "legacy" in gone and "failed-1" in gone
    assert {"failed-2", "failed-3", "crashed"}.isdisjoint(gone)


def test_ecr_takes_the_repository_s_tag_rules() -> None:
    """botocore's model of ECR accepts the mutability and its exclusion filter as planned."""
    client = stub_client("ecr")
    with Stubber(client) as stub:
        stub.add_response("put_image_tag_mutability", {})
        client.put_image_tag_mutability(
            repositoryName="shop",
            imageTagMutability="IMMUTABLE_WITH_EXCLUSION",
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": "build-*"}],
        )


def test_the_release_tag_fits_ecr_s_tag_rules() -> None:
    model = stub_client("ecr").meta.service_model
    shape = model.shape_for("ImageTag")
    tag = release_tag(f"{REPO}@{DIGEST}")
    assert len(tag) <= shape.metadata["max"]
