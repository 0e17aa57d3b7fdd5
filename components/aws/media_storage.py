"""MediaStorage: the private, versioned S3 bucket the app's uploads go to (django-storages).

Uploads are user data, unlike static files, which every release can publish again. So media has
a bucket of its own, which the static-release pruning never sees (it only ever lists and deletes
in the static bucket): encrypted, versioned (an overwritten or deleted upload stays restorable
for `noncurrentVersionDays`), never public. The app reads and writes it with its task role
(`iam_policies.media_storage_policy`); browsers get either pre-signed URLs (private media) or
the site's own CloudFront distribution under `urlPath`, reading through Origin Access Control
(public media). docs/media.md explains the choices and their cost.

The bucket policy names the distribution, and the distribution names this bucket as an origin,
so the policy comes last: call `attach_policy` once the distribution is declared.

A brought bucket is the user's: the component sets nothing on it (versioning, lifecycle, public
access block, encryption, policy) and only tells the app and the distribution where it is;
`policy_document` is what its policy must allow.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import ComponentArgsError, arg, check_name
from pulumi_django.components.aws.private_bucket import (
    BucketControls,
    bucket_policy,
    bucket_ref,
    lock_down_bucket,
)
from pulumi_django.config.media import MediaConfig
from pulumi_django.rendering.media import media_bucket_policy

# Parts of a multipart upload that never completed (a crashed request) cost storage until
# aborted; a week is longer than any upload takes.
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


@dataclass(frozen=True)
class MediaOrigin:
    """What the distribution needs to serve public media: the bucket and the URL path."""

    domain_name: pulumi.Input[str]
    url_path: str


@dataclass(frozen=True, kw_only=True)
class MediaStorageArgs:
    """The media section, and the bucket of yours the uploads go to."""

    config: MediaConfig = arg(
        "The media section: access (private or public), URL path, version expiry, what a "
        "destroy does. Default: the section's defaults.",
        default_factory=MediaConfig,
    )
    bucket: aws.s3.Bucket | pulumi.Input[str] | None = arg(
        "An existing bucket for the uploads (object or name; a name is looked up). The "
        "component then sets nothing on it (versioning, lifecycle rules, public access block, "
        "encryption and policy stay its owner's; `policy_document` is what its policy must "
        "allow), and `retainOnDelete`/`forceDestroy` do not apply. Default: a private, "
        "encrypted, versioned bucket.",
        default=None,
    )
    kms_key_arn: pulumi.Input[str] | None = arg(
        "A customer-managed KMS key's ARN (`StackKey.arn`) the bucket created here encrypts "
        "new uploads with (SSE-KMS, with an S3 Bucket Key); uploads already stored keep their "
        "encryption. Public media then needs the key policy to let CloudFront decrypt "
        "(`StackKeyArgs.cloudfront_reads`). Default: None, SSE-S3.",
        default=None,
    )
    protect: bool = arg(
        "Pulumi's `protect` on the bucket created here: `pulumi destroy`, turning media off or "
        "a change that replaces the bucket stops with an error until a `pulumi up` turned this "
        "off (`django:protect`); `retainOnDelete` then says what a deletion does. Default: True.",
        default=True,
    )


class MediaStorage(pulumi.ComponentResource):
    """The media bucket and its settings; `public_origin` is set when media is public.

    Each child is an attribute, all None when the bucket is brought: `bucket`,
    `bucket_controls` (public access block, encryption, ownership controls), `versioning`,
    `lifecycle`, and `bucket_policy` once `attach_policy` declared it."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    location: str
    public_origin: MediaOrigin | None
    bucket: aws.s3.Bucket | None
    bucket_controls: BucketControls | None
    versioning: aws.s3.BucketVersioning | None
    lifecycle: aws.s3.BucketLifecycleConfiguration | None
    bucket_policy: aws.s3.BucketPolicy | None

    def __init__(
        self, name: str, args: MediaStorageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("MediaStorage", name)
        super().__init__("pulumi-django:media:MediaStorage", name, None, opts)
        config = args.config
        # Retained: turning media off or destroying the stack leaves the uploads in place, and
        # with them what protects them (deleting BucketVersioning would suspend versioning; the
        # lifecycle, the public access block and the policy would go).
        self._child = pulumi.ResourceOptions(parent=self, retain_on_delete=config.retain_on_delete)
        self._name = name
        self.bucket_policy = None

        if args.bucket is None:
            self.bucket = aws.s3.Bucket(
                f"{name}-media",
                force_destroy=config.force_destroy,
                opts=pulumi.ResourceOptions.merge(
                    self._child, pulumi.ResourceOptions(protect=args.protect)
                ),
            )
            self.bucket_controls = lock_down_bucket(
                f"{name}-media", self.bucket, self._child, kms_key_arn=args.kms_key_arn
            )
            self.versioning, self.lifecycle = self._versions(name, self.bucket, config)
            bucket = bucket_ref(self.bucket, self)
        else:
            self.bucket = self.bucket_controls = self.versioning = self.lifecycle = None
            bucket = bucket_ref(args.bucket, self)

        self.bucket_name = bucket.name
        self.bucket_arn = bucket.arn
        self.location = config.location
        self.public_origin = (
            MediaOrigin(bucket.regional_domain_name, config.url_path)
            if config.access == "public"
            else None
        )
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "location": self.location,
            }
        )

    def _versions(
        self, name: str, bucket: aws.s3.Bucket, config: MediaConfig
    ) -> tuple[aws.s3.BucketVersioning, aws.s3.BucketLifecycleConfiguration]:
        """Versioning, and the rules that expire what it keeps (and abandoned uploads)."""
        versioning = aws.s3.BucketVersioning(
            f"{name}-media",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=self._child,
        )
        lifecycle = aws.s3.BucketLifecycleConfiguration(
            f"{name}-media",
            bucket=bucket.id,
            # No filter: each rule applies to the whole bucket, which holds media alone.
            rules=[
                {
                    "id": "expire-previous-versions",
                    "status": "Enabled",
                    "noncurrent_version_expiration": {
                        "noncurrent_days": config.noncurrent_version_days
                    },
                    # A delete marker with no version left behind it is removed too.
                    "expiration": {"expired_object_delete_marker": True},
                },
                {
                    "id": "abort-incomplete-uploads",
                    "status": "Enabled",
                    "abort_incomplete_multipart_upload": {
                        "days_after_initiation": ABORT_INCOMPLETE_UPLOADS_DAYS
                    },
                },
            ],
            # Rules about noncurrent versions take effect on a versioned bucket.
            opts=self._child.merge(pulumi.ResourceOptions(depends_on=[versioning])),
        )
        return versioning, lifecycle

    def policy_document(
        self, distribution_arn: pulumi.Input[str] | None = None
    ) -> pulumi.Output[str]:
        """The bucket policy: TLS only and, when media is public, reads by the distribution
        `distribution_arn`, the one `public_origin` was given to."""
        if self.public_origin is not None and distribution_arn is None:
            raise ComponentArgsError(
                "public media needs the ARN of the distribution that serves it"
            )
        reader = distribution_arn if self.public_origin is not None else None
        return pulumi.Output.all(self.bucket_arn, reader).apply(
            lambda arns: media_bucket_policy(arns[0], self.location, arns[1])
        )

    def attach_policy(
        self, distribution_arn: pulumi.Input[str] | None = None
    ) -> aws.s3.BucketPolicy | None:
        """Declares `policy_document(distribution_arn)` as the bucket's policy (`bucket_policy`).
        Call it once, after declaring the distribution; a private bucket's policy names none
        (and waits for none). A brought bucket gets no policy: None."""
        document = self.policy_document(distribution_arn)
        if self.bucket is None or self.bucket_controls is None:
            return None
        self.bucket_policy = bucket_policy(
            f"{self._name}-media", self.bucket, self.bucket_controls, document, self._child
        )
        return self.bucket_policy
