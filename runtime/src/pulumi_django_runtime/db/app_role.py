"""The app's own PostgreSQL role, set up by the release under the master user's credentials.

On AWS the release runs, in its one-off ECS task and before `migrate`:

    python -m pulumi_django_runtime.db.app_role --user app --auth iam --region eu-west-1

with the task's DATABASE_* variables naming the master user (DATABASE_PASSWORD its password).
It makes `--user` a role that may log in and use the app's rows and nothing more:

- LOGIN, no CREATEDB or CREATEROLE (and refused when it is a superuser, may replicate or bypass
  row security, or is a member of the master's role: those the master cannot take away);
- CONNECT on the database; USAGE on the schema (`public`), never CREATE (PostgreSQL < 15 gives
  CREATE on `public` to every role: taken back from PUBLIC, after granting it to the master);
- SELECT, INSERT, UPDATE, DELETE on the schema's tables and USAGE, SELECT on its sequences, now
  and, through the master's default privileges, on every table and sequence `migrate` creates;
- `--auth iam`: membership of RDS's `rds_iam` (the role then logs in with IAM tokens only) and no
  password; `--auth password`: no `rds_iam`, and the password in DATABASE_APP_PASSWORD, sent as a
  SCRAM verifier computed here (the cleartext never reaches the server or its logs), and only
  when the role cannot already log in with it.

Every statement is one PostgreSQL applies as often as it is run (or is only run when a lookup
says it is needed), all in one transaction: a second run changes nothing. Then it logs in as the
role, the way the app will (an IAM token or the password), so that a release whose app could not
connect (IAM authentication still pending on the instance, say) fails here, before any app task
of it starts. The exit status is 0, or 1 with one line saying what is wrong.

Needs psycopg 3 (the kit's `aws` extra); boto3 for `--auth iam`. No Django setup.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from pulumi_django_runtime.db.iam import DEFAULT_PORT, auth_token

APP_PASSWORD_VARIABLE = "DATABASE_APP_PASSWORD"  # noqa: S105 - a variable name
RDS_IAM_ROLE = "rds_iam"
RDS_SUPERUSER_ROLE = "rds_superuser"
DEFAULT_SCHEMA = "public"
TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
SEQUENCE_PRIVILEGES = ("USAGE", "SELECT")
# A new IAM policy takes a few seconds to reach every endpoint: the login is retried meanwhile.
LOGIN_ATTEMPTS = 6
LOGIN_RETRY_SECONDS = 5.0
LOGIN_TIMEOUT_SECONDS = 10
PREFIX = "pulumi-django: app database role"

Auth = Literal["iam", "password"]
TokenSigner = Callable[[str, str, int, str], str]
"""(region, host, port, user) -> an IAM token; `pulumi_django_runtime.db.iam.auth_token`."""


class AppRoleError(Exception):
    """The role cannot be made what the app needs; the message says why and what to do."""


@dataclass(frozen=True)
class AppRole:
    """What the app's role must be. `password` only with `auth="password"`; `region` (the
    instance's) only with `auth="iam"`."""

    name: str
    auth: Auth
    schema: str = DEFAULT_SCHEMA
    password: str | None = field(default=None, repr=False)
    region: str | None = None

    def __post_init__(self) -> None:
        if self.auth == "password" and not self.password:
            raise AppRoleError(
                f"--auth password needs the role's password in {APP_PASSWORD_VARIABLE}"
            )
        if self.auth == "iam" and not self.region:
            raise AppRoleError("--auth iam needs --region, the RDS instance's region")


def ensure_app_role(connection: psycopg.Connection[Any], role: AppRole) -> list[str]:
    """Makes `role` what the app needs, in one transaction on `connection` (the master's);
    returns what changed, in words ([] when nothing had to)."""
    changes: list[str] = []
    with connection.transaction(), connection.cursor() as cursor:
        master = _scalar(cursor, "SELECT current_user")
        if master == role.name:
            raise AppRoleError(
                f"the app's role {role.name!r} is the master user; the app needs a role of its own "
                "(database.appUsername)"
            )
        app = sql.Identifier(role.name)
        changes += _ensure_login_role(cursor, role.name, app, master)
        changes += _ensure_authentication(cursor, role, app)
        changes += _ensure_privileges(cursor, role, app, sql.Identifier(master))
    return changes


