"""Bigfoot's background jobs (bigfoot/jobs.py) on a real Redis and PostgreSQL: what the site
enqueues, the workers and the scheduler the prod stack runs, with the exact commands it runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis as redis_client
from bigfoot_testing import (
    APP_DIR,
    Services,
    clean_environment,
    manage,
    manage_ok,
    serving,
    submit_form,
)

from pulumi_django.cli.rehearsal.servers import postgres
from pulumi_django.cli.rehearsal.sources import build_variant

# The commands the prod stack (Pulumi.prod.yaml) runs as its two worker services and scheduler.
WORKER_DEFAULT = ["manage.py", "run_worker", "--queue", "default"]
WORKER_EMAILS = ["manage.py", "run_worker", "--queue", "emails"]
SCHEDULER = ["manage.py", "run_scheduler"]
REPORT = {
    "location": "Bluff Creek",
    "seen_at": "1967-10-20T13:30",
    "description": "Walked across the gravel bar and looked back.",
    "reporter": "Roger",
}
TRACEBACK = "Traceback (most recent call last):"
# A job the test adds to its copy of the app: slow, leaving a mark when it starts and ends.
SLOW_JOB = """

@job("tests.slow")
def slow(seconds: float, marks: str) -> None:
    import pathlib
    import time

    pathlib.Path(marks, "started").touch()
    time.sleep(seconds)
    pathlib.Path(marks, "finished").touch()
