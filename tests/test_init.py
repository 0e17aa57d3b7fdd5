"""`pulumi-django init` on projects a user would have: a stock `django-admin startproject` project
in its own repository, and one with a settings package and only an ASGI entry point whose Pulumi
project lives in another directory. Each is init'ed, given the printed settings lines, then
planned offline; the Dockerfile written is checked instruction by instruction and its
collectstatic step run as the build runs it."""

from __future__ import annotations

import ast
import contextlib
import importlib.metadata
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml
from django_projects import split_settings, start_project
from dockerfile_stages import Stage, stages
from hypothesis import given
from hypothesis import strategies as st
from shared_files import made_once

from pulumi_django.build_context import is_ignored, read_dockerignore
from pulumi_django.cli import main, scaffold
from pulumi_django.cli.commands.init import (
    dockerfile_shortfalls,
    install_command,
    project_relative,
    shell_path,
)
from pulumi_django.cli.stackfile import load_stack_file, read_stack_config
from pulumi_django.config import StackConfig
from pulumi_django.config.app import SECRET_LOOKING, AppConfig

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = AppConfig()
KIT = scaffold.runtime_kit_requirement()
STOCK_FILES = {
    "Pulumi.yaml",
    "__main__.py",
    ".gitignore",
    "Pulumi.dev.yaml",
    "Dockerfile",
    ".dockerignore",
}
# The Pulumi project's files: written only where there is none, never replaced.
PROJECT_FILES = {"Pulumi.yaml", "__main__.py", ".gitignore"}


