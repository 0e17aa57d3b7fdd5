"""The app keeps working when RDS rotates the database password under it: the app under real
gunicorn/uvicorn, a real PostgreSQL that checks passwords, and moto's Secrets Manager on
loopback; the password is rotated while the app runs. The runtime kit's retry and caching
logic itself is tested with stubs in tests/runtime/test_runtime_credentials.py.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from bigfoot_testing import APP_DIR, SITE_HOST, Services, clean_environment, http_request, serving
from fake_aws import AWS_TEST_ENVIRONMENT, moto_server

from pulumi_django.cli.rehearsal.servers import LOOPBACK, Postgres, find_binary, postgres

FIRST_PASSWORD, SECOND_PASSWORD = "first-password", "second-password"
REGION = "us-east-1"
REQUESTS = 12
_roles = itertools.count(1)


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
    with moto_server() as endpoint:
        yield endpoint


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
    psql(password_postgres, f"CREATE ROLE {role} LOGIN PASSWORD '{FIRST_PASSWORD}'")
    psql(password_postgres, f"CREATE DATABASE {role} OWNER {role}")
    secrets = secrets_client(secrets_endpoint)
    arn = secrets.create_secret(
        Name=f"rds!{role}",
        SecretString=json.dumps({"username": role, "password": FIRST_PASSWORD}),
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
        "DATABASE_PASSWORD": FIRST_PASSWORD,
        "DATABASE_CONN_MAX_AGE": "0",
        **variables,
    }


def health(port: int) -> list[tuple[int, str]]:
    return [
        (response.status, response.body)
        for response in (http_request(port, "/readyz") for _ in range(REQUESTS))
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

        database.rotate(SECOND_PASSWORD)
        assert health(port) == [(200, "ok")] * REQUESTS

    output = log.read_text()
    workers = 2 if server == "gunicorn" else 1
    # One refusal, one secret read and one refresh per process, not one per connection.
    assert 1 <= output.count("refused the password") <= workers, output
    assert output.count("credentials refreshed") == output.count("refused the password")
    assert FIRST_PASSWORD not in output
    assert SECOND_PASSWORD not in output


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
        database.rotate(SECOND_PASSWORD)
        assert health(port) == [(503, "database unavailable: OperationalError")] * REQUESTS
