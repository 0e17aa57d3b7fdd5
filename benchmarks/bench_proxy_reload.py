"""New connections lost to the proxy's reloads: nginx and Caddy with the configs pulumi-django
renders, switched back and forth between two upstream sets while clients keep opening a new
connection per request.

What a replica switch does to clients that arrive at its instant (the local target's switch
and the rehearsal's both reload the proxy): an nginx reload hands the same listening socket to
its new workers; each Caddy reload opens a new listening socket (`SO_REUSEPORT`) and closes
the old one, resetting the connections queued on it, or closing unanswered one its old server
had just accepted. Keep-alive clients are not affected the same way: a browser resends once on
a new connection when a reused one is closed before any answer (`rehearsal.load` does too).

Every request must answer 200 from one of the two upstreams; anything else is a failure,
printed by kind. The last line is one JSON object.

    .venv/bin/python benchmarks/bench_proxy_reload.py [--servers nginx,caddy] [--reloads 30]
        [--gap 1.0] [--clients 4]
"""

from __future__ import annotations

import argparse
import collections
import http.client
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pulumi_django.cli.rehearsal.proxies import running_proxy
from pulumi_django.cli.rehearsal.servers import free_port
from pulumi_django.config.app import AppConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.rendering.proxy import ProxySite, site_from_config


class _Answer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_args: object) -> None:
        pass


def _upstream() -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Answer)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _site(port: int, runtime_dir: Path, upstream: ThreadingHTTPServer) -> ProxySite:
    return site_from_config(
        proxy=ProxyConfig(),
        app=AppConfig(),
        load_balancer=LoadBalancerConfig(),
        listen_host="127.0.0.1",
        listen_port=port,
        upstreams=[f"127.0.0.1:{upstream.server_address[1]}"],
        runtime_dir=str(runtime_dir),
    )


def measure(server: str, reloads: int, gap: float, clients: int) -> dict[str, object]:
    """Requests and failures of `clients` threads during `reloads` switches `gap` s apart."""
    upstreams = (_upstream(), _upstream())
    port = free_port()
    answered = [0] * clients
    failed: list[collections.Counter[str]] = [collections.Counter() for _ in range(clients)]
    running = threading.Event()
    running.set()

    def client(number: int) -> None:  # counts in its own slots: no lock needed
        while running.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                connection.request("GET", "/", headers={"Connection": "close"})
                response = connection.getresponse()
                response.read()
                if response.status == 200:
                    answered[number] += 1
                else:
                    failed[number][f"HTTP {response.status}"] += 1
            except (OSError, http.client.HTTPException) as error:
                failed[number][type(error).__name__] += 1
            finally:
                connection.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(clients)]
    try:
        with tempfile.TemporaryDirectory(prefix="pulumi-django-bench-reload-") as scratch:
            runtime_dir = Path(scratch)
            sites = [_site(port, runtime_dir, upstream) for upstream in upstreams]
            with running_proxy(server, sites[0]) as proxy:  # type: ignore[arg-type]
                for thread in threads:
                    thread.start()
                started = time.monotonic()
                try:
                    for number in range(reloads):
                        time.sleep(gap)
                        proxy.reload(sites[(number + 1) % 2])
                    time.sleep(gap)
                finally:
                    running.clear()
                    for thread in threads:
                        thread.join(30)
                seconds = time.monotonic() - started
                if any(thread.is_alive() for thread in threads):
                    raise RuntimeError("a client did not stop within 30 s")
    finally:
        for upstream in upstreams:
            upstream.shutdown()
            upstream.server_close()
    failures = sum(failed, collections.Counter())
    requests = sum(answered) + sum(failures.values())
    return {
        "server": server,
        "reloads": reloads,
        "gap_s": gap,
        "requests": requests,
        "requests_per_s": round(requests / seconds),
        "failed": sum(failures.values()),
        "failed_per_reload": round(sum(failures.values()) / reloads, 2),
        "failures": dict(failures),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", default="nginx,caddy")
    parser.add_argument("--reloads", type=int, default=30)
    parser.add_argument("--gap", type=float, default=1.0, help="seconds between reloads")
    parser.add_argument("--clients", type=int, default=4, help="threads, one request at a time")
    args = parser.parse_args(argv)
    rows = []
    for server in args.servers.split(","):
        row = measure(server, args.reloads, args.gap, args.clients)
        rows.append(row)
        print(
            f"{server:>6}: {row['reloads']} reloads {args.gap:g} s apart, {row['requests']} "
            f"requests ({row['requests_per_s']}/s on new connections): {row['failed']} failed "
            f"({row['failed_per_reload']} per reload) {row['failures']}"
        )
    print(json.dumps({"benchmark": "proxy_reload", "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
