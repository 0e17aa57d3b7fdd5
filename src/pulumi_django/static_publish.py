"""Publishes one release's collected static files next to earlier releases' and prunes the oldest.

During a rolling update old and new servers coexist, each asking for its own hashed file names,
and a rollback target asks for older ones still. So the files of the last `keep` releases all stay
published, and a file goes only when no kept release refers to it.

What to upload, skip and delete is decided by `plan_publish`, a pure function of the local files,
the remote listing and the release manifests; a `Storage` (an S3 bucket, or a local directory for
the Docker target and the rehearsal) only moves bytes, so both run the same rules.

This file is the engine alone, standard library only: the local target copies it into a
container of the app image and runs it there. The S3 storage and the copy of STATIC_ROOT out of
an image need boto3 and the docker CLI; they are `pulumi_django.providers.static_storage`.

Layout, for prefix `static/`:
  static/<path>                          the files, exactly as collectstatic wrote them
  _releases/static/<release>.json        one manifest per kept release (its keys), written last
  _releases/static/<release>.pending.json  keys of a publish in progress, so that an abandoned
                                         one is cleaned up by a later publish
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import hashlib
import json
import mimetypes
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Protocol

MANIFEST_ROOT = "_releases/"
MANIFEST_FORMAT = "pulumi-django/static-release/1"
PENDING_SUFFIX = ".pending.json"
MANIFEST_SUFFIX = ".json"
# The layout's rules. config/static.py states them again for the stack config, which never
# imports this file; tests/test_static_publish.py holds the two together.
MIN_KEEP = 2  # the current release and the previous one, which old servers still serve
PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/-]*/$")
MAX_RELEASE_LENGTH = 256
DEFAULT_WORKERS = 10
HASH_WORKERS = 4

# Django's ManifestStaticFilesStorage names a file `name.<12 hex digits of its md5>.ext`: such a
# name never changes content, so browsers and CloudFront may keep it for a year.
HASHED_NAME = re.compile(r"\.[0-9a-f]{12}(\.|$)")
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# An unhashed name (staticfiles.json, an original next to its hashed copy) is overwritten by each
# release, so caches must look again soon.
SHORT_CACHE_CONTROL = "public, max-age=60"

# `x.css.gz` next to `x.css` is x.css compressed: served with x.css's type and this encoding.
PRECOMPRESSED_ENCODINGS = {".gz": "gzip", ".br": "br"}
# Web types the standard library lacks or names in an outdated way (RFC 9239 for JavaScript).
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".map": "application/json",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".webp": "image/webp",
    ".gz": "application/gzip",
    ".br": "application/octet-stream",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# Built-in table only: /etc/mime.types differs between machines, the published headers must not.
_BUILTIN_TYPES = mimetypes.MimeTypes(filenames=())


class PublishError(Exception):
    """A publish cannot go on; the message says what to fix."""


@dataclass(frozen=True)
class LocalFile:
    """One file of the release, with the headers it is published with."""

    key: str
    path: Path
    md5: str
    size: int
    content_type: str
    content_encoding: str | None
    cache_control: str


@dataclass(frozen=True)
class RemoteObject:
    """What a listing says about a published object: enough to tell if its content is the same."""

    etag: str
    size: int


@dataclass(frozen=True)
class ReleaseManifest:
    """The keys one release uses. `complete` is false for the record of a publish in progress."""

    release: str
    prefix: str
    sequence: int
    complete: bool
    published_at: str
    keys: tuple[str, ...]

    def to_json(self) -> bytes:
        document = {
            "format": MANIFEST_FORMAT,
            "release": self.release,
            "prefix": self.prefix,
            "sequence": self.sequence,
            "complete": self.complete,
            "publishedAt": self.published_at,
            "keys": list(self.keys),
        }
        return json.dumps(document, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes, key: str) -> ReleaseManifest:
        try:
            document = json.loads(data)
            if document["format"] != MANIFEST_FORMAT:
                raise ValueError(f"format {document['format']!r}")
            return cls(
                release=str(document["release"]),
                prefix=str(document["prefix"]),
                sequence=int(document["sequence"]),
                complete=bool(document["complete"]),
                published_at=str(document["publishedAt"]),
                keys=tuple(str(item) for item in document["keys"]),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise PublishError(
                f"{key} is not a pulumi-django release manifest ({error}); "
                "remove it or restore it from a backup"
            ) from error


@dataclass(frozen=True)
class PublishPlan:
    """Everything one publish does, in order: pending record, uploads, manifest, deletions."""

    pending: ReleaseManifest
    manifest: ReleaseManifest
    uploads: tuple[LocalFile, ...]
    skipped: tuple[str, ...]
    deletions: tuple[str, ...]
    dropped_manifests: tuple[str, ...]
    kept_releases: tuple[str, ...]


@dataclass(frozen=True)
class PublishProgress:
    files: int
    to_upload: int
    uploaded: int


@dataclass(frozen=True)
class PublishResult:
    release: str
    manifest_key: str
    uploaded: int
    skipped: int
    deleted: int
    kept_releases: tuple[str, ...]

    def summary(self) -> str:
        return f"uploaded {self.uploaded}, skipped {self.skipped}, deleted {self.deleted}"

    def counts(self) -> dict[str, int]:
        return {"uploaded": self.uploaded, "skipped": self.skipped, "deleted": self.deleted}


class Storage(Protocol):
    """Where releases are published: an S3 bucket (`providers.static_storage.S3Storage`) or a
    local directory (`DirectoryStorage`)."""

    def list(self, prefix: str) -> dict[str, RemoteObject]: ...

    def read(self, key: str) -> bytes: ...

    def upload(self, file: LocalFile) -> None: ...

    def write(self, key: str, data: bytes) -> None: ...

    def delete(self, keys: Sequence[str]) -> None: ...


# ---------------------------------------------------------------- validation and naming


def check_release(release: str) -> None:
    if not release or len(release) > MAX_RELEASE_LENGTH or not release.isprintable():
        raise PublishError(
            f"release id must be 1-{MAX_RELEASE_LENGTH} printable characters, got {release!r}"
        )


def check_layout(prefix: str, keep: int) -> None:
    """Raises PublishError on a prefix or a keep count the layout cannot hold."""
    if not PREFIX_PATTERN.match(prefix):
        raise PublishError(
            f"prefix {prefix!r} must be lowercase letters, digits, '.', '_', '-' or '/', "
            "start with a letter or digit and end with '/', e.g. static/"
        )
    if keep < MIN_KEEP:
        raise PublishError(
            f"keep must be at least {MIN_KEEP}: old servers still use the previous release's files"
        )


def manifest_dir(prefix: str) -> str:
    return f"{MANIFEST_ROOT}{prefix}"


def key_safe(text: str) -> str:
    """`text` with `_` for every character but letters, digits, `.`, `_` and `-`: fit for an
    S3 key and a directory name alike."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def release_file_name(release: str) -> str:
    """A key-safe, readable and unique name for a release id such as `sha256:ab12...`."""
    readable = key_safe(release)[:100]
    digest = hashlib.sha256(release.encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def manifest_key(prefix: str, release: str, *, complete: bool = True) -> str:
    suffix = MANIFEST_SUFFIX if complete else PENDING_SUFFIX
    return f"{manifest_dir(prefix)}{release_file_name(release)}{suffix}"


def cache_control_for(key: str) -> str:
    name = key.rsplit("/", 1)[-1]
    return IMMUTABLE_CACHE_CONTROL if HASHED_NAME.search(name) else SHORT_CACHE_CONTROL


def content_type_for(name: str) -> str:
    return _content_type_for_suffix(PurePosixPath(name).suffix.lower())


@functools.cache
def _content_type_for_suffix(suffix: str) -> str:
    """A type depends on the last suffix alone: .gz/.br are in CONTENT_TYPES, and any other
    encoding suffix (.bz2, .xz) gives no usable type."""
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, encoding = _BUILTIN_TYPES.guess_type(f"file{suffix}", strict=False)
    return guessed if guessed and encoding is None else DEFAULT_CONTENT_TYPE


def _headers(relative: str, siblings: set[str]) -> tuple[str, str | None]:
    """Content type and encoding; a .gz/.br is a precompressed variant only next to its original."""
    suffix = PurePosixPath(relative).suffix
    encoding = PRECOMPRESSED_ENCODINGS.get(suffix)
    original = relative.removesuffix(suffix)
    if encoding and original in siblings:
        return content_type_for(original), encoding
    return content_type_for(relative), None


def _md5_and_size(path: Path) -> tuple[str, int]:
    with path.open("rb") as stream:
        digest = hashlib.file_digest(stream, lambda: hashlib.md5(usedforsecurity=False))
        return digest.hexdigest(), stream.tell()


def list_source(source: Path) -> list[str]:
    """Relative paths of the files under `source`, sorted; raises if there are none."""
    if source.exists() and not source.is_dir():
        raise PublishError(f"source {source} is a file; give the directory collectstatic wrote")
    if not source.is_dir():
        raise PublishError(f"source directory {source} does not exist")
    relatives: list[str] = []
    _walk(str(source), "", relatives)
    if not relatives:
        raise PublishError(f"source directory {source} holds no files: run collectstatic first")
    return sorted(relatives)


def _walk(directory: str, relative: str, found: list[str]) -> None:
    # os.scandir reuses the directory listing's file types: thousands of files, few syscalls.
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                _walk(entry.path, f"{relative}{entry.name}/", found)
            elif entry.is_file():
                found.append(f"{relative}{entry.name}")


def scan_source(source: Path, prefix: str) -> list[LocalFile]:
    """The release's files under `source`, keyed under `prefix`, sorted by key."""
    return describe_files(source, list_source(source), prefix)


def describe_files(source: Path, relatives: Sequence[str], prefix: str) -> list[LocalFile]:
    """Each file with its digest and headers; digests are computed in parallel (hashlib and
    file reads release the GIL)."""
    siblings = set(relatives)
    paths = [source / relative for relative in relatives]
    with concurrent.futures.ThreadPoolExecutor(max_workers=HASH_WORKERS) as pool:
        digests = list(pool.map(_md5_and_size, paths))
    files = []
    for relative, path, (digest, size) in zip(relatives, paths, digests, strict=True):
        content_type, encoding = _headers(relative, siblings)
        files.append(
            LocalFile(
                key=prefix + relative,
                path=path,
                md5=digest,
                size=size,
                content_type=content_type,
                content_encoding=encoding,
                cache_control=cache_control_for(relative),
            )
        )
    return files


# ---------------------------------------------------------------- the plan


def plan_publish(
    local_files: Sequence[LocalFile],
    remote: Mapping[str, RemoteObject],
    manifests: Mapping[str, ReleaseManifest],
    *,
    release: str,
    prefix: str,
    keep: int,
    published_at: str,
) -> PublishPlan:
    """What publishing `release` does, given what is already published.

    `manifests` maps manifest keys to the manifests (complete and pending) found under the
    prefix. The new release becomes the newest (a re-published rollback target too, so it is
    not pruned while it runs); the newest `keep` complete releases are kept, and a key is
    deleted only if a dropped manifest or abandoned publish lists it and no kept release does.
    """
    sequence = max((manifest.sequence for manifest in manifests.values()), default=0) + 1
    keys = tuple(file.key for file in local_files)
    pending = ReleaseManifest(release, prefix, sequence, False, published_at, keys)
    manifest = ReleaseManifest(release, prefix, sequence, True, published_at, keys)
    own_key = manifest_key(prefix, release)
    own_pending_key = manifest_key(prefix, release, complete=False)
    others = sorted(
        (item for item in manifests.items() if item[1].complete and item[0] != own_key),
        key=lambda item: item[1].sequence,
        reverse=True,
    )
    kept = [manifest, *(found for _key, found in others[: keep - 1])]
    dropped = {key for key, _found in others[keep - 1 :]}
    dropped |= {key for key, found in manifests.items() if not found.complete}
    # The superseded manifest of this same release is overwritten, not dropped, but the keys
    # it alone listed (a rebuilt source under the same id) are as unused as a dropped one's.
    listed_before = [manifests[key] for key in (*dropped, own_key) if key in manifests]
    kept_keys = {key for release_manifest in kept for key in release_manifest.keys}
    doomed = {key for release_manifest in listed_before for key in release_manifest.keys}
    uploads = tuple(file for file in local_files if not _same_content(remote.get(file.key), file))
    uploading = {file.key for file in uploads}
    return PublishPlan(
        pending=pending,
        manifest=manifest,
        uploads=uploads,
        skipped=tuple(file.key for file in local_files if file.key not in uploading),
        deletions=tuple(sorted(key for key in doomed - kept_keys if key in remote)),
        # The pending record this publish writes before uploading goes once the manifest is in.
        dropped_manifests=tuple(sorted(dropped | ({own_pending_key} if uploads else set()))),
        kept_releases=tuple(release_manifest.release for release_manifest in kept),
    )


def _same_content(remote: RemoteObject | None, local: LocalFile) -> bool:
    # A single-part upload's ETag is the MD5 of its bytes (SSE-S3 or no encryption).
    return remote is not None and remote.size == local.size and remote.etag == local.md5


# ---------------------------------------------------------------- running it


def read_manifests(storage: Storage, prefix: str) -> dict[str, ReleaseManifest]:
    """The prefix's manifests; those of a nested prefix (`static/admin/`) are not its own."""
    directory = manifest_dir(prefix)
    manifests = {}
    for key in storage.list(directory):
        name = key[len(directory) :]
        if "/" in name or not name.endswith(MANIFEST_SUFFIX):
            continue
        manifests[key] = ReleaseManifest.from_json(storage.read(key), key)
    return manifests


def publish(
    storage: Storage,
    source: Path,
    release: str,
    *,
    prefix: str,
    keep: int,
    workers: int = DEFAULT_WORKERS,
    on_progress: Callable[[PublishProgress], None] | None = None,
) -> PublishResult:
    """Publishes `source` as `release`. Safe to interrupt: uploads never change a hashed file of
    another release, nothing is deleted before the new manifest is written, and running it
    again finishes the job."""
    check_release(release)
    check_layout(prefix, keep)
    relatives = list_source(source)  # a bad source fails before any request
    # Listing the bucket waits on the network, hashing on the disk and CPU: overlap them.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as background:
        listing = background.submit(storage.list, prefix)
        reading = background.submit(read_manifests, storage, prefix)
        local_files = describe_files(source, relatives, prefix)
        remote, manifests = listing.result(), reading.result()
    plan = plan_publish(
        local_files,
        remote,
        manifests,
        release=release,
        prefix=prefix,
        keep=keep,
        published_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report = on_progress or (lambda _progress: None)
    report(PublishProgress(len(local_files), len(plan.uploads), 0))
    if plan.uploads:
        storage.write(manifest_key(prefix, release, complete=False), plan.pending.to_json())
        _upload_all(storage, plan.uploads, workers, len(local_files), report)
    storage.write(manifest_key(prefix, release), plan.manifest.to_json())
    storage.delete(plan.deletions)
    storage.delete(plan.dropped_manifests)
    return PublishResult(
        release=release,
        manifest_key=manifest_key(prefix, release),
        uploaded=len(plan.uploads),
        skipped=len(plan.skipped),
        deleted=len(plan.deletions),
        kept_releases=plan.kept_releases,
    )


def _upload_all(
    storage: Storage,
    files: Sequence[LocalFile],
    workers: int,
    total_files: int,
    report: Callable[[PublishProgress], None],
) -> None:
    """Uploads in parallel; the first failure stops the rest and is raised."""
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        futures = [executor.submit(storage.upload, file) for file in files]
        for done, future in enumerate(concurrent.futures.as_completed(futures), start=1):
            future.result()
            report(PublishProgress(total_files, len(files), done))
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


def progress_printer(write: Callable[[str], None]) -> Callable[[PublishProgress], None]:
    """Reports a publish in a few lines: the plan, then every tenth of the uploads."""

    def report(progress: PublishProgress) -> None:
        if progress.uploaded == 0:
            write(f"{progress.files} files, {progress.to_upload} to upload")
            return
        step = max(1, progress.to_upload // 10)
        if progress.uploaded % step == 0 or progress.uploaded == progress.to_upload:
            write(f"uploaded {progress.uploaded}/{progress.to_upload}")

    return report


# ---------------------------------------------------------------- storages


class DirectoryStorage:
    """A local directory standing in for the bucket (Docker target, rehearsal)."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise PublishError(f"directory {root} does not exist; create it first")
        self.root = root

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        base = self.root / prefix
        if not base.is_dir():
            return {}
        return {
            path.relative_to(self.root).as_posix(): RemoteObject(*_md5_and_size(path))
            for path in base.rglob("*")
            if path.is_file() and not path.name.startswith(".publishing-")
        }

    def read(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def upload(self, file: LocalFile) -> None:
        with self._replacing(file.key) as temporary:
            shutil.copyfile(file.path, temporary)

    def write(self, key: str, data: bytes) -> None:
        with self._replacing(key) as temporary:
            temporary.write_bytes(data)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            path = self.root / key
            path.unlink(missing_ok=True)
            for parent in path.parents:
                if parent == self.root or not parent.is_relative_to(self.root):
                    break
                with contextlib.suppress(OSError):  # not empty: stop climbing
                    parent.rmdir()

    @contextlib.contextmanager
    def _replacing(self, key: str) -> Iterator[Path]:
        """A file written next to its target then renamed over it: readers never see half."""
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=".publishing-", dir=target.parent)
        os.close(handle)
        temporary = Path(name)
        try:
            yield temporary
            temporary.chmod(0o644)
            temporary.replace(target)
        finally:
            temporary.unlink(missing_ok=True)
