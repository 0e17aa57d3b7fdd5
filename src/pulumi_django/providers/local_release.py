"""Verdicts on the local target's other one-off release containers (see `local_verdict`): the
static release and the proxy switch.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from .local_verdict import LocalVerdictProvider, finished_container_props, replace_hint
from .release_commands import container_log_lines, find_json_object, log_tail_section
from .release_task import ReleaseTaskError

if TYPE_CHECKING:
    import pulumi_docker as docker

RERUN_KEYS = ("container_id",)
# What the publisher prints last (components/local/static.py).
PUBLISH_RESULT_KEYS = ("release", "uploaded", "skipped", "deleted", "keptReleases")


class LocalReleaseError(ReleaseTaskError):
    """A local static release or proxy switch failed."""


def judge_static_release(props: Mapping[str, Any]) -> dict[str, Any]:
    """The publisher's counts, or LocalReleaseError with its exit status and log tail."""
    lines = container_log_lines(props.get("container_logs"))
    exit_code = int(props["exit_code"])
    result = find_json_object(lines, PUBLISH_RESULT_KEYS) if exit_code == 0 else None
    if result is None:
        what = f"exited with {exit_code}" if exit_code else "printed no result"
        raise LocalReleaseError(
            f"static release failed: the publisher {what} in container "
            f"{props['container_name']}{log_tail_section('the container output', lines)}\n"
            "The migrations did not run and the app containers were not changed; the files "
            f"of earlier releases are still published.{replace_hint(props)}"
        )
    return {
        "uploaded": int(result["uploaded"]),
        "skipped": int(result["skipped"]),
        "deleted": int(result["deleted"]),
        "kept_releases": [str(release) for release in result["keptReleases"]],
    }


def judge_proxy_switch(props: Mapping[str, Any]) -> dict[str, Any]:
    """Nothing to report on success; LocalReleaseError with the switch's output otherwise."""
    lines = container_log_lines(props.get("container_logs"))
    exit_code = int(props["exit_code"])
    if exit_code != 0:
        raise LocalReleaseError(
            f"proxy switch failed: container {props['container_name']} exited with {exit_code}"
            f"{log_tail_section('the container output', lines)}\n"
            "The proxy still sends requests to the previous app containers, which keep running "
            "next to the new ones until a `pulumi up` succeeds."
            f"{replace_hint(props)}"
        )
    return {"switch_log": lines[-1] if lines else ""}


class LocalStaticVerdict(pulumi.dynamic.Resource, module="static", name="LocalStaticVerdict"):
    """Fails `pulumi up` when the local static publisher failed; else its counts."""

    uploaded: pulumi.Output[int]
    skipped: pulumi.Output[int]
    deleted: pulumi.Output[int]
    kept_releases: pulumi.Output[list[str]]
    release_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        container: docker.Container,
        release_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {
            **finished_container_props(container),
            "release_id": release_id,
            "uploaded": None,
            "skipped": None,
            "deleted": None,
            "kept_releases": None,
        }
        super().__init__(LocalVerdictProvider(judge_static_release, RERUN_KEYS), name, props, opts)


class LocalSwitchVerdict(pulumi.dynamic.Resource, module="proxy", name="LocalSwitchVerdict"):
    """Fails `pulumi up` when the proxy did not take the new replica set."""

    switch_log: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        container: docker.Container,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props = {**finished_container_props(container), "switch_log": None}
        super().__init__(LocalVerdictProvider(judge_proxy_switch, RERUN_KEYS), name, props, opts)
