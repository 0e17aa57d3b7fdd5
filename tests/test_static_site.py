"""StaticSite, recorded under the Pulumi mocks: a private bucket read only by one distribution
that serves both the app (through the load balancer's VPC origin) and every kept release's
static files, and caches no error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import parliament
import pulumi
import pulumi_aws as aws
import pytest

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.load_balancer import LoadBalancerOrigin
from pulumi_django.components.aws.media_storage import MediaOrigin
from pulumi_django.components.aws.static_site import StaticSite, StaticSiteArgs
from pulumi_django.config.domain import DomainConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.recorder import MOCK_ACCOUNT, MOCK_INVOKES, SECRET, Recording, record

COMPONENT = "pulumi-django:static:StaticSite"
BUCKET = "aws:s3/bucket:Bucket"
DISTRIBUTION = "aws:cloudfront/distribution:Distribution"
LOAD_BALANCER_DNS = "web-alb-123456.us-east-1.elb.amazonaws.com"
ORIGIN_SECRET = "origin-secret-value-0123456789"
VPC_ORIGIN_ID = "vo_0123456789abcdefghijkl"
# Every status code CloudFront lets a custom error response name (CloudFront's developer guide,
# "HTTP 4xx and 5xx status codes that CloudFront caches"): the 10 s default must apply to none.
CACHEABLE_ERROR_CODES = {400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504}
# AWS's managed policies, by their documented ids (independent of the component's constants).
MANAGED_CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
MANAGED_CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"
MANAGED_ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"
MANAGED_SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"
DOMAIN = DomainConfig(
    name="www.example.com",
    certificate_arn="arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-000000000001",
    load_balancer_certificate_arn=(
        "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-4000-8000-000000000002"
    ),
)
WAF = "arn:aws:wafv2:us-east-1:123456789012:global/webacl/site/0a1b2c3d"


OUTPUTS = (
    "bucket_name",
    "bucket_arn",
    "bucket_policy_document",
    "distribution_id",
    "distribution_arn",
    "distribution_domain_name",
    "site_url",
    "static_url",
)


def record_args(
    args: Callable[[], StaticSiteArgs], built: list[StaticSite] | None = None
) -> Recording:
    """`args` is called inside the program, so that resources it builds are registered there."""

    def program() -> None:
        site = StaticSite("web", args())
        for output in OUTPUTS:
            pulumi.export(output, getattr(site, output))
        if built is not None:
            built.append(site)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


def site_args(
    config: StaticConfig | None = None,
    domain: DomainConfig | None = None,
    load_balancer_https: bool = False,
    **brought: Any,
) -> StaticSiteArgs:
    return StaticSiteArgs(
        config=config or StaticConfig(),
        domain=domain,
        load_balancer_origin=LoadBalancerOrigin(
            dns_name=LOAD_BALANCER_DNS,
            origin_verify_secret=pulumi.Output.secret(ORIGIN_SECRET),
            https=load_balancer_https,
            vpc_origin_id=VPC_ORIGIN_ID,
        ),
        **brought,
    )


def record_site(
    config: StaticConfig | None = None,
    domain: DomainConfig | None = None,
    load_balancer_https: bool = False,
) -> Recording:
    return record_args(lambda: site_args(config, domain, load_balancer_https))


@pytest.fixture(scope="module")
def site() -> Recording:
    return record_site()


@pytest.fixture(scope="module")
def site_with_domain() -> Recording:
    return record_site(
        StaticConfig(prefix="assets/", waf_web_acl_arn=WAF),
        DOMAIN,
        load_balancer_https=True,
    )


def distribution(recording: Recording) -> dict[str, Any]:
    return recording.one(DISTRIBUTION).inputs


def origin(recording: Recording, origin_id: str) -> dict[str, Any]:
    return next(o for o in distribution(recording)["origins"] if o["originId"] == origin_id)


def static_behaviour(recording: Recording) -> dict[str, Any]:
    (behaviour,) = distribution(recording)["orderedCacheBehaviors"]
    return behaviour


def bucket_policy(recording: Recording) -> dict[str, Any]:
    return json.loads(recording.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"])


def test_every_resource_is_a_child_of_the_component_named_after_it(site: Recording) -> None:
    component = site.one(COMPONENT, "web")
    children = site.children(component.urn)
    assert {child.type for child in children} == {
        BUCKET,
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:cloudfront/originAccessControl:OriginAccessControl",
        DISTRIBUTION,
    }
    assert all(child.name.startswith("web-") for child in children)


def test_bucket_is_private_encrypted_and_owner_enforced(site: Recording) -> None:
    bucket = site.one(BUCKET)
    assert bucket.inputs["forceDestroy"] is False
    block = site.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs
    assert all(
        block[flag] is True
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    encryption = site.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).inputs
    (rule,) = encryption["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    ownership = site.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls").inputs
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    for resource in site.find(name="web-static"):
        if resource.type != BUCKET and "bucket" in resource.inputs:
            assert resource.property_dependencies["bucket"] == [bucket.urn]


def test_policy_denies_plain_http_and_lets_only_the_distribution_read(site: Recording) -> None:
    policy = bucket_policy(site)
    bucket_arn = site.outputs["bucket_arn"]
    statements = {statement["Sid"]: statement for statement in policy["Statement"]}
    deny = next(s for s in statements.values() if s["Effect"] == "Deny")
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    assert set(deny["Resource"]) == {bucket_arn, f"{bucket_arn}/*"}
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    allows = [s for s in statements.values() if s["Effect"] == "Allow"]
    assert {s["Action"] for s in allows} == {"s3:GetObject", "s3:ListBucket"}
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        assert statement["Condition"] == {
            "StringEquals": {"AWS:SourceArn": site.outputs["distribution_arn"]}
        }
    read = next(s for s in allows if s["Action"] == "s3:GetObject")
    assert read["Resource"] == f"{bucket_arn}/static/*"  # not the release manifests


def test_policy_passes_parliament(site: Recording) -> None:
    policy_text = site.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    findings = parliament.analyze_policy_string(policy_text).findings
    assert [(finding.issue, finding.detail) for finding in findings] == []


def test_policy_is_applied_after_the_public_access_block(site: Recording) -> None:
    policy = site.one("aws:s3/bucketPolicy:BucketPolicy")
    block = site.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    assert site.depends_on(policy.urn, block.urn)
    assert site.depends_on(policy.urn, site.one(DISTRIBUTION).urn)


def test_bucket_origin_signs_with_origin_access_control(site: Recording) -> None:
    control = site.one("aws:cloudfront/originAccessControl:OriginAccessControl")
    assert control.inputs["originAccessControlOriginType"] == "s3"
    assert control.inputs["signingBehavior"] == "always"
    assert control.inputs["signingProtocol"] == "sigv4"
    bucket_origin = origin(site, static_behaviour(site)["targetOriginId"])
    assert bucket_origin["originAccessControlId"] == f"{control.name}-id"
    assert (
        bucket_origin["domainName"] == f"{site.outputs['bucket_name']}.s3.us-east-1.amazonaws.com"
    )
    assert "customOriginConfig" not in bucket_origin
    assert site.depends_on(site.one(DISTRIBUTION).urn, control.urn)


def test_default_behaviour_goes_uncached_to_the_load_balancer(site: Recording) -> None:
    default = distribution(site)["defaultCacheBehavior"]
    alb = origin(site, default["targetOriginId"])
    assert alb["domainName"] == LOAD_BALANCER_DNS
    # Through the VPC origin, inside the VPC: never a custom origin across the internet.
    assert alb["vpcOriginConfig"] == {"vpcOriginId": VPC_ORIGIN_ID, "originReadTimeout": 60}
    assert "customOriginConfig" not in alb
    assert default["cachePolicyId"] == MANAGED_CACHING_DISABLED
    assert default["originRequestPolicyId"] == MANAGED_ALL_VIEWER
    assert default["responseHeadersPolicyId"] == MANAGED_SECURITY_HEADERS
    assert set(default["allowedMethods"]) == {
        "GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"
    }  # fmt: skip
    assert default["viewerProtocolPolicy"] == "redirect-to-https"


def test_static_prefix_goes_to_the_bucket_cached(site: Recording) -> None:
    behaviour = static_behaviour(site)
    assert behaviour["pathPattern"] == "/static/*"
    assert "originAccessControlId" in origin(site, behaviour["targetOriginId"])
    assert behaviour["cachePolicyId"] == MANAGED_CACHING_OPTIMIZED
    assert behaviour["responseHeadersPolicyId"] == MANAGED_SECURITY_HEADERS
    assert set(behaviour["allowedMethods"]) == {"GET", "HEAD"}
    assert behaviour["compress"] is True
    assert behaviour["viewerProtocolPolicy"] == "redirect-to-https"


def test_load_balancer_origin_carries_the_secret_header_masked(site: Recording) -> None:
    alb = origin(site, distribution(site)["defaultCacheBehavior"]["targetOriginId"])
    assert alb["customHeaders"] == [{"name": "X-Origin-Verify", "value": SECRET}]
    everything = json.dumps([resource.as_json() for resource in site.resources])
    assert ORIGIN_SECRET not in everything


def test_http2_and_3(site: Recording) -> None:
    assert distribution(site)["httpVersion"] == "http2and3"


@pytest.mark.parametrize("recording", ["site", "site_with_domain"])
def test_no_error_is_cached_for_anyone(recording: str, request: pytest.FixtureRequest) -> None:
    """Without an error caching minimum TTL, CloudFront caches a 4xx/5xx for 10 s: a 502 of a
    rollout, or one user's 403/404, served to everyone. Each code gets 0, and only that (no
    custom page, no status rewritten): the viewer gets the app's own answer."""
    responses = distribution(request.getfixturevalue(recording))["customErrorResponses"]
    assert {response["errorCode"] for response in responses} == CACHEABLE_ERROR_CODES
    assert len(responses) == len(CACHEABLE_ERROR_CODES)
    assert all(response == {"errorCode": response["errorCode"], "errorCachingMinTtl": 0}
               for response in responses)  # fmt: skip


