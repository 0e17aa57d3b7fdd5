"""The VPC (created here, or an existing one) and the security-group chain
CloudFront -> load balancer -> app tasks -> database and cache, with nothing else let in."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_aws as aws

from pulumi_django._mock_answers import mock_region, or_mock_answer, under_mocks
from pulumi_django.components.args import ComponentArgsError, arg, check_name, resource_ref
from pulumi_django.components.site import POSTGRES_PORT, REDIS_PORT
from pulumi_django.config import ConfigError
from pulumi_django.config.network import NetworkConfig
from pulumi_django.config.proxy import ProxyConfig

HTTP_PORT = 80
HTTPS_PORT = 443
ANYWHERE = "0.0.0.0/0"
INGRESS = aws.vpc.SecurityGroupIngressRule
EGRESS = aws.vpc.SecurityGroupEgressRule
Tier = Literal["lb", "app", "db", "cache"]
# One security group per tier, named f"{name}-{tier}". The load balancer has one: its only
# ingress rule, from CloudFront's VPC-origin group, is LoadBalancer's. (Releases whose ALB was
# internet-facing had a second, `lb-http`, because CloudFront's origin-facing prefix list
# counts as 55 of a group's 60 rules, one rule per group; that list is referenced no more.)
# The descriptions stay as deployed: a group's description cannot change, a new one would
# replace the group.
TIERS: dict[Tier, str] = {
    "lb": "Load balancer: HTTPS from CloudFront, to the app tasks",
    "app": "App tasks: from the load balancer, to the database, cache and AWS APIs",
    "db": "PostgreSQL: from the app tasks only",
    "cache": "Redis: from the app tasks only",
}
# The load balancer's second group before its ALB became internal: refused by name.
REMOVED_TIER = "lb-http"
# The scalar outputs naming the chain's groups, and the tiers each one needs.
GROUP_OUTPUTS: dict[str, tuple[Tier, ...]] = {
    "load_balancer_security_group_id": ("lb",),
    "load_balancer_security_group_ids": ("lb",),
    "app_security_group_id": ("app",),
    "database_security_group_id": ("db",),
    "cache_security_group_id": ("cache",),
}
# The VPC endpoints' group: not a tier one brings, it exists with the endpoints created here.
ENDPOINTS_GROUP = "endpoints"
RuleKind = type[aws.vpc.SecurityGroupIngressRule] | type[aws.vpc.SecurityGroupEgressRule]
SecurityGroupRule = aws.vpc.SecurityGroupIngressRule | aws.vpc.SecurityGroupEgressRule
# What Fargate tasks call without internet egress: ECR (manifests), CloudWatch Logs (awslogs)
# and Secrets Manager (task secrets). Image layers come from S3, through a free gateway endpoint.
INTERFACE_ENDPOINT_SERVICES = ("ecr.api", "ecr.dkr", "logs", "secretsmanager")
# ECS Exec's agent opens its session channel here; without it `aws ecs execute-command` hangs.
EXECUTE_COMMAND_ENDPOINT_SERVICE = "ssmmessages"
# What a unit test's mocks, answering `{}`, are taken to have said (see `_mock_answers`).
MOCK_VPC_CIDR = NetworkConfig().cidr


@dataclass(frozen=True)
class SubnetLayout:
    """CIDR blocks of the public and private subnets, one of each per availability zone."""

    public: list[str]
    private: list[str]


def subnet_layout(cidr: str, zones: int) -> SubnetLayout:
    """Private subnets (internal load balancer, tasks, database, cache) take a quarter of the
    VPC each; the last quarter splits into four small public subnets, which hold only the NAT
    gateways."""
    if not 1 <= zones <= 3:
        raise ValueError(f"a VPC spans 1 to 3 zones here, not {zones}")
    quarters = list(ipaddress.IPv4Network(cidr).subnets(prefixlen_diff=2))
    public = list(quarters[3].subnets(prefixlen_diff=2))
    return SubnetLayout(
        public=[str(block) for block in public[:zones]],
        private=[str(block) for block in quarters[:zones]],
    )


@dataclass(frozen=True, kw_only=True)
class NetworkArgs:
    """Which VPC, which tiers of the security-group chain, and which of their groups are yours."""

    config: NetworkConfig = arg(
        "The network section: a VPC to create (`cidr`, `availabilityZones`, `egress`), or "
        "`existing` to deploy into (only security groups and their rules are created then). "
        "Default: the section's defaults (a /16 over 2 AZs, a NAT gateway per AZ).",
        default_factory=NetworkConfig,
    )
    proxy_port: int = arg(
        "Port the app tasks take traffic on (the proxy's): the load balancer's group reaches "
        "the app group on it. Default: the proxy section's default.",
        default=ProxyConfig.model_fields["port"].default,
    )
    execute_command: bool = arg(
        "Whether the tasks run ECS Exec: with `egress: vpc-endpoints`, adds the `ssmmessages` "
        "endpoint its agent needs (with a NAT gateway it goes over the internet). Default: off.",
        default=False,
    )
    tiers: Collection[Tier] = arg(
        "The tiers of the chain your components need, among `lb` (the load balancer's "
        "group), `app`, `db`, `cache`. A tier left out gets no group and no rule; a link of "
        "the chain gets its rules when both its tiers are here. Default: all four, what a "
        'whole site needs; e.g. `("app", "db", "cache")` for a database and a cache only.',
        default=tuple(TIERS),
    )
    security_groups: Mapping[Tier, aws.ec2.SecurityGroup | pulumi.Input[str]] = arg(
        "Groups you bring, by tier (each a `SecurityGroup` or its id; the tier must be in "
        "`tiers`): not created here, and the chain's rules are still created on them and "
        "against them, as separate rule resources (so the group must not declare inline "
        "rules, which would remove them); a load balancer's group of your own must admit "
        "CloudFront's VPC-origin group itself. Default: none, every tier's group is created.",
        default_factory=dict,
    )
    flow_logs_destination: pulumi.Input[str] | None = arg(
        "S3 ARN (bucket, optionally `/prefix`) the VPC's flow logs are delivered to, accepted "
        "and rejected traffic alike (LogBucket's `flow_logs_destination`, whose policy admits "
        "the delivery); works for a created and an existing VPC. Default: None, no flow logs.",
        default=None,
    )
    protect: bool = arg(
        "Pulumi's `protect` on the VPC created here, which the database and the cache sit in: "
        "a change that replaces it (a new `cidr`) or `pulumi destroy` stops with an error until "
        "a `pulumi up` turned this off (`django:protect`). Default: True.",
        default=True,
    )

    def __post_init__(self) -> None:
        for field, tiers in (("tiers", self.tiers), ("security_groups", self.security_groups)):
            if REMOVED_TIER in tiers:
                raise ComponentArgsError(
                    f"NetworkArgs.{field}: {REMOVED_TIER!r} is no tier any more: the internal "
                    "load balancer has one group, 'lb'; leave 'lb-http' out"
                )
        for tier in self.tiers:
            if tier not in TIERS:
                raise ComponentArgsError(
                    f"NetworkArgs.tiers: {tier!r} is no tier; the tiers are {', '.join(TIERS)}"
                )
        for tier in self.security_groups:
            if tier not in self.tiers:
                raise ComponentArgsError(
                    f"NetworkArgs.security_groups[{tier!r}]: {tier!r} is not in tiers "
                    f"({', '.join(self.tiers)}); add it there or leave its group out"
                )


class Network(pulumi.ComponentResource):
    """Public subnets for the NAT gateways, private ones for the internal load balancer, the
    tasks and data, and one security group per tier whose rules reference the neighbouring
    groups, never CIDRs.

    The load balancer's group (`lb`; `load_balancer_security_group_ids` is the list of it)
    gets no ingress here: the only one, from CloudFront's VPC-origin group, is LoadBalancer's
    (it exists once the VPC origin does). `lb` reaches the app tasks.

    Only what your components need is created. `args.tiers` names the tiers that exist; of
    those, a group you bring in `args.security_groups` is used as it is, and every other one
    is created. Each link of the chain between two existing tiers gets its egress and its
    ingress rule whoever owns the groups, so a brought app group still reaches a database
    group created here, and the other way round. In an existing VPC (`config.existing`) with
    only a database and a cache, `tiers=("app", "db", "cache")` creates those three groups
    (or two, with `security_groups={"app": ...}`) and their rules, and nothing for a load
    balancer. `security_group_ids` maps each tier to its group's id, created or brought; a
    scalar output of a tier left out (`load_balancer_security_group_id`, ...) raises an error
    naming it rather than answering an id that does not exist.

    Children: `vpc`, `public_subnets`, `private_subnets` and the rest of the VPC are None or
    empty in an existing VPC; `security_groups` holds the groups created here (by tier, plus
    `endpoints` with `egress: vpc-endpoints`), `security_group_rules` every rule by name;
    `flow_log`, the VPC's flow log when `args.flow_logs_destination` is given."""

    vpc_id: pulumi.Output[str]
    vpc_cidr: pulumi.Output[str]
    public_subnet_ids: pulumi.Output[list[str]]
    private_subnet_ids: pulumi.Output[list[str]]
    security_group_ids: dict[str, pulumi.Output[str]]
    vpc: aws.ec2.Vpc | None
    default_security_group: aws.ec2.DefaultSecurityGroup | None
    internet_gateway: aws.ec2.InternetGateway | None
    public_route_table: aws.ec2.RouteTable | None
    private_route_tables: list[aws.ec2.RouteTable]
    public_subnets: list[aws.ec2.Subnet]
    private_subnets: list[aws.ec2.Subnet]
    route_table_associations: list[aws.ec2.RouteTableAssociation]
    routes: list[aws.ec2.Route]
    nat_addresses: list[aws.ec2.Eip]
    nat_gateways: list[aws.ec2.NatGateway]
    vpc_endpoints: dict[str, aws.ec2.VpcEndpoint]
    security_groups: dict[str, aws.ec2.SecurityGroup]
    security_group_rules: dict[str, SecurityGroupRule]
    flow_log: aws.ec2.FlowLog | None

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("Network", name)
        super().__init__("pulumi-django:network:Network", name, None, opts)
        self._name = name
        self._child = pulumi.ResourceOptions(parent=self)
        self._vpc_protected = args.protect
        config = args.config
        self.vpc = self.default_security_group = self.internet_gateway = None
        self.public_route_table = None
        self.private_route_tables, self.public_subnets, self.private_subnets = [], [], []
        self.route_table_associations, self.routes = [], []
        self.nat_addresses, self.nat_gateways = [], []
        self.vpc_endpoints, self.security_groups, self.security_group_rules = {}, {}, {}
        self.security_group_ids = {}

        invoke = pulumi.InvokeOutputOptions(parent=self)
        if config.existing:
            existing = config.existing
            self.vpc_id = pulumi.Output.from_input(existing.vpc_id)
            self.vpc_cidr = or_mock_answer(
                aws.ec2.get_vpc_output(id=existing.vpc_id, opts=invoke).cidr_block, MOCK_VPC_CIDR
            )
            self.public_subnet_ids = pulumi.Output.from_input(existing.public_subnet_ids)
            self.private_subnet_ids = pulumi.Output.from_input(existing.private_subnet_ids)
        else:
            vpc = self._create_vpc(config)
            self.vpc_id = vpc.id
            self.vpc_cidr = vpc.cidr_block
            self.public_subnet_ids = pulumi.Output.all(*[s.id for s in self.public_subnets])
            self.private_subnet_ids = pulumi.Output.all(*[s.id for s in self.private_subnets])

        self.flow_log = None
        if args.flow_logs_destination is not None:
            # Every accepted and rejected flow, to S3 (vended logs priced for S3 delivery, no
            # CloudWatch Logs ingestion, no IAM role), in AWS's default format and 10-minute
            # aggregation; the bucket's lifecycle is the retention.
            self.flow_log = aws.ec2.FlowLog(
                f"{name}-flow-logs",
                vpc_id=self.vpc_id,
                traffic_type="ALL",
                log_destination_type="s3",
                log_destination=args.flow_logs_destination,
                tags=self._named("flow-logs"),
                opts=self._child,
            )

        for tier, purpose in TIERS.items():
            brought = args.security_groups.get(tier)
            if brought is not None:
                self.security_group_ids[tier] = resource_ref(brought, "id")
            elif tier in args.tiers:
                self._group(tier, purpose)
        # The load balancer's groups get no ingress here: the ALB is internal, and its one way
        # in, from CloudFront's VPC-origin group (which exists only once the VPC origin does),
        # is LoadBalancer's rule on the `lb` group created here (`cloudfront_security_group_id`).
        self._allow("lb", "app", args.proxy_port)
        self._allow("app", "db", POSTGRES_PORT)
        self._allow("app", "cache", REDIS_PORT)
        if self.vpc and config.egress == "vpc-endpoints":
            exec_services = (EXECUTE_COMMAND_ENDPOINT_SERVICE,) if args.execute_command else ()
            self._private_aws_access(self.vpc, (*INTERFACE_ENDPOINT_SERVICES, *exec_services))
        else:
            self._rule(EGRESS, "app-to-internet", "app", HTTPS_PORT, cidr=ANYWHERE)

        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "vpc_cidr": self.vpc_cidr,
                "public_subnet_ids": self.public_subnet_ids,
                "private_subnet_ids": self.private_subnet_ids,
                **{
                    output: getattr(self, output)
                    for output, needs in GROUP_OUTPUTS.items()
                    if set(needs) <= set(self.security_group_ids)
                },
            }
        )

    @property
    def load_balancer_security_group_id(self) -> pulumi.Output[str]:
        """The load balancer's HTTPS group (`lb`)."""
        return self._tier_group_id("lb")

    @property
    def load_balancer_security_group_ids(self) -> pulumi.Output[list[str]]:
        """The load balancer's group (`lb`) as a list, its `security_groups`."""
        return pulumi.Output.all(self._tier_group_id("lb"))

    @property
    def app_security_group_id(self) -> pulumi.Output[str]:
        return self._tier_group_id("app")

    @property
    def database_security_group_id(self) -> pulumi.Output[str]:
        return self._tier_group_id("db")

    @property
    def cache_security_group_id(self) -> pulumi.Output[str]:
        return self._tier_group_id("cache")

    def _tier_group_id(self, tier: Tier) -> pulumi.Output[str]:
        if tier not in self.security_group_ids:
            raise ComponentArgsError(
                f"Network {self._name!r} has no {tier!r} tier: add it to NetworkArgs.tiers"
            )
        return self.security_group_ids[tier]

    def _named(self, suffix: str) -> dict[str, str]:
        """The `Name` tag the console shows; every other tag comes from the provider."""
        return {"Name": f"{self._name}-{suffix}"}

    def _create_vpc(self, config: NetworkConfig) -> aws.ec2.Vpc:
        layout = subnet_layout(config.cidr, config.availability_zones)
        vpc = self.vpc = aws.ec2.Vpc(
            f"{self._name}-vpc",
            cidr_block=config.cidr,
            enable_dns_support=True,
            enable_dns_hostnames=True,  # interface endpoints' private DNS needs both
            tags=self._named("vpc"),
            opts=pulumi.ResourceOptions(parent=self, protect=self._vpc_protected),
        )
        # Strip the default group's allow-all rules, so nothing that lands in it is reachable.
        self.default_security_group = aws.ec2.DefaultSecurityGroup(
            f"{self._name}-default", vpc_id=vpc.id, tags=self._named("default"), opts=self._child
        )
        zones = _zones(config.availability_zones, pulumi.InvokeOptions(parent=self))
        gateway = self.internet_gateway = aws.ec2.InternetGateway(
            f"{self._name}-igw", vpc_id=vpc.id, tags=self._named("igw"), opts=self._child
        )
        public_routes = self.public_route_table = aws.ec2.RouteTable(
            f"{self._name}-public", vpc_id=vpc.id, tags=self._named("public"), opts=self._child
        )
        self._route("public-internet", public_routes, gateway_id=gateway.id)
        for index, (public_cidr, private_cidr) in enumerate(
            zip(layout.public, layout.private, strict=True)
        ):
            public = self._subnet(f"public-{index}", vpc, public_cidr, zones[index])
            private = self._subnet(f"private-{index}", vpc, private_cidr, zones[index])
            self._associate(f"public-{index}", public_routes, public)
            routes = aws.ec2.RouteTable(
                f"{self._name}-private-{index}",
                vpc_id=vpc.id,
                tags=self._named(f"private-{index}"),
                opts=self._child,
            )
            self._associate(f"private-{index}", routes, private)
            self.public_subnets.append(public)
            self.private_subnets.append(private)
            self.private_route_tables.append(routes)
        self._nat(config, gateway)
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        self._region = or_mock_answer(region, mock_region())
        self.vpc_endpoints["s3"] = aws.ec2.VpcEndpoint(
            f"{self._name}-s3",
            vpc_id=vpc.id,
            service_name=pulumi.Output.concat("com.amazonaws.", self._region, ".s3"),
            vpc_endpoint_type="Gateway",
            route_table_ids=[table.id for table in self.private_route_tables],
            tags=self._named("s3"),
            opts=self._child,
        )
        return vpc

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

    def _associate(self, suffix: str, table: aws.ec2.RouteTable, subnet: aws.ec2.Subnet) -> None:
        self.route_table_associations.append(
            aws.ec2.RouteTableAssociation(
                f"{self._name}-{suffix}",
                route_table_id=table.id,
                subnet_id=subnet.id,
                opts=self._child,
            )
        )

    def _route(
        self,
        suffix: str,
        table: aws.ec2.RouteTable,
        *,
        gateway_id: pulumi.Input[str] | None = None,
        nat_gateway_id: pulumi.Input[str] | None = None,
    ) -> None:
        """The default route (to anywhere) of one route table."""
        self.routes.append(
            aws.ec2.Route(
                f"{self._name}-{suffix}",
                route_table_id=table.id,
                destination_cidr_block=ANYWHERE,
                gateway_id=gateway_id,
                nat_gateway_id=nat_gateway_id,
                opts=self._child,
            )
        )

    def _nat(self, config: NetworkConfig, gateway: aws.ec2.InternetGateway) -> None:
        """One NAT gateway per zone keeps egress up when a zone fails; one shared gateway
        costs less; `vpc-endpoints` has none, so private subnets get no default route."""
        count = {"nat-per-az": len(self.public_subnets), "single-nat": 1, "vpc-endpoints": 0}
        for index, subnet in enumerate(self.public_subnets[: count[config.egress]]):
            address = aws.ec2.Eip(
                f"{self._name}-nat-{index}",
                domain="vpc",
                tags=self._named(f"nat-{index}"),
                opts=self._child,
            )
            self.nat_addresses.append(address)
            self.nat_gateways.append(
                aws.ec2.NatGateway(
                    f"{self._name}-nat-{index}",
                    allocation_id=address.id,
                    subnet_id=subnet.id,
                    tags=self._named(f"nat-{index}"),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[gateway]),
                )
            )
        nat_gateways = self.nat_gateways
        for index, table in enumerate(self.private_route_tables if nat_gateways else []):
            nat = nat_gateways[index % len(nat_gateways)]
            self._route(f"private-{index}-internet", table, nat_gateway_id=nat.id)

    def _private_aws_access(self, vpc: aws.ec2.Vpc, services: tuple[str, ...]) -> None:
        """Interface endpoints in every private subnet, reachable from the app tasks only;
        the tasks' HTTPS egress goes to them and to S3's gateway, nowhere else."""
        self._group(ENDPOINTS_GROUP, "VPC endpoints: from the app tasks")
        self._allow("app", ENDPOINTS_GROUP, HTTPS_PORT)
        for service in services:
            suffix = service.replace(".", "-")
            self.vpc_endpoints[service] = aws.ec2.VpcEndpoint(
                f"{self._name}-{suffix}",
                vpc_id=vpc.id,
                service_name=pulumi.Output.concat("com.amazonaws.", self._region, f".{service}"),
                vpc_endpoint_type="Interface",
                private_dns_enabled=True,
                subnet_ids=[subnet.id for subnet in self.private_subnets],
                security_group_ids=[self.security_group_ids[ENDPOINTS_GROUP]],
                tags=self._named(suffix),
                opts=self._child,
            )
        s3_prefix_list = self.vpc_endpoints["s3"].prefix_list_id
        self._rule(EGRESS, "app-to-s3", "app", HTTPS_PORT, prefix_list=s3_prefix_list)

    def _group(self, tier: str, description: str) -> None:
        """No inline rules: the provider then removes AWS's default allow-all egress, and
        every rule is a separate resource."""
        group = aws.ec2.SecurityGroup(
            f"{self._name}-{tier}",
            vpc_id=self.vpc_id,
            description=description,
            tags=self._named(tier),
            opts=self._child,
        )
        self.security_groups[tier] = group
        self.security_group_ids[tier] = group.id

    def _allow(self, source: str, target: str, port: int) -> None:
        """One link of the chain: egress from `source` and ingress to `target`, each naming
        the other tier's group; no link when either tier is left out."""
        if source in self.security_group_ids and target in self.security_group_ids:
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
        """A rule of `tier`'s group, unless that tier is left out."""
        if tier not in self.security_group_ids:
            return
        self.security_group_rules[rule] = kind(
            f"{self._name}-{rule}",
            security_group_id=self.security_group_ids[tier],
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            referenced_security_group_id=self.security_group_ids[peer] if peer else None,
            prefix_list_id=prefix_list,
            cidr_ipv4=cidr,
            description=rule.replace("-", " "),
            tags=self._named(rule),
            opts=self._child,
        )


def _zones(wanted: int, opts: pulumi.InvokeOptions) -> list[str]:
    """The first `wanted` zones the account can use without opting in (no Local Zones); read
    while the program runs, so a region with too few fails before anything is created. A unit
    test's mocks that answer nothing get the region's first zones (`us-east-1a`, ...)."""
    names = (
        aws.get_availability_zones(
            state="available",
            filters=[{"name": "opt-in-status", "values": ["opt-in-not-required"]}],
            opts=opts,
        ).names
        or []
    )
    if not names and under_mocks():
        names = [f"{mock_region()}{letter}" for letter in "abc"]
    if len(names) < wanted:
        raise ConfigError(
            [
                f"django:network.availabilityZones = {wanted}: the region offers "
                f"{len(names)}; set it to {len(names)} or pick another region"
            ]
        )
    return list(names[:wanted])
