"""A prebuilt image (`django:app.image`) released instead of a build, on both targets and both
example apps: no Docker build in the plan, a tag resolved to its digest when the program runs
(a moved tag is a new release, an unchanged one no change), and every step of the release (the
task definition or the containers, the static release, the migration check and job) running
that digest; on aws, only an ECR image, refused in one line otherwise."""

from __future__ import annotations

import fnmatch
import json
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pulumi_docker as docker
import pytest
import yaml
from botocore.stub import Stubber
from pulumi.runtime import settings

from pulumi_django.cli import main
from pulumi_django.cli.plan import Plan, plan_stack
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.app_image import AppImage, AppImageArgs
from pulumi_django.components.aws.site import AwsSite
from pulumi_django.components.local.app_image import LocalAppImage, LocalAppImageArgs
from pulumi_django.components.local.site import LocalSite
from pulumi_django.config import StackConfig
from pulumi_django.config.app import AppConfig, EcrImage
from pulumi_django.config.loader import ConfigError, parse_stack_config
from pulumi_django.providers.image_tag import release_tag
from pulumi_django.providers.registry import ImageReference, session_authorization
from pulumi_django.recorder import MOCK_INVOKES, RecordedResource, Recording, record

ROOT = Path(__file__).resolve().parent.parent
BIGFOOT = ROOT / "examples" / "bigfoot"
NOTEBOOK = ROOT / "examples" / "notebook"

BUILD = "docker:index/image:Image"
PULL = "docker:index/remoteImage:RemoteImage"
CONTAINER = "docker:index/container:Container"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
RELEASE_TAG = "pulumi-python:dynamic/fleet:ImageReleaseTag"
STATIC_RELEASE = "pulumi-python:dynamic/static:StaticRelease"
CHECK = "pulumi-python:dynamic/migrations:MigrationCheck"
JOB = "pulumi-python:dynamic/migrations:MigrationJob"
GET_ECR_IMAGE = "aws:ecr/getImage:getImage"
GET_REGISTRY_IMAGE = "docker:index/getRegistryImage:getRegistryImage"
GET_LOCAL_IMAGE = "docker:index/getRemoteImage:getRemoteImage"

# CI's image, in another account's repository and another region than the stack's.
CI_REGISTRY = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"
CI_REPOSITORY = f"{CI_REGISTRY}/ci/bigfoot"
DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32


# --- helpers --------------------------------------------------------------------------------


def write_stack(project: Path, stack: str, base: Path, app: Mapping[str, Any]) -> None:
    """`Pulumi.<stack>.yaml` in `project`: `base`'s config with `app` over its `django:app`."""
    document = yaml.safe_load(base.read_text())
    document["config"]["django:app"] = {**document["config"].get("django:app", {}), **app}
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))


def bigfoot_project(tmp_path: Path, stack: str, base: str, image: str) -> Path:
    """A project of the repository's program whose `stack` is `Pulumi.<base>.yaml` with
    `app.image`, the app's source where it is (what the plan checks)."""
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    write_stack(
        tmp_path, stack, ROOT / f"Pulumi.{base}.yaml", {"context": str(BIGFOOT), "image": image}
    )
    return tmp_path


def notebook_project(tmp_path: Path, stack: str, base: str, image: str) -> Path:
    project = tmp_path / "notebook"
    shutil.copytree(NOTEBOOK, project, ignore=shutil.ignore_patterns("__pycache__", "releases"))
    write_stack(project, stack, NOTEBOOK / f"Pulumi.{base}.yaml", {"image": image})
    return project


def app_image(recording: Recording) -> str:
    """The image of the task definition's app container."""
    definitions = json.loads(recording.one(TASK_DEFINITION).inputs["containerDefinitions"])
    return next(c["image"] for c in definitions if c["name"] == "app")


def pull_resource(recording: Recording) -> list[str]:
    """The PullAppImage statement's resource of the execution role's policy."""
    policies = recording.find("aws:iam/rolePolicy:RolePolicy", r".*-execution")
    [statement] = [
        statement
        for policy in policies
        for statement in json.loads(policy.inputs["policy"])["Statement"]
        if statement.get("Sid") == "PullAppImage"
    ]
    resource = statement["Resource"]
    return [resource] if isinstance(resource, str) else resource


