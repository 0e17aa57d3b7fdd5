"""The proxy image through the stack's own ECR (issue 15, item 7): a pull-through cache rule for
ECR Public, the image pulled into it by the deploying machine, the task definition referencing
it by digest, the execution role allowed to pull it; in every egress mode, `vpc-endpoints`
included (its tasks never reach public.ecr.aws). The digest is the `proxy.imageDigest` pin, or
the one the tag names when the cache is first filled, kept in the state until an input changes
(no digest is written in the code)."""

from __future__ import annotations

import base64
import datetime
import gzip
import hashlib
import io
import json
import re
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import parliament
import pytest
from botocore.stub import Stubber
from shipped_sites import record_site, shipped_site, site_config
from stub_clients import stub_client

from pulumi_django.config import ConfigError
from pulumi_django.config.names import pull_through_prefix
from pulumi_django.providers.proxy_image import (
    MOCK_DIGEST,
    PULL_INPUTS,
    ProxyImageCacheProvider,
    ProxyImageError,
)
from pulumi_django.rendering.container_definitions import (
    PROXY_CONTAINER,
    PROXY_UPSTREAM,
    PUBLIC_ECR,
)
from pulumi_django.rendering.iam_policies import proxy_image_pull_policy
from pulumi_django.testing import MOCK_ACCOUNT, Recording

PROJECT = "pulumi-django"
REGISTRY = f"{MOCK_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
EGRESS_MODES = ("nat-per-az", "single-nat", "vpc-endpoints")
OTHER_DIGEST = "sha256:" + "e" * 64
DIGEST_SHAPE = re.compile(r"@sha256:[0-9a-f]{64}$")


def proxy_definition(recording: Recording) -> dict[str, Any]:
    # In the web task (the background workers' tasks have no proxy).
    return next(
        c
        for task in recording.find("aws:ecs/taskDefinition:TaskDefinition")
        for c in json.loads(task.inputs["containerDefinitions"])
        if c["name"] == PROXY_CONTAINER
    )


@pytest.fixture
def current_ecr_actions() -> Iterator[None]:
    """Parliament's copy of the Service Authorization Reference predates the pull-through
    cache's resource type: AWS gives ecr:BatchImportUpstreamImage the `repository*` resource
    type ("Actions, resources, and condition keys for Amazon Elastic Container Registry"),
    parliament's 1.6 database none (only "*"). Corrected for the test, and put back."""
    ecr = next(service for service in parliament.iam_definition if service["prefix"] == "ecr")
    action = next(p for p in ecr["privileges"] if p["privilege"] == "BatchImportUpstreamImage")
    saved = action["resource_types"]
    action["resource_types"] = [
        {"condition_keys": [], "dependent_actions": [], "resource_type": "repository*"}
    ]
    yield
    action["resource_types"] = saved


def findings(document: dict[str, Any]) -> list[tuple[str, Any]]:
    policy = parliament.analyze_policy_string(json.dumps(document))
    return [(finding.issue, finding.detail) for finding in policy.findings]


# ---------------------------------------------------------------- the plan, in every egress mode


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Recording]:
    return {
        egress: shipped_site(tmp_path_factory, "prod", network={"egress": egress})
        for egress in EGRESS_MODES
    }


@pytest.mark.parametrize("egress", EGRESS_MODES)
def test_no_container_of_the_task_comes_from_a_public_registry(
    plans: dict[str, Recording], egress: str
) -> None:
    recording = plans[egress]
    # The web task's and the background workers'.
    images = [
        c["image"]
        for task in recording.find("aws:ecs/taskDefinition:TaskDefinition")
        for c in json.loads(task.inputs["containerDefinitions"])
    ]
    assert all(image.startswith(f"{REGISTRY}/") and "@sha256:" in image for image in images)
    assert not any(PUBLIC_ECR in image for image in images)
    prefix = pull_through_prefix("bigfoot", PROJECT, "prod")
    # Unpinned: the digest ProxyImageCache resolves on `pulumi up`; offline, the mock's.
    image = proxy_definition(recording)["image"]
    assert DIGEST_SHAPE.search(image)
    assert image == f"{REGISTRY}/{prefix}/docker/library/nginx@{MOCK_DIGEST}"


