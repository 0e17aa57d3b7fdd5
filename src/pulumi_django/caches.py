"""Where pulumi-django keeps what it caches on this machine: the plan's app runs
(`app_runs`), the rehearsal's template PostgreSQL clusters, and the bytecode of the app's
interpreters (the migration check's and the rehearsal's, `bytecode_cache`).

`PULUMI_DJANGO_CACHE_DIR` when set (a test session points it at its own directory; set empty,
it turns off the caches that can be off: the app runs), else `$XDG_CACHE_HOME/pulumi-django`,
else `~/.cache/pulumi-django`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

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
