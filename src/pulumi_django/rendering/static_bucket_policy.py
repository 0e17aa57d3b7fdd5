"""Bucket policies for buckets CloudFront reads: TLS only, and read access for one distribution."""

from __future__ import annotations

import json
from typing import Any

from .iam_policies import VERSION

CLOUDFRONT_SERVICE = "cloudfront.amazonaws.com"


def deny_insecure_transport(bucket_arn: str) -> dict[str, Any]:
    """Refuses every request to the bucket that is not made over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def cloudfront_reads(
    bucket_arn: str, keys: str, distribution_arn: str, *, read_sid: str, list_sid: str
) -> list[dict[str, Any]]:
    """`distribution_arn` alone, signing through Origin Access Control, may read the objects
    matching `keys` and list the bucket.

    Without s3:ListBucket, S3 answers a missing file with 403 instead of 404, and a 404 is what
    CloudFront's short error caching is for. Listing is not reachable through the distribution,
    which forwards only the paths of its behaviour to the bucket, as object keys, and no query
    string."""
    from_distribution = {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    cloudfront = {"Service": CLOUDFRONT_SERVICE}
    return [
        {
            "Sid": read_sid,
            "Effect": "Allow",
            "Principal": cloudfront,
            "Action": "s3:GetObject",
            "Resource": f"{bucket_arn}/{keys}",
            "Condition": from_distribution,
        },
        {
            "Sid": list_sid,
            "Effect": "Allow",
            "Principal": cloudfront,
            "Action": "s3:ListBucket",
            "Resource": bucket_arn,
            "Condition": from_distribution,
        },
    ]


def static_bucket_policy(bucket_arn: str, distribution_arn: str, prefix: str) -> str:
    """Only `distribution_arn` reads the static files under `prefix` (not the release manifests
    beside them)."""
    statements = [
        deny_insecure_transport(bucket_arn),
        *cloudfront_reads(
            bucket_arn,
            f"{prefix}*",
            distribution_arn,
            read_sid="CloudFrontReadsStaticFiles",
            list_sid="CloudFrontSeesMissingFilesAs404",
        ),
    ]
    return json.dumps({"Version": VERSION, "Statement": statements}, indent=2)
