"""The app image: built from the app's Dockerfile with pulumi-docker and pushed to its own ECR
repository, where enough old images stay for every static release still published; or a
prebuilt ECR image (`app.image`), released by digest without Docker."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from pulumi_django._mock_answers import mock_ecr_digest, or_mock_answer
from pulumi_django.build_context import (
    BuildContextError,
    build_paths,
    docker_platform,
    final_stage_volumes,
    image_tag,
    project_relative,
)
from pulumi_django.components.args import ComponentArgsError, arg, brought_attributes, check_name
from pulumi_django.config.app import ECR_IMAGE_FORM, AppConfig, EcrImage
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.static import StaticConfig
from pulumi_django.providers.aws_session import AwsSession, session_input
from pulumi_django.providers.image_tag import (
    PUSH_TAG_PREFIX,
    RELEASE_TAG_PREFIX,
    ImageReleaseTag,
)
from pulumi_django.rendering.container_definitions import APP_TMP_PATH

# An image index (multi-platform or with build attestations) keeps its platform and
# attestation manifests untagged beside it; room for those of every image kept.
UNTAGGED_PER_IMAGE = 3
# The push tag moves when pulumi-docker pushes the same context again (ECR would refuse the
# re-push of an immutable tag): the repository's only mutable tags. Every pushed digest gets
# its own immutable `release-<digest>` tag right after (providers/image_tag.py).
MUTABLE_TAGS = f"{PUSH_TAG_PREFIX}*"
# Release-tagged images kept per release the history keeps. ECR counts them by push date, the
# history by last release: a rollback makes an old push the newest release again, and a release
# whose rollout failed takes a release tag too, so the newest `keep_images` pushes need not be
# the kept releases. Twice as many keeps a kept release's image through a run of rollbacks and
# failed releases (as many of them as releases kept) without a per-image rule ECR cannot express.
RELEASE_IMAGES_PER_KEPT = 2


def lifecycle_policy(keep_images: int) -> dict[str, Any]:
    """Expire by count only, never by age: the newest `2 x keep_images` images with a
    `release-` tag always remain (RELEASE_IMAGES_PER_KEPT says why twice), so the release
    behind every static release still published can be rolled back to. An image matched by a
    rule is never expired by a later one, so the third rule expires only tagged images that
    never got a release tag (a push whose `pulumi up` stopped before tagging it, tags from
    before release tags), beyond the newest `keep_images` tagged ones."""
    if keep_images < 1:
        raise ComponentArgsError("AppImageArgs.keep_images must be at least 1")
    released = keep_images * RELEASE_IMAGES_PER_KEPT
    return {
        "rules": [
            {
                "rulePriority": 1,
                "description": "Untagged manifests beyond those of the images kept",
                "selection": {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countNumber": released * UNTAGGED_PER_IMAGE,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 2,
                "description": f"Keep the {released} newest released images",
                "selection": {
                    "tagStatus": "tagged",
                    "tagPatternList": [f"{RELEASE_TAG_PREFIX}*"],
                    "countType": "imageCountMoreThan",
                    "countNumber": released,
                },
                "action": {"type": "expire"},
            },
            {
                "rulePriority": 3,
                "description": "Other tagged images beyond the newest tagged ones",
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


@dataclass(frozen=True, kw_only=True)
class AppImageArgs:
    """Where the image is built from, for which CPU, how many images stay, and the repository
    of yours it is pushed to."""

    app: AppConfig = arg(
        "The app section: its build context and Dockerfile (`context`, `dockerfile`), or the "
        "prebuilt ECR image released instead (`image`: nothing is built, no Docker needed). "
        "Default: the section's defaults.",
        default_factory=AppConfig,
    )
    architecture: str = arg(
        "CPU architecture the image is built for, `X86_64` or `ARM64` (`fleet.architecture`). "
        "Default: the fleet section's default.",
        default=FleetConfig.model_fields["architecture"].default,
    )
    keep_images: int = arg(
        "Releases the repository's lifecycle rule keeps images for: as many as static releases "
        "stay published (`static.keepReleases`), so each can be rolled back to. The rule keeps "
        "twice as many `release-*` images, newest pushed first: a rollback makes an old push "
        "the newest release again and a failed release takes a release tag too, so the newest "
        "pushes are not always the kept releases. Default: the static section's default.",
        default=StaticConfig.model_fields["keep_releases"].default,
    )
    project_dir: Path = arg(
        "The directory `app.context` and `app.dockerfile` are relative to. Default: the "
        "current directory, where `pulumi up` runs the program.",
        default_factory=Path.cwd,
    )
    repository: aws.ecr.Repository | pulumi.Input[str] | None = arg(
        "An existing ECR repository (object or name; a name is looked up) to push to. The "
        "component then sets no lifecycle rule on it: keep at least twice `keep_images` "
        "`release-*` images there, "
        "and let `build-*` tags move (`IMMUTABLE_WITH_EXCLUSION` with that filter, or "
        "`MUTABLE`), or a rebuild of an unchanged context fails its push. Default: a repository "
        "with immutable tags but `build-*`, scan on push and that rule.",
        default=None,
    )
    kms_key_arn: pulumi.Input[str] | None = arg(
        "A customer-managed KMS key's ARN (`StackKey.arn`) the repository created here "
        "encrypts its images with (SSE-KMS). ECR sets a repository's encryption only at "
        "creation: changing it replaces the repository, and the images in it are lost. "
        "Default: None, SSE-S3 (AES256).",
        default=None,
    )
    protect: bool = arg(
        "Pulumi's `protect` on the repository created here, which holds every rollback "
        "target: `pulumi destroy` or a change that replaces it stops with an error until a "
        "`pulumi up` turned this off (`django:protect`). Default: True.",
        default=True,
    )
    aws_session: AwsSession | None = arg(
        "The AWS identity the release tag's boto3 calls act as (profile, roles to assume). "
        "Default: the stack's `aws:` settings, as the site's AWS provider reads them.",
        default=None,
    )


class AppImage(pulumi.ComponentResource):
    """ECR repository + lifecycle rule + the image, pushed as `build-<its build context's
    digest>`, then tagged `release-<its image digest>`; or, with `app.image`, that ECR image
    (a tag resolved to its digest at preview), tagged `release-<digest>` in its repository.

    The same context always plans the same push tag, so an unchanged app plans no change. That
    tag may move (pulumi-docker pushes again after an interrupted `pulumi up`, or when its own
    context hash changes while ours does not; ECR would refuse any re-push of an immutable
    tag); the release tag, one per digest, never does, and the lifecycle rule counts releases
    by it. Consumers use `image_ref` (repository@sha256:...), so a content change always
    makes a new task definition revision and nothing else does.

    A prebuilt image (`app.image`, an ECR reference) replaces the build: no Dockerfile is read
    and nothing is pushed. A digest reference is used as is; a tag is resolved to the digest it
    names when the program runs (`aws.ecr.get_image`, at every preview), so a moved tag is a new
    release and an unchanged one plans no change. The repository is still created (rollback
    targets live there); `image_repository_arn` is the one the image is pulled from.

    Each child is an attribute: `repository` and `lifecycle_policy` (None when the repository
    is brought), `image` (None for a prebuilt image) and `release_tag`."""

    image_ref: pulumi.Output[str]
    repository_url: pulumi.Output[str]
    repository_arn: pulumi.Output[str]
    repository_name: pulumi.Output[str]
    image_repository_arn: pulumi.Output[str]
    image_tag: str | None
    repository: aws.ecr.Repository | None
    lifecycle_policy: aws.ecr.LifecyclePolicy | None
    image: docker.Image | None
    release_tag: ImageReleaseTag

    def __init__(
        self, name: str, args: AppImageArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("AppImage", name)
        prebuilt = prebuilt_image(args.app)
        super().__init__("pulumi-django:fleet:AppImage", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        if prebuilt is not None:
            self._release_prebuilt(name, args, prebuilt, child)
        else:
            self._build_and_push(name, args, child)
        self.image_ref = self.release_tag.image_ref
        self.register_outputs(
            {
                "image_ref": self.image_ref,
                "image_tag": self.image_tag,
                "repository_url": self.repository_url,
                "repository_arn": self.repository_arn,
                "image_repository_arn": self.image_repository_arn,
            }
        )

    def _build_and_push(self, name: str, args: AppImageArgs, child: pulumi.ResourceOptions) -> None:
        """The image built from `app.context` and pushed to the repository, then tagged
        `release-<digest>` there."""
        context, dockerfile = build_paths(args.app, args.project_dir)
        _check_tmp_volume(dockerfile)
        platform = docker_platform(args.architecture)
        self.image_tag = PUSH_TAG_PREFIX + image_tag(context, dockerfile, platform)

        registry_id = self._repository(name, args, child)
        token = aws.ecr.get_authorization_token_output(
            registry_id=registry_id, opts=pulumi.InvokeOutputOptions(parent=self)
        )
        self.image = docker.Image(
            f"{name}-image",
            image_name=self.repository_url.apply(lambda url: f"{url}:{self.image_tag}"),
            build=docker.DockerBuildArgs(
                context=project_relative(context),
                dockerfile=project_relative(dockerfile),
                platform=platform,
            ),
            registry=docker.RegistryArgs(
                server=self.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            opts=child,
        )
        self.image_repository_arn = self.repository_arn
        self._tag_release(
            name,
            args,
            image_ref=self.image.repo_digest,
            repository_name=self.repository_name,
            registry_id=registry_id,
            region=aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region,
            child=child,
        )

    def _release_prebuilt(
        self, name: str, args: AppImageArgs, prebuilt: EcrImage, child: pulumi.ResourceOptions
    ) -> None:
        """The ECR image `app.image` names, by digest, tagged `release-<digest>` in its own
        repository (the stack's lifecycle rule keeps it when that is the stack's)."""
        self.image = None
        self.image_tag = prebuilt.tag
        self._repository(name, args, child)
        self.image_repository_arn = pulumi.Output.from_input(prebuilt.repository_arn)
        self._tag_release(
            name,
            args,
            image_ref=self._resolved(prebuilt).apply(prebuilt.at),
            repository_name=prebuilt.repository,
            registry_id=prebuilt.account,
            region=prebuilt.region,
            child=child,
        )

    def _resolved(self, prebuilt: EcrImage) -> pulumi.Output[str]:
        """The digest of the reference: its own, else the one its tag names now."""
        if prebuilt.digest is not None:
            return pulumi.Output.from_input(prebuilt.digest)
        tag = prebuilt.tag or "latest"
        found = aws.ecr.get_image_output(
            registry_id=prebuilt.account,
            repository_name=prebuilt.repository,
            image_tag=tag,
            region=prebuilt.region,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        # Plain mocks answer nothing: the recorder's digest for that tag.
        return or_mock_answer(
            found.image_digest,
            mock_ecr_digest(prebuilt.account, prebuilt.region, prebuilt.repository, tag),
        )

    def _tag_release(
        self,
        name: str,
        args: AppImageArgs,
        *,
        image_ref: pulumi.Input[str],
        repository_name: pulumi.Input[str],
        registry_id: pulumi.Input[str],
        region: pulumi.Input[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        """`release_tag`: the digest's own immutable `release-<digest>` tag, before anything
        uses the image."""
        self.release_tag = ImageReleaseTag(
            f"{name}-release-tag",
            image_ref=image_ref,
            repository_name=repository_name,
            registry_id=registry_id,
            region=region,
            aws_session=session_input(args.aws_session),
            opts=child,
        )

    def _repository(
        self, name: str, args: AppImageArgs, child: pulumi.ResourceOptions
    ) -> pulumi.Output[str]:
        """Sets `repository`, `lifecycle_policy` and the repository's outputs, the brought
        one's looked up from its name; returns its registry id (the account)."""
        self.repository = self.lifecycle_policy = None
        if args.repository is not None:
            self.repository_name, self.repository_url, self.repository_arn, registry_id = (
                brought_attributes(
                    args.repository,
                    ("name", "repository_url", "arn", "registry_id"),
                    lambda repository_name: aws.ecr.get_repository_output(
                        name=repository_name, opts=pulumi.InvokeOutputOptions(parent=self)
                    ),
                )
            )
            return registry_id
        self.repository = aws.ecr.Repository(
            f"{name}-repository",
            image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
            image_tag_mutability_exclusion_filters=[
                aws.ecr.RepositoryImageTagMutabilityExclusionFilterArgs(
                    filter=MUTABLE_TAGS, filter_type="WILDCARD"
                )
            ],
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(
                scan_on_push=True
            ),
            encryption_configurations=[
                aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")
                if args.kms_key_arn is None
                else aws.ecr.RepositoryEncryptionConfigurationArgs(
                    encryption_type="KMS", kms_key=args.kms_key_arn
                )
            ],
            # Deleting the stack must not silently delete every rollback target.
            force_delete=False,
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(protect=args.protect)),
        )
        self.lifecycle_policy = aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=json.dumps(lifecycle_policy(args.keep_images)),
            opts=child,
        )
        self.repository_url = self.repository.repository_url
        self.repository_arn = self.repository.arn
        self.repository_name = self.repository.name
        return self.repository.registry_id


def prebuilt_image(app: AppConfig) -> EcrImage | None:
    """The ECR image `app.image` names, None when it is unset (build); ComponentArgsError, one
    line, for an image ECS could not pull with the stack's execution role."""
    if app.image is None:
        return None
    prebuilt = EcrImage.parse(app.image)
    if prebuilt is None:
        raise ComponentArgsError(
            f"AppImageArgs.app.image {app.image!r} is not an ECR image: give {ECR_IMAGE_FORM}"
        )
    return prebuilt


def _check_tmp_volume(dockerfile: Path) -> None:
    if APP_TMP_PATH not in final_stage_volumes(dockerfile.read_text()):
        raise BuildContextError(
            f"{dockerfile}: add `VOLUME {APP_TMP_PATH}` to the final stage; the app container's "
            f"root filesystem is read-only and Fargate makes {APP_TMP_PATH} writable for a "
            "non-root user only when the image declares it a volume"
        )
