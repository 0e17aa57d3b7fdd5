"""The local target's migration steps: containers ordered before the app containers (mock-recorded),
verdicts that turn a refusal or a non-zero exit into a failed `pulumi up` (driven directly), and
the very commands the containers run, run here against a throwaway PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker
import pytest
from docker_logs import docker_frames
from pulumi.runtime import rpc

from pulumi_django.cli.rehearsal.servers import Postgres
from pulumi_django.components.local.migration_job import (
    LocalMigrationJob,
    LocalMigrationJobArgs,
)
from pulumi_django.config.migrations import MigrationsConfig
from pulumi_django.migration_check import RULES, CheckResult, Finding
from pulumi_django.providers.local_migration import (
    CHECK_RERUN_KEYS,
    JOB_RERUN_KEYS,
    LocalCheckVerdict,
    LocalJobVerdict,
    LocalMigrationError,
    judge_local_check,
    judge_local_job,
)
from pulumi_django.providers.local_verdict import LocalVerdictProvider
from pulumi_django.providers.migration_check import check_command
from pulumi_django.providers.release_commands import (
    container_log_lines,
    release_command,
    release_commands,
)
from pulumi_django.recorder import SECRET, Recording, record
from pulumi_django.release import release_order

IMAGE = "docker:index/image:Image"
CONTAINER = "docker:index/container:Container"
CHECK_VERDICT = "pulumi-python:dynamic/migrations:LocalCheckVerdict"
JOB_VERDICT = "pulumi-python:dynamic/migrations:LocalJobVerdict"
PROJECT = Path(__file__).parent / "fixtures" / "release_project"
CONTAINER_URN = (
    "urn:pulumi:dev::shop::pulumi-django:local:MigrationJob$docker:index/container:Container"
    "::shop-migrations-job"
)
UNSAFE = "releaseapp.0002_add_price"


def record_local(
    migrations: dict[str, Any] | None = None, built: list[LocalMigrationJob] | None = None
) -> Recording:
    """Image, migration steps (appended to `built`), then two app replicas taking the gate as
    their image."""
    config = MigrationsConfig.model_validate(migrations or {})
    built = [] if built is None else built

    def program() -> None:
        image = pulumi.CustomResource(
            IMAGE, "shop-image", {"imageName": "shop:dev", "repoDigest": None}
        )
        steps = LocalMigrationJob(
            "shop-migrations",
            LocalMigrationJobArgs(
                config=config,
                settings_module="shop.settings",
                image=image.repoDigest,  # type: ignore[attr-defined]
                network_name="shop-net",
                environment={
                    "DJANGO_SETTINGS_MODULE": "shop.settings",
                    "DATABASE_URL": pulumi.Output.secret("postgres://shop:pw@shop-db:5432/shop"),
                },
                after=[image],
            ),
        )
        built.append(steps)
        for replica in range(2):
            docker.Container(f"shop-app-{replica}", image=steps.gate)

    return record(program, project="shop", stack="dev", config={"aws:region": "us-east-1"})


def test_the_check_and_the_job_run_in_order_before_the_app_containers() -> None:
    recording = record_local()

    check = recording.one(CONTAINER, "shop-migrations-check")
    check_verdict = recording.one(CHECK_VERDICT, "shop-migrations-check-verdict")
    job = recording.one(CONTAINER, "shop-migrations-job")
    job_verdict = recording.one(JOB_VERDICT, "shop-migrations-job-verdict")
    image = recording.one(IMAGE)
    assert recording.depends_on(check.urn, image.urn)
    assert recording.depends_on(check_verdict.urn, check.urn)
    assert recording.depends_on(job.urn, check_verdict.urn)
    assert recording.depends_on(job_verdict.urn, job.urn)
    assert not recording.depends_on(check.urn, job.urn)
    for replica in recording.find(CONTAINER, r"shop-app-\d"):
        assert recording.depends_on(replica.urn, job_verdict.urn)
        assert replica.property_dependencies["image"] == [job_verdict.urn]
        assert replica.inputs["image"] == f"shop@sha256:{'0' * 64}"
    order = release_order(recording)
    assert [step.step.key for step in order] == ["image", "check", "migrate"]
    assert all(step.ordered for step in order[1:])


def test_the_containers_run_the_release_commands_on_the_app_network_and_environment() -> None:
    recording = record_local({"releaseCommands": [["python", "manage.py", "createcachetable"]]})

    job = recording.one(CONTAINER, "shop-migrations-job").inputs
    check = recording.one(CONTAINER, "shop-migrations-check").inputs

    commands = [
        ["python", "manage.py", "migrate", "--noinput"],
        ["python", "manage.py", "createcachetable"],
    ]
    assert job["command"] == release_command(commands, 900)
    assert check["command"] == check_command("shop.settings")
    for container in (job, check):
        assert container["attach"] is True
        assert container["logs"] is True
        assert container["mustRun"] is False
        assert container["networksAdvanced"] == [{"name": "shop-net"}]
        assert container["image"] == f"shop@sha256:{'0' * 64}"
        # Sorted KEY=VALUE pairs; DATABASE_URL stays a secret.
        assert container["envs"] == [SECRET, "DJANGO_SETTINGS_MODULE=shop.settings"]
    verdict = recording.one(JOB_VERDICT).inputs
    assert verdict["commands"] == commands
    assert verdict["timeout_seconds"] == 900


def test_without_the_check_the_job_follows_the_image() -> None:
    built: list[LocalMigrationJob] = []
    recording = record_local({"check": False}, built)

    assert recording.find(CHECK_VERDICT) == []
    assert [container.name for container in recording.find(CONTAINER, "shop-migrations-.*")] == [
        "shop-migrations-job"
    ]
    job = recording.one(CONTAINER, "shop-migrations-job")
    assert recording.depends_on(job.urn, recording.one(IMAGE).urn)
    (steps,) = built
    assert (steps.check_container, steps.check_verdict) == (None, None)
    assert isinstance(steps.job_container, docker.Container)
    assert isinstance(steps.job_verdict, LocalJobVerdict)


def test_the_containers_and_verdicts_are_the_component_s_attributes() -> None:
    built: list[LocalMigrationJob] = []
    record_local(built=built)

    (steps,) = built

    assert isinstance(steps.check_container, docker.Container)
    assert isinstance(steps.check_verdict, LocalCheckVerdict)
    assert isinstance(steps.job_container, docker.Container)
    assert isinstance(steps.job_verdict, LocalJobVerdict)


def test_container_logs_lose_docker_frame_headers_and_colours() -> None:
    logs = docker_frames(
        (1, "Operations to perform:\n"),
        (1, "  Applying shop.0002_x..."),  # Django writes " OK" separately
        (1, " \x1b[32;1mOK\x1b[0m\n"),
        (2, "x" * 200 + "\n"),  # a length byte >= 0x80 (invalid UTF-8)
        (1, "0123456\n\n"),  # length 10: a newline inside the header
    )

    lines = container_log_lines(logs)

    assert lines == [
        "Operations to perform:",
        "  Applying shop.0002_x... OK",
        "x" * 200,
        "0123456",
        "",
    ]


def job_props(exit_code: int, logs: str, **overrides: Any) -> dict[str, Any]:
    return {
        "container_id": "c0ffee",
        "container_name": "shop-migrations-job-1a2b3c4",
        "container_urn": CONTAINER_URN,
        "exit_code": exit_code,
        "container_logs": logs,
        "image": "shop@sha256:abc",
        "commands": [["python", "manage.py", "migrate", "--noinput"]],
        "timeout_seconds": 900,
        "applied_migrations": None,
        **overrides,
    }


def test_the_job_verdict_passes_a_zero_exit_with_the_applied_migrations() -> None:
    logs = docker_frames((1, "  Applying shop.0002_x... OK\n  Applying shop.0003_y... OK\n"))

    result = LocalVerdictProvider(judge_local_job, JOB_RERUN_KEYS).create(job_props(0, logs))

    assert result.id == "c0ffee"
    assert (result.outs or {})["applied_migrations"] == ["shop.0002_x", "shop.0003_y"]


def test_the_job_verdict_fails_a_non_zero_exit_with_the_log_tail_and_the_way_to_rerun() -> None:
    lines = [f"line {number}" for number in range(1, 71)]
    logs = docker_frames(*((1, f"{line}\n") for line in lines))

    with pytest.raises(LocalMigrationError) as failure:
        judge_local_job(job_props(1, logs))

    message = str(failure.value)
    assert message.startswith(
        "migration job failed: `python manage.py migrate --noinput` exited with 1, in container "
        "shop-migrations-job-1a2b3c4"
    )
    assert "Last 50 lines of the container output:\n    line 21\n" in message
    assert "line 20\n" not in message
    assert "The app containers were not changed" in message
    assert f"pulumi up --replace '{CONTAINER_URN}'" in message


def test_the_job_verdict_reports_the_runners_timeout() -> None:
    logs = docker_frames((1, "pulumi-django: release commands timed out after 900 s\n"))

    with pytest.raises(LocalMigrationError, match=r"did not finish within 900 s"):
        judge_local_job(job_props(124, logs))


def test_a_verdict_judges_each_container_run_once() -> None:
    job = LocalVerdictProvider(judge_local_job, JOB_RERUN_KEYS)
    check = LocalVerdictProvider(judge_local_check, CHECK_RERUN_KEYS)
    state = job_props(0, "", acknowledged={})

    assert job.diff("c0ffee", state, job_props(0, "")).changes is False
    assert job.diff("c0ffee", state, job_props(0, "", container_id="new")).changes is True
    # Replaced in a preview: the new container's id is unknown until it has run.
    assert job.diff("c0ffee", state, job_props(0, "", container_id=rpc.UNKNOWN)).changes is True
    acknowledged = job_props(0, "", acknowledged={UNSAFE: "written by release 41 already"})
    assert job.diff("c0ffee", state, acknowledged).changes is False
    assert check.diff("c0ffee", state, acknowledged).changes is True


def analyzer_logs(result: CheckResult) -> str:
    return docker_frames(
        (2, "System check identified no issues.\n"),
        (1, json.dumps(result.to_json(), indent=2) + "\n"),
    )


def check_props(logs: str, exit_code: int, acknowledged: dict[str, str]) -> dict[str, Any]:
    return {
        "container_id": "c0ffee",
        "container_name": "shop-migrations-check-9f8e7d6",
        "container_urn": CONTAINER_URN.replace("job", "check"),
        "exit_code": exit_code,
        "container_logs": logs,
        "acknowledged": acknowledged,
    }


def unsafe_result() -> CheckResult:
    rule = RULES["not-null-column-without-db-default"]
    return CheckResult(
        checked=[UNSAFE],
        findings=[
            Finding(UNSAFE, "AddField price", rule.id, rule.severity, rule.what, rule.suggestion)
        ],
    )


def test_the_check_verdict_refuses_an_unacknowledged_unsafe_migration() -> None:
    with pytest.raises(LocalMigrationError) as failure:
        judge_local_check(check_props(analyzer_logs(unsafe_result()), 1, {}))

    message = str(failure.value)
    assert "migration check refused the release" in message
    assert UNSAFE in message
    assert "[not-null-column-without-db-default]" in message
    assert RULES["not-null-column-without-db-default"].suggestion in message


def test_the_check_verdict_passes_an_acknowledged_one() -> None:
    reason = "price is set by every running version"
    outs = judge_local_check(check_props(analyzer_logs(unsafe_result()), 1, {UNSAFE: reason}))

    assert outs["acknowledged_migrations"] == [UNSAFE]
    assert outs["findings"][0]["acknowledgement"] == reason


def test_the_check_verdict_fails_when_the_analyzer_could_not_run() -> None:
    logs = docker_frames((2, "error: the database is unreachable: could not translate host\n"))

    with pytest.raises(LocalMigrationError) as failure:
        judge_local_check(check_props(logs, 2, {}))

    message = str(failure.value)
    assert "could not run (exit status 2): the database is unreachable" in message
    assert "Last 1 lines of container shop-migrations-check-9f8e7d6" in message


def on_this_machine(command: list[str]) -> list[str]:
    """A container command run by this interpreter instead of the image's `python`."""
    return [sys.executable if part == "python" else part for part in command]


