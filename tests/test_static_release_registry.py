"""StaticRelease without Docker: STATIC_ROOT read from the image's registry (the ECR token by
`ecr:GetAuthorizationToken`, then the registry API: index -> platform manifest -> config ->
layers), against a throwaway registry served on loopback (tests/registry_fakes.py)."""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from fake_aws import AWS_TEST_ENVIRONMENT, moto_server
from registry_fakes import (
    TOKEN,
    FakeRegistry,
    directory,
    file,
    hardlink,
    opaque,
    serving,
    symlink,
    whiteout,
)
from stub_clients import stub_client

from pulumi_django.providers.registry import (
    ImageReference,
    RegistryClient,
    RegistryError,
    ecr_authorization,
    extract_directory,
)
from pulumi_django.providers.static_release import StaticReleaseProvider
from pulumi_django.static_publish import index_key, parse_index

ROOT = "/app/staticfiles"
BASE = [
    directory("app"),
    directory("app/staticfiles"),
    file("app/manage.py", "print('not static')"),
    file("app/staticfiles/css/site.0123456789ab.css", "body{}"),
    file("app/staticfiles/old.css", "old"),
    file("app/staticfiles/gone/x.js", "x"),
    file("app/staticfiles/admin/base.css", "admin"),
]


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    with serving(FakeRegistry()) as served:
        yield served


def stubbed_ecr() -> tuple[Any, Stubber]:
    client = stub_client("ecr")
    stub = Stubber(client)
    stub.add_response(
        "get_authorization_token",
        {
            "authorizationData": [
                {
                    "authorizationToken": TOKEN,
                    "expiresAt": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
                    "proxyEndpoint": "https://123456789012.dkr.ecr.us-east-1.amazonaws.com",
                }
            ]
        },
        {},
    )
    stub.activate()
    return client, stub


