"""StaticSite: a private S3 bucket of static files and one CloudFront distribution for the site.

One distribution serves the app (default behaviour -> load balancer, never cached), the static
files (`/<prefix>*` -> bucket, cached for a year) and public media (`/media/*` -> the media
bucket, see MediaStorage), so pages and their assets share one origin for the browser (no CORS)
and the bucket holds every kept release's files: a page from an old server and one from a new
server both find their hashed assets during a rolling update.

The load balancer takes traffic only from CloudFront: its security group admits only the
CloudFront origin-facing prefix list (Network component), and the distribution sends a secret
`X-Origin-Verify` header that the ALB listener rule requires (the same secret is passed there).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from pulumi_django.components.aws.load_balancer import ORIGIN_VERIFY_HEADER
from pulumi_django.components.aws.media_storage import MediaOrigin
from pulumi_django.components.aws.network import HTTP_PORT, HTTPS_PORT
from pulumi_django.components.aws.private_bucket import lock_down_bucket
from pulumi_django.config.domain import DomainConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.rendering.media import MEDIA_CONTENT_SECURITY_POLICY
from pulumi_django.rendering.static_bucket_policy import static_bucket_policy

LOAD_BALANCER_ORIGIN = "load-balancer"
BUCKET_ORIGIN = "static-bucket"
MEDIA_ORIGIN = "media-bucket"
# AWS managed CloudFront policies. Their ids are fixed and documented by AWS, so no lookup
# (and no API call at preview) is needed.
CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # Managed-CachingDisabled
CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # Managed-CachingOptimized
ALL_VIEWER = "216adef6-5c7f-47e4-b989-5492eafa07d3"  # Managed-AllViewer (origin request)
SECURITY_HEADERS = "67f7725c-6f97-4210-82d7-5512b31e9d03"  # Managed-SecurityHeadersPolicy (HSTS)
ALL_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE"]
READ_METHODS = ["GET", "HEAD"]
# Public media gets Managed-SecurityHeadersPolicy's headers (less the obsolete X-XSS-Protection)
# and a Content-Security-Policy of its own.
HSTS_SECONDS = 31536000
# CloudFront's longest origin read timeout without a quota increase; the app's own request
# timeout (app.timeoutSeconds) should stay below it.
ORIGIN_READ_TIMEOUT_SECONDS = 60


class StaticSite(pulumi.ComponentResource):
    """The bucket, its access rules and the distribution in front of the whole site."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    distribution_id: pulumi.Output[str]
    distribution_arn: pulumi.Output[str]
    distribution_domain_name: pulumi.Output[str]
    site_url: pulumi.Output[str]
    static_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: StaticConfig,
        domain: DomainConfig | None,
        load_balancer_dns_name: pulumi.Input[str],
        origin_verify_secret: pulumi.Input[str],
        load_balancer_https: bool,
        tags: dict[str, str],
        media: MediaOrigin | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`load_balancer_https`: the ALB has an HTTPS listener (domain.loadBalancerCertificateArn);
        CloudFront then reaches it over HTTPS only, else over HTTP only (docs/static-files.md).
        `media`: public media, served from its bucket under its URL path (docs/media.md)."""
        super().__init__("pulumi-django:static:StaticSite", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # force_destroy stays off: a destroy must not silently delete files running tasks serve.
        bucket = aws.s3.Bucket(f"{name}-static", force_destroy=False, tags=tags, opts=child)
        public_access_block = lock_down_bucket(f"{name}-static", bucket, child)
        access_control = aws.cloudfront.OriginAccessControl(
            f"{name}-static",
            description=f"{name}: CloudFront reads the static files bucket",
            origin_access_control_origin_type="s3",
            signing_behavior="always",
            signing_protocol="sigv4",
            opts=child,
        )
        media_origins, media_behaviours = self._media(name, media, access_control, child)

        distribution = aws.cloudfront.Distribution(
            f"{name}-cdn",
            enabled=True,
            comment=f"{name}: app and static files",
            http_version="http2and3",
            is_ipv6_enabled=True,
            price_class=config.price_class,
            aliases=[domain.name] if domain else None,
            web_acl_id=config.waf_web_acl_arn,
            origins=[
                {
                    "origin_id": LOAD_BALANCER_ORIGIN,
                    "domain_name": load_balancer_dns_name,
                    "custom_origin_config": {
                        "http_port": HTTP_PORT,
                        "https_port": HTTPS_PORT,
                        "origin_protocol_policy": (
                            "https-only" if load_balancer_https else "http-only"
                        ),
                        "origin_ssl_protocols": ["TLSv1.2"],
                        "origin_read_timeout": ORIGIN_READ_TIMEOUT_SECONDS,
                    },
                    "custom_headers": [
                        {
                            "name": ORIGIN_VERIFY_HEADER,
                            "value": pulumi.Output.secret(origin_verify_secret),
                        }
                    ],
                },
                {
                    "origin_id": BUCKET_ORIGIN,
                    "domain_name": bucket.bucket_regional_domain_name,
                    "origin_access_control_id": access_control.id,
                },
                *media_origins,
            ],
            default_cache_behavior={
                "target_origin_id": LOAD_BALANCER_ORIGIN,
                "viewer_protocol_policy": "redirect-to-https",
                "allowed_methods": ALL_METHODS,
                "cached_methods": READ_METHODS,
                "cache_policy_id": CACHING_DISABLED,
                "origin_request_policy_id": ALL_VIEWER,
                "response_headers_policy_id": SECURITY_HEADERS,
                "compress": False,
            },
            ordered_cache_behaviors=[
                {
                    "path_pattern": f"/{config.prefix}*",
                    "target_origin_id": BUCKET_ORIGIN,
                    "viewer_protocol_policy": "redirect-to-https",
                    "allowed_methods": READ_METHODS,
                    "cached_methods": READ_METHODS,
                    "cache_policy_id": CACHING_OPTIMIZED,
                    "response_headers_policy_id": SECURITY_HEADERS,
                    "compress": True,
                },
                *media_behaviours,
            ],
            # A file missing from the bucket (published a moment later) must not stay a 404. (A
            # media file is saved before anyone has its URL: a miss there is a deleted file.)
            custom_error_responses=[
                {"error_code": 404, "error_caching_min_ttl": config.error_caching_seconds}
            ],
            restrictions={"geo_restriction": {"restriction_type": "none"}},
            viewer_certificate=(
                {
                    "acm_certificate_arn": domain.certificate_arn,
                    "ssl_support_method": "sni-only",
                    "minimum_protocol_version": "TLSv1.2_2021",
                }
                if domain
                else {"cloudfront_default_certificate": True}
            ),
            tags=tags,
            opts=child.merge(pulumi.ResourceOptions(additional_secret_outputs=["origins"])),
        )

        aws.s3.BucketPolicy(
            f"{name}-static",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, distribution.arn).apply(
                lambda arns: static_bucket_policy(arns[0], arns[1], config.prefix)
            ),
            # With the public access block in place first, S3 judges the policy as intended.
            opts=child.merge(pulumi.ResourceOptions(depends_on=[public_access_block])),
        )

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.distribution_id = distribution.id
        self.distribution_arn = distribution.arn
        self.distribution_domain_name = distribution.domain_name
        self.site_url = (
            pulumi.Output.from_input(f"https://{domain.name}")
            if domain
            else distribution.domain_name.apply(lambda host: f"https://{host}")
        )
        self.static_url = self.site_url.apply(lambda url: f"{url}/{config.prefix}")
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "distribution_id": self.distribution_id,
                "distribution_arn": self.distribution_arn,
                "distribution_domain_name": self.distribution_domain_name,
                "site_url": self.site_url,
                "static_url": self.static_url,
            }
        )

    def _media(
        self,
        name: str,
        media: MediaOrigin | None,
        access_control: aws.cloudfront.OriginAccessControl,
        child: pulumi.ResourceOptions,
    ) -> tuple[
        list[aws.cloudfront.DistributionOriginArgsDict],
        list[aws.cloudfront.DistributionOrderedCacheBehaviorArgsDict],
    ]:
        """The media bucket's origin (through the same OAC) and its behaviour: cached like any
        S3 file (CachingOptimized honours a file's own Cache-Control, else keeps it a day), with
        a Content-Security-Policy that lets no uploaded HTML or SVG run script as the site."""
        if media is None:
            return [], []
        headers = aws.cloudfront.ResponseHeadersPolicy(
            f"{name}-media",
            comment=f"{name}: security headers of uploaded media",
            security_headers_config={
                "content_security_policy": {
                    "content_security_policy": MEDIA_CONTENT_SECURITY_POLICY,
                    "override": True,
                },
                "content_type_options": {"override": True},
                "frame_options": {"frame_option": "SAMEORIGIN", "override": False},
                "referrer_policy": {
                    "referrer_policy": "strict-origin-when-cross-origin",
                    "override": False,
                },
                "strict_transport_security": {
                    "access_control_max_age_sec": HSTS_SECONDS,
                    "override": False,
                },
            },
            opts=child,
        )
        origin: aws.cloudfront.DistributionOriginArgsDict = {
            "origin_id": MEDIA_ORIGIN,
            "domain_name": media.domain_name,
            "origin_access_control_id": access_control.id,
        }
        behaviour: aws.cloudfront.DistributionOrderedCacheBehaviorArgsDict = {
            "path_pattern": f"{media.url_path}*",
            "target_origin_id": MEDIA_ORIGIN,
            "viewer_protocol_policy": "redirect-to-https",
            "allowed_methods": READ_METHODS,
            "cached_methods": READ_METHODS,
            "cache_policy_id": CACHING_OPTIMIZED,
            "response_headers_policy_id": headers.id,
            "compress": True,
        }
        return [origin], [behaviour]
