"""The local proxy's switch between replica sets, run for real: the rendered supervisor and switch
scripts with the real nginx and Caddy on loopback, while requests keep coming."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pulumi_django.cli.rehearsal.proxies import caddy_binary, nginx_binary
from pulumi_django.cli.rehearsal.servers import free_port, start_process, stop_process
from pulumi_django.config.app import AppConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.rendering.local_proxy import (
    ProxyControl,
    ProxyServer,
    render_supervisor,
    render_switch,
)
from pulumi_django.rendering.proxy import ProxySite, render_proxy, site_from_config

HEALTH = "/healthz"


class Upstream(ThreadingHTTPServer):
    """A replica stand-in on loopback: answers its own name; `/slow?S` after S seconds."""

    daemon_threads = True

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(("127.0.0.1", free_port()), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def stop(self) -> None:
        """What a graceful replica stop does: no new connections, requests in flight finish."""
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.path.startswith("/slow?"):
            time.sleep(float(self.path.split("?", 1)[1]))
        body = json.dumps({"upstream": self.server.name}).encode()  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@dataclass
class LocalProxy:
    """The proxy container's supervisor and the switch containers, as host processes."""

    server: ProxyServer
    control: ProxyControl
    port: int
    env: dict[str, str]
    log: Path
    supervisor: subprocess.Popen[bytes] | None = None
    switches: list[str] = field(default_factory=list)

    def site(self, *upstreams: Upstream) -> ProxySite:
        return site_from_config(
            proxy=ProxyConfig(),
            app=AppConfig(),
            load_balancer=LoadBalancerConfig(),
            listen_host="127.0.0.1",
            listen_port=self.port,
            upstreams=[upstream.address for upstream in upstreams],
            runtime_dir=self.control.runtime_dir,
        )

    def start(self) -> None:
        script = render_supervisor(self.control)
        self.supervisor = start_process(["sh", "-c", script], self.log, env=self.env)

    def switch(self, config_text: str, timeout: int = 30) -> subprocess.CompletedProcess[str]:
        Path(self.control.new_config).write_text(config_text)
        script = render_switch(
            self.control,
            probe_url=f"http://127.0.0.1:{self.port}{HEALTH}",
            probe_host="127.0.0.1",
            timeout_seconds=timeout,
        )
        done = subprocess.run(
            ["sh", "-c", script], capture_output=True, text=True, env=self.env, timeout=90
        )
        self.switches.append(done.stdout)
        return done

    def get(self, path: str = "/") -> str:
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(json.load(response)["upstream"])

    def file(self, name: str) -> str:
        path = Path(self.control.config_dir) / name
        return path.read_text().strip() if path.exists() else ""


@contextlib.contextmanager
def local_proxy(server: ProxyServer) -> Iterator[LocalProxy]:
    # As root, nginx's workers run as `nobody`, who must be able to enter these directories.
    base = Path(tempfile.mkdtemp(prefix="pulumi-django-local-proxy-"))
    try:
        config_dir, runtime_dir, bin_dir = base / "volume", base / "run", base / "bin"
        for directory in (base, config_dir, runtime_dir, bin_dir):
            directory.mkdir(exist_ok=True)
            directory.chmod(0o755)
        # The stock images have `nginx` or `caddy` on PATH; so does this one.
        binary = nginx_binary() if server == "nginx" else caddy_binary()
        (bin_dir / server).symlink_to(binary)
        env = {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "XDG_CONFIG_HOME": str(runtime_dir),
            "XDG_DATA_HOME": str(runtime_dir),
        }
        proxy = LocalProxy(
            server,
            ProxyControl(server, config_dir=str(config_dir), runtime_dir=str(runtime_dir)),
            free_port(),
            env,
            base / "supervisor.log",
        )
        proxy.start()
        try:
            yield proxy
        finally:
            assert proxy.supervisor is not None
            stop_process(proxy.supervisor, timeout=30)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _failure(proxy: LocalProxy) -> str:
    return f"switch output:\n{''.join(proxy.switches)}\nsupervisor log:\n{proxy.log.read_text()}"


