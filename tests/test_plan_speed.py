"""What keeps `plan` near its floor, checked by what happens rather than by the clock: the app's
checks run while the program runs, and a plan of what was already planned starts no app
interpreter, while any change to what the checks read starts it again.

The app's interpreter here is a shim that logs each start, then runs this Python: the log
counts the runs of the app (the readiness probe and the migration check)."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fixture_repos import git

import pulumi_django.cli.plan as plan_module
from pulumi_django import app_runs
from pulumi_django.app_run_recorder import file_digest, identity, listing_digest, load_known
from pulumi_django.app_runs import CLOCK_SLACK_NS
from pulumi_django.caches import CACHE_VARIABLE
from pulumi_django.cli import main, plan_cache
from pulumi_django.cli.git_plan import review_against
from pulumi_django.cli.plan import Plan, plan_stack

TINY = Path(__file__).parent / "fixtures" / "tiny_project"

PROGRAM = '''\
"""Waits, when asked, for the app's interpreter to start before registering anything."""
import os
import time
from pathlib import Path

import pulumi

log = Path(os.environ["PLAN_SPEED_LOG"])
if pulumi.Config("speed").get_bool("waitForApp"):
    deadline = time.monotonic() + 120
    while not log.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
if pulumi.Config("speed").get_bool("countRuns"):
    time.sleep(0.5)  # time enough for a second run to start, were it let
    runs = len(log.read_text().splitlines()) if log.is_file() else 0
    pulumi.export("appRunsWhileTheProgramRan", runs)
