"""The runtime kit's credentials that follow RDS password rotation: the retry and caching of
pulumi_django_runtime.db.credentials with a stub secret reader and a stub connect, and the
reader against moto. (examples/bigfoot/tests/test_bigfoot_secret_rotation.py rotates the
password under the app running on real servers.)"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import psycopg
import pytest
from fake_aws import AWS_TEST_ENVIRONMENT
from moto import mock_aws

from pulumi_django_runtime.db.credentials import (
    CURRENT_STAGE,
    PENDING_STAGE,
    REFRESH_COOLDOWN_SECONDS,
    Credentials,
    RotatingCredentials,
    is_authentication_failure,
    secrets_manager_reader,
)

USER = "app"
FIRST, SECOND = Credentials(USER, "first-password"), Credentials(USER, "second-password")
# Set on the database by hand, behind the secret's back.
BY_HAND = Credentials(USER, "changed-by-hand")


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
    return {"dbname": "app", "user": current.username, "password": current.password}


def connect(credentials: RotatingCredentials, database: FakeDatabase) -> str:
    """What the backend does for each new connection."""
    return credentials.connect(database.connect, params(credentials))


def test_connections_use_the_starting_password_without_reading_the_secret() -> None:
    secret, database = FakeSecret({CURRENT_STAGE: FIRST}), FakeDatabase(FIRST.password)
    credentials = RotatingCredentials(secret.read, FIRST)
    for _ in range(50):
        assert connect(credentials, database) == "connection as app"
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
    assert results == ["connection as app"] * 40
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
    assert connect(credentials, database) == "connection as app"
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
    assert connect(credentials, database) == "connection as app"
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
    assert connect(credentials, database) == "connection as app"
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
