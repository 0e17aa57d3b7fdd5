"""LocalMedia: the named volume local app replicas store uploads in (MEDIA_ROOT) and the proxy
serves `media.urlPath` from, read-only; the local counterpart of MediaStorage. Uploads are user
data: the volume outlives every container and release until the stack is destroyed, and nothing
of the static release ever mounts it.

Who may write it. The app's root filesystem is read-only and it runs as DEFAULT_APP_USER (uid
10001, as on AWS), but a fresh named volume belongs to root. Docker can initialise an empty named
volume from the image: when a container mounts it, the image's directory at the mount point is
copied in, with its owner and mode. That only works if the image has that directory, owned by
the app user, and it happens again on any container's mount while the volume is still empty, so
an image whose directory is root's (say `COPY . /app` with a `media/` folder) would hand the
volume back to root. So every mount of this volume is `no_copy`, and a one-off container of the
release's image, as root and with no network, gives the volume's root directory to the app user
(mode 0755: the proxy reads, only the app writes) before the migration job and the replicas run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from pulumi_django.components.args import arg
from pulumi_django.config.media import MediaConfig
from pulumi_django.providers.local_media import LocalMediaOwnerVerdict
from pulumi_django.rendering.container_definitions import DEFAULT_APP_USER
from pulumi_django.rendering.media import (
    LOCAL_MEDIA_MOUNT,
    LOCAL_MEDIA_ROOT,
    local_media_environment,
)

# Run by the image's own Python (the static release needs one too).
GIVE_TO_APP_USER = (
    "import os, sys; path, uid, gid = sys.argv[1:]; "
    "os.chown(path, int(uid), int(gid)); os.chmod(path, 0o755)"
)


@dataclass(frozen=True, kw_only=True)
class LocalMediaArgs:
    """The uploads' settings, and the image that makes the volume the app user's."""

    image: pulumi.Input[str] = arg(
        "An image with Python (the release's app image): a one-off container of it, as root "
        "and without a network, gives the fresh volume to the app user."
    )
    config: MediaConfig = arg(
        "The media section: `urlPath`, which the app is told (MEDIA_URL) and the proxy serves "
        "the volume under. Default: the section's defaults.",
        default_factory=MediaConfig,
    )


class LocalMedia(pulumi.ComponentResource):
    """The media volume, made writable for the app user; `mount` attaches it to a container."""

    volume_name: pulumi.Output[str]
    environment: dict[str, str]
    config: MediaConfig
    volume: docker.Volume
    owner: docker.Container
    owner_verdict: LocalMediaOwnerVerdict

    def __init__(
        self, name: str, args: LocalMediaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:Media", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Kept: the proxy serves the volume under the same `urlPath` the app is told.
        self.config = args.config
        self.volume = docker.Volume(f"{name}-files", name=f"{name}-files", opts=child)
        self.volume_name = self.volume.name
        uid, gid = DEFAULT_APP_USER.split(":")
        self.owner = docker.Container(
            f"{name}-owner",
            image=args.image,
            entrypoints=["python"],
            command=["-c", GIVE_TO_APP_USER, LOCAL_MEDIA_MOUNT, uid, gid],
            user="0:0",
            network_mode="none",
            mounts=[self.mount(LOCAL_MEDIA_MOUNT)],
            attach=True,
            logs=True,
            must_run=False,
            opts=child,
        )
        # Docker reports a failed one-off container as created: judge its exit status, so that
        # whatever waits for this component never starts on a volume it cannot write.
        self.owner_verdict = LocalMediaOwnerVerdict(
            f"{name}-owner", container=self.owner, owner=DEFAULT_APP_USER, opts=child
        )
        # What the replicas and the migration job are told (docs/media.md).
        self.environment = local_media_environment(args.config, LOCAL_MEDIA_ROOT)
        self.register_outputs({"volume_name": self.volume_name})

    def mount(self, target: str, *, read_only: bool = False) -> docker.ContainerMountArgs:
        """This volume at `target`, never initialised from the container's image."""
        return docker.ContainerMountArgs(
            type="volume",
            source=self.volume_name,
            target=target,
            read_only=read_only,
            volume_options=docker.ContainerMountVolumeOptionsArgs(no_copy=True),
        )
