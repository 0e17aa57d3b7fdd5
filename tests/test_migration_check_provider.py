"""The migration check's provider, driven directly against botocore Stubbers: it runs the embedded
analyzer in a one-off revision of the new task definition, reads the report from the task's log,
applies the stack's acknowledgements, and refuses a release with an unsafe finding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import ANY
from release_task_stubs import (
    CLUSTER,
    DIGEST,
    LOG_GROUP,
    STARTED_BY,
    STREAM,
    TASK_ARN,
    TASK_DEFINITION,
    Aws,
    task_props,
)

from pulumi_django.migration_check import RULES, CheckResult, Finding
from pulumi_django.providers.migration_check import (
    OUTPUT_KEYS,
    REPORT_KEYS,
    MigrationCheckFailed,
    MigrationCheckProvider,
    check_command,
)
from pulumi_django.providers.release_commands import find_json_object
from pulumi_django.providers.release_task import OVERRIDES_LIMIT

CHECK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-app-migration-check:3"
UNSAFE_MIGRATION = "shop.0002_add_price"


def check_props(**overrides: Any) -> dict[str, Any]:
    props = task_props(
        settings_module="shop.settings", acknowledged={}, **dict.fromkeys(OUTPUT_KEYS)
    )
    props.update(overrides)
    return props


def finding(migration: str, rule: str) -> Finding:
    return Finding(
        migration=migration,
        operation=f"AddField price to {migration.split('.')[0]}.product",
        rule=rule,
        severity=RULES[rule].severity,
        message=RULES[rule].what,
        suggestion=RULES[rule].suggestion,
    )


def analyzer_output(result: CheckResult) -> list[str]:
    """The log lines of the analyzer run with --json (it prints the report indented), after the
    project's own chatter, which the analyzer sends to stderr."""
    return [
        "System check identified some issues: (silenced)",
        *json.dumps(result.to_json(), indent=2).splitlines(),
    ]


def unsafe_report() -> CheckResult:
    return CheckResult(
        checked=["shop.0001_initial", UNSAFE_MIGRATION, "shop.0003_index_sku"],
        findings=[finding(UNSAFE_MIGRATION, "not-null-column-without-db-default")],
    )


def the_check_runs(aws: Aws, exit_code: int, lines: list[str]) -> None:
    """The calls of one check: nothing else running, a one-off task definition revision with
    the embedded analyzer as the app container's command, the task, its log."""
    app_container = {
        "name": "app",
        "image": DIGEST,
        "command": ["gunicorn", "shop.wsgi"],
        "essential": True,
        "secrets": [{"name": "DATABASE_URL", "valueFrom": "arn:aws:secretsmanager:db"}],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {"awslogs-group": LOG_GROUP, "awslogs-stream-prefix": "app"},
        },
    }
    proxy_container = {"name": "proxy", "image": "nginx:1.27-alpine", "essential": True}
    aws.no_running_tasks()
    aws.ecs_stub.add_response(
        "describe_task_definition",
        {
            "taskDefinition": {
                "taskDefinitionArn": TASK_DEFINITION,
                "family": "shop-app",
                "revision": 7,
                "status": "ACTIVE",
                "taskRoleArn": "arn:aws:iam::123456789012:role/shop-task",
                "executionRoleArn": "arn:aws:iam::123456789012:role/shop-execution",
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "compatibilities": ["EC2", "FARGATE"],
                "cpu": "512",
                "memory": "1024",
                "containerDefinitions": [app_container, proxy_container],
                "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver"}],
            }
        },
        {"taskDefinition": TASK_DEFINITION},
    )
    aws.ecs_stub.add_response(
        "register_task_definition",
        {"taskDefinition": {"taskDefinitionArn": CHECK_DEFINITION}},
        {
            "family": "shop-app-migration-check",
            "taskRoleArn": "arn:aws:iam::123456789012:role/shop-task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/shop-execution",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "512",
            "memory": "1024",
            "containerDefinitions": [
                {**app_container, "command": check_command("shop.settings")},
                proxy_container,
            ],
        },
    )
    aws.run_task_starts(
        {
            "cluster": CLUSTER,
            "taskDefinition": CHECK_DEFINITION,
            "launchType": "FARGATE",
            "count": 1,
            "startedBy": STARTED_BY,
            "group": "pulumi-django-check:shop-app",
            "networkConfiguration": ANY,
        }
    )
    aws.task_is("RUNNING")
    aws.task_stopped(exit_code, stoppedReason="Essential container in task exited")
    aws.ecs_stub.add_response(
        "deregister_task_definition", {}, {"taskDefinition": CHECK_DEFINITION}
    )
    aws.log_has(lines)


def provider(aws: Aws) -> MigrationCheckProvider:
    return aws.provider(MigrationCheckProvider)