def assert_aws_release_runs(plan: Plan, ref: str) -> None:
    """No build; the task definition, static release, migration check and job run `ref`,
    after its release tag, in an order the plan verified."""
    recording = plan.recording
    assert not recording.find(BUILD)
    assert not [r for r in recording.resources if r.type.startswith("docker:")]
    assert app_image(recording) == ref
    tag = recording.one(RELEASE_TAG)
    static = recording.one(STATIC_RELEASE)
    assert tag.inputs["image_ref"] == ref
    assert static.inputs["image"] == ref and static.inputs["release_id"] == ref
    assert recording.depends_on(static.urn, tag.urn)
    task_definition = recording.one(TASK_DEFINITION)
    for step in (recording.one(CHECK), recording.one(JOB)):
        assert step.inputs["release_id"] == ref
        assert recording.depends_on(step.urn, task_definition.urn)
    assert recording.outputs["releaseId"] == ref
    steps = plan.release_order()
    # The release starts when the digest is resolved and tagged: no build, still step 1.
    assert [found.step.key for found in steps] == ["image", "static", "check", "migrate", "fleet"]
    assert [resource.urn for resource in steps[0].resources] == [tag.urn]
    assert all(found.ordered for found in steps[1:])
    # The stack's own repository still holds the rollback targets.
    assert len(recording.find(REPOSITORY)) == 1


@pytest.fixture
def ecr_tags(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[tuple[str, str, str], str]]:
    """The ECR the offline plan asks: (registry id, repository, tag) -> digest, as a test sets
    it; every lookup is recorded under the key `asked`."""
    tags: dict[Any, Any] = {"asked": []}

    def get_image(args: Mapping[str, Any], _region: str) -> dict[str, Any]:
        tags["asked"].append(dict(args))
        digest = tags[(args["registryId"], args["repositoryName"], args["imageTag"])]
        return {"id": digest, "imageDigest": digest, "imageTags": [args["imageTag"]]}

    monkeypatch.setitem(MOCK_INVOKES, GET_ECR_IMAGE, get_image)
    yield tags


# --- aws ------------------------------------------------------------------------------------


def test_an_aws_stack_releases_a_prebuilt_digest_without_building(tmp_path: Path) -> None:
    ref = f"{CI_REPOSITORY}@{DIGEST_A}"
    plan = plan_stack(bigfoot_project(tmp_path, "ci", "dev", ref), "ci")
    assert_aws_release_runs(plan, ref)
    tag = plan.recording.one(RELEASE_TAG).inputs
    # Tagged `release-<digest>` in the image's own repository, account and region.
    assert (tag["repository_name"], tag["registry_id"], tag["region"]) == (
        "ci/bigfoot",
        "210987654321",
        "eu-west-1",
    )
    # ECS pulls it from that repository, not the stack's.
    assert pull_resource(plan.recording) == [
        "arn:aws:ecr:eu-west-1:210987654321:repository/ci/bigfoot"
    ]
    # The plan still checks the app's source at app.context, the one the image was built from.
    assert plan.readiness is not None
    assert plan.readiness.ready, plan.readiness.errors
    assert plan.migrations.skipped is None and plan.migrations.result is not None
    assert plan.migrations.app_dir == BIGFOOT


def test_an_aws_stack_resolves_a_tag_to_its_digest_and_a_moved_tag_is_a_new_release(
    tmp_path: Path, ecr_tags: dict[Any, Any]
) -> None:
    ecr_tags[("210987654321", "ci/bigfoot", "main")] = DIGEST_A
    project = bigfoot_project(tmp_path, "ci", "dev", f"{CI_REPOSITORY}:main")
    first = plan_stack(project, "ci")
    assert_aws_release_runs(first, f"{CI_REPOSITORY}@{DIGEST_A}")
    # Asked in the image's own registry (account) and region.
    asked = ecr_tags["asked"][0]
    assert (asked["registryId"], asked["repositoryName"], asked["imageTag"], asked["region"]) == (
        "210987654321",
        "ci/bigfoot",
        "main",
        "eu-west-1",
    )

    def releasing(plan: Plan) -> dict[str, Any]:
        recording = plan.recording
        return {
            "task": recording.one(TASK_DEFINITION).inputs,
            "static": recording.one(STATIC_RELEASE).inputs,
            "tag": recording.one(RELEASE_TAG).inputs,
            "job": recording.one(JOB).inputs,
        }

    # The same tag on the same digest: the same inputs everywhere, so no change to deploy.
    assert releasing(plan_stack(project, "ci")) == releasing(first)
    # CI pushed again under the tag: the next preview releases the new digest.
    ecr_tags[("210987654321", "ci/bigfoot", "main")] = DIGEST_B
    moved = plan_stack(project, "ci")
    assert_aws_release_runs(moved, f"{CI_REPOSITORY}@{DIGEST_B}")


