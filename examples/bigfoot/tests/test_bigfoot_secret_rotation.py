"""The app keeps working when RDS rotates the database password under it.

Fast: the retry and caching of bigfoot.db.credentials with a stub secret reader and a stub
connect. Slow: the app under real gunicorn/uvicorn, a real PostgreSQL that checks passwords,
and moto's Secrets Manager on loopback; the password is rotated while the app runs.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from bigfoot_testing import APP_DIR, SITE_HOST, Services, clean_environment, http_request, serving
from moto import mock_aws
from moto.server import ThreadedMotoServer

from pulumi_django.rehearsal.servers import LOOPBACK, Postgres, find_binary, free_port, postgres

# The app's own modules, as manage.py and the app servers find them.
sys.path.insert(0, str(APP_DIR))
from bigfoot.db.credentials import (
    CURRENT_STAGE,
    PENDING_STAGE,
    REFRESH_COOLDOWN_SECONDS,
    Credentials,
    RotatingCredentials,
    is_authentication_failure,
    secrets_manager_reader,
)

USER = "bigfoot"
FIRST, SECOND = Credentials(USER, "first-password"), Credentials(USER, "second-password")
# Set on the database by hand, behind the secret's back.
BY_HAND = Credentials(USER, "changed-by-hand")
REGION = "us-east-1"
AWS_TEST_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_EC2_METADATA_DISABLED": "true",
}
REQUESTS = 12
_roles = itertools.count(1)


def refused(user: str = USER) -> psycopg.OperationalError:
    """What psycopg raises when PostgreSQL refuses a password (no SQLSTATE on a connect)."""
    return psycopg.OperationalError(
        'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
        f'FATAL:  password authentication failed for user "{user}"'
    )


@dataclass
class FakeDatabase:
    """Accepts only its current password; counts connection attempts."""

    password: str
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connect(self, params: dict[str, Any]) -> str:
        with self.lock:
            self.attempts += 1
        if params["password"] != self.password:
            raise refused(params["user"])
        return f"connection as {params['user']}"


@dataclass
class FakeSecret:
    """The secret's versions by stage; records every read."""

    stages: dict[str, Credentials]
    reads: list[str] = field(default_factory=list)
    failure: Exception | None = None

    def read(self, stage: str) -> Credentials | None:
        self.reads.append(stage)
        if self.failure is not None:
            raise self.failure
        return self.stages.get(stage)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def params(credentials: RotatingCredentials) -> dict[str, Any]:
    current = credentials.current()
    return {"dbname": "bigfoot", "user": current.username, "password": current.password}


def connect(credentials: RotatingCredentials, database: FakeDatabase) -> str:
    """What the backend does for each new connection."""
    return credentials.connect(database.connect, params(credentials))


def test_connections_use_the_starting_password_without_reading_the_secret() -> None:
    secret, database = FakeSecret({CURRENT_STAGE: FIRST}), FakeDatabase(FIRST.password)
    credentials = RotatingCredentials(secret.read, FIRST)
    for _ in range(50):
        assert connect(credentials, database) == "connection as bigfoot"
    assert secret.reads == []
    assert database.attempts == 50


def test_a_rotation_costs_one_secret_read_however_many_threads_connect() -> None:
    secret, database = FakeSecret({CURRENT_STAGE: FIRST}), FakeDatabase(FIRST.password)
    credentials = RotatingCredentials(secret.read, FIRST)
    connect(credentials, database)

    secret.stages[CURRENT_STAGE] = SECOND
    database.password = SECOND.password
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: connect(credentials, database), range(40)))
    assert results == ["connection as bigfoot"] * 40
    assert secret.reads == [CURRENT_STAGE]
    assert credentials.current() == SECOND

    # From now on every connect succeeds at the first attempt, still without a read.
    before = database.attempts
    for _ in range(10):
        connect(credentials, database)
    assert database.attempts - before == 10
    assert secret.reads == [CURRENT_STAGE]


def test_during_a_rotation_the_pending_version_is_tried() -> None:
    """RDS has set the new password but the secret's current version is still the old one."""
    secret = FakeSecret({CURRENT_STAGE: FIRST, PENDING_STAGE: SECOND})
    database = FakeDatabase(SECOND.password)
    credentials = RotatingCredentials(secret.read, FIRST)
    assert connect(credentials, database) == "connection as bigfoot"
    assert secret.reads == [CURRENT_STAGE, PENDING_STAGE]
    assert credentials.current() == SECOND


