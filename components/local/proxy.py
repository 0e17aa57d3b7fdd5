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

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from pulumi_django.components.args import arg
from pulumi_django.components.local.containers import (
    HealthCheck,
    long_running,
    loopback_port,
    on_network,
)
from pulumi_django.components.local.media import LocalMedia
from pulumi_django.components.local.proxy_switch import LocalProxySwitch, LocalProxySwitchArgs
from pulumi_django.config.app import AppConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.local import LocalConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.config.static import StaticConfig
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


@dataclass(frozen=True, kw_only=True)
class LocalProxyArgs:
    """What the proxy serves, from where, and on which port of this machine."""

    network_name: pulumi.Input[str] = arg(
        "The private Docker network the proxy joins (as `proxy`) to reach the replicas."
    )
    upstreams: pulumi.Input[list[str]] = arg(
        "The replicas as `name:port` (`LocalAppReplicas.upstreams`): this release's switch "
        "hands the proxy a config naming them."
    )
    static_volume: pulumi.Input[str] = arg(
        "The static-files volume (`LocalStaticRelease.volume_name`), served read-only under "
        "the static prefix."
    )
    stop_timeout_seconds: int = arg(
        "How long Docker (and Pulumi's delete) waits after the graceful stop signal before it "
        "kills the proxy. `LocalSite` passes `app.gracefulTimeoutSeconds` plus 10 s."
    )
    media: LocalMedia | None = arg(
        "The media volume, served read-only under its `urlPath`. Default (None): no media.",
        default=None,
    )
    config: ProxyConfig = arg(
        "The proxy section: the server (nginx or Caddy), its port in the container and its "
        "limits. Default: the section's defaults (nginx).",
        default_factory=ProxyConfig,
    )
    local: LocalConfig = arg(
        "The local section: `httpPort`, published on 127.0.0.1, and `proxyImage` (default: "
        "the stock image of the server). Default: the section's defaults.",
        default_factory=LocalConfig,
    )
    app: AppConfig = arg(
        "The app section: the health path (checked through the proxy) and the graceful time "
        "in-flight requests get on a reload. Default: the section's defaults.",
        default_factory=AppConfig,
    )
    load_balancer: LoadBalancerConfig = arg(
        "Its `idleTimeoutSeconds` sets the keep-alives, nested as on AWS. Default: the "
        "section's defaults.",
        default_factory=LoadBalancerConfig,
    )
    static: StaticConfig = arg(
        "The static section: the URL `prefix` of the static files. Default: the section's "
        "defaults (`static/`).",
        default_factory=StaticConfig,
    )


class LocalProxy(pulumi.ComponentResource):
    """The proxy container, its config volume, and this release's switch to `upstreams`."""

    container_name: pulumi.Output[str]
    image: docker.RemoteImage
    config_volume: docker.Volume
    container: docker.Container
    switch: LocalProxySwitch

    def __init__(
        self, name: str, args: LocalProxyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:Proxy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        proxy = args.config
        server = proxy.server
        control = ProxyControl(server)
        static_dir = local_static_dir(args.static)
        self.config_volume = docker.Volume(f"{name}-config", name=f"{name}-config", opts=child)
        self.image = docker.RemoteImage(
            f"{name}-image",
            name=args.local.proxy_image or PROXY_IMAGES[server],
            keep_locally=True,
            opts=child,
        )
        health_path = args.app.health_check_path
        health_url = f"http://127.0.0.1:{proxy.port}{health_path}"
        health = HealthCheck(
            ["CMD", "wget", "-q", "-O", "/dev/null", "-T", "3", health_url],
            start_period_seconds=10,
        )
        media = args.media
        self.container = docker.Container(
            name,
            name=name,
            image=self.image.image_id,
            entrypoints=["/bin/sh", "-c"],
            command=[render_supervisor(control)],
            stop_signal=f"SIG{STOP_SIGNALS[server]}",
            networks_advanced=on_network(args.network_name, PROXY_HOST),
            ports=loopback_port(proxy.port, args.local.http_port),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=self.config_volume.name, container_path=control.config_dir
                ),
                docker.ContainerVolumeArgs(
                    volume_name=args.static_volume,
                    container_path=LOCAL_STATIC_MOUNT,
                    read_only=True,
                ),
            ],
            mounts=[media.mount(LOCAL_MEDIA_MOUNT, read_only=True)] if media else None,
            # Not waited for: it turns healthy only once a switch gave it a config.
            healthcheck=health.args(),
            **long_running(args.stop_timeout_seconds),
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        config_text = pulumi.Output.from_input(args.upstreams).apply(
            lambda current: render_proxy(
                server,
                local_site(
                    proxy=proxy,
                    app=args.app,
                    load_balancer=args.load_balancer,
                    static=args.static,
                    media=media.config if media else None,
                    upstreams=current,
                    static_dir=static_dir,
                ),
            )
        )
        self.switch = LocalProxySwitch(
            f"{name}-switch",
            LocalProxySwitchArgs(
                control=control,
                config_text=config_text,
                image=self.image.image_id,
                network_name=args.network_name,
                config_volume=self.config_volume.name,
                probe_url=f"http://{PROXY_HOST}:{proxy.port}{health_path}",
                proxy=self.container,
            ),
            opts=child,
        )
        self.container_name = self.container.name
        self.register_outputs({"container_name": self.container_name})
