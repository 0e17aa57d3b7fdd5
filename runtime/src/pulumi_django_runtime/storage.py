"""Uploaded media on S3: django-storages' S3Storage, with URLs under MEDIA_URL when public.

Imported by Django only when STORAGES names it (MEDIA_BUCKET is set), so the kit itself imports
without django-storages or boto3.
"""

from __future__ import annotations

from typing import Any

from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class MediaStorage(S3Storage):
    """S3Storage plus one option, `public_url`: when set, a file's URL is `public_url` + its
    name (the key without `location`), e.g. `/media/photos/a.jpg` for the key
    `media/photos/a.jpg`, which the site's CloudFront distribution serves from the private
    bucket. django-storages' `custom_domain` cannot say this: it keeps the location in the
    path and always makes an absolute URL. Without `public_url`, S3Storage's own URLs
    (pre-signed when `querystring_auth` is on)."""

    def __init__(self, **settings: Any) -> None:
        self.public_url: str | None = settings.pop("public_url", None)
        super().__init__(**settings)

    def url(
        self,
        name: str,
        parameters: dict[str, Any] | None = None,
        expire: int | None = None,
        http_method: str | None = None,
    ) -> str:
        if self.public_url is None:
            return str(super().url(name, parameters, expire, http_method))
        return f"{self.public_url}{filepath_to_uri(clean_name(name)).lstrip('/')}"
