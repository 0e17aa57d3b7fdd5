"""Publishing static releases: the pure plan, the local-directory storage, and (slow) the S3
storage, the CLI and the dynamic provider against moto running as a real S3 server on loopback."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
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
    LocalFile,
    PublishError,
    PublishProgress,
    ReleaseManifest,
    RemoteObject,
    manifest_key,
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

    def read(self, key: str) -> bytes:
        return self.objects[key]

    def upload(self, file: LocalFile) -> None:
        self.objects[file.key] = file.path.read_bytes()

    def write(self, key: str, data: bytes) -> None:
        self.objects[key] = data

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)


def local_file(key: str, content: bytes = b"x") -> LocalFile:
    return LocalFile(
        key, Path("/nonexistent"), md5(content), len(content), "text/css", None, "public"
    )


def manifest(release: str, sequence: int, keys: Sequence[str], complete: bool = True) -> Any:
    found = ReleaseManifest(
        release, "static/", sequence, complete, "2025-01-01T00:00:00", tuple(keys)
    )
    return manifest_key("static/", release, complete=complete), found


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
    """config/static.py repeats them because config never imports the engine; its defaults are
    a layout the engine accepts."""
    assert (
        static_publish.MIN_KEEP,
        static_publish.PREFIX_PATTERN.pattern,
    ) == (static_config.MIN_KEEP, static_config.PREFIX_PATTERN)
    static_publish.check_layout(static_config.DEFAULT_PREFIX, static_config.DEFAULT_KEEP)


def test_missing_or_empty_source_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="does not exist"):
        publish(MemoryStorage(), tmp_path / "missing", "r1", prefix="static/", keep=5)
    (tmp_path / "empty" / "css").mkdir(parents=True)
    with pytest.raises(PublishError, match="holds no files: run collectstatic"):
        publish(MemoryStorage(), tmp_path / "empty", "r1", prefix="static/", keep=5)


def test_a_foreign_manifest_stops_the_publish(tmp_path: Path) -> None:
    storage = MemoryStorage()
    storage.objects["_releases/static/x.json"] = b"not json"
    source = write_release(tmp_path / "r1", collected("r1"))
    with pytest.raises(PublishError, match=r"_releases/static/x\.json is not a pulumi-django"):
        publish(storage, source, "r1", prefix="static/", keep=5)


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
    manifests = sorted(path.name for path in (site / "_releases" / "static").iterdir())
    assert manifests == sorted(
        [manifest_key("static/", "v1").split("/")[-1], manifest_key("static/", "v2").split("/")[-1]]
    )


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

    body = client.get_object(Bucket=bucket, Key=result.manifest_key)["Body"].read()
    document = json.loads(body)
    assert document["release"] == "sha256:v1"
    assert document["complete"] is True
    assert document["keys"] == sorted(f"static/{name}" for name in files)
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
    assert len(keys(s3_endpoint, bucket, "_releases/")) == keep


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
    manifests = set(keys(s3_endpoint, bucket, "_releases/"))
    assert manifest_key("static/", "v2") not in manifests
    assert manifest_key("static/", "v2", complete=False) in manifests

    rerun = publish(storage, source, "v2", keep=2, prefix="static/")
    assert rerun.uploaded == to_upload - 3
    assert rerun.deleted == 0
    assert served(s3_endpoint, bucket, second)
    assert served(s3_endpoint, bucket, immutable(first))
    assert set(keys(s3_endpoint, bucket, "_releases/")) == {
        manifest_key("static/", "v1"),
        manifest_key("static/", "v2"),
    }


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
def test_cli_executable_publishes_under_another_prefix(
    s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    files = collected("v1")
    source = write_release(tmp_path / "v1", files)
    done = subprocess.run(
        [
            *[PUBLISH_CLI, "publish-static", "--bucket", bucket, "--source", str(source)],
            *["--release", "sha256:abc", "--prefix", "assets/", "--keep", "2"],
            *["--endpoint-url", s3_endpoint, "--json"],
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"uploaded": len(files), "skipped": 0, "deleted": 0}
    assert set(keys(s3_endpoint, bucket, "assets/")) == {f"assets/{name}" for name in files}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--source": "nowhere"}, "source directory .*nowhere does not exist"),
        ({"--source": "empty"}, "holds no files: run collectstatic first"),
        ({"--source": "a-file"}, "source .*a-file is a file; give the directory"),
        ({"--bucket": "no-such-bucket-here"}, "bucket no-such-bucket-here does not exist"),
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
    assert outs["manifest_key"] == manifest_key("static/", props["release_id"])
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
