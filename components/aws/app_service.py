"""The Fargate service: releases roll task by task, never below full strength, stop and roll back
on their own when new tasks fail, and `pulumi up` fails when a release did not take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi
import pulumi_aws as aws

from pulumi_django._mock_answers import or_mock_answer
from pulumi_django.components.args import arg, check_name
from pulumi_django.components.aws.cluster import Cluster, ClusterRef, cluster_ref
from pulumi_django.components.aws.load_balancer import target_group_ref
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.providers.aws_session import AwsSession, session_input
from pulumi_django.providers.rollout_verification import (
    DEFAULT_TIMEOUT_SECONDS,
    RolloutVerification,
)
from pulumi_django.rendering.container_definitions import PROXY_CONTAINER

if TYPE_CHECKING:
    from pulumi_aws.appautoscaling import (
        PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgsDict as PredefinedMetric,  # noqa: E501
    )

# Scale out fast on a spike; scale in slowly so a dip between bursts does not shed tasks.
SCALE_OUT_COOLDOWN_SECONDS = 60
SCALE_IN_COOLDOWN_SECONDS = 300
ALARM_PERIOD_SECONDS = 60


def capacity_provider_weights(spot_percent: int) -> dict[str, int]:
    """Fargate and Fargate Spot weights; a provider with no share is left out."""
    weights = {"FARGATE": 100 - spot_percent, "FARGATE_SPOT": spot_percent}
    return {provider: weight for provider, weight in weights.items() if weight > 0}


def autoscaled(fleet: FleetConfig) -> bool:
    """Autoscaling owns the task count only when it has room to move."""
    return fleet.max_count > fleet.min_count


@dataclass(frozen=True)
class Rollout:
    """How ECS replaces a service's tasks in a release: `minimumHealthyPercent` and
    `maximumPercent`, and the capacity providers by weight."""

    minimum_healthy_percent: int
    maximum_percent: int
    capacity_providers: dict[str, int]


@dataclass(frozen=True)
class ReleasedService:
    """An ECS service (`service`, named `name`) and the check that its release took."""

    service: aws.ecs.Service
    name: pulumi.Output[str]
    verification: RolloutVerification


def released_service(
    name: str,
    *,
    parent: pulumi.Resource,
    cluster: ClusterRef,
    task_definition: pulumi.Input[str],
    desired_count: int,
    rollout: Rollout,
    fleet: FleetConfig,
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
    after: Sequence[pulumi.Resource],
    autoscaled: bool,
    region: pulumi.Input[str],
    verification_timeout_seconds: int,
    aws_session: AwsSession | None,
    delete_before_replace: bool = False,
    **extra: Any,
) -> ReleasedService:
    """`{name}-service`, an ECS service of the web fleet or of a background process: it rolls
    its tasks as `rollout` says, stops and rolls back a release whose new tasks keep failing
    (`fleet.rollingUpdate`), waits for `after` (the release's migration job) and the cluster's
    capacity providers, and runs its tasks in private subnets, with ECS Exec as `fleet` says.
    `extra`: further `aws.ecs.Service` arguments (the web fleet's load balancer and alarms).
    Then `{name}-rollout`: once the service settled, `pulumi up` fails unless ECS runs
    `task_definition` (a release the circuit breaker rolled back did not take), waiting at most
    `verification_timeout_seconds`, with boto3 calls in `region` as `aws_session`. With
    `delete_before_replace` (the scheduler), a replaced service is deleted before the new one
    is created.

    Every change to the service (`forceNewDeployment`) rolls the tasks, because most service
    settings (network, ECS Exec, capacity providers) only reach new tasks anyway, and the AWS
    provider refuses a capacity-provider change without it. Once autoscaling moves the count
    (`autoscaled`), resetting it to the configured value on the next `pulumi up` would shed the
    tasks a busy service scaled out to, in mid-release: the count is then autoscaling's."""
    rolling = fleet.rolling_update
    service = aws.ecs.Service(
        f"{name}-service",
        cluster=cluster.arn,
        task_definition=task_definition,
        desired_count=desired_count,
        capacity_provider_strategies=[
            aws.ecs.ServiceCapacityProviderStrategyArgs(capacity_provider=provider, weight=weight)
            for provider, weight in rollout.capacity_providers.items()
        ],
        deployment_controller=aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
        deployment_minimum_healthy_percent=rollout.minimum_healthy_percent,
        deployment_maximum_percent=rollout.maximum_percent,
        deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
            enable=rolling.circuit_breaker, rollback=rolling.rollback
        ),
        wait_for_steady_state=True,
        force_new_deployment=True,
        network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
            subnets=subnet_ids,
            security_groups=security_group_ids,
            assign_public_ip=False,
        ),
        enable_execute_command=fleet.enable_execute_command,
        propagate_tags="SERVICE",
        enable_ecs_managed_tags=True,
        **extra,
        opts=pulumi.ResourceOptions(
            parent=parent,
            depends_on=[*after, *cluster.ready],
            ignore_changes=["desiredCount"] if autoscaled else None,
            delete_before_replace=delete_before_replace or None,
        ),
    )
    service_name = or_mock_answer(service.name, f"{name}-service")
    verification = RolloutVerification(
        f"{name}-rollout",
        cluster=cluster.arn,
        service=service_name,
        task_definition=task_definition,
        region=region,
        timeout_seconds=verification_timeout_seconds,
        aws_session=session_input(aws_session),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[service]),
    )
    return ReleasedService(service, service_name, verification)