"""


class Process:
    """A command of the app running in the background, its stdout and stderr apart."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.out, self.err = logs.with_suffix(".out"), logs.with_suffix(".err")
        self.process = subprocess.Popen(
            [sys.executable, *command],
            cwd=cwd,
            env=env,
            stdout=self.out.open("wb"),
            stderr=self.err.open("wb"),
            start_new_session=True,
        )

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, as ECS and Docker stop a container; its exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Callable[[list[str], Path, dict[str, str]], Process]]:
    started: list[Process] = []
    names = iter(range(100))

    def start(command: list[str], cwd: Path, env: dict[str, str]) -> Process:
        started.append(Process(command, cwd, env, tmp_path / f"process-{next(names)}"))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def wait_for(what: str, done: Callable[[], bool], process: Process, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert process.process.poll() is None, (
            f"exited {process.process.returncode} before {what}:\n"
            f"{process.stdout()}{process.stderr()}"
        )
        assert time.monotonic() < deadline, (
            f"no {what} within {timeout} s:\n{process.stdout()}{process.stderr()}"
        )
        time.sleep(0.05)


def queued(services: Services, queue: str) -> list[dict[str, object]]:
    with redis_client.Redis.from_url(services.redis.url()) as client:
        return [json.loads(item) for item in client.lrange(f"bigfoot:jobs:{queue}", 0, -1)]


def push(services: Services, queue: str, name: str, **kwargs: object) -> None:
    """A job as `enqueue` pushes it, of any name (a newer release's, say)."""
    with redis_client.Redis.from_url(services.redis.url()) as client:
        client.rpush(f"bigfoot:jobs:{queue}", json.dumps({"job": name, "kwargs": kwargs}))


@pytest.fixture
def flushed(services: Services) -> Services:
    """The shared Redis without the jobs an earlier test left."""
    with redis_client.Redis.from_url(services.redis.url()) as client:
        client.flushall()
    return services


@pytest.mark.slow
def test_the_report_form_enqueues_jobs_the_workers_run_and_a_failing_job_is_logged_and_skipped(
    flushed: Services, collected_static: Path, tmp_path: Path, running: Callable[..., Process]
) -> None:
    env = flushed.app_environment(collected_static, migrated=True)
    with serving(APP_DIR, env, "gunicorn", tmp_path / "gunicorn.log") as port:
        _, created = submit_form(port, "/sightings/new/", REPORT)
    assert created.status == 303
    assert [job["job"] for job in queued(flushed, "default")] == ["sightings.sighting_reported"]
    [thanks] = queued(flushed, "emails")
    assert (thanks["job"], thanks["kwargs"]) == ("sightings.thank_reporter", {"reporter": "Roger"})
    # A job a newer release enqueues, which this version does not have; then a known one.
    push(flushed, "default", "sightings.notify_rangers", sighting_id=1, consent=True)
    push(flushed, "default", "sightings.tally")

    worker = running(WORKER_DEFAULT, APP_DIR, env)
    emails = running(WORKER_EMAILS, APP_DIR, env)
    wait_for("the tally", lambda: "job sightings.tally done" in worker.stdout(), worker)
    wait_for("the thanks", lambda: "job sightings.thank_reporter done" in emails.stdout(), emails)
    out, err = worker.stdout(), worker.stderr()
    assert "job sightings.sighting_reported done" in out
    assert "sighting 1 at Bluff Creek (1 reported there)" in out
    assert "1 sightings in all" in out
    assert "thanked Roger for their report" in emails.stdout()
    # The unknown job: its name, then the traceback, on stderr; the worker went on.
    assert err.count(TRACEBACK) == 1
    assert err.startswith(f"job sightings.notify_rangers failed\n{TRACEBACK}")
    assert "UnknownJob: unknown job 'sightings.notify_rangers'" in err
    assert "Traceback" not in out and "Traceback" not in emails.stderr()
    assert queued(flushed, "default") == queued(flushed, "emails") == []
    # Idle workers stop at once on SIGTERM, with status 0.
    stopping = time.monotonic()
    assert (worker.terminate(), emails.terminate()) == (0, 0)
    assert time.monotonic() - stopping < 5
    assert worker.stdout().endswith("worker on queue default stopped\n")


@pytest.mark.slow
def test_sigterm_lets_the_running_job_finish_then_the_worker_exits_0(
    flushed: Services, tmp_path: Path, running: Callable[..., Process]
) -> None:
    app = build_variant(APP_DIR, "v1", tmp_path / "app")
    with (app / "sightings" / "jobs.py").open("a") as jobs:
        jobs.write(SLOW_JOB)
    env = flushed.app_environment(tmp_path / "static")
    marks = tmp_path / "marks"
    marks.mkdir()
    push(flushed, "default", "tests.slow", seconds=2, marks=str(marks))
    push(flushed, "default", "tests.slow", seconds=2, marks=str(tmp_path))

    worker = running(WORKER_DEFAULT, app, env)
    wait_for("the slow job", (marks / "started").exists, worker)
    assert worker.terminate(timeout=15) == 0
    assert (marks / "finished").exists(), "the worker did not finish its job before exiting"
    assert "job tests.slow done" in worker.stdout()
    assert worker.stderr() == ""
    # The next job stays queued for another worker.
    assert [job["job"] for job in queued(flushed, "default")] == ["tests.slow"]


@pytest.mark.slow
def test_the_scheduler_enqueues_the_periodic_jobs_at_once_then_every_interval(
    flushed: Services, tmp_path: Path, running: Callable[..., Process]
) -> None:
    env = flushed.app_environment(tmp_path / "static")
    scheduler = running(SCHEDULER, APP_DIR, env)
    wait_for("a tally", lambda: bool(queued(flushed, "default")), scheduler)
    assert "scheduler started: every 60 s: sightings.tally" in scheduler.stdout()
    time.sleep(1)
    assert [job["job"] for job in queued(flushed, "default")] == ["sightings.tally"]
    assert scheduler.terminate(timeout=5) == 0

    fast = running([*SCHEDULER, "--every", "0.5"], APP_DIR, env)
    wait_for("three more tallies", lambda: len(queued(flushed, "default")) >= 4, fast)
    assert fast.terminate(timeout=5) == 0
    assert fast.stderr() == ""

    refused = manage(APP_DIR, env, "run_scheduler", "--every", "0")
    assert refused.returncode == 1
    assert refused.stderr.strip() == "CommandError: --every 0: use more than 0 seconds"


def test_without_redis_a_job_runs_in_place_under_debug_and_is_refused_in_production() -> None:
    enqueue = (
        "from bigfoot.jobs import enqueue; enqueue('sightings.thank_reporter', reporter='Ann')"
    )
    base = {"DJANGO_SECRET_KEY": "bigfoot-tests-only", "DATABASE_URL": "postgres://nowhere/x"}
    debug = manage(APP_DIR, clean_environment(DJANGO_DEBUG="1", **base), "shell", "-c", enqueue)
    assert debug.returncode == 0, debug.stderr
    assert "thanked Ann for their report" in debug.stdout + debug.stderr
    production = manage(APP_DIR, clean_environment(**base), "shell", "-c", enqueue)
    assert production.returncode == 1
    assert "ImproperlyConfigured: job sightings.thank_reporter: jobs need Redis; set REDIS_URL" in (
        production.stderr
    )
    unknown = manage(
        APP_DIR,
        clean_environment(DJANGO_DEBUG="1", **base),
        "shell",
        "-c",
        "from bigfoot.jobs import enqueue; enqueue('sightings.nope')",
    )
    assert "UnknownJob: unknown job 'sightings.nope'" in unknown.stderr
    worker = manage(APP_DIR, clean_environment(**base), "run_worker", "--queue", "default")
    assert (worker.returncode, worker.stderr.strip()) == (
        1,
        "CommandError: jobs need Redis; set REDIS_URL",
    )


REPORT_FROM_V2_NEW_JOB = """
from datetime import UTC, datetime
from sightings.jobs import after_report
from sightings.models import Sighting
after_report(Sighting.objects.create(location="Willow Creek", seen_at=datetime.now(UTC),
                                     description="-", reporter="v2", gdpr_accepted=True))
"""


@pytest.mark.slow
def test_v2_new_jobs_job_fails_on_a_v1_worker_and_runs_on_its_own(
    flushed: Services, tmp_path: Path, running: Callable[..., Process]
) -> None:
    """releases/v2-new-job: the job it enqueues is unknown to a worker still running v1."""
    v1 = build_variant(APP_DIR, "v1", tmp_path / "v1")
    new = build_variant(APP_DIR, "v2-new-job", tmp_path / "v2-new-job")
    env = flushed.app_environment(tmp_path / "static")
    manage_ok(new, env, "migrate", "--noinput")
    manage_ok(new, env, "shell", "--command", REPORT_FROM_V2_NEW_JOB * 2)  # two reports
    jobs = [job["job"] for job in queued(flushed, "default")]
    assert jobs == ["sightings.sighting_reported", "sightings.notify_rangers"] * 2

    old_worker = running(WORKER_DEFAULT, v1, env)
    wait_for(
        "the jobs",
        lambda: (
            old_worker.stdout().count("job sightings.sighting_reported done") == 2
            and old_worker.stderr().count("job sightings.notify_rangers failed") == 2
        ),
        old_worker,
    )
    assert old_worker.terminate() == 0
    assert old_worker.stderr().count(TRACEBACK) == 2
    assert "UnknownJob: unknown job 'sightings.notify_rangers'" in old_worker.stderr()

    manage_ok(new, env, "shell", "--command", REPORT_FROM_V2_NEW_JOB)
    new_worker = running(WORKER_DEFAULT, new, env)
    wait_for(
        "the rangers",
        lambda: "job sightings.notify_rangers done" in new_worker.stdout(),
        new_worker,
    )
    assert new_worker.terminate() == 0
    assert "rangers notified of sighting 3 (reporter named: True)" in new_worker.stdout()
    assert new_worker.stderr() == ""


@pytest.mark.slow
def test_a_worker_gets_a_new_database_connection_after_a_database_restart(
    flushed: Services, tmp_path: Path, running: Callable[..., Process]
) -> None:
    """A failover ends the worker's kept connection: the next job gets a new one, as a request
    would, instead of every job failing on the dead one."""
    with postgres() as database:
        env = {
            **flushed.app_environment(tmp_path / "static"),
            "DATABASE_URL": database.create_database("bigfoot_failover"),
        }
        manage_ok(APP_DIR, env, "migrate", "--noinput")
        worker = running(WORKER_DEFAULT, APP_DIR, env)
        push(flushed, "default", "sightings.tally")
        wait_for("a tally", lambda: "0 sightings in all" in worker.stdout(), worker)
        database.stop()
        database.start()
        push(flushed, "default", "sightings.tally")
        wait_for("a second tally", lambda: worker.stdout().count("0 sightings in all") == 2, worker)
        assert worker.terminate() == 0
    assert worker.stderr() == ""
