"""A background process as an ECS service: a worker (Celery, RQ, Django tasks...) or the one
scheduler, run from the web task's image with its environment, secrets and roles, released
after the migration job like the web fleet, with the same circuit breaker and rollout check.
docs/running-the-site.md ("Background workers and a scheduler") explains the choices."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django._mock_answers import mock_region, or_mock_answer
from pulumi_django.components.args import ComponentArgsError, arg, check_name
from pulumi_django.components.aws.app_service import (
    Rollout,
    capacity_provider_weights,
    released_service,
    scaling_target,
    target_tracking,
)
from pulumi_django.components.aws.app_task import AppTask, fargate_task_definition
from pulumi_django.components.aws.cluster import Cluster, cluster_ref
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.workers import SCHEDULER_NAME, SchedulerConfig, WorkerConfig
from pulumi_django.providers.aws_session import AwsSession
from pulumi_django.providers.rollout_verification import (
    DEFAULT_TIMEOUT_SECONDS,
    RolloutVerification,
)
from pulumi_django.rendering.container_definitions import (
    TaskLogs,
    worker_container_definition,
)

# The container's name when `container_name` is not given (the site gives the worker's name).
SCHEDULER_CONTAINER = SCHEDULER_NAME
WORKER_CONTAINER = "worker"
# ECS: up to 255 letters, digits, hyphens and underscores.
CONTAINER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")


def process_rollout(process: WorkerConfig | SchedulerConfig, spot_percent: int) -> Rollout:
    """Workers roll like the web fleet (new tasks first, never below `count`) and take the
    fleet's Fargate Spot share: a Spot interruption is a SIGTERM with two minutes' notice, as
    long as the longest warm shutdown ECS allows. The scheduler is stopped before its
    replacement starts (0 / 100; ECS counts RUNNING and PENDING tasks, so the old one may still
    be STOPPING, for at most its stop timeout) and runs on Fargate only, where no interruption
    leaves the schedule without its one task."""
    if isinstance(process, SchedulerConfig):
        return Rollout(0, 100, {"FARGATE": 100})
    return Rollout(100, 200, capacity_provider_weights(spot_percent))


def process_autoscaled(process: WorkerConfig | SchedulerConfig) -> bool:
    """Autoscaling owns a worker's task count only when its bounds leave it room to move."""
    return isinstance(process, WorkerConfig) and process.ceiling > process.floor


@dataclass(frozen=True, kw_only=True)
class WorkerServiceArgs:
    """The process's config, the web task it runs beside, and where its tasks run."""

    process: WorkerConfig | SchedulerConfig = arg(
        "The process: a `WorkerConfig` (a worker service: command, count and autoscaling "
        "bounds, task size, warm-shutdown time) or a `SchedulerConfig` (the one scheduler: "
        "one task, stopped before its replacement starts)."
    )
    app_task: AppTask = arg(
        "The web task (`AppTask`): the process runs its image with the app container's "
        "environment and secrets, as its task role with its execution role, and logs to its "
        "log group. Its task definition is registered after the web one, whose grants and "
        "secret versions it needs too."
    )
    cluster: Cluster | aws.ecs.Cluster | pulumi.Input[str] = arg(
        "The cluster to run in, as `AppServiceArgs.cluster` (`FARGATE`, and `FARGATE_SPOT` when "
        "`fleet.spotPercent` > 0 and the process is a worker)."
    )
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = arg(
        "Subnets the tasks run in (`Network.private_subnet_ids`); they get no public IP."
    )
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = arg(
        "The tasks' security groups (`[Network.app_security_group_id]`): the app's way out to "
        "the database and the cache. Nothing connects to a worker, so no ingress is needed."
    )
    container_name: str | None = arg(
        "The container's name, which its log streams show (`r-<12 hex>/<container>/<task>`): "
        "the worker's name. Default: None, `scheduler` for a `SchedulerConfig`, else `worker`.",
        default=None,
    )
    family: str | None = arg(
        "The task definition's family. Default: None, the component's name.", default=None
    )
    fleet: FleetConfig = arg(
        "The web fleet's section, for what the process shares with it: the CPU architecture "
        "(that of the image), the Fargate Spot share (workers only), ECS Exec and the circuit "
        "breaker's settings. Default: the section's defaults.",
        default_factory=FleetConfig,
    )
    after: Sequence[pulumi.Resource] = arg(
        "Resources the service waits for: the release's migration job, so that no task of a "
        "release starts before its migrations ran.",
        default=(),
    )
    verification_timeout_seconds: int = arg(
        "How long `pulumi up` waits for ECS to run the released task definition.",
        default=DEFAULT_TIMEOUT_SECONDS,
    )
    aws_session: AwsSession | None = arg(
        "The AWS identity the rollout check's boto3 calls act as. Default: the stack's `aws:` "
        "settings, as the site's AWS provider reads them.",
        default=None,
    )

    def __post_init__(self) -> None:
        if self.container_name is not None and not CONTAINER_NAME.match(self.container_name):
            raise ComponentArgsError(
                f"WorkerServiceArgs.container_name: {self.container_name!r} is no ECS container "
                "name (up to 255 letters, digits, hyphens and underscores)"
            )

    @property
    def process_container(self) -> str:
        if self.container_name is not None:
            return self.container_name
        return (
            SCHEDULER_CONTAINER if isinstance(self.process, SchedulerConfig) else WORKER_CONTAINER
        )


