"""Stock Django projects made by `django-admin startproject` in a test's directory, shaped unlike
the example app, and the edits a user would make to them."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

# Where `stock_project` makes its projects; removed when the process exits.
_TEMPLATES = tempfile.TemporaryDirectory(prefix="django-startproject-")


def start_project(parent: Path, name: str = "mysite") -> Path:
    """`django-admin startproject NAME` in `parent`; the project directory (holding manage.py).
    A copy of the one project this process made: startproject is an interpreter's start-up
    and Django's import, every time. Copied with new modification times, as a new project's."""
    project = parent / name
    shutil.copytree(stock_project(name), project, copy_function=shutil.copy)
    return project


@cache
def stock_project(name: str) -> Path:
    """The project `django-admin startproject NAME` makes, made once per process."""
    parent = Path(_TEMPLATES.name) / name
    parent.mkdir()
    subprocess.run([sys.executable, "-m", "django", "startproject", name], cwd=parent, check=True)
    return parent / name


def split_settings(project: Path, name: str = "mysite") -> None:
    """The settings module as a package, as Wagtail lays it out: `settings/base.py` (the stock
    settings), `settings/dev.py` named by manage.py and `settings/production.py` named by
    wsgi.py and asgi.py."""
    package = project / name / "settings"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (project / name / "settings.py").rename(package / "base.py")
    # base.py is one level deeper now: BASE_DIR must still be the project directory.
    base = package / "base.py"
    base.write_text(
        base.read_text().replace(
            "Path(__file__).resolve().parent.parent",
            "Path(__file__).resolve().parent.parent.parent",
        )
    )
    (package / "dev.py").write_text("from .base import *  # noqa: F403\n")
    (package / "production.py").write_text(
        "from .base import *  # noqa: F403\n"
        "DEBUG = False\n"
        "STATIC_ROOT = BASE_DIR / 'collected'  # noqa: F405\n"
    )
    for path, module in (
        (project / "manage.py", f"{name}.settings.dev"),
        (project / name / "wsgi.py", f"{name}.settings.production"),
        (project / name / "asgi.py", f"{name}.settings.production"),
    ):
        path.write_text(path.read_text().replace(f"'{name}.settings'", f"'{module}'"))


def files_under(directory: Path) -> set[Path]:
    """Every file below `directory`: what a probe must leave unchanged."""
    return {path for path in directory.rglob("*") if path.is_file()}
