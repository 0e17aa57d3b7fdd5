"""A throwaway PostgreSQL shaped like RDS for the runtime kit's database tests: RDS's own roles
(`rds_superuser`, `rds_iam`), TLS with a self-signed certificate, and pg_hba.conf standing in for
RDS's IAM check: members of `rds_iam` log in without a password (RDS checks their token there),
every other role but `postgres` with its password (scram-sha-256)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from pulumi_django.cli.rehearsal.servers import LOOPBACK, Postgres, postgres

PG_HBA = f"""\
local all all trust
host all postgres {LOOPBACK}/32 trust
host all +rds_iam {LOOPBACK}/32 trust
host all all {LOOPBACK}/32 scram-sha-256
"""


def superuser(server: Postgres, dbname: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(
        host=LOOPBACK, port=server.port, user="postgres", dbname=dbname, autocommit=True
    )


@contextlib.contextmanager
def rds_like_postgres() -> Iterator[Postgres]:
    with postgres(password_auth=True) as server, superuser(server) as connection:
        data = Path(_show(connection, "data_directory"))
        Path(_show(connection, "hba_file")).write_text(PG_HBA)
        _self_signed_certificate(data)
        connection.execute("ALTER SYSTEM SET ssl = on")
        connection.execute("SELECT pg_reload_conf()")
        connection.execute("CREATE ROLE rds_iam NOLOGIN")
        connection.execute("CREATE ROLE rds_superuser NOLOGIN")
        yield server


def _show(connection: psycopg.Connection[Any], setting: str) -> str:
    row = connection.execute(f"SHOW {setting}").fetchone()
    assert row is not None
    return str(row[0])


def _self_signed_certificate(data: Path) -> None:
    """server.crt and server.key in the data directory, where `ssl = on` looks for them, owned
    by the server's user (the key must be readable by it alone)."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed for the TLS test server"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", f"/CN={LOOPBACK}",
            "-keyout", str(data / "server.key"), "-out", str(data / "server.crt"),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    owner = data.stat()
    for name in ("server.key", "server.crt"):
        path = data / name
        os.chown(path, owner.st_uid, owner.st_gid)
        path.chmod(0o600)
