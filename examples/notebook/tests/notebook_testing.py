"""Running the Notebook app and pulumi-django's commands on it, with nothing from the caller's
shell leaking into what the app reads."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pulumi_django.cli import main
from pulumi_django.cli.rehearsal.sources import build_variant

APP_DIR = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PRODUCTION_SETTINGS = "notebook.settings.production"
APP_VARIABLE_PREFIXES = ("DJANGO_", "DATABASE_", "REDIS_", "STATIC_", "MEDIA_")
# Bytecode of the app and of Django, kept across runs but outside the source tree.
PYCACHE = Path(tempfile.gettempdir()) / "notebook-tests-pycache"
_database_names = itertools.count(1)


def clean_environment(**variables: str) -> dict[str, str]:
    """The caller's environment without any app variable, plus `variables` and the venv first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(APP_VARIABLE_PREFIXES)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPYCACHEPREFIX=str(PYCACHE),
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE=PRODUCTION_SETTINGS,
    )
    return {**env, **variables}


def new_database_name() -> str:
    return f"notebook_{next(_database_names)}"


def run(
    command: list[str], env: dict[str, str], cwd: Path = APP_DIR
) -> subprocess.CompletedProcess[str]:
    """A command in `cwd`; the caller checks the outcome."""
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def manage_ok(app_dir: Path, env: dict[str, str], *args: str) -> str:
    result = run([sys.executable, "manage.py", *args], env, cwd=app_dir)
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def collect_static(static_root: Path) -> dict[str, str]:
    """`collectstatic` as the image build runs it (no secret, database or cache): the manifest's
    map of each file to its hashed name."""
    env = clean_environment(STATIC_ROOT=str(static_root))
    manage_ok(APP_DIR, env, "collectstatic", "--no-input")
    return dict(json.loads((static_root / "staticfiles.json").read_text())["paths"])


def pulumi_django(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `pulumi-django` command, run in the app's directory as its user would."""
    return run([str(VENV_BIN / "pulumi-django"), *args], clean_environment())


def pulumi_django_here(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> subprocess.CompletedProcess[str]:
    """`pulumi_django(*args)` in this process, with the same directory and environment: a
    command whose subject is what it prints, not its process, without another interpreter
    importing the Pulumi SDK for seconds."""
    for name in os.environ:
        if name.startswith(APP_VARIABLE_PREFIXES):
            monkeypatch.delenv(name)
    for name, value in clean_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(APP_DIR)
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["pulumi-django", *args], code, captured.out, captured.err)


def release(name: str, root: Path) -> Path:
    """Release `name` of the app (its files plus the overlay), built under `root`."""
    return build_variant(APP_DIR, name, root / name)
