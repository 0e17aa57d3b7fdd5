"""A directory of an image, read from its registry over the registry HTTP API v2: no Docker
daemon, no pull, no login on the machine.

`StaticRelease` publishes the image's STATIC_ROOT from here, so a fresh CI runner or a retried
`pulumi up` on another machine publishes exactly what the pushed image holds. The steps:

1. the manifest, by digest (verified); an image index or manifest list leads to the manifest of
   the fleet's platform (attestation manifests are skipped);
2. the image config, whose `rootfs.diff_ids` name each layer's uncompressed content;
3. each layer in order (gzip or uncompressed; zstd is refused in one line), digest and diff id
   verified, applying to the directory only what lies under it: files, directories, hard links,
   and the OCI whiteouts (`.wh.<name>` removes a lower layer's entry, `.wh..wh..opq` empties a
   directory of what lower layers put there) as the container runtime applies them. Symbolic
   links inside the directory become copies of what they point to inside it; one pointing out
   of it is refused.

Authentication is Basic with the ECR token (`ecr_authorization`). Blob downloads are
redirected by ECR to S3 pre-signed URLs; the Authorization header is never sent there.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import posixpath
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import PulumiDjangoError
from ..static_publish import PublishError

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
GZIP_LAYERS = frozenset(
    {
        "application/vnd.oci.image.layer.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
    }
)
PLAIN_LAYERS = frozenset({"application/vnd.oci.image.layer.v1.tar"})
# The fleet's CPU architecture (ECS's name) -> the image platform's.
ARCHITECTURES = {"X86_64": "amd64", "ARM64": "arm64"}
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_LINK_HOPS = 40
CHUNK = 1 << 20
TIMEOUT_SECONDS = 60
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})


class RegistryError(PulumiDjangoError, PublishError):
    """The image cannot be read from its registry; the message says why and what to do."""


@dataclass(frozen=True)
class ImageReference:
    """`registry/repository@sha256:...` (or `:tag`)."""

    registry: str
    repository: str
    reference: str  # a digest or a tag

    @classmethod
    def parse(cls, text: str) -> ImageReference:
        head, _, rest = text.partition("/")
        if not rest or not ("." in head or ":" in head or head == "localhost"):
            raise RegistryError(
                f"image {text!r} names no registry: give registry/repository@sha256:..."
            )
        if "@" in rest:
            repository, reference = rest.split("@", 1)
        else:
            name, _, tag = rest.rpartition(":")
            repository, reference = (name, tag) if name and "/" not in tag else (rest, "latest")
        return cls(head, repository, reference)

    @property
    def base_url(self) -> str:
        """HTTPS, except on loopback, where Docker also speaks plain HTTP."""
        host = self.registry.rsplit(":", 1)[0] if not self.registry.endswith("]") else self.registry
        scheme = "http" if host in LOOPBACK_HOSTS else "https"
        return f"{scheme}://{self.registry}/v2/{self.repository}"

    @property
    def ecr_region(self) -> str | None:
        """The region of an ECR registry host (`<account>.dkr.ecr.<region>.amazonaws.com`)."""
        parts = self.registry.split(".")
        if len(parts) >= 6 and parts[1] == "dkr" and parts[2].startswith("ecr"):
            return parts[3]
        return None

    def __str__(self) -> str:
        separator = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{separator}{self.reference}"


def ecr_authorization(ecr: Any) -> str:
    """The Authorization header value for ECR's registry API: `Basic <token>`, the token of
    `ecr:GetAuthorizationToken` (already base64 of `AWS:<password>`), valid 12 hours."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        data = ecr.get_authorization_token()["authorizationData"]
    except (ClientError, BotoCoreError) as error:
        raise RegistryError(
            f"cannot get an ECR token (ecr:GetAuthorizationToken): {error}"
        ) from None
    return f"Basic {data[0]['authorizationToken']}"


def session_authorization(session: Any, image: ImageReference, region: str | None) -> str:
    """`ecr_authorization` with an ECR client of `session` (a boto3 Session) in the region of
    `image`'s registry (else `region`)."""
    return ecr_authorization(session.client("ecr", region_name=image.ecr_region or region))


@dataclass(frozen=True)
class ImageLayout:
    """What the manifest says: the platform manifest's digest, the config, the layers."""

    manifest_digest: str
    config: Mapping[str, Any]
    layers: tuple[Mapping[str, Any], ...]


