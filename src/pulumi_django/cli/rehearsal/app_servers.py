"""Throwaway Gunicorn or Uvicorn replicas on loopback, started with the rendered settings.

The command is the one the containers run (`pulumi_django.rendering.app_server`), with the
server taken from the app's Python environment (`django:app.python`) rather than from PATH.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from pulumi_django.cli.rehearsal.servers import (
    STOP_MARGIN_SECONDS,
    ServerError,
    log_tail,
    start_process,
    stop_process,
    wait_for_port,
)
from pulumi_django.rendering.app_server import AppServerSettings, app_server_command

# After the graceful timeout, a stop becomes a kill.


def local_command(settings: AppServerSettings, python: str = sys.executable) -> list[str]:
    """The container's command, run as `python -m gunicorn|uvicorn` of the app's environment."""
    server, *arguments = app_server_command(settings)
    return [python, "-m", server, *arguments]


def python_shim(directory: Path, python: str) -> Path:
    """`directory`/python, a script that runs `python`: with `directory` first on PATH, the
    commands a release runs as `python ...` use the app's interpreter, whatever its file is
    called (a symlink would lose a virtualenv, which Python finds next to the path it ran)."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "python"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(python)} "$@"\n')
    shim.chmod(0o755)
    return directory


@contextlib.contextmanager
def running_app_server(
    settings: AppServerSettings,
    *,
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    python: str = sys.executable,
) -> Iterator[subprocess.Popen[bytes]]:
    """Starts the app server in `python` and stops it on exit with SIGTERM, its graceful stop."""
    process = start_process(
        local_command(settings, python), log, env={**os.environ, **(env or {})}, cwd=cwd
    )
    try:
        try:
            wait_for_port(settings.port, timeout, process)
        except ServerError as error:
            raise ServerError(
                f"{settings.server} did not start: {error}\n{log_tail(log)}"
            ) from None
        yield process
    finally:
        stop_process(process, settings.graceful_timeout_seconds + STOP_MARGIN_SECONDS)
