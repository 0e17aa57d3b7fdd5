"""The ECS service as `pulumi up` registers it: safe rolling updates, release gate, verification."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from pulumi_django.components.aws.app_service import (
    PROXY_CONTAINER,
    SCALE_IN_COOLDOWN_SECONDS,
    SCALE_OUT_COOLDOWN_SECONDS,
    AppService,
    AppServiceArgs,
)
from pulumi_django.components.aws.cluster import Cluster, ClusterArgs
from pulumi_django.components.aws.load_balancer import LoadBalancer, LoadBalancerArgs
from pulumi_django.config import StackConfig
from pulumi_django.recorder import RecordedResource, Recording, RecordingMonitor, record

SERVICE = "aws:ecs/service:Service"
VERIFICATION = "pulumi-python:dynamic/fleet:RolloutVerification"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
MIGRATION = "test:release:Migration"
TASK_DEFINITION = "arn:aws:ecs:eu-west-1:123456789012:task-definition/web-app:7"
# The mocked cluster's ARN and (auto-)name.
CLUSTER_ARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/web-cluster"
CLUSTER_NAME = "web-cluster-a1b2c3d"
PRIVATE_SUBNETS = ["subnet-private-a", "subnet-private-b"]

DEV = {"fleet": {"desiredCount": 1, "minCount": 1, "maxCount": 1, "enableExecuteCommand": True}}
PROD = {
    "fleet": {
        "desiredCount": 3,
        "minCount": 3,
        "maxCount": 12,
        "spotPercent": 25,
        "rollingUpdate": {"alarmRollback": True, "alarm_5xx_threshold": 20},
    }
}


def stack_config(sections: dict[str, Any] | None = None) -> StackConfig:
    return StackConfig.model_validate({"target": "aws", **(sections or {})})


SERVICE_CHILDREN = ("service", "rollback_alarm", "scaling_target", "verification")


def record_fleet(
    config: StackConfig, brought: Callable[[], dict[str, Any]] | None = None
) -> Recording:
    """A cluster, the load balancer and the service wired as AwsSite wires them, after a
    migration job; `brought()` makes, inside the program, args that replace those. Each child
    of the service is exported as its URN, or None."""

    def program() -> None:
        migration = pulumi.CustomResource(MIGRATION, "migrate", {})
        load_balancer = LoadBalancer(
            "web",
            LoadBalancerArgs(
                config=config.load_balancer,
                origin_verify_secret="origin-secret",
                proxy_port=config.proxy.port,
                vpc_id="vpc-0a1b2c3d",
                subnet_ids=PRIVATE_SUBNETS,
                security_group_ids=["sg-load-balancer"],
            ),
        )
        args = {
            "fleet": config.fleet,
            "proxy_port": config.proxy.port,
            "task_definition_arn": TASK_DEFINITION,
            "subnet_ids": PRIVATE_SUBNETS,
            "security_group_ids": ["sg-app"],
            "target_group": load_balancer.target_group_arn,
            "target_group_arn_suffix": load_balancer.target_group_arn_suffix,
            "load_balancer_arn_suffix": load_balancer.arn_suffix,
            "after": [migration],
            **(brought() if brought else {}),
        }
        if "cluster" not in args:
            args["cluster"] = Cluster("web", ClusterArgs())
        app_service = AppService("web", AppServiceArgs(**args))
        for child in SERVICE_CHILDREN:
            resource = getattr(app_service, child)
            pulumi.export(child, resource.urn if resource is not None else None)
        pulumi.export(
            "scaling_policies",
            {metric: policy.urn for metric, policy in app_service.scaling_policies.items()},
        )

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "eu-west-1"})


def service(recording: Recording) -> RecordedResource:
    return recording.one(SERVICE)


def test_rolling_update_defaults_keep_full_strength_and_roll_back_failures() -> None:
    inputs = service(record_fleet(stack_config())).inputs
    assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert inputs["deploymentMinimumHealthyPercent"] == 100
    assert inputs["deploymentMaximumPercent"] == 200
    assert inputs["healthCheckGracePeriodSeconds"] == 60
    assert inputs["waitForSteadyState"] is True
    assert inputs["deploymentController"] == {"type": "ECS"}
    assert inputs["forceNewDeployment"] is True
    assert "alarms" not in inputs


def test_rolling_update_settings_come_from_config() -> None:
    config = stack_config(
        {
            "fleet": {
                "rollingUpdate": {
                    "minimumHealthyPercent": 50,
                    "maximumPercent": 150,
                    "healthCheckGracePeriodSeconds": 120,
                }
            }
        }
    )
    inputs = service(record_fleet(config)).inputs
    assert inputs["deploymentMinimumHealthyPercent"] == 50
    assert inputs["deploymentMaximumPercent"] == 150
    assert inputs["healthCheckGracePeriodSeconds"] == 120


def test_tasks_run_in_private_subnets_with_the_app_security_group_and_no_public_ip() -> None:
    inputs = service(record_fleet(stack_config())).inputs
    assert inputs["networkConfiguration"] == {
        "subnets": PRIVATE_SUBNETS,
        "securityGroups": ["sg-app"],
        "assignPublicIp": False,
    }
    assert inputs["cluster"] == CLUSTER_ARN
    assert inputs["taskDefinition"] == TASK_DEFINITION


def test_load_balancer_sends_traffic_to_the_proxy_container() -> None:
    config = stack_config({"proxy": {"port": 8181}})
    recording = record_fleet(config)
    (attachment,) = service(recording).inputs["loadBalancers"]
    assert attachment["containerName"] == PROXY_CONTAINER
    assert attachment["containerPort"] == 8181
    target_group = recording.one("aws:lb/targetGroup:TargetGroup")
    assert attachment["targetGroupArn"].endswith(
        f":targetgroup/{target_group.name}/0123456789abcdef"
    )


def test_service_waits_for_the_forwarding_rule_so_ecs_accepts_the_target_group() -> None:
    recording = record_fleet(stack_config())
    rule = recording.one("aws:lb/listenerRule:ListenerRule")
    assert rule.urn in service(recording).property_dependencies["loadBalancers"]


def test_service_waits_for_the_release_gate() -> None:
    recording = record_fleet(stack_config())
    migration = recording.one(MIGRATION)
    assert recording.depends_on(service(recording).urn, migration.urn)
    assert not recording.depends_on(migration.urn, service(recording).urn)


def test_rollout_verification_checks_the_released_task_definition_after_the_service() -> None:
    recording = record_fleet(stack_config())
    verification = recording.one(VERIFICATION)
    ecs_service = service(recording)
    assert recording.depends_on(verification.urn, ecs_service.urn)
    assert verification.inputs["task_definition"] == TASK_DEFINITION
    assert verification.inputs["cluster"] == CLUSTER_ARN
    assert verification.inputs["service"].startswith("web-service")
    assert verification.inputs["region"] == "eu-west-1"
    assert verification.inputs["timeout_seconds"] > 0
    component = recording.one("pulumi-django:fleet:AppService")
    assert verification.parent == component.urn


def test_tags_propagate_from_the_service_to_its_tasks() -> None:
    inputs = service(record_fleet(stack_config())).inputs
    assert inputs["propagateTags"] == "SERVICE"
    assert inputs["enableEcsManagedTags"] is True


@pytest.mark.parametrize(
    ("spot_percent", "strategy"),
    [
        (0, [{"capacityProvider": "FARGATE", "weight": 100}]),
        (
            25,
            [
                {"capacityProvider": "FARGATE", "weight": 75},
                {"capacityProvider": "FARGATE_SPOT", "weight": 25},
            ],
        ),
        (100, [{"capacityProvider": "FARGATE_SPOT", "weight": 100}]),
    ],
)
def test_spot_share_sets_the_capacity_provider_weights(
    spot_percent: int, strategy: list[dict[str, Any]]
) -> None:
    config = stack_config({"fleet": {"spotPercent": spot_percent}})
    inputs = service(record_fleet(config)).inputs
    assert inputs["capacityProviderStrategies"] == strategy
    assert "launchType" not in inputs


def test_the_cluster_offers_fargate_and_spot_before_the_service_starts() -> None:
    recording = record_fleet(stack_config())
    association = recording.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert association.inputs["clusterName"] == CLUSTER_NAME
    assert sorted(association.inputs["capacityProviders"]) == ["FARGATE", "FARGATE_SPOT"]
    assert recording.depends_on(service(recording).urn, association.urn)


@pytest.mark.parametrize("enabled", [False, True])
def test_ecs_exec_is_opt_in(enabled: bool) -> None:
    config = stack_config({"fleet": {"enableExecuteCommand": enabled}})
    assert service(record_fleet(config)).inputs["enableExecuteCommand"] is enabled


def test_autoscaling_tracks_cpu_and_requests_per_target() -> None:
    recording = record_fleet(stack_config(PROD))
    target = recording.one(SCALING_TARGET)
    assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (3, 12)
    assert (
        target.inputs["resourceId"] == f"service/{CLUSTER_NAME}/{service(recording).name}-a1b2c3d"
    )
    assert target.inputs["scalableDimension"] == "ecs:service:DesiredCount"
    policies = {
        policy.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]: policy.inputs["targetTrackingScalingPolicyConfiguration"]
        for policy in recording.find(SCALING_POLICY)
    }
    assert set(policies) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert policies["ECSServiceAverageCPUUtilization"]["targetValue"] == 60
    requests = policies["ALBRequestCountPerTarget"]
    assert requests["targetValue"] == 1000
    alb = recording.one("aws:lb/loadBalancer:LoadBalancer")
    group = recording.one("aws:lb/targetGroup:TargetGroup")
    assert requests["predefinedMetricSpecification"]["resourceLabel"] == (
        f"app/{alb.name}/0123456789abcdef/targetgroup/{group.name}/0123456789abcdef"
    )
    for configuration in policies.values():
        assert configuration["scaleInCooldown"] > configuration["scaleOutCooldown"]
        assert configuration["scaleOutCooldown"] == SCALE_OUT_COOLDOWN_SECONDS
        assert configuration["scaleInCooldown"] == SCALE_IN_COOLDOWN_SECONDS
    for policy in recording.find(SCALING_POLICY):
        assert recording.depends_on(policy.urn, target.urn)


def test_request_tracking_can_be_turned_off() -> None:
    config = stack_config({"fleet": {"autoscaling": {"requestsPerTarget": None}}})
    policies = record_fleet(config).find(SCALING_POLICY)
    assert [
        policy.inputs["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
            "predefinedMetricType"
        ]
        for policy in policies
    ] == ["ECSServiceAverageCPUUtilization"]


def test_a_fixed_size_fleet_has_no_autoscaling() -> None:
    recording = record_fleet(stack_config(DEV))
    assert recording.find(SCALING_TARGET) == []
    assert recording.find(SCALING_POLICY) == []
    assert service(recording).inputs["desiredCount"] == 1


@pytest.fixture
def ignore_changes(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The ignoreChanges option of each registered resource, by name."""
    seen: dict[str, list[str]] = {}
    register = RecordingMonitor.RegisterResource

    def spy(self: RecordingMonitor, request: Any) -> Any:
        seen[request.name] = list(request.ignoreChanges)
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    return seen


