"""Verdicts on the local target's migration containers.

pulumi-docker's `Container` with `attach` waits for a one-off container to exit but succeeds
whatever its exit status. These resources take the finished container's `exit_code` and
`container_logs` as inputs and fail `pulumi up` when the check refused the release or the job
failed, with the container's log tail; the app containers wait for them. They talk to no
Docker engine: everything they judge arrives as inputs, so they run wherever Pulumi runs.

A container that failed stays in the state as run for its image, so a failure repeats on the
next `pulumi up` until the image changes; the error names the `pulumi up --replace` that runs it
again once the cause (a database not yet up, say) is fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from .migration_check import check_outputs, judge_check
from .release_commands import (
    applied_migrations,
    container_log_lines,
    log_tail_section,
    what_failed,
)
from .release_task import ReleaseTaskError, changed

if TYPE_CHECKING:
    import pulumi_docker as docker

# Each container run is judged once; a new container (new image, command or environment) is a
# new run. The check is judged again when the acknowledgements change.
JOB_RERUN_KEYS = ("container_id",)
CHECK_RERUN_KEYS = ("container_id", "acknowledged")
APPS_UNCHANGED = "The app containers were not changed: they still run the previous release."


class LocalMigrationError(ReleaseTaskError):
    """The local check refused the release or the local job failed."""


def _rerun_hint(props: Mapping[str, Any]) -> str:
    return (
        "\nThat container has run for this image; once the cause is fixed, run it again with\n"
        f"    pulumi up --replace '{props['container_urn']}'"
    )


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
            f"{_rerun_hint(props)}"
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
        raise LocalMigrationError(f"{error}{_rerun_hint(props)}") from None
    return check_outputs(result)


class LocalVerdictProvider(pulumi.dynamic.ResourceProvider):
    """Judges a finished container with `judge` once per run (a change of `rerun_keys`)."""

    def __init__(
        self, judge: Callable[[Mapping[str, Any]], dict[str, Any]], rerun_keys: Sequence[str]
    ) -> None:
        super().__init__()
        self.judge = judge
        self.rerun_keys = tuple(rerun_keys)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        return pulumi.dynamic.DiffResult(changes=changed(olds, news, self.rerun_keys))

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(
            str(props["container_id"]), {**props, **self.judge(props)}
        )

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult({**news, **self.judge(news)})


def _container_props(container: docker.Container) -> dict[str, Any]:
    """What a verdict reads from a finished pulumi-docker Container."""
    return {
        "container_id": container.id,
        "container_name": container.name,
        "container_urn": container.urn,
        "exit_code": container.exit_code,
        "container_logs": container.container_logs,
    }


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
            **_container_props(container),
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
            **_container_props(container),
            "acknowledged": dict(acknowledged),
            "checked": None,
            "findings": None,
            "acknowledged_migrations": None,
        }
        super().__init__(
            LocalVerdictProvider(judge_local_check, CHECK_RERUN_KEYS), name, props, opts
        )