def _ensure_login_role(
    cursor: psycopg.Cursor[Any], name: str, app: sql.Identifier, master: str
) -> list[str]:
    found = cursor.execute(
        "SELECT rolsuper, rolreplication, rolbypassrls, rolcanlogin, rolcreatedb, rolcreaterole"
        " FROM pg_roles WHERE rolname = %s",
        (name,),
    ).fetchone()
    if found is None:
        # NOSUPERUSER, NOCREATEDB, NOCREATEROLE, NOREPLICATION, NOBYPASSRLS are the defaults.
        cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(app))
        return [f"created role {name}"]
    superuser, replication, bypass_rls, can_login, create_db, create_role = found
    if superuser or replication or bypass_rls:
        attributes = [
            word
            for word, held in (
                ("SUPERUSER", superuser),
                ("REPLICATION", replication),
                ("BYPASSRLS", bypass_rls),
            )
            if held
        ]
        raise AppRoleError(
            f"role {name} exists with {', '.join(attributes)}, which only a superuser can take "
            "away: choose another database.appUsername, or drop the role by hand"
        )
    changes: list[str] = []
    if not can_login or create_db or create_role:
        cursor.execute(sql.SQL("ALTER ROLE {} LOGIN NOCREATEDB NOCREATEROLE").format(app))
        changes.append(f"role {name}: LOGIN, NOCREATEDB, NOCREATEROLE")
    for powerful in (master, RDS_SUPERUSER_ROLE):
        if _is_member(cursor, name, powerful):
            if _is_direct_member(cursor, name, powerful):
                cursor.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(powerful), app))
                changes.append(f"revoked {powerful} from {name}")
            if _is_member(cursor, name, powerful):
                raise AppRoleError(
                    f"role {name} is a member of {powerful} through another role; revoke that "
                    "membership by hand, or choose another database.appUsername"
                )
    return changes


def _ensure_authentication(
    cursor: psycopg.Cursor[Any], role: AppRole, app: sql.Identifier
) -> list[str]:
    iam_role = sql.Identifier(RDS_IAM_ROLE)
    has_iam_role = _role_exists(cursor, RDS_IAM_ROLE)
    member = has_iam_role and _is_direct_member(cursor, role.name, RDS_IAM_ROLE)
    if role.auth == "iam":
        if not has_iam_role:
            raise AppRoleError(
                f"this server has no {RDS_IAM_ROLE} role: IAM database authentication is RDS's; "
                "elsewhere use database.appAuth: password"
            )
        changes = []
        if not member:
            cursor.execute(sql.SQL("GRANT {} TO {}").format(iam_role, app))
            changes.append(f"granted {RDS_IAM_ROLE} to {role.name}")
        # A password left from `--auth password` would be unused (RDS takes IAM for members of
        # rds_iam) but kept in the catalog: removed; a no-op when there is none.
        cursor.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(app))
        return changes
    changes = []
    if member:
        cursor.execute(sql.SQL("REVOKE {} FROM {}").format(iam_role, app))
        changes.append(f"revoked {RDS_IAM_ROLE} from {role.name} (it logs in with its password)")
    return changes


def _ensure_privileges(
    cursor: psycopg.Cursor[Any], role: AppRole, app: sql.Identifier, master: sql.Identifier
) -> list[str]:
    schema = sql.Identifier(role.schema)
    if not _scalar(cursor, "SELECT count(*) FROM pg_namespace WHERE nspname = %s", role.schema):
        raise AppRoleError(f"schema {role.schema} does not exist in this database")
    tables = sql.SQL(", ").join(sql.SQL(privilege) for privilege in TABLE_PRIVILEGES)
    sequences = sql.SQL(", ").join(sql.SQL(privilege) for privilege in SEQUENCE_PRIVILEGES)
    statements = [
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(_scalar(cursor, "SELECT current_database()")), app
        ),
        sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, app),
        sql.SQL("GRANT {} ON ALL TABLES IN SCHEMA {} TO {}").format(tables, schema, app),
        sql.SQL("GRANT {} ON ALL SEQUENCES IN SCHEMA {} TO {}").format(sequences, schema, app),
        # What `migrate` (run as the master) creates from now on.
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON TABLES TO {}"
        ).format(master, schema, tables, app),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT {} ON SEQUENCES TO {}"
        ).format(master, schema, sequences, app),
    ]
    for statement in statements:
        cursor.execute(statement)
    return _no_create_on_schema(cursor, role, app, master, schema)


