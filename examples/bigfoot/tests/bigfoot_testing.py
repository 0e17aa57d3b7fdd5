"""Running the Bigfoot app against real servers: its commands, its HTTP servers, its requests."""

from __future__ import annotations

import contextlib
import http.client
import http.cookies
import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from pulumi_django.cli.rehearsal.servers import (
    LOOPBACK,
    Postgres,
    Redis,
    find_binary,
    free_port,
    log_tail,
    start_process,
    stop_process,
    wait_for_port,
)

APP_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
SITE_HOST = "bigfoot.example.test"
# Everything the app reads is passed explicitly; nothing leaks in from the caller's shell.
APP_VARIABLE_PREFIXES = ("DJANGO_", "DATABASE_", "REDIS_", "STATIC_", "MEDIA_")
SERVER_COMMANDS = {
    "gunicorn": ["gunicorn", "bigfoot.wsgi:application", "--workers", "2", "--bind"],
    "uvicorn": ["uvicorn", "bigfoot.asgi:application", "--host", LOOPBACK, "--port"],
}
# Bytecode of the app and of Django, kept across runs but outside the source tree.
PYCACHE = Path(tempfile.gettempdir()) / "bigfoot-tests-pycache"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_database_names = itertools.count(1)


def clean_environment(**variables: str) -> dict[str, str]:
    """The caller's environment without any app variable, plus `variables` and the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_VARIABLE_PREFIXES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # each run would compile Django all over again
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPYCACHEPREFIX=str(PYCACHE),
        PYTHONUNBUFFERED="1",
    )
    return {**env, **variables}


@dataclass
class Services:
    postgres: Postgres
    redis: Redis
    # The database the app's migrations were applied to: made on first use (`migrate` is a
    # Django process of most of a second).
    _migrated: str | None = field(default=None, init=False)

    def app_environment(
        self, static_root: Path, *, migrated: bool = False, **variables: str
    ) -> dict[str, str]:
        """A production-like environment (no DEBUG, strict hosts) with a fresh database: empty,
        or (`migrated`) a copy of one `manage.py migrate` brought up to date."""
        name = f"bigfoot_{next(_database_names)}"
        if migrated:
            database_url = self._copy_database(self._migrated_database(), name)
        else:
            database_url = self.postgres.create_database(name)
        return clean_environment(
            DJANGO_SECRET_KEY="bigfoot-tests-only",  # noqa: S106
            DJANGO_ALLOWED_HOSTS=SITE_HOST,
            DATABASE_URL=database_url,
            REDIS_URL=self.redis.url(),
            STATIC_ROOT=str(static_root),
            **variables,
        )

    def _migrated_database(self) -> str:
        if self._migrated is None:
            env = self.app_environment(Path(tempfile.gettempdir()))  # migrate reads no static
            manage_ok(APP_DIR, env, "migrate", "--noinput")
            self._migrated = env["DATABASE_URL"].rsplit("/", 1)[1]
        return self._migrated

    def _copy_database(self, template: str, name: str) -> str:
        """CREATE DATABASE `name` as a copy of `template` (which nothing is connected to)."""
        with psycopg.connect(self.postgres.url(), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.postgres.url(name)


def collect_static(app_dir: Path, static_root: Path) -> dict[str, str]:
    """`manage.py collectstatic` into `static_root` as the image build runs it (no secret,
    database or cache); the manifest's map of each file to its hashed name."""
    build = clean_environment(STATIC_ROOT=str(static_root))
    manage_ok(app_dir, build, "collectstatic", "--noinput")
    return dict(json.loads((static_root / "staticfiles.json").read_text())["paths"])


def open_connections(postgres: Postgres, database_url: str) -> int:
    """Client connections PostgreSQL has open to the database of `database_url`."""
    psql = find_binary("psql", "/usr/lib/postgresql/*/bin", package="postgresql-client")
    database = database_url.rsplit("/", 1)[1]
    count = subprocess.run(
        [psql, postgres.url(), "-At", "-v", f"database={database}"],
        input="SELECT count(*) FROM pg_stat_activity WHERE datname = :'database'",
        check=True,
        capture_output=True,
        text=True,
    )
    return int(count.stdout)


def manage(app_dir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python manage.py ARGS` in `app_dir`; the caller checks the outcome."""
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def manage_ok(app_dir: Path, env: dict[str, str], *args: str) -> str:
    result = manage(app_dir, env, *args)
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: str


def http_request(
    port: int,
    path: str,
    *,
    host: str = SITE_HOST,
    method: str = "GET",
    body: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """One plain HTTP/1.1 request to loopback:`port`, with exactly this Host header."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return Response(response.status, response.headers, response.read().decode())
    finally:
        connection.close()


def submit_form(port: int, path: str, fields: dict[str, str]) -> tuple[Response, Response]:
    """What a browser (and the rehearsal's load generator) does: GET the form, then POST it
    with the CSRF cookie and token from that page. Returns both responses."""
    form = http_request(port, path)
    assert form.status == 200, f"GET {path}: {form.status}\n{form.body[:500]}"
    cookies = http.cookies.SimpleCookie()
    for header in form.headers.get_all("Set-Cookie") or []:
        cookies.load(header)
    match = CSRF_FIELD.search(form.body)
    assert match is not None and "csrftoken" in cookies, "the form page set no CSRF token"
    posted = http_request(
        port,
        path,
        method="POST",
        body=urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": match.group(1)}),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookies['csrftoken'].value}",
        },
    )
    return form, posted


@contextlib.contextmanager
def serving(app_dir: Path, env: dict[str, str], server: str, log: Path) -> Iterator[int]:
    """The app under a real gunicorn or uvicorn on a free loopback port; yields the port."""
    port = free_port()
    address = f"{LOOPBACK}:{port}" if server == "gunicorn" else str(port)
    process = start_process([*SERVER_COMMANDS[server], address], log, env=env, cwd=app_dir)
    try:
        wait_for_port(port, timeout=30, process=process)
        yield port
    except Exception as error:
        raise AssertionError(f"{server} failed: {error}\n{log_tail(log)}") from error
    finally:
        stop_process(process)