@pytest.mark.parametrize("egress", EGRESS_MODES)
def test_the_pull_through_rule_and_the_filled_cache_come_before_the_task(
    plans: dict[str, Recording], egress: str
) -> None:
    recording = plans[egress]
    prefix = pull_through_prefix("bigfoot", PROJECT, "prod")
    rule = recording.one("aws:ecr/pullThroughCacheRule:PullThroughCacheRule")
    assert rule.inputs == {"ecrRepositoryPrefix": prefix, "upstreamRegistryUrl": "public.ecr.aws"}
    cache = recording.one("pulumi-python:dynamic/fleet:ProxyImageCache")
    upstream = PROXY_UPSTREAM["nginx"]
    assert {key: cache.inputs.get(key) for key in ("registry", "repository", "tag", "pin")} == {
        "registry": REGISTRY,
        "repository": f"{prefix}/{upstream.repository}",
        "tag": upstream.tag,
        "pin": None,
    }
    assert cache.inputs["architecture"] == "X86_64"
    task = recording.one("aws:ecs/taskDefinition:TaskDefinition", "bigfoot-task")
    assert recording.depends_on(cache.urn, rule.urn)
    assert recording.depends_on(task.urn, cache.urn)


@pytest.mark.parametrize("egress", EGRESS_MODES)
def test_the_execution_role_may_pull_through_the_cache_and_nothing_more(
    plans: dict[str, Recording], egress: str, current_ecr_actions: None
) -> None:
    recording = plans[egress]
    prefix = pull_through_prefix("bigfoot", PROJECT, "prod")
    role = recording.one("aws:iam/role:Role", "bigfoot-execution")
    policy = recording.one("aws:iam/rolePolicy:RolePolicy", "bigfoot-execution-proxy-image")
    assert role.urn in policy.property_dependencies["role"]
    document = json.loads(policy.inputs["policy"])
    (statement,) = document["Statement"]
    assert statement["Resource"] == f"arn:aws:ecr:us-east-1:{MOCK_ACCOUNT}:repository/{prefix}/*"
    assert set(statement["Action"]) == {
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "ecr:BatchImportUpstreamImage",
        "ecr:CreateRepository",
    }
    assert findings(document) == []
    # The task is registered only once its execution role may pull the proxy image.
    task = recording.one("aws:ecs/taskDefinition:TaskDefinition", "bigfoot-task")
    assert recording.depends_on(task.urn, policy.urn)


def test_caddy_on_arm_comes_through_the_cache_too() -> None:
    recording = record_site(
        site_config("dev", proxy={"server": "caddy"}, fleet={"architecture": "ARM64"}), "dev"
    )
    prefix = pull_through_prefix("bigfoot-dev", PROJECT, "dev")
    upstream = PROXY_UPSTREAM["caddy"]
    assert proxy_definition(recording)["image"] == (
        f"{REGISTRY}/{prefix}/docker/library/caddy@{MOCK_DIGEST}"
    )
    cache = recording.one("pulumi-python:dynamic/fleet:ProxyImageCache")
    assert (cache.inputs["tag"], cache.inputs["architecture"]) == (upstream.tag, "ARM64")


def test_proxy_image_digest_pins_another_digest_of_the_same_tag() -> None:
    recording = record_site(site_config("prod", proxy={"imageDigest": OTHER_DIGEST}), "prod")
    assert proxy_definition(recording)["image"].endswith(f"/docker/library/nginx@{OTHER_DIGEST}")
    cache = recording.one("pulumi-python:dynamic/fleet:ProxyImageCache")
    assert (cache.inputs["tag"], cache.inputs["pin"]) == (PROXY_UPSTREAM["nginx"].tag, OTHER_DIGEST)


def test_proxy_image_digest_must_be_a_digest() -> None:
    with pytest.raises(ConfigError, match=r"django:proxy\.imageDigest = '1\.28': wrong format"):
        site_config("prod", proxy={"imageDigest": "1.28"})


def test_the_pull_policy_refuses_anything_but_a_prefix_of_repositories() -> None:
    with pytest.raises(ValueError, match="not the repositories of a pull-through cache prefix"):
        proxy_image_pull_policy(f"arn:aws:ecr:us-east-1:{MOCK_ACCOUNT}:repository/*")


