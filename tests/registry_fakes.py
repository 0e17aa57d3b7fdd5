"""A throwaway image registry for tests: the registry HTTP API v2 (manifests, blobs) on a free
loopback port, serving images built in the test (layer tarballs, config, manifests, index),
requiring a Basic token, and sending blobs through a redirect to a "bucket" that, like S3's
pre-signed URLs, refuses a request carrying an Authorization header."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
GZIP_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
PASSWORD = "ecr-password-for-the-test"
TOKEN = base64.b64encode(f"AWS:{PASSWORD}".encode()).decode()


@dataclass(frozen=True)
class Entry:
    """One tar member: a file (`data`), a directory, a symlink or a hard link (`link`)."""

    name: str
    data: bytes | None = None
    kind: str = "file"  # file, dir, symlink, hardlink
    link: str = ""


def file(name: str, data: bytes | str) -> Entry:
    return Entry(name, data.encode() if isinstance(data, str) else data)


def directory(name: str) -> Entry:
    return Entry(name, kind="dir")


def symlink(name: str, target: str) -> Entry:
    return Entry(name, kind="symlink", link=target)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, kind="hardlink", link=target)


def whiteout(path: str) -> Entry:
    """The OCI whiteout hiding `path` of the layers below."""
    parent, _, base = path.rpartition("/")
    return file(f"{parent}/.wh.{base}" if parent else f".wh.{base}", b"")


def opaque(directory_path: str) -> Entry:
    """The OCI marker emptying `directory_path` of what the layers below put there."""
    return file(f"{directory_path}/.wh..wh..opq" if directory_path else ".wh..wh..opq", b"")


def tar_of(entries: Sequence[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = 0
            if entry.kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif entry.kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, entry.link
                archive.addfile(info)
            elif entry.kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, entry.link
                archive.addfile(info)
            else:
                data = entry.data or b""
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    """Images pushed into it by `push`; `requests` logs (path, had Authorization)."""

    repository: str = "shop"
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, bool]] = field(default_factory=list)
    tampered: set[str] = field(default_factory=set)
    port: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _blob(self, data: bytes) -> str:
        digest = digest_of(data)
        self.blobs[digest] = data
        return digest

    def _manifest(self, media_type: str, document: dict[str, Any]) -> str:
        body = json.dumps(document, indent=2).encode()
        digest = digest_of(body)
        self.manifests[digest] = (media_type, body)
        return digest

    def image(
        self,
        layers: Sequence[Sequence[Entry]],
        architecture: str = "amd64",
        layer_media_type: str = GZIP_LAYER,
    ) -> str:
        """A single-platform image of these layers (bottom first); its manifest digest."""
        descriptors, diff_ids = [], []
        for entries in layers:
            plain = tar_of(entries)
            diff_ids.append(digest_of(plain))
            stored = gzip.compress(plain, mtime=0) if layer_media_type == GZIP_LAYER else plain
            descriptors.append(
                {"mediaType": layer_media_type, "digest": self._blob(stored), "size": len(stored)}
            )
        config = json.dumps(
            {
                "architecture": architecture,
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": diff_ids},
                "config": {},
            }
        ).encode()
        return self._manifest(
            OCI_MANIFEST,
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": OCI_CONFIG,
                    "digest": self._blob(config),
                    "size": len(config),
                },
                "layers": descriptors,
            },
        )

    def index(self, platforms: dict[str, str], attestation: bool = True) -> str:
        """An image index of `{architecture: manifest digest}` (plus a BuildKit attestation
        manifest, `unknown/unknown`, as `docker buildx` pushes by default)."""
        entries = [
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": len(self.manifests[digest][1]),
                "platform": {"architecture": architecture, "os": "linux"},
            }
            for architecture, digest in platforms.items()
        ]
        if attestation:
            statement = self.image([[file("intoto.json", "{}")]], architecture="unknown")
            entries.insert(
                0,
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": statement,
                    "size": len(self.manifests[statement][1]),
                    "platform": {"architecture": "unknown", "os": "unknown"},
                    "annotations": {
                        "vnd.docker.reference.type": "attestation-manifest",
                        "vnd.docker.reference.digest": next(iter(platforms.values())),
                    },
                },
            )
        return self._manifest(
            OCI_INDEX, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
        )

    def ref(self, digest: str) -> str:
        return f"{self.host}/{self.repository}@{digest}"


def _handler(registry: FakeRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_args: Any) -> None:
            """Quiet."""

        def _send(self, code: int, body: bytes = b"", media_type: str = "") -> None:
            self.send_response(code)
            if media_type:
                self.send_header("Content-Type", media_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            authorization = self.headers.get("Authorization")
            registry.requests.append((self.path, authorization is not None))
            path = self.path.split("?", 1)[0]
            if path.startswith("/bucket/"):
                # An S3 pre-signed URL: the signature is in the query, a header is refused.
                if authorization is not None or "X-Amz-Signature=" not in self.path:
                    self._send(400, b"Only one auth mechanism allowed")
                    return
                data = registry.blobs[path.removeprefix("/bucket/")]
                if path.removeprefix("/bucket/") in registry.tampered:
                    data = data + b"tampered"
                self._send(200, data, "application/octet-stream")
                return
            if authorization != f"Basic {TOKEN}":
                self._send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', "application/json")
                return
            prefix = f"/v2/{registry.repository}/"
            if not path.startswith(prefix):
                self._send(404)
                return
            kind, _, reference = path.removeprefix(prefix).partition("/")
            if kind == "manifests" and reference in registry.manifests:
                media_type, body = registry.manifests[reference]
                self._send(200, body, media_type)
            elif kind == "blobs" and reference in registry.blobs:
                self.send_response(307)
                self.send_header("Location", f"/bucket/{reference}?X-Amz-Signature=abc")
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}', "application/json")

    return Handler


@contextmanager
def serving(registry: FakeRegistry) -> Iterator[FakeRegistry]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    registry.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()