def test_a_rollback_pin_in_the_stacks_own_repository_is_kept_by_its_lifecycle_rule() -> None:
    """`rollback` pins a digest of the stack's repository: tagged there, pulled from there."""
    own = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/bigfoot-dev-repository@{DIGEST_B}"
    config = StackConfig.model_validate(
        {"target": "aws", "name": "bigfoot-dev", "app": {"context": str(BIGFOOT), "image": own}}
    )

    def program() -> None:
        AwsSite("bigfoot-dev", config)

    recording = record(
        program,
        project="pulumi-django",
        stack="dev",
        config={"aws:region": "us-east-1"},
    )
    repository = recording.one(REPOSITORY)
    tag = recording.one(RELEASE_TAG).inputs
    assert tag["repository_name"] == "bigfoot-dev-repository" == repository.name
    assert tag["registry_id"] == "123456789012" and tag["image_ref"] == own
    assert pull_resource(recording) == [
        "arn:aws:ecr:us-east-1:123456789012:repository/bigfoot-dev-repository"
    ]
    assert app_image(recording) == own
    # The repository's lifecycle rule keeps the tag the pin gets, for twice the kept releases
    # (a rollback makes an old push the newest release; ECR counts by push).
    lifecycle = recording.one(LIFECYCLE)
    assert lifecycle.inputs["repository"] == repository.name
    assert recording.depends_on(lifecycle.urn, repository.urn)
    [kept] = [
        rule
        for rule in json.loads(lifecycle.inputs["policy"])["rules"]
        if rule["action"]["type"] == "expire"
        and rule["selection"]["tagStatus"] == "tagged"
        and any(
            fnmatch.fnmatchcase(release_tag(own), pattern)
            for pattern in rule["selection"]["tagPatternList"]
        )
        and rule["selection"]["tagPatternList"] != ["*"]
    ]
    assert kept["selection"]["countType"] == "imageCountMoreThan"
    assert kept["selection"]["countNumber"] == 2 * config.static.keep_releases