def test_autoscaling_owns_the_desired_count(ignore_changes: dict[str, list[str]]) -> None:
    recording = record_fleet(stack_config(PROD))
    ecs_service = service(recording)
    assert ecs_service.inputs["desiredCount"] == 3  # the count it starts with
    assert ignore_changes[ecs_service.name] == ["desiredCount"]


def test_a_fixed_size_fleet_keeps_its_configured_count(
    ignore_changes: dict[str, list[str]],
) -> None:
    ecs_service = service(record_fleet(stack_config(DEV)))
    assert ignore_changes[ecs_service.name] == []


def test_alarm_rollback_watches_5xx_of_the_app_and_the_load_balancer() -> None:
    recording = record_fleet(stack_config(PROD))
    alarm = recording.one(ALARM)
    assert alarm.inputs["threshold"] == 20
    assert alarm.inputs["comparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm.inputs["treatMissingData"] == "notBreaching"
    metrics = {
        query["metric"]["metricName"]: query["metric"]["dimensions"]
        for query in alarm.inputs["metricQueries"]
        if "metric" in query
    }
    assert set(metrics) == {"HTTPCode_Target_5XX_Count", "HTTPCode_ELB_5XX_Count"}
    assert set(metrics["HTTPCode_Target_5XX_Count"]) == {"LoadBalancer", "TargetGroup"}
    (total,) = [query for query in alarm.inputs["metricQueries"] if query.get("returnData")]
    assert "app" in total["expression"] and "alb" in total["expression"]
    ecs_service = service(recording)
    assert ecs_service.inputs["alarms"] == {
        "alarmNames": [f"{alarm.name}-a1b2c3d"],
        "enable": True,
        "rollback": True,
    }
    assert alarm.urn in ecs_service.property_dependencies["alarms"]


def test_alarm_rollback_is_off_by_default() -> None:
    recording = record_fleet(stack_config())
    assert recording.find(ALARM) == []


@pytest.mark.parametrize("sections", [DEV, PROD], ids=["dev", "prod"])
def test_every_release_safety_holds_for_dev_and_prod(sections: dict[str, Any]) -> None:
    recording = record_fleet(stack_config(sections))
    inputs = service(recording).inputs
    assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    assert inputs["deploymentMinimumHealthyPercent"] == 100
    assert inputs["deploymentMaximumPercent"] == 200
    assert inputs["waitForSteadyState"] is True
    assert inputs["networkConfiguration"]["assignPublicIp"] is False
    assert recording.depends_on(service(recording).urn, recording.one(MIGRATION).urn)
    assert recording.depends_on(recording.one(VERIFICATION).urn, service(recording).urn)


def test_the_cluster_has_container_insights_and_offers_fargate() -> None:
    recording = record_fleet(stack_config())
    cluster = recording.one("aws:ecs/cluster:Cluster")
    assert cluster.inputs["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    component = recording.one("pulumi-django:fleet:Cluster")
    association = recording.one("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders")
    assert cluster.parent == association.parent == component.urn
    assert recording.depends_on(association.urn, cluster.urn)


MY_CLUSTER_ARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/platform"


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: MY_CLUSTER_ARN, "platform"),
        # The mocked cluster's ARN is MY_CLUSTER_ARN; its name is auto-named.
        (lambda: aws.ecs.Cluster("platform"), "platform-a1b2c3d"),
    ],
    ids=["arn", "object"],
)
def test_a_cluster_of_your_own_runs_the_service(make: Callable[[], Any], name: str) -> None:
    recording = record_fleet(stack_config(PROD), lambda: {"cluster": make()})
    ecs_service = service(recording)
    assert ecs_service.inputs["cluster"] == MY_CLUSTER_ARN
    assert recording.one(VERIFICATION).inputs["cluster"] == MY_CLUSTER_ARN
    # The service makes no cluster and sets no capacity providers on yours.
    assert recording.find("pulumi-django:fleet:Cluster") == []
    assert recording.find("aws:ecs/clusterCapacityProviders:ClusterCapacityProviders") == []
    assert recording.one(SCALING_TARGET).inputs["resourceId"] == (
        f"service/{name}/{ecs_service.name}-a1b2c3d"
    )


