"""Throwaway servers on free loopback ports, for the rehearsal and the test suite.

Each server owns a temporary directory, starts in the foreground of its own process group,
and is stopped (and its directory removed) on exit, on error and on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pulumi_django.errors import PulumiDjangoError

LOOPBACK = "127.0.0.1"
POSTGRES_BIN_DIRS = "/usr/lib/postgresql/*/bin"  # Debian keeps the server binaries off PATH
# How much longer than its graceful timeout a server may take to stop before it is killed.
STOP_MARGIN_SECONDS = 5


class ServerError(PulumiDjangoError):
    """A server binary is missing or did not come up; the message says what to install."""


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])


def wait_for_port(
    port: int, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> None:
    """Waits until something accepts connections on loopback:`port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServerError(
                f"process exited with {process.returncode} before listening on {port}"
            )
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise ServerError(f"nothing listened on {LOOPBACK}:{port} within {timeout:.0f} s")


def find_binary(name: str, *extra_dirs: str, package: str) -> str:
    """Path of a server binary, from PATH or the Debian package's private directory."""
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        for candidate in sorted(Path("/").glob(directory.lstrip("/")), reverse=True):
            if (candidate / name).exists():
                return str(candidate / name)
    raise ServerError(f"{name} not found; install the Debian package {package} (make test does)")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`: the graceful stop a real host gives."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def start_process(
    command: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Starts `command` in its own process group, output appended to `log`."""
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def log_tail(log: Path, lines: int = 30) -> str:
    if not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@dataclass
class PostgresServer:
    """The server process of a throwaway cluster, which can be stopped and started again on the
    same port and data (a database outage)."""

    command: list[str]
    as_postgres: list[str]
    data: Path
    log: Path
    env: dict[str, str]
    port: int
    timeout: float
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts the server and waits until it accepts connections."""
        self.process = start_process(self.command, self.log, env=self.env)
        try:
            wait_for_port(self.port, self.timeout, self.process)
            _wait_until_accepting(self.port, self.timeout)
        except ServerError:
            self.stop()
            raise

    def stop_fast(self) -> None:
        """`pg_ctl stop -m fast`: every session is ended, then the server shuts down cleanly,
        as a failover ends the old primary's connections."""
        if self.process is None or self.process.poll() is not None:
            return
        pg_ctl = find_binary("pg_ctl", POSTGRES_BIN_DIRS, package="postgresql")
        command = [*self.as_postgres, pg_ctl, "stop", "-D", str(self.data), "-m", "fast", "-w"]
        stopped = subprocess.run(
            [*command, "-t", str(int(self.timeout))], capture_output=True, env=self.env
        )
        if stopped.returncode != 0:
            raise ServerError(
                f"pg_ctl stop failed: {stopped.stderr.decode(errors='replace').strip()}"
            )
        self.process.wait(self.timeout)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@dataclass
class Postgres:
    """A running throwaway PostgreSQL cluster on loopback; the `postgres` superuser needs no
    password (and, unless started with `password_auth`, neither does any other role)."""

    port: int
    user: str = "postgres"
    server: PostgresServer | None = None

    def stop(self) -> None:
        """Stops the server (fast shutdown); `start` brings it back with the same data."""
        if self.server is None:
            raise ServerError("this PostgreSQL was not started here, so it cannot be stopped")
        self.server.stop_fast()

    def start(self) -> None:
        if self.server is None:
            raise ServerError("this PostgreSQL was not started here, so it cannot be started")
        self.server.start()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://{self.user}@{LOOPBACK}:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        psql = find_binary("psql", POSTGRES_BIN_DIRS, package="postgresql-client")
        subprocess.run(
            [
                psql,
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                self.user,
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                f'CREATE DATABASE "{name}"',
            ],
            check=True,
            capture_output=True,
        )
        return self.url(name)