class RegistryClient:
    """Reads manifests and blobs of one repository; `authorization` is the header's value."""

    def __init__(
        self,
        image: ImageReference,
        authorization: str | None,
        opener: Callable[..., Any] | None = None,
    ) -> None:
        self.image = image
        self.authorization = authorization
        self._open = opener or urllib.request.build_opener().open

    def _request(self, url: str, accept: tuple[str, ...] = ()) -> Any:
        # The URL is always https:// (http:// on loopback), built by ImageReference.base_url.
        request = urllib.request.Request(url)  # noqa: S310
        if accept:
            request.add_header("Accept", ", ".join(accept))
        if self.authorization:
            # Not copied onto a redirect: ECR sends blobs from S3 pre-signed URLs, which
            # refuse a second authentication.
            request.add_unredirected_header("Authorization", self.authorization)
        try:
            return self._open(request, timeout=TIMEOUT_SECONDS)
        except urllib.error.HTTPError as error:
            raise self._refused(error, url) from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise RegistryError(f"cannot reach registry {self.image.registry}: {reason}") from None

    def _refused(self, error: urllib.error.HTTPError, url: str) -> RegistryError:
        what = url.rsplit("/v2/", 1)[-1]
        if error.code in (401, 403):
            return RegistryError(
                f"registry {self.image.registry} refused {what} ({error.code}): the AWS identity "
                "needs ecr:GetAuthorizationToken, and ecr:BatchGetImage and "
                "ecr:GetDownloadUrlForLayer on the repository"
            )
        if error.code == 404:
            return RegistryError(
                f"{what} not found in registry {self.image.registry} (404): was the image "
                "pushed, or has the repository's lifecycle rule expired it?"
            )
        return RegistryError(f"registry {self.image.registry}: {what}: HTTP {error.code}")

    def manifest(self, reference: str) -> tuple[str, dict[str, Any]]:
        """(media type, document) of a manifest, verified against `reference` if a digest."""
        url = f"{self.image.base_url}/manifests/{reference}"
        with self._request(url, INDEX_TYPES + MANIFEST_TYPES) as answer:
            body = answer.read()
            media_type = answer.headers.get("Content-Type", "").split(";")[0].strip()
        if reference.startswith("sha256:"):
            _verify(hashlib.sha256(body).hexdigest(), reference, f"manifest {reference}")
        try:
            document = json.loads(body)
        except json.JSONDecodeError:
            raise RegistryError(f"manifest {reference} of {self.image} is not JSON") from None
        return document.get("mediaType") or media_type, document

    @contextmanager
    def blob(self, digest: str) -> Iterator[IO[bytes]]:
        """A blob's bytes in a temporary file, their digest verified."""
        if not digest.startswith("sha256:"):
            raise RegistryError(f"blob {digest} of {self.image}: only sha256 digests are read")
        with tempfile.TemporaryFile() as spooled:
            hasher = hashlib.sha256()
            with self._request(f"{self.image.base_url}/blobs/{digest}") as answer:
                while chunk := answer.read(CHUNK):
                    hasher.update(chunk)
                    spooled.write(chunk)
            _verify(hasher.hexdigest(), digest, f"blob {digest}")
            spooled.seek(0)
            yield spooled

    def layout(self, architecture: str | None) -> ImageLayout:
        """The image's platform manifest, config and layers (the fleet's platform from an
        index; any single-platform manifest as it is)."""
        media_type, document = self.manifest(self.image.reference)
        digest = self.image.reference
        if media_type in INDEX_TYPES or "manifests" in document:
            digest = select_platform(document, architecture, str(self.image))
            media_type, document = self.manifest(digest)
        if media_type not in MANIFEST_TYPES and document.get("schemaVersion") != 2:
            raise RegistryError(
                f"{self.image}: manifest type {media_type or 'unknown'} is not read "
                "(Docker schema 2 or OCI only); push the image with a current Docker"
            )
        with self.blob(document["config"]["digest"]) as stream:
            config = json.loads(stream.read())
        layers = tuple(document.get("layers") or ())
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(layers):
            raise RegistryError(
                f"{self.image}: the config lists {len(diff_ids)} layers, the manifest {len(layers)}"
            )
        return ImageLayout(digest, config, layers)


