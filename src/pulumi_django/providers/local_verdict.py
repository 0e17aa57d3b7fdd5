"""Verdicts on the local target's one-off release containers (migration check and job, static
release, proxy switch).

pulumi-docker's `Container` with `attach` waits for a one-off container to exit but succeeds
whatever its exit status. A verdict takes the finished container's `exit_code` and
`container_logs` as inputs and fails `pulumi up` when the container failed, with its log tail, so
that nothing after the step runs. Verdicts talk to no Docker engine: everything they judge arrives
as inputs, so they run wherever Pulumi runs.

A container that failed stays in the state as run for its image, so a failure repeats on the
next `pulumi up` until the image changes; the error names the `pulumi up --replace` that runs it
again once the cause (a database not yet up, say) is fixed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from .release_task import changed

if TYPE_CHECKING:
    import pulumi_docker as docker


def replace_hint(props: Mapping[str, Any]) -> str:
    """The end of a verdict's error: how to run the failed container again."""
    return (
        "\nThat container has run for this image; once the cause is fixed, run it again with\n"
        f"    pulumi up --replace '{props['container_urn']}'"
    )


def finished_container_props(container: docker.Container) -> dict[str, Any]:
    """What a verdict reads from a finished pulumi-docker Container."""
    return {
        "container_id": container.id,
        "container_name": container.name,
        "container_urn": container.urn,
        "exit_code": container.exit_code,
        "container_logs": container.container_logs,
    }


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
