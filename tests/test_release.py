"""The release registry: the order and the resources that carry out each step, written once
(`Step`, `RELEASE_ROLES`), read without importing a component, and the one check-then-job gate
both targets use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from pulumi_django import AwsSite, ConfigError, LocalSite, site_class
from pulumi_django.recorder import record
from pulumi_django.release import RELEASE_STEPS, steps_of
from pulumi_django.release_steps import RELEASE_ROLES, ReleaseRole, Step, check_then_job

ROOT = Path(__file__).resolve().parent.parent


def test_the_order_and_titles_are_the_release_s() -> None:
    assert [(step.key, step.title) for step in RELEASE_STEPS] == [
        ("image", "image built"),
        ("static", "static release published"),
        ("check", "migration safety check"),
        ("migrate", "migration job"),
        ("fleet", "app fleet updated"),
        ("proxy", "proxy switched to fleet"),
    ]


def test_each_step_has_the_resource_types_of_both_targets() -> None:
    types = {step.key: set(step.types) for step in RELEASE_STEPS}
    assert types == {
        Step.IMAGE: {"docker:index/image:Image", "pulumi-python:dynamic/fleet:ImageReleaseTag"},
        Step.STATIC: {
            "pulumi-python:dynamic/static:StaticRelease",
            "pulumi-django:local:StaticRelease",
        },
        Step.CHECK: {
            "pulumi-python:dynamic/migrations:MigrationCheck",
            "pulumi-python:dynamic/migrations:LocalCheckVerdict",
        },
        Step.MIGRATE: {
            "pulumi-python:dynamic/migrations:MigrationJob",
            "pulumi-python:dynamic/migrations:LocalJobVerdict",
        },
        Step.FLEET: {
            "aws:ecs/service:Service",
            "pulumi-django:local:AppReplicas",
            "pulumi-django:local:Workers",
        },
        Step.PROXY: {"pulumi-django:local:ProxySwitch"},
    }


def test_a_step_nobody_carries_out_is_refused() -> None:
    proxy_only = (ReleaseRole(Step.PROXY, "pulumi-django:local:ProxySwitch"),)
    with pytest.raises(LookupError, match="'image'"):
        steps_of(proxy_only)
    assert steps_of(RELEASE_ROLES) == RELEASE_STEPS


# Plans the local stack in a fresh interpreter (the app's checks off: this is about the
# program) and prints the modules it loaded and the release steps it found.
LOCAL_PLAN = """import json, sys
from pathlib import Path
from pulumi_django.cli.plan import plan_stack

plan = plan_stack(Path(sys.argv[1]), "local", app_checks=False)
steps = [(found.step.key, found.ordered) for found in plan.release_order()]
print(json.dumps({"loaded": sorted(sys.modules), "steps": steps}))
"""


@pytest.mark.parametrize("project", ["bigfoot", "notebook"])
def test_a_local_plan_shows_every_step_without_loading_an_aws_component(project: str) -> None:
    """A local stack's plan never imports the AWS components, nor the AWS SDKs (pulumi_aws is
    most of a plan's import time), and still finds each of its release steps in order."""
    directory = ROOT if project == "bigfoot" else ROOT / "examples" / "notebook"
    done = subprocess.run(
        [sys.executable, "-c", LOCAL_PLAN, str(directory)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(done.stdout)
    aws = ("pulumi_aws", "pulumi_django.components.aws", "boto3", "botocore")
    assert [module for module in found["loaded"] if module.startswith(aws)] == []
    assert found["steps"] == [
        ["image", None],
        ["static", True],
        ["check", True],
        ["migrate", True],
        ["fleet", True],
        ["proxy", True],
    ]


def test_each_target_has_its_site_class_and_an_unknown_one_is_refused() -> None:
    assert site_class("aws") is AwsSite
    assert site_class("local") is LocalSite
    with pytest.raises(ConfigError, match="'gcp'"):
        site_class("gcp")  # type: ignore[arg-type]


@pytest.mark.parametrize("check_enabled", [True, False])
def test_the_gate_makes_the_job_wait_for_the_check_s_verdict(check_enabled: bool) -> None:
    built: dict[str, pulumi.CustomResource | None] = {}

    def program() -> None:
        earlier = pulumi.CustomResource("test:index:Earlier", "earlier", {})

        def check(waits_for: list[pulumi.Resource]) -> pulumi.CustomResource:
            opts = pulumi.ResourceOptions(depends_on=waits_for)
            return pulumi.CustomResource("test:index:Verdict", "verdict", {}, opts=opts)

        def job(waits_for: list[pulumi.Resource]) -> pulumi.CustomResource:
            opts = pulumi.ResourceOptions(depends_on=waits_for)
            return pulumi.CustomResource("test:index:Job", "job", {}, opts=opts)

        built["verdict"], built["job"] = check_then_job(
            check_enabled=check_enabled, after=[earlier], check=check, job=job
        )

    recording = record(program, project="shop", stack="dev", config={})

    job = recording.one("test:index:Job")
    earlier = recording.one("test:index:Earlier")
    if check_enabled:
        verdict = recording.one("test:index:Verdict")
        assert job.dependencies == [verdict.urn]
        assert verdict.dependencies == [earlier.urn]
        assert built["verdict"] is not None
    else:
        assert recording.find("test:index:Verdict") == []
        assert job.dependencies == [earlier.urn]
        assert built["verdict"] is None
