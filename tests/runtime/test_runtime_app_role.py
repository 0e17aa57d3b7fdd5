"""The release's app-role step (`python -m pulumi_django_runtime.db.app_role`) against a real
PostgreSQL 15, run as a master user shaped like RDS's (no superuser; CREATEROLE; owner of the
database), on a database Django migrates as that master.

RDS checks an IAM token for members of `rds_iam`; the server (rds_like_postgres) stands that
check in with a `host all +rds_iam ... trust` line in pg_hba.conf (the tokens themselves are
tested in test_runtime_iam_auth.py). Every other role logs in with its password.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rds_like_postgres import rds_like_postgres, superuser
from runtime_projects import add_configure, kit_environment, run_django, start_project

from pulumi_django.cli.rehearsal.servers import LOOPBACK, Postgres
from pulumi_django_runtime.db.app_role import (
    AppRole,
    AppRoleError,
    ensure_app_role,
    run,
    verify_login,
)

REGION = "eu-west-1"
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def server() -> Iterator[Postgres]:
    with rds_like_postgres() as started:
        yield started


@dataclass(frozen=True)
class Database:
    """A database owned by a master user shaped like RDS's, and the app role's name."""

    server: Postgres
    name: str
    master: str
    password: str
    app: str

    def master_params(self) -> dict[str, Any]:
        return {
            "host": LOOPBACK,
            "port": self.server.port,
            "dbname": self.name,
            "user": self.master,
            "password": self.password,
            "sslmode": "require",
            "connect_timeout": 5,
        }

    def connect_as(self, user: str, password: str | None = None) -> psycopg.Connection[Any]:
        return psycopg.connect(
            host=LOOPBACK,
            port=self.server.port,
            dbname=self.name,
            user=user,
            password=password,
            autocommit=True,
        )

    def master_environment(self) -> dict[str, str]:
        """The DATABASE_* variables of the release task (the master's credentials)."""
        return {
            "DATABASE_HOST": LOOPBACK,
            "DATABASE_PORT": str(self.server.port),
            "DATABASE_NAME": self.name,
            "DATABASE_USER": self.master,
            "DATABASE_PASSWORD": self.password,
            "DATABASE_SSLMODE": "require",
        }

    def iam_role(self) -> AppRole:
        return AppRole(name=self.app, auth="iam", region=REGION)

    def password_role(self, password: str) -> AppRole:
        return AppRole(name=self.app, auth="password", password=password)


@pytest.fixture
def database(server: Postgres) -> Database:
    number = next(_numbers)
    database = Database(server, f"site{number}", f"master{number}", f"pw-{number}", f"app{number}")
    with superuser(server) as connection:
        connection.execute(
            f"CREATE ROLE {database.master} LOGIN CREATEROLE CREATEDB "
            f"PASSWORD '{database.password}' IN ROLE rds_superuser"
        )
        connection.execute(f"CREATE DATABASE {database.name} OWNER {database.master}")
    return database


class Signer:
    """Stands in for boto3's token signing; records what it signed for."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int, str]] = []

    def __call__(self, region: str, host: str, port: int, user: str) -> str:
        self.calls.append((region, host, port, user))
        return f"token-{len(self.calls)}"


def no_sleep(_seconds: float) -> None:
    pass


def catalog(database: Database) -> dict[str, Any]:
    """Everything a GRANT, REVOKE or ALTER ROLE of the step could change, read as superuser."""
    with superuser(database.server, database.name) as connection:

        def rows(query: str, *params: Any) -> list[Any]:
            return [list(row) for row in connection.execute(query, params or None).fetchall()]

        return {
            "role": rows("SELECT * FROM pg_authid WHERE rolname = %s", database.app),
            "members": rows(
                "SELECT r.rolname, m.admin_option FROM pg_auth_members m"
                " JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
                " WHERE u.rolname = %s ORDER BY 1",
                database.app,
            ),
            "database": rows(
                "SELECT datacl::text FROM pg_database WHERE datname = %s", database.name
            ),
            "schema": rows("SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'"),
            "relations": rows(
                "SELECT relname, relacl::text FROM pg_class WHERE relnamespace ="
                " 'public'::regnamespace ORDER BY 1"
            ),
            "defaults": rows(
                "SELECT defaclobjtype, defaclacl::text FROM pg_default_acl ORDER BY 1"
            ),
        }


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A stock startproject with the kit's two lines: `migrate` creates its tables."""
    directory = start_project(tmp_path_factory.mktemp("app-role"))
    add_configure(directory)
    return directory


def migrate(project: Path, database: Database, *labels: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", *labels],
        cwd=project,
        env=kit_environment(**database.master_environment()),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr


ORM_AS_APP = """
import json
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
user = User.objects.create_user("ada", password="pw")
user.first_name = "Ada"
user.save()
group = Group.objects.create(name="editors")
user.groups.add(group)
read = User.objects.get(username="ada").first_name
kinds = ContentType.objects.count()
user.delete()
group.delete()
denied = {}
for name, statement in {
    "create": "CREATE TABLE app_own (id int)",
    "drop": "DROP TABLE auth_user",
    "alter": "ALTER TABLE auth_user ADD COLUMN x int",
    "truncate": "TRUNCATE django_session",
}.items():
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
        denied[name] = "allowed"
    except Exception as error:
        denied[name] = type(error).__name__ + ": " + str(error).splitlines()[0]
print(json.dumps({"user": connection.settings_dict["USER"], "read": read, "kinds": kinds,
                  "left": User.objects.count(), "denied": denied}))
"""


def test_the_app_role_uses_the_rows_of_migrated_tables_and_cannot_change_the_schema(
    database: Database, project: Path
) -> None:
    """Tables migrated before the step (contenttypes) and after it (everything else, created by
    the master with the default privileges the step set) are the app's to read and write; DDL
    is not."""
    migrate(project, database, "contenttypes")
    signer = Signer()
    changes = run(database.iam_role(), database.master_params(), signer, no_sleep)

    assert f"created role {database.app}" in changes
    assert f"granted rds_iam to {database.app}" in changes
    # The login check signed one token, for the master's host and port, as the app.
    assert signer.calls == [(REGION, LOOPBACK, database.server.port, database.app)]
    migrate(project, database)

    env = {
        **database.master_environment(),
        "DATABASE_USER": database.app,
        "DATABASE_PASSWORD": "",
    }
    result = run_django(project, ORM_AS_APP, **env)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome["user"] == database.app
    assert (outcome["read"], outcome["left"]) == ("Ada", 0)
    assert outcome["kinds"] > 0  # a table migrated before the step
    denied = outcome["denied"]
    assert "permission denied for schema public" in denied["create"]
    assert "must be owner of table auth_user" in denied["drop"]
    assert "must be owner of table auth_user" in denied["alter"]
    assert "permission denied for table django_session" in denied["truncate"]

    with database.connect_as(database.app) as connection:
        attributes = connection.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolcanlogin FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
    assert attributes == (False, False, False, True)


def test_running_the_step_again_changes_nothing(database: Database, project: Path) -> None:
    migrate(project, database)
    assert run(database.iam_role(), database.master_params(), Signer(), no_sleep)
    before = catalog(database)

    assert run(database.iam_role(), database.master_params(), Signer(), no_sleep) == []
    assert catalog(database) == before
    assert before["members"] == [["rds_iam", False]]
    assert before["role"][0][-2] is None  # no password: IAM tokens only


def test_password_auth_sets_a_scram_verifier_once_and_takes_the_iam_role_away(
    database: Database,
) -> None:
    with database.connect_as(database.master, database.password) as connection:
        connection.execute(
            "CREATE TABLE notes (id bigint GENERATED BY DEFAULT AS IDENTITY, body text)"
        )
    run(database.iam_role(), database.master_params(), Signer(), no_sleep)

    changes = run(database.password_role("first secret"), database.master_params(), Signer())
    assert f"revoked rds_iam from {database.app} (it logs in with its password)" in changes
    assert any(change.startswith("set the password") for change in changes)
    stored = catalog(database)
    assert stored["members"] == []
    assert str(stored["role"][0][-2]).startswith("SCRAM-SHA-256$")
    with database.connect_as(database.app, "first secret") as connection:
        connection.execute("INSERT INTO notes (body) VALUES ('a')")
        assert connection.execute("SELECT body FROM notes").fetchall() == [("a",)]

    # The same password again: the verifier (its salt) is left as it is.
    assert run(database.password_role("first secret"), database.master_params(), Signer()) == []
    assert catalog(database) == stored

    run(database.password_role("second secret"), database.master_params(), Signer())
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        database.connect_as(database.app, "first secret").close()
    database.connect_as(database.app, "second secret").close()


def test_on_servers_that_let_every_role_create_in_public_the_app_loses_that_not_the_master(
    database: Database, project: Path
) -> None:
    """PostgreSQL < 15 grants CREATE on `public` to PUBLIC (RDS still offers 11 to 14)."""
    with superuser(database.server, database.name) as connection:
        connection.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
    changes = run(database.iam_role(), database.master_params(), Signer(), no_sleep)

    assert "revoked CREATE on schema public from PUBLIC" in changes
    with (
        database.connect_as(database.app) as connection,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        connection.execute("CREATE TABLE app_own (id int)")
    migrate(project, database)  # the master still creates tables


def test_a_role_the_master_cannot_tame_is_refused(database: Database) -> None:
    with superuser(database.server) as connection:
        connection.execute(f"CREATE ROLE {database.app} LOGIN SUPERUSER")
    with (
        psycopg.connect(**database.master_params()) as connection,
        pytest.raises(AppRoleError, match=r"exists with SUPERUSER.*database.appUsername"),
    ):
        ensure_app_role(connection, database.iam_role())


def test_the_app_role_is_never_the_master(database: Database) -> None:
    role = AppRole(name=database.master, auth="iam", region=REGION)
    with (
        psycopg.connect(**database.master_params()) as connection,
        pytest.raises(AppRoleError, match="is the master user"),
    ):
        ensure_app_role(connection, role)


def test_a_direct_membership_of_the_master_role_is_taken_back(database: Database) -> None:
    with superuser(database.server) as connection:
        connection.execute(f"CREATE ROLE {database.app} LOGIN IN ROLE {database.master}")
    changes = run(database.iam_role(), database.master_params(), Signer(), no_sleep)
    assert f"revoked {database.master} from {database.app}" in changes
    assert catalog(database)["members"] == [["rds_iam", False]]


def test_iam_auth_needs_rds(database: Database) -> None:
    with superuser(database.server) as connection:
        connection.execute("ALTER ROLE rds_iam RENAME TO rds_iam_away")
    try:
        with (
            psycopg.connect(**database.master_params()) as connection,
            pytest.raises(AppRoleError, match=r"no rds_iam role.*appAuth: password"),
        ):
            ensure_app_role(connection, database.iam_role())
    finally:
        with superuser(database.server) as connection:
            connection.execute("ALTER ROLE rds_iam_away RENAME TO rds_iam")


def test_a_role_that_cannot_log_in_as_the_app_fails_the_step_with_a_token_per_try(
    database: Database,
) -> None:
    """The role is not in rds_iam here (as on an instance whose IAM authentication is still
    pending): every attempt signs a new token, then the step fails saying what to check."""
    with superuser(database.server) as connection:
        connection.execute(f"CREATE ROLE {database.app} LOGIN")
    signer, waits = Signer(), list[float]()
    with pytest.raises(AppRoleError, match=r"cannot log in as the app will \(iam\).*maintenance"):
        verify_login(database.master_params(), database.iam_role(), signer, sleep=waits.append)
    assert len(signer.calls) == len(waits) + 1 > 1


def test_the_module_runs_as_the_release_runs_it(database: Database) -> None:
    """`python -m` with the release task's variables (password auth: a real login)."""
    command = [
        sys.executable, "-m", "pulumi_django_runtime.db.app_role",
        "--user", database.app, "--auth", "password", "--password-version", "v1",
    ]  # fmt: skip
    env = kit_environment(**database.master_environment(), DATABASE_APP_PASSWORD="s3cret")
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert f"created role {database.app}" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert "nothing to change; it logs in" in second.stdout

    wrong = {**env, "DATABASE_PASSWORD": "not the master's"}
    failed = subprocess.run(command, env=wrong, capture_output=True, text=True, timeout=60)
    assert failed.returncode == 1
    assert failed.stderr.count("\n") == 1
    assert failed.stderr.startswith("pulumi-django: app database role: ")
    assert "password authentication failed" in failed.stderr
