"""Uploaded media (FileField, ImageField, Wagtail images and documents): user data, kept apart
from the static files of releases, and served under `urlPath` of the same site."""

from typing import Literal

from pydantic import Field, model_validator

from .base import Section

# What the stack tells the app about media (docs/media.md); an app.environment entry may not
# set them. MEDIA_ROOT is set on the local targets only, the others on AWS only.
MEDIA_VARIABLES = frozenset(
    {
        "MEDIA_URL",
        "MEDIA_ROOT",
        "MEDIA_BUCKET",
        "MEDIA_LOCATION",
        "MEDIA_REGION",
        "MEDIA_ACCESS",
        "MEDIA_URL_EXPIRY_SECONDS",
    }
)
# AWS signs with Signature Version 4, whose pre-signed URLs live at most 7 days.
MAX_SIGNED_URL_SECONDS = 7 * 24 * 3600


class MediaConfig(Section):
    """Where uploads go: a private, versioned S3 bucket on AWS, a named volume on local Docker."""

    enabled: bool = Field(
        True,
        description="Store uploads: an S3 bucket (aws) or a Docker volume (local), served "
        "under `urlPath`; off: no storage, and the app gets no `MEDIA_*` variables.",
    )
    access: Literal["private", "public"] = Field(
        "private",
        description="`private`: the app hands out S3 pre-signed URLs that expire; `public`: "
        "anyone with a file's URL reads it through CloudFront under `urlPath` (the bucket stays "
        "private, CloudFront signs with OAC). The local targets always serve under `urlPath`.",
    )
    url_path: str = Field(
        "/media/",
        pattern=r"^/([a-z0-9][a-z0-9._-]*/)+$",
        description="URL path of media under the site (`MEDIA_URL`), e.g. `/media/`; "
        "its segments are also the key prefix of the files in the bucket.",
    )
    signed_url_expiry_seconds: int = Field(
        3600,
        ge=60,
        le=MAX_SIGNED_URL_SECONDS,
        description="Lifetime of a private file's pre-signed URL; a URL signed with the task's "
        "temporary credentials stops working sooner if they expire first.",
    )
    noncurrent_version_days: int = Field(
        30,
        ge=1,
        le=3650,
        description="Days an overwritten or deleted upload's previous version is kept "
        "(restorable) before S3 deletes it for good.",
    )
    force_destroy: bool = Field(
        False,
        description="Let `pulumi destroy` delete the bucket with every upload and version in "
        "it; off: deleting a bucket that holds anything fails.",
    )
    retain_on_delete: bool = Field(
        True,
        description="When the stack is destroyed or media turned off, leave the bucket and its "
        "uploads in the account (Pulumi forgets it) instead of deleting it.",
    )

    @model_validator(mode="after")
    def _destroy_is_consistent(self) -> "MediaConfig":
        if self.force_destroy and self.retain_on_delete:
            raise ValueError(
                "forceDestroy: true has no effect while retainOnDelete is true (Pulumi never "
                "deletes a retained bucket); set retainOnDelete: false as well"
            )
        return self

    @property
    def location(self) -> str:
        """The key prefix in the bucket (`MEDIA_LOCATION`): CloudFront maps the path
        `/media/x` to the key `media/x`, so the prefix is the URL path without its slashes."""
        return self.url_path.strip("/")
