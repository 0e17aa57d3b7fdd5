"""The migration job's provider, driven directly against botocore Stubbers (the mock runtime never
calls dynamic providers): what it asks ECS for, and how each way of failing reaches the user."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from pulumi.runtime import rpc
from release_task_stubs import (
    APP_TASK_DEFINITION,
    CLUSTER,
    DIGEST,
    JOB_DEFINITION,
    LOG_GROUP,
    STARTED_BY,
    STREAM,
    TASK_ARN,
    TASK_DEFINITION,
    Aws,
    task_props,
)

from pulumi_django.providers.migration_job import (
    OUTPUT_KEYS,
    MigrationJobError,
    MigrationJobProvider,
)
from pulumi_django.providers.release_commands import release_command

OTHER_TASK_ARN = "arn:aws:ecs:us-east-1:123456789012:task/shop/feedfacefeedfacefeedfacefeedface"
MIGRATE = ["python", "manage.py", "migrate", "--noinput"]
COMMANDS = [MIGRATE, ["python", "manage.py", "createcachetable"]]


def job_props(**overrides: Any) -> dict[str, Any]:
    props = task_props(commands=COMMANDS, **dict.fromkeys(OUTPUT_KEYS))
    props.update(overrides)
    return props


def provider(aws: Aws) -> MigrationJobProvider:
    return aws.provider(MigrationJobProvider)


def job_definition_registered(aws: Aws) -> None:
    aws.release_definition_registered(
        "shop-app-migration-job", release_command(COMMANDS, 60), JOB_DEFINITION
    )


def the_job_starts(aws: Aws) -> None:
    """Nothing else running, the job's own revision registered, the task started."""
    aws.no_running_tasks()
    job_definition_registered(aws)
    aws.run_task_starts()


MIGRATE_LOG = [
    "+ python manage.py migrate --noinput",
    "Operations to perform:",
    "  Apply all migrations: admin, auth, shop",
    "Running migrations:",
    "  Applying shop.0002_price_db_default... OK",
    "  Applying shop.0003_index_sku... OK (0.412s)",
    "+ python manage.py createcachetable",
]


def test_success_runs_the_release_commands_in_an_app_only_revision_of_the_new_definition(
    aws: Aws,
) -> None:
    aws.no_running_tasks()
    job_definition_registered(aws)
    aws.run_task_starts(
        {
            "cluster": CLUSTER,
            "taskDefinition": JOB_DEFINITION,
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": STARTED_BY,
            "group": "pulumi-django-migrate:shop-app",
            "networkConfiguration": {
                "awsvpcConfiguration": {
                    "subnets": ["subnet-0a", "subnet-0b"],
                    "securityGroups": ["sg-0app"],
                    "assignPublicIp": "DISABLED",
                }
            },
        }
    )
    aws.task_is("PROVISIONING")
    aws.task_is("RUNNING")
    aws.task_stopped(0, stoppedReason="Essential container in task exited")
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(MIGRATE_LOG)

    result = provider(aws).create(job_props())

    assert result.id == "pulumi-django-migrate:shop-app"
    outs = result.outs or {}
    assert outs["task_arn"] == TASK_ARN
    assert outs["exit_code"] == 0
    assert outs["applied_migrations"] == ["shop.0002_price_db_default", "shop.0003_index_sku"]
    assert outs["duration_seconds"] == 12.0  # two polls of 6 s on the fake clock
    assert outs["log_stream"] == STREAM
    assert outs["release_id"] == DIGEST  # the next diff compares against this run
    # The app's definition has a proxy waiting for the app to turn healthy, which a migration
    # never does: the job's revision has the app container alone, with nothing to wait for.
    assert any("dependsOn" in item for item in APP_TASK_DEFINITION["containerDefinitions"])
    [registered] = aws.requests("RegisterTaskDefinition")
    [container] = registered["containerDefinitions"]
    assert container["name"] == "app"
    assert "healthCheck" not in container
    assert "dependsOn" not in container
    assert container["command"] == release_command(COMMANDS, 60)
    assert container["secrets"] and container["logConfiguration"] and container["user"]
    assert registered["volumes"] == [{"name": "app-tmp"}]
    [run] = aws.requests("RunTask")
    assert run["taskDefinition"] == JOB_DEFINITION
    assert "overrides" not in run
    assert [name for name, _params in aws.sent] == [
        "ListTasks",
        "DescribeTaskDefinition",
        "RegisterTaskDefinition",
        "RunTask",
        "DescribeTasks",
        "DescribeTasks",
        "DescribeTasks",
        "DeregisterTaskDefinition",  # only once the task has stopped
    ]


