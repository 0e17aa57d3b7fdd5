"""The app image for the local target: built by the local Docker engine, for its own platform,
and never pushed; containers run it by image ID."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from pulumi_django.build_context import build_paths, image_tag, project_relative
from pulumi_django.config.app import AppConfig

# The engine builds for its own platform; the name only enters the tag's digest.
LOCAL_PLATFORM = "native"


class LocalAppImage(pulumi.ComponentResource):
    """`<name>:<digest of the build context>`: a changed context is a new tag, so a new release
    shows in the preview; `ref` is the built image's ID (`sha256:...`)."""

    ref: pulumi.Output[str]
    image_tag: str

    def __init__(
        self,
        name: str,
        *,
        app: AppConfig,
        project_dir: Path,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:local:AppImage", name, None, opts)
        context, dockerfile = build_paths(app, project_dir)
        self.image_tag = image_tag(context, dockerfile, LOCAL_PLATFORM)
        image = docker.Image(
            f"{name}-build",
            image_name=f"{name}:{self.image_tag}",
            build=docker.DockerBuildArgs(
                context=project_relative(context),
                dockerfile=project_relative(dockerfile),
            ),
            skip_push=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Without a push, the provider reports the local image ID here.
        self.ref = image.repo_digest
        self.register_outputs({"ref": self.ref, "image_tag": self.image_tag})
