"""The post-rollout check against a stubbed ECS API: it passes only a release that really took."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dill  # type: ignore[import-untyped]
import pytest
from botocore.stub import Stubber
from pulumi.dynamic.dynamic import serialize_provider
from stub_clients import stub_client

from pulumi_django.providers.rollout_verification import (
    POLL_SECONDS,
    RolloutError,
    RolloutVerificationProvider,
)

CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/web-cluster"
SERVICE = "web-service-a1b2c3d"
TD_ARN = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-app:{}"
NEW, OLD = TD_ARN.format(7), TD_ARN.format(6)
CIRCUIT_BREAKER_REASON = "ECS deployment circuit breaker: tasks failed to start."
TIMEOUT_SECONDS = 30
PROPS: dict[str, Any] = {
    "cluster": CLUSTER,
    "service": SERVICE,
    "task_definition": NEW,
    "region": "eu-west-1",
    "timeout_seconds": TIMEOUT_SECONDS,
}


class FakeClock:
    """Time that passes only when the provider sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def deployment(
    task_definition: str,
    *,
    status: str = "PRIMARY",
    rollout: str = "COMPLETED",
    reason: str | None = None,
    running: int = 2,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "id": f"ecs-svc/{abs(hash((task_definition, status))) % 10**18:018d}",
        "status": status,
        "taskDefinition": task_definition,
        "desiredCount": 2,
        "runningCount": running,
        "rolloutState": rollout,
    }
    if reason:
        found["rolloutStateReason"] = reason
    return found


def described(*deployments: dict[str, Any], events: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "services": [
            {
                "serviceName": SERVICE,
                "clusterArn": CLUSTER,
                "deployments": list(deployments),
                "events": [
                    {"id": str(index), "createdAt": datetime(2025, 1, 1, tzinfo=UTC), "message": m}
                    for index, m in enumerate(events)
                ],
            }
        ],
        "failures": [],
    }


