"""The ECS cluster the app's service and its one-off tasks (the migration job) run in, with
Fargate and Fargate Spot as its capacity providers, and what those read of a cluster, created
here or brought."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import arg, arn_resource, check_name

CLUSTER_TYPE = "pulumi-django:fleet:Cluster"
# Both are associated with the cluster whatever the Spot share, so changing the share touches
# only the service's strategy.
FARGATE_CAPACITY_PROVIDERS = ("FARGATE", "FARGATE_SPOT")
# Where stacks made before this component kept its children: the cluster under the app task,
# its capacity providers under the app service, both components named like this one.
FORMER_PARENTS = {
    "cluster": "pulumi-django:fleet:AppTask",
    "capacity-providers": "pulumi-django:fleet:AppService",
}


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    """What the cluster is created with."""

    container_insights: Literal["enabled", "enhanced", "disabled"] = arg(
        "CloudWatch Container Insights for the cluster's services and tasks: `enabled`, "
        "`enhanced` (per-container metrics, billed as such) or `disabled`.",
        default="enabled",
    )


class Cluster(pulumi.ComponentResource):
    """An ECS cluster offering Fargate and Fargate Spot.

    An `AppService` given this component (rather than a bare cluster or ARN) waits for the
    capacity providers, which its capacity-provider strategy needs."""

    cluster: aws.ecs.Cluster
    capacity_providers: aws.ecs.ClusterCapacityProviders
    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]

    def __init__(
        self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("Cluster", name)
        super().__init__(CLUSTER_TYPE, name, None, opts)
        former_parent = opts.parent if opts is not None else None

        def child(suffix: str, type_: str) -> pulumi.ResourceOptions:
            """Parented here; aliased to its URN under the component that used to own it."""
            old_parent = pulumi.create_urn(name, FORMER_PARENTS[suffix], parent=former_parent)
            return pulumi.ResourceOptions(
                parent=self,
                aliases=[pulumi.create_urn(f"{name}-{suffix}", type_, parent=old_parent)],
            )

        self.cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[
                aws.ecs.ClusterSettingArgs(name="containerInsights", value=args.container_insights)
            ],
            opts=child("cluster", "aws:ecs/cluster:Cluster"),
        )
        self.capacity_providers = aws.ecs.ClusterCapacityProviders(
            f"{name}-capacity-providers",
            cluster_name=self.cluster.name,
            capacity_providers=list(FARGATE_CAPACITY_PROVIDERS),
            opts=child(
                "capacity-providers", "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders"
            ),
        )
        self.cluster_arn = self.cluster.arn
        self.cluster_name = self.cluster.name
        self.register_outputs({"cluster_arn": self.cluster_arn, "cluster_name": self.cluster_name})


@dataclass(frozen=True)
class ClusterRef:
    """What the service and the migration job read of their cluster: its ARN and name, and
    what must exist before a capacity-provider strategy can name its providers (a `Cluster`'s
    `capacity_providers`; nothing for a brought cluster, whose providers are its owner's)."""

    arn: pulumi.Output[str]
    name: pulumi.Output[str]
    ready: list[pulumi.Resource]


def cluster_ref(cluster: Cluster | aws.ecs.Cluster | pulumi.Input[str]) -> ClusterRef:
    """A `Cluster` component, an `aws.ecs.Cluster`, or a cluster's ARN (ECS takes a cluster's
    name where it takes its ARN, so a name works too: the name is the ARN's last part)."""
    if isinstance(cluster, Cluster):
        return ClusterRef(cluster.cluster_arn, cluster.cluster_name, [cluster.capacity_providers])
    if isinstance(cluster, aws.ecs.Cluster):
        return ClusterRef(cluster.arn, cluster.name, [])
    name = arn_resource(cluster).apply(lambda resource: resource.rsplit("/", 1)[-1])
    return ClusterRef(pulumi.Output.from_input(cluster), name, [])
