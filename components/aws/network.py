"""The VPC (created here, or an existing one) and the security-group chain
CloudFront -> load balancer -> app tasks -> database and cache, with nothing else let in."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.site import POSTGRES_PORT, REDIS_PORT
from pulumi_django.config import ConfigError
from pulumi_django.config.network import NetworkConfig

CLOUDFRONT_PREFIX_LIST = "com.amazonaws.global.cloudfront.origin-facing"
HTTP_PORT = 80
HTTPS_PORT = 443
ANYWHERE = "0.0.0.0/0"
INGRESS = aws.vpc.SecurityGroupIngressRule
EGRESS = aws.vpc.SecurityGroupEgressRule
# One security group per tier, named f"{name}-{tier}".
TIERS = {
    "lb": "Load balancer: HTTPS from CloudFront, to the app tasks",
    "lb-http": "Load balancer: HTTP from CloudFront",
    "app": "App tasks: from the load balancer, to the database, cache and AWS APIs",
    "db": "PostgreSQL: from the app tasks only",
    "cache": "Redis: from the app tasks only",
}
RuleKind = type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule]
# What Fargate tasks call without internet egress: ECR (manifests), CloudWatch Logs (awslogs)
# and Secrets Manager (task secrets). Image layers come from S3, through a free gateway endpoint.
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")
# ECS Exec's agent opens its session channel here; without it `aws ecs execute-command` hangs.
EXECUTE_COMMAND_ENDPOINT_SERVICE = "ssmmessages"


@dataclass(frozen=True)
class SubnetLayout:
    """CIDR blocks of the public and private subnets, one of each per availability zone."""

    public: list[str]
    private: list[str]


def subnet_layout(cidr: str, zones: int) -> SubnetLayout:
    """Private subnets (tasks, database, cache) take a quarter of the VPC each; the last
    quarter splits into four small public subnets, which hold only the load balancer and NAT."""
    if not 1 <= zones <= 3:
        raise ValueError(f"a VPC spans 1 to 3 zones here, not {zones}")
    quarters = list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=2))
    public = list(quarters[3].subnets(prefixlen_diff=2))
    return SubnetLayout(
        public=[str(block) for block in public[:zones]],
        private=[str(block) for block in quarters[:zones]],
    )


@dataclass(frozen=True)
class _CreatedVpc:
    vpc: aws.ec2.Vpc
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    region: pulumi.Output[str]
    s3: aws.ec2.VpcEndpoint


class Network(pulumi.ComponentResource):
    """Public subnets for the load balancer and NAT, private ones for tasks and data, and one
    security group per tier whose rules reference the neighbouring groups, never CIDRs.

    The load balancer gets two groups (`load_balancer_security_group_ids`), one per port:
    a rule referencing the CloudFront prefix list counts as 55 rules against the default
    quota of 60 per group, so ports 80 and 443 cannot share one."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    load_balancer_security_group_id: pulumi.Output[str]
    load_balancer_security_group_ids: pulumi.Output[list[str]]
    app_security_group_id: pulumi.Output[str]
    database_security_group_id: pulumi.Output[str]
    cache_security_group_id: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: NetworkConfig,
        proxy_port: int,
        execute_command: bool = False,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:network:Network", name, None, opts)
        self._name = name
        self._tags = dict(tags or {})
        self._child = pulumi.ResourceOptions(parent=self)
        self._groups: dict[str, aws.ec2.SecurityGroup] = {}

        invoke = pulumi.InvokeOutputOptions(parent=self)
        created: _CreatedVpc | None = None
        if config.existing:
            existing = config.existing
            self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
            self.vpc_cidr = aws.ec2.get_vpc_output(id=existing.vpc_id, opts=invoke).cidr_block
            self.public_subnet_ids = pulumi.Output.from_input(existing.public_subnet_ids)
            self.private_subnet_ids = pulumi.Output.from_input(existing.private_subnet_ids)
        else:
            created = self._create_vpc(config)
            self.vpc_id = created.vpc.id
            self.vpc_cidr = created.vpc.cidr_block
            self.public_subnet_ids = pulumi.Output.all(*[s.id for s in created.public_subnets])
            self.private_subnet_ids = pulumi.Output.all(*[s.id for s in created.private_subnets])

        for tier, purpose in TIERS.items():
            self._group(tier, purpose)
        cloudfront = aws.ec2.get_managed_prefix_list_output(
            name=CLOUDFRONT_PREFIX_LIST, opts=invoke
        )
        self._rule(INGRESS, "lb-from-cloudfront", "lb", HTTPS_PORT, prefix_list=cloudfront.id)
        self._rule(
            INGRESS, "lb-http-from-cloudfront", "lb-http", HTTP_PORT, prefix_list=cloudfront.id
        )
        self._allow("lb", "app", proxy_port)
        self._allow("app", "db", POSTGRES_PORT)
        self._allow("app", "cache", REDIS_PORT)
        if created and config.egress == "vpc-endpoints":
            exec_services = (EXECUTE_COMMAND_ENDPOINT_SERVICE,) if execute_command else ()
            self._private_aws_access(created, (*INTERFACE_ENDPOINT_SERVICES, *exec_services))
        else:
            self._rule(EGRESS, "app-to-internet", "app", HTTPS_PORT, cidr=ANYWHERE)

        self.load_balancer_security_group_id = self._groups["lb"].id
        self.load_balancer_security_group_ids = pulumi.Output.all(
            self._groups["lb"].id, self._groups["lb-http"].id
        )
        self.app_security_group_id = self._groups["app"].id
        self.database_security_group_id = self._groups["db"].id
        self.cache_security_group_id = self._groups["cache"].id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                "load_balancer_security_group_id": self.load_balancer_security_group_id,
                "load_balancer_security_group_ids": self.load_balancer_security_group_ids,
                "app_security_group_id": self.app_security_group_id,
                "database_security_group_id": self.database_security_group_id,
                "cache_security_group_id": self.cache_security_group_id,
            }
        )

    def _named(self, suffix: str) -> dict[str, str]:
        return {**self._tags, "Name": f"{self._name}-{suffix}"}

    def _create_vpc(self, config: NetworkConfig) -> _CreatedVpc:
        invoke = pulumi.InvokeOutputOptions(parent=self)
        layout = subnet_layout(config.cidr, config.availability_zones)
        vpc = aws.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=config.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints' private DNS needs both
            tags=self._named("vpc"),
            opts=self._child,
        )
        # Strip the default group's allow-all rules, so nothing that lands in it is reachable.
        aws.ec2.DefaultSecurityGroup(
            f"{self._name}-default", vpc_id=vpc.id, tags=self._named("default"), opts=self._child
        )
        zones = _zones(config.availability_zones, pulumi.InvokeOptions(parent=self))
        gateway = aws.ec2.InternetGateway(
            f"{self._name}-igw", vpc_id=vpc.id, tags=self._named("igw"), opts=self._child
        )
        public_routes = aws.ec2.RouteTable(
            f"{self._name}-public", vpc_id=vpc.id, tags=self._named("public"), opts=self._child
        )
        aws.ec2.Route(
            f"{self._name}-public-internet",
            route_table_id=public_routes.id,
            destination_cidr_block=ANYWHERE,
            gateway_id=gateway.id,
            opts=self._child,
        )
        public_subnets, private_subnets, private_route_tables = [], [], []
        for index, (public_cidr, private_cidr) in enumerate(
            zip(layout.public, layout.private, strict=True)
        ):
            public = self._subnet(f"public-{index}", vpc, public_cidr, zones[index])
            private = self._subnet(f"private-{index}", vpc, private_cidr, zones[index])
            aws.ec2.RouteTableAssociation(
                f"{self._name}-public-{index}",
                route_table_id=public_routes.id,
                subnet_id=public.id,
                opts=self._child,
            )
            routes = aws.ec2.RouteTable(
                f"{self._name}-private-{index}",
                vpc_id=vpc.id,
                tags=self._named(f"private-{index}"),
                opts=self._child,
            )
            aws.ec2.RouteTableAssociation(
                f"{self._name}-private-{index}",
                route_table_id=routes.id,
                subnet_id=private.id,
                opts=self._child,
            )
            public_subnets.append(public)
            private_subnets.append(private)
            private_route_tables.append(routes)
        self._nat(config, gateway, public_subnets, private_route_tables)
        region = aws.get_region_output(opts=invoke).region
        s3 = aws.ec2.VpcEndpoint(
            f"{self._name}-s3",
            vpc_id=vpc.id,
            service_name=pulumi.Output.concat("com.amazonaws.", region, ".s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in private_route_tables],
            tags=self._named("s3"),
            opts=self._child,
        )
        return _CreatedVpc(vpc, public_subnets, private_subnets, region, s3)

    def _subnet(self, suffix: str, vpc: aws.ec2.Vpc, cidr: str, zone: str) -> aws.ec2.Subnet:
        return aws.ec2.Subnet(
            f"{self._name}-{suffix}",
            vpc_id=vpc.id,
            cidr_block=cidr,
            availability_zone=zone,
            map_public_ip_on_launch=False,  # nothing here gets a public address by accident
            tags=self._named(suffix),
            opts=self._child,
        )

    def _nat(
        self,
        config: NetworkConfig,
        gateway: aws.ec2.InternetGateway,
        public_subnets: Sequence[aws.ec2.Subnet],
        private_route_tables: Sequence[aws.ec2.RouteTable],
    ) -> None:
        """One NAT gateway per zone keeps egress up when a zone fails; one shared gateway
        costs less; `vpc-endpoints` has none, so private subnets get no default route."""
        count = {"nat-per-az": len(public_subnets), "single-nat": 1, "vpc-endpoints": 0}
        nat_gateways = []
        for index, subnet in enumerate(public_subnets[: count[config.egress]]):
            address = aws.ec2.Eip(
                f"{self._name}-nat-{index}",
                domain="vpc",
                tags=self._named(f"nat-{index}"),
                opts=self._child,
            )
            nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{self._name}-nat-{index}",
                    allocation_id=address.id,
                    subnet_id=subnet.id,
                    tags=self._named(f"nat-{index}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )
        for index, table in enumerate(private_route_tables if nat_gateways else []):
            aws.ec2.Route(
                f"{self._name}-private-{index}-internet",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                nat_gateway_id=nat_gateways[index % len(nat_gateways)].id,
                opts=self._child,
            )

    def _private_aws_access(self, created: _CreatedVpc, services: tuple[str, ...]) -> None:
        """Interface endpoints in every private subnet, reachable from the app tasks only;
        the tasks' HTTPS egress goes to them and to S3's gateway, nowhere else."""
        self._group("endpoints", "VPC endpoints: from the app tasks")
        self._allow("app", "endpoints", HTTPS_PORT)
        for service in services:
            suffix = service.replace(".", "-")
            aws.ec2.VpcEndpoint(
                f"{self._name}-{suffix}",
                vpc_id=created.vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", created.region, f".{service}"),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in created.private_subnets],
                security_group_ids=[self._groups["endpoints"].id],
                tags=self._named(suffix),
                opts=self._child,
            )
        self._rule(EGRESS, "app-to-s3", "app", HTTPS_PORT, prefix_list=created.s3.prefix_list_id)

    def _group(self, tier: str, description: str) -> None:
        """No inline rules: the provider then removes AWS's default allow-all egress, and
        every rule is a separate resource."""
        self._groups[tier] = aws.ec2.SecurityGroup(
            f"{self._name}-{tier}",
            vpc_id=self.vpc_id,
            description=description,
            tags=self._named(tier),
            opts=self._child,
        )

    def _allow(self, source: str, target: str, port: int) -> None:
        """One link of the chain: egress from `source` and ingress to `target`, each naming
        the other tier's group."""
        self._rule(EGRESS, f"{source}-to-{target}", source, port, peer=target)
        self._rule(INGRESS, f"{target}-from-{source}", target, port, peer=source)

    def _rule(
        self,
        kind: RuleKind,
        rule: str,
        tier: str,
        port: int,
        *,
        peer: str | None = None,
        prefix_list: pulumi.Input[str] | None = None,
        cidr: str | None = None,
    ) -> None:
        kind(
            f"{self._name}-{rule}",
            security_group_id=self._groups[tier].id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=self._groups[peer].id if peer else None,
            prefix_list_id=prefix_list,
            cidr_ipv4=cidr,
            description=rule.replace("-", " "),
            tags=self._named(rule),
            opts=self._child,
        )


def _zones(wanted: int, opts: pulumi.InvokeOptions) -> list[str]:
    """The first `wanted` zones the account can use without opting in (no Local Zones); read
    while the program runs, so a region with too few fails before anything is created."""
    names = aws.get_availability_zones(
        state="available",
        filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
        opts=opts,
    ).names
    if len(names) < wanted:
        raise ConfigError(
            [
                f"django:network.availabilityZones = {wanted}: the region offers "
                f"{len(names)}; set it to {len(names)} or pick another region"
            ]
        )
    return list(names[:wanted])