def scaling_target(
    name: str,
    *,
    parent: pulumi.Resource,
    cluster: ClusterRef,
    service_name: pulumi.Output[str],
    min_capacity: int,
    max_capacity: int,
) -> aws.appautoscaling.Target:
    """`{name}-scaling`: the service's task count, which autoscaling keeps between the bounds."""
    return aws.appautoscaling.Target(
        f"{name}-scaling",
        service_namespace="ecs",
        scalable_dimension="ecs:service:DesiredCount",
        resource_id=pulumi.Output.concat("service/", cluster.name, "/", service_name),
        min_capacity=min_capacity,
        max_capacity=max_capacity,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def target_tracking(
    name: str,
    target: aws.appautoscaling.Target,
    *,
    parent: pulumi.Resource,
    target_value: int,
    metric_specification: PredefinedMetric,
) -> aws.appautoscaling.Policy:
    """A target-tracking policy of `target` on a predefined metric (`metric_specification`):
    out fast on a spike, in slowly (the cooldowns)."""
    return aws.appautoscaling.Policy(
        name,
        policy_type="TargetTrackingScaling",
        service_namespace=target.service_namespace,
        scalable_dimension=target.scalable_dimension,
        resource_id=target.resource_id,
        target_tracking_scaling_policy_configuration={
            "target_value": target_value,
            "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
            "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
            "predefined_metric_specification": metric_specification,
        },
        opts=pulumi.ResourceOptions(parent=parent),
    )


def _per_minute(
    query_id: str, metric: str, dimensions: Mapping[str, pulumi.Input[str]]
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    """A load-balancer count summed per minute, an input of the alarm's expression."""
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            metric_name=metric,
            namespace="AWS/ApplicationELB",
            dimensions=dimensions,
            stat="Sum",
            period=ALARM_PERIOD_SECONDS,
        ),
        return_data=False,
    )


