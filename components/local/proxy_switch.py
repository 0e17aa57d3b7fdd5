"""The last step of a local release: the proxy switches to the new replica set.

A one-off container of the proxy image gets the rendered config (an upload), checks it, writes it
into the volume the proxy container watches, and exits 0 once the proxy has reloaded it and the
health path answers through the proxy (`rendering.local_proxy.render_switch`). Its config names
the new replicas, so it waits for them to be created and healthy; the replaced replicas are
deleted only after it, at the end of the update. A verdict fails `pulumi up` if it did not work.
"""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from pulumi_django.components.local.containers import LOOPBACK, on_network
from pulumi_django.providers.local_release import LocalSwitchVerdict
from pulumi_django.rendering.local_proxy import ProxyControl, render_switch


class LocalProxySwitch(pulumi.ComponentResource):
    """Hands `config_text` to the running proxy and waits until it serves it."""

    def __init__(
        self,
        name: str,
        *,
        control: ProxyControl,
        config_text: pulumi.Input[str],
        image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        config_volume: pulumi.Input[str],
        probe_url: str,
        proxy: docker.Container,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:local:ProxySwitch", name, None, opts)
        switch = docker.Container(
            f"{name}-run",
            image=image,
            entrypoints=["/bin/sh", "-c"],
            command=[render_switch(control, probe_url=probe_url, probe_host=LOOPBACK)],
            uploads=[docker.ContainerUploadArgs(file=control.new_config, content=config_text)],
            # On the network: `nginx -t` resolves the replicas' names, the probe reaches the proxy.
            networks_advanced=on_network(network_name),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=config_volume, container_path=control.config_dir
                )
            ],
            attach=True,
            logs=True,
            must_run=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[proxy]),
        )
        verdict = LocalSwitchVerdict(
            f"{name}-verdict",
            container=switch,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[switch]),
        )
        self.switch_log = verdict.switch_log
        self.register_outputs({"switch_log": self.switch_log})
