"""Publishing static releases: the pure plan, the local-directory storage, and (slow) the S3
storage, the CLI and the dynamic provider against moto running as a real S3 server on loopback."""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest
from fake_aws import AWS_TEST_ENVIRONMENT, moto_server
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulumi_django import cli, static_publish
from pulumi_django.config import static as static_config
from pulumi_django.errors import PulumiDjangoError
from pulumi_django.providers.static_release import (
    StaticRelease,
    StaticReleaseError,
    StaticReleaseProvider,
    directory_fingerprint,
)
from pulumi_django.providers.static_storage import S3Storage
from pulumi_django.recorder import record
from pulumi_django.static_publish import (
    HASHED_NAME,
    IMMUTABLE_CACHE_CONTROL,
    SHORT_CACHE_CONTROL,
    DirectoryStorage,
    IndexConflict,
    LocalFile,
    PublishError,
    PublishProgress,
    ReleaseManifest,
    RemoteObject,
    StoredObject,
    index_json,
    index_key,
    manifest_key,
    parse_index,
    plan_publish,
    publish,
    scan_source,
)

PUBLISH_CLI = str(Path(sys.executable).parent / "pulumi-django")


# ---------------------------------------------------------------- helpers


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def hashed(name: str, content: bytes) -> str:
    """The name Django's ManifestStaticFilesStorage gives a file: `stem.<12 hex>.ext`."""
    stem, _, extension = name.rpartition(".")
    return f"{stem}.{md5(content)[:12]}.{extension}"


def write_release(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def collected(version: str, shared: int = 5, own: int = 2) -> dict[str, bytes]:
    """A collectstatic output: files shared by every version, a few of this version's own,
    hashed and original names, a manifest and precompressed variants."""
    files: dict[str, bytes] = {}
    for number in range(shared):
        content = f"/* shared {number} */".encode()
        files[f"css/{hashed(f'shared{number}.css', content)}"] = content
    for number in range(own):
        content = f"console.log('{version} {number}')".encode()
        name = hashed(f"app{number}.js", content)
        files[f"js/{name}"] = content
        files[f"js/{name}.gz"] = gzip.compress(content, mtime=0)
        files[f"js/app{number}.js"] = content
    files["staticfiles.json"] = json.dumps({"version": version}).encode()
    return files


class MemoryStorage:
    """The Storage protocol over a dict, for the engine's rules without any I/O."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        return {
            key: RemoteObject(md5(data), len(data))
            for key, data in self.objects.items()
            if key.startswith(prefix)
        }

    def read(self, key: str) -> StoredObject | None:
        data = self.objects.get(key)
        return None if data is None else StoredObject(data, md5(data))

    def upload(self, file: LocalFile) -> None:
        self.objects[file.key] = file.path.read_bytes()

    def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
        current = self.read(key)
        if (current.etag if current else None) != replacing:
            raise IndexConflict(f"{key} changed")
        self.objects[key] = data
        return md5(data)

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)


class RecordingStorage(MemoryStorage):
    """A MemoryStorage that records every change it is asked for (write, upload, delete) and
    every prefix it lists."""

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[tuple[str, str]] = []
        self.listed: list[str] = []

    def list(self, prefix: str) -> dict[str, RemoteObject]:
        self.listed.append(prefix)
        return super().list(prefix)

    def upload(self, file: LocalFile) -> None:
        self.changes.append(("upload", file.key))
        super().upload(file)

    def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
        self.changes.append(("write", key))
        return super().write(key, data, replacing=replacing)

    def delete(self, keys: Sequence[str]) -> None:
        self.changes.extend(("delete", key) for key in keys)
        super().delete(keys)


def local_file(key: str, content: bytes = b"x") -> LocalFile:
    return LocalFile(
        key, Path("/nonexistent"), md5(content), len(content), "text/css", None, "public"
    )


def manifest(release: str, sequence: int, keys: Sequence[str], complete: bool = True) -> Any:
    found = ReleaseManifest(
        release, "static/", sequence, complete, "2025-01-01T00:00:00", tuple(keys)
    )
    return found.record_key, found


def legacy_manifest_object(record: ReleaseManifest) -> bytes:
    """A release's manifest object as the first layout wrote it."""
    document = {"format": static_publish.MANIFEST_FORMAT, **record.to_document()}
    return json.dumps(document, indent=1).encode()


def index_of(objects: dict[str, bytes], prefix: str = "static/") -> list[ReleaseManifest]:
    key = index_key(prefix)
    return parse_index(objects[key], key).records


def contents_of(objects: dict[str, bytes], prefix: str = "static/") -> Any:
    """The contents the index vouches for, and the contents the storage holds under those keys."""
    key = index_key(prefix)
    vouched = parse_index(objects[key], key).objects
    held = {name: RemoteObject(md5(objects[name]), len(objects[name])) for name in vouched or ()}
    return vouched, held


# ---------------------------------------------------------------- the pure plan


def test_plan_uploads_only_missing_or_changed_content() -> None:
    files = [local_file("static/a.css", b"a"), local_file("static/b.css", b"b")]
    remote = {
        "static/a.css": RemoteObject(md5(b"a"), 1),
        "static/b.css": RemoteObject(md5(b"old"), 3),
    }
    plan = plan_publish(
        files, remote, {}, release="r1", prefix="static/", keep=3, published_at="now"
    )
    assert [file.key for file in plan.uploads] == ["static/b.css"]
    assert plan.skipped == ("static/a.css",)
    assert plan.manifest.keys == ("static/a.css", "static/b.css")
    assert plan.manifest.sequence == 1


def test_plan_keeps_the_newest_releases_and_deletes_only_what_dropped_ones_alone_used() -> None:
    manifests = dict(
        [
            manifest("r1", 1, ["static/old.css", "static/shared.css"]),
            manifest("r2", 2, ["static/r2.css", "static/shared.css"]),
            manifest("r3", 3, ["static/r3.css", "static/shared.css"]),
        ]
    )
    remote = {
        key: RemoteObject("etag", 1)
        for key in ["static/old.css", "static/shared.css", "static/r2.css", "static/r3.css"]
    } | {"static/foreign.css": RemoteObject("etag", 1)}
    plan = plan_publish(
        [local_file("static/r4.css"), local_file("static/shared.css")],
        remote,
        manifests,
        release="r4",
        prefix="static/",
        keep=3,
        published_at="now",
    )
    assert plan.kept_releases == ("r4", "r3", "r2")
    assert plan.deletions == ("static/old.css",)  # never shared.css, never a foreign key
    assert plan.dropped_manifests == tuple(
        sorted([manifest_key("static/", "r1"), manifest_key("static/", "r4", complete=False)])
    )
    assert plan.manifest.sequence == 4


def test_republishing_an_old_release_makes_it_the_newest() -> None:
    """A rollback target must not be pruned by the next publish while it runs."""
    manifests = dict(
        [
            manifest("r1", 1, ["static/r1.css"]),
            manifest("r2", 2, ["static/r2.css"]),
            manifest("r3", 3, ["static/r3.css"]),
        ]
    )
    remote = {f"static/r{n}.css": RemoteObject(md5(b"x"), 1) for n in (1, 2, 3)}
    rollback = plan_publish(
        [local_file("static/r2.css")],
        remote,
        manifests,
        release="r2",
        prefix="static/",
        keep=2,
        published_at="now",
    )
    assert rollback.kept_releases == ("r2", "r3")
    assert rollback.manifest.sequence == 4
    assert rollback.deletions == ("static/r1.css",)
    assert rollback.uploads == ()


def test_publishing_the_newest_release_again_unchanged_writes_nothing() -> None:
    """Its manifest already says everything a new one would; an older release published
    again (a rollback), or the newest with other files, is written as the newest."""
    manifests = dict([manifest("r1", 1, ["static/r1.css"]), manifest("r2", 2, ["static/r2.css"])])
    remote = {f"static/r{n}.css": RemoteObject(md5(b"x"), 1) for n in (1, 2, 3)}

    def again(release: str, *keys: str) -> Any:
        files = [local_file(key) for key in keys]
        return plan_publish(
            files, remote, manifests, release=release, prefix="static/", keep=5, published_at="now"
        )

    same = again("r2", "static/r2.css")
    assert same.write_manifest is False
    assert same.manifest == manifests[manifest_key("static/", "r2")]
    assert (same.uploads, same.deletions, same.dropped_manifests) == ((), (), ())
    assert same.kept_releases == ("r2", "r1")
    rollback = again("r1", "static/r1.css")
    assert (rollback.write_manifest, rollback.manifest.sequence) == (True, 3)
    rebuilt = again("r2", "static/r2.css", "static/r3.css")
    assert (rebuilt.write_manifest, rebuilt.manifest.sequence) == (True, 3)


def test_a_second_publish_of_the_same_release_writes_nothing(tmp_path: Path) -> None:
    storage = RecordingStorage()
    source = write_release(tmp_path / "v1", collected("v1"))
    publish(storage, source, "v1", prefix="static/", keep=5)
    storage.changes.clear()
    again = publish(storage, source, "v1", prefix="static/", keep=5)
    assert again.uploaded == 0
    assert storage.changes == []


def test_the_index_vouches_for_what_is_published_so_a_publish_lists_nothing(
    tmp_path: Path,
) -> None:
    storage = RecordingStorage()
    for version in ("v1", "v2", "v3"):
        publish(
            storage,
            write_release(tmp_path / version, collected(version)),
            version,
            prefix="static/",
            keep=2,
        )
    # The first publish lists the prefix and the first layout's manifests (an empty prefix has
    # no index yet); the others trust the index.
    assert storage.listed == ["_releases/static/", "static/"]
    vouched, held = contents_of(storage.objects)
    kept = {key for record in index_of(storage.objects) for key in record.keys}
    assert vouched == held
    assert set(vouched) == kept == {key for key in storage.objects if key.startswith("static/")}


def test_an_object_deleted_behind_the_index_s_back_comes_back_with_verify(
    tmp_path: Path,
) -> None:
    """The index vouches for what the publishes did, not for a lifecycle rule or a hand: a
    publish trusts it, `verify` compares with a listing and mends."""
    storage = RecordingStorage()
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)
    publish(storage, source, "v1", prefix="static/", keep=5)
    lost = next(f"static/{name}" for name in immutable(files))
    del storage.objects[lost]

    trusted = publish(storage, source, "v1", prefix="static/", keep=5)
    assert (trusted.uploaded, lost in storage.objects) == (0, False)
    storage.listed.clear()
    storage.changes.clear()
    verified = publish(storage, source, "v1", prefix="static/", keep=5, verify=True)
    assert (verified.uploaded, verified.skipped) == (1, len(files) - 1)
    assert storage.objects[lost] == files[lost.removeprefix("static/")]
    assert storage.listed == ["static/"]
    assert ("upload", lost) in storage.changes
    vouched, held = contents_of(storage.objects)
    assert vouched == held


