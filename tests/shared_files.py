"""Files a module's tests only read (a project `init` wrote, a STATIC_ROOT `collectstatic`
filled), made once per test session for all of xdist's workers.

Under `make unit` a module's tests may run on several workers (a worker that runs out steals
from another's queue), so a module-scoped fixture may run once per worker; when what it makes
takes a Django process or two, `made_once` makes it in the session's shared directory instead,
in the first worker that asks (`worker_shared`), and the others load its value (paths into that
directory, reports) without making anything. Not for what a test changes: it copies it first.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from worker_shared import computed_once, session_directory

T = TypeVar("T")


def made_once(tmp_path_factory: pytest.TempPathFactory, key: str, make: Callable[[Path], T]) -> T:
    """`make(directory)`'s value, `directory` being a new directory of the session that every
    worker reads, made by one worker of the session."""

    def compute() -> T:
        directory = session_directory(tmp_path_factory) / "made-once" / key
        shutil.rmtree(directory, ignore_errors=True)  # what a worker that failed half-way left
        directory.mkdir(parents=True)
        return make(directory)

    return computed_once(tmp_path_factory, f"made-once-{key}", compute)
