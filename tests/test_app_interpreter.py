"""The app's own interpreter (`django:app.python`, `--python`): a second virtualenv made here,
holding Django and the runtime kit but not pulumi-django, where `plan`, `check-migrations` and
the rehearsal's app servers run the app's code; and the defaults `plan` takes from that app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from django_projects import start_project

from pulumi_django import app_runs
from pulumi_django.app_resolution import image_environment
from pulumi_django.cli import build_parser, main
from pulumi_django.cli.rehearsal.app_servers import python_shim, running_app_server
from pulumi_django.cli.rehearsal.servers import free_port
from pulumi_django.config import parse_stack_config
from pulumi_django.rendering.app_server import app_server_settings

ROOT = Path(__file__).resolve().parent.parent
KIT_LINE = "from pulumi_django_runtime import configure; configure(globals())\n"
PREFIX_APP = (
    "import sys\n"
    "def application(environ, start_response):\n"
    "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
    "    return [sys.prefix.encode()]\n"
)


def make_venv(directory: Path, *paths: str) -> Path:
    """A virtualenv without pip whose site-packages also lists `paths` (as if installed)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    site_packages = next(directory.glob("lib/python*/site-packages"))
    (site_packages / "app-requirements.pth").write_text("".join(f"{p}\n" for p in paths))
    return directory / "bin" / "python"


@pytest.fixture(scope="module")
def app_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Django, gunicorn and the kit from this environment's site-packages, read as a plain
    directory: the editable pulumi-django install is not processed there."""
    return make_venv(
        tmp_path_factory.mktemp("app-venv") / "venv",
        sysconfig.get_paths()["purelib"],
        str(ROOT / "runtime" / "src"),
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Pulumi project (this repository's program) beside two stock apps: `mysite` adapted
    with the kit's line and a Dockerfile, `plain` as startproject wrote it."""
    directory = tmp_path_factory.mktemp("project")
    for name in ("Pulumi.yaml", "__main__.py"):
        (directory / name).write_text((ROOT / name).read_text())
    app = start_project(directory)
    settings = app / "mysite" / "settings.py"
    settings.write_text(settings.read_text() + KIT_LINE)
    (app / "Dockerfile").write_text(
        "FROM python:3.12-slim\nWORKDIR /app\nENV STATIC_ROOT=/app/staticfiles\n"
    )
    plain = start_project(directory, "plain")
    (plain / "Dockerfile").write_text("FROM python:3.12-slim\n")
    for stack, context in (("mine", "mysite"), ("stock", "plain")):
        (directory / f"Pulumi.{stack}.yaml").write_text(
            f"config:\n  django:target: local\n  django:name: {stack}\n"
            f"  django:app:\n    context: {context}\n"
        )
    return directory