def without_ambient_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    """Init reads these from the environment; the tests decide them."""
    for name in ("DJANGO_SETTINGS_MODULE", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _no_ambient_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    without_ambient_choices(monkeypatch)


def init(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert main(["init", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def init_fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    assert main(["init", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def apply_settings_lines(report: dict[str, Any]) -> None:
    """What the user does with the printed lines: add them to the end of the settings."""
    settings = Path(report["settingsFile"])
    settings.write_text(settings.read_text() + "\n" + "\n".join(report["settingsLines"]) + "\n")


def make_asgi_only(app: Path) -> None:
    """A settings package (manage.py names `settings.dev`, asgi.py `settings.production`, which
    sets its own STATIC_ROOT), an ASGI_APPLICATION and no WSGI entry point at all, and a
    requirements.txt of the user's without a final newline."""
    split_settings(app, "mysite")
    base = app / "mysite" / "settings" / "base.py"
    base.write_text(
        base.read_text().replace(
            "WSGI_APPLICATION = 'mysite.wsgi.application'",
            "ASGI_APPLICATION = 'mysite.asgi.application'",
        )
    )
    (app / "mysite" / "wsgi.py").unlink()
    (app / "requirements.txt").write_text(f"# the app's\nDjango=={_django_version()}")


def _django_version() -> str:
    return importlib.metadata.version("django")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two projects as `startproject` (and the edits) left them; each test gets a copy."""
    stock = start_project(tmp_path_factory.mktemp("stock"))
    asgi = Path(shutil.copytree(stock, tmp_path_factory.mktemp("asgi") / "mysite"))
    make_asgi_only(asgi)
    return {"stock": stock, "asgi": asgi}


def copy_of(shapes: dict[str, Path], shape: str, parent: Path) -> Path:
    return Path(shutil.copytree(shapes[shape], parent / "mysite"))


@pytest.fixture(scope="module")
def initialized(
    shapes: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each shape init'ed in its own directory (`init --app APP --cwd APP --json`), once for
    the tests that only read what it wrote (each init imports the app in an interpreter of its
    own): the project and the report. A test that changes it works on a copy."""

    def make(directory: Path) -> dict[str, tuple[Path, dict[str, Any]]]:
        done: dict[str, tuple[Path, dict[str, Any]]] = {}
        with pytest.MonkeyPatch.context() as monkeypatch:
            without_ambient_choices(monkeypatch)
            for shape in shapes:
                (directory / shape).mkdir()
                app = copy_of(shapes, shape, directory / shape)
                printed = io.StringIO()
                with contextlib.redirect_stdout(printed):
                    assert main(["init", "--app", str(app), "--cwd", str(app), "--json"]) == 0
                done[shape] = app, json.loads(printed.getvalue())
        return done

    return made_once(tmp_path_factory, "init-initialized", make)


def initialized_copy(
    initialized: dict[str, tuple[Path, dict[str, Any]]], shape: str, parent: Path
) -> tuple[Path, dict[str, Any]]:
    """A copy of the init'ed `shape` under `parent`, and its report's settings file there."""
    app, report = initialized[shape]
    copy = Path(shutil.copytree(app, parent / "mysite"))
    settings = copy / Path(report["settingsFile"]).relative_to(app)
    return copy, {**report, "settingsFile": str(settings)}


@pytest.fixture
def stock(shapes: dict[str, Path], tmp_path: Path) -> Path:
    return copy_of(shapes, "stock", tmp_path)


def runtime_stage(app: Path) -> Stage:
    return stages((app / "Dockerfile").read_text())[-1]


def test_a_stock_project_in_its_own_repository_gets_a_pulumi_project_and_a_valid_stack(
    initialized: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    stock, report = initialized["stock"]

    written = {Path(path).name for path in report["written"]}
    assert written == {*STOCK_FILES, "requirements.txt"}
    assert all(Path(path).parent == stock for path in report["written"])
    assert report["settingsFile"] == str(stock / "mysite" / "settings.py")
    assert report["settingsLines"] == [
        "from pulumi_django_runtime import configure",
        "configure(globals())",
    ]
    config = read_stack_config(stock, "dev")
    assert (config.target, config.name) == ("aws", "mysite-dev")
    assert config.app.context == "."
    assert config.app.settings_module == "mysite.settings"
    assert config.app.wsgi_app == "mysite.wsgi:application"
    assert config.app.asgi_app == "mysite.asgi:application"
    assert config.app.server == "gunicorn"
    assert config.app.static_root == DEFAULTS.static_root  # the stock settings set none
    assert (config.fleet.desired_count, config.database.multi_az) == (1, False)
    stack_file = load_stack_file(stock, "dev")
    assert stack_file.project == "mysite"
    assert stack_file.program == stock / "__main__.py"
    project = yaml.safe_load((stock / "Pulumi.yaml").read_text())
    assert project["runtime"] == {
        "name": "python",
        "options": {"toolchain": "pip", "virtualenv": sys.prefix},
    }


def test_the_stock_requirements_pin_the_apps_django_and_add_what_the_image_needs(
    initialized: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    stock, _ = initialized["stock"]
    lines = (stock / "requirements.txt").read_text().splitlines()
    assert lines[0] == f"Django=={_django_version()}"
    assert KIT in lines
    names = {scaffold.requirement_name(line) for line in lines}
    assert {"gunicorn", "psycopg", "redis"} <= names
    assert "uvicorn" not in names


def test_a_settings_package_with_only_asgi_gets_uvicorn_and_its_production_settings(
    shapes: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = copy_of(shapes, "asgi", tmp_path)
    project = tmp_path / "deploy"
    project.mkdir()
    report = init(
        capsys,
        *("--app", str(app), "--cwd", str(project), "--stack", "staging", "--target", "local"),
        *("--python", sys.executable),
    )

    assert {Path(path) for path in report["written"]} == {
        project / "Pulumi.yaml",
        project / "__main__.py",
        project / ".gitignore",
        project / "Pulumi.staging.yaml",
        app / "Dockerfile",
        app / ".dockerignore",
        app / "requirements.txt",
    }
    assert report["settingsFile"] == str(app / "mysite" / "settings" / "production.py")
    config = read_stack_config(project, "staging")
    assert (config.target, config.name) == ("local", "mysite-staging")
    assert config.app.context == "../mysite"
    assert config.app.settings_module == "mysite.settings.production"
    assert config.app.server == "uvicorn"
    assert config.app.asgi_app == "mysite.asgi:application"
    assert config.app.static_root == "/app/collected"
    assert config.app.python == sys.executable  # outside the project: kept absolute
    assert config.local.replicas == 2
    requirements = (app / "requirements.txt").read_text()
    assert requirements.startswith(f"# the app's\nDjango=={_django_version()}\n")
    assert KIT in requirements.splitlines()
    assert "uvicorn>=0.30" in requirements.splitlines()
    ignored = (app / ".dockerignore").read_text().splitlines()
    assert "collected/" in ignored
    assert "__main__.py" not in ignored  # the Pulumi program is not in the app's directory


def test_a_production_stack_keeps_the_secure_defaults_and_a_dev_stack_relaxes_as_the_repo_does(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "prod")
    init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "dev")
    init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "box", "--target", "local")

    prod, defaults = read_stack_config(stock, "prod"), StackConfig(target="aws")
    assert prod.name == "mysite-prod"
    for section in ("fleet", "database", "cache", "network"):
        assert getattr(prod, section) == getattr(defaults, section), section
    for stack, repository_stack, sections in (
        ("dev", "dev", ("fleet", "database", "cache", "network")),
        ("box", "local", ("fleet", "local")),
    ):
        written = yaml.safe_load((stock / f"Pulumi.{stack}.yaml").read_text())["config"]
        shipped = yaml.safe_load((ROOT / f"Pulumi.{repository_stack}.yaml").read_text())["config"]
        for section in sections:
            assert written[f"django:{section}"] == shipped[f"django:{section}"], section


def test_wagtails_layout_gets_its_production_settings_though_they_set_no_secret_key(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As `wagtail start` lays it out: manage.py and wsgi.py both name `settings.dev`, and only
    dev.py sets a SECRET_KEY (production.py leaves it to the deployment)."""
    split_settings(stock)
    settings = stock / "mysite" / "settings"
    for entry in ("wsgi.py", "asgi.py"):
        path = stock / "mysite" / entry
        path.write_text(path.read_text().replace("settings.production", "settings.dev"))
    base = (settings / "base.py").read_text()
    (key,) = [line for line in base.splitlines() if line.startswith("SECRET_KEY")]
    (settings / "base.py").write_text(base.replace(key, ""))
    (settings / "dev.py").write_text((settings / "dev.py").read_text() + key + "\n")

    report = init(capsys, "--app", str(stock), "--cwd", str(stock))

    assert read_stack_config(stock, "dev").app.settings_module == "mysite.settings.production"
    assert report["settingsFile"] == str(settings / "production.py")


def test_an_explicit_settings_module_in_the_environment_is_used_as_given(
    stock: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (stock / "mysite" / "live.py").write_text("from .settings import *  # noqa: F403\n")
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "mysite.live")
    report = init(capsys, "--app", str(stock), "--cwd", str(stock))
    assert read_stack_config(stock, "dev").app.settings_module == "mysite.live"
    assert report["settingsFile"] == str(stock / "mysite" / "live.py")


def test_nothing_is_overwritten_without_force(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    init(capsys, "--app", str(stock), "--cwd", str(stock))
    (stock / "Pulumi.dev.yaml").write_text("# mine\nconfig:\n  django:target: local\n")
    before = {path: path.read_text() for path in stock.iterdir() if path.is_file()}

    again = init(capsys, "--app", str(stock), "--cwd", str(stock))

    assert again["written"] == []  # requirements.txt already lists everything
    # The Pulumi project exists now: it is the user's, neither rewritten nor reported.
    replaceable = STOCK_FILES - PROJECT_FILES
    assert {Path(item["path"]).name for item in again["skipped"]} == replaceable
    assert {path: path.read_text() for path in stock.iterdir() if path.is_file()} == before

    forced = init(capsys, "--app", str(stock), "--cwd", str(stock), "--force")
    assert {Path(path).name for path in forced["written"]} == replaceable
    assert read_stack_config(stock, "dev").target == "aws"
    for unchanged in ("requirements.txt", *PROJECT_FILES):
        assert (stock / unchanged).read_text() == before[stock / unchanged]


def test_an_existing_dockerfile_is_kept_with_what_it_lacks(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (stock / "Dockerfile").write_text("FROM python:3.12\nCOPY . /code\nCMD gunicorn x\n")
    report = init(capsys, "--app", str(stock), "--cwd", str(stock))
    (kept,) = report["skipped"]
    assert kept["path"] == str(stock / "Dockerfile")
    assert kept["reason"] == (
        'exists but lacks VOLUME ["/tmp"] (the root filesystem is read-only); '
        "collectstatic at build time; --force replaces it"
    )
    assert (stock / "Dockerfile").read_text().startswith("FROM python:3.12\n")


WAGTAIL_DOCKERFILE = """\
FROM python:3.12-slim-bookworm
RUN apt-get update --yes --quiet && apt-get install --yes --quiet --no-install-recommends \\
    build-essential \\
    libpq-dev \\
 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /
RUN pip install -r /requirements.txt
ENV DJANGO_SETTINGS_MODULE=mysite.settings
COPY . /app
RUN python manage.py collectstatic --noinput --clear
VOLUME ["/tmp"]
"""
LACKS_GIT = "git before pip install (a requirement is a git+ URL: apt-get install git)"


@pytest.mark.parametrize(
    ("dockerfile", "requirements", "lacks_git"),
    [
        (WAGTAIL_DOCKERFILE, None, True),  # the kit's line init adds is a git+ URL
        (WAGTAIL_DOCKERFILE.replace("libpq-dev", "libpq-dev git"), None, False),
        # The kit from an index: nothing needs git.
        (WAGTAIL_DOCKERFILE, "pulumi-django-runtime[aws]==0.1\n", False),
        (
            WAGTAIL_DOCKERFILE.replace("RUN apt-get", "RUN apk add --no-cache git && apt-get"),
            None,
            False,
        ),
    ],
    ids=["wagtail", "with-git", "kit-from-an-index", "apk"],
)
def test_a_kept_dockerfile_that_installs_git_requirements_without_git_is_said_to_lack_it(
    stock: Path,
    capsys: pytest.CaptureFixture[str],
    dockerfile: str,
    requirements: str | None,
    lacks_git: bool,
) -> None:
    (stock / "Dockerfile").write_text(dockerfile)
    if requirements:
        (stock / "requirements.txt").write_text(requirements)
    report = init(capsys, "--app", str(stock), "--cwd", str(stock))
    (kept,) = [item for item in report["skipped"] if item["path"] == str(stock / "Dockerfile")]
    lacks = f" but lacks {LACKS_GIT}" if lacks_git else ""
    assert kept["reason"] == f"exists{lacks}; --force replaces it"


def test_the_written_dockerfile_installs_git_for_the_kits_git_requirement(
    initialized: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    stock, _ = initialized["stock"]
    requirements = (stock / "requirements.txt").read_text().splitlines()
    assert any(line.startswith("pulumi-django-runtime[aws] @ git+") for line in requirements)
    written = stock / "Dockerfile"
    assert dockerfile_shortfalls(written, "mysite.settings", needs_git=True) == []
    builder = stages(written.read_text())[0]
    assert builder.position("RUN", "install --yes --no-install-recommends git") < builder.position(
        "RUN", "pip install"
    )


def test_the_written_dockerignore_keeps_out_what_is_not_the_app_once_each(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (stock / ".venv").mkdir()
    (stock / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # the app's virtualenv
    init(capsys, "--app", str(stock), "--cwd", str(stock))

    lines = [
        line
        for line in (stock / ".dockerignore").read_text().splitlines()
        if not line.startswith("#")
    ]
    normalized = [line.rstrip("/") for line in lines]
    assert len(normalized) == len(set(normalized)), lines
    patterns = read_dockerignore(stock)
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "releases/v2/release.toml",
        "Pulumi.dev.yaml",
        "media/upload.png",
        "mysite/__pycache__/settings.cpython-312.pyc",
    ):
        assert is_ignored(path, patterns), path
    for path in ("manage.py", "mysite/settings.py", "requirements.txt"):
        assert not is_ignored(path, patterns), path


@pytest.mark.parametrize(
    ("dockerignore", "lacks"),
    [
        (".git\n", "Pulumi.*.yaml, .venv/, releases/ (they would enter the image)"),
        ("**/.git\n.venv\nPulumi.*\nreleases\n", None),
        ("*\n!mysite\n!manage.py\n", None),  # an allow-list
    ],
    ids=["only-git", "all-of-them", "allow-list"],
)
def test_an_existing_dockerignore_is_kept_with_the_entries_it_lacks(
    stock: Path, capsys: pytest.CaptureFixture[str], dockerignore: str, lacks: str | None
) -> None:
    (stock / ".dockerignore").write_text(dockerignore)
    report = init(capsys, "--app", str(stock), "--cwd", str(stock))
    (kept,) = [item for item in report["skipped"] if item["path"].endswith(".dockerignore")]
    assert kept["reason"] == (f"exists but lacks {lacks}" if lacks else "exists") + (
        "; --force replaces it"
    )
    assert (stock / ".dockerignore").read_text() == dockerignore


def test_settings_that_already_call_configure_need_no_line(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stock / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\nimport pulumi_django_runtime\n")
    partly = init(capsys, "--app", str(stock), "--cwd", str(stock))
    assert partly["settingsLines"] == ["pulumi_django_runtime.configure(globals())"]

    apply_settings_lines(partly)
    capsys.readouterr()
    assert main(["init", "--app", str(stock), "--cwd", str(stock)]) == 0
    text = capsys.readouterr().out
    assert "already calls pulumi_django_runtime.configure" in text
    assert "Add to the end" not in text


def test_the_text_report_lists_files_then_settings_lines_then_the_next_commands(
    stock: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(stock)
    assert main(["init"]) == 0
    text = capsys.readouterr().out
    written = text.index("Written:")
    settings = text.index(f"Add to the end of {Path('mysite', 'settings.py')}:")
    then = text.index("Then:")
    assert written < settings < then
    for name in STOCK_FILES:
        assert f"\n  {name}" in text[written:settings]
    assert "  from pulumi_django_runtime import configure\n  configure(globals())\n" in text
    steps = text[then:].splitlines()[1:]
    assert steps[0].endswith("-m pip install -r requirements.txt")
    assert steps[1:] == [
        "  2. pulumi-django plan --stack dev",
        "  3. pulumi stack select --create dev",
        "  4. pulumi up",
    ]

    # From the app, with the Pulumi project elsewhere: every command names it.
    (stock.parent / "infra").mkdir()
    assert main(["init", "--cwd", "../infra", "--stack", "prod"]) == 0
    text = capsys.readouterr().out
    assert text[text.index("Then:") :].splitlines()[2:] == [
        "  2. pulumi-django plan --stack prod --cwd ../infra",
        "  3. pulumi stack select --create prod --cwd ../infra",
        "  4. pulumi up --cwd ../infra",
    ]


@pytest.mark.parametrize(
    ("made_by", "expected"),
    [
        ("uv", "uv pip install --python {python} -r requirements.txt"),
        (
            "venv --without-pip",
            "{python} -m ensurepip && {python} -m pip install -r requirements.txt",
        ),
    ],
)
def test_the_install_step_works_in_a_virtualenv_without_pip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, made_by: str, expected: str
) -> None:
    """uv's virtualenvs have no pip, so `python -m pip` would fail there: the step says what
    does install into them."""
    monkeypatch.chdir(tmp_path)
    venv.create(tmp_path / ".venv", with_pip=False)
    if made_by == "uv":
        with (tmp_path / ".venv" / "pyvenv.cfg").open("a") as config:
            config.write("uv = 0.13.9\n")
    python = str(tmp_path / ".venv" / "bin" / "python")
    shown = str(Path(".venv", "bin", "python"))
    assert install_command(python, "-r requirements.txt") == expected.format(python=shown)
    # With pip in it, the same virtualenv gets the plain command.
    (site_packages,) = (tmp_path / ".venv" / "lib").glob("python3*/site-packages")
    (site_packages / "pip").mkdir()
    (site_packages / "pip" / "__init__.py").write_text("")
    assert install_command(python, "-r requirements.txt") == (
        f"{shown} -m pip install -r requirements.txt"
    )


def test_a_new_pulumi_project_gets_a_gitignore_for_virtualenvs_and_an_existing_one_is_kept(
    stock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "deploy"
    (project / "env").mkdir(parents=True)
    (project / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtualenv of its own
    report = init(capsys, "--app", str(stock), "--cwd", str(project))
    assert str(project / ".gitignore") in report["written"]
    ignored = (project / ".gitignore").read_text().splitlines()
    assert {".venv/", "env/", "__pycache__/"} <= set(ignored)

    mine = stock / ".gitignore"
    mine.write_text("*.log\n")
    report = init(capsys, "--app", str(stock), "--cwd", str(stock))
    assert str(stock / "Pulumi.yaml") in report["written"]
    assert str(mine) not in report["written"]
    assert str(mine) not in [item["path"] for item in report["skipped"]]
    assert mine.read_text() == "*.log\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--target", "gcp"], r"--target gcp: unknown target; choose aws or local"),
        (["--stack", "dev/1"], r"--stack 'dev/1': not a stack name"),
        (["--app", "{tmp}/nowhere"], r"--app .*/nowhere: no manage.py in .*nowhere"),
        (["--python", "{tmp}/no-python"], r"--python: interpreter .*/no-python: no such file"),
        (
            ["--python", "{tmp}"],
            r"--python: interpreter (?P<dir>\S+): is a directory; pass (?P=dir)/bin/python",
        ),
    ],
)
def test_bad_input_is_one_line_naming_the_flag(
    stock: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    arguments: list[str],
    message: str,
) -> None:
    defaults = ["--app", str(stock), "--cwd", str(stock)]
    error = init_fails(capsys, *defaults, *(arg.format(tmp=tmp_path) for arg in arguments))
    assert re.fullmatch(rf"pulumi-django init: error: {message}.*\n", error)
    assert not (stock / "Pulumi.dev.yaml").exists()


def test_settings_that_do_not_import_name_the_module_and_the_error(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = stock / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + "\nraise RuntimeError('no SECRET in this shell')\n")
    error = init_fails(capsys, "--app", str(stock), "--cwd", str(stock))
    assert error.count("\n") == 1
    assert "mysite.settings" in error
    assert error.rstrip().endswith("RuntimeError: no SECRET in this shell")
    assert not (stock / "Dockerfile").exists()


WRONG_INTERPRETER = "pass --python PATH, the interpreter of the app's environment"


@pytest.mark.parametrize(
    ("addition", "fails"),
    [
        ("INSTALLED_APPS += ['wagtail']\n", "do not load their INSTALLED_APPS"),
        ("import wagtail\n", "do not import"),
    ],
    ids=["an-installed-app", "an-import"],
)
def test_settings_needing_what_the_interpreter_lacks_stop_init_asking_for_the_apps_python(
    stock: Path, capsys: pytest.CaptureFixture[str], addition: str, fails: str
) -> None:
    """Wagtail's settings in pulumi-django's interpreter: init must not go on to describe the
    app, and pick its image's Python, from the wrong interpreter."""
    settings = stock / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + addition)
    without = init_fails(capsys, "--app", str(stock), "--cwd", str(stock))
    assert without == (
        f"pulumi-django init: error: settings mysite.settings {fails} with {sys.executable} "
        f"(ModuleNotFoundError: No module named 'wagtail'); {WRONG_INTERPRETER}, or install "
        "the app's requirements into this one\n"
    )
    given = init_fails(capsys, "--app", str(stock), "--cwd", str(stock), "--python", sys.executable)
    assert given.rstrip().endswith(
        "(ModuleNotFoundError: No module named 'wagtail'); install the app's requirements into it"
    )
    assert {path.name for path in stock.iterdir()} == {"manage.py", "mysite"}


def test_a_relative_python_names_the_file_from_where_init_runs_not_from_the_app(
    stock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app is probed in its own directory: a relative `--python` is the file it names from
    the shell's directory, and the stack file records that one."""
    wrapper = tmp_path / "env" / "bin" / "python"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    wrapper.chmod(0o755)
    project = tmp_path / "deploy"
    project.mkdir()
    monkeypatch.chdir(tmp_path / "env")
    init(capsys, "--app", str(stock), "--cwd", str(project), "--python", "bin/../bin/python")
    assert f"python: {wrapper}\n" in (project / "Pulumi.dev.yaml").read_text()
    monkeypatch.chdir(stock)
    assert "--python: give the app's interpreter" in init_usage_error(capsys, "--python", "")


def python_wrapper(path: Path) -> Path:
    """An interpreter of the app's environment at `path`: this Python, under another name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    path.chmod(0o755)
    return path


def test_a_second_init_reuses_the_interpreter_a_stack_records_for_the_app(
    stock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init --python` once; `init` for another stack or target then needs no `--python`: it
    probes the app with the recorded interpreter and records it again. Stacks that disagree,
    or a recorded interpreter that is gone, are one line saying what to do."""
    venv = python_wrapper(stock / ".venv" / "bin" / "python")
    init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "local",
         "--target", "local", "--python", str(venv))  # fmt: skip
    assert "python: .venv/bin/python\n" in (stock / "Pulumi.local.yaml").read_text()

    report = init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "prod")
    assert report["app"]["python"] == str(venv)
    assert report["app"]["pythonFrom"] == "django:app.python in Pulumi.local.yaml"
    assert "python: .venv/bin/python\n" in (stock / "Pulumi.prod.yaml").read_text()
    assert main(["init", "--app", str(stock), "--cwd", str(stock), "--stack", "dev"]) == 0
    shown = shell_path(str(venv))  # as short as it can be written from where the test runs
    assert f"{shown}, from django:app.python in Pulumi.local.yaml):" in capsys.readouterr().out

    # Another app's stack in the same project does not count.
    other = python_wrapper(tmp_path / "other" / "bin" / "python")
    text = (stock / "Pulumi.dev.yaml").read_text().replace(".venv/bin/python", str(other))
    (stock / "Pulumi.dev.yaml").write_text(text)
    assert init_fails(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "ci") == (
        "pulumi-django init: error: the project's stacks record different interpreters for the "
        f"app ({other} in Pulumi.dev.yaml, {venv} in Pulumi.local.yaml); pass --python PATH\n"
    )
    (stock / "Pulumi.dev.yaml").write_text(text.replace("context: .", "context: elsewhere"))
    rerun = init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "ci")
    assert rerun["app"]["python"] == str(venv)

    # A stack file that does not load, or whose config is invalid, is passed over, and said so.
    (stock / "Pulumi.broken.yaml").write_text("config:\n  django:app: [unclosed\n")
    (stock / "Pulumi.empty.yaml").write_text(
        "config:\n  django:target: local\n  django:app:\n    python: ''\n"
    )
    assert main(["init", "--app", str(stock), "--cwd", str(stock), "--stack", "qa"]) == 0
    captured = capsys.readouterr()
    assert f"{shown}, from django:app.python in Pulumi.ci.yaml):" in captured.out
    warnings = captured.err.splitlines()
    assert warnings[0].startswith(
        "pulumi-django init: warning: Pulumi.broken.yaml not read for the app's interpreter: "
    )
    assert warnings[1] == (
        "pulumi-django init: warning: Pulumi.empty.yaml not read for the app's interpreter: "
        "invalid stack config: django:app.python = '': String should have at least 1 character"
    )

    # Settings that need what the recorded interpreter lacks name the file that chose it.
    settings = stock / "mysite" / "settings.py"
    kept = settings.read_text()
    settings.write_text("import wagtail\n")
    assert init_fails(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "local") == (
        f"pulumi-django init: error: settings mysite.settings do not import with {venv} "
        "(django:app.python in Pulumi.local.yaml) (ModuleNotFoundError: No module named "
        "'wagtail'); install the app's requirements into it\n"
    )
    settings.write_text(kept)

    venv.unlink()
    assert init_fails(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "local") == (
        "pulumi-django init: error: django:app.python in Pulumi.local.yaml: interpreter "
        f"{venv}: no such file; fix it there or pass --python PATH\n"
    )
    given = init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "local",
                 "--python", sys.executable, "--force")  # fmt: skip
    assert given["app"]["python"] == sys.executable
    assert given["app"]["pythonFrom"] == "--python"


def test_an_interpreter_pulumi_yaml_gives_every_stack_is_credited_to_it(
    stock: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`django:app` in Pulumi.yaml's `config:` applies to every stack that does not set its own:
    its interpreter counts with no stack file yet, and is credited to Pulumi.yaml."""
    venv = python_wrapper(stock / "env" / "bin" / "python")
    (stock / "Pulumi.yaml").write_text(
        "name: mysite\nruntime: python\nconfig:\n  django:app:\n"
        "    value: {context: ., python: env/bin/python}\n"
    )
    (stock / "__main__.py").write_text("")
    report = init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "dev")
    assert (report["app"]["python"], report["app"]["pythonFrom"]) == (
        str(venv),
        "django:app.python in Pulumi.yaml",
    )
    again = init(capsys, "--app", str(stock), "--cwd", str(stock), "--stack", "prod")
    assert again["app"]["pythonFrom"] == "django:app.python in Pulumi.yaml"

    (stock / "Pulumi.yaml").write_text(
        "name: mysite\nruntime: python\nconfig:\n  django:app:\n    value: {python: 42}\n"
    )
    capsys.readouterr()
    assert main(["init", "--app", str(stock), "--cwd", str(stock), "--stack", "qa"]) == 0
    assert capsys.readouterr().err.startswith(
        "pulumi-django init: warning: Pulumi.yaml not read for the app's interpreter: "
    )


def init_usage_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """What argparse says of a bad flag (exit 2, the usage first)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["init", *args])
    assert exited.value.code == 2
    return capsys.readouterr().err


def test_an_interpreter_without_django_is_named_with_the_python_flag(
    stock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bare = tmp_path / "bare-python"  # this Python without its site-packages, so without Django
    bare.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -S "$@"\n')
    bare.chmod(0o755)
    given = init_fails(capsys, "--app", str(stock), "--cwd", str(stock), "--python", str(bare))
    assert given == (
        f"pulumi-django init: error: --python: interpreter {bare}: cannot import Django; "
        "install the app's requirements into it or point to the app's environment\n"
    )
    monkeypatch.setattr(sys, "executable", str(bare))  # init run by a Python without Django
    default = init_fails(capsys, "--app", str(stock), "--cwd", str(stock))
    assert default == (
        f"pulumi-django init: error: interpreter {bare}: cannot import Django; install the "
        f"app's requirements into it or point to the app's environment, or {WRONG_INTERPRETER}\n"
    )


def test_a_settings_module_from_the_environment_that_does_not_exist_is_blamed_on_the_variable(
    stock: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "othersite.settings")
    error = init_fails(capsys, "--app", str(stock), "--cwd", str(stock))
    assert error == (
        "pulumi-django init: error: settings othersite.settings (from the DJANGO_SETTINGS_MODULE "
        f"environment variable) do not import with {sys.executable} (ModuleNotFoundError: No "
        "module named 'othersite'); unset DJANGO_SETTINGS_MODULE or set it to the app's "
        "settings module\n"
    )


def test_a_pyproject_app_installs_its_declared_dependencies_and_is_not_edited(
    stock: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pyproject = stock / "pyproject.toml"
    pyproject.write_text('[project]\nname = "mysite"\ndependencies = ["Django>=5.2", "redis"]\n')
    report = init(capsys, "--app", str(stock), "--cwd", str(stock))

    assert "requirements.txt" not in {Path(path).name for path in report["written"]}
    assert not (stock / "requirements.txt").exists()
    builder = stages((stock / "Dockerfile").read_text())[0]
    (install,) = [run for run in builder.all("RUN") if "pip install" in run]
    assert json.dumps(KIT) in install
    assert '"redis>=5"' not in install  # the project already depends on redis
    assert '"gunicorn>=23"' in install
    # The extraction runs as written, here against a copy of the project's file.
    extract = install.split(" > ")[0].replace("/tmp/pyproject.toml", str(pyproject))
    listed = subprocess.run(["sh", "-c", extract], capture_output=True, text=True, check=True)
    assert listed.stdout.split() == ["Django>=5.2", "redis"]


@pytest.mark.parametrize("shape", ["stock", "asgi"])
def test_the_dockerfile_builds_in_two_stages_and_runs_what_the_stack_says(
    initialized: dict[str, tuple[Path, dict[str, Any]]], shape: str
) -> None:
    app, _ = initialized[shape]
    config = read_stack_config(app, "dev")
    dockerfile = (app / "Dockerfile").read_text()
    builder, runtime = stages(dockerfile)

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert f"ARG PYTHON_IMAGE=python:{python}-slim-bookworm" in dockerfile
    assert builder.name and runtime.name
    assert builder.position("RUN", "--no-install-recommends git") < builder.position(
        "RUN", "pip install -r /tmp/requirements.txt"
    )
    assert not any("pip install" in run for run in runtime.all("RUN"))
    assert f"--from={builder.name} /venv /venv" in runtime.all("COPY")
    (user,) = runtime.all("USER")
    assert user == "10001:10001"
    assert any("--uid 10001" in run for run in runtime.all("RUN"))
    assert runtime.position("RUN", "collectstatic --noinput") < runtime.position("USER")
    assert runtime.all("WORKDIR") == ["/app"]
    assert runtime.env()["DJANGO_SETTINGS_MODULE"] == config.app.settings_module
    assert runtime.env()["STATIC_ROOT"] == config.app.static_root
    assert runtime.all("VOLUME") == ['["/tmp"]']
    assert runtime.all("EXPOSE") == [str(config.app.port)]
    (health,) = runtime.all("HEALTHCHECK")
    assert f"http://127.0.0.1:{config.app.port}{config.app.health_check_path}'" in health
    argv = json.loads(runtime.all("CMD")[0])
    served = config.app.wsgi_app if config.app.server == "gunicorn" else config.app.asgi_app
    assert argv[:2] == [config.app.server, served]
    for stage in stages(dockerfile):
        assert not any(SECRET_LOOKING.search(name) for name in stage.env())


@pytest.mark.parametrize("shape", ["stock", "asgi"])
def test_collectstatic_as_the_build_runs_it_writes_hashed_files_under_production_settings(
    initialized: dict[str, tuple[Path, dict[str, Any]]], shape: str, tmp_path: Path
) -> None:
    app, report = initialized_copy(initialized, shape, tmp_path)
    apply_settings_lines(report)
    runtime = runtime_stage(app)
    (command,) = [run for run in runtime.all("RUN") if "collectstatic" in run]
    collected = tmp_path / "collected"
    image_env = {**runtime.env(), "STATIC_ROOT": str(collected), "PYTHONPATH": str(app)}
    # Only what the image has: its ENV, the venv first on PATH; no secret, database or cache.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))},
        **image_env,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    }
    build = subprocess.run(
        ["sh", "-c", command], cwd=app, env=env, capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, build.stderr

    manifest = json.loads((collected / "staticfiles.json").read_text())["paths"]
    hashed = manifest["admin/css/base.css"]
    assert re.fullmatch(r"admin/css/base\.[0-9a-f]{12}\.css", hashed)
    assert (collected / hashed).is_file()


def plan_json(capsys: pytest.CaptureFixture[str], project: Path) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["plan", "--stack", "dev", "--cwd", str(project), "--json", "-"])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("shape", "target"), [("stock", "aws"), ("asgi", "local")])
def test_with_the_settings_lines_the_written_stack_plans_offline_and_the_app_is_ready(
    shapes: dict[str, Path],
    shape: str,
    target: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = copy_of(shapes, shape, tmp_path)
    report = init(capsys, "--app", str(app), "--cwd", str(app), "--target", target)
    code, before = plan_json(capsys, app)
    assert code == 1 and before["appReadiness"]["errors"]  # as `startproject` left it

    apply_settings_lines(report)
    code, plan = plan_json(capsys, app)

    assert code == 0
    assert (plan["project"], plan["stack"], plan["target"]) == ("mysite", "dev", target)
    readiness = plan["appReadiness"]
    assert (readiness["ready"], readiness["errors"], readiness["warnings"]) == (True, [], [])
    assert readiness["settingsModule"] == read_stack_config(app, "dev").app.settings_module
    assert all(step["ordered"] is not False for step in plan["releaseOrder"])
    assert plan["migrationCheck"]["skipped"] is None
    assert plan["migrationCheck"]["appDir"] == str(app)


def test_the_written_program_is_the_repositorys_own_stack_program() -> None:
    """The program init writes and the repository's __main__.py build the same stack."""

    def statements(source: str) -> list[str]:
        body = ast.parse(source).body
        return [ast.dump(node) for node in body if not isinstance(node, ast.Expr)]

    written = scaffold.render_program(name="shop")
    assert statements(written) == statements((ROOT / "__main__.py").read_text())
    assert '"""The shop stack' in written


def _distribution(
    tmp_path: Path, direct_url: dict[str, Any] | None
) -> importlib.metadata.Distribution:
    info = tmp_path / "pulumi_django-1.4.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pulumi-django\nVersion: 1.4.0\n")
    if direct_url is not None:
        (info / "direct_url.json").write_text(json.dumps(direct_url))
    return importlib.metadata.PathDistribution(info)


def test_the_kit_comes_from_the_commit_pulumi_django_was_installed_from(tmp_path: Path) -> None:
    installed = _distribution(
        tmp_path,
        {
            "url": "https://github.com/acme/pulumi-django.git",
            "vcs_info": {"vcs": "git", "commit_id": "0123abcd" * 5, "requested_revision": "main"},
        },
    )
    assert scaffold.runtime_kit_requirement(installed) == (
        "pulumi-django-runtime[aws] @ git+https://github.com/acme/pulumi-django.git@"
        + "0123abcd" * 5
        + "#subdirectory=runtime"
    )


GIT_FROM_A_CLONE = {
    "url": "file:///tmp/pulumi-django",
    "vcs_info": {"vcs": "git", "commit_id": "89abcdef" * 5},
}


@pytest.mark.parametrize(
    "direct_url",
    [
        None,
        {"url": "file:///home/me/pulumi-django", "dir_info": {"editable": True}},
        GIT_FROM_A_CLONE,
    ],
    ids=["from-an-index", "from-a-path", "from-a-local-clone"],
)
def test_otherwise_the_kit_comes_from_the_release_tag(
    tmp_path: Path, direct_url: dict[str, Any] | None
) -> None:
    assert scaffold.runtime_kit_requirement(_distribution(tmp_path, direct_url)) == (
        "pulumi-django-runtime[aws] @ "
        "git+https://github.com/pulumi-django/pulumi-django@v1.4.0#subdirectory=runtime"
    )


@pytest.mark.parametrize(
    ("direct_url", "source"),
    [
        (GIT_FROM_A_CLONE, None),
        (
            {
                "url": "https://github.com/acme/pulumi-django.git",
                "vcs_info": {"vcs": "git", "commit_id": "0123abcd" * 5},
            },
            "git+https://github.com/acme/pulumi-django.git@" + "0123abcd" * 5,
        ),
    ],
    ids=["git-file-url", "git-https-url"],
)
def test_init_writes_a_kit_line_an_image_build_can_reach_and_warns_when_it_had_to_fall_back(
    stock: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    direct_url: dict[str, Any],
    source: str | None,
) -> None:
    monkeypatch.setattr(scaffold, "installed_direct_url", lambda distribution: direct_url)
    capsys.readouterr()
    assert main(["init", "--app", str(stock), "--cwd", str(stock), "--json"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out)

    version = importlib.metadata.version("pulumi-django")
    expected_source = source or f"git+{scaffold.REPOSITORY}@v{version}"
    kit = f"pulumi-django-runtime[aws] @ {expected_source}#subdirectory=runtime"
    requirements = (stock / "requirements.txt").read_text()
    assert kit in requirements.splitlines()
    assert "file:" not in requirements
    if source:
        assert (report["warnings"], captured.err) == ([], "")
    else:
        (warning,) = report["warnings"]
        assert captured.err == f"pulumi-django init: warning: {warning}\n"
        assert "requirements.txt points at the published repository" in warning
        assert "file:///tmp/pulumi-django" in warning
        assert "change it to a URL your image build can reach" in warning


@given(project=st.text(max_size=40), stack=st.from_regex(r"[A-Za-z0-9_.-]{1,100}", fullmatch=True))
def test_the_resource_name_is_always_one_the_config_accepts(project: str, stack: str) -> None:
    name = scaffold.resource_name(project, stack)
    assert StackConfig(target="aws", name=name).name == name


def test_the_resource_name_keeps_the_stack_apart() -> None:
    assert scaffold.resource_name("mysite", "dev") == "mysite-dev"
    assert scaffold.resource_name("a_very_long_project_name", "prod") == "a-very-long-prod"
    assert scaffold.resource_name("2048", "dev") == "app-2048-dev"
    # Names AWS refuses a prefix of (the ALB's `internal-`, a security group's `sg-`).
    assert scaffold.resource_name("Internal", "dev") == "app-internal-dev"
    assert scaffold.resource_name("sg", "prod") == "app-sg-prod"


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("DEBUG = True\n", ["from pulumi_django_runtime import configure", "configure(globals())"]),
        ("from pulumi_django_runtime import configure as lay\n", ["lay(globals())"]),
        ("import pulumi_django_runtime as kit\n", ["kit.configure(globals())"]),
        ("from pulumi_django_runtime import configure\nconfigure(globals())\n", []),
        ("import pulumi_django_runtime\npulumi_django_runtime.configure(globals())\n", []),
        # Another library's configure is not the kit's.
        ("from logging.config import dictConfig as configure\nconfigure({})\n", None),
    ],
)
def test_settings_lines_are_only_what_the_module_lacks(
    source: str, lines: list[str] | None
) -> None:
    expected = lines if lines is not None else scaffold.settings_lines(scaffold.configure_call(""))
    assert scaffold.settings_lines(scaffold.configure_call(source)) == expected


def test_requirements_already_provided_in_another_form_are_not_added_again() -> None:
    wanted = scaffold.image_requirements(KIT, "gunicorn")
    text = (
        "# pins\n-r base.txt\npsycopg2-binary==2.9.10\nGunicorn[gevent]>=22 ; python_version>'3'\n"
    )
    assert scaffold.missing_requirements(text, wanted) == [KIT, scaffold.REDIS_CLIENT]
    assert scaffold.append_requirements("Django", ["redis>=5"]) == "Django\nredis>=5\n"


def test_the_example_apps_dockerfile_lacks_nothing_init_would_check() -> None:
    bigfoot = ROOT / "examples" / "bigfoot" / "Dockerfile"
    assert dockerfile_shortfalls(bigfoot, "bigfoot.settings") == []
    assert dockerfile_shortfalls(bigfoot, "bigfoot.settings_live") == [
        "ENV DJANGO_SETTINGS_MODULE=bigfoot.settings_live for collectstatic"
    ]


def test_paths_in_the_stack_file_are_relative_inside_the_project_and_absolute_outside(
    tmp_path: Path,
) -> None:
    project = tmp_path / "site"
    assert project_relative(project / ".venv" / "bin" / "python", project) == ".venv/bin/python"
    outside = project / ".." / "venvs" / "app" / "bin" / "python"
    assert project_relative(outside, project) == str(tmp_path / "venvs" / "app" / "bin" / "python")
