"""No perpetual diff: the same stack planned twice with the same inputs is the same plan, so a
`pulumi up` followed by another shows nothing to do. A name drawn at random (the database's
final snapshot's) comes from a resource kept in the state, never from the clock or a fresh
random draw in the program; changes are applied immediately rather than left pending
until a maintenance window (where RDS and ElastiCache would show them again on every run)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pulumi_django.cli.plan import Plan, plan_stack
from pulumi_django.cli.plan_diff import Side, diff_json, diff_plans

AWS_STACKS = ["dev", "prod"]
DEFERRABLE = ("aws:rds/instance:Instance", "aws:elasticache/replicationGroup:ReplicationGroup")


def as_written(plan: Plan) -> dict:
    """The document `pulumi-django plan --json` writes."""
    return json.loads(json.dumps(plan.as_json()))


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_planning_the_same_stack_twice_changes_nothing(
    stack: str, stack_plan: Callable[[str], Plan], project_root: Path
) -> None:
    first = as_written(stack_plan(stack))
    second = as_written(plan_stack(project_root, stack))
    diff = diff_json(
        diff_plans(
            first,
            second,
            stack=stack,
            base_side=Side("first plan", None),
            head_side=Side("second plan", None),
        )
    )
    assert diff["summary"] == {
        "added": 0,
        "removed": 0,
        "changed": 0,
        "replaced": 0,
        "unchanged": len(second["resources"]),
        "statefulAtRisk": 0,
        "upgrades": 0,
    }
    assert diff["changed"] == [] and diff["stateful"] == []


@pytest.mark.parametrize("stack", AWS_STACKS)
def test_no_data_store_change_waits_for_a_maintenance_window(
    stack: str, stack_plan: Callable[[str], Plan]
) -> None:
    recording = stack_plan(stack).recording
    for type_ in DEFERRABLE:
        assert recording.one(type_).inputs["applyImmediately"] is True, type_