def test_without_a_prefix_the_log_is_read_under_the_releases_prefix(aws: Aws) -> None:
    """The release's containers log under `r-<12 hex of its digest>` (the task definition
    says so); a job given no prefix reads its stream there, not under the container's name."""
    [app] = [c for c in APP_TASK_DEFINITION["containerDefinitions"] if c["name"] == "app"]
    prefix = app["logConfiguration"]["options"]["awslogs-stream-prefix"]
    assert STREAM.startswith(f"{prefix}/app/")
    the_job_starts(aws)
    aws.task_stopped(0)
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(MIGRATE_LOG)

    result = provider(aws).create(job_props(log_stream_prefix=None))

    outs = result.outs or {}
    assert outs["log_stream"] == STREAM
    assert outs["applied_migrations"] == ["shop.0002_price_db_default", "shop.0003_index_sku"]


def test_non_zero_exit_fails_with_exit_code_stop_reason_and_the_last_50_log_lines(
    aws: Aws,
) -> None:
    lines = [f"line {number}" for number in range(1, 61)]
    lines[-1] = 'django.db.utils.IntegrityError: column "price" contains null values'
    the_job_starts(aws)
    aws.task_stopped(1, stoppedReason="Essential container in task exited")
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(lines)

    with pytest.raises(MigrationJobError) as failure:
        provider(aws).create(job_props())

    message = str(failure.value)
    assert "exited with 1" in message
    assert "python manage.py migrate --noinput && python manage.py createcachetable" in message
    assert "Essential container in task exited" in message
    assert f"stream {STREAM}" in message
    assert "    line 11\n" in message
    assert "    line 10\n" not in message
    assert message.count("\n    ") == 50
    assert 'column "price" contains null values' in message
    assert "still runs the previous release" in message


def test_timeout_stops_the_task_and_reports_its_log(aws: Aws) -> None:
    the_job_starts(aws)
    polls = 11  # 0, 6, ..., 60 s: the eleventh poll is past the 60 s limit
    for _poll in range(polls):
        aws.task_is("RUNNING")
    aws.ecs_stub.add_response(
        "stop_task",
        {"task": {"taskArn": TASK_ARN, "lastStatus": "RUNNING", "desiredStatus": "STOPPED"}},
        {
            "cluster": CLUSTER,
            "task": TASK_ARN,
            "reason": "pulumi-django: migration job exceeded 60 s",
        },
    )
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(["  Applying shop.0004_backfill..."])

    with pytest.raises(MigrationJobError) as failure:
        provider(aws).create(job_props())

    message = str(failure.value)
    assert "did not finish within 60 s" in message
    assert "migrations.timeoutSeconds" in message
    assert "Applying shop.0004_backfill..." in message
    assert aws.time.now - 1000.0 == 60.0


def test_run_task_failures_are_reported_with_awss_reason(aws: Aws) -> None:
    aws.no_running_tasks()
    job_definition_registered(aws)
    aws.ecs_stub.add_response(
        "run_task",
        {
            "tasks": [],
            "failures": [{"arn": "arn:aws:ecs:::capacity", "reason": "RESOURCE:MEMORY"}],
        },
    )
    aws.release_definition_deregistered(JOB_DEFINITION)

    with pytest.raises(
        MigrationJobError, match=r"could not start the migration job: RESOURCE:MEMORY"
    ):
        provider(aws).create(job_props())


@pytest.mark.parametrize(
    ("stopped", "expected"),
    [
        (
            {
                "stoppedReason": "CannotPullContainerError: pull image manifest has been retried "
                "5 time(s): failed to resolve ref shop@sha256:aaaa: not found",
                "stopCode": "TaskFailedToStart",
            },
            "CannotPullContainerError",
        ),
        (
            {
                "stoppedReason": "ResourceInitializationError: unable to pull secrets or "
                "registry auth: retrieve secret from ssm: AccessDeniedException",
                "container_reason": "secret django-secret-key not found",
            },
            "unable to pull secrets or registry auth: retrieve secret from ssm: "
            "AccessDeniedException / secret django-secret-key not found",
        ),
    ],
)
def test_a_task_that_cannot_start_fails_with_awss_stop_reason(
    aws: Aws, stopped: dict[str, Any], expected: str
) -> None:
    the_job_starts(aws)
    aws.task_is("PENDING")
    aws.task_stopped(None, **stopped)
    aws.release_definition_deregistered(JOB_DEFINITION)
    for _attempt in range(6):  # the stream never appears: read once, then retried
        aws.logs_stub.add_client_error("get_log_events", "ResourceNotFoundException")

    with pytest.raises(MigrationJobError) as failure:
        provider(aws).create(job_props())

    assert "stopped before its container ran" in str(failure.value)
    assert expected in str(failure.value)
    assert f"No output in CloudWatch log group {LOG_GROUP}, stream {STREAM}." in str(failure.value)


