"""The release's migration job: one ECS task running `migrate` (and the further release commands)
in the new image, once per release, before any app task of that release starts.

It runs when the release (the image digest) or the commands change, never during a preview, and
fails `pulumi up` with the exit code, ECS's stop reason and the end of the task's log, so the
service it gates is never touched. Deleting it does nothing: migrations are not undone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from .release_commands import applied_migrations, release_command, what_failed
from .release_task import (
    ReleaseTaskError,
    ReleaseTaskInputs,
    ReleaseTaskProvider,
    ReleaseTaskRunner,
    describe_failure,
    release_task,
)

# A new release or a new command list is a new run; anything else (a new subnet, say) is not.
RERUN_KEYS = ("release_id", "commands")
GROUP_PREFIX = "pulumi-django-migrate"
FLEET_UNCHANGED = "The fleet was not changed: it still runs the previous release."
OUTPUT_KEYS = ("task_arn", "exit_code", "duration_seconds", "applied_migrations", "log_stream")


class MigrationJobError(ReleaseTaskError):
    """The migration job failed; nothing after it in the release ran."""


def run_migration_job(props: Mapping[str, Any], runner: ReleaseTaskRunner) -> dict[str, Any]:
    """Runs the job described by the resource's props; its outputs, or MigrationJobError."""
    commands: list[list[str]] = [list(command) for command in props["commands"]]
    timeout = float(props["timeout_seconds"])
    task = release_task(
        props,
        purpose="migration job",
        group_prefix=GROUP_PREFIX,
        command=release_command(commands, int(timeout)),
        timeout_seconds=timeout,
    )
    try:
        outcome = runner.run(task)
    except ReleaseTaskError as error:
        raise MigrationJobError(str(error)) from None
    if outcome.exit_code != 0:
        raise MigrationJobError(
            describe_failure(task, outcome, what_failed(commands, outcome.exit_code, int(timeout)))
            + f"\n{FLEET_UNCHANGED}"
        )
    return {
        "task_arn": outcome.task_arn,
        "exit_code": outcome.exit_code,
        "duration_seconds": outcome.duration_seconds,
        "applied_migrations": applied_migrations(outcome.log_lines),
        "log_stream": outcome.log_stream,
    }


class MigrationJobProvider(ReleaseTaskProvider):
    run_task = staticmethod(run_migration_job)
    rerun_keys = RERUN_KEYS
    group_prefix = GROUP_PREFIX


class MigrationTaskRun(pulumi.dynamic.Resource, module="migrations", name="MigrationJob"):
    """Migrates the database for a release; see the module docstring. The component that
    gates the fleet on it is `components.aws.migration_job.MigrationJob`; this resource keeps
    the type token `pulumi-python:dynamic/migrations:MigrationJob`, so stacks never replace it.
    """

    task_arn: pulumi.Output[str]
    exit_code: pulumi.Output[int]
    duration_seconds: pulumi.Output[float]
    applied_migrations: pulumi.Output[list[str]]
    log_stream: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        task: ReleaseTaskInputs,
        commands: Sequence[Sequence[pulumi.Input[str]]],
        timeout_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            **task.props(),
            "commands": [list(command) for command in commands],
            "timeout_seconds": timeout_seconds,
            **dict.fromkeys(OUTPUT_KEYS),
        }
        super().__init__(MigrationJobProvider(), name, props, opts)