def test_a_password_nobody_knows_is_refused_and_reads_are_rate_limited() -> None:
    secret, database = FakeSecret({CURRENT_STAGE: FIRST}), FakeDatabase(BY_HAND.password)
    clock = FakeClock()
    credentials = RotatingCredentials(secret.read, FIRST, clock=clock)
    for _ in range(5):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            connect(credentials, database)
    assert secret.reads == [CURRENT_STAGE, PENDING_STAGE]

    clock.now += REFRESH_COOLDOWN_SECONDS
    secret.stages[CURRENT_STAGE] = BY_HAND
    assert connect(credentials, database) == "connection as bigfoot"
    assert secret.reads == [CURRENT_STAGE, PENDING_STAGE, CURRENT_STAGE]


def test_a_refused_pending_version_is_not_retried_forever() -> None:
    """A failed rotation can leave a pending version the database never got."""
    secret = FakeSecret({CURRENT_STAGE: FIRST, PENDING_STAGE: Credentials(USER, "abandoned")})
    database, clock = FakeDatabase(BY_HAND.password), FakeClock()
    credentials = RotatingCredentials(secret.read, FIRST, clock=clock)
    with pytest.raises(psycopg.OperationalError):
        connect(credentials, database)
    attempts = database.attempts
    with pytest.raises(psycopg.OperationalError):
        connect(credentials, database)
    assert database.attempts - attempts == 1  # the abandoned password was not tried again

    clock.now += REFRESH_COOLDOWN_SECONDS
    secret.stages[CURRENT_STAGE] = BY_HAND
    assert connect(credentials, database) == "connection as bigfoot"
    assert credentials.current() == BY_HAND


def test_errors_other_than_a_refused_password_never_read_the_secret() -> None:
    secret = FakeSecret({CURRENT_STAGE: SECOND})
    credentials = RotatingCredentials(secret.read, FIRST)
    down = psycopg.OperationalError("connection failed: Connection refused")

    def unreachable(params: dict[str, Any]) -> str:
        raise down

    with pytest.raises(psycopg.OperationalError) as raised:
        credentials.connect(unreachable, params(credentials))
    assert raised.value is down
    assert secret.reads == []


def test_an_unreadable_secret_raises_the_refusal_with_the_reason_attached() -> None:
    denied = PermissionError("AccessDeniedException: not authorized to GetSecretValue")
    secret = FakeSecret({}, failure=denied)
    credentials = RotatingCredentials(secret.read, FIRST)
    with pytest.raises(psycopg.OperationalError, match="password authentication") as raised:
        connect(credentials, FakeDatabase(SECOND.password))
    assert raised.value.__cause__ is denied


def test_without_a_starting_password_the_secret_is_read_once() -> None:
    secret, database = FakeSecret({CURRENT_STAGE: FIRST}), FakeDatabase(FIRST.password)
    credentials = RotatingCredentials(secret.read, None)
    for _ in range(5):
        connect(credentials, database)
    assert secret.reads == [CURRENT_STAGE]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (refused(), True),
        (psycopg.OperationalError("connection failed: Connection refused"), False),
        (psycopg.OperationalError('FATAL:  database "x" does not exist'), False),
        (ValueError("password authentication failed"), False),
    ],
)
def test_what_counts_as_a_refused_password(error: Exception, expected: bool) -> None:
    assert is_authentication_failure(error) is expected


def test_the_password_never_shows_in_a_repr() -> None:
    assert FIRST.password not in repr(FIRST)


@mock_aws
def test_the_reader_takes_username_and_password_from_the_rds_secret_json(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)  # the region comes from the ARN
    client = boto3.client("secretsmanager", region_name="eu-west-1")
    arn = client.create_secret(
        Name="rds!db-1234", SecretString=json.dumps({"username": USER, "password": "p@ss"})
    )["ARN"]
    read = secrets_manager_reader(arn)
    assert read(CURRENT_STAGE) == Credentials(USER, "p@ss")
    assert read(PENDING_STAGE) is None


# --- The app, rotated under a real app server ---------------------------------------------