def test_only_the_bucket_behaviours_may_cache(site: Recording) -> None:
    """Error caching is per distribution; what is cached per behaviour is the cache policy:
    the app's behaviour caches nothing (an error's own max-age is capped by its max TTL of 0),
    the static files are cached (and S3 sends no Cache-Control with a missing key's 404)."""
    assert distribution(site)["defaultCacheBehavior"]["cachePolicyId"] == MANAGED_CACHING_DISABLED
    assert static_behaviour(site)["cachePolicyId"] == MANAGED_CACHING_OPTIMIZED


def test_without_domain_the_site_answers_on_cloudfront_s_name(site: Recording) -> None:
    inputs = distribution(site)
    assert inputs["viewerCertificate"] == {"cloudfrontDefaultCertificate": True}
    assert "aliases" not in inputs
    assert "webAclId" not in inputs
    host = site.outputs["distribution_domain_name"]
    assert host.endswith(".cloudfront.net")
    assert site.outputs["site_url"] == f"https://{host}"
    assert site.outputs["static_url"] == f"https://{host}/static/"
    alb = origin(site, inputs["defaultCacheBehavior"]["targetOriginId"])
    assert "customOriginConfig" not in alb


def test_custom_domain_certificate_waf_and_https_to_the_load_balancer(
    site_with_domain: Recording,
) -> None:
    inputs = distribution(site_with_domain)
    assert inputs["aliases"] == ["www.example.com"]
    assert inputs["viewerCertificate"] == {
        "acmCertificateArn": DOMAIN.certificate_arn,
        "sslSupportMethod": "sni-only",
        "minimumProtocolVersion": "TLSv1.2_2021",
    }
    assert inputs["webAclId"] == WAF
    alb = origin(site_with_domain, inputs["defaultCacheBehavior"]["targetOriginId"])
    # HTTPS is the VPC origin's (LoadBalancer's): the distribution only names it.
    assert alb["vpcOriginConfig"]["vpcOriginId"] == VPC_ORIGIN_ID
    assert "customOriginConfig" not in alb
    assert site_with_domain.outputs["site_url"] == "https://www.example.com"
    assert site_with_domain.outputs["static_url"] == "https://www.example.com/assets/"


