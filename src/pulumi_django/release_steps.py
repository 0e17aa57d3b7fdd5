"""The release's steps, in the one order every release takes them, and how a component says
which of them it carries out.

A component (or a resource a site creates directly) that carries out a step declares it in
`release_roles`: the step and the type token of the resource that does it. `pulumi_django.release`
reads the declarations into its table (`RELEASE_STEPS`), which the offline plan checks against
the resource dependencies and the rehearsal walks. This module imports no component, so that
every component can import it.
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
    """A class's part in the release: resources of type `resource_type` carry out `step`.

    `gates_next` False: released beside the step's other resources, which the next step waits
    for, but not these (the local target's background workers: the proxy switches to the web
    replicas only). They still wait for the step before theirs."""

    step: Step
    resource_type: str
    gates_next: bool = True


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
