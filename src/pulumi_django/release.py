"""The release order every target follows, and its check on a recorded plan.

image built -> static release published -> migration safety check -> migration job -> app fleet
updated -> proxy switched to fleet (local only: the proxy container outlives releases)

The order is `release_steps.Step`'s; which resources carry out each step is its table of roles
(`release_steps.RELEASE_ROLES`, which the components name theirs from), read here into
`RELEASE_STEPS` without importing a component. The stack enforces the order with
resource dependencies; the offline plan shows it and verifies it; the release rehearsal walks
the same steps on real servers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .recorder import RecordedResource, Recording
from .release_steps import RELEASE_ROLES, ReleaseRole, Step


@dataclass(frozen=True)
class ReleaseStep:
    """A step as the plan and the rehearsal see it: the `Step` (its key), its title, and the
    type tokens of the resources that carry it out, on any target; `beside`: those of them the
    next step does not wait for (`ReleaseRole.gates_next` False)."""

    key: Step
    title: str
    types: tuple[str, ...]
    beside: tuple[str, ...] = ()


def steps_of(roles: tuple[ReleaseRole, ...]) -> tuple[ReleaseStep, ...]:
    """The release steps in order, each with the types its roles name; a step that no role
    carries out is an error, since no plan could show it."""
    steps = []
    for step in Step:
        step_roles = [role for role in roles if role.step is step]
        types = tuple(dict.fromkeys(role.resource_type for role in step_roles))
        if not types:
            raise LookupError(f"no role carries out the release step {step.value!r}")
        beside = tuple(
            dict.fromkeys(role.resource_type for role in step_roles if not role.gates_next)
        )
        steps.append(ReleaseStep(step, step.heading, types, beside))
    return tuple(steps)


RELEASE_STEPS: tuple[ReleaseStep, ...] = steps_of(RELEASE_ROLES)


@dataclass(frozen=True)
class StepInPlan:
    step: ReleaseStep
    resources: list[RecordedResource]
    # The nearest earlier step present in the plan, and whether every resource of this step
    # waits for every resource of it (but those released beside it, `ReleaseStep.beside`); None
    # for the first step present.
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
                if earlier.type not in previous[0].beside
            )
        found.append(StepInPlan(step, resources, previous[0] if previous else None, ordered))
        previous = (step, resources)
    return found
