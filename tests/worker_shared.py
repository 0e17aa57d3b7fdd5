"""A value computed once per test session and shared by pytest-xdist's workers: a recorded plan
costs seconds of CPU, and each of `make unit`'s workers would otherwise compute its own copy.

The first worker to ask computes the value and pickles it in the session's temporary directory
(the one its workers share) while it holds the key's lock; the others wait on the lock and load
it. Without xdist it is the same, in one process. Only for values that do not depend on the
worker: a plan of a file in the repository, never one of a worker's own temporary files.
"""

from __future__ import annotations

import fcntl
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

T = TypeVar("T")


def session_directory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The directory of this session that every worker sees: under xdist each worker's
    temporary root (`popen-gw0`) sits in the session's own."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


def computed_once(
    tmp_path_factory: pytest.TempPathFactory, key: str, compute: Callable[[], T]
) -> T:
    """`compute()`'s value, computed by one worker of the session and loaded by the others."""
    directory = session_directory(tmp_path_factory) / "computed-once"
    directory.mkdir(exist_ok=True)
    stored = directory / f"{key}.pickle"
    with (directory / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stored.exists():
            value: T = pickle.loads(stored.read_bytes())  # noqa: S301 (this session's own file)
            return value
        value = compute()
        written = stored.with_suffix(".partial")
        written.write_bytes(pickle.dumps(value))
        written.replace(stored)
        return value
