"""Pieces every long-running container of the local target shares: the network attachment,
ports published on loopback only, health checks and the wait they imply, and a graceful stop;
and what the containers of the app image share (the replicas, the workers, the release's
one-off containers)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import pulumi
import pulumi_docker as docker

from pulumi_django.rendering.app_server import CPU_UNITS_PER_VCPU
from pulumi_django.rendering.container_definitions import APP_TMP_PATH, DEFAULT_APP_USER

LOOPBACK = "127.0.0.1"
# The app image's writable /tmp on a read-only root, as the AWS task's `/tmp` volume.
APP_TMP_MOUNT = "rw,noexec,nosuid,nodev,size=64m"
# After the health checks, the longest a fresh container may take beyond them (image pull done).
WAIT_MARGIN_SECONDS = 30


@dataclass(frozen=True)
class HealthCheck:
    """A Docker health check, and how long `wait=True` should wait for it."""

    test: list[str]
    interval_seconds: int = 5
    timeout_seconds: int = 4
    retries: int = 3
    start_period_seconds: int = 30

    def args(self) -> docker.ContainerHealthcheckArgs:
        return docker.ContainerHealthcheckArgs(
            tests=self.test,
            interval=f"{self.interval_seconds}s",
            timeout=f"{self.timeout_seconds}s",
            retries=self.retries,
            start_period=f"{self.start_period_seconds}s",
        )

    @property
    def wait_timeout_seconds(self) -> int:
        """The start period, then every retry failing, then a margin."""
        return (
            self.start_period_seconds
            + self.interval_seconds * (self.retries + 1)
            + WAIT_MARGIN_SECONDS
        )


def on_network(
    network_name: pulumi.Input[str], *aliases: str
) -> list[docker.ContainerNetworksAdvancedArgs]:
    """Only the site's private network (never Docker's default bridge), under `aliases` too."""
    return [docker.ContainerNetworksAdvancedArgs(name=network_name, aliases=list(aliases) or None)]


def loopback_port(internal: int, external: int | None) -> list[docker.ContainerPortArgs] | None:
    """`internal` published on 127.0.0.1:`external`, or nothing when `external` is None."""
    if external is None:
        return None
    return [docker.ContainerPortArgs(internal=internal, external=external, ip=LOOPBACK)]


def env_list(environment: Mapping[str, pulumi.Input[str]]) -> list[pulumi.Output[str]]:
    """`NAME=value` entries, sorted; a secret value keeps its entry secret."""
    return [pulumi.Output.concat(name, "=", value) for name, value in sorted(environment.items())]


class ServiceOptions(TypedDict):
    restart: str
    stop_timeout: int
    destroy_grace_seconds: int
    init: bool


def long_running(stop_timeout_seconds: int) -> ServiceOptions:
    """Container arguments of a service: restarted with the engine, and stopped with SIGTERM
    then `stop_timeout_seconds` of grace, by `docker stop` and by Pulumi's delete alike
    (without `destroy_grace_seconds` the provider removes a running container by force)."""
    return ServiceOptions(
        restart="unless-stopped",
        stop_timeout=stop_timeout_seconds,
        destroy_grace_seconds=stop_timeout_seconds,
        init=True,
    )


class AppProcess(TypedDict):
    image: pulumi.Input[str]
    command: list[str]
    envs: list[pulumi.Output[str]]
    user: str
    networks_advanced: list[docker.ContainerNetworksAdvancedArgs]
    mounts: list[docker.ContainerMountArgs] | None


def app_process(
    image: pulumi.Input[str],
    command: list[str],
    *,
    environment: Mapping[str, pulumi.Input[str]],
    network_name: pulumi.Input[str],
    mounts: Sequence[docker.ContainerMountArgs],
) -> AppProcess:
    """Container arguments of a process of the app image (a replica, a worker, a one-off
    container of the release): `command` with the app's environment (`env_list`), as the app
    user of the AWS task whatever the image's USER (it owns the media), on the site's private
    network only, with the replicas' shared volumes (the media volume)."""
    return AppProcess(
        image=image,
        command=command,
        envs=env_list(environment),
        user=DEFAULT_APP_USER,
        networks_advanced=on_network(network_name),
        mounts=list(mounts) or None,
    )


class Confined(TypedDict):
    read_only: bool
    tmpfs: dict[str, str]
    capabilities: docker.ContainerCapabilitiesArgs
    memory: int
    cpus: str


def confined(cpu: int, memory: int) -> Confined:
    """Container arguments of a long-running process of the app image (a replica, a worker), as
    the AWS task runs it: a read-only root with a writable `/tmp`, no Linux capabilities, and
    the task's size (`cpu` units, `memory` MiB) as its limits."""
    return Confined(
        read_only=True,
        tmpfs={APP_TMP_PATH: APP_TMP_MOUNT},
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        memory=memory,
        cpus=f"{cpu / CPU_UNITS_PER_VCPU:g}",
    )
