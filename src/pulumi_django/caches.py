"""Where pulumi-django keeps what it caches on this machine: the plan's app runs
(`app_runs`), the `plan` command's plans (`cli.plan_cache`), the rehearsal's template
PostgreSQL clusters, and the bytecode of the app's interpreters (the migration check's and the
rehearsal's, `bytecode_cache`).

`PULUMI_DJANGO_CACHE_DIR` when set (a test session points it at its own directory; set empty,
it turns off the caches that can be off: the app runs and the plans), else
`$XDG_CACHE_HOME/pulumi-django`, else `~/.cache/pulumi-django`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CACHE_VARIABLE = "PULUMI_DJANGO_CACHE_DIR"


def cache_home(environment: Mapping[str, str] = os.environ) -> Path:
    """The cache's root directory (which may not exist yet)."""
    configured = environment.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    return Path(environment.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pulumi-django"


def bytecode_cache(environment: Mapping[str, str] = os.environ) -> Path:
    """Where the app's interpreter keeps the bytecode it compiles (PYTHONPYCACHEPREFIX):
    importing the project must not write `__pycache__` into it, and compiling its libraries on
    every run (a venv that uv installed has no bytecode) costs seconds each time."""
    return cache_home(environment) / "pycache"


def cache_disabled(environment: Mapping[str, str] = os.environ) -> bool:
    """`PULUMI_DJANGO_CACHE_DIR` is set empty."""
    return environment.get(CACHE_VARIABLE) == ""


def store_entry(entry: Path, document: Mapping[str, Any], keep: int) -> None:
    """Writes `document` as the JSON file `entry`, whole or not at all, then keeps the `keep`
    most recently used entries of its directory (a lookup that hits touches its entry). A cache
    that cannot be written is no cache, not an error."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=entry.parent, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(json.dumps(document))  # whole, by the C encoder (json.dump's is Python's)
        Path(temporary).replace(entry)
        entries = sorted(entry.parent.glob("*.json"), key=_modified, reverse=True)
        for stale in entries[keep:]:
            stale.unlink(missing_ok=True)
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def _modified(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
