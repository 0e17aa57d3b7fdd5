"""A forked process opens database connections of its own.

A server that starts Django before it forks its workers (Gunicorn's `--preload`, the stack's
default) gives each worker a copy of every connection its main process opened meanwhile: a query
in an `AppConfig.ready()`, say. A worker that answers requests on the thread that forked
(Gunicorn's `sync` workers) would then share one database session with the others, and each
would read answers meant for another. After a fork, the child forgets the connections it
inherited, with their transaction state, and opens its own on first use.

It forgets them without closing them: closing would end the session of the process it forked
from too. Each inherited connection is kept here, never used again, until the process exits
(psycopg would not close it when collected in another process; other drivers might).

Django 5.1+'s connection pools (`OPTIONS["pool"]`, which `configure()` keeps) are forgotten the
same way: a child would otherwise take the parent's idle connections from a pool whose threads a
fork did not copy. SQLite in-memory databases stay inherited: a fork copies them on purpose
(Django's parallel test runner relies on it).
"""

from __future__ import annotations

import os
import sys
from typing import Any

# The connections inherited at fork, kept so that no garbage collection closes them (above).
_inherited: list[Any] = []
_registered = False


def forget_inherited_connections() -> None:
    """In a forked child: Django's connections of this thread (the only one a fork keeps) and
    its connection pools are opened again on first use. Nothing to do before Django's database
    layer is loaded and configured."""
    if "django.db" not in sys.modules:
        return
    from django.conf import settings
    from django.db import connections

    if not settings.configured:
        return
    for connection in connections.all():
        pools = getattr(type(connection), "_connection_pools", None)  # a class's, every thread's
        if isinstance(pools, dict) and connection.alias in pools:
            _inherited.append(pools.pop(connection.alias))
        if connection.connection is None:
            continue
        if connection.vendor == "sqlite" and connection.is_in_memory_db():
            continue
        _inherited.append(connection.connection)
        connection.connection = None
        # What `connect()` resets, read before it runs: a child forked inside `atomic()`
        # would otherwise take its next `atomic()` for a savepoint of a transaction it has not.
        connection.in_atomic_block = False
        connection.savepoint_ids = []
        connection.atomic_blocks = []
        connection.needs_rollback = False
        connection.run_on_commit = []


def forget_connections_in_forked_children() -> None:
    """Registers `forget_inherited_connections` to run in every forked child, once per process
    (`os.register_at_fork` is POSIX only; `subprocess` runs it only with a `preexec_fn`)."""
    global _registered
    if _registered or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(after_in_child=forget_inherited_connections)
    _registered = True
