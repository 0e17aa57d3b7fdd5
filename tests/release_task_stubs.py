"""botocore Stubbers standing in for ECS and CloudWatch Logs under the release-task providers
(the mock runtime never calls dynamic providers), with a fake clock so timeouts are instant."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.stub import ANY, Stubber

from pulumi_django.providers.release_task import ReleaseTaskProvider

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/shop"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-app:7"
TASK_ID = "0123456789abcdef0123456789abcdef"
TASK_ARN = f"arn:aws:ecs:us-east-1:123456789012:task/shop/{TASK_ID}"
LOG_GROUP = "/ecs/shop-app"
STREAM = f"app/app/{TASK_ID}"
DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:" + "a" * 64
STARTED_BY = "pulumi-django-migrate/shop-app"

Provider = TypeVar("Provider", bound=ReleaseTaskProvider)


def task_props(**overrides: Any) -> dict[str, Any]:
    """ReleaseTaskInputs props as the dynamic provider receives them."""
    props: dict[str, Any] = {
        "release_id": DIGEST,
        "cluster_arn": CLUSTER,
        "task_definition_arn": TASK_DEFINITION,
        "container_name": "app",
        "subnet_ids": ["subnet-0a", "subnet-0b"],
        "security_group_ids": ["sg-0app"],
        "log_group_name": LOG_GROUP,
        "log_stream_prefix": "app",
        "service_name": "shop-app",
        "region": "us-east-1",
        "timeout_seconds": 60,
    }
    props.update(overrides)
    return props


@dataclass
class FakeTime:
    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class Aws:
    ecs: Any
    logs: Any
    ecs_stub: Stubber
    logs_stub: Stubber
    time: FakeTime

    def clients(self, service: str, region: str) -> Any:
        assert region == "us-east-1"
        return {"ecs": self.ecs, "logs": self.logs}[service]

    def provider(self, provider_class: type[Provider]) -> Provider:
        """A release-task provider talking to these Stubbers on the fake clock."""
        return provider_class(self.clients, self.time.clock, self.time.sleep)

    def no_running_tasks(self) -> None:
        self.ecs_stub.add_response(
            "list_tasks", {"taskArns": []}, {"cluster": CLUSTER, "startedBy": STARTED_BY}
        )

    def run_task_starts(self, expected: dict[str, Any] | None = None) -> None:
        self.ecs_stub.add_response(
            "run_task",
            {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "PROVISIONING"}], "failures": []},
            expected
            or {
                "cluster": CLUSTER,
                "taskDefinition": TASK_DEFINITION,
                "launchType": "FARGATE",
                "count": 1,
                "startedBy": STARTED_BY,
                "group": "pulumi-django-migrate:shop-app",
                "networkConfiguration": ANY,
                "overrides": ANY,
            },
        )

    def task_is(self, status: str, **fields: Any) -> None:
        self.ecs_stub.add_response(
            "describe_tasks",
            {"tasks": [{"taskArn": TASK_ARN, "lastStatus": status, **fields}], "failures": []},
            {"cluster": CLUSTER, "tasks": [TASK_ARN]},
        )

    def task_stopped(self, exit_code: int | None, **fields: Any) -> None:
        container: dict[str, Any] = {"name": "app"}
        if exit_code is not None:
            container["exitCode"] = exit_code
        if "container_reason" in fields:
            container["reason"] = fields.pop("container_reason")
        self.task_is("STOPPED", containers=[container], **fields)

    def log_has(self, lines: list[str]) -> None:
        request = {"logGroupName": LOG_GROUP, "logStreamName": STREAM, "startFromHead": True}
        events = [{"timestamp": 1, "message": line, "ingestionTime": 2} for line in lines]
        self.logs_stub.add_response(
            "get_log_events", {"events": events, "nextForwardToken": "f/1"}, request
        )
        self.logs_stub.add_response(
            "get_log_events",
            {"events": [], "nextForwardToken": "f/1"},
            {**request, "nextToken": "f/1"},
        )
