"""MediaStorage, recorded under the Pulumi mocks alone and with the site's distribution: a
private, encrypted, versioned bucket that only the app (its task role) writes; public media read
by that one distribution through OAC; and, in the shipped AWS stacks, a bucket the static
release never touches."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import parliament
import pulumi
import pulumi_aws as aws
import pytest

from pulumi_django.cli.plan import Plan, render_text
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.load_balancer import LoadBalancerOrigin
from pulumi_django.components.aws.media_storage import MediaStorage, MediaStorageArgs
from pulumi_django.components.aws.static_site import StaticSite, StaticSiteArgs
from pulumi_django.config.media import MediaConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.recorder import MOCK_INVOKES, Recording, record

COMPONENT = "pulumi-django:media:MediaStorage"
BUCKET = "aws:s3/bucket:Bucket"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
# AWS's managed cache policy, by its documented id (independent of the component's constant).
MANAGED_CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
AWS_STACKS = ["dev", "prod"]


def record_media(media: MediaConfig, *, with_distribution: bool) -> Recording:
    """The media bucket, alone (its policy names no distribution) or with the site's
    distribution in front of it, wired as AwsSite wires them."""

    def program() -> None:
        storage = MediaStorage("shop", MediaStorageArgs(config=media))
        if with_distribution:
            site = StaticSite(
                "shop",
                StaticSiteArgs(
                    config=StaticConfig(),
                    load_balancer_origin=LoadBalancerOrigin(
                        dns_name="shop-alb-1.eu-west-1.elb.amazonaws.com",
                        origin_verify_secret=pulumi.Output.secret("origin-secret"),
                        https=False,
                        vpc_origin_id="shop-origin-id",
                    ),
                    media=storage.public_origin,
                ),
            )
            storage.attach_policy(site.distribution_arn)
            pulumi.export("distribution_arn", site.distribution_arn)
        else:
            storage.attach_policy()
        pulumi.export("bucket_name", storage.bucket_name)
        pulumi.export("bucket_arn", storage.bucket_arn)

    return record(program, project="shop", stack="prod", config={"aws:region": "eu-west-1"})


@pytest.fixture(scope="module")
def private() -> Recording:
    return record_media(MediaConfig(), with_distribution=True)


@pytest.fixture(scope="module")
def public() -> Recording:
    config = MediaConfig(access="public", url_path="/uploads/", noncurrent_version_days=90)
    return record_media(config, with_distribution=True)


def bucket_policy(recording: Recording) -> dict[str, Any]:
    return json.loads(recording.one(POLICY, "shop-media").inputs["policy"])


def distribution(recording: Recording) -> dict[str, Any]:
    return recording.one(DISTRIBUTION).inputs


def findings(policy: dict[str, Any]) -> list[tuple[str, Any]]:
    analyzed = parliament.analyze_policy_string(json.dumps(policy))
    return [(finding.issue, finding.detail) for finding in analyzed.findings]


def test_every_resource_is_a_child_of_the_component_named_after_it(private: Recording) -> None:
    component = private.one(COMPONENT, "shop")
    children = private.children(component.urn)
    assert {child.type for child in children} == {
        BUCKET,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketVersioning:BucketVersioning",
        LIFECYCLE,
        POLICY,
    }
    assert all(child.name == "shop-media" for child in children)
    bucket = private.one(BUCKET, "shop-media")
    for child in children:
        if child.urn != bucket.urn:
            assert child.property_dependencies["bucket"] == [bucket.urn], child.type


def test_the_bucket_is_private_encrypted_owner_enforced_and_versioned(private: Recording) -> None:
    block = private.one(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "shop-media"
    ).inputs
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block[flag] is True for flag in flags)
    (rule,) = private.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "shop-media",
    ).inputs["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    ownership = private.one(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "shop-media"
    ).inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    versioning = private.one("aws:s3/bucketVersioning:BucketVersioning").inputs
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}


@pytest.mark.parametrize(("fixture", "days"), [("private", 30), ("public", 90)])
def test_old_versions_and_abandoned_uploads_expire(
    fixture: str, days: int, request: pytest.FixtureRequest
) -> None:
    recording: Recording = request.getfixturevalue(fixture)
    lifecycle = recording.one(LIFECYCLE)
    rules = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}
    assert all(rule["status"] == "Enabled" and "filter" not in rule for rule in rules.values())
    versions = rules["expire-previous-versions"]
    assert versions["noncurrentVersionExpiration"] == {"noncurrentDays": days}
    assert versions["expiration"] == {"expiredObjectDeleteMarker": True}
    # Never the current version of an upload.
    assert "days" not in versions["expiration"]
    assert rules["abort-incomplete-uploads"]["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": 7
    }
    versioning = recording.one("aws:s3/bucketVersioning:BucketVersioning")
    assert recording.depends_on(lifecycle.urn, versioning.urn)


def test_the_bucket_is_kept_by_default_and_deletable_only_when_told(private: Recording) -> None:
    bucket = private.one(BUCKET, "shop-media")
    assert bucket.inputs["forceDestroy"] is False
    # What protects the uploads stays with them: deleting BucketVersioning suspends versioning.
    media_resources = [r for r in private.resources if "MediaStorage$aws:s3" in r.urn]
    assert len(media_resources) == 7
    assert all(r.options.get("retainOnDelete") is True for r in media_resources)
    throwaway = record_media(
        MediaConfig(force_destroy=True, retain_on_delete=False), with_distribution=False
    )
    assert throwaway.one(BUCKET, "shop-media").inputs["forceDestroy"] is True
    assert not any("retainOnDelete" in r.options for r in throwaway.resources if "Media" in r.urn)


def test_private_media_is_tls_only_and_not_served_by_the_distribution(private: Recording) -> None:
    policy = bucket_policy(private)
    (statement,) = policy["Statement"]
    bucket_arn = private.outputs["bucket_arn"]
    assert statement["Effect"] == "Deny"
    assert set(statement["Resource"]) == {bucket_arn, f"{bucket_arn}/*"}
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert findings(policy) == []
    inputs = distribution(private)
    assert [o["originId"] for o in inputs["origins"]] == ["load-balancer", "static-bucket"]
    assert [b["pathPattern"] for b in inputs["orderedCacheBehaviors"]] == ["/static/*"]
    # Nothing to wait for: the policy names no distribution.
    assert not private.depends_on(
        private.one(POLICY, "shop-media").urn, private.one(DISTRIBUTION).urn
    )


def test_public_media_is_read_by_that_distribution_alone_through_oac(public: Recording) -> None:
    policy = bucket_policy(public)
    assert findings(policy) == []
    bucket_arn = public.outputs["bucket_arn"]
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert {s["Action"]: s["Resource"] for s in allows} == {
        "s3:GetObject": f"{bucket_arn}/uploads/*",
        "s3:ListBucket": bucket_arn,
    }
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"AWS:SourceArn": public.outputs["distribution_arn"]}
        }
    assert any(s["Effect"] == "Deny" and s["Principal"] == "*" for s in policy["Statement"])
    media_policy = public.one(POLICY, "shop-media")
    assert public.depends_on(media_policy.urn, public.one(DISTRIBUTION).urn)
    block = public.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "shop-media")
    assert public.depends_on(media_policy.urn, block.urn)


def test_public_media_has_its_own_cached_behaviour_and_headers(public: Recording) -> None:
    inputs = distribution(public)
    behaviours = {b["pathPattern"]: b for b in inputs["orderedCacheBehaviors"]}
    assert list(behaviours) == ["/static/*", "/uploads/*"]
    media = behaviours["/uploads/*"]
    origin = next(o for o in inputs["origins"] if o["originId"] == media["targetOriginId"])
    assert origin["domainName"] == f"{public.outputs['bucket_name']}.s3.eu-west-1.amazonaws.com"
    control = public.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert origin["originAccessControlId"] == f"{control.name}-id"
    assert "customOriginConfig" not in origin
    assert media["cachePolicyId"] == MANAGED_CACHING_OPTIMIZED
    assert set(media["allowedMethods"]) == set(media["cachedMethods"]) == {"GET", "HEAD"}
    assert media["viewerProtocolPolicy"] == "redirect-to-https"
    headers = public.one("aws:cloudfront/responseHeadersPolicy:ResponseHeadersPolicy")
    assert media["responseHeadersPolicyId"] == f"{headers.name}-id"
    security = headers.inputs["securityHeadersConfig"]
    csp = security["contentSecurityPolicy"]["contentSecurityPolicy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert security["contentTypeOptions"] == {"override": True}
    assert security["strictTransportSecurity"]["accessControlMaxAgeSec"] >= 31536000


def test_public_media_needs_the_distribution_that_serves_it() -> None:
    def program() -> None:
        MediaStorage("shop", MediaStorageArgs(config=MediaConfig(access="public"))).attach_policy()

    with pytest.raises(ComponentArgsError, match="needs the ARN of the distribution"):
        record(program, project="shop", stack="prod", config={"aws:region": "eu-west-1"})


# --- escape hatches and bring your own ----------------------------------------------------

THEIR_BUCKET = "their-uploads"
THEIR_DISTRIBUTION_ARN = "arn:aws:cloudfront::123456789012:distribution/E2QWRUHEXAMPLE"


def record_program(program: Callable[[], None]) -> Recording:
    return record(program, project="shop", stack="prod", config={"aws:region": "eu-west-1"})


def test_every_child_is_a_typed_attribute() -> None:
    built: list[MediaStorage] = []

    def program() -> None:
        storage = MediaStorage("shop", MediaStorageArgs())
        assert storage.bucket_policy is None  # until attach_policy declares it
        returned = storage.attach_policy()
        assert returned is storage.bucket_policy
        built.append(storage)

    record_program(program)
    (storage,) = built
    assert isinstance(storage.bucket, aws.s3.Bucket)
    assert storage.bucket_controls is not None
    assert isinstance(storage.bucket_controls.public_access_block, aws.s3.BucketPublicAccessBlock)
    assert isinstance(storage.versioning, aws.s3.BucketVersioning)
    assert isinstance(storage.lifecycle, aws.s3.BucketLifecycleConfiguration)
    assert isinstance(storage.bucket_policy, aws.s3.BucketPolicy)


def test_a_brought_bucket_name_is_used_as_its_owner_set_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(
        MOCK_INVOKES,
        "aws:s3/getBucket:getBucket",
        lambda args, region: {
            "bucket": args["bucket"],
            "arn": f"arn:aws:s3:::{args['bucket']}",
            "bucketRegionalDomainName": f"{args['bucket']}.s3.{region}.amazonaws.com",
        },
    )
    built: list[MediaStorage] = []

    def program() -> None:
        storage = MediaStorage(
            "shop", MediaStorageArgs(config=MediaConfig(access="public"), bucket=THEIR_BUCKET)
        )
        assert storage.attach_policy(THEIR_DISTRIBUTION_ARN) is None
        assert storage.public_origin is not None
        pulumi.export("origin", storage.public_origin.domain_name)
        pulumi.export("bucket_name", storage.bucket_name)
        pulumi.export("bucket_arn", storage.bucket_arn)
        pulumi.export("policy", storage.policy_document(THEIR_DISTRIBUTION_ARN))
        built.append(storage)

    recording = record_program(program)
    component = recording.one(COMPONENT, "shop")
    assert recording.children(component.urn) == []
    (storage,) = built
    assert storage.bucket is storage.bucket_controls is storage.versioning is None
    assert storage.lifecycle is storage.bucket_policy is None
    assert recording.outputs["bucket_name"] == THEIR_BUCKET
    assert recording.outputs["bucket_arn"] == f"arn:aws:s3:::{THEIR_BUCKET}"
    assert recording.outputs["origin"] == f"{THEIR_BUCKET}.s3.eu-west-1.amazonaws.com"
    # What the owner must put in the bucket's policy for the distribution to read.
    policy = json.loads(recording.outputs["policy"])
    assert findings(policy) == []
    reads = [s for s in policy["Statement"] if s.get("Action") == "s3:GetObject"]
    assert reads[0]["Resource"] == f"arn:aws:s3:::{THEIR_BUCKET}/media/*"
    assert reads[0]["Condition"] == {"StringEquals": {"AWS:SourceArn": THEIR_DISTRIBUTION_ARN}}


def test_a_brought_bucket_object_is_served_from_its_own_domain() -> None:
    def program() -> None:
        theirs = aws.s3.Bucket("theirs")
        storage = MediaStorage(
            "shop", MediaStorageArgs(config=MediaConfig(access="public"), bucket=theirs)
        )
        assert storage.public_origin is not None
        pulumi.export("origin", storage.public_origin.domain_name)
        pulumi.export("bucket_arn", storage.bucket_arn)

    recording = record_program(program)
    assert [bucket.name for bucket in recording.find(BUCKET)] == ["theirs"]
    assert recording.children(recording.one(COMPONENT, "shop").urn) == []
    assert recording.outputs["origin"] == "theirs.s3.eu-west-1.amazonaws.com"
    assert recording.outputs["bucket_arn"] == "arn:aws:s3:::theirs"


# --- in the shipped AWS stacks -------------------------------------------------------------


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_the_plan_shows_the_media_bucket(stack: str, stack_plan: Callable[[str], Plan]) -> None:
    plan = stack_plan(stack)
    bucket = plan.recording.one(BUCKET, r".*-media")
    assert plan.recording.outputs["mediaBucket"] == bucket.name
    text = render_text(plan)
    assert "pulumi-django:media:MediaStorage" in text
    assert re.search(rf"^\s+mediaBucket\s+{bucket.name}$", text, re.M)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_the_static_release_never_touches_the_media_bucket(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    release = recording.one("pulumi-python:dynamic/static:StaticRelease")
    media = recording.one(BUCKET, r".*-media")
    static = recording.one(BUCKET, r".*-static")
    assert release.inputs["bucket"] == recording.outputs["staticBucket"] == static.name
    assert release.inputs["bucket"] != recording.outputs["mediaBucket"]
    assert release.property_dependencies["bucket"] == [static.urn]
    assert not recording.depends_on(release.urn, media.urn)


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_the_app_may_use_exactly_its_media_and_starts_only_once_it_may(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    media = recording.one(BUCKET, r".*-media")
    grant = recording.one("aws:iam/rolePolicy:RolePolicy", r".*-task-media")
    task_role = recording.one("aws:iam/role:Role", r".*-task")
    assert grant.property_dependencies["role"] == [task_role.urn]
    document = json.loads(grant.inputs["policy"])
    assert findings(document) == []
    bucket_arn = f"arn:aws:s3:::{media.name}"
    resources = {s["Resource"] for s in document["Statement"]}
    # With the stack's own KMS key (prod), also that key, through S3 (tests/test_stack_key.py).
    stack_key = {recording.outputs["stackKeyArn"]} if "stackKeyArn" in recording.outputs else set()
    assert resources == {bucket_arn, f"{bucket_arn}/media/*", *stack_key}
    # The web task definition (named as its task role); the workers' have their own.
    task = recording.one("aws:ecs/taskDefinition:TaskDefinition", task_role.name)
    assert recording.depends_on(task.urn, grant.urn)
    (app,) = [c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == "app"]
    env = {item["name"]: item["value"] for item in app["environment"]}
    assert env["MEDIA_BUCKET"] == media.name
    assert env["MEDIA_ACCESS"] == "private"
    assert env["MEDIA_URL"] == recording.outputs["url"] + "/media/"
