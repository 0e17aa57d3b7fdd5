"""The app replicas of the local target: N containers of the release's image behind the proxy.

The replicas never depend on one another. A release replaces the whole set at once: pulumi-docker
creates each replacement before deleting the container it replaces (create-before-delete), waits
for it to be healthy (`wait=True`), and Pulumi deletes the old containers only at the end of the
update, after the proxy has switched to the new set (`LocalProxySwitch`); each old one then gets
SIGTERM and the app's graceful time to finish the requests it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from pulumi_django.components.local.containers import (
    HealthCheck,
    env_list,
    long_running,
    on_network,
)
from pulumi_django.config import StackConfig
from pulumi_django.rendering.app_server import (
    CPU_UNITS_PER_VCPU,
    app_server_command,
    app_server_settings,
)
from pulumi_django.rendering.container_definitions import APP_TMP_PATH, DEFAULT_APP_USER

# Only the proxy and the release's one-off containers share the replicas' private network, so
# the app server believes X-Forwarded-* from any peer on it.
TRUSTED_PEERS = ("*",)
APP_TMP_MOUNT = "rw,noexec,nosuid,nodev,size=64m"


def replica_health_check(port: int, path: str) -> HealthCheck:
    """The app's health path on its own port, from inside the container (urlopen raises on any
    status >= 400 and on a timeout)."""
    url = f"http://127.0.0.1:{port}{path}"
    timeout = HealthCheck.timeout_seconds - 1
    probe = f"import urllib.request as u; u.urlopen({url!r}, timeout={timeout})"
    return HealthCheck(["CMD", "python", "-c", probe])


class LocalAppReplicas(pulumi.ComponentResource):
    """`config.local.replicas` app containers; `upstreams` lists them as `name:port`."""

    names: pulumi.Output[list[str]]
    upstreams: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        config: StackConfig,
        image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        environment: Mapping[str, pulumi.Input[str]],
        mounts: Sequence[docker.ContainerMountArgs] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`mounts`: volumes every replica shares (the media volume)."""
        super().__init__("pulumi-django:local:AppReplicas", name, None, opts)
        settings = app_server_settings(
            config,
            bind_host="0.0.0.0",  # noqa: S104 - inside the container; no port is published
            forwarded_allow_ips=TRUSTED_PEERS,
        )
        health = replica_health_check(settings.port, config.app.health_check_path)
        envs = env_list(environment)
        replicas = [
            docker.Container(
                # No fixed container name: the replacement and the old one coexist for a while.
                f"{name}-{number}",
                image=image,
                command=app_server_command(settings),
                envs=envs,
                # The app user of the AWS task, whatever the image's USER: it owns the media.
                user=DEFAULT_APP_USER,
                networks_advanced=on_network(network_name),
                mounts=list(mounts) or None,
                healthcheck=health.args(),
                wait=True,
                wait_timeout=health.wait_timeout_seconds,
                read_only=True,
                tmpfs={APP_TMP_PATH: APP_TMP_MOUNT},
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                memory=config.fleet.memory,
                cpus=f"{config.fleet.cpu / CPU_UNITS_PER_VCPU:g}",
                **long_running(config.stop_timeout_seconds),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for number in range(1, config.local.replicas + 1)
        ]
        self.names = pulumi.Output.all(*[replica.name for replica in replicas])
        self.upstreams = self.names.apply(
            lambda names: [f"{replica}:{settings.port}" for replica in names]
        )
        self.register_outputs({"names": self.names, "upstreams": self.upstreams})