def select_platform(index: Mapping[str, Any], architecture: str | None, image: str) -> str:
    """The digest of the index's manifest for linux and the fleet's architecture; attestation
    manifests (`unknown/unknown`) are never picked."""
    wanted = ARCHITECTURES.get(architecture or "", architecture or "")
    found = []
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        annotations = entry.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue
        system, cpu = platform.get("os", "unknown"), platform.get("architecture", "unknown")
        if (system, cpu) == ("unknown", "unknown"):
            continue
        found.append(f"{system}/{cpu}")
        if system == "linux" and (not wanted or cpu == wanted):
            return str(entry["digest"])
    raise RegistryError(
        f"image {image} has no linux/{wanted or '*'} manifest (it has: "
        f"{', '.join(found) or 'none'}); build it for the fleet's architecture "
        "(fleet.architecture)"
    )


def _verify(actual_hex: str, expected: str, what: str) -> None:
    if f"sha256:{actual_hex}" != expected:
        raise RegistryError(f"{what}: the registry sent content of digest sha256:{actual_hex}")


# ---------------------------------------------------------------- applying layers


def _normal(name: str) -> str | None:
    """A tar member's path relative to the image root; None for one that leaves it."""
    cleaned = posixpath.normpath("/" + name.lstrip("/")).lstrip("/")
    if cleaned in ("", "."):
        return ""
    return None if cleaned.startswith("..") else cleaned


def _within(path: str, directory: str) -> bool:
    return directory == "" or path == directory or path.startswith(directory + "/")


class DirectoryExtraction:
    """Layers applied to one directory of the image (`root`, image-relative) in `destination`."""

    def __init__(self, root: str, destination: Path) -> None:
        self.root = root.strip("/")
        self.destination = destination
        self.links: dict[str, str] = {}  # relative path -> link target (as in the image)
        self.kind: str | None = None  # what the image has at `root`: "dir", "file", "link"

    def relative(self, path: str) -> str:
        return path[len(self.root) :].lstrip("/")

    def apply(self, layer: tarfile.TarFile) -> None:
        """One layer: its whiteouts first (they hide only what lower layers hold), then its
        entries under the root."""
        members = []
        for member in layer.getmembers():
            path = _normal(member.name)
            if path is None:
                continue
            directory, base = posixpath.split(path)
            if base == OPAQUE:
                self._hide(directory, opaque=True)
            elif base.startswith(WHITEOUT):
                self._hide(posixpath.join(directory, base[len(WHITEOUT) :]), opaque=False)
            elif _within(path, self.root):
                members.append((path, member))
        for path, member in members:
            self._add(path, member, layer)

    def _hide(self, path: str, *, opaque: bool) -> None:
        if _within(self.root, path) and (opaque or path != ""):
            self._clear("")  # the root itself, or one of its parents, is hidden
            if not opaque or path != self.root:
                self.kind = None
            return
        if _within(path, self.root):
            relative = self.relative(path)
            if opaque:
                self._clear(relative)
            else:
                self._remove(relative)

    def _clear(self, relative: str) -> None:
        directory = self.destination / relative
        if directory.is_dir():
            for child in list(directory.iterdir()):
                self._remove(child.relative_to(self.destination).as_posix())
        self.links = {
            key: value
            for key, value in self.links.items()
            if not _within(key, relative) or key == relative
        }

    def _remove(self, relative: str) -> None:
        target = self.destination / relative
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        self.links = {key: value for key, value in self.links.items() if not _within(key, relative)}

    def _make_parents(self, relative: str) -> Path:
        """The parent directories of `relative`, replacing a file or link in their place."""
        parts = relative.split("/")[:-1]
        for index in range(1, len(parts) + 1):
            prefix = "/".join(parts[:index])
            path = self.destination / prefix
            if prefix in self.links or (path.exists() and not path.is_dir()):
                self._remove(prefix)
            path.mkdir(exist_ok=True)
        return self.destination / relative

    def _add(self, path: str, member: tarfile.TarInfo, layer: tarfile.TarFile) -> None:
        relative = self.relative(path)
        if relative == "":
            self.kind = "dir" if member.isdir() else "link" if member.issym() else "file"
            if member.isdir():
                self.destination.mkdir(parents=True, exist_ok=True)
            return
        if self.kind is None:  # entries under a root no layer declared as a directory
            self.kind = "dir"
        target = self._make_parents(relative)
        if member.isdir():
            if relative in self.links or (target.exists() and not target.is_dir()):
                self._remove(relative)
            target.mkdir(exist_ok=True)
            return
        if target.exists() or relative in self.links:
            self._remove(relative)
        if member.issym():
            self.links[relative] = member.linkname
        elif member.isfile() or member.islnk():
            source = layer.extractfile(member)  # a hard link reads its target's content
            if source is None:
                raise RegistryError(f"{path}: its content is missing from the layer")
            with source, target.open("wb") as written:
                shutil.copyfileobj(source, written, CHUNK)

    def finish(self, image: str) -> None:
        """Checks the root was a directory, and resolves the links inside it into copies."""
        absolute = "/" + self.root
        if self.kind == "link":
            raise RegistryError(
                f"{absolute} is a symbolic link in image {image}: set app.staticRoot to the "
                "directory it points to"
            )
        if self.kind != "dir":
            raise RegistryError(
                f"image {image} has no directory {absolute}: check app.staticRoot and that "
                "the Dockerfile runs collectstatic into it"
            )
        for relative in sorted(self.links):
            resolved = self._resolve(relative, image)
            target = self.destination / relative
            self._make_parents(relative)
            if resolved.is_dir():
                shutil.copytree(resolved, target)
            else:
                shutil.copyfile(resolved, target)

    def _resolve(self, relative: str, image: str) -> Path:
        current = relative
        for _hop in range(MAX_LINK_HOPS):
            link = self.links.get(current)
            if link is None:
                found = self.destination / current
                if not found.exists():
                    break
                return found
            base = posixpath.dirname(posixpath.join(self.root, current))
            pointed = _normal(posixpath.join("/", base, link) if not link.startswith("/") else link)
            if pointed is None or not _within(pointed, self.root) or pointed == self.root:
                raise RegistryError(
                    f"/{self.root}/{relative} in image {image} links to {link}, outside "
                    f"/{self.root}: run collectstatic without --link"
                )
            current = self.relative(pointed)
        raise RegistryError(f"/{self.root}/{relative} in image {image} is a broken link")


