"""Stock `django-admin startproject` projects for the runtime kit's tests, and running Django
code in them in a fresh interpreter with exactly the environment a test gives."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

PROJECT = "mysite"
CONFIGURE_LINES = "\nfrom pulumi_django_runtime import configure\nconfigure(globals())\n"
# Variables the kit reads; none may leak in from the caller's shell.
KIT_VARIABLE_PREFIXES = ("DJANGO_", "DATABASE_", "REDIS_", "STATIC_", "MEDIA_", "AWS_")


def start_project(parent: Path) -> Path:
    """`django-admin startproject mysite` in `parent`; the directory holding manage.py."""
    subprocess.run(
        [sys.executable, "-m", "django", "startproject", PROJECT],
        cwd=parent,
        check=True,
        timeout=60,
    )
    return parent / PROJECT


def settings_path(project: Path) -> Path:
    return project / PROJECT / "settings.py"


def stock_settings(project: Path) -> dict[str, Any]:
    """The names the stock settings module defines, as `globals()` holds them."""
    path = settings_path(project)
    namespace: dict[str, Any] = {"__file__": str(path), "__name__": f"{PROJECT}.settings"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - our own file
    return {name: value for name, value in namespace.items() if name.isupper()}


def add_configure(project: Path) -> None:
    """The documented step: the kit's two lines at the end of settings.py."""
    path = settings_path(project)
    path.write_text(path.read_text() + CONFIGURE_LINES)


def kit_environment(**variables: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(KIT_VARIABLE_PREFIXES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, "DJANGO_SETTINGS_MODULE": f"{PROJECT}.settings", **variables}


def run_django(project: Path, code: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """`code` after `django.setup()` in `project`, with only `variables` of the kit's set."""
    return subprocess.run(
        [sys.executable, "-c", f"import django\ndjango.setup()\n{code}"],
        cwd=project,
        env=kit_environment(**variables),
        capture_output=True,
        text=True,
        timeout=120,
    )