pulumi.export("appStartedBeforeTheProgramEnded", log.is_file())
'''
SETTINGS = """\
import os
from pathlib import Path

# Read from outside the app directory: the checks' cache must notice it changing.
DEBUG = (Path(__file__).resolve().parents[2] / "debug.txt").read_text().strip() == "on"
SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.staticfiles", "notes"]
ROOT_URLCONF = "speedsite.urls"
STATIC_URL = "static/"
STATIC_ROOT = "/app/static"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("DATABASE_HOST", "offline.invalid"),
        "NAME": os.environ.get("DATABASE_NAME", "speed"),
    }
}
"""
MIGRATION = """\
from django.db import migrations, models


class Migration(migrations.Migration):
    {dependencies}
    operations = [
        migrations.{operation},
    ]
"""
INITIAL = MIGRATION.format(
    dependencies="initial = True",
    operation='CreateModel("Note", [("id", models.BigAutoField(primary_key=True)), '
    '("title", models.CharField(max_length=20))])',
)
SECOND = MIGRATION.format(
    dependencies='dependencies = [("notes", "0001_initial")]',
    operation='AddField("note", "body", models.TextField(null=True))',
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with a ready-made stack file (`t`; `wait`, whose program waits for the
    app's interpreter; `count`, whose program also counts its runs) and its app in `app/`, run
    by the logging shim; a cache of its own."""
    project = tmp_path / "project"
    app = project / "app"
    for path, text in {
        "Pulumi.yaml": "name: speed\nruntime: python\n",
        "__main__.py": PROGRAM,
        "debug.txt": "off\n",
        "app/manage.py": "",
        "app/Dockerfile": "FROM python:3.12-slim\n",
        "app/speedsite/__init__.py": "",
        "app/speedsite/settings.py": SETTINGS,
        "app/speedsite/urls.py": "urlpatterns = []\n",
        "app/speedsite/wsgi.py": "application = None\n",
        "app/notes/__init__.py": "",
        "app/notes/models.py": "from django.db import models\n\n\n"
        "class Note(models.Model):\n    title = models.CharField(max_length=20)\n",
        "app/notes/migrations/__init__.py": "",
        "app/notes/migrations/0001_initial.py": INITIAL,
    }.items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(text)
    shim = _logging_python(tmp_path)
    app_section = {
        "context": "app",
        "python": str(shim),
        "settingsModule": "speedsite.settings",
        "wsgiApp": "speedsite.wsgi:application",
        "staticRoot": "/app/static",
    }
    waiting = "  speed:waitForApp: true\n"
    stacks = (("t", ""), ("wait", waiting), ("count", f"{waiting}  speed:countRuns: true\n"))
    for stack, extra in stacks:
        (project / f"Pulumi.{stack}.yaml").write_text(
            "config:\n  django:target: aws\n  django:name: speed\n"
            f"  django:app: {json.dumps(app_section)}\n{extra}"
        )
    monkeypatch.setenv("PLAN_SPEED_LOG", str(tmp_path / "runs.log"))
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    _settle()
    assert app.is_dir()
    return project


def _logging_python(directory: Path, *, in_pairs: bool = False) -> Path:
    """An interpreter that logs each start to `directory`/runs.log, then runs this Python.
    `in_pairs`: each run first waits (20 s at most) for a second one to have started, and
    logs to `directory`/alone.log when none did."""
    log = shlex.quote(str(directory / "runs.log"))
    pairing = (
        f'i=0\nwhile [ "$(wc -l < {log})" -lt 2 ] && [ $i -lt 400 ]; do sleep 0.05; '
        "i=$((i + 1)); done\n"
        f'[ "$(wc -l < {log})" -ge 2 ] || echo "$2" >> '
        f"{shlex.quote(str(directory / 'alone.log'))}\n"
    )
    shim = directory / "python"
    shim.write_text(
        f'#!/bin/sh\necho "$2" >> {log}\n{pairing if in_pairs else ""}'
        f'exec {shlex.quote(sys.executable)} "$@"\n'
    )
    shim.chmod(0o755)
    return shim


def _settle() -> None:
    """Lets the files just written age past the cache's clock slack: a run that read a file
    changed as it started is never stored (it may have read either version)."""
    time.sleep(3 * CLOCK_SLACK_NS / 1e9)


def _runs(project: Path) -> int:
    """How many times the app's interpreter started (`project` is beside its log)."""
    log = project.parent / "runs.log"
    return len(log.read_text().splitlines()) if log.is_file() else 0


def _checks(plan: Plan) -> tuple[object, object]:
    document = plan.as_json()
    return document["appReadiness"], document["migrationCheck"]


def test_the_apps_checks_start_while_the_program_runs(project: Path) -> None:
    plan = plan_stack(project, "wait")
    # The program waited for the app's interpreter: it started before the program ended.
    assert plan.recording.outputs["appStartedBeforeTheProgramEnded"] is True
    assert _runs(project) == 2  # the readiness probe and the migration check
    assert plan.migrations.result is not None
    assert plan.migrations.result.checked == ["notes.0001_initial"]


def test_one_check_runs_beside_the_program_and_both_at_once_after_it(
    project: Path, tmp_path: Path
) -> None:
    """The program takes a core of its own: while it runs, one of the app's checks runs at a
    time; once it is done, the second starts without waiting for the first. Here each run of
    the app's interpreter waits for another to start: run one after the other, the first
    would wait in vain."""
    _logging_python(tmp_path, in_pairs=True)
    plan = plan_stack(project, "count")
    assert plan.recording.outputs["appRunsWhileTheProgramRan"] == 1
    assert _runs(project) == 2
    assert not (tmp_path / "alone.log").exists(), (tmp_path / "alone.log").read_text()
    assert plan.readiness is not None and plan.readiness.django, plan.readiness  # it imported
    assert plan.migrations.result is not None
    assert plan.migrations.result.checked == ["notes.0001_initial"]


def test_a_plan_of_what_was_planned_starts_no_app_interpreter(project: Path) -> None:
    first = plan_stack(project, "t")
    assert _runs(project) == 2
    second = plan_stack(project, "t")
    assert _runs(project) == 2
    assert _checks(second) == _checks(first)


def test_a_changed_app_file_or_file_the_app_read_runs_the_checks_again(project: Path) -> None:
    plan_stack(project, "t")
    migrations = project / "app" / "notes" / "migrations"
    (migrations / "0002_note_body.py").write_text(SECOND)
    _settle()
    added = plan_stack(project, "t")
    assert _runs(project) == 4
    assert added.migrations.result is not None
    assert added.migrations.result.checked == ["notes.0001_initial", "notes.0002_note_body"]
    plan_stack(project, "t")
    assert _runs(project) == 4
    (project / "debug.txt").write_text("on\n")  # outside the app directory, read by its settings
    _settle()
    debugging = plan_stack(project, "t")
    assert _runs(project) == 6
    assert debugging.readiness is not None
    assert any("DEBUG is True" in warning for warning in debugging.readiness.warnings)


def test_an_environment_variable_is_part_of_what_the_checks_depend_on(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan_stack(project, "t")
    plan_stack(project, "t")
    assert _runs(project) == 2
    monkeypatch.setenv("PLAN_SPEED_ANYTHING", "set")
    plan_stack(project, "t")
    assert _runs(project) == 4


def test_the_interpreter_s_virtual_environment_settings_are_part_of_what_the_checks_depend_on(
    project: Path,
) -> None:
    """`pyvenv.cfg` (whether the system's site-packages are seen) is read as the interpreter
    starts, before the recorder sees anything: it counts all the same."""
    plan_stack(project, "t")
    configuration = project.parent / "pyvenv.cfg"  # beside the app's interpreter
    configuration.write_text("include-system-site-packages = true\n")
    _settle()
    plan_stack(project, "t")
    assert _runs(project) == 4
    configuration.write_text("include-system-site-packages = false\n")
    _settle()
    plan_stack(project, "t")
    assert _runs(project) == 6


def test_a_cache_entry_of_another_shape_is_a_miss_not_an_error(project: Path) -> None:
    first = plan_stack(project, "t")
    entries = list((project.parent / "cache" / "app-runs").glob("*.json"))
    assert len(entries) == 2
    for entry, broken in zip(entries, ("[]", "{}"), strict=True):
        entry.write_text(broken)
    again = plan_stack(project, "t")
    assert _runs(project) == 4
    assert _checks(again) == _checks(first)


def test_the_plan_command_pauses_the_cyclic_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    collecting: list[bool] = []
    planned = plan_module.plan_stack_or_explain

    def spied(*arguments: object, **keywords: object) -> Plan:
        collecting.append(gc.isenabled())
        return planned(*arguments, **keywords)  # type: ignore[arg-type]

    monkeypatch.setattr(plan_module, "plan_stack_or_explain", spied)
    arguments = ["plan", "--stack", "demo", "--cwd", str(TINY), "--json", str(tmp_path / "p")]
    assert main(arguments) == 0
    assert collecting == [False]
    assert gc.isenabled()


# Run by both plans of a review: the one at the ref (elsewhere, another process) leaves a
# mark; the working tree's waits for it, and writes down whether it came.
REVIEWED_PROGRAM = """\
import os
import time
from pathlib import Path

import pulumi

mark = Path(os.environ["PLAN_SPEED_MARK"])
if Path.cwd().resolve() == Path(os.environ["PLAN_SPEED_WORKING_TREE"]).resolve():
    deadline = time.monotonic() + 120
    while not mark.is_file() and time.monotonic() < deadline:
        time.sleep(0.02)
    Path(os.environ["PLAN_SPEED_SEEN"]).write_text("ran" if mark.is_file() else "had not run")
else:
    mark.write_text("the plan at the ref ran")
pulumi.export("planned", True)
"""


def test_a_review_plans_the_ref_while_it_plans_the_working_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repository = tmp_path / "repository"
    repository.mkdir()
    (repository / "Pulumi.yaml").write_text("name: reviewed\nruntime: python\n")
    (repository / "Pulumi.t.yaml").write_text("config: {}\n")
    (repository / "__main__.py").write_text(REVIEWED_PROGRAM)
    git(repository, "init", "-q")
    git(repository, "add", "-A")
    git(repository, "commit", "-qm", "v1")
    monkeypatch.setenv("PLAN_SPEED_MARK", str(tmp_path / "mark"))
    monkeypatch.setenv("PLAN_SPEED_WORKING_TREE", str(repository))
    monkeypatch.setenv("PLAN_SPEED_SEEN", str(tmp_path / "seen"))

    review = review_against(repository, "t", "HEAD")

    # The plan at the ref had started before the working tree's program ended.
    assert (tmp_path / "seen").read_text() == "ran"
    assert review.base.found
    assert not review.added and not review.removed and not review.changed


@pytest.mark.parametrize("through", ["the file", "a link to it"])
def test_a_run_whose_reads_changed_while_it_ran_is_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, through: str
) -> None:
    """Its result may be of the content before the change or after: it is run again, also when
    it read through a link that did not change to a file that did."""
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    app = tmp_path / "app"
    app.mkdir()
    data = tmp_path / "data.txt"  # outside the app directory: known as read, not as the app's
    data.write_text("the same content\n")
    read = data
    if through == "a link to it":
        read = tmp_path / "link.txt"
        read.symlink_to(data)
    script = tmp_path / "scripts" / "script.py"  # its directory is listed, as sys.path[0]
    script.parent.mkdir()
    script.write_text(
        "import os, sys\n"
        "print(open(sys.argv[1]).read(), end='')\n"
        "if sys.argv[3:] == ['touch']:\n"
        "    os.utime(sys.argv[2])  # a new ctime, the content as it was\n"
    )
    python = _logging_python(tmp_path)
    _settle()

    def run(*arguments: str) -> str:
        command = [str(python), str(script), str(read), str(data), *arguments]
        completed = app_runs.run(
            command, app_dir=app, environment=dict(os.environ), cwd=app, timeout=60
        )
        assert completed.returncode == 0, completed.stderr
        return completed.stdout

    assert run("touch") == run("touch") == "the same content\n"
    assert _runs(app) == 2
    _settle()
    assert run() == run() == "the same content\n"
    assert _runs(app) == 3


def test_the_recorder_takes_each_reads_digest_as_the_next_lookup_computes_it(
    tmp_path: Path,
) -> None:
    """The app's interpreter hashes what its run read, importing nothing of this package (it
    runs where pulumi-django is not installed): every digest it records is the one a later
    lookup compares with."""
    data = tmp_path / "data.txt"
    data.write_text("the content\n")
    listed = tmp_path / "listed"
    listed.mkdir()
    (listed / "entry").write_text("")
    script = tmp_path / "scripts" / "script.py"
    script.parent.mkdir()
    script.write_text(
        f"import os, sys\nopen({str(data)!r}).read()\nos.listdir({str(listed)!r})\n"
        "print(sorted(name for name in sys.modules if name.startswith('pulumi')))\n"
    )
    record = tmp_path / "out" / "record.json"
    record.parent.mkdir()
    command = [sys.executable, "-I", str(app_runs.RECORDER), str(record), str(script)]
    completed = subprocess.run(command, check=True, capture_output=True, text=True)

    assert completed.stdout == "[]\n"
    reads = json.loads(record.read_text())
    assert reads["complete"] is True
    expected = hashlib.blake2b(b"the content\n", digest_size=20).hexdigest()
    assert reads["files"][str(data)] == expected
    assert str(listed) in reads["listed"]
    assert reads["files"] == {path: app_runs._file_digest(path) for path in reads["files"]}
    assert reads["listed"] == {path: listing_digest(path) for path in reads["listed"]}


@pytest.fixture
def memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache directory of the test's own, and a process that remembers no digest yet; where
    the digests are remembered."""
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setattr(app_runs, "_KNOWN", {})
    monkeypatch.setattr(app_runs, "_known_loaded", False)
    return tmp_path / "cache" / "digests" / "known.json"


def test_a_remembered_digest_answers_while_the_file_keeps_its_identity(
    tmp_path: Path, memory: Path
) -> None:
    """Neither a lookup nor the recorder reads a file whose identity is the one a digest was
    remembered with (a digest no content has proves it), and both read it again once it
    changed, to the same size."""
    data = tmp_path / "data.txt"
    data.write_text("the content\n")
    script = tmp_path / "scripts" / "script.py"
    script.parent.mkdir()
    script.write_text(f"open({str(data)!r}).read()\n")
    memory.parent.mkdir(parents=True)
    _settle()
    memory.write_text(json.dumps({"files": {str(data): [*identity(data.stat()), "remembered"]}}))

    def recorded() -> tuple[object, object]:
        record = tmp_path / "record.json"
        command = [sys.executable, "-I", str(app_runs.RECORDER), "--known", str(memory)]
        subprocess.run([*command, str(record), str(script)], check=True)
        reads = json.loads(record.read_text())
        return reads["files"][str(data)], reads["identities"][str(data)]

    assert app_runs._file_digest(str(data)) == "remembered"
    assert recorded() == ("remembered", identity(data.stat()))
    data.write_text("new content\n")
    expected = hashlib.blake2b(b"new content\n", digest_size=20).hexdigest()
    assert app_runs._file_digest(str(data)) == expected
    assert recorded() == (expected, identity(data.stat()))


def test_a_run_remembers_the_digests_it_took_once_their_change_times_settled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: Path
) -> None:
    """What a stored run's recorder hashed is remembered on disk for the next process, and
    the recorder of the next run is told where; a file changed within the clock's slack of
    its hashing is not remembered (a change in the same tick would keep its identity)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(CACHE_VARIABLE, "cache")  # relative: the recorder runs elsewhere
    app = tmp_path / "app"
    app.mkdir()
    data = tmp_path / "data.txt"
    data.write_text("the content\n")
    script = tmp_path / "scripts" / "script.py"
    script.parent.mkdir()
    script.write_text("import sys\nprint(open(sys.argv[1]).read(), end='')\n")
    _settle()
    started: list[tuple[str, ...] | None] = []
    with app_runs.observing(lambda use: started.append(use.started)):
        completed = app_runs.run(
            [sys.executable, str(script), str(data)],
            app_dir=app,
            environment=dict(os.environ),
            cwd=app,
            timeout=60,
        )
    assert completed.stdout == "the content\n"
    assert started[0] is not None and started[0][2:4] == ("--known", str(memory))
    remembered = load_known(str(memory))
    digest = hashlib.blake2b(b"the content\n", digest_size=20).hexdigest()
    assert remembered[str(data)] == [*identity(data.stat()), digest]
    assert str(script) in remembered

    fresh = tmp_path / "fresh.txt"
    fresh.write_text("just written\n")
    app_runs._file_digest(str(fresh))
    assert str(fresh) not in app_runs._KNOWN
    _settle()
    app_runs._file_digest(str(fresh))
    assert str(fresh) in app_runs._KNOWN


def test_a_files_status_and_content_come_from_one_open_file(tmp_path: Path) -> None:
    """A link swapped between the two cannot pair one file's identity with the other's content
    (a digest remembered so would answer for the first file ever after)."""
    for version, text in (("v1", "one\n"), ("v2", "two\n")):
        (tmp_path / version).mkdir()
        (tmp_path / version / "file.txt").write_text(text)
    current = tmp_path / "current"
    current.symlink_to(tmp_path / "v1")
    seen: list[int] = []

    def swapping(path: str, status: os.stat_result, read: Callable[[], str]) -> str:
        seen.append(status.st_ino)
        current.unlink()
        current.symlink_to(tmp_path / "v2")
        return read()

    digest = file_digest(str(current / "file.txt"), swapping)
    assert digest == hashlib.blake2b(b"one\n", digest_size=20).hexdigest()
    assert seen == [(tmp_path / "v1" / "file.txt").stat().st_ino]


@pytest.mark.usefixtures("memory")
def test_what_changes_without_a_change_time_is_never_remembered(tmp_path: Path) -> None:
    empty, kept = tmp_path / "empty.txt", tmp_path / "kept.txt"
    empty.write_text("")
    kept.write_text("kept\n")
    _settle()
    for path in ("/proc/uptime", "/proc/self/status", str(empty), str(kept)):
        app_runs._file_digest(path)
    assert list(app_runs._KNOWN) == [str(kept)]


def test_a_damaged_memory_of_digests_is_no_memory(tmp_path: Path, memory: Path) -> None:
    memory.parent.mkdir(parents=True)
    data = tmp_path / "data.txt"
    data.write_text("data\n")
    for damaged in ("[" * 200_000, "{not json", '{"files": [1, 2]}', "null"):
        memory.write_text(damaged)
        assert load_known(memory) == {}
    expected = hashlib.blake2b(b"data\n", digest_size=20).hexdigest()
    assert app_runs._file_digest(str(data)) == expected


def test_the_digests_this_process_learned_are_the_last_to_go(
    monkeypatch: pytest.MonkeyPatch, memory: Path
) -> None:
    """Written back past `MAX_KNOWN_DIGESTS`, the oldest others' go first, not a path this
    process learned again, though another process wrote it earlier."""
    monkeypatch.setattr(app_runs, "MAX_KNOWN_DIGESTS", 3)
    memory.parent.mkdir(parents=True)
    old = [1, 2, 3, 4, 5, "old"]
    memory.write_text(json.dumps({"files": {"/p": old, "/y": old, "/z": old}}))
    relearned = [1, 2, 3, 4, 6, "new"]
    monkeypatch.setattr(app_runs, "_KNOWN", {"/p": relearned, "/c": relearned})
    monkeypatch.setattr(app_runs, "_known_loaded", True)
    monkeypatch.setattr(app_runs, "_known_changed", True)
    app_runs._save_known()
    assert load_known(memory) == {"/z": old, "/p": relearned, "/c": relearned}
    assert list(load_known(memory)) == ["/z", "/p", "/c"]


# A program whose process ends: an exit handler it registers, and an object kept to the end.
EXITING_PROGRAM = """\
import atexit
import os
from pathlib import Path

import pulumi

marks = Path(os.environ["PLAN_SPEED_MARKS"])


def mark(what):
    with marks.open("a") as file:
        file.write(what + "\\n")


class TornDown:
    def __del__(self):
        mark("torn down")


atexit.register(mark, "exit handler")
pulumi.plan_speed_kept = TornDown()  # on a module: freed by the interpreter's teardown only
pulumi.export("planned", True)
"""


def test_the_plan_command_runs_exit_handlers_but_skips_the_teardown(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: exiting\nruntime: python\n")
    (tmp_path / "Pulumi.t.yaml").write_text("config: {}\n")
    (tmp_path / "__main__.py").write_text(EXITING_PROGRAM)
    marks = tmp_path / "marks"
    command = [str(Path(sys.executable).parent / "pulumi-django"), "plan", "--stack", "t"]
    completed = subprocess.run(
        [*command, "--cwd", str(tmp_path), "--json", "-"],
        env={**os.environ, "PLAN_SPEED_MARKS": str(marks)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["outputs"] == {"planned": True}  # all of it, flushed
    assert marks.read_text() == "exit handler\n"


def test_a_review_runs_the_apps_checks_for_the_working_tree_only(project: Path) -> None:
    """The review reads the app's checks of the working tree's plan, never those of the plan
    at the ref (it checks the migrations added since the ref itself)."""
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "v1")

    review = review_against(project, "t", "HEAD")

    assert review.base.found
    assert review.migrations is not None and review.migrations.added == []
    assert _runs(project) == 2  # the working tree's readiness probe and migration check


# The plan command's own cache (`cli.plan_cache`): the command run as users run it, each plan a
# process of its own. `-X importtime` (no part of what a plan depends on) tells whether the
# SDK was imported, i.e. whether anything ran.
STEADY_PROGRAM = """\
import os

import pulumi

pulumi.export("planned", True)
# Looked at, never opened: the project's files count by their identity all the same.
pulumi.export("size", os.path.getsize("data.txt") if os.path.exists("data.txt") else None)
pulumi.export("flagged", os.path.exists(".secrets/flag"))
"""


@pytest.fixture
def steady(project: Path) -> Path:
    """`project`, its program one whose plan depends on files alone (PROGRAM's outputs tell
    how the program and the app's checks raced)."""
    (project / "__main__.py").write_text(STEADY_PROGRAM)
    _settle()
    return project


def _command(
    project: Path, *options: str, arguments: tuple[str, ...] = (), **variables: str
) -> subprocess.CompletedProcess[str]:
    """The plan command, with the interpreter's `options` and the command's `arguments`."""
    return subprocess.run(
        [sys.executable, *options, "-m", "pulumi_django.cli", "plan", "--stack", "t", *arguments],
        cwd=project,
        env={**os.environ, **variables},
        capture_output=True,
        text=True,
        check=False,
    )


def _planned_again(project: Path, *arguments: str, **variables: str) -> bool:
    """Whether the command planned (imported the SDK) rather than printing what it kept."""
    traced = _command(project, "-X", "importtime", arguments=arguments, **variables)
    return _imported(traced.stderr, "pulumi.runtime")


def _imported(importtime: str, module: str) -> bool:
    """Whether `-X importtime`'s lines show `module` imported."""
    return any(line.split("|")[-1].strip() == module for line in importtime.splitlines())


def test_the_command_prints_again_what_it_planned_without_running_anything(
    steady: Path,
) -> None:
    first = _command(steady)
    assert "planned  True" in first.stdout, first.stderr
    assert _runs(steady) == 2
    again = _command(steady, "-X", "importtime")
    assert (again.returncode, again.stdout) == (first.returncode, first.stdout)
    assert _imported(again.stderr, "pulumi_django.cli.plan_cache")
    assert "pulumi-django plan: as planned at " in again.stderr
    assert "as planned at" not in first.stderr
    assert not _imported(again.stderr, "pulumi") and not _imported(again.stderr, "pydantic")
    assert _runs(steady) == 2  # nor the app's interpreter


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _append(path: Path, text: str) -> None:
    with path.open("a") as file:
        file.write(text)


CHANGES = {
    "the program": lambda project: _append(project / "__main__.py", "x = 1\n"),
    "the stack file": lambda project: _append(project / "Pulumi.t.yaml", "# note\n"),
    "a file the app's checks read": lambda project: (project / "debug.txt").write_text("on\n"),
    "a migration of the app": lambda project: (
        project / "app" / "notes" / "migrations" / "0002_note_body.py"
    ).write_text(SECOND),
    "a new file in the project": lambda project: (project / "notes.txt").write_text("new\n"),
    "a file only looked at": lambda project: (project / "data.txt").write_text("data\n"),
    "its size": lambda project: _append(project / "data.txt", "more\n"),
    "a file in a hidden directory": lambda project: _write(project / ".secrets" / "flag", ""),
    # Above the project, in its repository (the test's directory: see below).
    "a file beside the project": lambda project: (project.parent / ".env").write_text("A=1\n"),
    "the app's interpreter's settings": lambda project: (project.parent / "pyvenv.cfg").write_text(
        "include-system-site-packages = true\n"
    ),
}


def test_a_change_to_anything_the_plan_depended_on_plans_again(steady: Path) -> None:
    """Each change plans again once, then the new plan is kept. (One test for all: each plan
    costs the SDK's import.)"""
    (steady.parent / ".git").mkdir()  # the project is in a repository
    _settle()
    _command(steady)
    missed = [change for change, make in CHANGES.items() if not _changed_plans_once(steady, make)]
    assert not missed
    assert _planned_again(steady, PLAN_SPEED_ANYTHING="set")  # the environment keys the plan
    assert not _planned_again(steady)
    assert _planned_again(steady, "--no-cache")
    assert not _planned_again(steady, "--json", str(steady.parent / "plan.json"))


def _changed_plans_once(project: Path, change: Callable[[Path], object]) -> bool:
    change(project)
    _settle()
    return _planned_again(project) and not _planned_again(project)


def test_what_the_program_printed_is_printed_again(steady: Path) -> None:
    _append(
        steady / "__main__.py",
        'print("building")\nimport warnings\nwarnings.warn("a deprecated thing")\n'
        'pulumi.log.warn("careful")\nimport sys\nsys.stdout.writelines(["in lines\\n"])\n'
        # A write that failed then is left out again, without an error of the cache's own.
        'try:\n    print("name: \\udcff")\nexcept UnicodeEncodeError:\n    pass\n',
    )
    _settle()
    strict = {"PYTHONIOENCODING": "utf-8:strict"}
    first = _command(steady, **strict)
    again = _command(steady, "-X", "importtime", **strict)
    assert not _imported(again.stderr, "pulumi.runtime")
    assert (again.returncode, again.stdout) == (first.returncode, first.stdout)
    assert "building" in first.stdout and "in lines" in first.stdout
    for said in ("a deprecated thing", "careful"):
        assert said in first.stderr and said in again.stderr


EFFECTS = {
    "writes a file": "open('written.txt', 'a').write('planned')",
    "starts a process": "import subprocess; subprocess.run(['true'], check=True)",
}


@pytest.mark.parametrize("effect", EFFECTS, ids=list(EFFECTS))
def test_a_plan_that_acts_beyond_reading_files_is_made_every_time(
    steady: Path, effect: str
) -> None:
    """Printing it again would skip what it does: it is never kept."""
    _append(steady / "__main__.py", f"{EFFECTS[effect]}\n")
    _settle()
    _command(steady)
    assert _planned_again(steady)


def test_a_plan_whose_reads_changed_while_it_ran_is_not_kept(steady: Path) -> None:
    """Kept, it would pair what the program read with the identity of what replaced it, and
    print the old plan for the new file for good."""
    (steady / "data.txt").write_text("old\n")
    (steady / "__main__.py").write_text(
        "import sys\nimport time\nfrom pathlib import Path\n\nimport pulumi\n\n"
        'pulumi.export("data", Path("data.txt").read_text().strip())\n'
        'print("read", file=sys.stderr, flush=True)\n'  # the test changes the file now
        "time.sleep(1)\n"
    )
    _settle()
    command = [sys.executable, "-m", "pulumi_django.cli", "plan", "--stack", "t"]
    with subprocess.Popen(
        command, cwd=steady, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as planning:
        assert planning.stderr is not None
        assert planning.stderr.readline() == "read\n"
        (steady / "data.txt").write_text("new\n")
        output, _ = planning.communicate(timeout=60)
    assert re.search(r"data +old", output), output
    assert not list((steady.parent / "cache" / "plans").glob("*.json"))
    _settle()
    assert _planned_again(steady)


def test_only_the_command_keeps_plans_and_an_empty_cache_variable_turns_it_off(
    steady: Path,
) -> None:
    plans = steady.parent / "cache" / "plans"
    main(["plan", "--stack", "t", "--cwd", str(steady)])  # a program calling main
    assert not plans.exists()
    _command(steady, **{CACHE_VARIABLE: ""})
    assert not plans.exists()
    _command(steady)
    assert len(list(plans.glob("*.json"))) == 1


def test_a_change_time_in_whole_seconds_gets_the_slack_of_a_coarse_clock() -> None:
    """On a file system that keeps whole seconds, a file changed in the second the plan
    started may change again in that second and keep its identity: such a plan is not kept."""
    started = 1_700_000_000_500_000_000
    identity = [1, 2, 3, 4, 0, 0o100644]
    for changed, too_recent in (
        (started - 50_000_000, True),  # fine-grained, within CLOCK_SLACK_NS
        (started - 150_000_000, False),
        (started - 500_000_000, True),  # the same whole second
        (started - 1_500_000_000, True),  # the second before, on a clock of 2-second steps
        (started - 2_500_000_000, True),  # and a tick of the kernel's coarse clock
        (started - 3_500_000_000, False),
    ):
        identity[4] = changed
        assert plan_cache._too_recent(identity, started) is too_recent, changed


def test_bytecode_read_counts_as_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "pycache_prefix", None)
    assert plan_cache._source_of("/p/lib/__pycache__/helper.cpython-311.pyc") == "/p/lib/helper.py"
    monkeypatch.setattr(sys, "pycache_prefix", "/cache/pycache")
    assert (
        plan_cache._source_of("/cache/pycache/p/lib/helper.cpython-311.opt-1.pyc")
        == "/p/lib/helper.py"
    )


def test_a_write_that_leaves_the_cache_directory_by_dotdot_is_a_change(tmp_path: Path) -> None:
    watch = plan_cache.PlanWatch(tmp_path)
    watch.cache = str(tmp_path / "cache")
    watch.saw("os.remove", (str(tmp_path / "cache" / ".." / "program.txt"), -1))
    watch.saw("os.remove", (str(tmp_path / "cache" / "plans" / "old.json"), -1))
    assert [path for path in watch.changed if not watch._scratch(path)] == [
        str(tmp_path / "program.txt")
    ]