@contextmanager
def _uncompressed(stream: IO[bytes], media_type: str, digest: str) -> Iterator[IO[bytes]]:
    """The layer's tar, in a temporary file (tarfile reads hard links' targets by seeking)."""
    if media_type in PLAIN_LAYERS:
        yield stream
        return
    if media_type not in GZIP_LAYERS:
        kind = "zstd-compressed" if media_type.endswith("zstd") else "of a type not read"
        raise RegistryError(
            f"layer {digest} is {kind} ({media_type}): push the image with gzip layers, "
            "Docker's default (not `compression=zstd`)"
        )
    with tempfile.TemporaryFile() as plain:
        with gzip.GzipFile(fileobj=stream) as unzipped:
            shutil.copyfileobj(unzipped, plain, CHUNK)
        plain.seek(0)
        yield plain


def _diff_id(stream: IO[bytes]) -> str:
    hasher = hashlib.sha256()
    while chunk := stream.read(CHUNK):
        hasher.update(chunk)
    stream.seek(0)
    return f"sha256:{hasher.hexdigest()}"


def extract_directory(
    client: RegistryClient, directory: str, destination: Path, architecture: str | None = None
) -> Path:
    """Writes the image's `directory` (absolute, e.g. /app/staticfiles) into `destination`, as a
    container of the image would see it; returns `destination`."""
    layout = client.layout(architecture)
    diff_ids = layout.config["rootfs"]["diff_ids"]
    destination.mkdir(parents=True, exist_ok=True)
    extraction = DirectoryExtraction(directory, destination)
    for layer, diff_id in zip(layout.layers, diff_ids, strict=True):
        digest, media_type = str(layer["digest"]), str(layer.get("mediaType", ""))
        with (
            client.blob(digest) as compressed,
            _uncompressed(compressed, media_type, digest) as tar,
        ):
            if _diff_id(tar) != diff_id:
                raise RegistryError(
                    f"layer {digest} of {client.image} does not match the config's diff id"
                )
            try:
                with tarfile.open(fileobj=tar, mode="r:") as archive:
                    extraction.apply(archive)
            except (tarfile.TarError, KeyError) as error:
                raise RegistryError(f"layer {digest} of {client.image}: {error}") from None
    extraction.finish(str(client.image))
    return destination