def psql(server: Postgres, sql: str) -> None:
    binary = find_binary("psql", "/usr/lib/postgresql/*/bin", package="postgresql-client")
    subprocess.run(
        [binary, server.url(), "-v", "ON_ERROR_STOP=1", "-q", "-c", sql],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def password_postgres() -> Iterator[Postgres]:
    with postgres(password_auth=True) as server:
        yield server


@pytest.fixture(scope="module")
def secrets_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def secrets_client(endpoint: str) -> Any:
    return boto3.client(
        "secretsmanager",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=AWS_TEST_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_TEST_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    )


@dataclass
class RotatingDatabase:
    """A role that must log in with its password, and the secret RDS would keep for it."""

    server: Postgres
    secrets: Any
    role: str
    secret_arn: str

    def rotate(self, password: str) -> None:
        """What RDS does: change the role's password, then make it the secret's current."""
        psql(self.server, f"ALTER ROLE {self.role} PASSWORD '{password}'")
        self.secrets.put_secret_value(
            SecretId=self.secret_arn,
            SecretString=json.dumps({"username": self.role, "password": password}),
        )


@pytest.fixture
def database(password_postgres: Postgres, secrets_endpoint: str) -> RotatingDatabase:
    role = f"bigfoot_{next(_roles)}"
    psql(password_postgres, f"CREATE ROLE {role} LOGIN PASSWORD '{FIRST.password}'")
    psql(password_postgres, f"CREATE DATABASE {role} OWNER {role}")
    secrets = secrets_client(secrets_endpoint)
    arn = secrets.create_secret(
        Name=f"rds!{role}",
        SecretString=json.dumps({"username": role, "password": FIRST.password}),
    )["ARN"]
    return RotatingDatabase(password_postgres, secrets, role, arn)


def app_environment(
    services: Services, database: RotatingDatabase, endpoint: str, **variables: str
) -> dict[str, str]:
    """As on ECS: the database parts, the starting password, a new connection per request."""
    caller = {k: v for k, v in clean_environment().items() if not k.startswith("AWS_")}
    return {
        **caller,
        **AWS_TEST_ENVIRONMENT,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
        "DJANGO_SECRET_KEY": "bigfoot-tests-only",
        "DJANGO_ALLOWED_HOSTS": SITE_HOST,
        "REDIS_URL": services.redis.url(),
        "DATABASE_HOST": LOOPBACK,
        "DATABASE_PORT": str(database.server.port),
        "DATABASE_NAME": database.role,
        "DATABASE_USER": database.role,
        "DATABASE_PASSWORD": FIRST.password,
        "DATABASE_CONN_MAX_AGE": "0",
        **variables,
    }


def health(port: int) -> list[tuple[int, str]]:
    return [
        (response.status, response.body)
        for response in (http_request(port, "/healthz") for _ in range(REQUESTS))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_the_app_follows_a_rotated_password(
    server: str,
    services: Services,
    database: RotatingDatabase,
    secrets_endpoint: str,
    tmp_path: Path,
) -> None:
    env = app_environment(
        services, database, secrets_endpoint, DATABASE_SECRET_ARN=database.secret_arn
    )
    log = tmp_path / f"{server}.log"
    with serving(APP_DIR, env, server, log) as port:
        assert health(port) == [(200, "ok")] * REQUESTS
        assert "refused the password" not in log.read_text()

        database.rotate(SECOND.password)
        assert health(port) == [(200, "ok")] * REQUESTS

    output = log.read_text()
    workers = 2 if server == "gunicorn" else 1
    # One refusal, one secret read and one refresh per process, not one per connection.
    assert 1 <= output.count("refused the password") <= workers, output
    assert output.count("credentials refreshed") == output.count("refused the password")
    assert FIRST.password not in output
    assert SECOND.password not in output


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn"])
def test_without_the_secret_arn_the_same_rotation_takes_the_site_down(
    server: str,
    services: Services,
    database: RotatingDatabase,
    secrets_endpoint: str,
    tmp_path: Path,
) -> None:
    env = app_environment(services, database, secrets_endpoint)
    with serving(APP_DIR, env, server, tmp_path / f"{server}.log") as port:
        assert health(port) == [(200, "ok")] * REQUESTS
        database.rotate(SECOND.password)
        assert health(port) == [(503, "database unavailable: OperationalError")] * REQUESTS
