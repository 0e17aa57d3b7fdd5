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
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.aws.private_bucket import lock_down_bucket
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


class MediaStorage(pulumi.ComponentResource):
    """The media bucket and its settings; `public_origin` is set when media is public."""

    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    location: str
    public_origin: MediaOrigin | None

    def __init__(
        self,
        name: str,
        *,
        config: MediaConfig,
        tags: dict[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:media:MediaStorage", name, None, opts)
        # Retained: turning media off or destroying the stack leaves the uploads in place, and
        # with them what protects them (deleting BucketVersioning would suspend versioning; the
        # lifecycle, the public access block and the policy would go).
        child = pulumi.ResourceOptions(parent=self, retain_on_delete=config.retain_on_delete)
        self._child = child
        self._name = name

        bucket = aws.s3.Bucket(
            f"{name}-media", force_destroy=config.force_destroy, tags=tags, opts=child
        )
        self._public_access_block = lock_down_bucket(f"{name}-media", bucket, child)
        versioning = aws.s3.BucketVersioning(
            f"{name}-media",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
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
            opts=child.merge(pulumi.ResourceOptions(depends_on=[versioning])),
        )

        self._bucket = bucket
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.location = config.location
        self.public_origin = (
            MediaOrigin(bucket.bucket_regional_domain_name, config.url_path)
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

    def attach_policy(
        self, distribution_arn: pulumi.Input[str] | None = None
    ) -> aws.s3.BucketPolicy:
        """The bucket policy: TLS only and, when media is public, reads by the distribution
        `distribution_arn`, the one `public_origin` was given to. Call it once, after declaring
        that distribution; a private bucket's policy names none (and waits for none)."""
        reader = distribution_arn if self.public_origin is not None else None
        if self.public_origin is not None and distribution_arn is None:
            raise ValueError("public media needs the ARN of the distribution that serves it")
        return aws.s3.BucketPolicy(
            f"{self._name}-media",
            bucket=self._bucket.id,
            policy=pulumi.Output.all(self.bucket_arn, reader).apply(
                lambda arns: media_bucket_policy(arns[0], self.location, arns[1])
            ),
            # With the public access block in place first, S3 judges the policy as intended.
            opts=self._child.merge(pulumi.ResourceOptions(depends_on=[self._public_access_block])),
        )
