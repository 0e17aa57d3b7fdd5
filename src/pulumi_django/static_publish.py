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
                                  its place in the order), the record of a publish in progress
                                  (the keys about to be uploaded), so that an abandoned publish
                                  is cleaned up by a later one, and the content (MD5 and size) of
                                  every object the kept releases name

One object for all the records: a publish reads it with one request and writes it twice (its
pending record before the uploads, the new release's record after), whatever the number of
releases kept, and each write is conditional on the version read, so that two publishes at once
cannot lose each other's record.

The index's contents are what a publish compares the local files with, instead of a listing of
the prefix: the index is written only after the uploads it vouches for succeeded, and nothing of
ours deletes an object a kept release names (but a prune racing a rollback published at the same
moment: docs/static-files.md), so the listing would say the same, at one request per 1,000
objects and the time the server takes to list them. An object deleted behind our back (a
lifecycle rule, a hand) is not seen that way: `verify` lists the prefix and compares with that,
uploading what the release needs. A prefix is listed anyway where the index cannot vouch for it:
no contents yet (the first publish, an index of an earlier version), or a publish in progress or
abandoned (whose uploads it does not know).

The first layout kept one object per record (`_releases/static/<release>.json`,
`<release>.pending.json`): a prefix without an index is read that way, once, and its first
publish folds those records into the index and deletes them.
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
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, Protocol

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
# Files up to this size are hashed from one read (`_md5_and_size`).
WHOLE_READ_LIMIT = 8 * 1024 * 1024
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


# An object a kept release names whose content the index does not vouch for (the listing that
# wrote the index did not find it): it may exist by now, so it is deleted when no kept release
# names it, and it is uploaded again when the release needs it.
UNVERIFIED = RemoteObject(etag="", size=-1)


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


def index_json(
    prefix: str,
    records: Sequence[ReleaseManifest],
    objects: Mapping[str, RemoteObject] | None = None,
) -> bytes:
    """The releases index holding `records`, newest first, and `objects`, the content of the
    objects they name (`"key": [md5, size]`); None leaves the contents out: a publish that
    reads it lists the prefix instead."""
    ordered = sorted(records, key=lambda record: record.sequence, reverse=True)
    document: dict[str, object] = {
        "format": INDEX_FORMAT,
        "prefix": prefix,
        "records": [record.to_document() for record in ordered],
    }
    if objects is not None:
        document["objects"] = {
            key: [found.etag, found.size] for key, found in sorted(objects.items())
        }
    return json.dumps(document, indent=1).encode()


@dataclass(frozen=True)
class ReleasesIndex:
    """A releases index as read: its records, and the contents it vouches for (None: an index
    of an earlier version, which held none)."""

    records: list[ReleaseManifest]
    objects: dict[str, RemoteObject] | None


def parse_index(data: bytes, key: str) -> ReleasesIndex:
    """A releases index; PublishError saying what is wrong for anything else."""
    try:
        document = _json_of_format(data, INDEX_FORMAT)
        records = document.get("records")
        if not isinstance(records, list):
            raise ValueError("its 'records' is missing or not a list")
        return ReleasesIndex(
            [ReleaseManifest.from_document(record) for record in records],
            _objects_of(document.get("objects")),
        )
    except ValueError as error:
        raise PublishError(
            f"{key} is not a pulumi-django releases index ({error}); "
            "remove it or restore it from a backup"
        ) from error


def _objects_of(document: object) -> dict[str, RemoteObject] | None:
    """The index's `objects`; ValueError saying what is wrong."""
    if document is None:
        return None
    if not isinstance(document, dict):
        raise ValueError("its 'objects' is not a JSON object")
    objects = {}
    for key, content in document.items():
        match content:
            case [str(etag), int(size)] if not isinstance(size, bool) and size >= 0:
                objects[key] = RemoteObject(etag, size)
            case _:
                raise ValueError(f"its 'objects' entry {key!r} is not [md5, size]")
    return objects


@dataclass(frozen=True)
class ReleaseRecords:
    """What is published under a prefix, as read: the records by `record_key`, the version of
    the index they came from (None: there is none yet), the contents the index vouches for
    (None: it holds none, the prefix must be listed), and the first layout's manifest objects
    the records came from instead (deleted once the index holds them)."""

    manifests: dict[str, ReleaseManifest]
    index_etag: str | None
    objects: dict[str, RemoteObject] | None = None
    legacy_objects: tuple[str, ...] = ()

    @property
    def vouched(self) -> bool:
        """Whether the index knows everything published: it holds contents, and no publish
        is in progress or abandoned (whose uploads it does not know)."""
        return self.objects is not None and all(
            record.complete for record in self.manifests.values()
        )

    def remote(self) -> dict[str, RemoteObject]:
        """What the prefix holds as far as a vouching index knows: the contents it holds, and
        every other key a record names as UNVERIFIED."""
        assert self.objects is not None and self.vouched, "the index cannot vouch: list"
        named = {key: UNVERIFIED for record in self.manifests.values() for key in record.keys}
        return {**named, **self.objects}


@dataclass(frozen=True)
class PublishPlan:
    """Everything one publish does, in order: pending record, uploads, the release's record
    (the index holding `kept` and `objects`), deletions.

    `dropped_manifests` are the records the index no longer holds (releases past `keep`,
    abandoned publishes, this one's pending record). `objects` is the content of every object
    the kept releases name once the uploads are done, as far as it is known. `write_manifest`
    is false only when the release is already the newest, with the same keys, and there is
    nothing to upload or delete: the index already says all this publish would, but perhaps
    not `objects`."""

    pending: ReleaseManifest
    manifest: ReleaseManifest
    uploads: tuple[LocalFile, ...]
    skipped: tuple[str, ...]
    deletions: tuple[str, ...]
    dropped_manifests: tuple[str, ...]
    kept: tuple[ReleaseManifest, ...]
    objects: Mapping[str, RemoteObject]
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


def is_hashed(key: str) -> bool:
    """Whether the file's name carries a hash of its content (`name.<12 hex>.ext`)."""
    return HASHED_NAME.search(key.rsplit("/", 1)[-1]) is not None


def cache_control_for(key: str) -> str:
    return IMMUTABLE_CACHE_CONTROL if is_hashed(key) else SHORT_CACHE_CONTROL


def content_type_for(name: str) -> str:
    return _content_type_for_suffix(_suffix(name).lower())


def _suffix(name: str) -> str:
    """The suffix of a file's name as PurePosixPath(name).suffix gives it on Python 3.11-3.13
    (`.css`; none for `.htaccess` or `name.`), without a path object for each of thousands of
    files."""
    base = name.rpartition("/")[2]
    dot = base.rfind(".")
    return base[dot:] if 0 < dot < len(base) - 1 else ""


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
    suffix = _suffix(relative)
    encoding = PRECOMPRESSED_ENCODINGS.get(suffix)
    original = relative.removesuffix(suffix)
    if encoding and original in siblings:
        return content_type_for(original), encoding
    return content_type_for(relative), None


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _md5_and_size(path: Path) -> tuple[str, int]:
    """One read and one digest for a file of the usual sizes (a static file is mostly under
    100 KB); a large one is read in chunks, never whole."""
    with path.open("rb", buffering=0) as stream:
        if os.fstat(stream.fileno()).st_size > WHOLE_READ_LIMIT:
            digest = hashlib.file_digest(stream, lambda: hashlib.md5(usedforsecurity=False))
            return digest.hexdigest(), stream.tell()
        data = stream.readall()
    return _md5(data), len(data)


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
    relatives = list_source(source)
    return describe_files(source, relatives, prefix, _digests(source, relatives))


@contextlib.contextmanager
def scanning(source: Path, prefix: str) -> Iterator[Callable[[], list[LocalFile]]]:
    """`scan_source`, hashed in a child process while the caller goes on; the function it
    yields waits for the files.

    A publish with little to upload spends most of its time on two things that need no
    result of each other: the storage's start-up (botocore's imports and the client, 0.26-0.38
    s here) and hashing the files (2,000 files, 41 MB: 0.13-0.2 s). Both hold the
    interpreter's lock, so a thread would not run them side by side (it made hashing three
    times slower); a forked child runs on the other core. The source is listed first, here:
    a bad source still fails before any request.

    Forked only from a process with a single thread (a fork copies one thread and whatever
    lock the others held, which the child could then wait on forever) and where fork exists;
    elsewhere (a Pulumi provider, a test runner, Windows) the files are hashed here, first."""
    relatives = list_source(source)
    child = _DigestChild.start(source, relatives)
    if child is None:
        files = describe_files(source, relatives, prefix, _digests(source, relatives))
        yield lambda: files
        return
    with child:
        yield functools.cache(lambda: describe_files(source, relatives, prefix, child.digests()))


class _DigestChild:
    """A forked process that hashes `relatives` and sends their digests back through a pipe
    (as JSON)."""

    def __init__(self, pid: int, read_end: int) -> None:
        self._pid = pid
        self._read_end: int | None = read_end  # None once handed to the reader
        self._reaped = False

    @classmethod
    def start(cls, source: Path, relatives: Sequence[str]) -> _DigestChild | None:
        """The child, or None where none can be forked (another thread runs, no fork, the system
        refuses one): the caller then hashes the files itself."""
        if not hasattr(os, "fork") or threading.active_count() > 1:
            return None
        read_end, write_end = os.pipe()
        # The child keeps Ctrl-C and SIGTERM blocked (the parent stops it): a KeyboardInterrupt
        # raised in it would go on to run the parent's publish a second time.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read_end)
            os.close(write_end)
            return None
        if pid == 0:
            cls._run_child(source, relatives, read_end, write_end)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(write_end)
        return cls(pid, read_end)

    @staticmethod
    def _run_child(
        source: Path, relatives: Sequence[str], read_end: int, write_end: int
    ) -> NoReturn:
        """Never returns: the child leaves through os._exit, running none of the parent's exit
        handlers and flushing none of its buffers. It holds no read end of its own pipe, so a
        parent gone (killed) leaves it a broken pipe, not a write that waits forever."""
        status = 1
        try:
            os.close(read_end)
            try:
                message: tuple[str, object] = ("digests", _digests(source, relatives))
            except PublishError as error:
                message = ("error", str(error))
            with os.fdopen(write_end, "wb") as stream:
                stream.write(json.dumps(message).encode())
            status = 0
        finally:
            os._exit(status)

    def digests(self) -> list[tuple[str, int]]:
        read_end, self._read_end = self._read_end, None
        if read_end is None:
            raise PublishError("the files' digests were already read")
        with os.fdopen(read_end, "rb") as stream:
            data = stream.read()
        code = self._reap()
        if not data or code != 0:
            raise PublishError(
                f"hashing the files failed in its child process (exit status {code}); "
                "nothing was published"
            )
        kind, value = json.loads(data)
        if kind == "error":
            raise PublishError(value)
        return [(digest, size) for digest, size in value]

    def _reap(self) -> int:
        self._reaped = True
        _pid, status = os.waitpid(self._pid, 0)
        return os.waitstatus_to_exitcode(status)

    def __enter__(self) -> _DigestChild:
        return self

    def __exit__(self, *_exc: object) -> None:
        """A publish that failed before it needed the files (no such bucket), or was
        interrupted, stops the child."""
        if self._read_end is not None:
            os.close(self._read_end)
            self._read_end = None
        if not self._reaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            self._reap()


def _digests(source: Path, relatives: Sequence[str]) -> list[tuple[str, int]]:
    """Each file's MD5 and size: whether the bucket already holds a file is decided by its
    bytes, and the only proof of the local bytes is their digest. A size equal to the
    published object's, a hashed name (`x.<12 hex>.css`) or a manifest's record of what was
    uploaded under that key all describe the *remote* side or a naming convention; a rebuilt
    file with the same name and size but other bytes (a non-reproducible build, a file edited
    by hand, a name hashed by another tool) would pass them all and never be published.

    One thread, no pool: 2,000 files of 0.2-30 KB (41 MB) hash in 0.13-0.2 s here, less than a
    pool's per-file hand-offs cost."""
    digests = []
    for relative in relatives:
        path = source / relative
        try:
            digests.append(_md5_and_size(path))
        except OSError as error:
            raise PublishError(f"cannot read {path}: {error.strerror or error}") from error
    return digests


def describe_files(
    source: Path, relatives: Sequence[str], prefix: str, digests: Sequence[tuple[str, int]]
) -> list[LocalFile]:
    """Each file with its digest (`_digests`) and headers."""
    siblings = set(relatives)
    files = []
    for relative, (digest, size) in zip(relatives, digests, strict=True):
        content_type, encoding = _headers(relative, siblings)
        files.append(
            LocalFile(
                key=prefix + relative,
                path=source / relative,
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
    pending) published under the prefix; `remote` is what the prefix holds, listed or as the
    index says (`ReleaseRecords.remote`). The new release becomes the newest (a re-published
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
    contents = {**remote, **{file.key: RemoteObject(file.md5, file.size) for file in local_files}}
    # Another release's pending record is a publish that may still be running: it may yet
    # overwrite the keys whose content changes from release to release (unhashed names; a hashed
    # name's bytes are its name's), so the index does not vouch for those, and the next publish
    # that needs one uploads it again.
    contested = {
        key
        for record in manifests.values()
        if not record.complete and record.release != release
        for key in record.keys
        if not is_hashed(key)
    }
    objects = {
        key: contents[key]
        for key in kept_keys - contested
        if key in contents and contents[key] != UNVERIFIED
    }
    return PublishPlan(
        pending=pending,
        manifest=current or manifest,
        uploads=uploads,
        skipped=tuple(file.key for file in local_files if file.key not in uploading),
        deletions=deletions,
        dropped_manifests=dropped_manifests,
        # Unchanged, the release keeps its record (an index written for its contents alone
        # does not move it).
        kept=(current or manifest, *kept[1:]),
        objects=objects,
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
        parsed = parse_index(index.data, key)
        return ReleaseRecords(
            {record.record_key: record for record in parsed.records}, index.etag, parsed.objects
        )
    legacy = _read_manifest_objects(storage, prefix)
    return ReleaseRecords(legacy, None, None, tuple(legacy))


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
    verify: bool = False,
    on_progress: Callable[[PublishProgress], None] | None = None,
) -> PublishResult:
    """Publishes `source` as `release`. Safe to interrupt: uploads never change a hashed file of
    another release, nothing is deleted before the index holds the new release's record, and
    running it again finishes the job. Its requests: the index's read, the k uploads, and two
    writes of the index when anything is uploaded (one when only the order or the index's
    contents change, none when nothing does); a DeleteObjects per 1,000 pruned files on top.
    The prefix is listed too (one request per 1,000 objects) with `verify`, or where the index
    cannot vouch for it (`ReleaseRecords.vouched`); on the first publish of a prefix, the first
    layout's manifests are listed, read and deleted.

    A publish of the same prefix that wrote the index meanwhile (IndexConflict) may have taken
    this one's pending record for an abandoned publish's and deleted what it uploaded: the
    publish starts again from the index, up to PUBLISH_ATTEMPTS times, so that two publishes
    at once both end complete (the one that finishes last the newest) and nothing either
    uploaded is left out of the index."""
    check_release(release)
    check_layout(prefix, keep)
    # Hashed once for every attempt (the files do not change between attempts), beside the
    # first attempt's start-up and read of the index. A missing or empty source fails before
    # any request; a file that cannot be read, after the index's read and before any write.
    with scanning(source, prefix) as local_files:
        uploaded = 0

        def attempt() -> PublishResult:
            result = _publish_once(
                storage, local_files, release, prefix, keep, workers, verify, on_progress
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
    scanned: Callable[[], Sequence[LocalFile]],
    release: str,
    prefix: str,
    keep: int,
    workers: int,
    verify: bool,
    on_progress: Callable[[PublishProgress], None] | None,
) -> PublishResult:
    """One attempt of `publish`."""
    records = read_records(storage, prefix)
    remote = records.remote() if records.vouched and not verify else storage.list(prefix)
    local_files = scanned()
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
        pending = index_json(prefix, [*before, plan.pending], records.objects)
        version = storage.write(index, pending, replacing=version)
        _upload_all(storage, plan.uploads, workers, len(local_files), report)
    try:
        if plan.write_manifest or records.legacy_objects or plan.objects != records.objects:
            storage.write(index, index_json(prefix, plan.kept, plan.objects), replacing=version)
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
