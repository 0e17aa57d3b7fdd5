"""The app image for the local target: built by the local Docker engine, for its own platform,
and never pushed; or a prebuilt image (`app.image`) the engine has or pulls. Containers run it
by image ID."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from pulumi_django._mock_answers import mock_image_digest, or_mock_answer
from pulumi_django.build_context import build_paths, image_tag, project_relative
from pulumi_django.components.args import ComponentArgsError, arg
from pulumi_django.config.app import IMAGE_ID, IMAGE_REFERENCE, AppConfig

# The engine builds for its own platform; the name only enters the tag's digest.
LOCAL_PLATFORM = "native"


@dataclass(frozen=True, kw_only=True)
class LocalAppImageArgs:
    """What `LocalAppImage` builds, and from where."""

    app: AppConfig = arg(
        "The app section: its build context and Dockerfile (`context`, `dockerfile`), or the "
        "prebuilt image used instead (`image`: nothing is built). Default: the section's "
        "defaults.",
        default_factory=AppConfig,
    )
    project_dir: Path = arg(
        "The directory `app.context` and `app.dockerfile` are relative to. Default: the "
        "current directory, where `pulumi up` runs the program.",
        default_factory=Path.cwd,
    )


def registry_host(repository: str) -> str | None:
    """The registry a repository names, as Docker reads it: a first component with a dot or a
    port, or `localhost`; None for a name the engine resolves itself (`notebook`, `org/app`)."""
    head, slash, _ = repository.partition("/")
    if slash and ("." in head or ":" in head or head == "localhost"):
        return head
    return None


class LocalAppImage(pulumi.ComponentResource):
    """`<name>:<digest of the build context>`: a changed context is a new tag, so a new release
    shows in the preview; `ref` is the built image's ID (`sha256:...`).

    With `app.image`, nothing is built: a `docker.RemoteImage` (kept in the engine on delete,
    so rollback targets stay) of that image, resolved when the program runs so that a moved
    tag is a new release and an unchanged one plans no change:

    - a digest reference (`repo@sha256:...`) or an image ID (`sha256:...`) is used as is: the
      engine's copy if it has one, else pulled;
    - a tag with a registry host (`ghcr.io/org/app:v2`, `docker.io/org/app:v2`) is resolved to
      its digest in that registry (`docker.get_registry_image`) and pulled by digest;
    - a tag without one (`notebook:v2`, what `docker build -t` made, or an earlier build of the
      stack, `<name>:<tag>`) is resolved to the ID of the image the engine has under it
      (`docker.get_remote_image`): no registry is asked.

    `ref` is the image's ID either way."""

    ref: pulumi.Output[str]
    image_tag: str | None
    image: docker.Image | docker.RemoteImage

    def __init__(
        self, name: str, args: LocalAppImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:AppImage", name, None, opts)
        if args.app.image is not None:
            self.image = self._prebuilt(name, args.app.image)
            self.ref = self.image.image_id
        else:
            self.image = self._built(name, args)
            # Without a push, the provider reports the local image ID here.
            self.ref = self.image.repo_digest
        self.register_outputs({"ref": self.ref, "image_tag": self.image_tag})

    def _built(self, name: str, args: LocalAppImageArgs) -> docker.Image:
        """`<name>:<digest of the build context>`, built by the engine and never pushed."""
        context, dockerfile = build_paths(args.app, args.project_dir)
        self.image_tag = image_tag(context, dockerfile, LOCAL_PLATFORM)
        return docker.Image(
            f"{name}-build",
            image_name=f"{name}:{self.image_tag}",
            build=docker.DockerBuildArgs(
                context=project_relative(context),
                dockerfile=project_relative(dockerfile),
            ),
            skip_push=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _prebuilt(self, name: str, image: str) -> docker.RemoteImage:
        """`app.image` kept in the engine, resolved as the class docstring says."""
        found = IMAGE_REFERENCE.match(image)
        if found is None or not (found["tag"] or found["digest"]):
            raise ComponentArgsError(
                f"LocalAppImageArgs.app.image {image!r}: give REPOSITORY@sha256:<64 hex>, "
                "REPOSITORY:TAG or an image ID sha256:<64 hex>"
            )
        self.image_tag = None if found["digest"] or IMAGE_ID.match(image) else found["tag"]
        invoke = pulumi.InvokeOutputOptions(parent=self)
        pull_triggers: list[pulumi.Input[str]] | None = None
        if self.image_tag is None:
            pulled: pulumi.Input[str] = image
        elif registry_host(found["repository"]) is not None:
            # The digest the registry has under the tag now; pulled by that digest.
            digest = or_mock_answer(
                docker.get_registry_image_output(name=image, opts=invoke).sha256_digest,
                mock_image_digest(image),
            )
            pulled = digest.apply(lambda value: f"{found['repository']}@{value}")
        else:
            # The image the engine has under the tag now: its ID decides the release.
            pulled = image
            pull_triggers = [
                or_mock_answer(
                    docker.get_remote_image_output(name=image, opts=invoke).id,
                    mock_image_digest(image),
                )
            ]
        return docker.RemoteImage(
            f"{name}-pull",
            name=pulled,
            pull_triggers=pull_triggers,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
