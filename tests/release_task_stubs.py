"""botocore Stubbers standing in for ECS and CloudWatch Logs under the release-task providers
(the mock runtime never calls dynamic providers), with a fake clock so timeouts are instant."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.stub import ANY, Stubber

from pulumi_django.providers.release_task import ReleaseTaskProvider
from pulumi_django.rendering.container_definitions import (
    AppContainer,
    ProxyContainer,
    TaskLogs,
    render_container_definitions,
    task_volumes,
)

CLUSTER = "arn:aws:ecs:us-east-1:123456789012:cluster/shop"
TASK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-app:7"
TASK_ID = "0123456789abcdef0123456789abcdef"
TASK_ARN = f"arn:aws:ecs:us-east-1:123456789012:task/shop/{TASK_ID}"
LOG_GROUP = "/ecs/shop-app"
DIGEST = "123456789012.dkr.ecr.us-east-1.amazonaws.com/shop@sha256:" + "a1b2c3d4e5f6" + "a" * 52
# The release's awslogs stream: `r-<12 hex of the digest>/<container>/<task id>`.
STREAM = f"r-a1b2c3d4e5f6/app/{TASK_ID}"
STARTED_BY = "pulumi-django-migrate/shop-app"
JOB_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-app-migration-job:1"
CHECK_DEFINITION = "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-app-migration-check:3"

# The app's task definition as the stack renders it: the proxy waits for the app to turn HEALTHY.
PROXY_DEFINITION, APP_DEFINITION = render_container_definitions(
    app=AppContainer(
        image=DIGEST,
        command=["gunicorn", "shop.wsgi"],
        port=8000,
        health_check_path="/healthz",
        environment={"DJANGO_SETTINGS_MODULE": "shop.settings"},
        secrets={"DATABASE_PASSWORD": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db"},
    ),
    proxy=ProxyContainer(server="nginx", config_text="events {}", port=8080),
    logs=TaskLogs(group=LOG_GROUP, region="us-east-1"),
    site_host="shop.example.com",
    stop_timeout_seconds=30,
)
# A volume only the proxy mounts stays out of a release task's definition.
PROXY_ONLY_VOLUME = "proxy-cache"
APP_TASK_DEFINITION: dict[str, Any] = {
    "taskDefinitionArn": TASK_DEFINITION,
    "family": "shop-app",
    "revision": 7,
    "status": "ACTIVE",
    "taskRoleArn": "arn:aws:iam::123456789012:role/shop-task",
    "executionRoleArn": "arn:aws:iam::123456789012:role/shop-execution",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "compatibilities": ["EC2", "FARGATE"],
    "cpu": "512",
    "memory": "1024",
    "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
    "volumes": [*task_volumes(), {"name": PROXY_ONLY_VOLUME}],
    "containerDefinitions": [
        {
            **PROXY_DEFINITION,
            "mountPoints": [{"sourceVolume": PROXY_ONLY_VOLUME, "containerPath": "/cache"}],
        },
        APP_DEFINITION,
    ],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.logging-driver"}],
}

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
        "log_stream_prefix": "r-a1b2c3d4e5f6",
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
    sent: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    """Every ECS request made, in order: (operation name, parameters)."""

    def __post_init__(self) -> None:
        self.ecs.meta.events.register("before-parameter-build.ecs", self._record)

    def _record(self, params: dict[str, Any], model: Any, **_kwargs: Any) -> None:
        self.sent.append((model.name, copy.deepcopy(params)))

    def requests(self, operation: str) -> list[dict[str, Any]]:
        return [params for name, params in self.sent if name == operation]

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

    def release_definition_registered(
        self, family: str, command: list[str], arn: str
    ) -> dict[str, Any]:
        """Queues the description of the app's task definition and the registration of the
        release task's own, as expected: the app container alone, running `command`, without
        health check or dependencies, with the app's volume, roles, sizes and platform.
        Returns that expected RegisterTaskDefinition request."""
        self.ecs_stub.add_response(
            "describe_task_definition",
            {"taskDefinition": APP_TASK_DEFINITION},
            {"taskDefinition": TASK_DEFINITION},
        )
        app = {key: value for key, value in APP_DEFINITION.items() if key != "healthCheck"}
        expected = {
            "family": family,
            "taskRoleArn": "arn:aws:iam::123456789012:role/shop-task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/shop-execution",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "512",
            "memory": "1024",
            "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
            "volumes": task_volumes(),
            "containerDefinitions": [{**app, "command": command}],
        }
        self.ecs_stub.add_response(
            "register_task_definition", {"taskDefinition": {"taskDefinitionArn": arn}}, expected
        )
        return expected

    def release_definition_deregistered(self, arn: str) -> None:
        self.ecs_stub.add_response("deregister_task_definition", {}, {"taskDefinition": arn})

    def run_task_starts(self, expected: dict[str, Any] | None = None) -> None:
        self.ecs_stub.add_response(
            "run_task",
            {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "PROVISIONING"}], "failures": []},
            expected
            or {
                "cluster": CLUSTER,
                "taskDefinition": JOB_DEFINITION,
                "launchType": "FARGATE",
                "count": 1,
                "startedBy": STARTED_BY,
                "group": "pulumi-django-migrate:shop-app",
                "networkConfiguration": ANY,
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
