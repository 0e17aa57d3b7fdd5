"""The app server's settings (Gunicorn or Uvicorn), derived from the app, fleet and load
balancer sections of the stack config.

The settings are computed once, in `app_server_settings`, and rendered three ways: a
gunicorn.conf.py text, a Gunicorn command line, and a Uvicorn command line. The task definition
and the local Docker replicas run the command lines; `pulumi-django render app-server` prints the
same settings for people to read. docs/proxy-and-app-server.md explains every value.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from pulumi_django.config.app import AppConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig

# Fargate: 1024 CPU units are one vCPU.
CPU_UNITS_PER_VCPU = 1024
MIN_WORKERS = 2
# A connection must outlive the idle timeout of whoever sends on it (the load balancer, the
# proxy): otherwise the server closes it just as a request arrives, and that request fails.
KEEPALIVE_MARGIN_SECONDS = 5
# Recycle a Gunicorn worker after this many requests (plus jitter, so they do not all restart
# at once): bounds the memory a slow leak can take.
MAX_REQUESTS = 1000
MAX_REQUESTS_JITTER = 100
# The heartbeat files Gunicorn workers touch; /dev/shm stays writable with a read-only root.
WORKER_TMP_DIR = "/dev/shm"  # noqa: S108 - a tmpfs of its own in every container
# Only the local proxy talks to the app, so only it may set X-Forwarded-*.
LOCAL_PROXY = ("127.0.0.1",)
ACCESS_LOG_FORMAT = '%({x-forwarded-for}i)s "%(r)s" %(s)s %(B)s "%(f)s" "%(a)s" %(D)sus'


@dataclass(frozen=True)
class AppServerSettings:
    """Everything the app server is started with."""

    server: Literal["gunicorn", "uvicorn"]
    app: str
    bind_host: str
    port: int
    workers: int
    worker_class: Literal["sync", "gthread"]
    threads: int
    preload: bool
    timeout_seconds: int
    graceful_timeout_seconds: int
    keepalive_seconds: int
    forwarded_allow_ips: tuple[str, ...]
    # Uvicorn only: Gunicorn's concurrency is already bounded by workers x threads.
    limit_concurrency: int | None = None

    @property
    def bind(self) -> str:
        return f"{self.bind_host}:{self.port}"


def app_environment_defaults(app: AppConfig) -> dict[str, str]:
    """Variables the app gets from how it is served, before `app.environment` (which may
    override them): under an ASGI server no persistent database connections, which Django's
    docs say to disable with ASGI (each request may run in another thread, and connections
    left open by finished ones are never reused or closed); under Gunicorn a runtime directory
    on the writable tmpfs, where Gunicorn 25.1 and later put their control socket (else under
    $HOME, which a read-only root refuses: an error in the log at every start)."""
    if app.server == "uvicorn":
        return {"DATABASE_CONN_MAX_AGE": "0"}
    return {"XDG_RUNTIME_DIR": WORKER_TMP_DIR}


def default_workers(cpu_units: int) -> int:
    """2 x vCPU + 1, at least 2: the usual Gunicorn sizing, floored for fractional vCPUs."""
    return max(MIN_WORKERS, 2 * cpu_units // CPU_UNITS_PER_VCPU + 1)


def app_keepalive_seconds(load_balancer: LoadBalancerConfig) -> int:
    """Longer than the load balancer's (and so the proxy's) idle timeout."""
    return load_balancer.idle_timeout_seconds + KEEPALIVE_MARGIN_SECONDS


def app_server_settings(
    *,
    app: AppConfig,
    fleet: FleetConfig,
    load_balancer: LoadBalancerConfig,
    bind_host: str = "127.0.0.1",
    port: int | None = None,
    forwarded_allow_ips: tuple[str, ...] = LOCAL_PROXY,
    limit_concurrency: int | None = None,
) -> AppServerSettings:
    """The settings a stack runs its app with: the server and its timeouts from `app`, the
    default worker count from `fleet`'s CPU, the keep-alive from `load_balancer`.

    The AWS sidecar binds to 127.0.0.1 and trusts only the local proxy (the defaults); a
    local Docker replica binds to 0.0.0.0 and trusts the proxy container's network; the
    rehearsal gives each replica its own `port`."""
    if limit_concurrency is not None and app.server != "uvicorn":
        raise ValueError("limit_concurrency applies to Uvicorn only")
    return AppServerSettings(
        server=app.server,
        app=app.wsgi_app if app.server == "gunicorn" else app.asgi_app,
        bind_host=bind_host,
        port=app.port if port is None else port,
        workers=app.workers or default_workers(fleet.cpu),
        worker_class=app.worker_class,
        threads=app.threads,
        preload=app.preload,
        timeout_seconds=app.timeout_seconds,
        graceful_timeout_seconds=app.graceful_timeout_seconds,
        keepalive_seconds=app_keepalive_seconds(load_balancer),
        forwarded_allow_ips=forwarded_allow_ips,
        limit_concurrency=limit_concurrency,
    )


def _gunicorn_options(settings: AppServerSettings) -> list[tuple[str, str, str | int | bool]]:
    """(gunicorn.conf.py name, command-line flag, value): one table for both renderings; a
    flag with a boolean value is a switch, given when true."""
    options: list[tuple[str, str, str | int | bool]] = [
        ("bind", "--bind", settings.bind),
        ("workers", "--workers", settings.workers),
        ("worker_class", "--worker-class", settings.worker_class),
    ]
    if settings.worker_class == "gthread":
        options.append(("threads", "--threads", settings.threads))
    options.append(("preload_app", "--preload", settings.preload))
    options += [
        ("timeout", "--timeout", settings.timeout_seconds),
        ("graceful_timeout", "--graceful-timeout", settings.graceful_timeout_seconds),
        ("keepalive", "--keep-alive", settings.keepalive_seconds),
        ("forwarded_allow_ips", "--forwarded-allow-ips", ",".join(settings.forwarded_allow_ips)),
        ("max_requests", "--max-requests", MAX_REQUESTS),
        ("max_requests_jitter", "--max-requests-jitter", MAX_REQUESTS_JITTER),
        ("worker_tmp_dir", "--worker-tmp-dir", WORKER_TMP_DIR),
        ("accesslog", "--access-logfile", "-"),
        ("access_log_format", "--access-logformat", ACCESS_LOG_FORMAT),
        ("errorlog", "--error-logfile", "-"),
    ]
    return options


def gunicorn_command(settings: AppServerSettings) -> list[str]:
    """The container command: `gunicorn` with every setting as a flag, then the app."""
    _require(settings, "gunicorn")
    command = ["gunicorn"]
    for _, flag, value in _gunicorn_options(settings):
        if isinstance(value, bool):
            command += [flag] if value else []
        else:
            command += [flag, str(value)]
    return [*command, settings.app]


def render_gunicorn(settings: AppServerSettings) -> str:
    """A gunicorn.conf.py with the same settings as `gunicorn_command`."""
    _require(settings, "gunicorn")
    lines = [
        '"""Gunicorn settings rendered by pulumi-django from the stack config; do not edit."""',
        "# Run with: gunicorn --config gunicorn.conf.py",
        "",
        f"wsgi_app = {settings.app!r}",
    ]
    lines += [f"{name} = {value!r}" for name, _, value in _gunicorn_options(settings)]
    return "\n".join(lines) + "\n"


def uvicorn_command(settings: AppServerSettings) -> list[str]:
    """The container command for Uvicorn (ASGI). Uvicorn has no per-request timeout."""
    _require(settings, "uvicorn")
    command = [
        "uvicorn",
        settings.app,
        "--host",
        settings.bind_host,
        "--port",
        str(settings.port),
        "--workers",
        str(settings.workers),
        "--timeout-keep-alive",
        str(settings.keepalive_seconds),
        "--timeout-graceful-shutdown",
        str(settings.graceful_timeout_seconds),
        "--proxy-headers",
        "--forwarded-allow-ips",
        ",".join(settings.forwarded_allow_ips),
        "--access-log",
    ]
    if settings.limit_concurrency is not None:
        command += ["--limit-concurrency", str(settings.limit_concurrency)]
    return command


def app_server_command(settings: AppServerSettings) -> list[str]:
    """The command that runs the configured server."""
    if settings.server == "gunicorn":
        return gunicorn_command(settings)
    return uvicorn_command(settings)


def render_app_server(settings: AppServerSettings) -> str:
    """What `pulumi-django render app-server` prints: a gunicorn.conf.py, or Uvicorn's command."""
    if settings.server == "gunicorn":
        return render_gunicorn(settings)
    return (
        "# Uvicorn command rendered by pulumi-django from the stack config.\n"
        f"{shlex.join(uvicorn_command(settings))}\n"
    )


def _require(settings: AppServerSettings, server: str) -> None:
    if settings.server != server:
        raise ValueError(f"these settings are for {settings.server}, not {server}")
