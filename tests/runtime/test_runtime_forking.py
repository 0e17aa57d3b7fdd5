"""A process forked after Django started opens its own database connections (the kit's
`forking.py`): what keeps Gunicorn's preloaded `sync` workers from sharing the database session
their main process opened while Django started. In stock projects, against a real PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_projects import add_configure, run_django, settings_path, start_project

from pulumi_django.cli.rehearsal.servers import Postgres

# Django started and queried (as an `AppConfig.ready()` may), then a fork inside a transaction:
# the server process each side's next query reaches, whether the child's own `atomic()` is a
# transaction, and the parent's server process once the child is done.
FORK_PROBE = """
import json, os
from django.db import connection, transaction

def backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

with transaction.atomic():
    parent = backend()
    reading, writing = os.pipe()
    child_pid = os.fork()
    if child_pid == 0:
        with transaction.atomic():
            child = {"backend": backend(), "in_transaction": not connection.get_autocommit()}
        os.write(writing, json.dumps(child).encode())
        os._exit(0)
    os.close(writing)
    os.waitpid(child_pid, 0)
    child = json.loads(os.read(reading, 1024))
print(json.dumps({"parent": parent, "child": child, "parent_after": backend()}))
"""

# Django 5.1+'s pool filled (the parent's connections to the database), then a fork: the
# server process the child's query reaches.
POOL_PROBE = """
import json, os
from django.db import connection

with connection.cursor() as cursor:
    connection.pool.wait()
    cursor.execute(
        "SELECT array_agg(pid) FROM pg_stat_activity WHERE datname = current_database()"
    )
    parents = cursor.fetchone()[0]
reading, writing = os.pipe()
child_pid = os.fork()
if child_pid == 0:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        os.write(writing, str(cursor.fetchone()[0]).encode())
    os._exit(0)
os.close(writing)
os.waitpid(child_pid, 0)
print(json.dumps({"parents": parents, "child": int(os.read(reading, 32))}))
"""
POOLED_DATABASE = """
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql",
    "OPTIONS": {"pool": {"min_size": 2, "max_size": 4}},
}}
"""

# A table in an in-memory SQLite database, then a fork: what the child reads of it.
IN_MEMORY_PROBE = """
import os
from django.db import connection

with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE kept (n integer)")
    cursor.execute("INSERT INTO kept VALUES (7)")
child_pid = os.fork()
if child_pid == 0:
    with connection.cursor() as cursor:
        cursor.execute("SELECT n FROM kept")
        os._exit(cursor.fetchone()[0])
print(os.waitstatus_to_exitcode(os.waitpid(child_pid, 0)[1]))
"""

# A project without the kit, connected to the same server the usual way.
HAND_WRITTEN_DATABASE = """
import os
import dj_database_url
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
"""


def last_line_of(project: Path, code: str, database_url: str, **variables: str) -> str:
    result = run_django(
        project, code, DJANGO_SECRET_KEY="tests-only", DATABASE_URL=database_url, **variables
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[-1]


def stock_project(parent: Path, settings: str = "", *, kit: bool = True) -> Path:
    """A stock project, `settings` added to its settings module, then (with `kit`) the kit's
    two lines."""
    parent.mkdir()
    project = start_project(parent)
    path = settings_path(project)
    path.write_text(path.read_text() + settings)
    if kit:
        add_configure(project)
    return project


@pytest.mark.slow
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_session_open(
    pg: Postgres, tmp_path: Path
) -> None:
    database_url = pg.create_database("forking")
    across = json.loads(last_line_of(stock_project(tmp_path / "kit"), FORK_PROBE, database_url))
    assert across["child"]["backend"] != across["parent"]
    assert across["child"]["in_transaction"]  # its atomic() is a transaction, not a savepoint
    assert across["parent_after"] == across["parent"]  # not closed by the child

    # Without the kit, the child talks over the parent's session: what the kit prevents.
    without_kit = stock_project(tmp_path / "stock", HAND_WRITTEN_DATABASE, kit=False)
    across = json.loads(last_line_of(without_kit, FORK_PROBE, database_url))
    assert across["child"]["backend"] == across["parent"]


@pytest.mark.slow
def test_a_forked_child_takes_no_connection_of_the_parents_pool(
    pg: Postgres, tmp_path: Path
) -> None:
    project = stock_project(tmp_path / "kit", POOLED_DATABASE)
    database_url = pg.create_database("forking_pool")
    # Django refuses a pool with persistent connections: the kit's default is 60 s.
    across = json.loads(last_line_of(project, POOL_PROBE, database_url, DATABASE_CONN_MAX_AGE="0"))
    assert len(across["parents"]) >= 2  # the pool's min_size
    assert across["child"] not in across["parents"]


def test_an_in_memory_sqlite_database_is_inherited_as_djangos_parallel_tests_need(
    tmp_path: Path,
) -> None:
    project = stock_project(tmp_path / "kit")
    assert last_line_of(project, IN_MEMORY_PROBE, "sqlite://:memory:") == "7"
