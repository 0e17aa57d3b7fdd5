"""A forked process opens database connections of its own.

A server that imports the app before it forks its workers (Gunicorn's `--preload`, the stack's
default) gives each worker a copy of every connection its main process opened while Django
started: a query in an `AppConfig.ready()`, say. A worker that answers requests on the thread
that forked (Gunicorn's `sync` workers) would then share one PostgreSQL session with the
others, and each would read answers meant for another. After a fork, the child forgets the
connections it inherited and opens its own on first use, as Celery's prefork workers do.

It forgets them without closing them: closing would end the session of the process it forked
from too. Each inherited connection is kept here, never used again, until the process exits.
"""

from __future__ import annotations

import os
import sys
from typing import Any

# The connections inherited at fork, kept so that no garbage collection closes them (above).
_inherited: list[Any] = []
_registered = False


def forget_inherited_connections() -> None:
    """In a forked child: Django's connections of this thread (the only one a fork keeps) are
    opened again on first use. Nothing to do when Django's database layer was never loaded."""
    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited.append(connection.connection)
            # `connect()` on first use resets the transaction state along with the connection.
            connection.connection = None


def reconnect_after_fork() -> None:
    """Registers `forget_inherited_connections` to run in every forked child, once per process
    (`os.register_at_fork` is POSIX only; `subprocess` runs it only with a `preexec_fn`)."""
    global _registered
    if _registered or not hasattr(os, "register_at_fork"):
        return
    os.register_at_fork(after_in_child=forget_inherited_connections)
    _registered = True
