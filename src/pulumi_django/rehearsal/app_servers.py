"""Throwaway Gunicorn or Uvicorn replicas on loopback, started with the rendered settings.

The command is the one the containers run (`pulumi_django.rendering.app_server`), with the
server taken from this Python environment rather than from PATH.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from pulumi_django.rendering.app_server import AppServerSettings, app_server_command

from .servers import (
    STOP_MARGIN_SECONDS,
    ServerError,
    log_tail,
    start_process,
    stop_process,
    wait_for_port,
)

# After the graceful timeout, a stop becomes a kill.


def local_command(settings: AppServerSettings) -> list[str]:
    """The container's command, run as `python -m gunicorn|uvicorn` of this environment."""
    server, *arguments = app_server_command(settings)
    return [sys.executable, "-m", server, *arguments]


@contextlib.contextmanager
def running_app_server(
    settings: AppServerSettings,
    *,
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Starts the app server and stops it on exit with SIGTERM, its graceful stop."""
    process = start_process(
        local_command(settings), log, env={**os.environ, **(env or {})}, cwd=cwd
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