@dataclass(frozen=True, kw_only=True)
class AppServiceArgs:
    """The fleet section, and where the service runs and takes traffic from."""

    fleet: FleetConfig = arg(
        "The `fleet` section: task count, autoscaling, Spot share, release policy, ECS Exec. "
        "Default: the section's defaults.",
        default_factory=FleetConfig,
    )
    proxy_port: int = arg(
        "The proxy container's port, which the target group sends traffic to. Default: the "
        "proxy section's default.",
        default=ProxyConfig.model_fields["port"].default,
    )
    cluster: Cluster | aws.ecs.Cluster | pulumi.Input[str] = arg(
        "The cluster to run in: a `Cluster` (the service then waits for its capacity "
        "providers), an `aws.ecs.Cluster`, or a cluster's ARN. A cluster of your own must offer "
        "the `FARGATE` capacity provider, and `FARGATE_SPOT` when `fleet.spotPercent` > 0."
    )
    task_definition_arn: pulumi.Input[str] = arg("The task definition to run (`AppTask`'s).")
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = arg(
        "Subnets the tasks run in (`Network.private_subnet_ids`); they get no public IP."
    )
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = arg(
        "The tasks' security groups (`[Network.app_security_group_id]`); the load balancer "
        "must reach the proxy port through them."
    )
    target_group: aws.lb.TargetGroup | pulumi.Input[str] = arg(
        "The target group the tasks register in: an `aws.lb.TargetGroup` or its ARN. ECS "
        "refuses one that no listener forwards to yet: given one from the same program, pass "
        "the ARN as an output that resolves after the listener rule (`LoadBalancer`'s "
        "`target_group_arn` does), or the rule in `after`."
    )
    target_group_arn_suffix: pulumi.Input[str] | None = arg(
        "The target group's ARN suffix (`targetgroup/NAME/ID`) the metrics are keyed by; "
        "default: the target group's `arn_suffix`, or the end of its ARN.",
        default=None,
    )
    load_balancer_arn_suffix: pulumi.Input[str] = arg(
        "The load balancer's ARN suffix (`app/NAME/ID`), for the 5xx alarm and request tracking."
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
        "The AWS identity the rollout check's boto3 calls act as (profile, roles to assume). "
        "Default: the stack's `aws:` settings, as the site's AWS provider reads them.",
        default=None,
    )


