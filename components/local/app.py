"""The app replicas of the local target: N containers of the release's image behind the proxy.

The replicas never depend on one another. A release replaces the whole set at once: pulumi-docker
creates each replacement before deleting the container it replaces (create-before-delete), waits
for it to be healthy (`wait=True`), and Pulumi deletes the old containers only at the end of the
update, after the proxy has switched to the new set (`LocalProxySwitch`); each old one then gets
SIGTERM and the app's graceful time to finish the requests it holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from pulumi_django.components.args import arg
from pulumi_django.components.local.containers import (
    HealthCheck,
    app_process,
    confined,
    long_running,
)
from pulumi_django.config.app import AppConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.local import LocalConfig
from pulumi_django.rendering.app_server import app_server_command, app_server_settings

# Only the proxy and the release's one-off containers share the replicas' private network, so
# the app server believes X-Forwarded-* from any peer on it.
TRUSTED_PEERS = ("*",)


def replica_health_check(port: int, path: str) -> HealthCheck:
    """The app's health path on its own port, from inside the container (urlopen raises on any
    status >= 400 and on a timeout)."""
    url = f"http://127.0.0.1:{port}{path}"
    timeout = HealthCheck.timeout_seconds - 1
    probe = f"import urllib.request as u; u.urlopen({url!r}, timeout={timeout})"
    return HealthCheck(["CMD", "python", "-c", probe])


@dataclass(frozen=True, kw_only=True)
class LocalAppReplicasArgs:
    """What the replicas run, how many, and what they are attached to."""

    image: pulumi.Input[str] = arg(
        "The image the replicas run (an image ID or name). `LocalSite` passes the migration "
        "job's gate, so the replicas start only once the migrations succeeded."
    )
    network_name: pulumi.Input[str] = arg(
        "The private Docker network the replicas join (the proxy and the data containers are "
        "on it)."
    )
    stop_timeout_seconds: int = arg(
        "How long Docker (and Pulumi's delete) waits after SIGTERM before it kills a replica: "
        "longer than `app.gracefulTimeoutSeconds`. `LocalSite` passes that plus 10 s."
    )
    app: AppConfig = arg(
        "The app section: the server (Gunicorn or Uvicorn) and its settings, the port and the "
        "health path. Default: the section's defaults.",
        default_factory=AppConfig,
    )
    fleet: FleetConfig = arg(
        "Each replica's CPU and memory limits (`cpu`, `memory`), and the default worker "
        "count. Default: the section's defaults (512 CPU units, 1024 MiB).",
        default_factory=FleetConfig,
    )
    load_balancer: LoadBalancerConfig = arg(
        "Its `idleTimeoutSeconds` sets the app server's keep-alive (5 s longer), as on AWS. "
        "Default: the section's defaults.",
        default_factory=LoadBalancerConfig,
    )
    local: LocalConfig = arg(
        "The local section: `replicas`, how many containers run. Default: the section's "
        "defaults (2 replicas).",
        default_factory=LocalConfig,
    )
    environment: Mapping[str, pulumi.Input[str]] = arg(
        "The app's environment (database, cache, media, Django settings); a secret value keeps "
        "its entry secret. Default: none.",
        default_factory=dict,
    )
    mounts: Sequence[docker.ContainerMountArgs] = arg(
        "Volumes every replica shares (the media volume). Default: none.", default=()
    )


class LocalAppReplicas(pulumi.ComponentResource):
    """`local.replicas` app containers; `upstreams` lists them as `name:port`."""

    names: pulumi.Output[list[str]]
    upstreams: pulumi.Output[list[str]]
    replicas: list[docker.Container]

    def __init__(
        self, name: str, args: LocalAppReplicasArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:AppReplicas", name, None, opts)
        settings = app_server_settings(
            app=args.app,
            fleet=args.fleet,
            load_balancer=args.load_balancer,
            bind_host="0.0.0.0",  # noqa: S104 - inside the container; no port is published
            forwarded_allow_ips=TRUSTED_PEERS,
        )
        health = replica_health_check(settings.port, args.app.health_check_path)
        self.replicas = [
            docker.Container(
                # No fixed container name: the replacement and the old one coexist for a while.
                f"{name}-{number}",
                **app_process(
                    args.image,
                    app_server_command(settings),
                    environment=args.environment,
                    network_name=args.network_name,
                    mounts=args.mounts,
                ),
                healthcheck=health.args(),
                wait=True,
                wait_timeout=health.wait_timeout_seconds,
                **confined(args.fleet.cpu, args.fleet.memory),
                **long_running(args.stop_timeout_seconds),
                opts=pulumi.ResourceOptions(parent=self),
            )
            for number in range(1, args.local.replicas + 1)
        ]
        self.names = pulumi.Output.all(*[replica.name for replica in self.replicas])
        self.upstreams = self.names.apply(
            lambda names: [f"{replica}:{settings.port}" for replica in names]
        )
        self.register_outputs({"names": self.names, "upstreams": self.upstreams})
