"""The app image: its ECR repository and lifecycle rule, the pulumi-docker build, the content tag
and the Dockerfile contract, recorded against mocks."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pytest
from fleet_stacks import STACKS
from moto import mock_aws
from release_histories import Deployments

from pulumi_django.build_context import (
    context_entries,
    final_stage_volumes,
    image_tag,
    is_ignored,
    read_dockerignore,
)
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.app_image import AppImage, AppImageArgs, lifecycle_policy
from pulumi_django.config import StackConfig
from pulumi_django.config.app import AppConfig
from pulumi_django.recorder import MOCK_ACCOUNT, MOCK_INVOKES, SECRET, Recording, record
from pulumi_django.release import RELEASE_STEPS

DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM python:3.11-slim AS builder
VOLUME /build-cache
RUN pip wheel --wheel-dir /wheels gunicorn

FROM python:3.11-slim
COPY --from=builder /wheels /wheels
COPY . /app
USER 10001:10001
VOLUME ["/tmp"]
CMD ["gunicorn", "app.wsgi"]
"""
IMAGE = "docker:index/image:Image"
REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


def make_project(root: Path, dockerfile: str = DOCKERFILE) -> Path:
    context = root / "app"
    (context / "pkg").mkdir(parents=True)
    (context / "Dockerfile").write_text(dockerfile)
    (context / "pkg" / "views.py").write_text("def index(): ...\n")
    (context / "manage.py").write_text("print('manage')\n")
    (context / ".dockerignore").write_text("**/__pycache__\n*.log\n")
    return context


def record_image(config: StackConfig, project_dir: Path) -> Recording:
    app = config.app.model_copy(update={"context": "app"})

    return record_args(
        lambda: AppImageArgs(
            app=app,
            architecture=config.fleet.architecture,
            keep_images=config.static.keep_releases,
            project_dir=project_dir,
        ),
        name=f"{config.name}-image",
    )


def record_args(
    args: Callable[[], AppImageArgs], built: list[AppImage] | None = None, name: str = "web"
) -> Recording:
    """`args` is called inside the program, so that resources it builds are registered there."""

    def program() -> None:
        image = AppImage(name, args())
        for output in ("image_ref", "repository_url", "repository_arn", "image_tag"):
            pulumi.export(output, getattr(image, output))
        if built is not None:
            built.append(image)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    make_project(tmp_path)
    monkeypatch.chdir(tmp_path)  # Pulumi runs programs in the project directory.
    return tmp_path


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_repository_scans_on_push_keeps_tags_immutable_and_is_never_force_deleted(
    stack: str, project: Path
) -> None:
    config = STACKS[stack]()
    repository = record_image(config, project).one(REPOSITORY).inputs
    # Every tag is immutable but the push tag, which a rebuild of the same context moves.
    assert repository["imageTagMutability"] == "IMMUTABLE_WITH_EXCLUSION"
    assert repository["imageTagMutabilityExclusionFilters"] == [
        {"filter": "build-*", "filterType": "WILDCARD"}
    ]
    assert repository["imageScanningConfiguration"] == {"scanOnPush": True}
    assert repository["encryptionConfigurations"] == [{"encryptionType": "AES256"}]
    assert repository["forceDelete"] is False


def lifecycle_rules(recording: Recording) -> dict[str, dict[str, Any]]:
    """The rules by what they select: `untagged`, `release-*` and `*` (other tagged images)."""
    policy = json.loads(recording.one(LIFECYCLE).inputs["policy"])
    return {
        " ".join(rule["selection"].get("tagPatternList", [rule["selection"]["tagStatus"]])): rule
        for rule in policy["rules"]
    }


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_lifecycle_keeps_twice_as_many_release_images_as_static_releases(
    stack: str, project: Path
) -> None:
    config = STACKS[stack]()
    recording = record_image(config, project)
    rules = lifecycle_rules(recording)
    keep = config.static.keep_releases
    assert set(rules) == {"untagged", "release-*", "*"}
    for rule in rules.values():
        # Count-based only: nothing expires for its age, so an idle stack keeps its rollbacks.
        assert rule["selection"]["countType"] == "imageCountMoreThan"
    # Rollbacks reorder the releases and failed releases take release tags: twice the history.
    assert rules["release-*"]["selection"]["countNumber"] == 2 * keep
    assert rules["release-*"]["rulePriority"] < rules["*"]["rulePriority"]
    assert rules["*"]["selection"]["countNumber"] == keep
    assert rules["untagged"]["selection"]["countNumber"] >= 2 * keep
    assert recording.depends_on(recording.one(LIFECYCLE).urn, recording.one(REPOSITORY).urn)


def surviving_release_images(pushes: list[str], keep: int) -> set[str]:
    """What the release rule leaves of release-tagged images pushed in `pushes`' order: ECR
    counts them by push date, newest first."""
    [rule] = [
        rule
        for rule in lifecycle_policy(keep)["rules"]
        if rule["selection"].get("tagPatternList") == ["release-*"]
    ]
    return set(list(reversed(pushes))[: rule["selection"]["countNumber"]])