class WorkerService(pulumi.ComponentResource):
    """A background process from the app's image: its own task definition (the web task's image,
    environment, secrets, roles and log group; the process's command, size and stop timeout)
    and an ECS service without a load balancer.

    Workers roll new tasks first and scale on CPU between their bounds; the scheduler's old task
    is stopped before the new one starts (overlapping it at most its stop timeout). The service
    waits for `after` (the migration job), rolls back when its new tasks keep failing, and
    `pulumi up` fails when the release did not take (`RolloutVerification`), as for the web
    fleet."""

    task_definition: aws.ecs.TaskDefinition
    service: aws.ecs.Service
    scaling_target: aws.appautoscaling.Target | None
    scaling_policy: aws.appautoscaling.Policy | None
    verification: RolloutVerification
    container_name: str
    task_definition_arn: pulumi.Output[str]
    family: pulumi.Output[str]
    service_name: pulumi.Output[str]
    service_arn: pulumi.Output[str]
    verification_status: pulumi.Output[str]

    def __init__(
        self, name: str, args: WorkerServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("WorkerService", name)
        super().__init__("pulumi-django:fleet:WorkerService", name, None, opts)
        process, fleet, task = args.process, args.fleet, args.app_task
        cluster = cluster_ref(args.cluster)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = or_mock_answer(aws.get_region_output(opts=invoke).region, mock_region())
        self.container_name = args.process_container

        containers = pulumi.Output.all(
            app=task.app_container, log_group=task.log_group_name, region=region
        ).apply(
            lambda values: json.dumps(
                [
                    worker_container_definition(
                        values["app"],
                        name=self.container_name,
                        command=process.command,
                        logs=TaskLogs(group=values["log_group"], region=values["region"]),
                        stop_timeout_seconds=process.stop_timeout_seconds,
                        health_check=process.health_check,
                    )
                ]
            )
        )
        # The web task's roles, registered after its grants and secret versions as it is.
        self.task_definition = fargate_task_definition(
            name,
            parent=self,
            family=args.family or name,
            cpu=process.cpu,
            memory=process.memory,
            architecture=fleet.architecture,
            execution_role_arn=task.execution_role_arn,
            task_role_arn=task.task_role_arn,
            container_definitions=containers,
            registered_after=task.registered_after,
            # The SSM agent's volumes when the web task's app process mounts them (ECS Exec).
            execute_command=task.app_container.apply(lambda app: app.execute_command),
        )
        task_definition_arn = self.task_definition.arn

        autoscaled = process_autoscaled(process)
        released = released_service(
            name,
            parent=self,
            cluster=cluster,
            task_definition=task_definition_arn,
            desired_count=process.count if isinstance(process, WorkerConfig) else 1,
            rollout=process_rollout(process, fleet.spot_percent),
            fleet=fleet,
            subnet_ids=args.subnet_ids,
            security_group_ids=args.security_group_ids,
            after=args.after,
            autoscaled=autoscaled,
            region=region,
            verification_timeout_seconds=args.verification_timeout_seconds,
            aws_session=args.aws_session,
            # A scheduler service replaced (not updated) is deleted first: never two services.
            delete_before_replace=isinstance(process, SchedulerConfig),
        )
        self.service, self.verification = released.service, released.verification
        service_name = released.name
        self.scaling_target = self.scaling_policy = None
        if autoscaled and isinstance(process, WorkerConfig):
            # Target tracking on the service's average CPU between the worker's bounds.
            self.scaling_target = scaling_target(
                name,
                parent=self,
                cluster=cluster,
                service_name=service_name,
                min_capacity=process.floor,
                max_capacity=process.ceiling,
            )
            self.scaling_policy = target_tracking(
                f"{name}-scale-on-cpu",
                self.scaling_target,
                parent=self,
                target_value=process.cpu_target_percent,
                metric_specification={"predefined_metric_type": "ECSServiceAverageCPUUtilization"},
            )

        self.task_definition_arn = task_definition_arn
        self.family = self.task_definition.family
        self.service_name = service_name
        self.service_arn = self.service.arn
        self.verification_status = self.verification.status
        self.register_outputs(
            {
                "container_name": self.container_name,
                "task_definition_arn": self.task_definition_arn,
                "family": self.family,
                "service_name": self.service_name,
                "service_arn": self.service_arn,
                "verification_status": self.verification_status,
            }
        )
