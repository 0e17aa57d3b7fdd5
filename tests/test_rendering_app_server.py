"""The app server's settings: derived from the app, fleet and load balancer sections, and accepted
by the real servers."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from echo_apps import write_echo_apps

from pulumi_django.cli.rehearsal.app_servers import local_command, running_app_server
from pulumi_django.cli.rehearsal.servers import free_port
from pulumi_django.config.app import AppConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.rendering.app_server import (
    WORKER_TMP_DIR,
    AppServerSettings,
    app_environment_defaults,
    app_server_command,
    app_server_settings,
    default_workers,
    gunicorn_command,
    render_app_server,
    render_gunicorn,
    uvicorn_command,
)


def settings_for(
    *,
    app: dict[str, Any] | None = None,
    fleet: dict[str, Any] | None = None,
    load_balancer: dict[str, Any] | None = None,
    **options: Any,
) -> AppServerSettings:
    """The settings from the three sections the renderer reads (camelCase keys, as in the
    stack file), nothing else of a stack."""
    return app_server_settings(
        app=AppConfig.model_validate(app or {}),
        fleet=FleetConfig.model_validate(fleet or {}),
        load_balancer=LoadBalancerConfig.model_validate(load_balancer or {}),
        **options,
    )


@pytest.fixture(scope="module")
def app_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pd-apps-") as directory:
        yield Path(directory)


@pytest.fixture(scope="module")
def apps(app_dir: Path) -> dict[str, str]:
    return write_echo_apps(app_dir)


@pytest.mark.parametrize(
    ("cpu", "memory", "workers"),
    [(256, 512, 2), (512, 1024, 2), (1024, 2048, 3), (2048, 4096, 5), (4096, 8192, 9)],
)
def test_workers_default_to_two_per_vcpu_plus_one(cpu: int, memory: int, workers: int) -> None:
    settings = settings_for(fleet={"cpu": cpu, "memory": memory})
    assert default_workers(cpu) == workers
    assert settings.workers == workers


def test_configured_workers_win_over_the_task_size() -> None:
    settings = settings_for(app={"workers": 7}, fleet={"cpu": 256, "memory": 512})
    assert settings.workers == 7


@pytest.mark.parametrize("idle", [1, 60, 350])
def test_keepalive_outlives_the_load_balancer(idle: int) -> None:
    settings = settings_for(load_balancer={"idleTimeoutSeconds": idle})
    assert settings.keepalive_seconds > idle


def test_sidecar_defaults_bind_and_trust_loopback_only() -> None:
    settings = settings_for(app={"port": 9000, "timeoutSeconds": 45, "gracefulTimeoutSeconds": 20})
    assert settings.bind == "127.0.0.1:9000"
    assert settings.forwarded_allow_ips == ("127.0.0.1",)
    assert (settings.timeout_seconds, settings.graceful_timeout_seconds) == (45, 20)
    assert settings.app == "bigfoot.wsgi:application"


def test_uvicorn_serves_the_asgi_app() -> None:
    settings = settings_for(app={"server": "uvicorn"})
    command = app_server_command(settings)
    assert command[:2] == ["uvicorn", "bigfoot.asgi:application"]
    assert "--proxy-headers" in command
    assert command[command.index("--forwarded-allow-ips") + 1] == "127.0.0.1"
    assert command[command.index("--timeout-graceful-shutdown") + 1] == "25"


def test_limit_concurrency_is_for_uvicorn_only() -> None:
    uvicorn = settings_for(app={"server": "uvicorn"}, limit_concurrency=50)
    assert uvicorn_command(uvicorn)[-2:] == ["--limit-concurrency", "50"]
    with pytest.raises(ValueError, match="Uvicorn only"):
        settings_for(limit_concurrency=50)


def test_a_renderer_refuses_the_other_servers_settings() -> None:
    with pytest.raises(ValueError, match="for uvicorn, not gunicorn"):
        render_gunicorn(settings_for(app={"server": "uvicorn"}))


def test_the_printed_uvicorn_command_is_the_one_that_runs() -> None:
    settings = settings_for(app={"server": "uvicorn"})
    text = render_app_server(settings)
    command_line = next(line for line in text.splitlines() if not line.startswith("#"))
    assert shlex.split(command_line) == uvicorn_command(settings)


def test_gunicorn_preloads_the_app_unless_told_not_to() -> None:
    preloaded = settings_for()
    assert "--preload" in gunicorn_command(preloaded)
    assert "preload_app = True" in render_gunicorn(preloaded)
    not_preloaded = settings_for(app={"preload": False})
    assert "--preload" not in gunicorn_command(not_preloaded)
    assert "preload_app = False" in render_gunicorn(not_preloaded)
    assert "--preload" not in uvicorn_command(settings_for(app={"server": "uvicorn"}))


@pytest.mark.slow
@pytest.mark.parametrize("preload", [True, False])
def test_a_preloading_gunicorn_imports_the_app_once_before_its_workers_fork(
    preload: bool, app_dir: Path, apps: dict[str, str]
) -> None:
    """With `--preload` the server's main process imports the app and every worker answers
    with that import (it needs no import of its own); without it, each worker imports it."""
    app = {"wsgiApp": apps["gunicorn"], "preload": preload}
    settings = settings_for(app=app, port=free_port())
    with tempfile.TemporaryDirectory(prefix="pd-app-") as runtime:
        log = Path(runtime) / "server.log"
        with running_app_server(
            settings, log=log, cwd=app_dir, env={"XDG_RUNTIME_DIR": runtime}
        ) as process:
            answer = _get(f"http://{settings.bind}/ping")
    assert answer["pid"] != process.pid  # a worker answered
    assert answer["imported_in"] == (process.pid if preload else answer["pid"])


@pytest.mark.slow
def test_gunicorn_puts_its_control_socket_in_the_runtime_directory_the_stack_gives(
    app_dir: Path, apps: dict[str, str], tmp_path: Path
) -> None:
    """A read-only root leaves Gunicorn no $HOME to write its control socket into (25.1 and
    later): with `app_environment_defaults`' XDG_RUNTIME_DIR it goes there instead, without
    it the server logs an error at start."""
    assert app_environment_defaults(AppConfig())["XDG_RUNTIME_DIR"] == WORKER_TMP_DIR
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    # No directory can be made under /dev/null, as none can on a read-only root.
    with_runtime = _control_socket_log(app_dir, apps, tmp_path, str(runtime))
    assert f"Control socket listening at {runtime / 'gunicorn.ctl'}" in with_runtime
    assert "Control server error" in _control_socket_log(app_dir, apps, tmp_path, "")


def _control_socket_log(
    app_dir: Path, apps: dict[str, str], tmp_path: Path, runtime_directory: str
) -> str:
    """The log of a Gunicorn whose $HOME cannot be written, once its control server started
    or failed to (a thread of the main process, after the workers)."""
    settings = settings_for(app={"wsgiApp": apps["gunicorn"]}, port=free_port())
    log = tmp_path / f"gunicorn-{settings.port}.log"
    env = {"HOME": "/dev/null/home", "XDG_RUNTIME_DIR": runtime_directory}
    with running_app_server(settings, log=log, cwd=app_dir, env=env):
        deadline = time.monotonic() + 15
        while not re.search("Control (socket listening|server error)", log.read_text()):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
    return log.read_text()


def test_sync_workers_get_no_threads() -> None:
    settings = settings_for(app={"workerClass": "sync"})
    assert "--threads" not in gunicorn_command(settings)
    assert "threads =" not in render_gunicorn(settings)


def _gunicorn(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gunicorn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(cwd)},
        check=False,
        timeout=60,
    )


def _printed_config(output: str) -> dict[str, str]:
    settings = {}
    for line in output.splitlines():
        name, separator, value = line.partition(" = ")
        if separator:
            settings[name.strip()] = value.strip()
    return settings


@pytest.mark.parametrize(("worker_class", "preload"), [("sync", False), ("gthread", True)])
def test_gunicorn_accepts_the_config_file_and_the_command_alike(
    worker_class: str, preload: bool, app_dir: Path, apps: dict[str, str]
) -> None:
    app = {"wsgiApp": apps["gunicorn"], "workerClass": worker_class, "preload": preload}
    settings = settings_for(app=app)
    conf = app_dir / f"gunicorn-{worker_class}.conf.py"
    conf.write_text(render_gunicorn(settings))

    checked = _gunicorn(["--check-config", "--config", str(conf)], app_dir)
    assert checked.returncode == 0, checked.stderr

    from_file = _gunicorn(["--print-config", "--config", str(conf)], app_dir)
    from_flags = _gunicorn(["--print-config", *gunicorn_command(settings)[1:]], app_dir)
    assert from_file.returncode == from_flags.returncode == 0, from_file.stderr + from_flags.stderr
    file_settings = _printed_config(from_file.stdout)
    flag_settings = _printed_config(from_flags.stdout)
    # The command names the app as its argument instead of `wsgi_app`.
    rendered = set(_printed_config(render_gunicorn(settings))) - {"wsgi_app"}
    assert {name: file_settings[name] for name in rendered} == {
        name: flag_settings[name] for name in rendered
    }
    assert file_settings["workers"] == str(settings.workers)
    assert file_settings["keepalive"] == str(settings.keepalive_seconds)
    assert file_settings["worker_class"] == worker_class
    assert file_settings["preload_app"] == str(preload)
    assert file_settings["bind"] == f"['{settings.bind}']"


def test_gunicorn_rejects_a_broken_config(app_dir: Path) -> None:
    """The check above can fail: gunicorn does validate what it is given."""
    conf = app_dir / "broken.conf.py"
    conf.write_text("workers = 'many'\n")
    assert _gunicorn(["--check-config", "--config", str(conf)], app_dir).returncode != 0


def _get(url: str, timeout: float = 10.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return dict(json.load(response))


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_server_finishes_in_flight_requests_when_stopped(
    server: str, app_dir: Path, apps: dict[str, str]
) -> None:
    """SIGTERM (what ECS and Docker send) lets a running request complete."""
    app = {"server": server, "wsgiApp": apps["gunicorn"], "asgiApp": apps["uvicorn"]}
    settings = settings_for(app=app, port=free_port())
    assert local_command(settings)[3:] == app_server_command(settings)[1:]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pd-app-") as runtime:
        log = Path(runtime) / "server.log"
        with running_app_server(
            settings, log=log, cwd=app_dir, env={"XDG_RUNTIME_DIR": runtime}
        ) as process:
            assert _get(f"http://{settings.bind}/ping")["server"] == server
            slow = threading.Thread(
                target=lambda: results.append(_get(f"http://{settings.bind}/slow?1"))
            )
            slow.start()
            time.sleep(0.3)
            process.terminate()
            slow.join(timeout=15)
            assert process.wait(timeout=15) == 0
        assert results and results[0]["path"] == "/slow"