@pytest.fixture
def ecs() -> Iterator[tuple[Any, Stubber]]:
    client = stub_client("ecs", "eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def provider_for(ecs: tuple[Any, Stubber], clock: FakeClock) -> RolloutVerificationProvider:
    client, _ = ecs

    def factory(region: str) -> Any:
        assert region == PROPS["region"]
        return client

    return RolloutVerificationProvider(client_factory=factory, sleep=clock.sleep, clock=clock.time)


def expect(ecs: tuple[Any, Stubber], *responses: dict[str, Any]) -> None:
    _, stubber = ecs
    for response in responses:
        stubber.add_response(
            "describe_services", response, {"cluster": CLUSTER, "services": [SERVICE]}
        )


def test_completed_release_passes(ecs: tuple[Any, Stubber], clock: FakeClock) -> None:
    primary = deployment(NEW)
    expect(ecs, described(primary))
    result = provider_for(ecs, clock).create(dict(PROPS))
    assert result.id == f"{CLUSTER}/{SERVICE}"
    assert result.outs is not None
    assert result.outs["status"] == "COMPLETED"
    assert result.outs["deployment_id"] == primary["id"]
    assert result.outs["task_definition"] == NEW
    assert result.outs["running_count"] == 2
    assert clock.sleeps == []


def test_waits_while_the_rollout_is_in_progress(ecs: tuple[Any, Stubber], clock: FakeClock) -> None:
    expect(
        ecs,
        described(
            deployment(NEW, rollout="IN_PROGRESS", running=0), deployment(OLD, status="ACTIVE")
        ),
        described(
            deployment(NEW, rollout="IN_PROGRESS", running=1), deployment(OLD, status="ACTIVE")
        ),
        described(deployment(NEW)),
    )
    result = provider_for(ecs, clock).create(dict(PROPS))
    assert result.outs is not None and result.outs["status"] == "COMPLETED"
    assert clock.sleeps == [POLL_SECONDS, POLL_SECONDS]


def test_rolled_back_release_fails_with_the_reason(
    ecs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    """The provider reported success; the service is steady again, on the previous release."""
    expect(
        ecs,
        described(
            deployment(OLD),
            deployment(NEW, status="ACTIVE", rollout="FAILED", reason=CIRCUIT_BREAKER_REASON),
            events=(
                "(service web) rolling back to deployment ecs-svc/1.",
                "(service web) deployment ecs-svc/2 deployment failed: tasks failed to start.",
            ),
        ),
    )
    with pytest.raises(RolloutError) as failure:
        provider_for(ecs, clock).create(dict(PROPS))
    message = str(failure.value)
    assert message.startswith("release rolled back:")
    assert "runs web-app:6 instead of web-app:7" in message
    assert CIRCUIT_BREAKER_REASON in message
    assert "rolling back to deployment ecs-svc/1" in message
    assert "pulumi up" in message


def test_rolled_back_release_fails_even_after_ecs_dropped_the_failed_deployment(
    ecs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    expect(ecs, described(deployment(OLD), events=("(service web) has reached a steady state.",)))
    with pytest.raises(
        RolloutError, match=r"release rolled back: .*web-app:6 instead of web-app:7"
    ):
        provider_for(ecs, clock).create(dict(PROPS))


def test_failed_rollout_without_an_earlier_release_fails(
    ecs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    expect(
        ecs,
        described(deployment(NEW, rollout="FAILED", reason=CIRCUIT_BREAKER_REASON, running=0)),
    )
    with pytest.raises(RolloutError) as failure:
        provider_for(ecs, clock).create(dict(PROPS))
    message = str(failure.value)
    assert message.startswith("release failed:")
    assert "web-app:7" in message
    assert CIRCUIT_BREAKER_REASON in message


def test_times_out_when_the_rollout_never_finishes(
    ecs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    polls = TIMEOUT_SECONDS // POLL_SECONDS + 1
    in_progress = described(
        deployment(NEW, rollout="IN_PROGRESS", running=1),
        events=("(service web) has started 1 tasks.",),
    )
    expect(ecs, *[in_progress] * polls)
    with pytest.raises(RolloutError) as failure:
        provider_for(ecs, clock).create(dict(PROPS))
    message = str(failure.value)
    assert message.startswith("release timed out:")
    assert "after 30 s" in message
    assert "has started 1 tasks" in message
    assert clock.now >= TIMEOUT_SECONDS


def test_missing_service_fails_clearly(ecs: tuple[Any, Stubber], clock: FakeClock) -> None:
    expect(
        ecs,
        {"services": [], "failures": [{"arn": SERVICE, "reason": "MISSING"}]},
    )
    with pytest.raises(RolloutError, match=f"ECS service {SERVICE} not found .*MISSING"):
        provider_for(ecs, clock).create(dict(PROPS))


def test_api_errors_become_one_clear_line(ecs: tuple[Any, Stubber], clock: FakeClock) -> None:
    _, stubber = ecs
    stubber.add_client_error(
        "describe_services", service_error_code="AccessDeniedException", service_message="denied"
    )
    with pytest.raises(RolloutError, match=f"cannot read ECS service {SERVICE}: .*denied"):
        provider_for(ecs, clock).create(dict(PROPS))


def test_update_verifies_the_new_release(ecs: tuple[Any, Stubber], clock: FakeClock) -> None:
    expect(ecs, described(deployment(NEW)), described(deployment(OLD)))
    olds = {**PROPS, "task_definition": OLD, "status": "COMPLETED"}
    provider = provider_for(ecs, clock)
    result = provider.update("id", olds, dict(PROPS))
    assert result.outs is not None and result.outs["task_definition"] == NEW
    with pytest.raises(RolloutError, match="release rolled back"):
        provider.update("id", olds, dict(PROPS))


def test_without_a_rollout_state_one_full_deployment_counts_as_done(
    ecs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    stateless = {
        k: v for k, v in deployment(NEW, rollout="IN_PROGRESS").items() if k != "rolloutState"
    }
    expect(ecs, described(stateless, deployment(OLD, status="ACTIVE")), described(stateless))
    result = provider_for(ecs, clock).create(dict(PROPS))
    assert result.outs is not None and result.outs["status"] == "COMPLETED"
    assert clock.sleeps == [POLL_SECONDS]


def test_a_service_without_a_primary_deployment_fails(
    ecs: tuple[Any, Stubber], clock: FakeClock
) -> None:
    expect(ecs, described(deployment(OLD, status="ACTIVE"), events=("(service web) was drained.",)))
    with pytest.raises(RolloutError, match=r"has no primary deployment; .*was drained"):
        provider_for(ecs, clock).create(dict(PROPS))


@pytest.mark.parametrize(
    ("change", "verifies"),
    [
        ({"task_definition": TD_ARN.format(8)}, True),
        ({"service": "another-service"}, True),
        ({"cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/other"}, True),
        ({"timeout_seconds": 900}, False),
        ({}, False),
    ],
)
def test_a_new_release_triggers_verification(change: dict[str, Any], verifies: bool) -> None:
    provider = RolloutVerificationProvider(client_factory=_no_client)
    olds = {**PROPS, "status": "COMPLETED", "deployment_id": "ecs-svc/1"}
    assert provider.diff("id", olds, {**PROPS, **change}).changes is verifies


def _no_client(_region: str) -> Any:
    raise AssertionError("delete and diff must not call AWS")


def test_delete_leaves_the_service_alone() -> None:
    RolloutVerificationProvider(client_factory=_no_client).delete("id", dict(PROPS))


def test_the_engine_can_rebuild_the_provider() -> None:
    """`pulumi up` runs the provider from its pickled form, in another process."""
    pickled = base64.b64decode(serialize_provider(RolloutVerificationProvider()))
    rebuilt = dill.loads(pickled)  # noqa: S301 (our own bytes, as the engine does)
    assert isinstance(rebuilt, RolloutVerificationProvider)
    assert rebuilt.diff("id", dict(PROPS), {**PROPS, "task_definition": OLD}).changes is True
