"""The release registry: the order written once (`Step`), the steps' resources read from what
the components declare, and the one check-then-job gate both targets use."""

from __future__ import annotations

import importlib
import pkgutil

import pulumi
import pytest

import pulumi_django.components
import pulumi_django.providers
from pulumi_django.recorder import record
from pulumi_django.release import PARTICIPANTS, RELEASE_STEPS, declared_steps
from pulumi_django.release_steps import ReleaseRole, Step, check_then_job


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


def test_every_class_that_declares_a_step_is_read() -> None:
    """A component or provider with `release_roles` that `PARTICIPANTS` left out would carry
    out a step the plan never shows."""
    declaring = set()
    for package in (pulumi_django.components, pulumi_django.providers):
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            module = importlib.import_module(found.name)
            declaring |= {
                value
                for value in vars(module).values()
                if isinstance(value, type)
                and value.__module__ == module.__name__
                and "release_roles" in vars(value)
            }
    assert declaring == set(PARTICIPANTS)


def test_a_step_nobody_carries_out_is_refused() -> None:
    class ProxyOnly:
        release_roles = (ReleaseRole(Step.PROXY, "pulumi-django:local:ProxySwitch"),)

    with pytest.raises(LookupError, match="'image'"):
        declared_steps((ProxyOnly,))
    assert declared_steps(PARTICIPANTS) == RELEASE_STEPS


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
