"""Unit tests for your own Pulumi programs built from pulumi-django's components, offline.

No engine, no provider plugins, no credentials, two ways:

- `record(program, project=..., stack=..., config=...)` runs a program function as `pulumi up`
  would and returns a `Recording`: every resource's inputs (camelCase, secrets masked as
  `SECRET`), parent, dependencies and options, under the URNs a real deployment gives, and the
  stack outputs. It runs the `transforms` resource option as the engine does (the SDK's own
  mocks do not), so a transform's effect shows. It is what `pulumi-django plan` runs.
- `PlanMocks(region)` answers resources and provider functions (availability zones, caller
  identity, ...) the way the real providers do, for the SDK's recipe:
  `pulumi.runtime.set_mocks(PlanMocks("us-east-1"), preview=False)` and `@pulumi.runtime.test`.

The components also work under a plain `pulumi.runtime.Mocks` subclass of your own.

`release_order(recording)` gives the release steps a recorded program carries out (image,
static files, migration check, migration job, fleet), each with whether it waits for the one
before: a test that every `step.ordered` is true proves no task of a release can start before
its migrations ran, as `pulumi-django plan` checks.
"""

from pulumi_django.recorder import (
    MOCK_ACCOUNT,
    SECRET,
    UNKNOWN,
    PlanMocks,
    RecordedResource,
    Recording,
    record,
)
from pulumi_django.release import StepInPlan, release_order

__all__ = [
    "MOCK_ACCOUNT",
    "SECRET",
    "UNKNOWN",
    "PlanMocks",
    "RecordedResource",
    "Recording",
    "StepInPlan",
    "record",
    "release_order",
]
