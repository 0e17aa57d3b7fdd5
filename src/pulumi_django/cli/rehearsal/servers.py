"""Throwaway servers on free loopback ports, for the rehearsal and the test suite.

Each server owns a temporary directory, starts in the foreground of its own process group,
and is stopped (and its directory removed) on exit, on error and on Ctrl-C. A PostgreSQL
cluster is a copy of the one this machine's initdb made first (kept in pulumi-django's cache,
keyed by the binary and its version), its files in memory when there is room, and it stops
with PostgreSQL's fast shutdown: together 2.5-5 s less per cluster (measured here) than
initdb, files on disk and a smart shutdown.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from pulumi_django.caches import cache_home
from pulumi_django.errors import PulumiDjangoError

LOOPBACK = "127.0.0.1"
POSTGRES_BIN_DIRS = "/usr/lib/postgresql/*/bin"  # Debian keeps the server binaries off PATH
# How much longer than its graceful timeout a server may take to stop before it is killed.
STOP_MARGIN_SECONDS = 5
# A throwaway cluster's files go to memory when it has room (writing them, and removing a used
# cluster's 1,300 files, then costs no disk I/O: on a disk mounted with `discard`, removing them
# took 1-3 s, longer than the rest of the cluster's stop), else to the temporary directory.
MEMORY_DIRECTORY = Path("/dev/shm")  # noqa: S108 - mkdtemp makes a private directory there
MEMORY_ROOM_BYTES = 1 << 30


class ServerError(PulumiDjangoError):
    """A server binary is missing or did not come up; the message says what to install."""


# Each port `free_port` handed out stays held by a socket bound to it (SO_REUSEADDR, never
# listening) for as long as this process runs. A port is often chosen before its server binds it
# (the rehearsal's proxy port, known to the app's settings before the proxy starts; a replica's,
# before its app server is up; PostgreSQL's, unbound through a database outage), and meanwhile
# the kernel would offer it again, to this process or to another one (a second rehearsal, a
# test worker beside it). A bind to port 0 never gets a port a socket is bound to, while the
# server, binding it with SO_REUSEADDR as nginx, Caddy, Gunicorn, Uvicorn, PostgreSQL and Redis
# all do, still can. One descriptor per port: a rehearsal holds a few dozen.
_RESERVATIONS: list[socket.socket] = []
_RESERVATIONS_GUARD = threading.Lock()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now, kept from every other bind to
    port 0 (this process's and others') until this process exits."""
    reservation = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.bind((LOOPBACK, 0))
    with _RESERVATIONS_GUARD:
        _RESERVATIONS.append(reservation)
    return int(reservation.getsockname()[1])


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