def test_verify_mends_the_release_it_publishes_and_keeps_the_others_records(
    tmp_path: Path,
) -> None:
    """A file lost from an older kept release is left out of the index's contents by a
    verifying publish of another release, which moves no record, and comes back when its
    release is published again (a rollback)."""
    storage = RecordingStorage()
    first, second = collected("v1"), collected("v2")
    one, two = write_release(tmp_path / "v1", first), write_release(tmp_path / "v2", second)
    publish(storage, one, "v1", prefix="static/", keep=5)
    publish(storage, two, "v2", prefix="static/", keep=5)
    before = index_of(storage.objects)
    lost = next(f"static/{name}" for name in immutable(first) if name not in second)
    del storage.objects[lost]

    verified = publish(storage, two, "v2", prefix="static/", keep=5, verify=True)
    assert verified.uploaded == 0
    assert index_of(storage.objects) == before  # the same records, sequence and time
    vouched, held = contents_of(storage.objects)
    assert lost not in (vouched or {})
    assert vouched == held
    rollback = publish(storage, one, "v1", prefix="static/", keep=5)
    # The lost file, and the unhashed names v2 overwrote.
    overwritten = [name for name in first if name not in immutable(first) and name in second]
    assert rollback.uploaded == 1 + len(overwritten)
    assert storage.objects[lost] == first[lost.removeprefix("static/")]
    vouched, held = contents_of(storage.objects)
    assert lost in (vouched or {})
    assert vouched == held


def test_the_index_does_not_vouch_for_what_a_running_publish_may_still_overwrite() -> None:
    """Another release's pending record may be a publish still uploading: its unhashed files
    (overwritten by every release) may change after this publish; its hashed ones cannot."""
    shared, hashed_key = "static/staticfiles.json", "static/app.0123456789ab.js"
    manifests = dict(
        [
            manifest("v1", 1, [shared, hashed_key]),
            manifest("v2", 2, [shared, hashed_key], complete=False),
        ]
    )
    remote = {key: RemoteObject(md5(b"x"), 1) for key in (shared, hashed_key)}

    def vouched_after_publishing(release: str) -> set[str]:
        files = [local_file(shared), local_file(hashed_key)]
        plan = plan_publish(
            files, remote, manifests, release=release, prefix="static/", keep=5, published_at="now"
        )
        return set(plan.objects)

    assert vouched_after_publishing("v3") == {hashed_key}
    # The pending record of the same release is an earlier try of this publish: same files.
    assert vouched_after_publishing("v2") == {shared, hashed_key}


def test_an_index_without_contents_is_listed_once_then_holds_them(tmp_path: Path) -> None:
    """An index an earlier version wrote names the keys, not their contents: the next publish
    lists the prefix, writes the contents, and the one after that lists nothing."""
    storage = RecordingStorage()
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)
    publish(storage, source, "v1", prefix="static/", keep=5)
    records = index_of(storage.objects)
    storage.objects[index_key("static/")] = index_json("static/", records)
    storage.listed.clear()

    again = publish(storage, source, "v1", prefix="static/", keep=5)
    assert (again.uploaded, storage.listed) == (0, ["static/"])
    vouched, held = contents_of(storage.objects)
    assert vouched == held
    assert len(vouched or ()) == len(files)
    publish(storage, source, "v1", prefix="static/", keep=5)
    assert storage.listed == ["static/"]


