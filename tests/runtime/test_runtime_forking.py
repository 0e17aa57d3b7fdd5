"""A process forked after Django started opens its own database connections (the kit's
`forking.py`): what keeps Gunicorn's preloaded `sync` workers from sharing the PostgreSQL session
their main process opened while Django started. Against a real PostgreSQL, in stock projects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from runtime_projects import add_configure, run_django, settings_path, start_project

from pulumi_django.cli.rehearsal.servers import Postgres

# Django started and queried (as an `AppConfig.ready()` may), then a fork: the server process
# each side's next query reaches, and the parent's once the child is done.
FORK_PROBE = """
import json, os
from django.db import connection

def backend():
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]

parent = backend()
reading, writing = os.pipe()
child_pid = os.fork()
if child_pid == 0:
    os.write(writing, str(backend()).encode())
    os._exit(0)
os.close(writing)
os.waitpid(child_pid, 0)
child = int(os.read(reading, 32))
print(json.dumps({"parent": parent, "child": child, "parent_after": backend()}))
"""

# A project without the kit, connected to the same server the usual way.
HAND_WRITTEN_DATABASE = """
import os
import dj_database_url
DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=60)}
"""


def backends_across_a_fork(project: Path, database_url: str) -> dict[str, int]:
    result = run_django(
        project, FORK_PROBE, DJANGO_SECRET_KEY="tests-only", DATABASE_URL=database_url
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.splitlines()[-1]))


@pytest.mark.slow
def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_session_open(
    pg: Postgres, tmp_path: Path
) -> None:
    database_url = pg.create_database("forking")
    (tmp_path / "kit").mkdir()
    with_kit = start_project(tmp_path / "kit")
    add_configure(with_kit)
    backends = backends_across_a_fork(with_kit, database_url)
    assert backends["child"] != backends["parent"]
    assert backends["parent_after"] == backends["parent"]  # not closed by the child

    # Without the kit, the child talks over the parent's session: what the kit prevents.
    (tmp_path / "stock").mkdir()
    without_kit = start_project(tmp_path / "stock")
    settings = settings_path(without_kit)
    settings.write_text(settings.read_text() + HAND_WRITTEN_DATABASE)
    backends = backends_across_a_fork(without_kit, database_url)
    assert backends["child"] == backends["parent"]