def test_prefix_sets_the_path_pattern_and_the_readable_keys(site_with_domain: Recording) -> None:
    assert static_behaviour(site_with_domain)["pathPattern"] == "/assets/*"
    bucket_arn = site_with_domain.outputs["bucket_arn"]
    reads = [
        s for s in bucket_policy(site_with_domain)["Statement"] if s["Action"] == "s3:GetObject"
    ]
    assert [s["Resource"] for s in reads] == [f"{bucket_arn}/assets/*"]


# --- Escape hatches and bring your own ----------------------------------------------------

THEIR_BUCKET = "their-static-files"
THEIR_DISTRIBUTION = "E2QWRUHEXAMPLE"
THEIR_DISTRIBUTION_ARN = f"arn:aws:cloudfront::{MOCK_ACCOUNT}:distribution/{THEIR_DISTRIBUTION}"
ALB_ORIGIN = LoadBalancerOrigin(
    LOAD_BALANCER_DNS, ORIGIN_SECRET, https=False, vpc_origin_id=VPC_ORIGIN_ID
)
LOCK_DOWN = {
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
}


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> None:
    """`aws.s3.get_bucket` and `aws.cloudfront.get_distribution` as AWS answers them for the
    user's bucket and distribution."""
    monkeypatch.setitem(
        MOCK_INVOKES,
        "aws:s3/getBucket:getBucket",
        lambda args, region: {
            "bucket": args["bucket"],
            "arn": f"arn:aws:s3:::{args['bucket']}",
            "bucketRegionalDomainName": f"{args['bucket']}.s3.{region}.amazonaws.com",
        },
    )
    monkeypatch.setitem(
        MOCK_INVOKES,
        "aws:cloudfront/getDistribution:getDistribution",
        lambda args, _region: {
            "id": args["id"],
            "arn": THEIR_DISTRIBUTION_ARN,
            "domainName": "dtheirs123456.cloudfront.net",
        },
    )


