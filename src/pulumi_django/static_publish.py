"""Publishes one release's collected static files next to earlier releases' and prunes the oldest.

During a rolling update old and new servers coexist, each asking for its own hashed file names,
and a rollback target asks for older ones still. So the files of the last `keep` releases all stay
published, and a file goes only when no kept release refers to it.

What to upload, skip and delete is decided by `plan_publish`, a pure function of the local files,
the remote listing and the releases' records; a `Storage` (an S3 bucket, or a local directory for
the Docker target and the rehearsal) only moves bytes, so both run the same rules.

This file is the engine alone, standard library only: the local target copies it into a
container of the app image and runs it there. The S3 storage and the copy of STATIC_ROOT out of
an image need botocore and the docker CLI; they are `pulumi_django.providers.static_storage`.

Layout, for prefix `static/`:
  static/<path>                   the files, exactly as collectstatic wrote them
  _releases/static/index.json     the releases index: one record per kept release (its keys and
                                  its place in the order), and the record of a publish in
                                  progress (the keys about to be uploaded), so that an abandoned
                                  publish is cleaned up by a later one

One object for all the records: a publish reads it with one request and writes it twice (its
pending record before the uploads, the new release's record after), whatever the number of
releases kept, and each write is conditional on the version read, so that two publishes at once
cannot lose each other's record. The first layout kept one object per record
(`_releases/static/<release>.json`, `<release>.pending.json`): a prefix without an index is read
that way, once, and its first publish folds those records into the index and deletes them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
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
from typing import Any, Protocol

MANIFEST_ROOT = "_releases/"
INDEX_NAME = "index.json"
INDEX_FORMAT = "pulumi-django/static-releases/2"
# The first layout's one object per record, read (and folded into the index) where no index is.
MANIFEST_FORMAT = "pulumi-django/static-release/1"
PENDING_SUFFIX = ".pending.json"
MANIFEST_SUFFIX = ".json"
# The layout's rules and defaults. config/static.py states them again for the stack config,
# which never imports this file; tests/test_static_publish.py holds the two together. The
# command line reads its defaults here, so that `publish-static` starts without the config's
# pydantic and Pulumi.
MIN_KEEP = 2  # the current release and the previous one, which old servers still serve
DEFAULT_KEEP = 5
DEFAULT_PREFIX = "static/"
PREFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._/-]*/$")
MAX_RELEASE_LENGTH = 256
DEFAULT_WORKERS = 10
# Attempts of one publish while others of the same prefix keep writing the index (`publish`).
PUBLISH_ATTEMPTS = 3
# The first layout's manifests are few (the kept releases, an abandoned publish's record): read
# all at once.
MANIFEST_READERS = 8

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


class PublishError(Exception):
    """A publish cannot go on; the message says what to fix."""


class IndexConflict(PublishError):
    """The releases index changed between this publish's read and its write: another publish
    of the same prefix ran meanwhile. Nothing of the other's was lost; publishing again
    finishes this one (`publish` does, up to PUBLISH_ATTEMPTS times). `uploaded`: the files
    the attempt uploaded before it found out."""

    uploaded: int = 0


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
class StoredObject:
    """An object read back, with the version a conditional write of it names (its ETag)."""

    data: bytes
    etag: str


@dataclass(frozen=True)
class ReleaseManifest:
    """The keys one release uses: its record in the releases index (a manifest object of its
    own in the first layout). `complete` is false for the record of a publish in progress."""

    release: str
    prefix: str
    sequence: int
    complete: bool
    published_at: str
    keys: tuple[str, ...]

    @property
    def record_key(self) -> str:
        """What names the record in a plan: the key its manifest object had in the first
        layout (unique per release and state)."""
        return manifest_key(self.prefix, self.release, complete=self.complete)

    def to_document(self) -> dict[str, object]:
        return {
            "release": self.release,
            "prefix": self.prefix,
            "sequence": self.sequence,
            "complete": self.complete,
            "publishedAt": self.published_at,
            "keys": list(self.keys),
        }

    @classmethod
    def from_document(cls, document: object) -> ReleaseManifest:
        """ValueError saying what is wrong for a document that is not a record."""
        if not isinstance(document, dict):
            raise ValueError("a record is not a JSON object")
        fields = {"release": str, "prefix": str, "sequence": int, "complete": bool}
        for name, kind in {**fields, "publishedAt": str, "keys": list}.items():
            value = document.get(name)
            # bool is an int to Python, never a sequence here.
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"a record's {name!r} is missing or not a {kind.__name__}")
        keys = document["keys"]
        if not all(isinstance(item, str) for item in keys):
            raise ValueError(f"the keys of record {document['release']!r} are not all strings")
        return cls(
            release=document["release"],
            prefix=document["prefix"],
            sequence=document["sequence"],
            complete=document["complete"],
            published_at=document["publishedAt"],
            keys=tuple(keys),
        )

    @classmethod
    def from_manifest_object(cls, data: bytes, key: str) -> ReleaseManifest:
        """A manifest object of the first layout."""
        try:
            document = _json_of_format(data, MANIFEST_FORMAT)
            return cls.from_document(document)
        except ValueError as error:
            raise PublishError(
                f"{key} is not a pulumi-django release manifest ({error}); "
                "remove it or restore it from a backup"
            ) from error


def _json_of_format(data: bytes, expected: str) -> dict[str, Any]:
    """The JSON object `data` holds, whose "format" is `expected`; ValueError saying what it is
    instead."""
    try:
        document = json.loads(data)
    except ValueError:
        raise ValueError("not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("not a JSON object")
    if document.get("format") != expected:
        raise ValueError(f"its format is {document.get('format')!r}, not {expected!r}")
    return document


def index_json(prefix: str, records: Sequence[ReleaseManifest]) -> bytes:
    """The releases index holding `records`, newest first."""
    ordered = sorted(records, key=lambda record: record.sequence, reverse=True)
    document = {
        "format": INDEX_FORMAT,
        "prefix": prefix,
        "records": [record.to_document() for record in ordered],
    }
    return json.dumps(document, indent=1).encode()


def parse_index(data: bytes, key: str) -> list[ReleaseManifest]:
    """The records of a releases index; PublishError saying what is wrong for anything else."""
    try:
        document = _json_of_format(data, INDEX_FORMAT)
        records = document.get("records")
        if not isinstance(records, list):
            raise ValueError("its 'records' is missing or not a list")
        return [ReleaseManifest.from_document(record) for record in records]
    except ValueError as error:
        raise PublishError(
            f"{key} is not a pulumi-django releases index ({error}); "
            "remove it or restore it from a backup"
        ) from error


@dataclass(frozen=True)
class ReleaseRecords:
    """What is published under a prefix, as read: the records by `record_key`, the version of
    the index they came from (None: there is none yet), and the first layout's manifest
    objects they came from instead (deleted once the index holds them)."""

    manifests: dict[str, ReleaseManifest]
    index_etag: str | None
    legacy_objects: tuple[str, ...] = ()


@dataclass(frozen=True)
class PublishPlan:
    """Everything one publish does, in order: pending record, uploads, the release's record
    (the index holding `kept`), deletions.

    `dropped_manifests` are the records the index no longer holds (releases past `keep`,
    abandoned publishes, this one's pending record). `write_manifest` is false only when the
    release is already the newest, with the same keys, and there is nothing to upload or
    delete: the index already says all this publish would."""

    pending: ReleaseManifest
    manifest: ReleaseManifest
    uploads: tuple[LocalFile, ...]
    skipped: tuple[str, ...]
    deletions: tuple[str, ...]
    dropped_manifests: tuple[str, ...]
    kept: tuple[ReleaseManifest, ...]
    write_manifest: bool = True

    @property
    def kept_releases(self) -> tuple[str, ...]:
        return tuple(record.release for record in self.kept)


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

    def read(self, key: str) -> StoredObject | None:
        """The object, None when there is none."""
        ...

    def upload(self, file: LocalFile) -> None: ...

    def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
        """Writes `data` as `key` if the object is still the version `replacing` names (None:
        if there is none), and returns the new version; IndexConflict otherwise."""
        ...

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


def index_key(prefix: str) -> str:
    return f"{manifest_dir(prefix)}{INDEX_NAME}"


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
    guessed, encoding = _builtin_types().guess_type(f"file{suffix}", strict=False)
    return guessed if guessed and encoding is None else DEFAULT_CONTENT_TYPE


@functools.cache
def _builtin_types() -> mimetypes.MimeTypes:
    """The built-in table only: /etc/mime.types differs between machines, the published headers
    must not. Built on first use, not at import: `publish-static --help` needs none of it."""
    return mimetypes.MimeTypes(filenames=())


def _headers(relative: str, siblings: set[str]) -> tuple[str, str | None]:
    """Content type and encoding; a .gz/.br is a precompressed variant only next to its original."""
    suffix = PurePosixPath(relative).suffix
    encoding = PRECOMPRESSED_ENCODINGS.get(suffix)
    original = relative.removesuffix(suffix)
    if encoding and original in siblings:
        return content_type_for(original), encoding
    return content_type_for(relative), None


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


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
    """Each file with its digest and headers.

    Every file is read and hashed, every time: whether the bucket already holds a file is
    decided by its bytes, and the only proof of the local bytes is their digest. A size equal
    to the published object's, a hashed name (`x.<12 hex>.css`) or a manifest's record of what
    was uploaded under that key all describe the *remote* side or a naming convention; a
    rebuilt file with the same name and size but other bytes (a non-reproducible build, a file
    edited by hand, a name hashed by another tool) would pass them all and never be published.

    One thread, no pool: 2,000 files of 0.2-30 KB hash in about 0.1 s of CPU, less than a pool's
    per-file hand-offs cost, and `publish` runs this while the storage connects and lists (file
    reads and MD5 over more than 2 KB release the GIL)."""
    siblings = set(relatives)
    files = []
    for relative in relatives:
        path = source / relative
        digest, size = _md5_and_size(path)
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

    `manifests` maps record keys (`ReleaseManifest.record_key`) to the records (complete and
    pending) published under the prefix. The new release becomes the newest (a re-published
    rollback target too, so it is not pruned while it runs); the newest `keep` complete
    releases are kept, and a key is deleted only if a dropped release or an abandoned publish
    lists it and no kept release does.
    Publishing the newest release again, unchanged, writes nothing (`write_manifest` false).
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
    deletions = tuple(sorted(key for key in doomed - kept_keys if key in remote))
    # The pending record this publish writes before uploading goes once the index holds the
    # release's record.
    dropped_manifests = tuple(sorted(dropped | ({own_pending_key} if uploads else set())))
    changes = uploads or deletions or dropped_manifests
    current = None if changes else _current(manifests, own_key, keys)
    return PublishPlan(
        pending=pending,
        manifest=current or manifest,
        uploads=uploads,
        skipped=tuple(file.key for file in local_files if file.key not in uploading),
        deletions=deletions,
        dropped_manifests=dropped_manifests,
        kept=tuple(kept),
        write_manifest=current is None,
    )


def _current(
    manifests: Mapping[str, ReleaseManifest], own_key: str, keys: tuple[str, ...]
) -> ReleaseManifest | None:
    """The release's own record if it is complete, lists exactly `keys` and is newer than
    every other record: then publishing the release again changes nothing, and rewriting the
    index would only move its publishedAt."""
    own = manifests.get(own_key)
    if own is None or not own.complete or own.keys != keys:
        return None
    newer_or_as_new = sum(found.sequence >= own.sequence for found in manifests.values())
    return own if newer_or_as_new == 1 else None


def _same_content(remote: RemoteObject | None, local: LocalFile) -> bool:
    # A single-part upload's ETag is the MD5 of its bytes (SSE-S3 or no encryption).
    return remote is not None and remote.size == local.size and remote.etag == local.md5


# ---------------------------------------------------------------- running it


def read_records(storage: Storage, prefix: str) -> ReleaseRecords:
    """The prefix's records, from its releases index (one request), else from the first
    layout's manifest objects. Every record is needed: the kept ones' sequences order the
    releases and their keys are never deleted, the dropped ones' keys are what pruning deletes."""
    key = index_key(prefix)
    index = storage.read(key)
    if index is not None:
        records = parse_index(index.data, key)
        return ReleaseRecords({record.record_key: record for record in records}, index.etag)
    legacy = _read_manifest_objects(storage, prefix)
    return ReleaseRecords(legacy, None, tuple(legacy))


def _read_manifest_objects(storage: Storage, prefix: str) -> dict[str, ReleaseManifest]:
    """The first layout's manifests of the prefix, read all at once; those of a nested prefix
    (`static/admin/`) are not its own."""
    directory = manifest_dir(prefix)
    keys = [
        key
        for key in storage.list(directory)
        if "/" not in key[len(directory) :]
        and key.endswith(MANIFEST_SUFFIX)
        and key != index_key(prefix)
    ]
    if not keys:
        return {}
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=min(len(keys), MANIFEST_READERS)
    ) as pool:
        documents = list(pool.map(storage.read, keys))
    return {
        key: ReleaseManifest.from_manifest_object(document.data, key)
        for key, document in zip(keys, documents, strict=True)
        if document is not None  # deleted since the listing
    }


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
    another release, nothing is deleted before the index holds the new release's record, and
    running it again finishes the job. Its requests: the listing (one per 1,000 objects), the
    index's read, the k uploads, and two writes of the index when anything is uploaded (one
    when only the order changes, none when nothing does); a DeleteObjects per 1,000 pruned
    files on top, and on the first publish of a prefix, a listing of the first layout's
    manifests and a read and a deletion of those it finds.

    A publish of the same prefix that wrote the index meanwhile (IndexConflict) may have taken
    this one's pending record for an abandoned publish's and deleted what it uploaded: the
    publish starts again from the listing, up to PUBLISH_ATTEMPTS times, so that two publishes
    at once both end complete (the one that finishes last the newest) and nothing either
    uploaded is left out of the index."""
    check_release(release)
    check_layout(prefix, keep)
    relatives = list_source(source)  # a bad source fails before any request
    uploaded = 0
    # Hashing waits on the disk and the CPU, the listings on the network: all run at once. The
    # files are hashed once for every attempt: they do not change between attempts.
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as background:
        describing = background.submit(describe_files, source, relatives, prefix)

        def attempt() -> PublishResult:
            result = _publish_once(
                storage, describing, background, release, prefix, keep, workers, on_progress
            )
            return dataclasses.replace(result, uploaded=uploaded + result.uploaded)

        for _retry in range(PUBLISH_ATTEMPTS - 1):
            try:
                return attempt()
            except IndexConflict as conflict:
                uploaded += conflict.uploaded
        return attempt()  # the last: its conflict is the caller's


def _publish_once(
    storage: Storage,
    describing: concurrent.futures.Future[list[LocalFile]],
    background: concurrent.futures.Executor,
    release: str,
    prefix: str,
    keep: int,
    workers: int,
    on_progress: Callable[[PublishProgress], None] | None,
) -> PublishResult:
    """One attempt of `publish`: the local files come from `describing`, the index is read on
    `background` while this thread lists the prefix."""
    reading = background.submit(read_records, storage, prefix)
    remote = storage.list(prefix)
    local_files, records = describing.result(), reading.result()
    plan = plan_publish(
        local_files,
        remote,
        records.manifests,
        release=release,
        prefix=prefix,
        keep=keep,
        published_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    report = on_progress or (lambda _progress: None)
    report(PublishProgress(len(local_files), len(plan.uploads), 0))
    index, version = index_key(prefix), records.index_etag
    if plan.uploads:
        # Everything the index held (an earlier try's pending record of this release aside)
        # and this publish's pending record: what an interrupted publish leaves to clean up.
        before = [
            record for key, record in records.manifests.items() if key != plan.pending.record_key
        ]
        version = storage.write(
            index, index_json(prefix, [*before, plan.pending]), replacing=version
        )
        _upload_all(storage, plan.uploads, workers, len(local_files), report)
    try:
        if plan.write_manifest or records.legacy_objects:
            storage.write(index, index_json(prefix, plan.kept), replacing=version)
    except IndexConflict as conflict:
        conflict.uploaded = len(plan.uploads)
        raise
    if plan.deletions:
        storage.delete(plan.deletions)
    if records.legacy_objects:
        storage.delete(records.legacy_objects)
    return PublishResult(
        release=release,
        manifest_key=index,
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

    def read(self, key: str) -> StoredObject | None:
        try:
            data = (self.root / key).read_bytes()
        except FileNotFoundError:
            return None
        return StoredObject(data, _md5(data))

    def upload(self, file: LocalFile) -> None:
        with self._replacing(file.key) as temporary:
            shutil.copyfile(file.path, temporary)

    def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
        """A check then a rename, not one atomic step: enough to stop a second publish that
        read the index before the first wrote it, which is the race two publishes run."""
        current = self.read(key)
        if (current.etag if current else None) != replacing:
            raise IndexConflict(
                f"{key} changed while this publish ran (another publish of the same prefix?): "
                "publish again"
            )
        with self._replacing(key) as temporary:
            temporary.write_bytes(data)
        return _md5(data)

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
