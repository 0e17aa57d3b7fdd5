"""The controls every bucket of the stack gets: no public access, SSE-S3, no ACLs.

A helper, not a component: the resources are children of the component that owns the bucket,
named after it, so their URNs are those of the bucket's component.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws


def lock_down_bucket(
    resource_name: str, bucket: aws.s3.Bucket, opts: pulumi.ResourceOptions
) -> aws.s3.BucketPublicAccessBlock:
    """Blocks every form of public access, encrypts with SSE-S3 and turns ACLs off (the account
    owns every object, whoever wrote it). Returns the public access block, which a bucket policy
    naming CloudFront must wait for.

    SSE-S3 rather than the AWS managed KMS key: CloudFront's Origin Access Control cannot decrypt
    objects under that key, and SSE-S3 keeps an object's ETag equal to its MD5, which the static
    publisher compares."""
    public_access_block = aws.s3.BucketPublicAccessBlock(
        resource_name,
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
        opts=opts,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        resource_name,
        bucket=bucket.id,
        rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
        opts=opts,
    )
    aws.s3.BucketOwnershipControls(
        resource_name,
        bucket=bucket.id,
        rule={"object_ownership": "BucketOwnerEnforced"},
        opts=opts,
    )
    return public_access_block
