"""The app image for the local target: built by the local Docker engine, for its own platform,
and never pushed; containers run it by image ID."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pulumi
import pulumi_docker as docker

from pulumi_django.build_context import build_paths, image_tag, project_relative
from pulumi_django.components.args import arg
from pulumi_django.config.app import AppConfig
from pulumi_django.release_steps import ReleaseRole, Step

# The engine builds for its own platform; the name only enters the tag's digest.
LOCAL_PLATFORM = "native"


@dataclass(frozen=True, kw_only=True)
class LocalAppImageArgs:
    """What `LocalAppImage` builds, and from where."""

    app: AppConfig = arg(
        "The app section: its build context and Dockerfile (`context`, `dockerfile`). "
        "Default: the section's defaults.",
        default_factory=AppConfig,
    )
    project_dir: Path = arg(
        "The directory `app.context` and `app.dockerfile` are relative to. Default: the "
        "current directory, where `pulumi up` runs the program.",
        default_factory=Path.cwd,
    )


class LocalAppImage(pulumi.ComponentResource):
    """`<name>:<digest of the build context>`: a changed context is a new tag, so a new release
    shows in the preview; `ref` is the built image's ID (`sha256:...`)."""

    release_roles: ClassVar[tuple[ReleaseRole, ...]] = (
        ReleaseRole(Step.IMAGE, "docker:index/image:Image"),
    )

    ref: pulumi.Output[str]
    image_tag: str
    image: docker.Image

    def __init__(
        self, name: str, args: LocalAppImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:AppImage", name, None, opts)
        context, dockerfile = build_paths(args.app, args.project_dir)
        self.image_tag = image_tag(context, dockerfile, LOCAL_PLATFORM)
        self.image = docker.Image(
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
        self.ref = self.image.repo_digest
        self.register_outputs({"ref": self.ref, "image_tag": self.image_tag})