def _no_create_on_schema(
    cursor: psycopg.Cursor[Any],
    role: AppRole,
    app: sql.Identifier,
    master: sql.Identifier,
    schema: sql.Identifier,
) -> list[str]:
    """The app must not create objects: PostgreSQL 15 no longer grants CREATE on `public` to
    PUBLIC, older servers do (and someone may have granted it)."""
    if not _can_create_in(cursor, role.name, role.schema):
        return []
    changes = []
    if _granted_to_public(cursor, role.schema):
        # The master (who runs `migrate`) keeps CREATE in its own right before PUBLIC loses it.
        cursor.execute(sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(schema, master))
        cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(schema))
        changes.append(f"revoked CREATE on schema {role.schema} from PUBLIC")
    cursor.execute(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, app))
    if _can_create_in(cursor, role.name, role.schema):
        raise AppRoleError(
            f"role {role.name} may still create objects in schema {role.schema} (through another "
            "role's membership); revoke that by hand"
        )
    return [*changes, f"revoked CREATE on schema {role.schema} from {role.name}"]


def _can_create_in(cursor: psycopg.Cursor[Any], name: str, schema: str) -> bool:
    return bool(_scalar(cursor, "SELECT has_schema_privilege(%s, %s, 'CREATE')", name, schema))


def _granted_to_public(cursor: psycopg.Cursor[Any], schema: str) -> bool:
    return bool(
        _scalar(
            cursor,
            "SELECT EXISTS (SELECT 1 FROM pg_namespace, aclexplode(coalesce(nspacl,"
            " acldefault('n', nspowner))) AS acl WHERE nspname = %s AND acl.grantee = 0"
            " AND acl.privilege_type = 'CREATE')",
            schema,
        )
    )


def _role_exists(cursor: psycopg.Cursor[Any], name: str) -> bool:
    return bool(_scalar(cursor, "SELECT count(*) FROM pg_roles WHERE rolname = %s", name))


def _is_member(cursor: psycopg.Cursor[Any], member: str, role: str) -> bool:
    """Directly or through other roles; False when `role` does not exist (not on RDS)."""
    if not _role_exists(cursor, role):
        return False
    return bool(_scalar(cursor, "SELECT pg_has_role(%s, %s, 'MEMBER')", member, role))


def _is_direct_member(cursor: psycopg.Cursor[Any], member: str, role: str) -> bool:
    return bool(
        _scalar(
            cursor,
            "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = %s AND u.rolname = %s",
            role,
            member,
        )
    )


def _scalar(cursor: psycopg.Cursor[Any], query: str, *params: Any) -> Any:
    row = cursor.execute(query, params or None).fetchone()
    return row[0] if row else None


def scram_verifier(connection: psycopg.Connection[Any], name: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier of `password` (libpq's PQencryptPasswordConn, as psql's
    \\password sends it): the server stores it as it is, and never sees the cleartext."""
    encrypted = connection.pgconn.encrypt_password(
        password.encode(), name.encode(), b"scram-sha-256"
    )
    return encrypted.decode()


def set_password(connection: psycopg.Connection[Any], role: AppRole) -> None:
    """Sets the role's password (as a SCRAM verifier) in its own transaction."""
    if role.password is None:
        raise AppRoleError("no password to set")
    verifier = scram_verifier(connection, role.name, role.password)
    with connection.transaction(), connection.cursor() as cursor:
        cursor.execute(
            sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                sql.Identifier(role.name), sql.Literal(verifier)
            )
        )


def app_login(
    master: Mapping[str, Any], role: AppRole, sign: TokenSigner = auth_token
) -> dict[str, Any]:
    """psycopg connect parameters logging in as the app does: the master's host, port,
    database and TLS, the role's name, and its password or a fresh IAM token."""
    params = {**master, "user": role.name}
    if role.auth == "iam":
        assert role.region is not None  # checked by AppRole
        params["password"] = sign(
            role.region, str(master["host"]), int(master.get("port") or DEFAULT_PORT), role.name
        )
    else:
        params["password"] = role.password
    params["connect_timeout"] = min(int(master.get("connect_timeout") or 5), LOGIN_TIMEOUT_SECONDS)
    return params


