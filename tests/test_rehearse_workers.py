"""The rehearsal's workers: one worker process per version when the stack has
`django:workers`, and the jobs they failed (a job the new version enqueues, failing on a worker
still running the old version), counted from their output and exit, in the report and its
verdict. Fast tests on small scripts; two whole rehearsals of the example app (slow)."""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from rehearsal_fakes import page, rehearsal_report
from test_rehearse import APP, ROOT, assert_no_failures, rehearse_cli, scratch

from pulumi_django.cli.rehearsal import rehearse as rehearse_module
from pulumi_django.cli.rehearsal.rehearse import Rehearsal, RehearsalOptions
from pulumi_django.cli.rehearsal.report import (
    WORKER_HINT,
    StepReport,
    decide_result,
    render_markdown,
    render_report,
    report_json,
)
from pulumi_django.cli.rehearsal.sources import resolve_sides
from pulumi_django.cli.rehearsal.workers import (
    NEW_VERSION,
    OUTAGE_END,
    OUTAGE_START,
    Side,
    WorkerOutcome,
    WorkerProcess,
    WorkersSummary,
    failures_in,
)
from pulumi_django.config import parse_stack_config

__all__ = ["scratch"]  # the rehearsal's TMPDIR fixture, shared with test_rehearse

TRACEBACK = "Traceback (most recent call last):"
# What bigfoot's `run_worker` writes when a job of a newer release reaches an older worker.
UNKNOWN_JOB = """\
job sightings.notify_rangers failed
Traceback (most recent call last):
  File "/app/sightings/management/commands/run_worker.py", line 56, in run_one
    jobs.run(payload)
  File "/app/bigfoot/jobs.py", line 140, in run
    found = get_job(message["job"])
            ^^^^^^^^^^^^^^^^^^^^^^^
bigfoot.jobs.UnknownJob: unknown job 'sightings.notify_rangers': this version has no such job
"""
# One job failing with a chain of exceptions (Django wraps the driver's): one failure.
CHAINED = """\
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/django/db/backends/utils.py", line 105, in _execute
    return self.cursor.execute(sql, params)
psycopg.errors.UndefinedColumn: column "gdpr_accepted" does not exist

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/sightings/jobs.py", line 20, in sighting_reported
    sighting = Sighting.objects.get(pk=sighting_id)
django.db.utils.ProgrammingError: column "gdpr_accepted" does not exist
"""


# ---------------------------------------------------------------- counting failures


def test_each_traceback_is_one_failed_job_and_a_chain_of_exceptions_is_one() -> None:
    output = "worker started\njob a done\n" + UNKNOWN_JOB + "job b done\n" + CHAINED + UNKNOWN_JOB
    failures = failures_in(output)
    assert [failure.error for failure in failures] == [
        "bigfoot.jobs.UnknownJob: unknown job 'sightings.notify_rangers': this version has no "
        "such job",
        'django.db.utils.ProgrammingError: column "gdpr_accepted" does not exist',
        "bigfoot.jobs.UnknownJob: unknown job 'sightings.notify_rangers': this version has no "
        "such job",
    ]
    # Each failure is placed where its traceback starts in the output.
    assert [output.encode()[f.offset :].startswith(TRACEBACK.encode()) for f in failures] == [
        True
    ] * 3
    assert failures_in("worker started\njob a done\nworker stopped\n") == []


def script(tmp_path: Path, name: str, body: str) -> list[str]:
    """A worker command: `python SCRIPT` for a script of `body`."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


# Fails two jobs (tracebacks on stderr, as a job runner logs them), then idles; on SIGTERM it
# finishes and exits 0, or with the status the first argument names.
FAILS_TWO_JOBS = """
    import signal, sys, time, traceback
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    for name in ("a", "b"):
        try:
            raise KeyError(name)
        except KeyError:
            print(f"job {name} failed", file=sys.stderr)
            traceback.print_exc()
    sys.stderr.flush()
    print("ready", flush=True)
    while not stop:
        time.sleep(0.05)
    sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


def run_worker(tmp_path: Path, command: list[str]) -> WorkerProcess:
    return WorkerProcess.start(
        "v1", "old", command, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, log=tmp_path / "w.log"
    )