def test_an_abandoned_publish_is_cleaned_up_but_never_a_kept_release() -> None:
    manifests = dict(
        [
            manifest("r1", 1, ["static/r1.css", "static/both.css"]),
            manifest("broken", 2, ["static/broken.css", "static/both.css"], complete=False),
        ]
    )
    remote = {
        key: RemoteObject("etag", 1)
        for key in ["static/r1.css", "static/both.css", "static/broken.css"]
    }
    plan = plan_publish(
        [local_file("static/r3.css")],
        remote,
        manifests,
        release="r3",
        prefix="static/",
        keep=2,
        published_at="now",
    )
    assert plan.kept_releases == ("r3", "r1")
    assert plan.deletions == ("static/broken.css",)
    assert manifest_key("static/", "broken", complete=False) in plan.dropped_manifests


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    releases=st.lists(
        st.sets(st.integers(min_value=0, max_value=12), min_size=1, max_size=6),
        min_size=1,
        max_size=8,
    ),
    keep=st.integers(min_value=2, max_value=4),
)
def test_every_kept_release_stays_whole_and_nothing_else_of_ours_stays(
    releases: list[set[int]], keep: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    storage = MemoryStorage()
    sources = []
    for number, pool_items in enumerate(releases):
        files = {
            f"f{item}.{md5(str(item).encode())[:12]}.css": str(item).encode() for item in pool_items
        }
        source = write_release(tmp_path_factory.mktemp("release"), files)
        sources.append(files)
        publish(storage, source, f"r{number}", keep=keep, prefix="static/")
        window = sources[-keep:]
        for kept in window:
            for name, content in kept.items():
                assert storage.objects[f"static/{name}"] == content
        live = {f"static/{name}" for kept in window for name in kept}
        published = {key for key in storage.objects if key.startswith("static/")}
        assert published == live
        vouched, held = contents_of(storage.objects)
        assert vouched == held
        assert set(vouched) == live


# ---------------------------------------------------------------- files and headers


def test_headers_follow_names_and_precompressed_variants(tmp_path: Path) -> None:
    css = b"body{}"
    name = hashed("site.css", css)
    source = write_release(
        tmp_path,
        {
            f"css/{name}": css,
            f"css/{name}.gz": gzip.compress(css),
            f"css/{name}.br": b"brotli",
            "css/site.css": css,
            "downloads/data.tar.gz": b"archive",
            f"fonts/{hashed('icons.woff2', b'font')}": b"font",
            "staticfiles.json": b"{}",
        },
    )
    files = {file.key: file for file in scan_source(source, "static/")}
    assert files[f"static/css/{name}"].content_type == "text/css"
    assert files[f"static/css/{name}"].cache_control == IMMUTABLE_CACHE_CONTROL
    assert files[f"static/css/{name}"].content_encoding is None
    assert (
        files[f"static/css/{name}.gz"].content_type,
        files[f"static/css/{name}.gz"].content_encoding,
    ) == ("text/css", "gzip")
    assert files[f"static/css/{name}.br"].content_encoding == "br"
    assert files[f"static/css/{name}.gz"].cache_control == IMMUTABLE_CACHE_CONTROL
    assert files["static/css/site.css"].cache_control == SHORT_CACHE_CONTROL
    assert files["static/staticfiles.json"].cache_control == SHORT_CACHE_CONTROL
    # A .gz with no original beside it is a download, not an encoding of something else.
    archive = files["static/downloads/data.tar.gz"]
    assert (archive.content_type, archive.content_encoding) == ("application/gzip", None)
    assert files[f"static/fonts/{hashed('icons.woff2', b'font')}"].content_type == "font/woff2"
    assert files[f"static/css/{name}"].md5 == md5(css)


# Runs `scanning` in a fresh interpreter (a single thread, as the command line has, unless the
# mode starts a second one) and prints what it gave and how many children it forked.
SCANNING = """
import json, os, sys, threading
from pathlib import Path
from pulumi_django import static_publish
source, mode = Path(sys.argv[1]), sys.argv[2]
forked = []
fork = os.fork
def counting_fork():
    if mode == "refused":
        raise BlockingIOError(11, "Resource temporarily unavailable")
    pid = fork()
    if pid:
        forked.append(pid)
    return pid
os.fork = counting_fork
if mode == "orphaned":  # the parent killed while the child hashes: the child must not linger
    with static_publish.scanning(source, "static/") as scanned:
        print(json.dumps({"child": forked[0]}), flush=True)
        os._exit(0)
if mode.startswith("threaded"):
    threading.Thread(target=threading.Event().wait, daemon=True).start()
if mode.endswith("unreadable"):
    hash_file = static_publish._md5_and_size
    def refusing(path):
        if path.name == "locked.css":
            raise PermissionError(13, "Permission denied", str(path))
        return hash_file(path)
    static_publish._md5_and_size = refusing
result = {}
try:
    with static_publish.scanning(source, "static/") as scanned:
        if mode != "abandoned":
            result["files"] = [[f.key, f.md5, f.size, f.content_type] for f in scanned()]
except static_publish.PublishError as error:
    result["error"] = str(error)
def reaped(pid):
    try:
        os.waitpid(pid, os.WNOHANG)  # (0, 0) running, (pid, status) ended: neither waited for
    except ChildProcessError:
        return True
    return False
result["unreaped"] = [pid for pid in forked if not reaped(pid)]
result["forked"] = len(forked)
print(json.dumps(result))
"""


def scanned_in_a_fresh_process(source: Path, mode: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCANNING, str(source), mode],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize(("mode", "forked"), [("single", 1), ("threaded", 0), ("refused", 0)])
def test_scanning_hashes_in_a_child_only_from_a_single_thread(
    tmp_path: Path, mode: str, forked: int
) -> None:
    """The child's digests are the ones hashed here; a process with a second thread (a Pulumi
    provider, a test runner), or one the system refuses a fork, hashes without forking; either
    way no child is left behind."""
    source = write_release(tmp_path / "v1", collected("v1"))
    expected = [
        [file.key, file.md5, file.size, file.content_type]
        for file in scan_source(source, "static/")
    ]
    assert scanned_in_a_fresh_process(source, mode) == {
        "files": expected,
        "unreaped": [],
        "forked": forked,
    }


@pytest.mark.parametrize("mode", ["unreadable", "threaded unreadable"])
def test_an_unreadable_file_is_one_clear_error_from_the_child_or_not(
    tmp_path: Path, mode: str
) -> None:
    source = write_release(tmp_path / "v1", {**collected("v1"), "css/locked.css": b"x"})
    result = scanned_in_a_fresh_process(source, mode)
    assert result["error"] == f"cannot read {source / 'css/locked.css'}: Permission denied"
    assert result["unreaped"] == []


def test_a_child_whose_parent_is_killed_ends_instead_of_waiting_to_write(tmp_path: Path) -> None:
    """More digests than a pipe holds (64 KiB): with no reader left, the child's write fails
    (it keeps no read end of its own) and it exits."""
    source = write_release(tmp_path / "v1", {f"f{n}.css": b"x" for n in range(2500)})
    child = scanned_in_a_fresh_process(source, "orphaned")["child"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process_lives(child):
        time.sleep(0.05)
    assert not process_lives(child)


def process_lives(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped by whoever adopted it."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def test_a_publish_that_fails_before_it_needs_the_files_stops_the_child(
    tmp_path: Path,
) -> None:
    source = write_release(tmp_path / "v1", collected("v1"))
    assert scanned_in_a_fresh_process(source, "abandoned") == {"unreaped": [], "forked": 1}


@pytest.mark.parametrize(
    ("release", "prefix", "keep", "message"),
    [
        ("r1", "static", 5, "end with '/'"),
        ("r1", "/static/", 5, "start with a letter"),
        ("r1", "static/", 1, "at least 2"),
        ("", "static/", 5, "release id"),
        ("bad\nid", "static/", 5, "release id"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_read(
    tmp_path: Path, release: str, prefix: str, keep: int, message: str
) -> None:
    storage = MemoryStorage()
    with pytest.raises(PublishError, match=message):
        publish(storage, tmp_path / "missing", release, prefix=prefix, keep=keep)


def test_the_stack_config_states_the_engine_s_layout_rules() -> None:
    """config/static.py repeats them because config never imports the engine (and the command
    line reads the engine's, never the config's pydantic); the defaults are a layout the
    engine accepts."""
    assert (
        static_publish.MIN_KEEP,
        static_publish.PREFIX_PATTERN.pattern,
        static_publish.DEFAULT_KEEP,
        static_publish.DEFAULT_PREFIX,
    ) == (
        static_config.MIN_KEEP,
        static_config.PREFIX_PATTERN,
        static_config.DEFAULT_KEEP,
        static_config.DEFAULT_PREFIX,
    )
    static_publish.check_layout(static_config.DEFAULT_PREFIX, static_config.DEFAULT_KEEP)


def test_missing_or_empty_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        publish(MemoryStorage(), tmp_path / "missing", "r1", prefix="static/", keep=5)
    (tmp_path / "empty" / "css").mkdir(parents=True)
    with pytest.raises(PublishError, match="holds no files: run collectstatic"):
        publish(MemoryStorage(), tmp_path / "empty", "r1", prefix="static/", keep=5)


def test_a_foreign_manifest_or_index_stops_the_publish(tmp_path: Path) -> None:
    source = write_release(tmp_path / "r1", collected("r1"))
    storage = MemoryStorage()
    storage.objects["_releases/static/x.json"] = b"not json"
    with pytest.raises(PublishError, match=r"_releases/static/x\.json is not a pulumi-django"):
        publish(storage, source, "r1", prefix="static/", keep=5)
    storage = MemoryStorage()
    storage.objects["_releases/static/index.json"] = b'{"format": "other"}'
    with pytest.raises(PublishError, match=r"index\.json is not a pulumi-django releases index"):
        publish(storage, source, "r1", prefix="static/", keep=5)
    assert list(storage.objects) == ["_releases/static/index.json"]  # nothing touched


@pytest.mark.parametrize(
    ("index", "reason"),
    [
        (b"[1, 2", "not JSON"),
        (b"[]", "not a JSON object"),
        (b'{"records": []}', "its format is None, not 'pulumi-django/static-releases/2'"),
        (
            b'{"format": "pulumi-django/static-releases/2"}',
            "its 'records' is missing or not a list",
        ),
        (
            b'{"format": "pulumi-django/static-releases/2", "records": [{"release": "r"}]}',
            "a record's 'prefix' is missing or not a str",
        ),
        (
            b'{"format": "pulumi-django/static-releases/2", "records": [{"release": "r", '
            b'"prefix": "static/", "sequence": 1, "complete": "yes", "publishedAt": "now", '
            b'"keys": []}]}',
            "a record's 'complete' is missing or not a bool",
        ),
        (
            b'{"format": "pulumi-django/static-releases/2", "records": [{"release": "r", '
            b'"prefix": "static/", "sequence": 1, "complete": true, "publishedAt": "now", '
            b'"keys": [1, 2]}]}',
            "the keys of record 'r' are not all strings",
        ),
        (
            b'{"format": "pulumi-django/static-releases/2", "records": [], "objects": []}',
            "its 'objects' is not a JSON object",
        ),
        (
            b'{"format": "pulumi-django/static-releases/2", "records": [], '
            b'"objects": {"static/a.css": ["d41d8cd98f00b204e9800998ecf8427e", -1]}}',
            "its 'objects' entry 'static/a.css' is not [md5, size]",
        ),
    ],
)
def test_an_index_that_is_not_ours_is_refused_saying_what_is_wrong(
    index: bytes, reason: str, tmp_path: Path
) -> None:
    storage = MemoryStorage()
    storage.objects[index_key("static/")] = index
    source = write_release(tmp_path / "r1", collected("r1"))
    with pytest.raises(PublishError) as refused:
        publish(storage, source, "r1", prefix="static/", keep=5)
    message = str(refused.value)
    assert f"releases index ({reason}); remove it or restore it from a backup" in message
    assert "\n" not in message
    assert list(storage.objects) == [index_key("static/")]


def test_the_first_layout_s_manifests_are_folded_into_the_index(tmp_path: Path) -> None:
    """A prefix published before the index existed: its kept releases stay kept (their files
    too), its abandoned publish is cleaned up, and its manifest objects give way to the index."""
    storage = MemoryStorage()
    old = collected("v1")
    write_release(tmp_path / "v1", old)
    for name, data in old.items():
        storage.objects[f"static/{name}"] = data
    storage.objects["static/broken.css"] = b"half"
    records = [
        ReleaseManifest("v1", "static/", 1, True, "then", tuple(f"static/{n}" for n in old)),
        ReleaseManifest("broken", "static/", 2, False, "then", ("static/broken.css",)),
    ]
    for legacy in records:
        storage.objects[legacy.record_key] = legacy_manifest_object(legacy)
    storage.objects["_releases/static/admin/v9.json"] = b"a nested prefix's: not read"

    new = collected("v2")
    result = publish(storage, write_release(tmp_path / "v2", new), "v2", prefix="static/", keep=5)

    assert result.kept_releases == ("v2", "v1")
    assert [(record.release, record.complete) for record in index_of(storage.objects)] == [
        ("v2", True),
        ("v1", True),
    ]
    assert sorted(key for key in storage.objects if key.startswith("_releases/")) == [
        "_releases/static/admin/v9.json",
        "_releases/static/index.json",
    ]
    assert "static/broken.css" not in storage.objects
    assert all(storage.objects[f"static/{name}"] == data for name, data in new.items())
    assert all(f"static/{name}" in storage.objects for name in old)


def test_a_publish_that_lost_the_race_for_the_index_starts_again_and_both_end_complete(
    tmp_path: Path,
) -> None:
    """Two publishes of one prefix at once: while v2 uploads, v3 publishes whole, taking v2's
    pending record for an abandoned publish's. v2's write of its record is refused (its read
    of the index is stale) instead of dropping v3's; it starts again, and both releases end
    kept and whole, v2 (which finished last) the newest, with nothing of ours left unlisted."""
    storage = MemoryStorage()
    first, second, third = collected("v1"), collected("v2"), collected("v3")
    publish(storage, write_release(tmp_path / "v1", first), "v1", prefix="static/", keep=5)
    third_source = write_release(tmp_path / "v3", third)
    raced: list[str] = []

    class Racing(MemoryStorage):
        """The same objects; its first upload waits for v3's whole publish."""

        def upload(self, file: LocalFile) -> None:
            if not raced:
                raced.append(publish(storage, third_source, "v3", prefix="static/", keep=5).release)
            super().upload(file)

    racing = Racing()
    racing.objects = storage.objects
    result = publish(
        racing, write_release(tmp_path / "v2", second), "v2", prefix="static/", keep=5, workers=1
    )
    assert raced == ["v3"]
    assert result.kept_releases == ("v2", "v3", "v1")
    records = index_of(storage.objects)
    assert [record.release for record in records] == ["v2", "v3", "v1"]
    assert all(record.complete for record in records)
    for files in (first, third):
        for name, data in immutable(files).items():
            assert storage.objects[f"static/{name}"] == data
    assert all(storage.objects[f"static/{name}"] == data for name, data in second.items())
    listed = {key for record in records for key in record.keys}
    assert {key for key in storage.objects if key.startswith("static/")} == listed
    vouched, held = contents_of(storage.objects)
    assert vouched == held


def test_a_publish_that_keeps_losing_the_race_gives_up_saying_so(tmp_path: Path) -> None:
    class Contended(RecordingStorage):
        """Another publish writes the index just before each of this one's writes."""

        def write(self, key: str, data: bytes, *, replacing: str | None) -> str:
            other = len(self.changes)  # another release each time: another version
            record = ReleaseManifest(f"other-{other}", "static/", other, True, "now", ())
            self.objects[key] = index_json("static/", [record])
            return super().write(key, data, replacing=replacing)

    storage = Contended()
    with pytest.raises(IndexConflict, match="changed"):
        publish(
            storage, write_release(tmp_path / "v1", collected("v1")), "v1", prefix="static/", keep=5
        )
    writes = [change for change in storage.changes if change[0] == "write"]
    assert len(writes) == static_publish.PUBLISH_ATTEMPTS


# ---------------------------------------------------------------- a local directory as bucket


def test_directory_storage_keeps_releases_side_by_side(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    storage = DirectoryStorage(site)
    versions = [collected(f"v{number}") for number in range(3)]
    results = [
        publish(
            storage,
            write_release(tmp_path / f"v{number}", files),
            f"v{number}",
            keep=2,
            prefix="static/",
        )
        for number, files in enumerate(versions)
    ]
    assert [result.deleted for result in results[:2]] == [0, 0]
    only_v0 = set(versions[0]) - set(versions[1]) - set(versions[2])
    assert results[2].deleted == len(only_v0)
    on_disk = {
        path.relative_to(site / "static").as_posix()
        for path in (site / "static").rglob("*")
        if path.is_file()
    }
    assert on_disk == set(versions[1]) | set(versions[2])
    for name in versions[2]:
        assert (site / "static" / name).read_bytes() == versions[2][name]
    assert not list(site.rglob(".publishing-*"))
    assert [path.name for path in (site / "_releases" / "static").iterdir()] == ["index.json"]
    index = (site / "_releases" / "static" / "index.json").read_bytes()
    assert [record.release for record in parse_index(index, "index").records] == ["v2", "v1"]
    stale = storage.read(index_key("static/"))
    assert stale is not None
    storage.write(index_key("static/"), index, replacing=stale.etag)
    with pytest.raises(IndexConflict, match="publish again"):
        storage.write(index_key("static/"), index, replacing=None)


def test_directory_storage_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        DirectoryStorage(tmp_path / "nope")


# ---------------------------------------------------------------- S3 on a moto server


@pytest.fixture(scope="module")
def aws_environment() -> Iterator[None]:
    """Dummy credentials, no shared config, and never a metadata endpoint off loopback."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_"):
                patch.delenv(name)
        for name, value in AWS_TEST_ENVIRONMENT.items():
            patch.setenv(name, value)
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


@pytest.fixture(scope="module")
def s3_endpoint(aws_environment: None) -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    name = "static-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return name


def s3(endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=endpoint)


def keys(endpoint: str, bucket: str, prefix: str = "static/") -> dict[str, str]:
    """Published key -> content MD5, from the server."""
    paginator = s3(endpoint).get_paginator("list_objects_v2")
    return {
        item["Key"]: item["ETag"].strip('"')
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
    }


def s3_index(endpoint: str, bucket: str) -> list[ReleaseManifest]:
    """The records of the bucket's releases index for `static/`, newest first."""
    key = index_key("static/")
    return parse_index(s3(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read(), key).records


def immutable(files: dict[str, bytes]) -> dict[str, bytes]:
    """The hashed files: what a release's pages refer to. Unhashed names are shared by every
    release, and the newest publish overwrites them."""
    return {name: data for name, data in files.items() if HASHED_NAME.search(name)}


def served(endpoint: str, bucket: str, files: dict[str, bytes]) -> bool:
    """Every file of a release is in the bucket with its own content."""
    published = keys(endpoint, bucket)
    return all(published.get(f"static/{name}") == md5(data) for name, data in files.items())


@pytest.mark.slow
def test_first_publish_uploads_everything_with_headers_and_a_manifest(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)
    progress: list[PublishProgress] = []
    result = publish(
        S3Storage(bucket, endpoint_url=s3_endpoint),
        source,
        "sha256:v1",
        on_progress=progress.append,
        prefix="static/",
        keep=5,
    )
    assert (result.uploaded, result.skipped, result.deleted) == (len(files), 0, 0)
    assert served(s3_endpoint, bucket, files)
    assert progress[0] == PublishProgress(len(files), len(files), 0)
    assert progress[-1] == PublishProgress(len(files), len(files), len(files))

    client = s3(s3_endpoint)
    gz_name = next(name for name in files if name.endswith(".js.gz"))
    variant = client.head_object(Bucket=bucket, Key=f"static/{gz_name}")
    assert variant["ContentType"] == "text/javascript"
    assert variant["ContentEncoding"] == "gzip"
    assert variant["CacheControl"] == IMMUTABLE_CACHE_CONTROL
    unhashed = client.head_object(Bucket=bucket, Key="static/staticfiles.json")
    assert unhashed["CacheControl"] == SHORT_CACHE_CONTROL
    assert unhashed["ContentType"] == "application/json"

    assert result.manifest_key == index_key("static/")
    index = client.get_object(Bucket=bucket, Key=result.manifest_key)
    assert index["CacheControl"] == "no-store"
    (record,) = parse_index(index["Body"].read(), result.manifest_key).records
    assert (record.release, record.complete) == ("sha256:v1", True)
    assert record.keys == tuple(sorted(f"static/{name}" for name in files))
    assert set(keys(s3_endpoint, bucket, "_releases/")) == {result.manifest_key}


@pytest.mark.slow
def test_next_release_uploads_only_its_changes_and_the_previous_stays_served(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    first, second = collected("v1"), collected("v2")
    publish(storage, write_release(tmp_path / "v1", first), "v1", prefix="static/", keep=5)
    result = publish(
        storage, write_release(tmp_path / "v2", second), "v2", prefix="static/", keep=5
    )
    changed = {name for name in second if first.get(name) != second[name]}
    assert result.uploaded == len(changed) > 0
    assert result.skipped == len(second) - len(changed)
    assert result.deleted == 0
    assert served(s3_endpoint, bucket, second)
    # The old servers' pages still find all their files.
    assert set(immutable(first)) - set(second)
    assert served(s3_endpoint, bucket, immutable(first))


@pytest.mark.slow
def test_publishing_one_more_than_kept_removes_only_the_oldest_s_own_files(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    keep = 3
    versions = [collected(f"v{number}") for number in range(keep + 1)]
    results = [
        publish(
            storage, write_release(tmp_path / f"v{n}", files), f"v{n}", keep=keep, prefix="static/"
        )
        for n, files in enumerate(versions)
    ]
    assert [result.deleted for result in results[:keep]] == [0] * keep
    only_oldest = set(versions[0]).difference(*versions[1:])
    assert results[-1].deleted == len(only_oldest) > 0
    published = keys(s3_endpoint, bucket)
    assert not any(f"static/{name}" in published for name in only_oldest)
    assert all(f"static/{name}" in published for files in versions[1:] for name in files)
    assert served(s3_endpoint, bucket, versions[-1])
    assert len(s3_index(s3_endpoint, bucket)) == keep


@pytest.mark.slow
def test_republishing_uploads_nothing(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)
    publish(storage, source, "v1", prefix="static/", keep=5)
    before = keys(s3_endpoint, bucket)
    again = publish(storage, source, "v1", prefix="static/", keep=5)
    assert (again.uploaded, again.skipped, again.deleted) == (0, len(files), 0)
    assert keys(s3_endpoint, bucket) == before


class FailingAfter(S3Storage):
    """Real S3 uploads until `allowed` have gone through, then a failure: a killed publish."""

    def __init__(self, bucket: str, endpoint_url: str, allowed: int) -> None:
        super().__init__(bucket, endpoint_url=endpoint_url, workers=1)
        self.allowed = allowed

    def upload(self, file: LocalFile) -> None:
        if self.allowed == 0:
            raise ConnectionError("network went away")
        self.allowed -= 1
        super().upload(file)


@pytest.mark.slow
def test_an_interrupted_publish_keeps_earlier_releases_and_a_rerun_completes_it(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    first = collected("v1")
    publish(storage, write_release(tmp_path / "v1", first), "v1", keep=2, prefix="static/")
    second = collected("v2", own=6)
    source = write_release(tmp_path / "v2", second)
    to_upload = sum(1 for name in second if first.get(name) != second[name])
    with pytest.raises(ConnectionError):
        publish(
            FailingAfter(bucket, s3_endpoint, allowed=3),
            source,
            "v2",
            keep=2,
            workers=1,
            prefix="static/",
        )
    assert served(s3_endpoint, bucket, immutable(first))
    records = {(record.release, record.complete) for record in s3_index(s3_endpoint, bucket)}
    assert records == {("v1", True), ("v2", False)}

    rerun = publish(storage, source, "v2", keep=2, prefix="static/")
    assert rerun.uploaded == to_upload - 3
    assert rerun.deleted == 0
    assert served(s3_endpoint, bucket, second)
    assert served(s3_endpoint, bucket, immutable(first))
    records = [(record.release, record.complete) for record in s3_index(s3_endpoint, bucket)]
    assert records == [("v2", True), ("v1", True)]


@pytest.mark.slow
def test_an_abandoned_publish_s_files_go_with_the_next_release(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    first, broken, third = collected("v1"), collected("broken"), collected("v3")
    publish(storage, write_release(tmp_path / "v1", first), "v1", keep=2, prefix="static/")
    with pytest.raises(ConnectionError):
        publish(
            FailingAfter(bucket, s3_endpoint, allowed=2),
            write_release(tmp_path / "broken", broken),
            "broken",
            workers=1,
            prefix="static/",
            keep=5,
        )
    publish(storage, write_release(tmp_path / "v3", third), "v3", keep=2, prefix="static/")
    published = keys(s3_endpoint, bucket)
    assert set(published) == {f"static/{name}" for name in set(first) | set(third)}
    assert served(s3_endpoint, bucket, third)


def sent_requests(storage: S3Storage) -> collections.Counter[str]:
    """The requests `storage` sends from now on (retries too), by operation."""
    sent: collections.Counter[str] = collections.Counter()

    def count(event_name: str, **_kwargs: Any) -> None:
        sent[event_name.rsplit(".", 1)[-1]] += 1

    storage.client.meta.events.register("before-send.s3", count)
    return sent


def many_files(count: int, changed: int = 0) -> dict[str, bytes]:
    """`count` hashed files, the first `changed` of them with other content (so other names)."""
    files = {}
    for number in range(count):
        content = f"/* {number} {'changed' if number < changed else ''} */".encode()
        files[f"css/{hashed(f'f{number}.css', content)}"] = content
    return files


@pytest.mark.slow
def test_publishes_list_once_per_1000_keys_and_send_no_request_they_do_not_need(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """Issue 18's bound for k changed files of N is k + ceil(N/1000) + 3: the PUTs, the
    listing, and the index read once and written twice (the pending record, the release's).
    The index vouching for the published contents, only the first publish and `verify` list."""
    first, second = many_files(1001), many_files(1001, changed=3)
    new = len(set(second) - set(first))
    publish(
        S3Storage(bucket, endpoint_url=s3_endpoint),
        write_release(tmp_path / "v1", first),
        "v1",
        prefix="static/",
        keep=5,
    )
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    sent = sent_requests(storage)
    source = write_release(tmp_path / "v2", second)

    publish(storage, source, "v2", prefix="static/", keep=5)
    assert sent == {
        "GetObject": 1,  # the index
        "PutObject": new + 2,  # the index with the pending record, the new files, the index
    }

    sent.clear()
    again = publish(storage, source, "v2", prefix="static/", keep=5)
    assert (again.uploaded, again.skipped) == (0, len(second))
    # Nothing written: v2's record is already the newest, with these keys.
    assert sent == {"GetObject": 1}

    sent.clear()
    verified = publish(storage, source, "v2", prefix="static/", keep=5, verify=True)
    assert (verified.uploaded, verified.skipped) == (0, len(second))
    listing_pages = math.ceil((len(first) + new) / 1000)
    assert sent == {"ListObjectsV2": listing_pages, "GetObject": 1}


@pytest.mark.slow
def test_the_s3_index_is_written_only_over_the_version_read(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    """S3's conditional writes: a publish whose read of the index is stale is refused by S3
    itself, and so is a first publish racing another's."""
    storage = S3Storage(bucket, endpoint_url=s3_endpoint)
    key = index_key("static/")
    assert storage.read(key) is None
    first = storage.write(key, b"{}", replacing=None)
    with pytest.raises(IndexConflict, match=f"s3://{bucket}/{key} changed"):
        storage.write(key, b"{}", replacing=None)
    second = storage.write(key, b"[]", replacing=first)
    with pytest.raises(IndexConflict, match="publish again"):
        storage.write(key, b"{}", replacing=first)
    assert storage.read(key) == StoredObject(b"[]", second)


# ---------------------------------------------------------------- the CLI


def publish_cli(*arguments: str) -> list[str]:
    return ["publish-static", *arguments]


@pytest.mark.slow
def test_cli_prints_the_summary_and_progress(
    s3_endpoint: str, bucket: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)
    common = ["--bucket", bucket, "--source", str(source), "--endpoint-url", s3_endpoint]
    assert cli.main(publish_cli(*common, "--release", "v1")) == 0
    out, err = capsys.readouterr()
    assert out == f"uploaded {len(files)}, skipped 0, deleted 0\n"
    assert f"{len(files)} files, {len(files)} to upload" in err
    assert f"uploaded {len(files)}/{len(files)}" in err

    assert cli.main(publish_cli(*common, "--release", "v1", "--json")) == 0
    out, _err = capsys.readouterr()
    assert json.loads(out) == {"uploaded": 0, "skipped": len(files), "deleted": 0}


@pytest.mark.slow
def test_cli_executable_publishes_under_another_prefix_and_verify_mends(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)

    def publish_executable(*extra: str) -> dict[str, int]:
        done = subprocess.run(
            [
                *[PUBLISH_CLI, "publish-static", "--bucket", bucket, "--source", str(source)],
                *["--release", "sha256:abc", "--prefix", "assets/", "--keep", "2"],
                *["--endpoint-url", s3_endpoint, "--json", *extra],
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        counts: dict[str, int] = json.loads(done.stdout)
        return counts

    assert publish_executable() == {"uploaded": len(files), "skipped": 0, "deleted": 0}
    assert set(keys(s3_endpoint, bucket, "assets/")) == {f"assets/{name}" for name in files}
    lost = next(f"assets/{name}" for name in immutable(files))
    s3(s3_endpoint).delete_object(Bucket=bucket, Key=lost)
    # The index still records the file: only a verifying publish sees it is gone.
    assert publish_executable()["uploaded"] == 0
    assert publish_executable("--verify") == {
        "uploaded": 1,
        "skipped": len(files) - 1,
        "deleted": 0,
    }
    assert lost in keys(s3_endpoint, bucket, "assets/")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--source": "nowhere"}, "source directory .*nowhere does not exist"),
        ({"--source": "empty"}, "holds no files: run collectstatic first"),
        ({"--source": "a-file"}, "source .*a-file is a file; give the directory"),
        ({"--bucket": "no-such-bucket-here"}, "bucket no-such-bucket-here does not exist"),
        ({"--bucket": "Bad_Bucket!"}, "'Bad_Bucket!' is not a valid S3 bucket name: 3-63"),
        ({"--bucket": "bucket/with/slash"}, "'bucket/with/slash' is not a valid S3 bucket name"),
        ({"--bucket": "a..b"}, "'a..b' is not a valid S3 bucket name"),
        ({"--bucket": "ab"}, "'ab' is not a valid S3 bucket name"),
        ({"--keep": "1"}, "keep must be at least 2"),
        ({"--prefix": "static"}, "prefix 'static' must .* end with '/'"),
        ({"--endpoint-url": "not-a-url"}, "Invalid endpoint: not-a-url"),
    ],
)
def test_cli_errors_are_one_clear_line(
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, str],
    message: str,
) -> None:
    source = write_release(tmp_path / "v1", collected("v1"))
    (tmp_path / "empty" / "css").mkdir(parents=True)
    (tmp_path / "a-file").write_text("not a directory")
    arguments = {"--bucket": bucket, "--source": str(source), "--endpoint-url": s3_endpoint}
    arguments |= change
    if "--source" in change:
        arguments["--source"] = str(tmp_path / change["--source"])
    flat = [item for pair in arguments.items() for item in pair]
    code = cli.main(publish_cli(*flat, "--release", "v1"))
    _out, err = capsys.readouterr()
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("pulumi-django publish-static: error: ")
    assert re.search(message, line)
    assert not keys(s3_endpoint, bucket, "")


# Runs the command line in a fresh interpreter, then names the heavy packages it loaded.
IMPORTS_OF_A_RUN = """
import json, sys
from pulumi_django import cli
try:
    code = cli.main(sys.argv[1:])
except SystemExit as exit:
    code = exit.code
heavy = ("pulumi", "pydantic", "boto3", "botocore")
print(json.dumps({"code": code, "loaded": [name for name in heavy if name in sys.modules]}))
"""


def heavy_imports(*arguments: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", IMPORTS_OF_A_RUN, *arguments],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_publish_static_help_imports_nothing_heavy() -> None:
    assert heavy_imports("publish-static", "--help") == {"code": 0, "loaded": []}


@pytest.mark.slow
def test_a_publish_loads_botocore_alone(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    """A pipeline starts the command on every deploy: no stack config (pydantic, Pulumi), no
    boto3 on top of botocore."""
    source = write_release(tmp_path / "v1", collected("v1"))
    loaded = heavy_imports(
        *["publish-static", "--bucket", bucket, "--source", str(source), "--release", "v1"],
        *["--endpoint-url", s3_endpoint],
    )
    assert loaded == {"code": 0, "loaded": ["botocore"]}


@pytest.fixture
def moto_checks_credentials(s3_endpoint: str, bucket: str) -> Iterator[None]:
    """Turns on moto's authentication: unknown access keys are then refused like AWS does."""

    def set_free_actions(count: str) -> None:
        request = urllib.request.Request(  # noqa: S310 (the loopback moto server)
            f"{s3_endpoint}/moto-api/reset-auth",
            data=count.encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            assert json.load(answer)["status"] == "ok"

    set_free_actions("0")
    try:
        yield
    finally:
        set_free_actions("inf")


@pytest.mark.slow
def test_cli_refuses_bad_credentials_clearly(
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
    moto_checks_credentials: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = write_release(tmp_path / "v1", collected("v1"))
    code = cli.main(
        publish_cli(
            *["--bucket", bucket, "--source", str(source), "--release", "v1"],
            *["--endpoint-url", s3_endpoint],
        )
    )
    _out, err = capsys.readouterr()
    assert code == 2
    assert "error: AWS rejected the credentials (InvalidAccessKeyId)" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_cli_without_any_credentials_says_so(
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    source = write_release(tmp_path / "v1", collected("v1"))
    code = cli.main(
        publish_cli(
            *["--bucket", bucket, "--source", str(source), "--release", "v1"],
            *["--endpoint-url", s3_endpoint],
        )
    )
    _out, err = capsys.readouterr()
    assert code == 2
    assert "error: no AWS credentials found" in err


# ---------------------------------------------------------------- the dynamic provider


FAKE_DOCKER = """#!{python}
import json, os, shutil, sys
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[1]
if command == "create":
    if sys.argv[-1] != os.environ["FAKE_DOCKER_IMAGE"]:
        sys.exit("Error response from daemon: No such image: " + sys.argv[-1])
    print("f00dcafe")
elif command == "cp":
    container, path = sys.argv[2].split(":", 1)
    assert container == "f00dcafe" and path.endswith("/."), sys.argv
    inside = os.environ["FAKE_DOCKER_ROOTFS"] + path[:-2]
    if not os.path.isdir(inside):
        sys.exit("Error response from daemon: Could not find the file " + path[:-2])
    shutil.copytree(inside, sys.argv[3], dirs_exist_ok=True)
elif command != "rm":
    sys.exit("unexpected docker command " + command)
"""


@pytest.fixture
def fake_docker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A `docker` on PATH that serves one image whose /app/staticfiles is a local directory."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable))
    docker.chmod(0o755)
    rootfs = tmp_path / "rootfs"
    files = collected("image")
    write_release(rootfs / "app" / "staticfiles", files)
    log = tmp_path / "docker.log"
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "a" * 64
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_DOCKER_LOG", str(log))
    monkeypatch.setenv("FAKE_DOCKER_IMAGE", image)
    monkeypatch.setenv("FAKE_DOCKER_ROOTFS", str(rootfs))
    return {"image": image, "files": files, "log": log}


def docker_calls(log: Path) -> list[str]:
    return [json.loads(line)[0] for line in log.read_text().splitlines()]


def provider_props(bucket: str, endpoint: str, **changes: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "bucket": bucket,
        "release_id": "sha256:" + "a" * 64,
        "image": None,
        "static_root": "/app/staticfiles",
        "source_dir": None,
        "source_fingerprint": None,
        "prefix": "static/",
        "keep": 3,
        "region": "us-east-1",
        "endpoint_url": endpoint,
        "__provider": "serialized",
    }
    props.update(changes)
    return props


@pytest.mark.slow
def test_provider_create_publishes_the_image_s_static_root(
    s3_endpoint: str, bucket: str, fake_docker: dict[str, Any]
) -> None:
    props = provider_props(bucket, s3_endpoint, image=fake_docker["image"], image_source="docker")
    created = StaticReleaseProvider().create(props)
    assert created.id == f"s3://{bucket}/static/"
    outs = created.outs or {}
    files = fake_docker["files"]
    assert (outs["uploaded"], outs["skipped"], outs["deleted"]) == (len(files), 0, 0)
    assert outs["release_id"] == props["release_id"]
    assert outs["manifest_key"] == index_key("static/")
    assert outs["kept_releases"] == [props["release_id"]]
    assert "__provider" not in outs
    assert served(s3_endpoint, bucket, files)
    assert docker_calls(fake_docker["log"]) == ["create", "cp", "rm"]


@pytest.mark.slow
def test_provider_removes_the_container_when_the_copy_fails(
    s3_endpoint: str, bucket: str, fake_docker: dict[str, Any]
) -> None:
    props = provider_props(
        bucket,
        s3_endpoint,
        image=fake_docker["image"],
        static_root="/srv/static",
        image_source="docker",
    )
    with pytest.raises(PublishError, match=r"docker cp .* failed: .*Could not find the file"):
        StaticReleaseProvider().create(props)
    assert docker_calls(fake_docker["log"]) == ["create", "cp", "rm"]
    assert keys(s3_endpoint, bucket) == {}


def test_extracting_without_docker_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    props = provider_props(
        "any-bucket", "http://127.0.0.1:9", image="web:latest", image_source="docker"
    )
    with pytest.raises(PublishError, match="docker CLI is not on PATH"):
        StaticReleaseProvider().create(props)


def test_provider_diff_wants_an_update_for_a_new_release_or_new_files() -> None:
    provider = StaticReleaseProvider()
    olds = provider_props("b", "e", source_dir="/ci/a/static", source_fingerprint="f1")
    assert provider.diff("id", olds, dict(olds)).changes is False
    moved = dict(olds, source_dir="/laptop/static")  # same files on another machine
    assert provider.diff("id", olds, moved).changes is False
    for name, value in [("release_id", "sha256:" + "b" * 64), ("source_fingerprint", "f2")]:
        result = provider.diff("id", olds, dict(olds, **{name: value}))
        assert result.changes is True
        assert result.replaces == []
    assert provider.diff("id", olds, dict(olds, keep=4)).changes is True


@pytest.mark.slow
def test_provider_update_publishes_the_new_release_and_delete_keeps_the_files(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    provider = StaticReleaseProvider()
    first, second = collected("v1"), collected("v2")
    source_one = write_release(tmp_path / "v1", first)
    source_two = write_release(tmp_path / "v2", second)
    olds = provider_props(
        bucket,
        s3_endpoint,
        release_id="v1",
        source_dir=str(source_one),
        source_fingerprint=directory_fingerprint(source_one, "static/"),
    )
    created = provider.create(olds)
    news = dict(
        olds,
        release_id="v2",
        source_dir=str(source_two),
        source_fingerprint=directory_fingerprint(source_two, "static/"),
    )
    assert provider.diff(created.id, created.outs or {}, news).changes is True
    updated = provider.update(created.id, created.outs or {}, news)
    outs = updated.outs or {}
    assert outs["kept_releases"] == ["v2", "v1"]
    assert outs["uploaded"] == sum(1 for name in second if first.get(name) != second[name])
    before = keys(s3_endpoint, bucket, "")
    provider.delete(created.id, outs)
    assert keys(s3_endpoint, bucket, "") == before
    assert served(s3_endpoint, bucket, second)


def test_fingerprint_follows_the_files(tmp_path: Path) -> None:
    source = write_release(tmp_path / "v1", collected("v1"))
    before = directory_fingerprint(source, "static/")
    assert directory_fingerprint(source, "static/") == before
    (source / "staticfiles.json").write_text("{}")
    assert directory_fingerprint(source, "static/") != before


def test_static_release_registers_under_the_release_order_s_type_token(tmp_path: Path) -> None:
    source = write_release(tmp_path / "v1", collected("v1"))

    def program() -> None:
        release = StaticRelease(
            "web-static-release",
            bucket="web-static-bucket",
            release_id="sha256:" + "c" * 64,
            source_dir=source,
            keep=4,
        )
        pulumi.export("manifest_key", release.manifest_key)

    recording = record(
        program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"}
    )
    resource = recording.one("pulumi-python:dynamic/static:StaticRelease")
    assert resource.name == "web-static-release"
    assert resource.inputs["bucket"] == "web-static-bucket"
    assert resource.inputs["keep"] == 4
    assert resource.inputs["source_dir"] == str(source.resolve())
    assert resource.inputs["source_fingerprint"] == directory_fingerprint(source, "static/")


def test_static_release_takes_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(StaticReleaseError, match="either image or source_dir"):
        StaticRelease("r", bucket="b", release_id="v1")
    with pytest.raises(StaticReleaseError, match="either image or source_dir"):
        StaticRelease("r", bucket="b", release_id="v1", image="web:1", source_dir=tmp_path)


def test_static_release_refuses_a_layout_the_engine_refuses() -> None:
    """A library error under the one root, which Pulumi prints as one line."""
    with pytest.raises(StaticReleaseError, match=r"^StaticRelease r: keep must be at least 2"):
        StaticRelease("r", bucket="b", release_id="v1", image="web:1", keep=1)
    assert issubclass(StaticReleaseError, (PulumiDjangoError, pulumi.RunError))
