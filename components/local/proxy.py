"""The local target's front door: nginx or Caddy (the same rendered config as on AWS) on
127.0.0.1:`local.httpPort`, balancing over the app replicas and serving `/static/` from the
static-release volume and `/media/` from the media volume (both read-only).

The proxy container itself does not change from one release to the next, so it keeps the
published port: its command is the supervisor of `rendering.local_proxy`, which serves the
config kept in a volume of its own and reloads it gracefully when a `LocalProxySwitch` writes a
new one. Only a change to the container itself (image, port, supervisor) replaces it, and then
delete-before-replace: a host port cannot be published by two containers at once, so that is the
one change that interrupts the site for a few seconds.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from pulumi_django.components.local.containers import (
    HealthCheck,
    long_running,
    loopback_port,
    on_network,
)
from pulumi_django.components.local.media import LocalMedia
from pulumi_django.components.local.proxy_switch import LocalProxySwitch
from pulumi_django.config import StackConfig
from pulumi_django.rendering.container_definitions import PROXY_IMAGES
from pulumi_django.rendering.local_proxy import (
    STOP_SIGNALS,
    ProxyControl,
    render_supervisor,
)
from pulumi_django.rendering.media import LOCAL_MEDIA_MOUNT
from pulumi_django.rendering.proxy import (
    LOCAL_STATIC_MOUNT,
    local_site,
    local_static_dir,
    render_proxy,
)

PROXY_HOST = "proxy"


class LocalProxy(pulumi.ComponentResource):
    """The proxy container, its config volume, and this release's switch to `upstreams`."""

    container_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: StackConfig,
        network_name: pulumi.Input[str],
        static_volume: pulumi.Input[str],
        upstreams: pulumi.Input[list[str]],
        media: LocalMedia | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:local:Proxy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        server = config.proxy.server
        control = ProxyControl(server)
        static_dir = local_static_dir(config)
        config_volume = docker.Volume(f"{name}-config", name=f"{name}-config", opts=child)
        image = docker.RemoteImage(
            f"{name}-image",
            name=config.local.proxy_image or PROXY_IMAGES[server],
            keep_locally=True,
            opts=child,
        )
        health_url = f"http://127.0.0.1:{config.proxy.port}{config.app.health_check_path}"
        health = HealthCheck(
            ["CMD", "wget", "-q", "-O", "/dev/null", "-T", "3", health_url],
            start_period_seconds=10,
        )
        proxy = docker.Container(
            name,
            name=name,
            image=image.image_id,
            entrypoints=["/bin/sh", "-c"],
            command=[render_supervisor(control)],
            stop_signal=f"SIG{STOP_SIGNALS[server]}",
            networks_advanced=on_network(network_name, PROXY_HOST),
            ports=loopback_port(config.proxy.port, config.local.http_port),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=config_volume.name, container_path=control.config_dir
                ),
                docker.ContainerVolumeArgs(
                    volume_name=static_volume, container_path=LOCAL_STATIC_MOUNT, read_only=True
                ),
            ],
            mounts=[media.mount(LOCAL_MEDIA_MOUNT, read_only=True)] if media else None,
            # Not waited for: it turns healthy only once a switch gave it a config.
            healthcheck=health.args(),
            **long_running(config.stop_timeout_seconds),
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        config_text = pulumi.Output.from_input(upstreams).apply(
            lambda current: render_proxy(server, local_site(config, current, static_dir))
        )
        LocalProxySwitch(
            f"{name}-switch",
            control=control,
            config_text=config_text,
            image=image.image_id,
            network_name=network_name,
            config_volume=config_volume.name,
            probe_url=f"http://{PROXY_HOST}:{config.proxy.port}{config.app.health_check_path}",
            proxy=proxy,
            opts=child,
        )
        self.container_name = proxy.name
        self.register_outputs({"container_name": self.container_name})