def children_types(recording: Recording) -> set[str]:
    return {child.type for child in recording.children(recording.one(COMPONENT, "web").urn)}


def test_every_child_is_a_typed_attribute() -> None:
    built: list[StaticSite] = []
    record_args(site_args, built)
    (site,) = built
    assert isinstance(site.bucket, aws.s3.Bucket)
    assert site.bucket_controls is not None
    assert isinstance(site.bucket_controls.public_access_block, aws.s3.BucketPublicAccessBlock)
    assert isinstance(
        site.bucket_controls.encryption, aws.s3.BucketServerSideEncryptionConfiguration
    )
    assert isinstance(site.bucket_controls.ownership_controls, aws.s3.BucketOwnershipControls)
    assert isinstance(site.bucket_policy, aws.s3.BucketPolicy)
    assert isinstance(site.origin_access_control, aws.cloudfront.OriginAccessControl)
    assert isinstance(site.distribution, aws.cloudfront.Distribution)
    assert site.media_headers_policy is None  # no public media


def test_public_media_headers_are_an_attribute() -> None:
    built: list[StaticSite] = []
    media = MediaOrigin(domain_name="media.s3.us-east-1.amazonaws.com", url_path="/media/")
    record_args(lambda: site_args(media=media), built)
    assert isinstance(built[0].media_headers_policy, aws.cloudfront.ResponseHeadersPolicy)


def test_the_policy_document_is_the_policy_the_bucket_gets(site: Recording) -> None:
    policy = site.one("aws:s3/bucketPolicy:BucketPolicy").inputs["policy"]
    assert json.loads(site.outputs["bucket_policy_document"]) == json.loads(policy)


def test_a_brought_bucket_name_is_served_but_left_as_its_owner_set_it(lookups: None) -> None:
    built: list[StaticSite] = []
    recording = record_args(lambda: site_args(bucket=THEIR_BUCKET), built)
    assert children_types(recording) == {
        "aws:cloudfront/originAccessControl:OriginAccessControl",
        DISTRIBUTION,
    }
    assert built[0].bucket is None and built[0].bucket_controls is None
    assert built[0].bucket_policy is None
    bucket_origin = origin(recording, static_behaviour(recording)["targetOriginId"])
    assert bucket_origin["domainName"] == f"{THEIR_BUCKET}.s3.us-east-1.amazonaws.com"
    assert recording.outputs["bucket_name"] == THEIR_BUCKET
    assert recording.outputs["bucket_arn"] == f"arn:aws:s3:::{THEIR_BUCKET}"
    # What the owner must put in the bucket's policy: this distribution's reads.
    document = json.loads(recording.outputs["bucket_policy_document"])
    reads = [s for s in document["Statement"] if s["Action"] == "s3:GetObject"]
    assert [s["Resource"] for s in reads] == [f"arn:aws:s3:::{THEIR_BUCKET}/static/*"]
    assert reads[0]["Condition"] == {
        "StringEquals": {"AWS:SourceArn": recording.outputs["distribution_arn"]}
    }


