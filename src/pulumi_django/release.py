"""The release order every target follows, and its check on a recorded plan.

image built -> static release published -> migration safety check -> migration job -> app fleet
updated -> proxy switched to fleet (local only: the proxy container outlives releases)

The stack enforces it with resource dependencies; the offline plan shows it and verifies it;
the release rehearsal walks the same steps on real servers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .recorder import RecordedResource, Recording


@dataclass(frozen=True)
class ReleaseStep:
    key: str
    title: str
    # Type tokens of the resources that carry out this step, on any target.
    types: tuple[str, ...]


RELEASE_STEPS: tuple[ReleaseStep, ...] = (
    ReleaseStep("image", "image built", ("docker:index/image:Image",)),
    ReleaseStep(
        "static",
        "static release published",
        ("pulumi-python:dynamic/static:StaticRelease", "pulumi-django:local:StaticRelease"),
    ),
    ReleaseStep(
        "check",
        "migration safety check",
        (
            "pulumi-python:dynamic/migrations:MigrationCheck",
            "pulumi-python:dynamic/migrations:LocalCheckVerdict",
        ),
    ),
    ReleaseStep(
        "migrate",
        "migration job",
        (
            "pulumi-python:dynamic/migrations:MigrationJob",
            "pulumi-python:dynamic/migrations:LocalJobVerdict",
        ),
    ),
    ReleaseStep(
        "fleet", "app fleet updated", ("aws:ecs/service:Service", "pulumi-django:local:AppReplicas")
    ),
    # Local only: the proxy container outlives releases and is switched to the new replicas.
    ReleaseStep("proxy", "proxy switched to fleet", ("pulumi-django:local:ProxySwitch",)),
)


@dataclass(frozen=True)
class StepInPlan:
    step: ReleaseStep
    resources: list[RecordedResource]
    # The nearest earlier step present in the plan, and whether every resource of this step
    # waits for every resource of it; None for the first step present.
    after: ReleaseStep | None
    ordered: bool | None


def release_order(recording: Recording) -> list[StepInPlan]:
    """The release steps present in a plan, each checked against the step before it."""
    found: list[StepInPlan] = []
    previous: tuple[ReleaseStep, list[RecordedResource]] | None = None
    for step in RELEASE_STEPS:
        resources = [r for r in recording.resources if r.type in step.types]
        if not resources:
            continue
        ordered = None
        if previous is not None:
            ordered = all(
                recording.depends_on(resource.urn, earlier.urn)
                for resource in resources
                for earlier in previous[1]
            )
        found.append(StepInPlan(step, resources, previous[0] if previous else None, ordered))
        previous = (step, resources)
    return found
