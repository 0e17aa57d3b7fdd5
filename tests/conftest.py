"""Shared fixtures: offline plans of the shipped stacks, computed once per session; stubbed AWS
clients for the release-task providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import settings
from release_task_stubs import Aws, FakeTime

from pulumi_django.cli.plan import Plan, plan_stack
from pulumi_django.cli.rehearsal.servers import Postgres, postgres

# CI (`make unit`) explores the same examples on every run, so a landing is never decided by luck;
# plain `pytest` on a laptop keeps drawing new ones and finds what CI has not seen yet.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the executables a test puts there (`path_stubs`)."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", str(directory))
    return directory


@pytest.fixture(scope="session")
def stack_plan() -> Callable[[str], Plan]:
    """`stack_plan("dev")`: the recorded plan of a shipped stack (cached: plans are slow)."""
    cache: dict[str, Plan] = {}

    def get(stack: str) -> Plan:
        if stack not in cache:
            cache[stack] = plan_stack(ROOT, stack)
        return cache[stack]

    return get


@pytest.fixture(scope="session")
def pg() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster shared by the session's tests; each makes its databases."""
    with postgres() as server:
        yield server


@pytest.fixture
def aws() -> Iterator[Aws]:
    """ECS and CloudWatch Logs behind botocore Stubbers; a response queued but never asked for
    fails the test."""
    session = boto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    ecs = session.client("ecs")
    logs = session.client("logs")
    with Stubber(ecs) as ecs_stub, Stubber(logs) as logs_stub:
        yield Aws(ecs, logs, ecs_stub, logs_stub, FakeTime())
        ecs_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()
