"""The controls every bucket of the stack gets (no public access, SSE-S3, no ACLs), the policy
that waits for them, and what a component reads of a bucket, created or brought.

Helpers, not a component: the resources are children of the component that owns the bucket,
named after it, so their URNs are those of the bucket's component.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import brought_attributes


@dataclass(frozen=True)
class BucketControls:
    """The resources that lock a bucket down, exposed by the component that owns the bucket.
    A bucket policy naming CloudFront must wait for `public_access_block`."""

    public_access_block: aws.s3.BucketPublicAccessBlock
    encryption: aws.s3.BucketServerSideEncryptionConfiguration
    ownership_controls: aws.s3.BucketOwnershipControls


def lock_down_bucket(
    resource_name: str,
    bucket: aws.s3.Bucket,
    opts: pulumi.ResourceOptions,
    kms_key_arn: pulumi.Input[str] | None = None,
) -> BucketControls:
    """Blocks every form of public access, encrypts with SSE-S3 and turns ACLs off (the account
    owns every object, whoever wrote it). Only for a bucket the component creates: a bucket the
    user brings keeps the controls its owner gave it.

    SSE-S3 rather than the AWS managed KMS key: CloudFront's Origin Access Control cannot decrypt
    objects under that key, and SSE-S3 keeps an object's ETag equal to its MD5, which the static
    publisher compares. A bucket whose objects need no such comparison (media) may instead be
    given the stack's customer-managed key (`kms_key_arn`): SSE-KMS with an S3 Bucket Key,
    which cuts S3's requests to KMS to about one per bucket key rather than one per object."""
    return BucketControls(
        public_access_block=aws.s3.BucketPublicAccessBlock(
            resource_name,
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=opts,
        ),
        encryption=aws.s3.BucketServerSideEncryptionConfiguration(
            resource_name,
            bucket=bucket.id,
            rules=[
                {"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}
                if kms_key_arn is None
                else {
                    "apply_server_side_encryption_by_default": {
                        "sse_algorithm": "aws:kms",
                        "kms_master_key_id": kms_key_arn,
                    },
                    "bucket_key_enabled": True,
                }
            ],
            opts=opts,
        ),
        ownership_controls=aws.s3.BucketOwnershipControls(
            resource_name,
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            opts=opts,
        ),
    )


@dataclass(frozen=True)
class BucketRef:
    """What the components read of a bucket, whether they created it or the user brought it."""

    name: pulumi.Output[str]
    arn: pulumi.Output[str]
    regional_domain_name: pulumi.Output[str]


def bucket_ref(bucket: aws.s3.Bucket | pulumi.Input[str], parent: pulumi.Resource) -> BucketRef:
    """A bucket object's own outputs, or a bucket name's looked up (`aws.s3.get_bucket`)."""
    name, arn, regional_domain_name = brought_attributes(
        bucket,
        ("bucket", "arn", "bucket_regional_domain_name"),
        lambda bucket_name: aws.s3.get_bucket_output(
            bucket=bucket_name, opts=pulumi.InvokeOutputOptions(parent=parent)
        ),
    )
    return BucketRef(name=name, arn=arn, regional_domain_name=regional_domain_name)


def bucket_policy(
    resource_name: str,
    bucket: aws.s3.Bucket,
    controls: BucketControls,
    policy: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> aws.s3.BucketPolicy:
    """The policy of a bucket the component created (and locked down with `controls`),
    declared after its public access block: with the block in place first, S3 judges the
    policy as intended."""
    return aws.s3.BucketPolicy(
        resource_name,
        bucket=bucket.id,
        policy=policy,
        opts=opts.merge(pulumi.ResourceOptions(depends_on=[controls.public_access_block])),
    )