def test_every_kept_release_keeps_its_image_through_rollbacks_and_failed_releases() -> None:
    """The history orders releases by their last rollout, ECR by push: v1 rolled back to, then
    v4 released and v5, v6 pushed and tagged but failed. The history keeps v4, v1 and v3; the
    three newest pushes are v6, v5 and v4."""
    keep = 3
    stack = Deployments(keep=keep)
    pushes: list[str] = []
    for version in ("v1", "v2", "v3"):
        pushes.append(version)
        stack.up(version)
    stack.up("v1")  # a rollback: no push
    pushes.append("v4")
    stack.up("v4")
    pushes += ["v5", "v6"]  # tagged `release-<digest>` before their rollouts failed
    assert stack.releases() == ["v4", "v1", "v3"]
    assert set(stack.releases()) <= surviving_release_images(pushes, keep)


@mock_aws
def test_ecr_accepts_the_lifecycle_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    ecr = boto3.client("ecr", region_name="us-east-1")
    ecr.create_repository(repositoryName="shop", imageTagMutability="IMMUTABLE")
    text = json.dumps(lifecycle_policy(5))
    ecr.put_lifecycle_policy(repositoryName="shop", lifecyclePolicyText=text)
    stored = ecr.get_lifecycle_policy(repositoryName="shop")["lifecyclePolicyText"]
    assert json.loads(stored) == json.loads(text)


def test_lifecycle_refuses_to_keep_nothing() -> None:
    with pytest.raises(ComponentArgsError, match="keep_images must be at least 1"):
        lifecycle_policy(0)


@pytest.mark.parametrize(
    ("stack", "platform"), [("dev-like", "linux/arm64"), ("prod-like", "linux/amd64")]
)
def test_image_is_built_for_the_fleet_architecture_and_tagged_with_its_content(
    stack: str, platform: str, project: Path
) -> None:
    config = STACKS[stack]()
    recording = record_image(config, project)
    image = recording.one(IMAGE).inputs
    repository_url = recording.outputs["repository_url"]
    tag = "build-" + image_tag(project / "app", project / "app" / "Dockerfile", platform)
    assert recording.outputs["image_tag"] == tag
    assert image["imageName"] == f"{repository_url}:{tag}"
    # Relative to the project directory: state does not depend on the checkout's location.
    assert image["build"] == {
        "context": "app",
        "dockerfile": "app/Dockerfile",
        "platform": platform,
    }
    assert image["registry"]["server"] == repository_url
    assert image["registry"]["username"] == "AWS"
    assert image["registry"]["password"] == SECRET
    # The task definition gets the digest: a new build always means a new revision.
    assert recording.outputs["image_ref"] == f"{repository_url}@sha256:{'0' * 64}"
    assert recording.depends_on(recording.one(IMAGE).urn, recording.one(REPOSITORY).urn)


def test_the_image_is_the_release_order_image_step(project: Path) -> None:
    recording = record_image(STACKS["prod-like"](), project)
    assert RELEASE_STEPS[0].key == "image"
    assert [r.type for r in recording.resources if r.type in RELEASE_STEPS[0].types] == [
        IMAGE,
        "pulumi-python:dynamic/fleet:ImageReleaseTag",
    ]


def test_missing_dockerfile_is_a_clear_error(project: Path) -> None:
    (project / "app" / "Dockerfile").unlink()
    with pytest.raises(
        pulumi.RunError, match=r"django:app.dockerfile: .*Dockerfile does not exist"
    ):
        record_image(STACKS["prod-like"](), project)


def test_dockerfile_without_a_tmp_volume_is_refused(project: Path) -> None:
    (project / "app" / "Dockerfile").write_text(DOCKERFILE.replace('VOLUME ["/tmp"]\n', ""))
    with pytest.raises(pulumi.RunError, match=r"add `VOLUME /tmp` to the final stage"):
        record_image(STACKS["prod-like"](), project)


# --- Escape hatches and bring your own ----------------------------------------------------

THEIR_REPOSITORY = "team/shop"
THEIR_URL = f"{MOCK_ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{THEIR_REPOSITORY}"
# The app of `make_project`, under `app/` of the project.
APP = AppConfig(context="app")


def test_every_child_is_a_typed_attribute(project: Path) -> None:
    built: list[AppImage] = []
    record_args(lambda: AppImageArgs(app=APP, project_dir=project), built)
    (image,) = built
    assert isinstance(image.repository, aws.ecr.Repository)
    assert isinstance(image.lifecycle_policy, aws.ecr.LifecyclePolicy)
    assert isinstance(image.image, docker.Image)


