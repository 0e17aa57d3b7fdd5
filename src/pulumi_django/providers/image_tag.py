"""`ImageReleaseTag`: gives each pushed image digest an immutable tag of its own,
`release-<the digest's 64 hex digits>`, right after the push, through the ECR API.

Why: pulumi-docker's `Image` pushes exactly the tag of its `imageName`, which is derived from
the build context so that an unchanged app plans no change. It pushes again whenever it
builds again: on a retried `pulumi up` after a push whose state was not saved, or when its own
context hash (or its version) differs where ours does not; the new build's digest rarely
equals the old one, and ECR refuses any re-push of an immutable tag (the same digest
included). So the push tag (`build-<context hash>`) is mutable (the repository's one
exclusion from tag immutability, `build-*`), and the immutable tag that keeps a release's
image is this one, unique per digest by construction: a re-push moves only the push tag, and
the image a release ran keeps its `release-` tag, counted by the lifecycle rule.

Task definitions keep referencing the digest (`image_ref` passes it through, after the tag is
set). Deleting the resource deletes nothing: the image stays a rollback target until the
repository's lifecycle rule expires it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi.dynamic

from ..errors import PulumiDjangoError
from .aws_session import aws_client, with_session
from .release_task import changed

RELEASE_TAG_PREFIX = "release-"
PUSH_TAG_PREFIX = "build-"
MANIFEST_MEDIA_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]
# A new digest (or another repository) is a new image to tag; nothing else is.
TAG_KEYS = ("image_ref", "repository_name", "registry_id")

ClientFactory = Callable[..., Any]
"""(service, region[, session=aws_session settings]) -> a boto3 client."""


class ImageTagError(PulumiDjangoError):
    """ECR refused the release tag; the message says what the identity needs."""


def release_tag(image_ref: str) -> str:
    """`release-<hex>` of `repository@sha256:<hex>`: one tag per digest, never moved."""
    _, _, digest = image_ref.rpartition("@")
    if not digest.startswith("sha256:"):
        raise ImageTagError(f"image reference {image_ref!r} has no sha256 digest")
    return RELEASE_TAG_PREFIX + digest.removeprefix("sha256:")


def tag_image(ecr: Any, repository: str, registry_id: str | None, image_ref: str) -> str:
    """Adds the release tag to the pushed manifest (ECR's retag: BatchGetImage, then PutImage
    of the same manifest bytes with the new tag); already there is fine. Returns the tag."""
    from botocore.exceptions import BotoCoreError, ClientError

    digest = image_ref.rpartition("@")[2]
    tag = release_tag(image_ref)
    where = {"repositoryName": repository, **({"registryId": registry_id} if registry_id else {})}
    try:
        found = ecr.batch_get_image(
            **where, imageIds=[{"imageDigest": digest}], acceptedMediaTypes=MANIFEST_MEDIA_TYPES
        )
        if not found.get("images"):
            failure: Mapping[str, Any] = next(iter(found.get("failures") or []), {})
            raise ImageTagError(
                f"image {digest} is not in repository {repository}: "
                f"{failure.get('failureCode', '?')} {failure.get('failureReason', '')}".rstrip()
            )
        image = found["images"][0]
        request: dict[str, Any] = {
            **where,
            "imageManifest": image["imageManifest"],
            "imageTag": tag,
            "imageDigest": digest,
        }
        if image.get("imageManifestMediaType"):
            request["imageManifestMediaType"] = image["imageManifestMediaType"]
        ecr.put_image(**request)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code == "ImageAlreadyExistsException":
            return tag  # a retried `pulumi up` tagged it already
        raise ImageTagError(
            f"cannot tag image {digest} in repository {repository} as {tag}: {code}: "
            f"{error.response.get('Error', {}).get('Message', '')}; the identity needs "
            "ecr:BatchGetImage and ecr:PutImage on the repository"
        ) from None
    except BotoCoreError as error:
        raise ImageTagError(f"cannot tag image {digest} in {repository}: {error}") from None
    return tag


class ImageReleaseTagProvider(pulumi.dynamic.ResourceProvider):
    """Create and update tag the digest; delete leaves the tag (see the module docstring)."""

    def __init__(self, clients: ClientFactory = aws_client) -> None:
        super().__init__()
        self.clients = clients

    def _tag(self, props: Mapping[str, Any]) -> dict[str, Any]:
        ecr = with_session(self.clients, props.get("aws_session"))("ecr", props.get("region"))
        tag = tag_image(ecr, props["repository_name"], props.get("registry_id"), props["image_ref"])
        return {**{k: v for k, v in props.items() if not k.startswith("__")}, "tag": tag}

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(release_tag(props["image_ref"]), self._tag(props))

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        return pulumi.dynamic.DiffResult(changes=changed(olds, news, TAG_KEYS))

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(self._tag(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing: the image stays a rollback target until the lifecycle rule expires it."""


class ImageReleaseTag(pulumi.dynamic.Resource, module="fleet", name="ImageReleaseTag"):
    """The pushed image's immutable `release-<digest>` tag; `image_ref` is the digest reference
    it tagged, for the task definition and the static release."""

    image_ref: pulumi.Output[str]
    tag: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        image_ref: pulumi.Input[str],
        repository_name: pulumi.Input[str],
        registry_id: pulumi.Input[str] | None = None,
        region: pulumi.Input[str] | None = None,
        aws_session: pulumi.Input[Mapping[str, Any] | None] = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "image_ref": image_ref,
            "repository_name": repository_name,
            "registry_id": registry_id,
            "region": region,
            "aws_session": aws_session,
            "tag": None,
        }
        super().__init__(ImageReleaseTagProvider(), resource_name, props, opts)
