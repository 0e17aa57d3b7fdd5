"""The migration check's provider, driven directly against botocore Stubbers: it runs the embedded
analyzer in a one-off revision of the new task definition, reads the report from the task's log,
applies the stack's acknowledgements, and refuses a release with an unsafe finding."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import ANY
from release_task_stubs import (
    CHECK_DEFINITION,
    CLUSTER,
    DIGEST,
    LOG_GROUP,
    STARTED_BY,
    STREAM,
    TASK_ARN,
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

# ECS's limit on RunTask's overrides, JSON punctuation included.
RUN_TASK_OVERRIDES_LIMIT = 8192
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
    """The calls of one check: nothing else running, a one-off revision of the task definition
    with the app container alone running the embedded analyzer, the task, its log."""
    aws.no_running_tasks()
    aws.release_definition_registered(
        "shop-app-migration-check", check_command("shop.settings"), CHECK_DEFINITION
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
    aws.release_definition_deregistered(CHECK_DEFINITION)
    aws.log_has(lines)


def provider(aws: Aws) -> MigrationCheckProvider:
    return aws.provider(MigrationCheckProvider)


def test_the_embedded_analyzer_is_too_long_for_a_runtask_override() -> None:
    # Why the command travels in the one-off task definition revision, not in an override.
    command = check_command("shop.settings")
    assert len(json.dumps(command)) > RUN_TASK_OVERRIDES_LIMIT
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


def test_the_check_runs_in_an_app_only_revision_deregistered_after_the_task_stops(
    aws: Aws,
) -> None:
    the_check_runs(aws, 0, analyzer_output(CheckResult(checked=[], findings=[])))

    provider(aws).create(check_props())

    [registered] = aws.requests("RegisterTaskDefinition")
    [container] = registered["containerDefinitions"]
    assert container["name"] == "app"
    assert "healthCheck" not in container
    assert "dependsOn" not in container
    assert container["command"] == check_command("shop.settings")
    [run] = aws.requests("RunTask")
    assert run["taskDefinition"] == CHECK_DEFINITION
    assert "overrides" not in run
    operations = [name for name, _params in aws.sent]
    assert operations[-3:] == ["DescribeTasks", "DescribeTasks", "DeregisterTaskDefinition"]


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
