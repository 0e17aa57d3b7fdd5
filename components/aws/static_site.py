"""StaticSite: a private S3 bucket of static files and one CloudFront distribution for the site.

One distribution serves the app (default behaviour -> load balancer, never cached), the static
files (`/<prefix>*` -> bucket, cached for a year) and public media (`/media/*` -> the media
bucket, see MediaStorage), so pages and their assets share one origin for the browser (no CORS)
and the bucket holds every kept release's files: a page from an old server and one from a new
server both find their hashed assets during a rolling update.

The load balancer is internal: the distribution reaches it through a CloudFront VPC origin
(LoadBalancer component), never across the internet, and sends a secret `X-Origin-Verify`
header that the ALB listener rule requires (the same secret is passed there), as a second lock.

No error the app answers is cached: the distribution's error caching minimum TTL is 0 for every
status code CloudFront would otherwise cache for 10 s (`APP_ERROR_CODES`). CloudFront sets that
TTL per distribution, not per behaviour, and S3 puts no Cache-Control on a missing key's 404, so
a missing static file is not cached either: the next request after a publish finds it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import ComponentArgsError, arg, brought_attributes, check_name
from pulumi_django.components.aws.load_balancer import ORIGIN_VERIFY_HEADER, LoadBalancerOrigin
from pulumi_django.components.aws.media_storage import MediaOrigin
from pulumi_django.components.aws.private_bucket import (
    BucketControls,
    bucket_policy,
    bucket_ref,
    lock_down_bucket,
)
from pulumi_django.config.domain import DomainConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.rendering.log_bucket_policy import CLOUDFRONT_LOG_REGION
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
# Standard logs (v2) in the format of the legacy standard logs (W3C extended, tab-separated).
ACCESS_LOGS_FORMAT = "w3c"
# Every status code a custom error response can name (CloudFront caches the 4xx/5xx among them
# for 10 s by default when no error caching minimum TTL is set): all get 0, so no viewer is
# ever served another's error, nor a 502/503 of a rollout after it ended.
APP_ERROR_CODES = (400, 403, 404, 405, 414, 416, 500, 501, 502, 503, 504)


@dataclass(frozen=True, kw_only=True)
class StaticSiteArgs:
    """The static section, the site's domain, the origins the distribution sends requests to,
    and the bucket and distribution of yours it uses."""

    config: StaticConfig = arg(
        "The static section: key prefix, kept releases, price class, WAF. "
        "Default: the section's defaults.",
        default_factory=StaticConfig,
    )
    domain: DomainConfig | None = arg(
        "The site's domain and its us-east-1 certificate, the distribution's alias. Default: "
        "the site answers on the distribution's own `*.cloudfront.net` name.",
        default=None,
    )
    load_balancer_origin: LoadBalancerOrigin | None = arg(
        "The ALB behind the default behaviour: its DNS name, the secret it requires in "
        f"`{ORIGIN_VERIFY_HEADER}`, whether it serves HTTPS, and the CloudFront VPC origin the "
        "distribution reaches it through, inside the VPC (LoadBalancer's `origin`; "
        "docs/static-files.md). Required unless `distribution` is brought.",
        default=None,
    )
    media: MediaOrigin | None = arg(
        "Public media, served under its URL path from its bucket through the same origin "
        "access control (MediaStorage's `public_origin`, docs/media.md). Default: none. Not "
        "with a brought `distribution`, which serves public media itself.",
        default=None,
    )
    bucket: aws.s3.Bucket | pulumi.Input[str] | None = arg(
        "An existing bucket for the static files (object or name; a name is looked up). The "
        "component then sets nothing on it: public access block, encryption and policy stay "
        "its owner's, and `bucket_policy_document` is what its policy must allow. Keep it on "
        "SSE-S3 (Origin Access Control cannot read objects under the AWS managed KMS key, and "
        "the publisher compares ETags as MD5s). Default: a private, encrypted bucket.",
        default=None,
    )
    distribution: aws.cloudfront.Distribution | pulumi.Input[str] | None = arg(
        "An existing CloudFront distribution (object or id; an id is looked up). The component "
        "then creates neither a distribution nor its origin access control; yours must send "
        f"the default behaviour to the ALB through a VPC origin, uncached, with every method "
        f"and the `{ORIGIN_VERIFY_HEADER}` header, `/<prefix>*` to the bucket through an origin "
        "access control, and cache no error (docs/static-files.md). Default: one distribution "
        "for the whole site.",
        default=None,
    )
    access_logs_destination: pulumi.Input[str] | None = arg(
        "S3 ARN (bucket, optionally `/prefix`) the distribution's standard logs (v2) are "
        "delivered to, by a CloudWatch Logs delivery made in us-east-1 (LogBucket's "
        "`cloudfront_logs_destination`, whose policy admits it); also for a brought "
        "distribution, which must have no other v2 delivery (one source per distribution). "
        "Default: None, no access logs.",
        default=None,
    )
    protect: bool = arg(
        "Pulumi's `protect` on the bucket created here: `pulumi destroy`, removing it or a "
        "change that replaces it stops with an error until a `pulumi up` turned this off "
        "(`django:protect`). Default: True.",
        default=True,
    )

    def __post_init__(self) -> None:
        if self.distribution is None:
            if self.load_balancer_origin is None:
                raise ComponentArgsError(
                    "StaticSiteArgs.load_balancer_origin is required unless distribution is given"
                )
            return
        for field in ("load_balancer_origin", "media"):
            if getattr(self, field) is not None:
                raise ComponentArgsError(
                    f"StaticSiteArgs.{field} is for the component's own distribution; with a "
                    "brought distribution, route it on that distribution yourself"
                )


class StaticSite(pulumi.ComponentResource):
    """The bucket, its access rules and the distribution in front of the whole site.

    Each child is an attribute: `bucket`, `bucket_controls` (public access block, encryption,
    ownership controls) and `bucket_policy`, all None when the bucket is brought;
    `origin_access_control` and `distribution`, None when the distribution is brought;
    `media_headers_policy`, set when the component's distribution serves public media;
    `log_delivery_source`, `log_delivery_destination` and `log_delivery` (standard logging v2,
    in us-east-1), set with `access_logs_destination`."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    bucket_policy_document: pulumi.Output[str]
    distribution_id: pulumi.Output[str]
    distribution_arn: pulumi.Output[str]
    distribution_domain_name: pulumi.Output[str]
    site_url: pulumi.Output[str]
    static_url: pulumi.Output[str]
    log_delivery_source: aws.cloudwatch.LogDeliverySource | None
    log_delivery_destination: aws.cloudwatch.LogDeliveryDestination | None
    log_delivery: aws.cloudwatch.LogDelivery | None
    bucket: aws.s3.Bucket | None
    bucket_controls: BucketControls | None
    bucket_policy: aws.s3.BucketPolicy | None
    origin_access_control: aws.cloudfront.OriginAccessControl | None
    distribution: aws.cloudfront.Distribution | None
    media_headers_policy: aws.cloudfront.ResponseHeadersPolicy | None

    def __init__(
        self, name: str, args: StaticSiteArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("StaticSite", name)
        super().__init__("pulumi-django:static:StaticSite", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config, domain = args.config, args.domain

        if args.bucket is None:
            # force_destroy stays off: a destroy must not silently delete files running tasks
            # serve.
            self.bucket = aws.s3.Bucket(
                f"{name}-static",
                force_destroy=False,
                opts=pulumi.ResourceOptions.merge(
                    child, pulumi.ResourceOptions(protect=args.protect)
                ),
            )
            self.bucket_controls = lock_down_bucket(f"{name}-static", self.bucket, child)
            bucket = bucket_ref(self.bucket, self)
        else:
            self.bucket, self.bucket_controls = None, None
            bucket = bucket_ref(args.bucket, self)

        self.media_headers_policy = None
        if args.distribution is not None:
            self.origin_access_control, self.distribution = None, None
            self.distribution_id, self.distribution_arn, self.distribution_domain_name = (
                brought_attributes(
                    args.distribution,
                    ("id", "arn", "domain_name"),
                    lambda distribution_id: aws.cloudfront.get_distribution_output(
                        id=distribution_id, opts=pulumi.InvokeOutputOptions(parent=self)
                    ),
                )
            )
        elif args.load_balancer_origin is not None:  # always, without a brought distribution
            self.origin_access_control = aws.cloudfront.OriginAccessControl(
                f"{name}-static",
                description=f"{name}: CloudFront reads the static files bucket",
                origin_access_control_origin_type="s3",
                signing_behavior="always",
                signing_protocol="sigv4",
                opts=child,
            )
            self.distribution = self._distribution(
                name,
                args,
                args.load_balancer_origin,
                bucket.regional_domain_name,
                self.origin_access_control,
                child,
            )
            self.distribution_id = self.distribution.id
            self.distribution_arn = self.distribution.arn
            self.distribution_domain_name = self.distribution.domain_name

        self._access_logs(name, args.access_logs_destination, child)
        self.bucket_policy_document = pulumi.Output.all(bucket.arn, self.distribution_arn).apply(
            lambda arns: static_bucket_policy(arns[0], arns[1], config.prefix)
        )
        self.bucket_policy = (
            bucket_policy(
                f"{name}-static",
                self.bucket,
                self.bucket_controls,
                self.bucket_policy_document,
                child,
            )
            if self.bucket is not None and self.bucket_controls is not None
            else None
        )

        self.bucket_name = bucket.name
        self.bucket_arn = bucket.arn
        self.site_url = (
            pulumi.Output.from_input(f"https://{domain.name}")
            if domain
            else self.distribution_domain_name.apply(lambda host: f"https://{host}")
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

    def _access_logs(
        self, name: str, destination: pulumi.Input[str] | None, child: pulumi.ResourceOptions
    ) -> None:
        """Standard logging (v2): a delivery source for the distribution, a destination for the
        S3 ARN and the delivery between them, all three in us-east-1, where CloudFront's
        deliveries are made (the bucket may be in any region). Chosen over legacy logging,
        which needs ACLs turned back on for the whole bucket (and a grant to the
        `awslogsdelivery` account); v2 writes as the log delivery service that the bucket
        policy names, with ACLs off. The log format is W3C, the legacy logs' own."""
        self.log_delivery_source = self.log_delivery_destination = self.log_delivery = None
        if destination is None:
            return
        # Named after the distribution (unique in the account, as the names must be in
        # us-east-1), as the console names them.
        named = self.distribution_id.apply(lambda distribution_id: f"cloudfront-{distribution_id}")
        source = self.log_delivery_source = aws.cloudwatch.LogDeliverySource(
            f"{name}-cdn-logs",
            name=named,
            log_type="ACCESS_LOGS",
            resource_arn=self.distribution_arn,
            region=CLOUDFRONT_LOG_REGION,
            opts=child,
        )
        target = self.log_delivery_destination = aws.cloudwatch.LogDeliveryDestination(
            f"{name}-cdn-logs",
            name=named.apply(lambda source_name: f"{source_name}-s3"),
            output_format=ACCESS_LOGS_FORMAT,
            delivery_destination_configuration={"destination_resource_arn": destination},
            region=CLOUDFRONT_LOG_REGION,
            opts=child,
        )
        # No s3_delivery_configuration: the prefix is in the destination's ARN, and a suffix
        # path set here is rewritten by AWS on creation (terraform-provider-aws #46328).
        self.log_delivery = aws.cloudwatch.LogDelivery(
            f"{name}-cdn-logs",
            delivery_source_name=source.name,
            delivery_destination_arn=target.arn,
            region=CLOUDFRONT_LOG_REGION,
            opts=child,
        )

    def _distribution(
        self,
        name: str,
        args: StaticSiteArgs,
        load_balancer: LoadBalancerOrigin,
        bucket_domain_name: pulumi.Output[str],
        access_control: aws.cloudfront.OriginAccessControl,
        child: pulumi.ResourceOptions,
    ) -> aws.cloudfront.Distribution:
        """One distribution for the site: the app uncached from the ALB through its VPC origin,
        the static files cached from the bucket, public media from its bucket; no error cached."""
        config, domain = args.config, args.domain
        media_origins, media_behaviours = self._media(name, args.media, access_control, child)
        return aws.cloudfront.Distribution(
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
                    "domain_name": load_balancer.dns_name,
                    # Into the VPC, to the internal ALB; the VPC origin holds the protocol
                    # (HTTPS with the ALB's certificate, else HTTP inside the VPC).
                    "vpc_origin_config": {
                        "vpc_origin_id": load_balancer.vpc_origin_id,
                        "origin_read_timeout": ORIGIN_READ_TIMEOUT_SECONDS,
                    },
                    "custom_headers": [
                        {
                            "name": ORIGIN_VERIFY_HEADER,
                            "value": pulumi.Output.secret(load_balancer.origin_verify_secret),
                        }
                    ],
                },
                {
                    "origin_id": BUCKET_ORIGIN,
                    "domain_name": bucket_domain_name,
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
            # Without these, CloudFront caches a 4xx/5xx for 10 s for every viewer: a 403 of one
            # user, a 502 of a rollout. Per distribution: a missing static file (published a
            # moment later) is not cached either.
            custom_error_responses=[
                {"error_code": code, "error_caching_min_ttl": 0} for code in APP_ERROR_CODES
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
            opts=child.merge(pulumi.ResourceOptions(additional_secret_outputs=["origins"])),
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
        headers = self.media_headers_policy = aws.cloudfront.ResponseHeadersPolicy(
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