def stop_process(
    process: subprocess.Popen[bytes],
    timeout: float = 10.0,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> None:
    """`stop_signal` (SIGTERM), then SIGKILL after `timeout`: the graceful stop a real host
    gives."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, stop_signal)
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


def run_in_group(
    command: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(command, capture_output=True, text=True, timeout=timeout)` in a process
    group of its own, the whole group killed and waited for when it times out or the caller
    is interrupted (Ctrl-C): subprocess.run kills only its child, and a command's own children
    (the release runner's `manage.py migrate`) would outlive it."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


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
        """PostgreSQL's fast shutdown (SIGINT): sessions are ended, then a clean checkpoint.
        SIGTERM would be its smart shutdown, which waits for every client to go, and, as root,
        makes `runuser` wait 2 s before it kills what it started."""
        if self.process is not None:
            stop_process(self.process, stop_signal=signal.SIGINT)


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
    workdir = files = Path(tempfile.mkdtemp(prefix="pd-postgres-"))
    data, log = workdir / "data", workdir / "server.log"
    env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    user = _postgres_user()
    as_postgres = _drop_root_prefix(workdir, user)
    running: PostgresServer | None = None
    try:
        # The server is told `workdir/data` (what a look at its command line finds), a link
        # to the files when they are in memory.
        memory = memory_directory()
        if memory is not None:
            files = Path(tempfile.mkdtemp(prefix="pd-postgres-", dir=memory))
            _drop_root_prefix(files, user)
            data.symlink_to(files / "data")
        new_cluster(initdb, files / "data", as_postgres, user, env)
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
        for directory in {workdir, files}:
            shutil.rmtree(directory, ignore_errors=True)
        if isinstance(error, subprocess.CalledProcessError):
            raise ServerError(f"initdb failed: {error.stderr.decode(errors='replace')}") from None
        if isinstance(error, ServerError):
            raise ServerError(f"PostgreSQL did not start: {error}\n{why}") from None
        raise
    try:
        yield Postgres(port=port, server=running)
    finally:
        running.stop()
        for directory in {workdir, files}:
            shutil.rmtree(directory, ignore_errors=True)


def memory_directory() -> Path | None:
    """MEMORY_DIRECTORY when it is a tmpfs we may write with room for a cluster, else None."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
        room = os.statvfs(MEMORY_DIRECTORY)
    except OSError:
        return None
    in_memory = any(line.split()[1:3] == [str(MEMORY_DIRECTORY), "tmpfs"] for line in mounts)
    if not in_memory or room.f_bavail * room.f_frsize < MEMORY_ROOM_BYTES:
        return None
    return MEMORY_DIRECTORY if os.access(MEMORY_DIRECTORY, os.W_OK) else None


def new_cluster(
    initdb: str, data: Path, as_postgres: list[str], user: str | None, env: dict[str, str]
) -> None:
    """Writes a new cluster into `data`, as `initdb` makes it: a copy of the one this initdb
    made before with the same options, when there is one (a tenth of a second instead of about
    one), else initdb's own, which is then kept for the next time. Kept clusters are keyed by
    the binary and the version it prints: another PostgreSQL never gets one (and its server
    would refuse a cluster of another catalog version). `user` owns the copy (running as
    root: the server's user). Nothing the cache cannot do fails the cluster: initdb runs."""
    kept = cluster_cache(initdb, env)
    if kept is not None and kept.is_dir():
        try:
            shutil.copytree(kept, data, symlinks=True)
            if user is not None:
                for directory, _, files in os.walk(data):
                    for path in (Path(directory), *(Path(directory, f) for f in files)):
                        shutil.chown(path, user)
            return
        except OSError:
            shutil.rmtree(data, ignore_errors=True)
    run_initdb(initdb, data, as_postgres, env)
    if kept is not None:
        _keep_cluster(data, kept)


INITDB_OPTIONS = ("-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync")


def run_initdb(initdb: str, data: Path, as_postgres: list[str], env: dict[str, str]) -> None:
    subprocess.run(
        [*as_postgres, initdb, "-D", str(data), *INITDB_OPTIONS],
        check=True,
        capture_output=True,
        env=env,
    )


def cluster_cache(initdb: str, env: Mapping[str, str]) -> Path | None:
    """Where the cluster `initdb` makes is kept (it may not be there yet); None when the
    binary does not say its version."""
    try:
        version = subprocess.run(
            [initdb, "--version"], capture_output=True, text=True, env=env, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    key = json.dumps(
        [os.path.realpath(initdb), version, INITDB_OPTIONS, env.get("LC_ALL"), env.get("LANG")]
    )
    return cache_home(env) / "postgres" / hashlib.sha256(key.encode()).hexdigest()[:32]


def _keep_cluster(data: Path, kept: Path) -> None:
    """A copy of `data` at `kept`, whole or not at all (another rehearsal may keep the same
    one at the same time: the first one stays)."""
    scratch = kept.with_name(f".{kept.name}.{os.getpid()}.{threading.get_ident()}")
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(data, scratch, symlinks=True)
        scratch.rename(kept)
    except OSError:
        shutil.rmtree(scratch, ignore_errors=True)


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


def _postgres_user() -> str | None:
    """PostgreSQL refuses to run as root; as root, it runs as the `postgres` or `nobody` user
    (None: as the caller)."""
    if os.geteuid() != 0:
        return None
    return "postgres" if _user_exists("postgres") else "nobody"


def _drop_root_prefix(workdir: Path, user: str | None) -> list[str]:
    """What runs a command as `user` (nothing when None), who then owns `workdir`."""
    if user is None:
        return []
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
