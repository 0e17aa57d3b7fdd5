"""The verdict on the local media volume's ownership container (see `local_verdict`): it fails
`pulumi up` when the volume could not be given to the app user, since every upload would then
fail with a permission error while the site looked healthy. The migration job and the replicas
wait for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from .local_verdict import LocalVerdictProvider, finished_container_props, replace_hint
from .release_commands import container_log_lines, log_tail_section
from .release_task import ReleaseTaskError

if TYPE_CHECKING:
    import pulumi_docker as docker

OWNER_RERUN_KEYS = ("container_id",)


class LocalMediaError(ReleaseTaskError):
    """The media volume could not be made writable for the app user."""


def judge_media_owner(props: Mapping[str, Any]) -> dict[str, Any]:
    """Nothing, or LocalMediaError with the container's exit status and log tail."""
    exit_code = int(props["exit_code"])
    if exit_code != 0:
        lines = container_log_lines(props.get("container_logs"))
        raise LocalMediaError(
            f"the media volume could not be given to the app user {props['owner']}: "
            f"exit status {exit_code} in container {props['container_name']} (the image needs "
            "`python`, and the Docker engine must let a container's root change a volume's "
            f"owner){log_tail_section('the container output', lines)}{replace_hint(props)}"
        )
    return {}


class LocalMediaOwnerVerdict(
    pulumi.dynamic.Resource, module="media", name="LocalMediaOwnerVerdict"
):
    """Fails `pulumi up` when the media volume's ownership container exited non-zero."""

    def __init__(
        self,
        name: str,
        *,
        container: docker.Container,
        owner: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {**finished_container_props(container), "owner": owner}
        super().__init__(
            LocalVerdictProvider(judge_media_owner, OWNER_RERUN_KEYS), name, props, opts
        )