def wait_for_output(worker: WorkerProcess, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in {worker.log.read_text()}"
        time.sleep(0.05)


def ended(worker: WorkerProcess) -> None:
    assert worker.process is not None
    worker.process.wait(10)


def test_a_worker_stopped_with_sigterm_counts_its_tracebacks_and_ends_warm(
    tmp_path: Path,
) -> None:
    worker = run_worker(tmp_path, script(tmp_path, "fails", FAILS_TWO_JOBS))
    wait_for_output(worker, "ready")
    worker.stop(timeout=10)
    outcome = worker.outcome()
    assert (outcome.tracebacks, outcome.exit_status, outcome.exited_early) == (2, 0, False)
    assert (outcome.jobs_failed, outcome.crashed, outcome.stop) == (
        2,
        False,
        "stopped, exit status 0",
    )
    assert outcome.errors == (("KeyError: 'a'", 1), ("KeyError: 'b'", 1))
    # The old worker's failures before the new version ran are the old version's own.
    assert outcome.since_new_version == 0


def test_a_worker_that_exits_non_zero_before_it_is_stopped_is_a_failure(tmp_path: Path) -> None:
    crash = script(tmp_path, "crash", "import sys\nprint('no queue named x')\nsys.exit(3)\n")
    worker = run_worker(tmp_path, crash)
    ended(worker)
    worker.stop(timeout=10)
    outcome = worker.outcome()
    assert (outcome.tracebacks, outcome.exit_status, outcome.exited_early) == (0, 3, True)
    assert (outcome.jobs_failed, outcome.stop, outcome.detail) == (
        1,
        "exited by itself, exit status 3",
        "no queue named x",
    )

    clean = script(tmp_path, "clean", "print('nothing to do')\n")
    worker = run_worker(tmp_path, clean)
    ended(worker)
    worker.stop(timeout=10)
    assert (worker.outcome().jobs_failed, worker.outcome().stop) == (
        0,
        "exited by itself, exit status 0",
    )


def test_a_worker_command_that_cannot_start_is_a_failure_not_a_crash_of_the_rehearsal(
    tmp_path: Path,
) -> None:
    worker = run_worker(tmp_path, ["celery-not-installed", "-A", "proj", "worker"])
    worker.stop(timeout=10)
    outcome = worker.outcome()
    assert (outcome.exit_status, outcome.jobs_failed, outcome.stop) == (None, 1, "did not start")
    assert outcome.detail.startswith("celery-not-installed: No such file or directory")


def test_a_worker_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path: Path) -> None:
    stubborn = script(
        tmp_path,
        "stubborn",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\ntime.sleep(60)\n",
    )
    worker = run_worker(tmp_path, stubborn)
    wait_for_output(worker, "ready")
    worker.stop(timeout=0.5)
    assert worker.outcome().stop == "stopped, killed by signal 9"


def test_failures_after_the_new_version_ran_and_during_an_outage_are_told_apart(
    tmp_path: Path,
) -> None:
    worker = WorkerProcess("v1", "old", tmp_path / "w.log")
    with worker.log.open("w") as log:
        log.write(UNKNOWN_JOB)  # the old version's own
        log.flush()
        worker.mark(OUTAGE_START)
        log.write(CHAINED)  # the database was down: the outage's
        log.flush()
        worker.mark(OUTAGE_END)
        worker.mark(NEW_VERSION)
        log.write(UNKNOWN_JOB * 2)  # the new version's jobs
    outcome = worker.outcome()
    assert (outcome.tracebacks, outcome.since_new_version, outcome.during_outage) == (3, 2, 1)
    # A worker that was never started is not a process at all: the rehearsal made it up.
    assert (outcome.exit_status, outcome.exited_early) == (None, True)


# ---------------------------------------------------------------- the report and its verdict


def workers_summary(old: int, old_since_new: int, new: int) -> WorkersSummary:
    def process(version: str, side: Side, failed: int, since: int) -> WorkerOutcome:
        errors = ((f"bigfoot.jobs.UnknownJob: unknown job {version}", failed),) if failed else ()
        return WorkerOutcome(version, side, failed, since, 0, 0, False, errors)

    return WorkersSummary(
        service="default",
        command=("python", "manage.py", "run_worker", "--queue", "default"),
        stop_timeout_seconds=120,
        processes=(process("v1", "old", old, old_since_new), process("v2", "new", new, new)),
    )


FLEET_OK = StepReport("fleet", "Fleet", "ok", 1.0, "")