def test_a_rejected_run_task_call_is_one_clear_line(aws: Aws) -> None:
    aws.no_running_tasks()
    job_definition_registered(aws)
    aws.ecs_stub.add_client_error(
        "run_task",
        "InvalidParameterException",
        "No Fargate configuration exists for given values.",
    )
    aws.release_definition_deregistered(JOB_DEFINITION)

    with pytest.raises(MigrationJobError) as failure:
        provider(aws).create(job_props())

    assert str(failure.value) == (
        "migration job: AWS refused RunTask: InvalidParameterException: "
        "No Fargate configuration exists for given values."
    )


def test_refuses_to_start_while_another_migration_of_the_service_runs(aws: Aws) -> None:
    aws.ecs_stub.add_response(
        "list_tasks",
        {"taskArns": [OTHER_TASK_ARN]},
        {"cluster": CLUSTER, "startedBy": STARTED_BY},
    )
    aws.ecs_stub.add_response(
        "describe_tasks",
        {
            "tasks": [
                {
                    "taskArn": OTHER_TASK_ARN,
                    "lastStatus": "RUNNING",
                    "group": "pulumi-django-migrate:shop-app",
                }
            ]
        },
        {"cluster": CLUSTER, "tasks": [OTHER_TASK_ARN]},
    )
    # No further response is queued: the Stubber fails the test if the job starts anyway.

    with pytest.raises(MigrationJobError) as failure:
        provider(aws).create(job_props())

    message = str(failure.value)
    assert "migration job not started" in message
    assert OTHER_TASK_ARN in message
    assert "pulumi-django-migrate:shop-app, RUNNING" in message
    assert "aws ecs stop-task" in message


def test_a_stopped_task_under_the_tag_does_not_block(aws: Aws) -> None:
    aws.ecs_stub.add_response("list_tasks", {"taskArns": [OTHER_TASK_ARN]})
    aws.ecs_stub.add_response(
        "describe_tasks", {"tasks": [{"taskArn": OTHER_TASK_ARN, "lastStatus": "STOPPED"}]}
    )
    job_definition_registered(aws)
    aws.run_task_starts()
    aws.task_stopped(0)
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(["No migrations to apply."])

    outs = provider(aws).create(job_props()).outs or {}

    assert outs["applied_migrations"] == []


def test_the_same_release_twice_runs_nothing(aws: Aws) -> None:
    the_job_starts(aws)
    aws.task_stopped(0)
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(MIGRATE_LOG)
    job = provider(aws)
    state = job.create(job_props()).outs or {}

    # No further AWS response is queued: a second run would fail the Stubber.
    same = job.diff("pulumi-django-migrate:shop-app", state, job_props())
    assert same.changes is False
    moved_subnets = job_props(subnet_ids=["subnet-0c"], task_definition_arn=TASK_DEFINITION + "8")
    assert job.diff("id", state, moved_subnets).changes is False

    assert job.diff("id", state, job_props(release_id=DIGEST[:-1] + "b")).changes is True
    assert job.diff("id", state, job_props(commands=[MIGRATE])).changes is True
    # In a preview the new image's digest is unknown until it is built: a new release.
    assert job.diff("id", state, job_props(release_id=rpc.UNKNOWN)).changes is True


def test_an_update_is_a_new_run(aws: Aws) -> None:
    the_job_starts(aws)
    aws.task_stopped(0)
    aws.release_definition_deregistered(JOB_DEFINITION)
    aws.log_has(["  Applying shop.0005_x... OK"])

    result = provider(aws).update("id", job_props(), job_props(release_id="new"))

    assert (result.outs or {})["applied_migrations"] == ["shop.0005_x"]
    assert (result.outs or {})["release_id"] == "new"


def test_delete_touches_nothing(aws: Aws) -> None:
    provider(aws).delete("id", job_props())  # the Stubbers hold no response: no AWS call


def test_the_release_runner_runs_commands_in_order_and_stops_at_the_first_failure(
    tmp_path: Any,
) -> None:
    marker = tmp_path / "ran"
    commands = [
        [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('first ')"],
        [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"],
        [sys.executable, "-c", f"open({str(marker)!r}, 'a').write('third')"],
    ]
    command = release_command(commands, 30)
    command[0] = sys.executable

    result = subprocess.run(command, capture_output=True, text=True, check=False)

    assert result.returncode == 3
    assert marker.read_text() == "first "
    assert result.stdout.splitlines()[0] == f"+ {sys.executable} -c " + commands[0][2]
    assert "boom" in result.stdout


def test_the_release_runner_kills_commands_past_the_time_limit() -> None:
    command = release_command([[sys.executable, "-c", "import time; time.sleep(30)"]], 1)
    command[0] = sys.executable

    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)

    assert result.returncode == 124
    assert "timed out after 1 s" in result.stdout
    assert json.loads(command[4])[0][0] == sys.executable