@pytest.mark.parametrize(
    "image",
    ["ghcr.io/acme/bigfoot:v7", "bigfoot:v7", f"docker.io/acme/bigfoot@{DIGEST_A}", DIGEST_A],
)
def test_a_non_ecr_image_on_aws_is_refused_in_one_line(
    tmp_path: Path, image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    project = bigfoot_project(tmp_path, "ci", "dev", image)
    assert main(["plan", "--stack", "ci", "--cwd", str(project)]) == 2
    [error] = capsys.readouterr().err.splitlines()
    assert error.startswith(
        "pulumi-django plan: error: stack ci: invalid stack config: "
        f"django:app: image {image!r} is not in ECR; on aws give "
    )
    assert ".dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:" in error
    # Locally, the same image is fine.
    parse_stack_config({"target": "local", "app": json.dumps({"image": image})}, set())


def test_the_component_refuses_a_non_ecr_image_in_one_line() -> None:
    def program() -> None:
        AppImage("web", AppImageArgs(app=AppConfig(image="ghcr.io/acme/bigfoot:v7")))

    with pytest.raises(ComponentArgsError) as raised:
        record(program, project="p", stack="s", config={})
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("AppImageArgs.app.image 'ghcr.io/acme/bigfoot:v7'")


def test_ecr_references_parse_into_their_repository_and_arn() -> None:
    china = EcrImage.parse(f"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b:v1@{DIGEST_A}")
    assert china is not None
    assert china.repository_arn == "arn:aws-cn:ecr:cn-north-1:123456789012:repository/a/b"
    assert (china.tag, china.digest) == ("v1", DIGEST_A)
    assert china.at(DIGEST_B) == f"123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/a/b@{DIGEST_B}"
    gov = EcrImage.parse("123456789012.dkr.ecr-fips.us-gov-west-1.amazonaws.com/app:v1")
    assert gov is not None and gov.repository_arn.startswith("arn:aws-us-gov:ecr:us-gov-west-1:")
    for not_ecr in (
        "123456789012.dkr.ecr.eu-west-1.amazonaws.com/app",  # neither tag nor digest
        "12345.dkr.ecr.eu-west-1.amazonaws.com/app:v1",
        "public.ecr.aws/acme/app:v1",
    ):
        assert EcrImage.parse(not_ecr) is None
    with pytest.raises(ConfigError, match="is not in ECR"):
        parse_stack_config(
            {"target": "aws", "app": json.dumps({"image": "public.ecr.aws/acme/app:v1"})}, set()
        )


def test_the_static_release_reads_another_accounts_image_with_a_token_of_its_region() -> None:
    """GetAuthorizationToken's token opens every registry the identity may read, in the
    region it was asked in: the image's, whatever the stack's region and account."""
    ecr = boto3.client(
        "ecr", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    asked: list[str | None] = []

    class Session:
        def client(self, service: str, region_name: str | None = None) -> Any:
            asked.append(region_name)
            return ecr

    with Stubber(ecr) as stub:
        stub.add_response(
            "get_authorization_token",
            {"authorizationData": [{"authorizationToken": "QVdTOnRva2Vu"}]},
            {},
        )
        header = session_authorization(
            Session(), ImageReference.parse(f"{CI_REPOSITORY}@{DIGEST_A}"), "us-east-1"
        )
    assert header == "Basic QVdTOnRva2Vu" and asked == ["eu-west-1"]


# --- local ----------------------------------------------------------------------------------


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The local Docker engine and registries the offline plan asks: name -> image ID (the
    engine's images) or digest (a registry's tags), as a test sets them."""
    images: dict[str, str] = {}

    def found(args: Mapping[str, Any], _region: str) -> dict[str, Any]:
        return {"id": images[args["name"]], "name": args["name"]}

    monkeypatch.setitem(MOCK_INVOKES, GET_LOCAL_IMAGE, found)
    monkeypatch.setitem(
        MOCK_INVOKES,
        GET_REGISTRY_IMAGE,
        lambda args, _r: {**found(args, _r), "sha256Digest": images[args["name"]]},
    )
    yield images


def local_release(recording: Recording, site: str) -> dict[str, RecordedResource]:
    """The containers of a release: replicas, the migration check and job, the static publish."""
    containers = {resource.name: resource for resource in recording.find(CONTAINER)}
    release = {
        name: resource
        for name, resource in containers.items()
        if name.startswith(f"{site}-app-")
        or name in (f"{site}-migrate-check", f"{site}-migrate-job", f"{site}-static-publish")
    }
    assert {f"{site}-app-1", f"{site}-migrate-job", f"{site}-static-publish"} <= set(release)
    return release


def assert_local_release_runs(plan: Plan, site: str, image_id: str) -> RecordedResource:
    recording = plan.recording
    assert not recording.find(BUILD)
    pulled = recording.one(PULL, f"{site}-app-image-pull")
    assert pulled.inputs["keepLocally"] is True
    for container in local_release(recording, site).values():
        assert container.inputs["image"] == image_id, container.name
        assert recording.depends_on(container.urn, pulled.urn)
    assert recording.outputs["releaseId"] == image_id
    steps = plan.release_order()
    assert steps[0].step.key == "static"
    assert all(found.ordered for found in steps[1:])
    return pulled


def test_a_local_stack_runs_an_image_the_engine_has_under_a_tag_and_a_moved_tag_is_a_release(
    tmp_path: Path, engine: dict[str, str]
) -> None:
    """`docker build -t bigfoot:v7` (or the stack's own earlier build): no registry asked."""
    engine["bigfoot:v7"] = DIGEST_A
    project = bigfoot_project(tmp_path, "mine", "local", "bigfoot:v7")
    first = plan_stack(project, "mine")
    pulled = assert_local_release_runs(first, "bigfoot-local", DIGEST_A)
    assert pulled.inputs["name"] == "bigfoot:v7"
    assert pulled.inputs["pullTriggers"] == [DIGEST_A]
    assert first.readiness is not None
    assert first.readiness.ready, first.readiness.errors
    assert first.migrations.result is not None and first.migrations.app_dir == BIGFOOT
    same = plan_stack(project, "mine").recording.one(PULL, "bigfoot-local-app-image-pull")
    assert same.inputs == pulled.inputs
    engine["bigfoot:v7"] = DIGEST_B  # rebuilt under the same tag
    moved = assert_local_release_runs(plan_stack(project, "mine"), "bigfoot-local", DIGEST_B)
    assert moved.inputs["pullTriggers"] == [DIGEST_B]


def record_local(image: str) -> Recording:
    config = StackConfig.model_validate(
        {"target": "local", "name": "web", "app": {"context": str(BIGFOOT), "image": image}}
    )

    def program() -> None:
        LocalSite("web", config)

    return record(program, project="p", stack="local", config={})


def test_a_local_registry_tag_is_pulled_by_the_digest_it_names_now(
    engine: dict[str, str],
) -> None:
    engine["ghcr.io/acme/bigfoot:v7"] = DIGEST_A
    pulled = record_local("ghcr.io/acme/bigfoot:v7").one(PULL, "web-app-image-pull").inputs
    assert pulled["name"] == f"ghcr.io/acme/bigfoot@{DIGEST_A}"
    engine["ghcr.io/acme/bigfoot:v7"] = DIGEST_B
    moved = record_local("ghcr.io/acme/bigfoot:v7").one(PULL, "web-app-image-pull").inputs
    assert moved["name"] == f"ghcr.io/acme/bigfoot@{DIGEST_B}"


@pytest.mark.parametrize("image", [f"ghcr.io/acme/bigfoot@{DIGEST_A}", DIGEST_A])
def test_a_local_digest_or_image_id_is_used_as_is(image: str) -> None:
    recording = record_local(image)
    pulled = recording.one(PULL, "web-app-image-pull")
    assert pulled.inputs["name"] == image and not pulled.inputs.get("pullTriggers")
    assert not recording.find(BUILD)
    replica = recording.one(CONTAINER, "web-app-1")
    assert recording.depends_on(replica.urn, pulled.urn)


def test_unset_the_stacks_keep_building(stack_plan: Callable[[str], Plan]) -> None:
    for stack in ("dev", "local"):
        recording = stack_plan(stack).recording
        assert len(recording.find(BUILD)) == 1
        assert not recording.find(PULL, r".*-app-image-pull")


# --- the notebook app -------------------------------------------------------------------------


def test_the_notebook_app_deploys_a_prebuilt_image_on_aws(tmp_path: Path) -> None:
    ref = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/notebook@{DIGEST_B}"
    project = notebook_project(tmp_path, "ci", "dev", ref)
    plan = plan_stack(project, "ci")
    assert_aws_release_runs(plan, ref)
    assert plan.readiness is not None
    assert plan.readiness.ready, plan.readiness.errors
    assert plan.readiness.server == "uvicorn"
    assert plan.migrations.result is not None and plan.migrations.app_dir == project.resolve()


def test_the_notebook_app_runs_a_local_image_on_the_local_target(
    tmp_path: Path, engine: dict[str, str]
) -> None:
    engine["notebook:ci"] = DIGEST_A
    project = notebook_project(tmp_path, "mine", "local", "notebook:ci")
    plan = plan_stack(project, "mine")
    assert_local_release_runs(plan, "notebook-local", DIGEST_A)
    replica = plan.recording.one(CONTAINER, "notebook-local-app-1").inputs
    assert "DJANGO_SETTINGS_MODULE=notebook.settings.production" in replica["envs"]
    assert plan.readiness is not None
    assert plan.readiness.ready, plan.readiness.errors


# --- under the SDK's standard mocks ------------------------------------------------------------


class EchoMocks(pulumi.runtime.Mocks):
    """The SDK's recipe: resources echo their inputs, invokes answer nothing."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict:  # type: ignore[override]
        return {}


@pytest.fixture
def echo_mocks() -> Iterator[None]:
    pulumi.runtime.set_mocks(EchoMocks(), project="p", stack="test", preview=False)
    yield
    settings.ROOT.set(None)
    settings.SETTINGS.outputs.clear()


def test_a_tag_resolves_to_a_digest_under_plain_mocks_too(echo_mocks: None) -> None:
    """A user's own unit test, whose mocks answer no invoke, still gets a digest reference."""
    seen: dict[str, list[str]] = {}

    @pulumi.runtime.test
    def check() -> pulumi.Output[None]:
        aws_image = AppImage("web", AppImageArgs(app=AppConfig(image=f"{CI_REPOSITORY}:main")))
        local = LocalAppImage("app", LocalAppImageArgs(app=AppConfig(image="notebook:ci")))
        assert isinstance(local.image, docker.RemoteImage)
        return pulumi.Output.all(aws_image.image_ref, local.image.pull_triggers).apply(
            lambda values: seen.update(aws=[values[0]], local=values[1])
        )

    check()
    assert seen["aws"][0].startswith(f"{CI_REPOSITORY}@sha256:")
    assert len(seen["aws"][0].rpartition("@sha256:")[2]) == 64
    [local_id] = seen["local"]
    assert local_id.startswith("sha256:") and len(local_id) == 71