class AppService(pulumi.ComponentResource):
    """An ECS service of the app task behind the load balancer's target group.

    The service waits for `after` (the release's migration job): no task of a release starts
    before its migrations ran. Every change to the service (`forceNewDeployment`) rolls the
    tasks, because most service settings (network, ECS Exec, capacity providers) only reach new
    tasks anyway, and the AWS provider refuses a capacity-provider change without it."""

    service: aws.ecs.Service
    rollback_alarm: aws.cloudwatch.MetricAlarm | None
    scaling_target: aws.appautoscaling.Target | None
    # Target-tracking policies by metric (`cpu`, `requests`); empty without autoscaling.
    scaling_policies: dict[str, aws.appautoscaling.Policy]
    verification: RolloutVerification
    service_name: pulumi.Output[str]
    service_arn: pulumi.Output[str]
    verification_status: pulumi.Output[str]

    def __init__(
        self, name: str, args: AppServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("AppService", name)
        super().__init__("pulumi-django:fleet:AppService", name, None, opts)
        fleet = args.fleet
        rolling = fleet.rolling_update
        cluster = cluster_ref(args.cluster)
        target_group_arn, suffix_of_arn = target_group_ref(args.target_group)
        target_group_arn_suffix = args.target_group_arn_suffix or suffix_of_arn

        self.rollback_alarm = (
            self._rollback_alarm(
                name,
                threshold=rolling.alarm_5xx_threshold,
                load_balancer_arn_suffix=args.load_balancer_arn_suffix,
                target_group_arn_suffix=target_group_arn_suffix,
            )
            if rolling.alarm_rollback
            else None
        )
        released = released_service(
            name,
            parent=self,
            cluster=cluster,
            task_definition=args.task_definition_arn,
            desired_count=fleet.desired_count,
            rollout=Rollout(
                rolling.minimum_healthy_percent,
                rolling.maximum_percent,
                capacity_provider_weights(fleet.spot_percent),
            ),
            fleet=fleet,
            subnet_ids=args.subnet_ids,
            security_group_ids=args.security_group_ids,
            after=args.after,
            autoscaled=autoscaled(fleet),
            region=aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region,
            verification_timeout_seconds=args.verification_timeout_seconds,
            aws_session=args.aws_session,
            alarms=(
                aws.ecs.ServiceAlarmsArgs(
                    alarm_names=[self.rollback_alarm.name], enable=True, rollback=True
                )
                if self.rollback_alarm is not None
                else None
            ),
            health_check_grace_period_seconds=rolling.health_check_grace_period_seconds,
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=target_group_arn,
                    container_name=PROXY_CONTAINER,
                    container_port=args.proxy_port,
                )
            ],
        )
        self.service, self.verification = released.service, released.verification
        service_name = released.name
        self.scaling_policies = {}
        self.scaling_target = (
            self._autoscaling(
                name,
                fleet=fleet,
                cluster=cluster,
                service_name=service_name,
                request_label=pulumi.Output.concat(
                    args.load_balancer_arn_suffix, "/", target_group_arn_suffix
                ),
            )
            if autoscaled(fleet)
            else None
        )

        self.service_name = service_name
        self.service_arn = self.service.arn
        self.verification_status = self.verification.status
        self.register_outputs(
            {
                "service_name": self.service_name,
                "service_arn": self.service_arn,
                "verification_status": self.verification_status,
            }
        )

    def _rollback_alarm(
        self,
        name: str,
        *,
        threshold: int,
        load_balancer_arn_suffix: pulumi.Input[str],
        target_group_arn_suffix: pulumi.Input[str],
    ) -> aws.cloudwatch.MetricAlarm:
        """5xx answers per minute, from the app and from the ALB itself (502/503/504)."""
        return aws.cloudwatch.MetricAlarm(
            f"{name}-5xx",
            alarm_description="5xx responses during a release; ECS rolls the release back",
            comparison_operator="GreaterThanOrEqualToThreshold",
            threshold=threshold,
            evaluation_periods=1,
            treat_missing_data="notBreaching",
            metric_queries=[
                _per_minute(
                    "app",
                    "HTTPCode_Target_5XX_Count",
                    {
                        "LoadBalancer": load_balancer_arn_suffix,
                        "TargetGroup": target_group_arn_suffix,
                    },
                ),
                _per_minute(
                    "alb", "HTTPCode_ELB_5XX_Count", {"LoadBalancer": load_balancer_arn_suffix}
                ),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="errors",
                    expression="FILL(app, 0) + FILL(alb, 0)",
                    label="5xx responses per minute",
                    return_data=True,
                ),
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _autoscaling(
        self,
        name: str,
        *,
        fleet: FleetConfig,
        cluster: ClusterRef,
        service_name: pulumi.Output[str],
        request_label: pulumi.Output[str],
    ) -> aws.appautoscaling.Target:
        """Target tracking on CPU and, unless turned off, on ALB requests per task."""
        target = scaling_target(
            name,
            parent=self,
            cluster=cluster,
            service_name=service_name,
            min_capacity=fleet.min_count,
            max_capacity=fleet.max_count,
        )
        metrics: dict[str, tuple[str, pulumi.Input[str] | None, int]] = {
            "cpu": ("ECSServiceAverageCPUUtilization", None, fleet.autoscaling.cpu_target_percent)
        }
        if fleet.autoscaling.requests_per_target is not None:
            metrics["requests"] = (
                "ALBRequestCountPerTarget",
                request_label,
                fleet.autoscaling.requests_per_target,
            )
        for suffix, (metric, label, target_value) in metrics.items():
            self.scaling_policies[suffix] = target_tracking(
                f"{name}-scale-on-{suffix}",
                target,
                parent=self,
                target_value=target_value,
                metric_specification={"predefined_metric_type": metric, "resource_label": label},
            )
        return target