def test_the_app_venv_has_no_pulumi_django(app_python: Path) -> None:
    found = subprocess.run(
        [str(app_python), "-c", "import django, pulumi_django_runtime, pulumi_django"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "No module named 'pulumi_django'" in found.stderr


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`pulumi-django ARGS` in this process (the app's interpreter, the subject, is another
    process all the same): its exit status and what it printed."""
    capsys.readouterr()
    code = main(list(args))
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(["pulumi-django", *args], code, captured.out, captured.err)


def test_plan_imports_the_app_in_its_interpreter_and_takes_its_names(
    project: Path, app_python: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    written = project / "mine.json"
    completed = cli(
        capsys,
        *("plan", "--stack", "mine", "--cwd", str(project)),
        *("--python", str(app_python), "--json", str(written)),
    )
    assert completed.returncode == 0, completed.stderr
    assert "App readiness (mysite, Python 3" in completed.stdout
    assert f"{app_python}, Django" in completed.stdout
    plan = json.loads(written.read_text())
    readiness = plan["appReadiness"]
    assert readiness["ready"] is True
    assert readiness["pythonPrefix"] == str(app_python.parent.parent)
    inputs = json.dumps([resource["inputs"] for resource in plan["resources"]])
    assert "mysite.settings" in inputs
    assert "bigfoot" not in inputs


def test_plan_of_an_unadapted_app_names_each_problem_and_fails(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    completed = cli(capsys, "plan", "--stack", "stock", "--cwd", str(project))
    assert completed.returncode == 1, completed.stderr
    assert "App readiness (plain, Python" in completed.stdout
    assert "NOT deployable (4 errors)" in completed.stdout
    assert (
        "  error: settings plain.settings: DATABASES['default'] is django.db.backends.sqlite3"
        in completed.stdout
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: None, "no such file"),
        (
            lambda path: path.symlink_to(path.with_name("python3.99")),  # its Python removed
            "no such file: it links to {path}3.99, which does not exist",
        ),
        (
            lambda path: (path.write_text("#!/nowhere/python3\n"), path.chmod(0o755)),
            "does not run: its first line, '#!/nowhere/python3', names no such program",
        ),
        (lambda path: path.mkdir(), "is a directory; pass {path}/bin/python"),
        (lambda path: path.write_text("#!/bin/sh\n"), "not executable"),
        (
            lambda path: (path.write_text("no #! line\n"), path.chmod(0o755)),
            "does not run: Exec format error",
        ),
    ],
    ids=[
        "missing",
        "a-link-to-nothing",
        "a-script-for-no-program",
        "a-directory",
        "not-executable",
        "no-program",
    ],
)
def test_why_an_interpreter_did_not_start_is_said_in_a_few_words(
    tmp_path: Path, make: Any, problem: str
) -> None:
    """What the plan's two checks and `check-migrations` say after the interpreter's name."""
    path = tmp_path / "python"
    make(path)
    with pytest.raises(OSError) as raised:
        app_runs.run([str(path), "-c", "pass"], app_dir=tmp_path, environment={}, timeout=10)
    assert app_runs.start_failure(str(path), raised.value) == problem.format(path=path)


@pytest.mark.parametrize("given", ["an executable text file", "a virtualenv's directory"])
def test_plan_with_an_interpreter_that_is_no_program_says_so_in_a_line(
    project: Path, tmp_path: Path, given: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An executable file without a `#!` line, or a directory: one line names it (both checks
    name the key that chose it), never a traceback; where the stack names the app's settings
    and entry points, the plan is printed and fails."""
    if given == "a virtualenv's directory":
        text = tmp_path / "venv"
        text.mkdir()
        not_a_program = f"{text}: is a directory; pass {text}/bin/python"
    else:
        text = tmp_path / "python"
        text.write_text("not a program\n")
        text.chmod(0o755)
        not_a_program = f"{text}: does not run: Exec format error"
    (project / "Pulumi.named.yaml").write_text(
        "config:\n  django:target: local\n  django:app:\n    context: mysite\n"
        f"    python: {text}\n    settingsModule: mysite.settings\n"
        "    wsgiApp: mysite.wsgi:application\n    asgiApp: mysite.asgi:application\n"
        "    staticRoot: /app/staticfiles\n"
    )
    planned = cli(capsys, "plan", "--stack", "named", "--cwd", str(project))
    assert planned.returncode == 1, planned.stderr
    assert "Traceback" not in planned.stdout + planned.stderr
    assert f"  error: django:app.python: interpreter {not_a_program}" in planned.stdout
    assert f"  skipped: django:app.python: interpreter {not_a_program}" in planned.stdout

    # Without the names, the program reads them from the app: the plan stops at once.
    unnamed = cli(capsys, "plan", "--stack", "mine", "--cwd", str(project), "--python", str(text))
    assert unnamed.returncode == 2
    assert unnamed.stderr.splitlines() == [
        "pulumi-django plan: error: stack mine: invalid stack config: "
        f"django:app.python: interpreter {not_a_program}"
    ]


def test_check_migrations_with_a_stack_uses_its_app_python(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bare = make_venv(tmp_path / "bare")  # the app's interpreter, without Django
    (project / "Pulumi.bare.yaml").write_text(
        f"config:\n  django:target: local\n  django:app:\n    context: mysite\n"
        f"    python: {bare}\n    settingsModule: mysite.settings\n"
        "    wsgiApp: mysite.wsgi:application\n    asgiApp: mysite.asgi:application\n"
        "    staticRoot: /app/staticfiles\n"
    )
    completed = cli(
        capsys,
        *("check-migrations", "--settings", "mysite.settings"),
        *("--pythonpath", str(project / "mysite"), "--offline", "--all"),
        *("--stack", "bare", "--cwd", str(project)),
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1] == (
        f"pulumi-django check-migrations: error: django:app.python: interpreter {bare}: "
        "cannot import Django; install the app's requirements into it or point to the app's "
        "environment"
    )

    # A virtualenv's directory for its interpreter: the key is named, and the file to give.
    (project / "Pulumi.dir.yaml").write_text(
        (project / "Pulumi.bare.yaml").read_text().replace(str(bare), str(tmp_path / "bare"))
    )
    completed = cli(
        capsys,
        *("check-migrations", "--settings", "mysite.settings"),
        *("--pythonpath", str(project / "mysite"), "--offline", "--all"),
        *("--stack", "dir", "--cwd", str(project)),
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1] == (
        f"pulumi-django check-migrations: error: django:app.python: interpreter "
        f"{tmp_path / 'bare'}: is a directory; pass {bare}"
    )


@pytest.mark.parametrize("command", ["init", "plan", "check-migrations", "rehearse"])
def test_every_python_flag_is_an_absolute_path_from_where_the_command_runs(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The app's interpreter often starts in the app's directory, and `init` records it: a
    relative path, `~` left to pulumi-django and a bare name all become the absolute path the
    user meant, here."""
    program = tmp_path / "bin" / "app-python"
    program.parent.mkdir()
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PATH", f"{program.parent}{os.pathsep}{os.environ['PATH']}")

    def given(value: str) -> str:
        arguments = [command, "--python", value, *(["--stack", "dev"] if command == "plan" else [])]
        return str(build_parser(arguments).parse_args(arguments).python)

    assert given("./python") == str(tmp_path / "python")
    assert given("venv/../venv/bin/python") == str(tmp_path / "venv" / "bin" / "python")
    assert given("~/venv/bin/python") == str(tmp_path / "home" / "venv" / "bin" / "python")
    assert given("app-python") == str(program)
    (tmp_path / "venv").mkdir()  # not on PATH but here: the path, for the error to name
    assert given("venv") == str(tmp_path / "venv")
    for wrong, said in [
        ("", "--python: give the app's interpreter, e.g. .venv/bin/python"),
        ("no-such-python", "--python: no program no-such-python on PATH; give its path"),
    ]:
        capsys.readouterr()
        with pytest.raises(SystemExit):
            given(wrong)
        assert capsys.readouterr().err.splitlines()[-1].endswith(f"argument {said}")


@pytest.mark.parametrize(
    ("status", "problem"),
    [
        (1, "printed no check result (exit status 1): said nothing"),
        (3, "exited with status 3 and said nothing"),
    ],
)
def test_an_interpreter_that_fails_silently_is_named_with_its_exit_status(
    project: Path, tmp_path: Path, status: int, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    silent = tmp_path / "python"
    silent.write_text(f"#!/bin/sh\nexit {status}\n")
    silent.chmod(0o755)
    completed = cli(
        capsys,
        *("check-migrations", "--settings", "mysite.settings", "--offline", "--all"),
        *("--pythonpath", str(project / "mysite"), "--python", str(silent)),
    )
    assert completed.returncode == 2
    assert completed.stderr.splitlines()[-1] == (
        f"pulumi-django check-migrations: error: --python: interpreter {silent}: {problem}"
    )


def _script(body: str) -> Any:
    def write(path: Path) -> None:
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    return write


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda path: None, "interpreter {python}: no such file"),
        (
            lambda path: path.mkdir(),
            "interpreter {python}: is a directory; pass {python}/bin/python",
        ),
        (
            _script(f'exec {sys.executable} -S "$@"'),  # a Python without site-packages
            "interpreter {python}: cannot import Django; install the app's requirements into it "
            "or point to the app's environment",
        ),
        (
            _script("echo 'something broke' >&2; exit 1"),
            "interpreter {python}: exited with status 1 importing Django: something broke",
        ),
        (_script("exit 0"), "interpreter {python}: printed no Django version; is it a Python?"),
    ],
    ids=["missing", "a-directory", "no-django", "a-failing-script", "a-script-doing-nothing"],
)
def test_rehearse_names_a_wrong_interpreter_before_starting_anything(
    tmp_path: Path, make: Any, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    python = tmp_path / "python"
    make(python)
    completed = cli(
        capsys, "rehearse", "--stack", "local", "--cwd", str(ROOT), "--python", str(python)
    )
    assert completed.returncode == 2
    assert completed.stderr.strip() == (
        f"pulumi-django rehearse: error: --python: {problem.format(python=python)}"
    )


def test_the_rehearsals_app_server_runs_in_the_apps_interpreter(
    app_python: Path, tmp_path: Path
) -> None:
    (tmp_path / "prefix_app.py").write_text(PREFIX_APP)
    config = parse_stack_config(
        {"target": "local", "app": json.dumps({"wsgiApp": "prefix_app:application"})}, set()
    )
    settings = app_server_settings(
        app=config.app, fleet=config.fleet, load_balancer=config.load_balancer, port=free_port()
    )
    with (
        running_app_server(
            settings,
            log=tmp_path / "server.log",
            cwd=tmp_path,
            env={"XDG_RUNTIME_DIR": str(tmp_path)},
            python=str(app_python),
        ),
        urllib.request.urlopen(f"http://{settings.bind}/", timeout=10) as response,
    ):
        assert response.read().decode() == str(app_python.parent.parent)


def test_python_on_the_rehearsals_path_is_the_apps(app_python: Path, tmp_path: Path) -> None:
    shim = python_shim(tmp_path / "bin", str(app_python))
    prefix = subprocess.run(
        ["python", "-c", "import sys; print(sys.prefix)"],
        env={**os.environ, "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert prefix == str(app_python.parent.parent)


def test_the_images_env_is_read_from_its_last_stage(tmp_path: Path) -> None:
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM python AS build\nENV STATIC_ROOT=/build\n"
        "FROM python\n# ENV COMMENTED=1\nENV PATH=/venv/bin:$PATH \\\n"
        '    STATIC_ROOT=/app/static MESSAGE="two words"\nENV LEGACY the old form\n'
        "ENV PYTHONPATH=/app HOME_DIR=$HOME\n"
    )
    assert image_environment(dockerfile) == {
        "STATIC_ROOT": "/app/static",
        "MESSAGE": "two words",
        "LEGACY": "the old form",
    }
    assert image_environment(tmp_path / "missing") == {}
