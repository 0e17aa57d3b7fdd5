"""Static files on S3 behind CloudFront, several releases side by side."""

from pydantic import Field, field_validator

from .base import Section

# The publish engine's layout rules and defaults (`pulumi_django.static_publish`), stated here
# because config never imports the engine; tests/test_static_publish.py holds the two together.
DEFAULT_KEEP = 5
DEFAULT_PREFIX = "static/"
MIN_KEEP = 2
PREFIX_PATTERN = r"^[a-z0-9][a-z0-9._/-]*/$"


class StaticConfig(Section):
    """Keeping old releases' files is what lets old and new servers coexist."""

    keep_releases: int = Field(
        DEFAULT_KEEP,
        ge=MIN_KEEP,
        le=100,
        description="Releases whose files stay published (the current and previous at least).",
    )
    prefix: str = Field(
        DEFAULT_PREFIX,
        pattern=PREFIX_PATTERN,
        description="Key prefix in the bucket and URL path under the site, ending in `/`.",
    )
    price_class: str = Field(
        "PriceClass_100",
        pattern=r"^PriceClass_(100|200|All)$",
        description="CloudFront price class.",
    )
    error_caching_seconds: int | None = Field(
        None,
        description="Retired: CloudFront now caches none of the errors (docs/operations.md); a "
        "stack file that still sets it is refused, naming the key to delete.",
    )
    waf_web_acl_arn: str | None = Field(
        None,
        pattern=r"^arn:aws:wafv2:us-east-1:\d{12}:global/webacl/.+$",
        description="WAFv2 web ACL (scope CLOUDFRONT) to attach.",
    )

    @field_validator("error_caching_seconds")
    @classmethod
    def _error_caching_is_retired(cls, seconds: int | None) -> None:
        """A retired key is refused rather than ignored: whoever set it expected 404s cached."""
        if seconds is not None:
            raise ValueError(
                "retired: CloudFront no longer caches any error, so static 404s are not cached "
                "either (docs/operations.md); delete the key"
            )