def test_a_brought_repository_name_is_pushed_to_without_a_lifecycle_rule(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        MOCK_INVOKES,
        "aws:ecr/getRepository:getRepository",
        lambda args, region: {
            "name": args["name"],
            "arn": f"arn:aws:ecr:{region}:{MOCK_ACCOUNT}:repository/{args['name']}",
            "registryId": MOCK_ACCOUNT,
            "repositoryUrl": THEIR_URL,
        },
    )
    built: list[AppImage] = []
    recording = record_args(
        lambda: AppImageArgs(app=APP, project_dir=project, repository=THEIR_REPOSITORY),
        built,
    )
    assert recording.find(REPOSITORY) == recording.find(LIFECYCLE) == []
    assert built[0].repository is None and built[0].lifecycle_policy is None
    image = recording.one(IMAGE).inputs
    assert image["imageName"] == f"{THEIR_URL}:{recording.outputs['image_tag']}"
    assert image["registry"]["server"] == THEIR_URL
    assert recording.outputs["image_ref"] == f"{THEIR_URL}@sha256:{'0' * 64}"
    assert recording.outputs["repository_arn"] == (
        f"arn:aws:ecr:us-east-1:{MOCK_ACCOUNT}:repository/{THEIR_REPOSITORY}"
    )


def test_a_brought_repository_object_is_pushed_to(project: Path) -> None:
    def args() -> AppImageArgs:
        theirs = aws.ecr.Repository("theirs")
        return AppImageArgs(app=APP, project_dir=project, repository=theirs)

    recording = record_args(args)
    (repository,) = recording.find(REPOSITORY)
    assert repository.name == "theirs"
    assert recording.find(LIFECYCLE) == []
    assert recording.depends_on(recording.one(IMAGE).urn, repository.urn)
    assert recording.outputs["repository_url"].endswith("/theirs")


# --- The content tag ---------------------------------------------------------------------


def tag_of(context: Path, platform: str = "linux/amd64") -> str:
    return image_tag(context, context / "Dockerfile", platform)


def test_tag_is_stable_and_follows_every_change_docker_would_see(tmp_path: Path) -> None:
    context = make_project(tmp_path)
    first = tag_of(context)
    assert tag_of(context) == first
    assert tag_of(context, "linux/arm64") != first

    (context / "pkg" / "views.py").write_text("def index(): return 1\n")
    edited = tag_of(context)
    assert edited != first

    (context / "manage.py").chmod(0o755)
    executable = tag_of(context)
    assert executable != edited

    (context / "pkg" / "empty").mkdir()
    assert tag_of(context) != executable


def test_tag_ignores_what_dockerignore_leaves_out(tmp_path: Path) -> None:
    context = make_project(tmp_path)
    before = tag_of(context)
    (context / "pkg" / "__pycache__").mkdir()
    (context / "pkg" / "__pycache__" / "views.cpython-311.pyc").write_bytes(b"\0")
    (context / "debug.log").write_text("noise\n")
    assert tag_of(context) == before
    (context / ".dockerignore").write_text("**/__pycache__\n")
    assert tag_of(context) != before  # debug.log is sent now


def test_exceptions_bring_files_back(tmp_path: Path) -> None:
    context = make_project(tmp_path)
    (context / "docs").mkdir()
    (context / "docs" / "guide.md").write_text("guide\n")
    (context / "docs" / "keep.md").write_text("keep\n")
    (context / ".dockerignore").write_text("docs\n!docs/keep.md\n")
    sent = {p.relative_to(context).as_posix() for p in context_entries(context)}
    assert "docs/keep.md" in sent
    assert "docs/guide.md" not in sent
    with_keep = tag_of(context)
    (context / "docs" / "keep.md").write_text("changed\n")
    assert tag_of(context) != with_keep


@pytest.mark.parametrize(
    ("patterns", "path", "ignored"),
    [
        ("*.pyc", "a.pyc", True),
        ("*.pyc", "pkg/a.pyc", False),  # `*` stops at a slash, as in Docker
        ("**/*.pyc", "pkg/sub/a.pyc", True),
        ("**/*.pyc", "a.pyc", True),
        ("node_modules", "node_modules/x/index.js", True),  # a matched parent directory
        ("/build", "build/out.txt", True),
        ("a/*/c", "a/b/c", True),
        ("a/*/c", "a/b/x/c", False),
        ("file?.txt", "file1.txt", True),
        ("file?.txt", "file10.txt", False),
        ("[ab].txt", "b.txt", True),
        ("*\n!keep.txt", "keep.txt", False),
        ("*\n!keep.txt\nkeep.txt", "keep.txt", True),  # the last match decides
        ("# comment\n\n", "comment", False),
    ],
)
def test_dockerignore_patterns_match_as_docker_does(
    tmp_path: Path, patterns: str, path: str, ignored: bool
) -> None:
    (tmp_path / ".dockerignore").write_text(patterns + "\n")
    assert is_ignored(path, read_dockerignore(tmp_path)) is ignored


@pytest.mark.parametrize(
    ("dockerfile", "volumes"),
    [
        (DOCKERFILE, {"/tmp"}),
        ("FROM a\nVOLUME /tmp /var/cache\n", {"/tmp", "/var/cache"}),
        ("FROM a\nvolume /tmp/\n", {"/tmp"}),
        ("FROM a\nVOLUME \\\n  /data \\\n  /tmp\n", {"/data", "/tmp"}),
        ("FROM a\nVOLUME /tmp\nFROM b\nRUN true\n", set()),  # only the last stage ships
    ],
)
def test_final_stage_volumes(dockerfile: str, volumes: set[str]) -> None:
    assert final_stage_volumes(dockerfile) == volumes