def run_in_project(command: list[str], database_url: str) -> subprocess.CompletedProcess[str]:
    """Runs a container command with the fixture project as the working directory, stdout and
    stderr interleaved as a container's log has them."""
    return subprocess.run(
        command,
        cwd=PROJECT,
        env={**os.environ, "DATABASE_URL": database_url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_the_real_commands_check_then_migrate_a_real_database(pg: Postgres) -> None:
    """The check's embedded analyzer and the job's runner, as the containers run them, against
    PostgreSQL holding release N-1; their real output judged by the verdicts."""
    python = sys.executable
    migrate = [python, "manage.py", "migrate", "--noinput"]
    url = pg.create_database("local_job_release")
    previous = run_in_project([python, "manage.py", "migrate", "releaseapp", "0001"], url)
    assert previous.returncode == 0, previous.stdout

    check = run_in_project(on_this_machine(check_command("releaseapp.settings")), url)
    with pytest.raises(LocalMigrationError, match=r"refused the release") as refused:
        judge_local_check(check_props(check.stdout, check.returncode, {}))
    assert f"{UNSAFE}\n  UNSAFE [not-null-column-without-db-default]" in str(refused.value)
    passed = judge_local_check(
        check_props(check.stdout, check.returncode, {UNSAFE: "no old version writes rows"})
    )
    assert passed["checked"] == [UNSAFE]

    failing = release_commands(migrate, [[python, "manage.py", "no_such_command"]])
    job = run_in_project(on_this_machine(release_command(failing, 60)), url)
    assert job.returncode == 1
    assert f"Applying {UNSAFE}... OK" in job.stdout
    with pytest.raises(LocalMigrationError) as failed:
        judge_local_job(job_props(job.returncode, job.stdout, commands=failing))
    assert "Unknown command: 'no_such_command'" in str(failed.value)
    assert f"+ {python} manage.py no_such_command" in str(failed.value)

    rerun = run_in_project(on_this_machine(release_command([migrate], 60)), url)
    outs = judge_local_job(job_props(rerun.returncode, rerun.stdout))
    # The failing run above had applied 0002 already: nothing is left to apply.
    assert outs["applied_migrations"] == []
    assert "No migrations to apply." in rerun.stdout


@pytest.mark.slow
def test_the_job_reports_what_migrate_applied(pg: Postgres) -> None:
    url = pg.create_database("local_job_fresh")
    migrate = [sys.executable, "manage.py", "migrate"]

    job = run_in_project(on_this_machine(release_command([migrate], 60)), url)
    outs = judge_local_job(job_props(job.returncode, job.stdout))

    assert outs["applied_migrations"] == ["releaseapp.0001_initial", UNSAFE]
