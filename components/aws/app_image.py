"""The app image: built from the app's Dockerfile with pulumi-docker and pushed to its own ECR
repository, where enough old images stay for every static release still published."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from pulumi_django.build_context import (
    build_paths,
    docker_platform,
    final_stage_volumes,
    image_tag,
    project_relative,
)
from pulumi_django.config.app import AppConfig
from pulumi_django.rendering.container_definitions import APP_TMP_PATH

# An image index (multi-platform or with build attestations) keeps its platform and
# attestation manifests untagged beside it; room for those of every image kept.
UNTAGGED_PER_IMAGE = 3


def lifecycle_policy(keep_images: int) -> dict[str, Any]:
    """Expire by count only, never by age: the newest `keep_images` images always remain, so the
    release behind every static release still published can be rolled back to."""
    if keep_images < 1:
        raise ValueError("keep_images must be at least 1")
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Untagged manifests beyond those of the images kept",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images * UNTAGGED_PER_IMAGE,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the {keep_images} newest images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": ["*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": keep_images,
                },
                "action": {"type": "expire"},
            },
        ]
    }


class AppImage(pulumi.ComponentResource):
    """ECR repository + lifecycle rule + the image, tagged with its build context's digest.

    Tags are immutable: the same context always builds to the same tag, and a changed one to a
    new tag. Consumers use `image_ref` (repository@sha256:...), so a content change always
    makes a new task definition revision and nothing else does."""

    image_ref: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    repository_name: pulumi.Output[str]
    image_tag: str

    def __init__(
        self,
        name: str,
        *,
        app: AppConfig,
        architecture: str,
        keep_images: int,
        project_dir: Path,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:fleet:AppImage", name, None, opts)
        context, dockerfile = build_paths(app, project_dir)
        _check_tmp_volume(dockerfile)
        platform = docker_platform(architecture)
        self.image_tag = image_tag(context, dockerfile, platform)
        child = pulumi.ResourceOptions(parent=self)

        repository = aws.ecr.Repository(
            f"{name}-repository",
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
            ],
            # Deleting the stack must not silently delete every rollback target.
            force_delete=False,
            tags=dict(tags or {}),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=repository.name,
            policy=json.dumps(lifecycle_policy(keep_images)),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(
            registry_id=repository.registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        image = docker.Image(
            f"{name}-image",
            image_name=repository.repository_url.apply(lambda url: f"{url}:{self.image_tag}"),
            build=docker.DockerBuildArgs(
                context=project_relative(context),
                dockerfile=project_relative(dockerfile),
                platform=platform,
            ),
            registry=docker.RegistryArgs(
                server=repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=child,
        )

        self.image_ref = image.repo_digest
        self.repository_url = repository.repository_url
        self.repository_arn = repository.arn
        self.repository_name = repository.name
        self.register_outputs(
            {
                "image_ref": self.image_ref,
                "image_tag": self.image_tag,
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
            }
        )


def _check_tmp_volume(dockerfile: Path) -> None:
    if APP_TMP_PATH not in final_stage_volumes(dockerfile.read_text()):
        raise pulumi.RunError(
            f"{dockerfile}: add `VOLUME {APP_TMP_PATH}` to the final stage; the app container's "
            f"root filesystem is read-only and Fargate makes {APP_TMP_PATH} writable for a "
            "non-root user only when the image declares it a volume"
        )
