"""The runtime kit's RDS IAM database authentication: DATABASE_IAM_REGION selects the backend
(TLS required), the token is botocore's presigned `connect` for the instance's host, port, the
app's user and region (signed offline with test credentials), and Django signs one for every new
connection and none for a connection CONN_MAX_AGE keeps, against a real PostgreSQL over TLS
(rds_like_postgres: members of rds_iam get in without a password check, as RDS checks the token
there)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ImproperlyConfigured
from fake_aws import AWS_TEST_ENVIRONMENT
from rds_like_postgres import rds_like_postgres, superuser
from runtime_projects import add_configure, run_django, start_project

from pulumi_django.cli.rehearsal.servers import LOOPBACK, Postgres
from pulumi_django_runtime.configuration import configure
from pulumi_django_runtime.db import iam
from pulumi_django_runtime.settings import IAM_POSTGRESQL_ENGINE, database_settings

REGION = "eu-west-1"
HOST = "site-db.abcdefghijkl.eu-west-1.rds.amazonaws.com"
BY_PARTS = {
    "DATABASE_HOST": HOST,
    "DATABASE_NAME": "app",
    "DATABASE_USER": "app",
    "DATABASE_IAM_REGION": REGION,
}


def token_fields(token: str) -> dict[str, Any]:
    """The host, port and signed query of a token (a presigned URL without its scheme)."""
    url = urlsplit(f"https://{token}")
    query = {name: values[0] for name, values in parse_qs(url.query, strict_parsing=True).items()}
    return {"host": url.hostname, "port": url.port, "path": url.path, **query}


def assert_token_for(token: str, host: str, port: int, user: str) -> None:
    fields = token_fields(token)
    assert (fields["host"], fields["port"], fields["path"]) == (host, port, "/")
    assert (fields["Action"], fields["DBUser"]) == ("connect", user)
    assert fields["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert re.fullmatch(
        rf"testing/\d{{8}}/{REGION}/rds-db/aws4_request", fields["X-Amz-Credential"]
    ), fields["X-Amz-Credential"]
    # Valid for 15 minutes from signing, as RDS documents.
    assert int(fields["X-Amz-Expires"]) == iam.TOKEN_LIFETIME_SECONDS == 900
    assert re.fullmatch(r"[0-9a-f]{64}", fields["X-Amz-Signature"])


@pytest.mark.parametrize(
    ("extra", "sslmode"),
    [({}, "require"), ({"DATABASE_SSLMODE": "verify-full"}, "verify-full")],
)
def test_the_iam_region_selects_the_token_backend_over_tls(
    extra: dict[str, str], sslmode: str
) -> None:
    settings = database_settings({**BY_PARTS, **extra})
    assert settings["ENGINE"] == IAM_POSTGRESQL_ENGINE
    assert settings["IAM_REGION"] == REGION
    assert settings["OPTIONS"]["sslmode"] == sslmode
    assert settings["PASSWORD"] == ""  # no password anywhere: a token per connection
    assert "SECRET_ARN" not in settings


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"DATABASE_SSLMODE": "prefer"}, "TLS only"),
        ({"DATABASE_SSLMODE": "disable"}, "TLS only"),
        ({"DATABASE_IAM_REGION": "Ireland"}, "expected the RDS instance's region"),
        (
            {"DATABASE_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x"},
            "both set",
        ),
    ],
)
def test_what_iam_authentication_refuses(extra: dict[str, str], problem: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=problem):
        database_settings({**BY_PARTS, **extra})


def test_configure_keeps_the_region_and_the_users_own_options() -> None:
    settings: dict[str, Any] = {
        "DATABASES": {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "IAM_REGION": "us-east-1",
                "OPTIONS": {"options": "-c search_path=shop"},
            }
        }
    }
    configure(settings, {**BY_PARTS, "DJANGO_SECRET_KEY": "k"})
    default = settings["DATABASES"]["default"]
    assert (default["ENGINE"], default["IAM_REGION"]) == (IAM_POSTGRESQL_ENGINE, REGION)
    assert default["OPTIONS"]["sslmode"] == "require"
    assert default["OPTIONS"]["options"] == "-c search_path=shop"


def test_a_token_is_signed_offline_for_the_host_port_user_and_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in AWS_TEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(iam, "_clients", {})
    token = iam.auth_token(REGION, HOST, 5432, "app")
    assert_token_for(token, HOST, 5432, "app")
    assert iam.rds_client(REGION) is iam.rds_client(REGION)  # one client per process


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with rds_like_postgres() as started, superuser(started) as connection:
        connection.execute("CREATE ROLE app LOGIN IN ROLE rds_iam")
        connection.execute("CREATE DATABASE site OWNER app")
        yield started


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = start_project(tmp_path_factory.mktemp("iam-auth"))
    add_configure(directory)
    return directory


REQUESTS = """
import json
import psycopg
from django.db import close_old_connections, connection
from pulumi_django_runtime.db.postgresql_iam import base

signed, passwords, seen = [], [], []
real_token, real_connect = base.auth_token, psycopg.connect

def signing(*args):
    signed.append(list(args))
    return real_token(*args)

def connecting(*args, **kwargs):
    passwords.append(kwargs.get("password"))
    return real_connect(*args, **kwargs)

base.auth_token, psycopg.connect = signing, connecting

def request():
    close_old_connections()  # what Django runs when a request starts and when it ends
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        seen.append(list(cursor.fetchone()))
    close_old_connections()

for _ in range(3):
    request()
after_requests = len(signed)
connection.close()  # a new connection (a worker restart, a failover): a new token
request()
refusals = {}
wrong = {"prefer": {"sslmode": "prefer"}, "pool": {"sslmode": "require", "pool": True}}
for name, options in wrong.items():
    try:
        base.DatabaseWrapper({**connection.settings_dict, "OPTIONS": options}, "other")
    except Exception as error:
        refusals[name] = str(error)
print(json.dumps({"engine": connection.settings_dict["ENGINE"], "signed": signed,
                  "after_requests": after_requests, "passwords": passwords, "seen": seen,
                  "refusals": refusals}))
"""


@pytest.mark.parametrize(("max_age", "tokens_for_three_requests"), [("60", 1), ("0", 3)])
def test_django_signs_a_token_per_new_connection_and_none_for_a_kept_one(
    server: Postgres, project: Path, max_age: str, tokens_for_three_requests: int
) -> None:
    """RDS checks a token while a connection authenticates, never afterwards: with
    CONN_MAX_AGE (the kit's default 60 s) three requests share one connection and one token."""
    env = {
        **AWS_TEST_ENVIRONMENT,
        "DATABASE_HOST": LOOPBACK,
        "DATABASE_PORT": str(server.port),
        "DATABASE_NAME": "site",
        "DATABASE_USER": "app",
        "DATABASE_IAM_REGION": REGION,
        "DATABASE_CONN_MAX_AGE": max_age,
    }
    result = run_django(project, REQUESTS, **env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])

    assert outcome["engine"] == IAM_POSTGRESQL_ENGINE
    assert outcome["after_requests"] == tokens_for_three_requests
    assert len(outcome["signed"]) == len(outcome["passwords"]) == tokens_for_three_requests + 1
    assert all(call == [REGION, LOOPBACK, server.port, "app"] for call in outcome["signed"])
    for token in outcome["passwords"]:
        assert_token_for(token, LOOPBACK, server.port, "app")
    assert outcome["seen"] == [["app", True]] * 4  # as the app, over TLS
    assert "TLS only" in outcome["refusals"]["prefer"]
    assert "does not support OPTIONS['pool']" in outcome["refusals"]["pool"]
