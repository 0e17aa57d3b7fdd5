"""Fails `pulumi up` when ECS rolled a release back although the AWS provider reported success.

With the deployment circuit breaker's rollback on, `wait_for_steady_state` returns as soon as the
service is steady again, which after a rollback means steady on the *previous* task definition
(terraform-provider-aws issue 19519), so `pulumi up` would report a release that never happened.
This resource runs after the service and checks that the service's PRIMARY deployment is the task
definition just released and that its rollout COMPLETED.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi.dynamic

from ..errors import PulumiDjangoError
from .aws_session import aws_client, with_session
from .release_task import changed

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient

DEFAULT_TIMEOUT_SECONDS = 600
POLL_SECONDS = 10
EVENTS_SHOWN = 5
# A change to any of these is a new release (or a new service) to verify.
RELEASE_KEYS = ("cluster", "service", "task_definition")
RETRY_HINT = (
    "fix the release and run `pulumi up` again; `pulumi up --refresh` retries the same release"
)

ClientFactory = Callable[..., "ECSClient"]
"""(region[, session=aws_session settings]) -> an ECS client; `session` is given when the
resource has `aws_session` settings."""


class RolloutError(PulumiDjangoError):
    """The release is not what the service runs; the message says why and what to do."""


@dataclass(frozen=True)
class Rollout:
    """The PRIMARY deployment once it has completed."""

    deployment_id: str
    task_definition: str
    running_count: int


def _ecs_client(region: str, session: Mapping[str, Any] | None = None) -> ECSClient:
    """An ECS client acting as the stack's `aws:` settings say (`providers.aws_session`)."""
    client: ECSClient = aws_client("ecs", region, session)
    return client


def _revision(task_definition: str) -> str:
    """`family:revision`, whether given as an ARN or already short."""
    return task_definition.rsplit("/", 1)[-1]


def _recent_events(service: Mapping[str, Any]) -> str:
    messages = [event["message"] for event in service.get("events", [])[:EVENTS_SHOWN]]
    return " | ".join(messages) if messages else "none"


def _failure_reason(deployments: Sequence[Mapping[str, Any]], expected: str) -> str:
    """Why ECS gave up on the release, from its deployment when ECS still lists it."""
    for deployment in deployments:
        if _revision(deployment["taskDefinition"]) == _revision(expected):
            reason = deployment.get("rolloutStateReason")
            if reason:
                return str(reason)
    return "see the service events"


def assess(service: Mapping[str, Any], expected: str) -> Rollout | None:
    """The completed rollout of `expected`, or None while it is still in progress.

    Raises RolloutError when the service runs another task definition or the rollout failed."""
    name = service.get("serviceName", "?")
    deployments: list[Mapping[str, Any]] = service.get("deployments", [])
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    if primary is None:
        raise RolloutError(
            f"service {name} has no primary deployment; recent events: {_recent_events(service)}"
        )
    if _revision(primary["taskDefinition"]) != _revision(expected):
        raise RolloutError(
            f"release rolled back: the service {name} runs {_revision(primary['taskDefinition'])} "
            f"instead of {_revision(expected)}; the circuit breaker (or the rollback alarm) "
            f"stopped the new tasks: {_failure_reason(deployments, expected)}; recent events: "
            f"{_recent_events(service)}; {RETRY_HINT}"
        )
    state = primary.get("rolloutState")
    if state == "FAILED":
        raise RolloutError(
            f"release failed: the rollout of {_revision(expected)} on service {name} FAILED "
            f"({primary.get('rolloutStateReason', 'no reason given')}) and there was no earlier "
            f"release to roll back to; recent events: {_recent_events(service)}; {RETRY_HINT}"
        )
    # Without a rollout state (not reported for every controller), steady means one deployment.
    steady = (
        state is None
        and len(deployments) == 1
        and (primary.get("runningCount") == primary.get("desiredCount"))
    )
    if state == "COMPLETED" or steady:
        return Rollout(
            deployment_id=str(primary["id"]),
            task_definition=str(primary["taskDefinition"]),
            running_count=int(primary.get("runningCount", 0)),
        )
    return None


class RolloutVerificationProvider(pulumi.dynamic.ResourceProvider):
    """Polls `ecs:DescribeServices` until the release's rollout completes, fails or times out.

    The client factory, sleep and clock are injectable so tests run it against a stubbed client."""

    def __init__(
        self,
        client_factory: ClientFactory = _ecs_client,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._client_factory = client_factory
        self._sleep = sleep
        self._clock = clock

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outs = self._verify(props)
        return pulumi.dynamic.CreateResult(f"{props['cluster']}/{props['service']}", outs)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        return pulumi.dynamic.DiffResult(changes=changed(olds, news, RELEASE_KEYS))

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(self._verify(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to tear down: the resource is a check, not infrastructure."""

    def _verify(self, props: Mapping[str, Any]) -> dict[str, Any]:
        from botocore.exceptions import BotoCoreError, ClientError

        cluster, service = str(props["cluster"]), str(props["service"])
        expected = str(props["task_definition"])
        client = with_session(self._client_factory, props.get("aws_session"))(str(props["region"]))
        deadline = self._clock() + float(props["timeout_seconds"])
        while True:
            try:
                described = client.describe_services(cluster=cluster, services=[service])
            except (BotoCoreError, ClientError) as error:
                raise RolloutError(f"cannot read ECS service {service}: {error}") from None
            if not described.get("services"):
                raise RolloutError(
                    f"ECS service {service} not found in cluster {cluster}: "
                    f"{described.get('failures')}"
                )
            current = described["services"][0]
            rollout = assess(current, expected)
            if rollout is not None:
                return {
                    **{key: props[key] for key in (*RELEASE_KEYS, "region", "timeout_seconds")},
                    "status": "COMPLETED",
                    "deployment_id": rollout.deployment_id,
                    "running_count": rollout.running_count,
                }
            if self._clock() >= deadline:
                raise RolloutError(
                    f"release timed out: the rollout of {_revision(expected)} on service "
                    f"{service} is still in progress after {props['timeout_seconds']} s; "
                    f"recent events: {_recent_events(current)}"
                )
            self._sleep(POLL_SECONDS)


class RolloutVerification(pulumi.dynamic.Resource, module="fleet", name="RolloutVerification"):
    """Succeeds only when `service` completed the rollout of `task_definition`."""

    status: pulumi.Output[str]
    deployment_id: pulumi.Output[str]
    running_count: pulumi.Output[int]

    def __init__(
        self,
        resource_name: str,
        *,
        cluster: pulumi.Input[str],
        service: pulumi.Input[str],
        task_definition: pulumi.Input[str],
        region: pulumi.Input[str],
        timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        aws_session: pulumi.Input[Mapping[str, Any] | None] = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`aws_session`: the stack's AWS identity (`AwsSession.input()`); None: boto3's own."""
        super().__init__(
            RolloutVerificationProvider(),
            resource_name,
            {
                "cluster": cluster,
                "service": service,
                "task_definition": task_definition,
                "region": region,
                "timeout_seconds": timeout_seconds,
                "aws_session": aws_session,
                "status": None,
                "deployment_id": None,
                "running_count": None,
            },
            opts,
        )
