"""`StaticRelease`: publishes one release's static files during `pulumi up`, before the rollout.

The files come from the built image's STATIC_ROOT (default) or from a local directory. The image
is read from its registry (`providers.registry`: the ECR token, then the registry API), so no
Docker daemon is needed and a fresh CI runner or a retried `pulumi up` publishes the same files;
`image_source="docker"` copies them out of the local daemon instead (`docker create`/`cp`).
Every AWS call acts as the stack's `aws:` settings say (`providers.aws_session`). Publishing
keeps the previous releases' files (see `pulumi_django.static_publish`), so servers of any kept
release, old or new, find theirs while a rolling update or a rollback runs.

Deleting the resource deletes nothing: the files may still be served by running tasks, later
publishes prune old releases, and the bucket (force_destroy off) refuses a stack destroy while it
holds files, which is the point: empty it deliberately first (docs/static-files.md).
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi.dynamic

from ..errors import PulumiDjangoError
from ..static_publish import (
    DEFAULT_KEEP,
    DEFAULT_PREFIX,
    PublishError,
    check_layout,
    check_release,
    progress_printer,
    publish,
    scan_source,
)
from .aws_session import AwsSession, SessionFactory, cached_session, session_input
from .registry import ImageReference, RegistryClient, extract_directory, session_authorization
from .release_task import changed
from .static_storage import S3Storage, extract_image_static

DEFAULT_STATIC_ROOT = "/app/staticfiles"
# Where the image's files are read: its registry (default), or the local Docker daemon.
IMAGE_SOURCES = ("registry", "docker")
# A change to any of these publishes again. The directory's path is not among them (it differs
# between machines); its content fingerprint is.
PUBLISH_INPUTS = (
    "bucket",
    "prefix",
    "release_id",
    "keep",
    "image",
    "static_root",
    "source_fingerprint",
    "region",
    "endpoint_url",
)


class StaticReleaseError(PulumiDjangoError, pulumi.RunError):
    """A StaticRelease whose arguments cannot publish; Pulumi prints it as one line."""


class StaticReleaseProvider(pulumi.dynamic.ResourceProvider):
    """Create and update publish; delete leaves the files to later publishes' pruning."""

    def __init__(self, sessions: SessionFactory = cached_session) -> None:
        super().__init__()
        self.sessions = sessions

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outputs = self._publish(props)
        return pulumi.dynamic.CreateResult(f"s3://{props['bucket']}/{props['prefix']}", outputs)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        return pulumi.dynamic.DiffResult(
            changes=changed(olds, news, PUBLISH_INPUTS),
            replaces=[],
            stables=[],
            delete_before_replace=False,
        )

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(self._publish(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: running tasks may still serve these files (module docstring)."""

    def _publish(self, props: dict[str, Any]) -> dict[str, Any]:
        region = props.get("region")
        session = self.sessions(props.get("aws_session"), region)
        storage = S3Storage(
            props["bucket"], endpoint_url=props.get("endpoint_url"), region=region, session=session
        )
        report = progress_printer(lambda line: pulumi.log.info(f"static release: {line}"))
        with tempfile.TemporaryDirectory(prefix="pulumi-django-static-") as work:
            if props.get("source_dir"):
                source = Path(props["source_dir"])
            elif props.get("image_source") == "docker":
                source = extract_image_static(props["image"], props["static_root"], Path(work))
            else:
                source = _from_registry(props, session, Path(work) / "static")
            result = publish(
                storage,
                source,
                props["release_id"],
                prefix=props["prefix"],
                keep=int(props["keep"]),
                on_progress=report,
            )
        return _outputs(props, result)


def _from_registry(props: Mapping[str, Any], session: Any, destination: Path) -> Path:
    """STATIC_ROOT read from the image's registry with an ECR token of the stack's identity."""
    image = ImageReference.parse(str(props["image"]))
    client = RegistryClient(image, session_authorization(session, image, props.get("region")))
    return extract_directory(client, props["static_root"], destination, props.get("architecture"))


def _outputs(props: Mapping[str, Any], result: Any) -> dict[str, Any]:
    return {
        **{name: value for name, value in props.items() if not name.startswith("__")},
        "manifest_key": result.manifest_key,
        "uploaded": result.uploaded,
        "skipped": result.skipped,
        "deleted": result.deleted,
        "kept_releases": list(result.kept_releases),
    }


def directory_fingerprint(source: Path, prefix: str) -> str:
    """Changes whenever a file of the directory is added, removed or changed."""
    listing = "".join(f"{file.key}\0{file.md5}\n" for file in scan_source(source, prefix))
    return hashlib.sha256(listing.encode()).hexdigest()


class StaticRelease(pulumi.dynamic.Resource, module="static", name="StaticRelease"):
    """One release's static files, published next to the last `keep` releases' files."""

    release_id: pulumi.Output[str]
    # The releases index holding this release's record (the name is the first layout's, which
    # kept one manifest object per release).
    manifest_key: pulumi.Output[str]
    uploaded: pulumi.Output[int]
    skipped: pulumi.Output[int]
    deleted: pulumi.Output[int]
    kept_releases: pulumi.Output[list[str]]

    def __init__(
        self,
        resource_name: str,
        *,
        bucket: pulumi.Input[str],
        release_id: pulumi.Input[str],
        image: pulumi.Input[str] | None = None,
        source_dir: str | Path | None = None,
        static_root: str = DEFAULT_STATIC_ROOT,
        prefix: str = DEFAULT_PREFIX,
        keep: int = DEFAULT_KEEP,
        region: pulumi.Input[str] | None = None,
        endpoint_url: str | None = None,
        architecture: str | None = None,
        image_source: str = "registry",
        aws_session: AwsSession | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """Publishes from `image` (its `static_root`) or from `source_dir`, exactly one. The
        image is read from its registry, in the platform of `architecture` (`X86_64` or
        `ARM64`) when it is an index, or with `image_source="docker"` from the local daemon.
        AWS calls act as `aws_session` says (default: the stack's `aws:` settings)."""
        if (image is None) == (source_dir is None):
            raise StaticReleaseError(
                f"StaticRelease {resource_name}: give either image or source_dir"
            )
        if image_source not in IMAGE_SOURCES:
            raise StaticReleaseError(
                f"StaticRelease {resource_name}: image_source must be one of "
                f"{', '.join(IMAGE_SOURCES)}, got {image_source!r}"
            )
        try:  # the engine's own checks, before anything is registered
            check_layout(prefix, keep)
            if isinstance(release_id, str):
                check_release(release_id)
        except PublishError as error:
            raise StaticReleaseError(f"StaticRelease {resource_name}: {error}") from None
        directory = Path(source_dir).resolve() if source_dir is not None else None
        props: dict[str, Any] = {
            "bucket": bucket,
            "release_id": release_id,
            "image": image,
            "static_root": static_root,
            "source_dir": str(directory) if directory else None,
            "source_fingerprint": directory_fingerprint(directory, prefix) if directory else None,
            "prefix": prefix,
            "keep": keep,
            "region": region,
            "endpoint_url": endpoint_url,
            "architecture": architecture,
            "image_source": image_source,
            "aws_session": session_input(aws_session),
            "manifest_key": None,
            "uploaded": None,
            "skipped": None,
            "deleted": None,
            "kept_releases": None,
        }
        super().__init__(StaticReleaseProvider(), resource_name, props, opts)