def read_out(
    registry: FakeRegistry, digest: str, tmp_path: Path, **kwargs: Any
) -> dict[str, bytes]:
    ecr, stub = stubbed_ecr()
    client = RegistryClient(ImageReference.parse(registry.ref(digest)), ecr_authorization(ecr))
    stub.assert_no_pending_responses()
    out = extract_directory(client, ROOT, tmp_path / "out", **kwargs)
    return {
        path.relative_to(out).as_posix(): path.read_bytes()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def test_layers_apply_in_order_with_whiteouts_links_and_the_fleet_s_platform(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    upper = [
        whiteout("app/staticfiles/old.css"),
        opaque("app/staticfiles/gone"),
        file("app/staticfiles/gone/y.js", "y"),  # the same layer's entries stay
        file("app/staticfiles/css/site.0123456789ab.css", "body{color:red}"),
        hardlink("app/staticfiles/css/copy.css", "app/staticfiles/css/site.0123456789ab.css"),
        symlink("app/staticfiles/latest.css", "css/site.0123456789ab.css"),
        symlink("app/staticfiles/abs.css", "/app/staticfiles/admin/base.css"),
        file("app/other.txt", "outside the root"),
    ]
    amd64 = registry.image([BASE, upper], architecture="amd64")
    arm64 = registry.image([[directory("app/staticfiles"), file("app/staticfiles/arm", "!")]])
    index = registry.index({"arm64": arm64, "amd64": amd64})

    files = read_out(registry, index, tmp_path, architecture="X86_64")

    assert files == {
        "admin/base.css": b"admin",
        "abs.css": b"admin",
        "css/copy.css": b"body{color:red}",
        "css/site.0123456789ab.css": b"body{color:red}",
        "gone/y.js": b"y",
        "latest.css": b"body{color:red}",
    }
    # The token went to the registry; never to the bucket the blobs are redirected to.
    assert all(authorized for path, authorized in registry.requests if path.startswith("/v2/"))
    assert not any(authorized for path, authorized in registry.requests if "/bucket/" in path)
    assert any("/bucket/" in path for path, _ in registry.requests)


def test_an_arm_fleet_gets_the_arm_manifest(registry: FakeRegistry, tmp_path: Path) -> None:
    amd64 = registry.image([BASE])
    arm64 = registry.image([[directory("app/staticfiles"), file("app/staticfiles/arm.css", "a")]])
    index = registry.index({"amd64": amd64, "arm64": arm64})
    assert read_out(registry, index, tmp_path, architecture="ARM64") == {"arm.css": b"a"}


@pytest.mark.parametrize(
    ("upper", "expected"),
    [
        # An opaque parent hides the lower layers' root; this layer's entries come back.
        ([opaque("app"), file("app/staticfiles/only.css", "1")], {"only.css": b"1"}),
        # The root replaced wholesale.
        (
            [
                whiteout("app/staticfiles"),
                directory("app/staticfiles"),
                file("app/staticfiles/n", "2"),
            ],
            {"n": b"2"},
        ),
        # An opaque root keeps itself, empty but for this layer.
        ([opaque("app/staticfiles")], {}),
        # A file replaced by a directory, a directory by a file.
        (
            [whiteout("app/staticfiles/old.css"), file("app/staticfiles/old.css/in", "3")],
            {
                "css/site.0123456789ab.css": b"body{}",
                "gone/x.js": b"x",
                "admin/base.css": b"admin",
                "old.css/in": b"3",
            },
        ),
        (
            [whiteout("app/staticfiles/gone"), file("app/staticfiles/gone", "4")],
            {
                "css/site.0123456789ab.css": b"body{}",
                "old.css": b"old",
                "admin/base.css": b"admin",
                "gone": b"4",
            },
        ),
    ],
)
def test_whiteouts_of_the_root_and_its_parents(
    registry: FakeRegistry, tmp_path: Path, upper: list[Any], expected: dict[str, bytes]
) -> None:
    assert read_out(registry, registry.image([BASE, upper]), tmp_path) == expected


def test_a_root_removed_by_a_whiteout_is_reported(registry: FakeRegistry, tmp_path: Path) -> None:
    digest = registry.image([BASE, [whiteout("app")]])
    with pytest.raises(
        RegistryError, match=r"has no directory /app/staticfiles: check app\.staticRoot"
    ):
        read_out(registry, digest, tmp_path)


def test_a_link_out_of_the_root_is_refused(registry: FakeRegistry, tmp_path: Path) -> None:
    digest = registry.image([BASE, [symlink("app/staticfiles/passwd", "/etc/passwd")]])
    with pytest.raises(RegistryError, match=r"links to /etc/passwd, outside /app/staticfiles"):
        read_out(registry, digest, tmp_path)
    assert not (tmp_path / "out" / "passwd").exists()


def test_a_zstd_layer_is_one_line_naming_the_media_type(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    digest = registry.image([BASE], layer_media_type="application/vnd.oci.image.layer.v1.tar+zstd")
    with pytest.raises(
        RegistryError,
        match=r"zstd-compressed \(application/vnd\.oci\.image\.layer\.v1\.tar\+zstd\): push ",
    ):
        read_out(registry, digest, tmp_path)


def test_uncompressed_layers_are_read(registry: FakeRegistry, tmp_path: Path) -> None:
    digest = registry.image([BASE], layer_media_type="application/vnd.oci.image.layer.v1.tar")
    assert "old.css" in read_out(registry, digest, tmp_path)


def test_a_tampered_blob_is_refused(registry: FakeRegistry, tmp_path: Path) -> None:
    digest = registry.image([BASE])
    registry.tampered.update(registry.blobs)
    with pytest.raises(RegistryError, match=r"the registry sent content of digest"):
        read_out(registry, digest, tmp_path)


def test_an_index_without_the_fleet_s_platform_says_what_it_has(
    registry: FakeRegistry, tmp_path: Path
) -> None:
    index = registry.index({"amd64": registry.image([BASE])})
    with pytest.raises(RegistryError, match=r"no linux/arm64 manifest \(it has: linux/amd64\)"):
        read_out(registry, index, tmp_path, architecture="ARM64")


def test_refused_credentials_name_the_permissions(registry: FakeRegistry, tmp_path: Path) -> None:
    digest = registry.image([BASE])
    client = RegistryClient(ImageReference.parse(registry.ref(digest)), "Basic bm9wZQ==")
    with pytest.raises(RegistryError, match=r"refused .* \(401\): .*ecr:BatchGetImage"):
        extract_directory(client, ROOT, tmp_path / "out")


def test_a_missing_image_says_it_may_have_expired(registry: FakeRegistry, tmp_path: Path) -> None:
    client = RegistryClient(
        ImageReference.parse(registry.ref("sha256:" + "e" * 64)), f"Basic {TOKEN}"
    )
    with pytest.raises(RegistryError, match=r"not found .*lifecycle rule expired it"):
        extract_directory(client, ROOT, tmp_path / "out")


def test_image_references() -> None:
    ecr = ImageReference.parse("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/shop@sha256:ab")
    assert (ecr.registry, ecr.repository, ecr.reference) == (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com",
        "team/shop",
        "sha256:ab",
    )
    assert ecr.ecr_region == "eu-west-1"
    assert ecr.base_url.startswith("https://123456789012.dkr.ecr.eu-west-1.amazonaws.com/v2/")
    local = ImageReference.parse("127.0.0.1:5000/shop:v1")
    assert (local.reference, local.ecr_region) == ("v1", None)
    assert local.base_url == "http://127.0.0.1:5000/v2/shop"
    with pytest.raises(RegistryError, match="names no registry"):
        ImageReference.parse("shop:latest")


# ---------------------------------------------------------------- the provider, end to end


class StackSession:
    """A boto3 Session stand-in: ECR behind a Stubber, S3 real (moto on loopback)."""

    def __init__(self) -> None:
        self.ecr, self.stub = stubbed_ecr()
        self.asked: list[tuple[str, str | None]] = []

    def client(self, service: str, region_name: str | None = None, **options: Any) -> Any:
        self.asked.append((service, region_name))
        if service == "ecr":
            return self.ecr
        return boto3.Session().client(service, region_name=region_name, **options)


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    # No docker anywhere: the registry is the only way in.
    monkeypatch.setenv("PATH", str(tmp_path / "no-docker"))
    with moto_server() as endpoint:
        yield endpoint


@pytest.mark.slow
def test_the_provider_publishes_from_the_registry_without_docker_and_keeps_releases(
    registry: FakeRegistry, s3_endpoint: str
) -> None:
    bucket = "static-from-registry"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").create_bucket(
        Bucket=bucket
    )
    v1 = registry.image([BASE])
    v2 = registry.image(
        [BASE, [whiteout("app/staticfiles/old.css"), file("app/staticfiles/new.css", "n")]]
    )
    sessions: list[StackSession] = []
    given: list[tuple[Any, str | None]] = []

    def session_factory(settings: Any, region: str | None) -> StackSession:
        given.append((settings, region))
        sessions.append(StackSession())
        return sessions[-1]

    settings = {"profile": "deploy", "assume_roles": [{"role_arn": "arn:aws:iam::1:role/d"}]}

    def props(digest: str) -> dict[str, Any]:
        return {
            "bucket": bucket,
            "release_id": registry.ref(digest),
            "image": registry.ref(digest),
            "static_root": ROOT,
            "source_dir": None,
            "source_fingerprint": None,
            "prefix": "static/",
            "keep": 2,
            "region": "us-east-1",
            "endpoint_url": s3_endpoint,
            "architecture": "X86_64",
            "image_source": "registry",
            "aws_session": settings,
        }

    provider = StaticReleaseProvider(sessions=session_factory)
    created = provider.create(props(v1))
    outs = created.outs or {}
    assert (outs["uploaded"], outs["kept_releases"]) == (4, [registry.ref(v1)])
    updated = provider.update(created.id, outs, props(v2))
    outs = updated.outs or {}
    assert outs["kept_releases"] == [registry.ref(v2), registry.ref(v1)]
    assert (outs["uploaded"], outs["skipped"]) == (1, 3)  # new.css new, old.css gone

    # Both releases' files side by side; the index has a record of each.
    listing = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").list_objects_v2(
        Bucket=bucket
    )
    published = {item["Key"] for item in listing["Contents"]}
    assert {"static/old.css", "static/new.css", index_key("static/")} <= published
    index = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1").get_object(
        Bucket=bucket, Key=index_key("static/")
    )
    records = parse_index(index["Body"].read(), "index").records
    assert [record.release for record in records] == [registry.ref(v2), registry.ref(v1)]
    # The stack's identity for every call: the settings reached the session factory.
    assert given == [(settings, "us-east-1"), (settings, "us-east-1")]
    assert all(("ecr", "us-east-1") in session.asked for session in sessions)
    for session in sessions:
        session.stub.assert_no_pending_responses()