# ---------------------------------------------------------------- filling the cache


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def _layer(name: str, content: bytes) -> tuple[bytes, str]:
    """A gzipped tar layer and its diff id (digest of the uncompressed tar)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue()), "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()


@dataclass
class FakeCache:
    """An ECR pull-through cache as AWS documents its behaviour: an image is imported on a pull
    by tag; a digest is served only once imported (aws/containers-roadmap#2837); blobs are
    redirected elsewhere (S3, or the upstream while importing); a manifest GET carries no
    `Docker-Content-Digest` header (aws/containers-roadmap#1931) unless `digest_header` says
    what to send."""

    repository: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, bytes] = field(default_factory=dict)
    tag_target: dict[str, str] = field(default_factory=dict)
    imported: set[str] = field(default_factory=set)
    requests: list[tuple[str, bool]] = field(default_factory=list)
    refuse_tags: bool = False
    digest_header: str | None = None  # "right": the manifest's digest; "wrong": another

    def add_image(self, tag: str, release: str = "1") -> str:
        """A two-platform image under `tag` (moving the tag if it named another image; each
        `release` is other content); returns its index digest."""
        index: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [],
        }
        for architecture in ("amd64", "arm64"):
            layer, diff_id = _layer(f"etc/{architecture}", f"{architecture} {release}".encode())
            layer_digest, _ = _blob(layer)
            config_digest, config = _blob(
                json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
            )
            self.blobs |= {layer_digest: layer, config_digest: config}
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": {"digest": config_digest, "size": len(config)},
                    "layers": [
                        {
                            "digest": layer_digest,
                            "size": len(layer),
                            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        }
                    ],
                }
            ).encode()
            manifest_digest, _ = _blob(manifest)
            self.manifests[manifest_digest] = manifest
            index["manifests"].append(
                {
                    "digest": manifest_digest,
                    "platform": {"os": "linux", "architecture": architecture},
                }
            )
        body = json.dumps(index).encode()
        index_digest, _ = _blob(body)
        self.manifests[index_digest] = body
        self.tag_target[tag] = index_digest
        return index_digest

    def reachable(self, digest: str) -> set[str]:
        found = {digest}
        document = json.loads(self.manifests[digest])
        for child in document.get("manifests", []):
            found |= self.reachable(child["digest"])
        for blob in [document.get("config"), *document.get("layers", [])]:
            if blob:
                found.add(blob["digest"])
        return found


def serve(cache: FakeCache) -> tuple[ThreadingHTTPServer, int]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            pass

        def do_GET(self) -> None:
            authorized = self.headers.get("Authorization") == f"Basic {TOKEN}"
            cache.requests.append((self.path, authorized))
            prefix = f"/v2/{cache.repository}/"
            if self.path.startswith("/cdn/"):
                return self._send(200, cache.blobs[self.path[5:]], "application/octet-stream")
            if not self.path.startswith(prefix) or not authorized:
                return self._send(401, b"{}", "application/json")
            kind, _, reference = self.path[len(prefix) :].partition("/")
            if kind == "manifests" and not reference.startswith("sha256:"):
                if cache.refuse_tags or reference not in cache.tag_target:
                    return self._send(404, b"{}", "application/json")
                digest = cache.tag_target[reference]
                cache.imported |= cache.reachable(digest)
                header = {"right": digest, "wrong": OTHER_DIGEST}.get(cache.digest_header or "")
                return self._send(200, cache.manifests[digest], "application/json", header)
            if reference not in cache.imported:
                return self._send(404, b"{}", "application/json")
            if kind == "manifests":
                return self._send(200, cache.manifests[reference], "application/json")
            # Blobs: redirected to another host, as ECR sends them to S3.
            self.send_response(307)
            self.send_header("Location", f"http://localhost:{port}/cdn/{reference}")
            self.end_headers()
            return None

        def _send(
            self, status: int, body: bytes, content_type: str, digest: str | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            if digest:
                self.send_header("Docker-Content-Digest", digest)
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, port


TOKEN = base64.b64encode(b"AWS:registry-password").decode()


class StubbedSession:
    """A boto3 session whose ECR client answers GetAuthorizationToken `calls` times."""

    def __init__(self, calls: int = 1) -> None:
        self.ecr = stub_client("ecr")
        self.stub = Stubber(self.ecr)
        for _ in range(calls):
            self.stub.add_response(
                "get_authorization_token",
                {
                    "authorizationData": [
                        {
                            "authorizationToken": TOKEN,
                            "proxyEndpoint": f"https://{REGISTRY}",
                            "expiresAt": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
                        }
                    ]
                },
                {},
            )
        self.stub.activate()

    def client(self, service: str, region_name: str | None = None) -> Any:
        assert (service, region_name) == ("ecr", "us-east-1")
        return self.ecr


@pytest.fixture
def registry() -> Iterator[tuple[FakeCache, int]]:
    cache = FakeCache("bigfoot-00b357/docker/library/nginx")
    server, port = serve(cache)
    yield cache, port
    server.shutdown()


TAG = "1.28.0-alpine"


def props(
    port: int,
    cache: FakeCache,
    pin: str | None = None,
    architecture: str = "ARM64",
    tag: str = TAG,
) -> dict[str, Any]:
    """The inputs ProxyImageCache sends (its outputs `digest` and `image` unknown: None)."""
    return {
        "registry": f"127.0.0.1:{port}",
        "repository": cache.repository,
        "tag": tag,
        "pin": pin,
        "public_ref": f"public.ecr.aws/docker/library/nginx:{tag}",
        "architecture": architecture,
        "region": "us-east-1",
        "aws_session": None,
        "digest": None,
        "image": None,
    }


def provider(session: StubbedSession) -> ProxyImageCacheProvider:
    return ProxyImageCacheProvider(sessions=lambda _settings, _region: session)


def platform_blobs(cache: FakeCache, index_digest: str, architecture: str) -> list[str]:
    """The config and layer digests of the index's manifest for `architecture`."""
    index = json.loads(cache.manifests[index_digest])
    entry = next(m for m in index["manifests"] if m["platform"]["architecture"] == architecture)
    manifest = json.loads(cache.manifests[entry["digest"]])
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


def test_unpinned_create_resolves_the_tag_and_pulls_that_digest_for_the_fleets_platform(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    digest = cache.add_image(TAG)
    session = StubbedSession()
    result = provider(session).create(props(port, cache))
    session.stub.assert_no_pending_responses()
    # The digest is the sha256 of the index the tag names (ECR sends no Docker-Content-Digest).
    assert result.outs["digest"] == digest
    assert result.id == f"127.0.0.1:{port}/{cache.repository}@{digest}"
    assert result.outs["image"] == result.id
    paths = [path for path, _ in cache.requests]
    prefix = f"/v2/{cache.repository}"
    # Docker's order: the tag (which imports), the index by digest, the platform's manifest.
    index = json.loads(cache.manifests[digest])
    arm = next(m["digest"] for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    assert paths[:3] == [
        f"{prefix}/manifests/{TAG}",
        f"{prefix}/manifests/{digest}",
        f"{prefix}/manifests/{arm}",
    ]
    wanted = platform_blobs(cache, digest, "arm64")
    assert [p for p in paths if p.startswith("/cdn/")] == [f"/cdn/{d}" for d in wanted]
    # The ECR token goes to the registry, never to where blobs are redirected.
    assert all(authorized == path.startswith("/v2/") for path, authorized in cache.requests)


def test_a_docker_content_digest_header_must_agree_with_the_manifests_bytes(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    digest = cache.add_image(TAG)
    cache.digest_header = "right"
    assert provider(StubbedSession()).create(props(port, cache)).outs["digest"] == digest
    cache.digest_header = "wrong"
    with pytest.raises(ProxyImageError) as raised:
        provider(StubbedSession()).create(props(port, cache))
    message = str(raised.value)
    assert "\n" not in message
    assert f"the registry says its manifest is {OTHER_DIGEST}, its bytes are {digest}" in message


def test_a_pin_is_pulled_and_output_even_when_the_tag_names_another_image_now(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    pinned = cache.add_image(TAG, release="1")
    cache.imported |= cache.reachable(pinned)  # cached while the tag named it
    current = cache.add_image(TAG, release="2")
    assert current != pinned
    result = provider(StubbedSession()).create(props(port, cache, pin=pinned))
    assert (result.outs["digest"], result.outs["pin"]) == (pinned, pinned)
    assert result.outs["image"].endswith(f"@{pinned}")
    cdn = [path for path, _ in cache.requests if path.startswith("/cdn/")]
    assert cdn == [f"/cdn/{d}" for d in platform_blobs(cache, pinned, "arm64")]


def test_a_pin_the_tag_no_longer_names_is_refused_in_one_line_naming_the_key(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    current = cache.add_image(TAG)
    with pytest.raises(ProxyImageError) as raised:
        provider(StubbedSession()).create(props(port, cache, pin=OTHER_DIGEST))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(
        f"proxy image public.ecr.aws/docker/library/nginx:{TAG} no longer names the "
        f"pinned {OTHER_DIGEST} (it names {current})"
    )
    assert "django:proxy.imageDigest" in message


def test_a_cache_that_cannot_import_names_the_permissions(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    cache.add_image(TAG)
    cache.refuse_tags = True
    with pytest.raises(
        ProxyImageError, match="ecr:BatchImportUpstreamImage and ecr:CreateRepository"
    ):
        provider(StubbedSession()).create(props(port, cache))


def test_the_resolved_digest_stays_on_a_rerun_and_a_refresh_even_after_the_tag_moved(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    first = cache.add_image(TAG, release="1")
    state = provider(StubbedSession()).create(props(port, cache))
    assert state.outs["digest"] == first
    cache.add_image(TAG, release="2")  # upstream moved the tag since
    requests = len(cache.requests)
    # The next `pulumi up`: the same inputs (outputs unknown, another session) change nothing.
    rerun = dict(props(port, cache), aws_session={"profile": "ci"})
    diff = ProxyImageCacheProvider().diff(state.id, state.outs, rerun)
    assert (diff.changes, diff.replaces) == (False, [])
    # `pulumi up --refresh`: the stored state as it is.
    read = ProxyImageCacheProvider().read(state.id, dict(state.outs))
    assert (read.id, read.outs) == (state.id, state.outs)
    assert len(cache.requests) == requests  # neither looked at the registry


def test_a_changed_tag_replaces_the_resource_and_resolves_the_new_tag(
    registry: tuple[FakeCache, int],
) -> None:
    cache, port = registry
    old = cache.add_image(TAG, release="1")
    new = cache.add_image("1.29.0-alpine", release="2")
    session = StubbedSession(calls=2)
    state = provider(session).create(props(port, cache))
    assert state.outs["digest"] == old
    news = props(port, cache, tag="1.29.0-alpine")
    diff = ProxyImageCacheProvider().diff(state.id, state.outs, news)
    assert (diff.changes, diff.replaces, diff.delete_before_replace) == (True, ["tag"], False)
    replacement = provider(session).create(news)  # what the engine runs for a replacement
    assert (replacement.outs["digest"], replacement.outs["tag"]) == (new, "1.29.0-alpine")
    assert replacement.id.endswith(f"@{new}")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pin", OTHER_DIGEST),
        ("architecture", "X86_64"),
        ("region", "eu-west-1"),
        ("registry", "210987654321.dkr.ecr.us-east-1.amazonaws.com"),
        ("repository", "bigfoot-00b357/docker/library/caddy"),
    ],
)
def test_every_other_pull_input_replaces_too(key: str, value: str) -> None:
    olds = {**props(1, FakeCache("bigfoot-00b357/docker/library/nginx")), "digest": MOCK_DIGEST}
    diff = ProxyImageCacheProvider().diff("id", olds, dict(olds, **{key: value}))
    assert (diff.changes, diff.replaces) == (True, [key])
    assert key in PULL_INPUTS


def test_delete_leaves_the_cached_image() -> None:
    class NoSession:
        def __call__(self, *_args: Any) -> Any:
            raise AssertionError("delete calls nothing")

    ProxyImageCacheProvider(sessions=NoSession()).delete("id", {})