@contextlib.contextmanager
def postgres(timeout: float = 60.0, password_auth: bool = False) -> Iterator[Postgres]:
    """A fresh PostgreSQL cluster in a temporary directory (fsync off: it is thrown away).

    With `password_auth`, every role but `postgres` must log in over TCP with its password
    (scram-sha-256), so that a test can change a password and see old ones refused."""
    initdb = find_binary("initdb", POSTGRES_BIN_DIRS, package="postgresql")
    server = find_binary("postgres", POSTGRES_BIN_DIRS, package="postgresql")
    workdir = Path(tempfile.mkdtemp(prefix="pd-postgres-"))
    data, log = workdir / "data", workdir / "server.log"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    as_postgres = _drop_root_prefix(workdir)
    running: PostgresServer | None = None
    try:
        subprocess.run(
            [
                *as_postgres,
                initdb,
                "-D",
                str(data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        if password_auth:
            _require_passwords(data)
        port = free_port()
        running = PostgresServer(
            command=[
                *as_postgres,
                server,
                "-D",
                str(data),
                "-p",
                str(port),
                "-h",
                LOOPBACK,
                "-k",
                str(workdir),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=200",
            ],
            as_postgres=as_postgres,
            data=data,
            log=log,
            env=env,
            port=port,
            timeout=timeout,
        )
        running.start()
    except BaseException as error:
        # Only what happens before the cluster is handed over is a failure to start.
        if running is not None:
            running.stop()
        why = log_tail(log)
        shutil.rmtree(workdir, ignore_errors=True)
        if isinstance(error, subprocess.CalledProcessError):
            raise ServerError(f"initdb failed: {error.stderr.decode(errors='replace')}") from None
        if isinstance(error, ServerError):
            raise ServerError(f"PostgreSQL did not start: {error}\n{why}") from None
        raise
    try:
        yield Postgres(port=port, server=running)
    finally:
        running.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def _require_passwords(data: Path) -> None:
    """pg_hba.conf: the superuser keeps trust (fixtures use it), every other role logs in with
    its password. Written before the server starts, so no reload is needed."""
    (data / "pg_hba.conf").write_text(
        "local all all trust\n"
        f"host all postgres {LOOPBACK}/32 trust\n"
        f"host all all {LOOPBACK}/32 scram-sha-256\n"
    )


def _wait_until_accepting(port: int, timeout: float) -> None:
    ready = find_binary("pg_isready", POSTGRES_BIN_DIRS, package="postgresql-client")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (
            subprocess.run([ready, "-h", LOOPBACK, "-p", str(port), "-q"], check=False).returncode
            == 0
        ):
            return
        time.sleep(0.1)
    raise ServerError(f"PostgreSQL on port {port} never accepted connections")


def _drop_root_prefix(workdir: Path) -> list[str]:
    """PostgreSQL refuses to run as root; as root, run it as the `postgres` or `nobody` user."""
    if os.geteuid() != 0:
        return []
    user = "postgres" if _user_exists("postgres") else "nobody"
    shutil.chown(workdir, user)
    workdir.chmod(0o700)
    runuser = shutil.which("runuser") or shutil.which("setpriv")
    if runuser is None:
        raise ServerError("running as root needs runuser (util-linux) to start PostgreSQL")
    return [runuser, "-u", user, "--"]


def _user_exists(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@dataclass
class Redis:
    port: int

    def url(self, db: int = 0) -> str:
        return f"redis://{LOOPBACK}:{self.port}/{db}"


@contextlib.contextmanager
def redis(timeout: float = 30.0) -> Iterator[Redis]:
    """A throwaway Redis with no persistence, on loopback only."""
    binary = find_binary("redis-server", package="redis-server")
    workdir = Path(tempfile.mkdtemp(prefix="pd-redis-"))
    log = workdir / "server.log"
    port = free_port()
    try:
        process = start_process(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
                "--protected-mode",
                "yes",
            ],
            log,
        )
        try:
            wait_for_port(port, timeout, process)
            yield Redis(port=port)
        finally:
            stop_process(process)
    except ServerError as error:
        raise ServerError(f"Redis did not start: {error}\n{log_tail(log)}") from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
