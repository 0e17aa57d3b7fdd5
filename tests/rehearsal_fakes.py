"""What the rehearsal's fast tests share: a fake site's request handler, and samples and
reports as the load and the rehearsal make them."""

from __future__ import annotations

import http.server
from collections.abc import Sequence
from typing import Any

from pulumi_django.cli.rehearsal.load import Sample, classify
from pulumi_django.cli.rehearsal.report import RehearsalReport, StepReport, Timeline, build_report

STATIC_PREFIX = "/static/"


class FakeSiteHandler(http.server.BaseHTTPRequestHandler):
    """A site on loopback, quiet, with keep-alive. `drop_after_each` closes every keep-alive
    connection right after its answer without saying so (what a proxy reload does to idle
    connections)."""

    protocol_version = "HTTP/1.1"
    drop_after_each = False

    def log_message(self, *_args: object) -> None:
        pass

    def answer(
        self,
        status: int,
        body: str,
        headers: dict[str, str] | None = None,
        *,
        content_type: str | None = None,
    ) -> None:
        data = body.encode()
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if self.drop_after_each:
            self.close_connection = True


def page(
    started: float,
    path: str,
    status: int,
    *,
    method: str = "GET",
    detail: str = "",
    version: str = "",
    latency_ms: float = 5.0,
) -> Sample:
    """A page request as the load records it (static prefix /static/, expecting 200)."""
    failure = classify(method, path, status, 200, STATIC_PREFIX)
    return Sample(started, method, path, status, latency_ms, failure, detail, version)


def rehearsal_report(
    samples: Sequence[Sample], steps: Sequence[StepReport], **names: Any
) -> RehearsalReport:
    """The report of a rehearsal of v1 -> v2 (or `names`: release, previous, replicas...)
    whose release ran from 2.0 to 4.0."""
    arguments: dict[str, Any] = {
        "release": "v2",
        "previous": "v1",
        "proxy": "nginx",
        "server": "gunicorn",
        "replicas": 2,
        "rate": 50,
        **names,
    }
    return build_report(
        **arguments, steps=steps, samples=samples, timeline=Timeline(0.0, 2.0, 4.0, 5.0)
    )