def can_log_in(params: Mapping[str, Any]) -> psycopg.OperationalError | None:
    """None when a connection with `params` opens and answers; else why not."""
    try:
        with psycopg.connect(**params) as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError as error:
        return error
    return None


def verify_login(
    master: Mapping[str, Any],
    role: AppRole,
    sign: TokenSigner = auth_token,
    attempts: int = LOGIN_ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Logs in as the app will (a fresh token each attempt); AppRoleError after `attempts`."""
    error: psycopg.OperationalError | None = None
    for attempt in range(attempts):
        if attempt:
            sleep(LOGIN_RETRY_SECONDS)
        error = can_log_in(app_login(master, role, sign))
        if error is None:
            return
    hint = (
        "is IAM database authentication on for the instance (a change waiting for the "
        "maintenance window is not yet), and may the task role rds-db:connect as this user?"
        if role.auth == "iam"
        else "does the password in the app's secret match?"
    )
    raise AppRoleError(
        f"role {role.name} is ready but cannot log in as the app will ({role.auth}): "
        f"{str(error).strip().splitlines()[-1] if error else 'no answer'}; {hint}"
    )


def master_params(environ: Mapping[str, str]) -> dict[str, Any]:
    """psycopg connect parameters of the master user, from the DATABASE_* variables the kit
    reads (`pulumi_django_runtime.settings.database_settings`)."""
    from django.core.exceptions import ImproperlyConfigured

    from pulumi_django_runtime.settings import database_settings

    try:
        settings = database_settings(environ)
    except ImproperlyConfigured as error:
        raise AppRoleError(str(error)) from None
    if not settings or "postgresql" not in str(settings.get("ENGINE", "")):
        raise AppRoleError("DATABASE_HOST (or a postgres:// DATABASE_URL) is not set")
    options = settings.get("OPTIONS", {})
    params: dict[str, Any] = {
        "host": settings["HOST"],
        "port": int(settings.get("PORT") or DEFAULT_PORT),
        "dbname": settings["NAME"],
        "user": settings["USER"],
        "password": settings.get("PASSWORD") or None,
        "sslmode": options.get("sslmode", "prefer"),
        "connect_timeout": options.get("connect_timeout", 5),
    }
    return {key: value for key, value in params.items() if value is not None}


def run(
    role: AppRole,
    master: Mapping[str, Any],
    sign: TokenSigner = auth_token,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """The whole step: the role, its grants, its password, then a login as the app. Returns
    what changed."""
    with psycopg.connect(**master) as connection:
        changes = ensure_app_role(connection, role)
        # Only once the role is out of rds_iam does a login test its password.
        if role.auth == "password" and can_log_in(app_login(master, role, sign)) is not None:
            set_password(connection, role)
            changes.append(f"set the password of {role.name} from {APP_PASSWORD_VARIABLE}")
    verify_login(master, role, sign, sleep=sleep)
    return changes


def parse_arguments(argv: Sequence[str] | None, environ: Mapping[str, str]) -> AppRole:
    parser = argparse.ArgumentParser(
        prog="python -m pulumi_django_runtime.db.app_role",
        description="Create or update the app's own PostgreSQL role (run as the master user).",
    )
    parser.add_argument("--user", required=True, help="the app's role")
    parser.add_argument("--auth", choices=("iam", "password"), required=True)
    parser.add_argument("--region", help="the RDS instance's region (--auth iam)")
    parser.add_argument("--schema", default=DEFAULT_SCHEMA)
    parser.add_argument(
        "--password-version",
        help="ignored: names the secret version, so that a new password is a new release command",
    )
    args = parser.parse_args(argv)
    return AppRole(
        name=args.user,
        auth=args.auth,
        schema=args.schema,
        password=(environ.get(APP_PASSWORD_VARIABLE) or None) if args.auth == "password" else None,
        region=args.region,
    )


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    try:
        role = parse_arguments(argv, env)
        changes = run(role, master_params(env))
    except (AppRoleError, psycopg.Error) as error:
        message = str(error).strip().splitlines()[-1] if str(error).strip() else repr(error)
        print(f"{PREFIX}: {message}", file=sys.stderr, flush=True)
        return 1
    summary = "; ".join(changes) if changes else "nothing to change"
    print(f"{PREFIX} {role.name} ({role.auth}): {summary}; it logs in", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
