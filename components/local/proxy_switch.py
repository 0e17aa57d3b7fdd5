"""The last step of a local release: the proxy switches to the new replica set.

A one-off container of the proxy image gets the rendered config (an upload), checks it, writes it
into the volume the proxy container watches, and exits 0 once the proxy has reloaded it and the
health path answers through the proxy (`rendering.local_proxy.render_switch`). Its config names
the new replicas, so it waits for them to be created and healthy; the replaced replicas are
deleted only after it, at the end of the update. A verdict fails `pulumi up` if it did not work.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from pulumi_django.components.args import arg
from pulumi_django.components.local.containers import LOOPBACK, on_network
from pulumi_django.providers.local_release import LocalSwitchVerdict
from pulumi_django.rendering.local_proxy import ProxyControl, render_switch


@dataclass(frozen=True, kw_only=True)
class LocalProxySwitchArgs:
    """The running proxy, the config it should serve, and the URL that proves it does."""

    control: ProxyControl = arg(
        "The proxy's server (nginx or Caddy) and where its shared config files are."
    )
    config_text: pulumi.Input[str] = arg(
        "The rendered config to serve; it names the new replicas, so the switch waits for them."
    )
    image: pulumi.Input[str] = arg(
        "The proxy's image: the switch checks the config with the same server version."
    )
    network_name: pulumi.Input[str] = arg(
        "The private network: the check resolves the replicas' names, the probe reaches the proxy."
    )
    config_volume: pulumi.Input[str] = arg("The volume the proxy container reads its config from.")
    probe_url: str = arg("The health URL asked through the proxy once it serves the config.")
    proxy: docker.Container = arg("The proxy container: the switch runs once it exists.")


class LocalProxySwitch(pulumi.ComponentResource):
    """Hands `config_text` to the running proxy and waits until it serves it."""

    switch_log: pulumi.Output[str]
    container: docker.Container
    verdict: LocalSwitchVerdict

    def __init__(
        self, name: str, args: LocalProxySwitchArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:ProxySwitch", name, None, opts)
        control = args.control
        self.container = docker.Container(
            f"{name}-run",
            image=args.image,
            entrypoints=["/bin/sh", "-c"],
            command=[render_switch(control, probe_url=args.probe_url, probe_host=LOOPBACK)],
            uploads=[docker.ContainerUploadArgs(file=control.new_config, content=args.config_text)],
            # On the network: `nginx -t` resolves the replicas' names, the probe reaches the proxy.
            networks_advanced=on_network(args.network_name),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=args.config_volume, container_path=control.config_dir
                )
            ],
            attach=True,
            logs=True,
            must_run=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.proxy]),
        )
        self.verdict = LocalSwitchVerdict(
            f"{name}-verdict",
            container=self.container,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
        )
        self.switch_log = self.verdict.switch_log
        self.register_outputs({"switch_log": self.switch_log})
