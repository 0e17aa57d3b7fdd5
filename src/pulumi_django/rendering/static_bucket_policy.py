"""The static-files bucket's policy: TLS only, and read access for one CloudFront distribution."""

from __future__ import annotations

import json

from .iam_policies import VERSION

CLOUDFRONT_SERVICE = "cloudfront.amazonaws.com"


def static_bucket_policy(bucket_arn: str, distribution_arn: str, prefix: str) -> str:
    """Only `distribution_arn`, signing through Origin Access Control, reads the bucket.

    It may read the files under `prefix` (not the release manifests beside them) and list the
    bucket: without s3:ListBucket, S3 answers a missing file with 403 instead of 404, and a 404
    is what CloudFront's short error-caching TTL is set for. Listing is not reachable through the
    distribution, which only forwards `/<prefix>*` paths to the bucket, as object keys."""
    from_distribution = {"StringEquals": {"AWS:SourceArn": distribution_arn}}
    cloudfront = {"Service": CLOUDFRONT_SERVICE}
    document = {
        "Version": VERSION,
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            },
            {
                "Sid": "CloudFrontReadsStaticFiles",
                "Effect": "Allow",
                "Principal": cloudfront,
                "Action": "s3:GetObject",
                "Resource": f"{bucket_arn}/{prefix}*",
                "Condition": from_distribution,
            },
            {
                "Sid": "CloudFrontSeesMissingFilesAs404",
                "Effect": "Allow",
                "Principal": cloudfront,
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": from_distribution,
            },
        ],
    }
    return json.dumps(document, indent=2)
