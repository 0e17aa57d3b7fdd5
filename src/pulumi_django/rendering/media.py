"""What the stack renders for uploaded media: the app's `MEDIA_*` variables on each target, the
media bucket's policy, and the headers media files are served with.

Pure: plain values in, plain values out, so tests lint the policy and validate the proxy configs
with the real tools. docs/media.md explains the choices.
"""

from __future__ import annotations

import json

from pulumi_django.config.media import MediaConfig

from .iam_policies import VERSION
from .static_bucket_policy import cloudfront_reads, deny_insecure_transport

# Local Docker: where the replicas write uploads (MEDIA_ROOT) and where the proxy reads them.
LOCAL_MEDIA_ROOT = "/app/media"
LOCAL_MEDIA_MOUNT = "/srv/pulumi-django/media"

# Uploads are served from the site's own origin, so an uploaded HTML or SVG file could run
# script as the site. This policy lets a browser show images, video, audio and PDFs (Chrome's
# viewer needs `object-src` and inline styles) and nothing that executes.
MEDIA_CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; "
    "object-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
# A file is only ever what its Content-Type says (no sniffing a .txt into HTML).
MEDIA_RESPONSE_HEADERS = {
    "Content-Security-Policy": MEDIA_CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
}


def aws_media_environment(
    media: MediaConfig, *, bucket: str, region: str, site_url: str
) -> dict[str, str]:
    """The app's media settings on AWS (django-storages' S3 backend); empty when media is off.

    MEDIA_URL is absolute, like STATIC_URL there: public files are `MEDIA_URL + name` on the
    site's own distribution; private ones get pre-signed S3 URLs instead."""
    if not media.enabled:
        return {}
    return {
        "MEDIA_URL": site_url.rstrip("/") + media.url_path,
        "MEDIA_BUCKET": bucket,
        "MEDIA_LOCATION": media.location,
        "MEDIA_REGION": region,
        "MEDIA_ACCESS": media.access,
        "MEDIA_URL_EXPIRY_SECONDS": str(media.signed_url_expiry_seconds),
    }


def local_media_environment(media: MediaConfig, media_root: str) -> dict[str, str]:
    """The app's media settings on local Docker and in the rehearsal (FileSystemStorage in
    `media_root`, served by the proxy under `urlPath`); empty when media is off."""
    if not media.enabled:
        return {}
    return {"MEDIA_URL": media.url_path, "MEDIA_ROOT": media_root}


def media_bucket_policy(bucket_arn: str, location: str, distribution_arn: str | None) -> str:
    """TLS only; with `distribution_arn` (public media), that distribution alone may read the
    files under `location` (`static_bucket_policy.cloudfront_reads`). The app's own access is
    its task role's (`iam_policies.media_storage_policy`), not this policy's."""
    statements = [deny_insecure_transport(bucket_arn)]
    if distribution_arn is not None:
        statements += cloudfront_reads(
            bucket_arn,
            f"{location}/*",
            distribution_arn,
            read_sid="CloudFrontReadsMedia",
            list_sid="CloudFrontSeesMissingMediaAs404",
        )
    return json.dumps({"Version": VERSION, "Statement": statements}, indent=2)