def test_a_target_group_object_gives_its_arn_and_suffix() -> None:
    def brought() -> dict[str, Any]:
        group = aws.lb.TargetGroup("mine", port=8080, protocol="HTTP", vpc_id="vpc-0a1b2c3d")
        return {"target_group": group, "target_group_arn_suffix": None}

    recording = record_fleet(stack_config(PROD), brought)
    mine = recording.one("aws:lb/targetGroup:TargetGroup", "mine")
    (attachment,) = service(recording).inputs["loadBalancers"]
    assert (
        attachment["targetGroupArn"]
        == "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/mine/0123456789abcdef"
    )
    label = recording.one(SCALING_POLICY, "web-scale-on-requests").inputs[
        "targetTrackingScalingPolicyConfiguration"
    ]["predefinedMetricSpecification"]["resourceLabel"]
    assert label.endswith("/targetgroup/mine/0123456789abcdef")
    alarm = recording.one(ALARM)
    assert mine.urn in alarm.property_dependencies["metricQueries"]


def test_a_target_group_arn_gives_its_suffix() -> None:
    arn = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/shop/73e2d6bc24d8a067"
    recording = record_fleet(
        stack_config(PROD), lambda: {"target_group": arn, "target_group_arn_suffix": None}
    )
    (attachment,) = service(recording).inputs["loadBalancers"]
    assert attachment["targetGroupArn"] == arn
    (app_errors, *_) = recording.one(ALARM).inputs["metricQueries"]
    assert app_errors["metric"]["dimensions"]["TargetGroup"] == "targetgroup/shop/73e2d6bc24d8a067"


