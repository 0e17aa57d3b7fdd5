"""Verdicts on the local target's migration containers (see `local_verdict`): they fail
`pulumi up` when the check refused the release or the job failed, with the container's log tail;
the app containers wait for them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from .local_verdict import LocalVerdictProvider, finished_container_props, replace_hint
from .migration_check import check_outputs, judge_check
from .release_commands import (
    applied_migrations,
    container_log_lines,
    log_tail_section,
    what_failed,
)
from .release_task import ReleaseTaskError

if TYPE_CHECKING:
    import pulumi_docker as docker

# Each container run is judged once; a new container (new image, command or environment) is a
# new run. The check is judged again when the acknowledgements change.
JOB_RERUN_KEYS = ("container_id",)
CHECK_RERUN_KEYS = ("container_id", "acknowledged")
APPS_UNCHANGED = "The app containers were not changed: they still run the previous release."


class LocalMigrationError(ReleaseTaskError):
    """The local check refused the release or the local job failed."""


def judge_local_job(props: Mapping[str, Any]) -> dict[str, Any]:
    """The job container's outputs, or LocalMigrationError with its exit status and log tail."""
    lines = container_log_lines(props.get("container_logs"))
    exit_code = int(props["exit_code"])
    if exit_code != 0:
        commands = [list(command) for command in props["commands"]]
        raise LocalMigrationError(
            f"migration job failed: "
            f"{what_failed(commands, exit_code, int(props['timeout_seconds']))}, "
            f"in container {props['container_name']}"
            f"{log_tail_section('the container output', lines)}\n{APPS_UNCHANGED}"
            f"{replace_hint(props)}"
        )
    return {"applied_migrations": applied_migrations(lines)}


def judge_local_check(props: Mapping[str, Any]) -> dict[str, Any]:
    """The check container's report with the acknowledgements applied, or LocalMigrationError."""
    lines = container_log_lines(props.get("container_logs"))
    try:
        result = judge_check(
            lines,
            int(props["exit_code"]),
            props.get("acknowledged") or {},
            f"container {props['container_name']}",
        )
    except ReleaseTaskError as error:
        raise LocalMigrationError(f"{error}{replace_hint(props)}") from None
    return check_outputs(result)


class LocalJobVerdict(pulumi.dynamic.Resource, module="migrations", name="LocalJobVerdict"):
    """Fails `pulumi up` when the local migration container exited non-zero."""

    image: pulumi.Output[str]
    exit_code: pulumi.Output[int]
    applied_migrations: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        container: docker.Container,
        image: pulumi.Input[str],
        commands: Sequence[Sequence[str]],
        timeout_seconds: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            **finished_container_props(container),
            "image": image,
            "commands": [list(command) for command in commands],
            "timeout_seconds": timeout_seconds,
            "applied_migrations": None,
        }
        super().__init__(LocalVerdictProvider(judge_local_job, JOB_RERUN_KEYS), name, props, opts)


class LocalCheckVerdict(pulumi.dynamic.Resource, module="migrations", name="LocalCheckVerdict"):
    """Fails `pulumi up` when the local check container found an unacknowledged unsafe
    migration, or could not check."""

    checked: pulumi.Output[list[str]]
    findings: pulumi.Output[list[dict[str, Any]]]
    acknowledged_migrations: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        container: docker.Container,
        acknowledged: Mapping[str, str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            **finished_container_props(container),
            "acknowledged": dict(acknowledged),
            "checked": None,
            "findings": None,
            "acknowledged_migrations": None,
        }
        super().__init__(
            LocalVerdictProvider(judge_local_check, CHECK_RERUN_KEYS), name, props, opts
        )
