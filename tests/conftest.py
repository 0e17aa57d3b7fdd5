"""Shared fixtures: offline plans of the shipped stacks, computed once per session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pulumi_django.plan import Plan, plan_stack

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def stack_plan() -> Callable[[str], Plan]:
    """`stack_plan("dev")`: the recorded plan of a shipped stack (cached: plans are slow)."""
    cache: dict[str, Plan] = {}

    def get(stack: str) -> Plan:
        if stack not in cache:
            cache[stack] = plan_stack(ROOT, stack)
        return cache[stack]

    return get
