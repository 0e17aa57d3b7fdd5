"""The release's steps, in the one order every release takes them, and the resources that carry
out each of them.

Both are written once, here: the order in `Step`, the resource types in `RELEASE_ROLES`.
`pulumi_django.release` reads the table into its steps (`RELEASE_STEPS`), which the offline plan
checks against the resource dependencies and the rehearsal walks. This module imports no
component, so that every component can import it (`check_then_job`), and the plan knows every
step's types without importing a component: a local plan never loads the AWS ones, nor the AWS
SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TypeVar

import pulumi


class Step(StrEnum):
    """A release step, its key (the value) and its title. The members' order is the release
    order: the only place it is written."""

    heading: str

    def __new__(cls, key: str, heading: str) -> Step:
        member = str.__new__(cls, key)
        member._value_ = key
        member.heading = heading
        return member

    IMAGE = "image", "image built"
    STATIC = "static", "static release published"
    CHECK = "check", "migration safety check"
    MIGRATE = "migrate", "migration job"
    FLEET = "fleet", "app fleet updated"
    # Local only: the proxy container outlives releases and is switched to the new replicas.
    PROXY = "proxy", "proxy switched to fleet"


@dataclass(frozen=True)
class ReleaseRole:
    """A part in the release: resources of type `resource_type` carry out `step`.

    `gates_next` False: released beside the step's other resources, which the next step waits
    for, but not these (the local target's background workers: the proxy switches to the web
    replicas only). They still wait for the step before theirs."""

    step: Step
    resource_type: str
    gates_next: bool = True


# The resources that carry out each step, on either target, and the component or site that
# creates them. A resource of one of these types carries out its step whoever created it: a
# program of one's own may create its ECS service or its image itself.
RELEASE_ROLES: tuple[ReleaseRole, ...] = (
    # AppImage (its build) and LocalAppImage.
    ReleaseRole(Step.IMAGE, "docker:index/image:Image"),
    # AppImage: a prebuilt image (`app.image`) has no build; its release starts when its digest
    # is resolved and tagged.
    ReleaseRole(Step.IMAGE, "pulumi-python:dynamic/fleet:ImageReleaseTag"),
    # AwsSite creates it directly.
    ReleaseRole(Step.STATIC, "pulumi-python:dynamic/static:StaticRelease"),
    # LocalStaticRelease.
    ReleaseRole(Step.STATIC, "pulumi-django:local:StaticRelease"),
    # MigrationJob's check and job; LocalMigrationJob's verdicts on them.
    ReleaseRole(Step.CHECK, "pulumi-python:dynamic/migrations:MigrationCheck"),
    ReleaseRole(Step.CHECK, "pulumi-python:dynamic/migrations:LocalCheckVerdict"),
    ReleaseRole(Step.MIGRATE, "pulumi-python:dynamic/migrations:MigrationJob"),
    ReleaseRole(Step.MIGRATE, "pulumi-python:dynamic/migrations:LocalJobVerdict"),
    # AppService and WorkerService.
    ReleaseRole(Step.FLEET, "aws:ecs/service:Service"),
    # LocalAppReplicas.
    ReleaseRole(Step.FLEET, "pulumi-django:local:AppReplicas"),
    # LocalWorkers: released beside the web replicas, from the same gate; the proxy never
    # switches to them, so its switch does not wait for them.
    ReleaseRole(Step.FLEET, "pulumi-django:local:Workers", gates_next=False),
    # LocalProxySwitch.
    ReleaseRole(Step.PROXY, "pulumi-django:local:ProxySwitch"),
)


Check = TypeVar("Check", bound=pulumi.Resource)
Job = TypeVar("Job", bound=pulumi.Resource)


def check_then_job(
    *,
    check_enabled: bool,
    after: Sequence[pulumi.Resource],
    check: Callable[[list[pulumi.Resource]], Check],
    job: Callable[[list[pulumi.Resource]], Job],
) -> tuple[Check | None, Job]:
    """The gate between the CHECK and MIGRATE steps, the same on every target: the safety
    check waits for `after`, and the migration job for the check's verdict, so a refused
    check migrates nothing. With the check off, the job waits for `after` itself.

    `check` and `job` build their step's resources, waiting for the resources they are given;
    `check` returns the resource that fails `pulumi up` on a refusal (the verdict)."""
    verdict = check(list(after)) if check_enabled else None
    return verdict, job([verdict] if verdict is not None else list(after))