@pytest.mark.parametrize(
    ("sections", "absent"),
    [(PROD, set()), (DEV, {"rollback_alarm", "scaling_target"})],
    ids=["prod", "dev"],
)
def test_the_service_exposes_its_children(sections: dict[str, Any], absent: set[str]) -> None:
    recording = record_fleet(stack_config(sections))
    types = {
        "service": SERVICE,
        "rollback_alarm": ALARM,
        "scaling_target": SCALING_TARGET,
        "verification": VERIFICATION,
    }
    for child, type_ in types.items():
        expected = None if child in absent else recording.one(type_).urn
        assert recording.outputs[child] == expected
    policies = {r.name.rsplit("-", 1)[-1]: r.urn for r in recording.find(SCALING_POLICY)}
    assert recording.outputs["scaling_policies"] == policies
    assert bool(policies) == ("scaling_target" not in absent)


@pytest.fixture
def aliases(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The alias URNs of each registered resource, by name."""
    seen: dict[str, list[str]] = {}
    register = RecordingMonitor.RegisterResource

    def spy(self: RecordingMonitor, request: Any) -> Any:
        seen[request.name] = [
            *request.aliasURNs,
            *(alias.urn for alias in request.aliases if alias.HasField("urn")),
        ]
        return register(self, request)

    monkeypatch.setattr(RecordingMonitor, "RegisterResource", spy)
    return seen


@pytest.mark.parametrize("in_site", [True, False], ids=["in-a-site", "at-the-root"])
def test_the_cluster_keeps_the_urns_of_stacks_made_before_it_had_a_component(
    aliases: dict[str, list[str]], in_site: bool
) -> None:
    """The cluster was the app task's child, its capacity providers the app service's, both
    components named like the cluster and under the same parent: existing stacks must see a
    move, not a replacement (which would take the running service down)."""

    def program() -> None:
        site = pulumi.ComponentResource("pulumi-django:site:AwsSite", "shop") if in_site else None
        Cluster("shop", ClusterArgs(), opts=pulumi.ResourceOptions(parent=site))

    recording = record(program, project="pulumi-django", stack="prod", config={})
    site = "pulumi-django:site:AwsSite$" if in_site else ""
    former = "urn:pulumi:prod::pulumi-django::" + site
    assert aliases["shop-cluster"] == [
        f"{former}pulumi-django:fleet:AppTask$aws:ecs/cluster:Cluster::shop-cluster"
    ]
    assert aliases["shop-capacity-providers"] == [
        f"{former}pulumi-django:fleet:AppService$"
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders::shop-capacity-providers"
    ]
    assert aliases["shop"] == []
    assert recording.one("aws:ecs/cluster:Cluster").urn == (
        f"urn:pulumi:prod::pulumi-django::{site}pulumi-django:fleet:Cluster$"
        "aws:ecs/cluster:Cluster::shop-cluster"
    )


@pytest.mark.parametrize("insights", ["enabled", "enhanced", "disabled"])
def test_container_insights_is_an_arg(insights: str) -> None:
    def program() -> None:
        Cluster("shop", ClusterArgs(container_insights=insights))  # type: ignore[arg-type]

    recording = record(program, project="pulumi-django", stack="prod", config={})
    settings = recording.one("aws:ecs/cluster:Cluster").inputs["settings"]
    assert settings == [{"name": "containerInsights", "value": insights}]
