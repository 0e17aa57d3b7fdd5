"""The release's migration safety check: the analyzer (pulumi_django.migration_check) run inside
the new image against the real database, so it judges exactly the migrations the job will apply.

An unsafe finding nobody acknowledged (`migrations.acknowledged` in the stack config, or the
marker comment in the migration file) fails `pulumi up` with the findings before anything is
migrated. It runs once per release, never during a preview; deleting it does nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from ..migration_check import CheckResult, analyzer_arguments, embedded_command, format_report
from .release_commands import find_json_object, log_tail_section
from .release_task import (
    ReleaseTaskError,
    ReleaseTaskInputs,
    ReleaseTaskProvider,
    ReleaseTaskRunner,
    log_source,
    release_task,
)

# A new release is a new check. Acknowledgements are applied to the stored report each time
# the check runs; a check that refused left no state, so the next `pulumi up` runs it again.
RERUN_KEYS = ("release_id", "settings_module")
GROUP_PREFIX = "pulumi-django-check"
REPORT_KEYS = ("checked", "findings")
OUTPUT_KEYS = ("task_arn", "checked", "findings", "acknowledged_migrations")


class MigrationCheckFailed(ReleaseTaskError):
    """The check refused the release (`refused` lists what), or could not run (`refused`
    empty); nothing was migrated."""

    def __init__(self, message: str, refused: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.refused = list(refused)


def check_command(settings_module: str) -> list[str]:
    """The analyzer, embedded, checking the migrations not yet applied, printing JSON."""
    return embedded_command(analyzer_arguments(settings_module))


def judge_check(
    lines: Sequence[str], exit_code: int, acknowledged: Mapping[str, str], source: str
) -> CheckResult:
    """The analyzer's report read from its output, with the stack's acknowledgements applied.

    Raises MigrationCheckFailed when it printed no report (its exit status 2: settings, project
    or database unusable) or when an unsafe finding is left unacknowledged."""
    report = find_json_object(lines, REPORT_KEYS)
    if report is None:
        errors = [line for line in lines if line.startswith("error: ")]
        cause = errors[-1].removeprefix("error: ") if errors else "it printed no report"
        raise MigrationCheckFailed(
            f"migration check could not run (exit status {exit_code}): {cause}. "
            "Nothing was migrated; the fleet was not changed."
            f"{log_tail_section(source, lines)}"
        )
    result = CheckResult.from_json(report).acknowledge(dict(acknowledged))
    if result.refused:
        raise MigrationCheckFailed(
            "migration check refused the release: these migrations would break the version "
            "still running during the rollout. Nothing was migrated; the fleet was not "
            f"changed.\n\n{format_report(result)}",
            refused=result.refused,
        )
    return result


def check_outputs(result: CheckResult) -> dict[str, Any]:
    return {
        "checked": list(result.checked),
        "findings": [finding.to_json() for finding in result.findings],
        "acknowledged_migrations": sorted(
            {finding.migration for finding in result.findings if finding.acknowledged}
        ),
    }


def run_migration_check(props: Mapping[str, Any], runner: ReleaseTaskRunner) -> dict[str, Any]:
    """Runs the check described by the resource's props; its outputs, or MigrationCheckFailed."""
    task = release_task(
        props,
        purpose="migration check",
        group_prefix=GROUP_PREFIX,
        command=check_command(props["settings_module"]),
        timeout_seconds=float(props["timeout_seconds"]),
    )
    try:
        outcome = runner.run(
            task, logs_complete=lambda lines: find_json_object(lines, REPORT_KEYS) is not None
        )
    except ReleaseTaskError as error:
        raise MigrationCheckFailed(str(error)) from None
    result = judge_check(
        outcome.log_lines,
        outcome.exit_code,
        props.get("acknowledged") or {},
        log_source(task, outcome.log_stream),
    )
    return {"task_arn": outcome.task_arn, **check_outputs(result)}


class MigrationCheckProvider(ReleaseTaskProvider):
    run_task = staticmethod(run_migration_check)
    rerun_keys = RERUN_KEYS
    group_prefix = GROUP_PREFIX


class MigrationCheck(pulumi.dynamic.Resource, module="migrations", name="MigrationCheck"):
    """Refuses a release whose migrations would break the running version; see the module
    docstring."""

    task_arn: pulumi.Output[str]
    checked: pulumi.Output[list[str]]
    findings: pulumi.Output[list[dict[str, Any]]]
    acknowledged_migrations: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        task: ReleaseTaskInputs,
        settings_module: pulumi.Input[str],
        acknowledged: Mapping[str, str],
        timeout_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **task.props(),
            "settings_module": settings_module,
            "acknowledged": dict(acknowledged),
            "timeout_seconds": timeout_seconds,
            **dict.fromkeys(OUTPUT_KEYS),
        }
        super().__init__(MigrationCheckProvider(), name, props, opts)