def test_jobs_an_old_worker_failed_fail_the_rehearsal_with_the_hint_in_every_format() -> None:
    samples = [page(t / 10, "/", 200, version="v1") for t in range(50)]
    steps = [FLEET_OK]
    report = rehearsal_report(samples, steps, workers=workers_summary(4, 3, 0))
    assert (report.result, report.exit_code, report.jobs_failed) == ("failed", 1, 4)

    text = render_report(report)
    assert "Workers: worker service default (python manage.py run_worker --queue default)" in text
    assert "jobs failed: 4" in text
    assert "v1 (old): jobs failed 4 (3 once the new version ran); stopped, exit status 0" in text
    assert "v2 (new): jobs failed 0; stopped, exit status 0" in text
    assert f"Result: FAILED: jobs failed on the workers (4); {WORKER_HINT}." in text

    document = report_json(report)
    assert document["workers"]["jobs_failed"] == 4
    old, new = document["workers"]["processes"]
    assert (old["version"], old["side"], old["jobs_failed"]) == ("v1", "old", 4)
    assert old["jobs_failed_since_new_version"] == 3
    assert (new["version"], new["side"], new["jobs_failed"]) == ("v2", "new", 0)
    markdown = render_markdown(json.loads(json.dumps(document)))
    assert f"**Jobs failed on the workers (4); {WORKER_HINT}.**" in markdown
    assert "#### Workers" in markdown
    assert "| `v1` | old | 4 | stopped, exit status 0 |" in markdown


def test_a_new_workers_own_failures_fail_the_rehearsal_without_the_old_worker_hint() -> None:
    steps = [FLEET_OK]
    report = rehearsal_report([page(1.0, "/", 200)], steps, workers=workers_summary(1, 0, 2))
    text = render_report(report)
    assert "Result: FAILED: jobs failed on the workers (3)." in text
    assert WORKER_HINT not in text
    assert WORKER_HINT not in render_markdown(report_json(report))


def test_without_workers_the_report_is_unchanged_and_ok_stays_ok() -> None:
    steps = [FLEET_OK]
    report = rehearsal_report([page(1.0, "/", 200)], steps)
    assert report.result == "ok"
    assert report_json(report)["workers"] is None
    assert "Workers" not in render_report(report)
    assert "Workers" not in render_markdown(report_json(report))
    clean = rehearsal_report([page(1.0, "/", 200)], steps, workers=workers_summary(0, 0, 0))
    assert clean.result == "ok"
    assert "Result: OK" in render_report(clean)
    # A refusal stays a refusal: nothing was released, the old worker's failures are its own.
    refused = [StepReport("check", "Check", "refused", 1.0, "")]
    assert decide_result(0, refused, jobs_failed=2) == "refused"


# ---------------------------------------------------------------- the rehearsal's worker processes


def test_the_rehearsal_runs_the_first_services_command_per_version_with_the_apps_environment(
    tmp_path: Path,
) -> None:
    config = parse_stack_config(
        {
            "target": "local",
            "workers": json.dumps(
                {
                    "services": {
                        "default": {"command": ["python", "worker.py"], "stopTimeoutSeconds": 5},
                        "emails": {"command": ["python", "never-run.py"]},
                    }
                }
            ),
        },
        set(),
    )
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), config, "nginx")
    progress: list[str] = []
    with contextlib.ExitStack() as resources:
        rehearsal = Rehearsal(options, resources, tmp_path, progress.append)
        versions = []
        for name in ("v1", "v2"):
            directory = tmp_path / name
            directory.mkdir()
            (directory / "worker.py").write_text(
                textwrap.dedent(
                    f"""
                    import os, signal, sys, time
                    stop = []
                    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
                    print("{name}", os.environ["REDIS_URL"], os.environ["DJANGO_SETTINGS_MODULE"])
                    if "{name}" == "v1":
                        while not os.path.exists("{tmp_path}/new"):
                            time.sleep(0.05)
                        print("Traceback (most recent call last):\\nKeyError: 'new'", flush=True)
                    while not stop:
                        time.sleep(0.05)
                    """
                )
            )
            versions.append(rehearse_module.Version(name, name, directory, tmp_path / "static"))
        rehearsal.redis_url = "redis://127.0.0.1:1/0"
        rehearsal.start_worker(versions[0], "old")
        rehearsal.start_worker(versions[1], "new")
        rehearsal.mark_workers(NEW_VERSION)
        (tmp_path / "new").touch()
        wait_for_output(rehearsal.workers[0], "KeyError")
        wait_for_output(rehearsal.workers[1], "v2 ")  # its SIGTERM handler is in place
        rehearsal.stop_workers()
        summary = rehearsal.workers_summary()
    assert summary is not None
    assert (summary.service, summary.command, summary.stop_timeout_seconds) == (
        "default",
        ("python", "worker.py"),
        5.0,
    )
    old, new = summary.processes
    assert (old.version, old.side, old.jobs_failed, old.since_new_version) == ("v1", "old", 1, 1)
    assert (new.version, new.side, new.jobs_failed) == ("v2", "new", 0)
    assert (old.stop, new.stop) == ("stopped, exit status 0", "stopped, exit status 0")
    outputs = [worker.log.read_text().splitlines()[0] for worker in rehearsal.workers]
    assert outputs == [
        "v1 redis://127.0.0.1:1/0 bigfoot.settings",
        "v2 redis://127.0.0.1:1/0 bigfoot.settings",
    ]
    assert any("worker of v1 (old; service default: python worker.py)" in line for line in progress)