def test_a_brought_bucket_object_is_served_from_its_own_domain() -> None:
    def args() -> StaticSiteArgs:
        return site_args(bucket=aws.s3.Bucket("theirs"))

    recording = record_args(args)
    (bucket,) = recording.find(BUCKET)
    assert bucket.name == "theirs"
    assert not LOCK_DOWN & children_types(recording)
    bucket_origin = origin(recording, static_behaviour(recording)["targetOriginId"])
    assert bucket_origin["domainName"] == "theirs.s3.us-east-1.amazonaws.com"
    assert set(recording.one(DISTRIBUTION).property_dependencies["origins"]) == {
        bucket.urn,
        recording.one("aws:cloudfront/originAccessControl:OriginAccessControl").urn,
    }


def test_a_brought_distribution_id_gets_the_bucket_but_no_distribution_or_oac(
    lookups: None,
) -> None:
    built: list[StaticSite] = []
    recording = record_args(
        lambda: StaticSiteArgs(distribution=THEIR_DISTRIBUTION, domain=DOMAIN), built
    )
    assert children_types(recording) == {
        BUCKET,
        *LOCK_DOWN,
        "aws:s3/bucketPolicy:BucketPolicy",
    }
    assert built[0].distribution is None and built[0].origin_access_control is None
    assert recording.outputs["distribution_id"] == THEIR_DISTRIBUTION
    assert recording.outputs["distribution_arn"] == THEIR_DISTRIBUTION_ARN
    assert recording.outputs["site_url"] == "https://www.example.com"
    reads = [s for s in bucket_policy(recording)["Statement"] if s["Action"] == "s3:GetObject"]
    assert reads[0]["Condition"] == {"StringEquals": {"AWS:SourceArn": THEIR_DISTRIBUTION_ARN}}


def test_a_brought_distribution_object_without_domain_gives_the_site_its_name() -> None:
    def args() -> StaticSiteArgs:
        theirs = aws.cloudfront.Distribution(
            "theirs",
            enabled=True,
            origins=[{"origin_id": "app", "domain_name": LOAD_BALANCER_DNS}],
            default_cache_behavior={
                "target_origin_id": "app",
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ["GET", "HEAD"],
                "cached_methods": ["GET", "HEAD"],
            },
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate={"cloudfront_default_certificate": True},
        )
        return StaticSiteArgs(distribution=theirs)

    recording = record_args(args)
    (distribution,) = recording.find(DISTRIBUTION)
    assert distribution.parent != recording.one(COMPONENT, "web").urn
    host = recording.outputs["distribution_domain_name"]
    assert host.endswith(".cloudfront.net")
    assert recording.outputs["distribution_id"] == "theirs-id"
    assert recording.outputs["site_url"] == f"https://{host}"
    assert recording.outputs["static_url"] == f"https://{host}/static/"
    reads = [s for s in bucket_policy(recording)["Statement"] if s["Action"] == "s3:GetObject"]
    assert reads[0]["Condition"] == {
        "StringEquals": {"AWS:SourceArn": recording.outputs["distribution_arn"]}
    }


def test_with_bucket_and_distribution_brought_nothing_is_created(lookups: None) -> None:
    recording = record_args(
        lambda: StaticSiteArgs(bucket=THEIR_BUCKET, distribution=THEIR_DISTRIBUTION)
    )
    assert children_types(recording) == set()
    assert recording.outputs["bucket_name"] == THEIR_BUCKET
    assert recording.outputs["site_url"] == "https://dtheirs123456.cloudfront.net"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({}, r"StaticSiteArgs.load_balancer_origin is required unless distribution"),
        (
            {"distribution": THEIR_DISTRIBUTION, "load_balancer_origin": ALB_ORIGIN},
            r"StaticSiteArgs.load_balancer_origin is for the component's own distribution",
        ),
        (
            {
                "distribution": THEIR_DISTRIBUTION,
                "media": MediaOrigin(domain_name="m.s3.amazonaws.com", url_path="/media/"),
            },
            r"StaticSiteArgs.media is for the component's own distribution",
        ),
    ],
)
def test_arguments_that_do_not_fit_are_one_line_naming_the_argument(
    args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message) as raised:
        StaticSiteArgs(**args)
    assert "\n" not in str(raised.value)