def test_the_embedded_analyzer_is_too_long_for_a_runtask_override() -> None:
    # Why the check runs in a one-off task definition revision instead of an override.
    command = check_command("shop.settings")
    assert len(json.dumps(command)) > OVERRIDES_LIMIT
    assert command[:2] == ["python", "-c"]
    assert command[-3:] == ["--settings", "shop.settings", "--json"]


def test_refuses_an_unsafe_unacknowledged_migration_with_the_findings(aws: Aws) -> None:
    the_check_runs(aws, 1, analyzer_output(unsafe_report()))

    with pytest.raises(MigrationCheckFailed) as failure:
        provider(aws).create(check_props())

    message = str(failure.value)
    rule = RULES["not-null-column-without-db-default"]
    assert "refused the release" in message
    assert "Nothing was migrated; the fleet was not changed." in message
    assert UNSAFE_MIGRATION in message
    assert "[not-null-column-without-db-default]" in message
    assert rule.what in message
    assert rule.suggestion in message
    assert "migrations.acknowledged" in message


def test_passes_when_the_unsafe_migration_is_acknowledged(aws: Aws) -> None:
    the_check_runs(aws, 1, analyzer_output(unsafe_report()))
    reason = "price is written by release 41 already"

    result = provider(aws).create(check_props(acknowledged={UNSAFE_MIGRATION: reason}))

    outs = result.outs or {}
    assert result.id == "pulumi-django-check:shop-app"
    assert outs["task_arn"] == TASK_ARN
    assert outs["acknowledged_migrations"] == [UNSAFE_MIGRATION]
    assert outs["checked"] == ["shop.0001_initial", UNSAFE_MIGRATION, "shop.0003_index_sku"]
    assert outs["findings"][0]["acknowledged"] is True
    assert outs["findings"][0]["acknowledgement"] == reason


def test_an_acknowledgement_of_another_migration_does_not_help(aws: Aws) -> None:
    the_check_runs(aws, 1, analyzer_output(unsafe_report()))

    with pytest.raises(MigrationCheckFailed, match="refused the release"):
        provider(aws).create(
            check_props(acknowledged={"shop.0003_index_sku": "not the risky one at all"})
        )


def test_passes_on_a_safe_release_with_warnings_only(aws: Aws) -> None:
    report = CheckResult(
        checked=["shop.0003_index_sku"],
        findings=[finding("shop.0003_index_sku", "index-created-non-concurrently")],
    )
    the_check_runs(aws, 0, analyzer_output(report))

    outs = provider(aws).create(check_props()).outs or {}

    assert outs["checked"] == ["shop.0003_index_sku"]
    assert [item["rule"] for item in outs["findings"]] == ["index-created-non-concurrently"]
    assert outs["acknowledged_migrations"] == []
    assert outs["release_id"] == DIGEST


def test_an_analyzer_that_cannot_run_fails_with_its_error_and_the_log(aws: Aws) -> None:
    lines = [
        "error: the database is unreachable: connection to server at "
        '"shop.abc.rds.amazonaws.com" failed: timeout expired'
    ]
    the_check_runs(aws, 2, lines)
    for _retry in range(5):  # the report may reach CloudWatch late: the log is read again
        aws.log_has(lines)

    with pytest.raises(MigrationCheckFailed) as failure:
        provider(aws).create(check_props())

    message = str(failure.value)
    assert message.startswith(
        "migration check could not run (exit status 2): the database is unreachable"
    )
    assert f"Last 1 lines of CloudWatch log group {LOG_GROUP}, stream {STREAM}" in message


def test_a_new_release_is_checked_again_and_the_same_one_is_not(aws: Aws) -> None:
    check = provider(aws)
    state = check_props(release_id=DIGEST, findings=[], checked=[])

    assert check.diff("id", state, check_props()).changes is False
    assert check.diff("id", state, check_props(acknowledged={"a.0001_x": "y" * 10})).changes is (
        False
    )
    assert check.diff("id", state, check_props(release_id="other")).changes is True
    assert check.diff("id", state, check_props(settings_module="x.settings")).changes is True


def test_the_report_is_found_however_the_log_driver_cut_it() -> None:
    report = unsafe_report().to_json()
    one_line = json.dumps(report)
    app_logs = ['{"level": "info", "event": "settings loaded"}']

    assert find_json_object([*app_logs, one_line], REPORT_KEYS) == report
    cut = [one_line[:100], one_line[100:250], one_line[250:]]  # long lines arrive in pieces
    assert find_json_object([*app_logs, *cut], REPORT_KEYS) == report
    printed = json.dumps(report, indent=2).splitlines()
    assert find_json_object([*app_logs, *printed, "trailing chatter"], REPORT_KEYS) == report
    assert find_json_object([*app_logs, one_line[:-1]], REPORT_KEYS) is None
