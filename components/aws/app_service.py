"""The Fargate service: releases roll task by task, never below full strength, stop and roll back
on their own when new tasks fail, and `pulumi up` fails when a release did not take."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from pulumi_django.config import StackConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.providers.rollout_verification import (
    DEFAULT_TIMEOUT_SECONDS,
    RolloutVerification,
)
from pulumi_django.rendering.container_definitions import PROXY_CONTAINER

# Both are associated with the cluster whatever the Spot share, so changing it touches only
# the service's strategy.
FARGATE_CAPACITY_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
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


class AppService(pulumi.ComponentResource):
    """An ECS service of the app task behind the load balancer's target group.

    The service waits for `after` (the release's migration job): no task of a release starts
    before its migrations ran. Every change to the service (`forceNewDeployment`) rolls the
    tasks, because most service settings (network, ECS Exec, capacity providers) only reach new
    tasks anyway, and the AWS provider refuses a capacity-provider change without it."""

    service_name: pulumi.Output[str]
    service_arn: pulumi.Output[str]
    verification: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: StackConfig,
        cluster_arn: pulumi.Input[str],
        cluster_name: pulumi.Input[str],
        task_definition_arn: pulumi.Input[str],
        private_subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_id: pulumi.Input[str],
        target_group_arn: pulumi.Input[str],
        load_balancer_arn_suffix: pulumi.Input[str],
        target_group_arn_suffix: pulumi.Input[str],
        after: Sequence[pulumi.Resource] = (),
        verification_timeout_seconds: int = DEFAULT_TIMEOUT_SECONDS,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:fleet:AppService", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags or {})
        fleet = config.fleet
        rolling = fleet.rolling_update

        rollback_alarm = (
            self._rollback_alarm(
                name,
                threshold=rolling.alarm_5xx_threshold,
                load_balancer_arn_suffix=load_balancer_arn_suffix,
                target_group_arn_suffix=target_group_arn_suffix,
                tags=tags,
            )
            if rolling.alarm_rollback
            else None
        )
        capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=cluster_name,
            capacity_providers=list(FARGATE_CAPACITY_PROVIDERS),
            opts=child,
        )
        service = aws.ecs.Service(
            f"{name}-service",
            cluster=cluster_arn,
            task_definition=task_definition_arn,
            desired_count=fleet.desired_count,
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(
                    capacity_provider=provider, weight=weight
                )
                for provider, weight in capacity_provider_weights(fleet.spot_percent).items()
            ],
            deployment_controller=aws.ecs.ServiceDeploymentControllerArgs(type="ECS"),
            deployment_minimum_healthy_percent=rolling.minimum_healthy_percent,
            deployment_maximum_percent=rolling.maximum_percent,
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(
                enable=rolling.circuit_breaker, rollback=rolling.rollback
            ),
            alarms=(
                aws.ecs.ServiceAlarmsArgs(
                    alarm_names=[rollback_alarm.name], enable=True, rollback=True
                )
                if rollback_alarm is not None
                else None
            ),
            health_check_grace_period_seconds=rolling.health_check_grace_period_seconds,
            wait_for_steady_state=True,
            force_new_deployment=True,
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=private_subnet_ids,
                security_groups=[security_group_id],
                assign_public_ip=False,
            ),
            load_balancers=[
                aws.ecs.ServiceLoadBalancerArgs(
                    target_group_arn=target_group_arn,
                    container_name=PROXY_CONTAINER,
                    container_port=config.proxy.port,
                )
            ],
            enable_execute_command=fleet.enable_execute_command,
            propagate_tags="SERVICE",
            enable_ecs_managed_tags=True,
            tags=tags,
            # Once autoscaling moves the count, resetting it to the configured value on the next
            # `pulumi up` would shed the tasks a busy site scaled out to, in mid-release.
            opts=pulumi.ResourceOptions.merge(
                child,
                pulumi.ResourceOptions(
                    depends_on=[*after, capacity_providers],
                    ignore_changes=["desiredCount"] if autoscaled(fleet) else None,
                ),
            ),
        )
        if autoscaled(fleet):
            self._autoscaling(
                name,
                fleet=fleet,
                resource_id=pulumi.Output.concat("service/", cluster_name, "/", service.name),
                request_label=pulumi.Output.concat(
                    load_balancer_arn_suffix, "/", target_group_arn_suffix
                ),
                tags=tags,
            )
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        verification = RolloutVerification(
            f"{name}-rollout",
            cluster=cluster_arn,
            service=service.name,
            task_definition=task_definition_arn,
            region=region,
            timeout_seconds=verification_timeout_seconds,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[service]),
        )

        self.service_name = service.name
        self.service_arn = service.arn
        self.verification = verification.status
        self.register_outputs(
            {
                "service_name": self.service_name,
                "service_arn": self.service_arn,
                "verification": self.verification,
            }
        )

    def _rollback_alarm(
        self,
        name: str,
        *,
        threshold: int,
        load_balancer_arn_suffix: pulumi.Input[str],
        target_group_arn_suffix: pulumi.Input[str],
        tags: Mapping[str, str],
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
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _autoscaling(
        self,
        name: str,
        *,
        fleet: FleetConfig,
        resource_id: pulumi.Output[str],
        request_label: pulumi.Output[str],
        tags: Mapping[str, str],
    ) -> None:
        """Target tracking on CPU and, unless turned off, on ALB requests per task."""
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=resource_id,
            min_capacity=fleet.min_count,
            max_capacity=fleet.max_count,
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self),
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
            aws.appautoscaling.Policy(
                f"{name}-scale-on-{suffix}",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration={
                    "target_value": target_value,
                    "scale_out_cooldown": SCALE_OUT_COOLDOWN_SECONDS,
                    "scale_in_cooldown": SCALE_IN_COOLDOWN_SECONDS,
                    "predefined_metric_specification": {
                        "predefined_metric_type": metric,
                        "resource_label": label,
                    },
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