def test_without_worker_services_the_rehearsal_starts_no_worker(tmp_path: Path) -> None:
    config = parse_stack_config({"target": "local"}, set())
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), config, "nginx")
    with contextlib.ExitStack() as resources:
        rehearsal = Rehearsal(options, resources, tmp_path, lambda _: None)
        version = rehearse_module.Version("v1", "v1", tmp_path, tmp_path / "static")
        rehearsal.start_worker(version, "old")
        assert rehearsal.workers == []
        assert rehearsal.workers_summary() is None


# ---------------------------------------------------------------- whole rehearsals (slow)

# The prod stack's first worker service, on the local stack this project rehearses.
WORKERS = {
    "services": {
        "default": {"command": ["python", "manage.py", "run_worker", "--queue", "default"]},
        "emails": {"command": ["python", "manage.py", "run_worker", "--queue", "emails"]},
    },
    "scheduler": {"command": ["python", "manage.py", "run_scheduler"]},
}
SHORT = ("--replicas", "1", "--workers", "1", "--before", "2", "--after", "3")


@pytest.fixture
def project_with_workers(tmp_path: Path) -> Path:
    """This project's local stack, plus the workers of the prod stack."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, project / name)
    stack = yaml.safe_load((ROOT / "Pulumi.local.yaml").read_text())
    stack["config"]["django:workers"] = WORKERS
    (project / "Pulumi.local.yaml").write_text(yaml.safe_dump(stack))
    return project


@pytest.mark.slow
def test_a_job_the_new_version_enqueues_fails_on_the_old_worker_and_fails_the_rehearsal(
    scratch: Path, project_with_workers: Path, tmp_path: Path
) -> None:
    """releases/v2-new-job enqueues a job v1 does not have: the old worker fails the ones it
    picks up, the new worker runs the rest, and the verdict says what to do."""
    markdown = tmp_path / "rehearsal.md"
    code, report, stderr = rehearse_cli(
        scratch,
        *("--cwd", str(project_with_workers), "--app", str(APP), "--to", "v2-new-job"),
        *SHORT,
        *("--markdown", str(markdown)),
    )
    assert_no_failures(report, stderr)
    assert (code, report["result"]) == (1, "failed"), stderr[-3000:]
    workers = report["workers"]
    assert workers["service"] == "default"
    assert workers["command"] == WORKERS["services"]["default"]["command"]
    old, new = workers["processes"]
    assert (old["version"], old["side"], new["version"], new["side"]) == (
        "v1",
        "old",
        "v2-new-job",
        "new",
    )
    assert old["jobs_failed"] > 0
    assert old["jobs_failed_since_new_version"] == old["jobs_failed"]
    assert [error["error"].split(":")[0] for error in old["errors"]] == ["bigfoot.jobs.UnknownJob"]
    assert "unknown job 'sightings.notify_rangers'" in old["errors"][0]["error"]
    assert (new["jobs_failed"], new["exit_status"], old["exit_status"]) == (0, 0, 0)
    assert workers["jobs_failed"] == old["jobs_failed"]
    assert WORKER_HINT in markdown.read_text()


@pytest.mark.slow
def test_a_release_whose_jobs_both_versions_know_runs_its_workers_without_a_failure(
    scratch: Path, project_with_workers: Path
) -> None:
    """The demo's v2 on a stack with workers: every job it enqueues exists in v1."""
    code, report, stderr = rehearse_cli(
        scratch,
        *("--cwd", str(project_with_workers), "--app", str(APP), "--to", "v2"),
        *SHORT,
    )
    assert_no_failures(report, stderr)
    assert (code, report["result"]) == (0, "ok"), stderr[-3000:]
    old, new = report["workers"]["processes"]
    assert [(p["version"], p["side"], p["jobs_failed"]) for p in (old, new)] == [
        ("v1", "old", 0),
        ("v2", "new", 0),
    ]
    assert old["stop"] == new["stop"] == "stopped, exit status 0"
    assert "worker of v2 (new; service default: python manage.py run_worker" in stderr