class Load:
    """Requests back to back until stopped: (start time, answer).

    Behind nginx each request opens a new connection: its reload hands the same listening
    socket to the new workers, and loses none. Behind Caddy the requests share a keep-alive
    connection, as a browser's do, and like a browser (and the rehearsal's load) a request is
    sent once more on a new connection when a reused one was closed before any answer. Each
    Caddy reload opens a new listening socket and closes the old one: a new connection that
    arrives in that instant can be reset (`benchmarks/bench_proxy_reload.py`: 8 of 9,387 new
    connections in 40 reloads at 377/s, none of 12,555 behind nginx); such a reset fails the
    load here as it would a browser's page."""

    def __init__(self, proxy: LocalProxy) -> None:
        self.proxy = proxy
        self.answers: list[tuple[float, str]] = []
        self.errors: list[str] = []
        self.running = True
        run = self._run_kept_alive if proxy.server == "caddy" else self._run_on_new_connections
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def _run_on_new_connections(self) -> None:
        while self.running:
            started = time.monotonic()
            try:
                self.answers.append((started, self.proxy.get()))
            except Exception as error:  # any failure is the load's to report
                self.errors.append(f"{started:.3f}: {error!r}")

    def _run_kept_alive(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.proxy.port, timeout=10)
        while self.running:
            started = time.monotonic()
            # Reused: open, and it carried a request before (http.client closes a connection
            # whose answer said `Connection: close`, and opens a new one for the next request).
            reused = connection.sock is not None
            try:
                try:
                    answer = self._ask(connection)
                except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                    connection.close()
                    if not reused:
                        raise
                    answer = self._ask(connection)  # once more, on a new connection
                self.answers.append((started, answer))
            except Exception as error:  # any failure is the load's to report
                connection.close()
                self.errors.append(f"{started:.3f}: {error!r}")
        connection.close()

    @staticmethod
    def _ask(connection: http.client.HTTPConnection) -> str:
        connection.request("GET", "/")
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise ValueError(f"HTTP {response.status}")
        return str(json.loads(body)["upstream"])

    def stop(self) -> None:
        self.running = False
        self.thread.join(15)
        assert not self.thread.is_alive(), "the load did not stop"


@pytest.mark.slow
@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_switching_replica_sets_drops_no_request(server: ProxyServer) -> None:
    old, new = Upstream("old"), Upstream("new")
    try:
        with local_proxy(server) as proxy:
            first = proxy.switch(render_proxy(server, proxy.site(old)))
            assert first.returncode == 0, _failure(proxy)
            assert proxy.get() == "old"

            load = Load(proxy)
            in_flight: dict[str, str] = {}
            slow = threading.Thread(target=lambda: in_flight.update(answer=proxy.get("/slow?3")))
            slow.start()
            time.sleep(0.5)
            switched = proxy.switch(render_proxy(server, proxy.site(new)))
            switched_at = time.monotonic()
            # Pulumi deletes the replaced replicas only now, each with a graceful stop.
            old.stop()
            slow.join(10)
            time.sleep(1)
            load.stop()

            assert switched.returncode == 0, _failure(proxy)
            assert "answers through the proxy" in switched.stdout
            assert load.errors == [], _failure(proxy)
            assert in_flight == {"answer": "old"}, "the request in flight finished on the old set"
            after = [answer for started, answer in load.answers if started > switched_at]
            assert after and set(after) == {"new"}
            assert {answer for _, answer in load.answers} == {"old", "new"}
    finally:
        old.stop()
        new.stop()


@pytest.mark.slow
@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_a_refused_config_leaves_the_served_one_in_place(server: ProxyServer) -> None:
    upstream = Upstream("current")
    try:
        with local_proxy(server) as proxy:
            good = render_proxy(server, proxy.site(upstream))
            assert proxy.switch(good).returncode == 0, _failure(proxy)
            served = proxy.file("loaded")
            broken = good + "}\n"

            # The switch checks first: the shared file never holds a config the server refuses.
            refused = proxy.switch(broken)
            assert refused.returncode == 1
            assert f"{server} refused the new config" in refused.stdout
            assert Path(proxy.control.wanted).read_text() == good

            # A bad file that reaches the volume anyway is refused by the proxy, which goes on.
            Path(proxy.control.wanted).write_text(broken)
            deadline = time.monotonic() + 20
            while not proxy.file("rejected") and time.monotonic() < deadline:
                time.sleep(0.2)
            assert proxy.file("rejected").split()[0] != served
            assert proxy.file("loaded") == served
            assert proxy.get() == "current"
    finally:
        upstream.stop()


@pytest.mark.slow
def test_the_switch_fails_when_no_proxy_loads_the_config() -> None:
    with local_proxy("nginx") as proxy:
        assert proxy.supervisor is not None
        stop_process(proxy.supervisor)
        upstream = Upstream("lonely")
        try:
            done = proxy.switch(render_proxy("nginx", proxy.site(upstream)), timeout=2)
        finally:
            upstream.stop()
        assert done.returncode == 1
        assert "the proxy did not load config" in done.stdout
        assert "is the proxy container running?" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_the_supervisor_stops_its_server_gracefully(server: ProxyServer) -> None:
    upstream = Upstream("app")
    try:
        with local_proxy(server) as proxy:
            assert proxy.switch(render_proxy(server, proxy.site(upstream))).returncode == 0
            assert proxy.supervisor is not None
            slow: dict[str, str] = {}
            request = threading.Thread(target=lambda: slow.update(answer=proxy.get("/slow?2")))
            request.start()
            time.sleep(0.5)
            # `docker stop` signals the container's main process: the shell, not the server.
            os.kill(proxy.supervisor.pid, signal.SIGTERM)
            assert proxy.supervisor.wait(30) == 0, _failure(proxy)
            request.join(10)
            assert slow == {"answer": "app"}
            with pytest.raises(urllib.error.URLError):
                proxy.get()
    finally:
        upstream.stop()
