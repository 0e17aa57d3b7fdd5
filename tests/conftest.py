"""Shared fixtures: offline plans of the shipped stacks, computed once per session; stubbed AWS
clients for the release-task providers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from botocore.stub import Stubber
from hypothesis import settings
from release_task_stubs import Aws, FakeTime
from stub_clients import stub_client
from worker_shared import computed_once

from pulumi_django.cli.plan import Plan, plan_stack
from pulumi_django.cli.rehearsal.servers import Postgres, postgres

# CI (`make unit`) explores the same examples on every run, so a landing is never decided by luck;
# plain `pytest` on a laptop keeps drawing new ones and finds what CI has not seen yet.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """In a run with real-server tests (the rehearsals'), those first, the ones marked
    `slow(seconds=N)` first of all, longest first; the quick tests then fill the end.
    pytest-xdist hands tests out in this order: the 50 s database outage rehearsal, last in its
    file, used to start late and run on alone after the other workers had finished. A run
    with no `seconds` marker (the unit tests') keeps its order."""
    if any(expected_seconds(item) for item in items):
        items.sort(
            key=lambda item: (item.get_closest_marker("slow") is None, -expected_seconds(item))
        )


def expected_seconds(item: pytest.Item) -> float:
    """The test's `slow(seconds=N)` (or `slow(N)`), 0 without: how long it is known to run."""
    marker = item.get_closest_marker("slow")
    if marker is None:
        return 0.0
    return float(marker.kwargs.get("seconds", marker.args[0] if marker.args else 0))


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
def stack_plan(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Plan]:
    """`stack_plan("dev")`: the recorded plan of a shipped stack (cached: plans are slow; made
    by one xdist worker for all of them); `stack_plan("dev", project=NOTEBOOK)` one of another
    project of the repository (the examples')."""
    cache: dict[tuple[Path, str], Plan] = {}

    def get(stack: str, project: Path = ROOT) -> Plan:
        if (project, stack) not in cache:
            where = "" if project == ROOT else f"{project.relative_to(ROOT)}-".replace("/", "-")
            cache[project, stack] = computed_once(
                tmp_path_factory, f"stack-plan-{where}{stack}", lambda: plan_stack(project, stack)
            )
        return cache[project, stack]

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
    ecs = stub_client("ecs")
    logs = stub_client("logs")
    with Stubber(ecs) as ecs_stub, Stubber(logs) as logs_stub:
        yield Aws(ecs, logs, ecs_stub, logs_stub, FakeTime())
        ecs_stub.assert_no_pending_responses()
        logs_stub.assert_no_pending_responses()
