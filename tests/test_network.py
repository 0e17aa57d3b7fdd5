"""The network as `pulumi up` registers it: subnets per AZ, the chosen egress, and a
security-group chain CloudFront -> load balancer -> app -> database and cache."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from shipped_sites import record_site

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.cache import Cache, CacheArgs
from pulumi_django.components.aws.database import Database, DatabaseArgs
from pulumi_django.components.aws.load_balancer import (
    MOCK_VPC_ORIGIN_GROUP_ID,
    VPC_ORIGIN_SERVICE_GROUP,
    LoadBalancer,
    LoadBalancerArgs,
)
from pulumi_django.components.aws.network import (
    ANYWHERE,
    EXECUTE_COMMAND_ENDPOINT_SERVICE,
    INTERFACE_ENDPOINT_SERVICES,
    Network,
    NetworkArgs,
    subnet_layout,
)
from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.config.network import ExistingNetwork, NetworkConfig
from pulumi_django.recorder import MOCK_INVOKES, RecordedResource, Recording, record

ROOT = Path(__file__).resolve().parent.parent
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
ROUTE = "aws:ec2/route:Route"
ROUTE_TABLE = "aws:ec2/routeTable:RouteTable"
ASSOCIATION = "aws:ec2/routeTableAssociation:RouteTableAssociation"
NAT = "aws:ec2/natGateway:NatGateway"
EIP = "aws:ec2/eip:Eip"
ENDPOINT = "aws:ec2/vpcEndpoint:VpcEndpoint"
GROUP = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_GROUP = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
PREFIX_LIST_INVOKE = "aws:ec2/getManagedPrefixList:getManagedPrefixList"
SECURITY_GROUP_INVOKE = "aws:ec2/getSecurityGroup:getSecurityGroup"
ZONES_INVOKE = "aws:index/getAvailabilityZones:getAvailabilityZones"
PROXY_PORT = 8080
LB_CERTIFICATE = (
    "arn:aws:acm:us-east-1:123456789012:certificate/0f0f0f0f-1111-2222-3333-444455556666"
)
TIERS = ("lb", "app", "db", "cache")

DEV = NetworkConfig(egress="single-nat")
PROD = NetworkConfig()
ENDPOINTS_ONLY = NetworkConfig(egress="vpc-endpoints", availability_zones=3)
EXISTING = NetworkConfig(
    existing=ExistingNetwork(
        vpc_id="vpc-0123456789abcdef0",
        public_subnet_ids=["subnet-pub1", "subnet-pub2"],
        private_subnet_ids=["subnet-priv1", "subnet-priv2", "subnet-priv3"],
    )
)
EVERY_LAYOUT = pytest.mark.parametrize(
    "config", [DEV, PROD, ENDPOINTS_ONLY, EXISTING], ids=["dev", "prod", "endpoints", "existing"]
)


SCALAR_OUTPUTS = (
    "vpc_id",
    "vpc_cidr",
    "public_subnet_ids",
    "private_subnet_ids",
    "load_balancer_security_group_id",
    "load_balancer_security_group_ids",
    "app_security_group_id",
    "database_security_group_id",
    "cache_security_group_id",
)


def scalar_outputs(network: Network) -> dict[str, Any]:
    return {output: getattr(network, output) for output in SCALAR_OUTPUTS}


def record_network(
    config: NetworkConfig,
    exports: Callable[[Network], Mapping[str, Any]] = scalar_outputs,
    **args: Any,
) -> Recording:
    """`args` are NetworkArgs' other fields (the proxy port defaults to PROXY_PORT); the
    program exports what `exports` reads off the component."""

    def program() -> None:
        network = Network("web", NetworkArgs(config=config, **{"proxy_port": PROXY_PORT, **args}))
        for output, value in exports(network).items():
            pulumi.export(output, value)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


# Recordings of `record_network(config)` by config, for the tests that only read them.
_NETWORKS: dict[str, Recording] = {}


def network_of(config: NetworkConfig) -> Recording:
    """`record_network(config)` (its scalar outputs exported, no other argument), recorded once
    per process. Not for a test that changes what the mocks answer."""
    key = repr(config)
    if key not in _NETWORKS:
        _NETWORKS[key] = record_network(config)
    return _NETWORKS[key]


def record_network_and_load_balancer(
    config: NetworkConfig, *, certificate_arn: str | None = None, **args: Any
) -> Recording:
    """The network and the load balancer wired as AwsSite wires them: the internal ALB in the
    private subnets and the load balancer groups, CloudFront's VPC origin in front of it, and
    the one ingress rule of the ALB (LoadBalancer's) on the `lb` group when it is created here.
    `args` are NetworkArgs' other fields; the network's scalar outputs are exported."""

    def program() -> None:
        network = Network("web", NetworkArgs(config=config, proxy_port=PROXY_PORT, **args))
        for output, value in scalar_outputs(network).items():
            pulumi.export(output, value)
        LoadBalancer(
            "web",
            LoadBalancerArgs(
                origin_verify_secret="origin-secret",
                proxy_port=PROXY_PORT,
                certificate_arn=certificate_arn,
                vpc_id=network.vpc_id,
                subnet_ids=network.private_subnet_ids,
                security_group_ids=network.load_balancer_security_group_ids,
                cloudfront_security_group_id=(
                    network.security_groups["lb"].id if "lb" in network.security_groups else None
                ),
                after=[gateway] if (gateway := network.internet_gateway) else [],
            ),
        )

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


def by_id(recording: Recording, type_: str) -> dict[str, RecordedResource]:
    """Resources keyed by the id the mocks give them (`<name>-id`), which inputs refer to."""
    return {f"{resource.name}-id": resource for resource in recording.find(type_)}


def group_tiers(recording: Recording) -> dict[str, str]:
    """Security group id -> tier (`lb`, `app`, ...)."""
    return {gid: group.name.removeprefix("web-") for gid, group in by_id(recording, GROUP).items()}


def rule_edges(recording: Recording, type_: str) -> set[tuple[str, str, int]]:
    """(group tier, peer tier or other group or prefix list or CIDR, port) of every rule of one
    direction; CloudFront's VPC-origin group (the mocks' placeholder id) reads `vpc-origin`."""
    tiers = {**group_tiers(recording), MOCK_VPC_ORIGIN_GROUP_ID: "vpc-origin"}
    edges = set()
    for rule in recording.find(type_):
        inputs = rule.inputs
        peer = inputs.get("referencedSecurityGroupId")
        other = tiers[peer] if peer else str(inputs.get("prefixListId") or inputs["cidrIpv4"])
        assert inputs["fromPort"] == inputs["toPort"], rule.name
        edges.add((tiers[inputs["securityGroupId"]], other, int(inputs["fromPort"])))
    return edges


def zone_of_route_table(recording: Recording) -> dict[str, str]:
    subnets = by_id(recording, SUBNET)
    return {
        association.inputs["routeTableId"]: subnets[association.inputs["subnetId"]].inputs[
            "availabilityZone"
        ]
        for association in recording.find(ASSOCIATION)
    }


def default_routes(recording: Recording, via: str) -> list[RecordedResource]:
    """Routes to 0.0.0.0/0 through `via` (`gatewayId` or `natGatewayId`)."""
    return [
        route
        for route in recording.find(ROUTE)
        if route.inputs.get("destinationCidrBlock") == "0.0.0.0/0" and via in route.inputs
    ]


# --- subnet layout -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", range(16, 23))
@pytest.mark.parametrize("zones", [2, 3])
def test_subnets_fit_in_the_vpc_without_overlap(prefix: int, zones: int) -> None:
    vpc = ipaddress.IPv4Network(f"10.20.0.0/{prefix}")
    layout = subnet_layout(str(vpc), zones)
    blocks = [ipaddress.IPv4Network(cidr) for cidr in layout.public + layout.private]
    assert len(layout.public) == len(layout.private) == zones
    assert all(block.subnet_of(vpc) for block in blocks)
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    # An ALB needs a /27 or larger with 8 free addresses in each of its subnets.
    assert all(ipaddress.IPv4Network(cidr).prefixlen <= 27 for cidr in layout.public)
    # Tasks, database and cache live in the private subnets: they get the room.
    assert min(ipaddress.IPv4Network(c).num_addresses for c in layout.private) > max(
        ipaddress.IPv4Network(c).num_addresses for c in layout.public
    )


def test_subnet_layout_of_a_16() -> None:
    layout = subnet_layout("10.0.0.0/16", 3)
    assert layout.private == ["10.0.0.0/18", "10.0.64.0/18", "10.0.128.0/18"]
    assert layout.public == ["10.0.192.0/20", "10.0.208.0/20", "10.0.224.0/20"]


def test_subnet_layout_refuses_more_zones_than_quarters() -> None:
    with pytest.raises(ValueError, match="1 to 3 zones"):
        subnet_layout("10.0.0.0/16", 4)


# --- the VPC -------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [DEV, PROD, ENDPOINTS_ONLY], ids=["dev", "prod", "endpoints"])
def test_vpc_spans_the_configured_zones_with_public_and_private_subnets(
    config: NetworkConfig,
) -> None:
    recording = network_of(config)
    vpc = recording.one(VPC).inputs
    assert vpc["cidrBlock"] == config.cidr
    assert vpc["enableDnsSupport"] is True and vpc["enableDnsHostnames"] is True
    subnets = recording.find(SUBNET)
    layout = subnet_layout(config.cidr, config.availability_zones)
    public = [s for s in subnets if s.name.startswith("web-public-")]
    private = [s for s in subnets if s.name.startswith("web-private-")]
    assert sorted(s.inputs["cidrBlock"] for s in public) == sorted(layout.public)
    assert sorted(s.inputs["cidrBlock"] for s in private) == sorted(layout.private)
    for tier in (public, private):
        zones = [s.inputs["availabilityZone"] for s in tier]
        assert len(set(zones)) == config.availability_zones
    assert all(s.inputs["mapPublicIpOnLaunch"] is False for s in subnets)
    assert recording.outputs["vpc_cidr"] == config.cidr
    assert sorted(recording.outputs["public_subnet_ids"]) == sorted(f"{s.name}-id" for s in public)
    assert sorted(recording.outputs["private_subnet_ids"]) == sorted(
        f"{s.name}-id" for s in private
    )


def test_only_public_subnets_route_to_the_internet_gateway() -> None:
    recording = network_of(PROD)
    [internet] = default_routes(recording, "gatewayId")
    public_ids = {f"{s.name}-id" for s in recording.find(SUBNET, "web-public-.*")}
    associated = {
        a.inputs["subnetId"]
        for a in recording.find(ASSOCIATION)
        if a.inputs["routeTableId"] == internet.inputs["routeTableId"]
    }
    assert associated == public_ids


def test_default_security_group_is_stripped_of_its_allow_all_rules() -> None:
    stripped = network_of(DEV).one(DEFAULT_GROUP).inputs
    assert stripped["vpcId"] == "web-vpc-id"
    assert not stripped.get("ingress") and not stripped.get("egress")


def test_prod_has_a_nat_gateway_per_zone_and_each_zone_uses_its_own() -> None:
    recording = network_of(PROD)
    nats = by_id(recording, NAT)
    subnets = by_id(recording, SUBNET)
    assert len(nats) == len(recording.find(EIP)) == PROD.availability_zones
    zone_of_nat = {
        nat_id: subnets[nat.inputs["subnetId"]].inputs["availabilityZone"]
        for nat_id, nat in nats.items()
    }
    assert all(subnets[n.inputs["subnetId"]].name.startswith("web-public-") for n in nats.values())
    routes = default_routes(recording, "natGatewayId")
    assert len(routes) == PROD.availability_zones
    zone_of_table = zone_of_route_table(recording)
    for route in routes:
        assert (
            zone_of_nat[route.inputs["natGatewayId"]] == zone_of_table[route.inputs["routeTableId"]]
        )


def test_dev_shares_one_nat_gateway() -> None:
    recording = network_of(DEV)
    [nat] = recording.find(NAT)
    assert len(recording.find(EIP)) == 1
    routes = default_routes(recording, "natGatewayId")
    assert len(routes) == DEV.availability_zones
    assert {route.inputs["natGatewayId"] for route in routes} == {f"{nat.name}-id"}


def test_nat_gateway_waits_for_the_internet_gateway() -> None:
    recording = network_of(DEV)
    assert recording.depends_on(
        recording.one(NAT).urn, recording.one("aws:ec2/internetGateway:InternetGateway").urn
    )


def test_vpc_endpoints_replace_nat_for_what_fargate_tasks_call() -> None:
    recording = network_of(ENDPOINTS_ONLY)
    assert not recording.find(NAT) and not recording.find(EIP)
    assert not default_routes(recording, "natGatewayId")
    interface = [e for e in recording.find(ENDPOINT) if e.inputs["vpcEndpointType"] == "Interface"]
    assert sorted(e.inputs["serviceName"] for e in interface) == sorted(
        f"com.amazonaws.us-east-1.{service}"
        for service in ("ecr.api", "ecr.dkr", "logs", "secretsmanager")
    )
    private_ids = sorted(recording.outputs["private_subnet_ids"])
    for endpoint in interface:
        assert endpoint.inputs["privateDnsEnabled"] is True
        assert sorted(endpoint.inputs["subnetIds"]) == private_ids
        assert endpoint.inputs["securityGroupIds"] == ["web-endpoints-id"]
    assert len(INTERFACE_ENDPOINT_SERVICES) == len(interface)


def interface_services(recording: Recording) -> set[str]:
    return {
        e.inputs["serviceName"].rsplit(".", 1)[-1]
        for e in recording.find(ENDPOINT)
        if e.inputs["vpcEndpointType"] == "Interface"
    }


def test_ecs_exec_gets_its_endpoint_only_when_enabled_without_nat() -> None:
    assert EXECUTE_COMMAND_ENDPOINT_SERVICE not in interface_services(network_of(ENDPOINTS_ONLY))
    with_exec = record_network(ENDPOINTS_ONLY, execute_command=True)
    assert EXECUTE_COMMAND_ENDPOINT_SERVICE in interface_services(with_exec)
    [endpoint] = with_exec.find(ENDPOINT, "web-ssmmessages")
    assert endpoint.inputs["securityGroupIds"] == ["web-endpoints-id"]
    # With a NAT gateway the agent reaches SSM over the internet: no endpoint to pay for.
    assert not interface_services(record_network(DEV, execute_command=True))


def test_the_aws_stack_passes_ecs_exec_on_to_the_network() -> None:
    config = parse_stack_config(
        {
            "target": "aws",
            "app": json.dumps({"context": str(ROOT / "examples" / "bigfoot")}),
            "network": json.dumps({"egress": "vpc-endpoints"}),
            "fleet": json.dumps({"enableExecuteCommand": True}),
        },
        set(),
    )
    recording = record_site(config, "exec")
    assert EXECUTE_COMMAND_ENDPOINT_SERVICE in interface_services(recording)


@pytest.mark.parametrize("config", [DEV, PROD, ENDPOINTS_ONLY], ids=["dev", "prod", "endpoints"])
def test_s3_gateway_endpoint_serves_every_private_route_table(config: NetworkConfig) -> None:
    recording = network_of(config)
    [gateway] = [e for e in recording.find(ENDPOINT) if e.inputs["vpcEndpointType"] == "Gateway"]
    assert gateway.inputs["serviceName"] == "com.amazonaws.us-east-1.s3"
    private_tables = {f"{t.name}-id" for t in recording.find(ROUTE_TABLE, "web-private-.*")}
    assert set(gateway.inputs["routeTableIds"]) == private_tables
    assert len(private_tables) == config.availability_zones


def test_existing_vpc_gets_security_groups_and_nothing_else() -> None:
    recording = network_of(EXISTING)
    assert EXISTING.existing is not None
    for type_ in (VPC, SUBNET, ROUTE, ROUTE_TABLE, NAT, EIP, ENDPOINT, DEFAULT_GROUP):
        assert not recording.find(type_), type_
    assert {g.inputs["vpcId"] for g in recording.find(GROUP)} == {EXISTING.existing.vpc_id}
    outputs = recording.outputs
    assert outputs["vpc_id"] == EXISTING.existing.vpc_id
    assert outputs["vpc_cidr"] == "172.31.0.0/16"  # what the mocked lookup of the VPC says
    assert outputs["public_subnet_ids"] == EXISTING.existing.public_subnet_ids
    assert outputs["private_subnet_ids"] == EXISTING.existing.private_subnet_ids


def test_too_few_zones_in_the_region_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        MOCK_INVOKES, ZONES_INVOKE, lambda _a, region: {"names": [f"{region}a", f"{region}b"]}
    )
    with pytest.raises(ConfigError) as raised:
        record_network(NetworkConfig(availability_zones=3))
    assert raised.value.problems == [
        "django:network.availabilityZones = 3: the region offers 2; set it to 2 or pick another "
        "region"
    ]


def test_zones_exclude_local_zones(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[Mapping[str, Any]] = []
    mocked = MOCK_INVOKES[ZONES_INVOKE]

    def answer(args: Mapping[str, Any], region: str) -> dict[str, Any]:
        asked.append(args)
        return mocked(args, region)

    monkeypatch.setitem(MOCK_INVOKES, ZONES_INVOKE, answer)
    record_network(DEV)
    [request] = asked
    assert request["state"] == "available"
    assert request["filters"] == [{"name": "opt-in-status", "values": ["opt-in-not-required"]}]


# --- the security-group chain --------------------------------------------------------------


@EVERY_LAYOUT
def test_one_group_per_tier_and_no_inline_rules(config: NetworkConfig) -> None:
    recording = network_of(config)
    tiers = set(group_tiers(recording).values())
    expected = set(TIERS) | (
        {"endpoints"} if config.egress == "vpc-endpoints" and not config.existing else set()
    )
    assert tiers == expected
    for group in recording.find(GROUP):
        # Inline rules would fight the separate rule resources and keep AWS's allow-all egress.
        assert "ingress" not in group.inputs and "egress" not in group.inputs, group.name


@EVERY_LAYOUT
@pytest.mark.parametrize(("certificate_arn", "port"), [(None, 80), (LB_CERTIFICATE, 443)])
def test_ingress_is_the_chain_and_cloudfront_to_the_load_balancer_only(
    config: NetworkConfig, certificate_arn: str | None, port: int
) -> None:
    """The ALB is internal: its groups admit CloudFront's VPC-origin group, on the port the VPC
    origin speaks (443 with a certificate, else 80), and nothing else: no CIDR, no prefix list."""
    recording = record_network_and_load_balancer(config, certificate_arn=certificate_arn)
    edges = rule_edges(recording, INGRESS)
    expected = {
        ("lb", "vpc-origin", port),
        ("app", "lb", PROXY_PORT),
        ("db", "app", 5432),
        ("cache", "app", 6379),
    }
    if config.egress == "vpc-endpoints" and not config.existing:
        expected.add(("endpoints", "app", 443))
    assert edges == expected


@EVERY_LAYOUT
def test_no_ingress_from_any_cidr(config: NetworkConfig) -> None:
    for rule in network_of(config).find(INGRESS):
        assert "cidrIpv4" not in rule.inputs and "cidrIpv6" not in rule.inputs, rule.name
        assert rule.inputs["ipProtocol"] == "tcp"


@EVERY_LAYOUT
def test_egress_mirrors_the_chain_and_data_tiers_send_nothing(config: NetworkConfig) -> None:
    recording = network_of(config)
    egress = rule_edges(recording, EGRESS)
    chain = {
        (peer, tier, port)
        for tier, peer, port in rule_edges(recording, INGRESS)
        if peer in group_tiers(recording).values()
    }
    assert chain <= egress  # every link is allowed at both ends
    assert not [edge for edge in egress if edge[0] in ("db", "cache", "endpoints")]
    assert {edge for edge in egress if edge[0] == "lb"} == {("lb", "app", PROXY_PORT)}


@pytest.mark.parametrize("config", [DEV, PROD, EXISTING], ids=["dev", "prod", "existing"])
def test_app_reaches_aws_apis_over_https_through_nat(config: NetworkConfig) -> None:
    egress = rule_edges(network_of(config), EGRESS)
    outside = {edge for edge in egress if edge[1] not in TIERS}
    assert outside == {("app", "0.0.0.0/0", 443)}


def test_without_nat_the_app_reaches_only_the_endpoints_and_s3() -> None:
    recording = network_of(ENDPOINTS_ONLY)
    egress = rule_edges(recording, EGRESS)
    app = {edge for edge in egress if edge[0] == "app"}
    assert app == {
        ("app", "db", 5432),
        ("app", "cache", 6379),
        ("app", "endpoints", 443),
        ("app", "pl-63a5400a", 443),  # the S3 gateway endpoint's prefix list (mocked id)
    }
    for rule in recording.find(EGRESS):
        assert "cidrIpv4" not in rule.inputs, rule.name


@EVERY_LAYOUT
def test_database_and_cache_ports_are_open_to_the_app_group_only(config: NetworkConfig) -> None:
    recording = network_of(config)
    for rule in recording.find(INGRESS) + recording.find(EGRESS):
        if rule.inputs["fromPort"] in (5432, 6379):
            assert rule.inputs["referencedSecurityGroupId"] in {
                "web-app-id",
                "web-db-id",
                "web-cache-id",
            }, rule.name
            assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs), rule.name


def test_the_load_balancer_has_one_group_which_references_cloudfront_once() -> None:
    """One rule admits CloudFront's VPC-origin group, on the `lb` group, the ALB's only one;
    the network itself opens it to nothing."""
    network_only = network_of(PROD)
    assert [
        rule.name
        for rule in network_only.find(INGRESS)
        if rule.inputs["securityGroupId"] == "web-lb-id"
    ] == []
    assert sorted(group.name for group in network_only.find(GROUP)) == [
        "web-app",
        "web-cache",
        "web-db",
        "web-lb",
    ]
    recording = record_network_and_load_balancer(PROD)
    per_group: dict[str, int] = {}
    for rule in recording.find(INGRESS):
        if rule.inputs["securityGroupId"] == "web-lb-id":
            assert rule.inputs.get("referencedSecurityGroupId") == MOCK_VPC_ORIGIN_GROUP_ID
            group = rule.inputs["securityGroupId"]
            per_group[group] = per_group.get(group, 0) + 1
    assert per_group == {"web-lb-id": 1}
    alb = recording.one("aws:lb/loadBalancer:LoadBalancer")
    assert alb.inputs["internal"] is True
    assert alb.inputs["securityGroups"] == ["web-lb-id"]
    private = {f"{subnet.name}-id" for subnet in recording.find(SUBNET, "web-private-.*")}
    assert private and set(alb.inputs["subnets"]) == private


def test_load_balancer_ingress_looks_up_cloudfronts_vpc_origin_group_not_the_prefix_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ALB's rule references the group CloudFront makes in the site's VPC; CloudFront's
    origin-facing prefix list (the internet-facing way in) is never looked up."""
    groups_asked: list[Mapping[str, Any]] = []
    lists_asked: list[Mapping[str, Any]] = []

    def group(args: Mapping[str, Any], _region: str) -> dict[str, Any]:
        groups_asked.append(dict(args))
        return {"id": "sg-0000aaaa", "name": args.get("name", "")}

    mocked = MOCK_INVOKES[PREFIX_LIST_INVOKE]
    monkeypatch.setitem(MOCK_INVOKES, SECURITY_GROUP_INVOKE, group)
    monkeypatch.setitem(
        MOCK_INVOKES, PREFIX_LIST_INVOKE, lambda a, r: lists_asked.append(dict(a)) or mocked(a, r)
    )
    recording = record_network_and_load_balancer(EXISTING)
    assert EXISTING.existing is not None
    assert groups_asked == [{"name": VPC_ORIGIN_SERVICE_GROUP, "vpcId": EXISTING.existing.vpc_id}]
    assert lists_asked == []
    (rule,) = [r for r in recording.find(INGRESS) if r.inputs["securityGroupId"] == "web-lb-id"]
    assert rule.inputs["referencedSecurityGroupId"] == "sg-0000aaaa"
    assert not {"cidrIpv4", "cidrIpv6", "prefixListId"} & set(rule.inputs)


def test_app_ingress_follows_the_proxy_port() -> None:
    edges = rule_edges(record_network(DEV, proxy_port=9000), INGRESS)
    assert ("app", "lb", 9000) in edges
    assert ("app", "lb", PROXY_PORT) not in edges


def test_outputs_name_each_tier_group() -> None:
    outputs = network_of(PROD).outputs
    assert outputs["load_balancer_security_group_id"] == "web-lb-id"
    assert outputs["load_balancer_security_group_ids"] == ["web-lb-id"]
    assert outputs["app_security_group_id"] == "web-app-id"
    assert outputs["database_security_group_id"] == "web-db-id"
    assert outputs["cache_security_group_id"] == "web-cache-id"
    assert outputs["vpc_id"] == "web-vpc-id"


def test_every_resource_is_named_and_takes_no_other_tags() -> None:
    """Every other tag comes from the provider's default tags."""
    recording = network_of(DEV)
    for resource in recording.resources:
        if resource.custom and resource.type not in (ROUTE, ASSOCIATION):
            assert resource.inputs["tags"] == {"Name": resource.name}, resource.name
            assert resource.parent is not None and resource.parent.endswith("Network::web")


# --- only the tiers your components need, with groups of your own -------------------------

DATA_TIERS = ("app", "db", "cache")


def data_tier_outputs(network: Network) -> dict[str, Any]:
    return {
        "app": network.app_security_group_id,
        "db": network.database_security_group_id,
        "cache": network.cache_security_group_id,
        "group_ids": network.security_group_ids,
        "created": sorted(network.security_groups),
    }


def rules_by_name(recording: Recording) -> dict[str, dict[str, Any]]:
    return {r.name: r.inputs for r in recording.find(INGRESS) + recording.find(EGRESS)}


def test_a_data_tier_in_an_existing_vpc_gets_its_groups_and_links_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    mocked = MOCK_INVOKES[PREFIX_LIST_INVOKE]
    monkeypatch.setitem(
        MOCK_INVOKES, PREFIX_LIST_INVOKE, lambda a, r: asked.append(a["name"]) or mocked(a, r)
    )
    recording = record_network(EXISTING, exports=data_tier_outputs, tiers=DATA_TIERS)
    assert set(group_tiers(recording).values()) == set(DATA_TIERS)
    assert rule_edges(recording, INGRESS) == {("db", "app", 5432), ("cache", "app", 6379)}
    assert rule_edges(recording, EGRESS) == {
        ("app", "db", 5432),
        ("app", "cache", 6379),
        ("app", ANYWHERE, 443),
    }
    assert not asked  # no load balancer, no CloudFront lookup
    assert recording.outputs["created"] == sorted(DATA_TIERS)


def test_a_brought_app_group_is_not_created_and_both_ends_of_its_links_use_its_id() -> None:
    recording = record_network(
        EXISTING,
        exports=data_tier_outputs,
        tiers=DATA_TIERS,
        security_groups={"app": "sg-0app"},
    )
    assert set(group_tiers(recording).values()) == {"db", "cache"}
    rules = rules_by_name(recording)
    assert set(rules) == {
        "web-db-from-app",
        "web-cache-from-app",
        "web-app-to-db",
        "web-app-to-cache",
        "web-app-to-internet",
    }
    assert rules["web-db-from-app"]["referencedSecurityGroupId"] == "sg-0app"
    assert rules["web-cache-from-app"]["referencedSecurityGroupId"] == "sg-0app"
    for rule in ("web-app-to-db", "web-app-to-cache", "web-app-to-internet"):
        assert rules[rule]["securityGroupId"] == "sg-0app", rule
    assert recording.outputs["app"] == "sg-0app"
    assert recording.outputs["group_ids"] == {
        "app": "sg-0app",
        "db": "web-db-id",
        "cache": "web-cache-id",
    }
    assert recording.outputs["created"] == ["cache", "db"]


def test_a_brought_group_may_be_the_resource_itself() -> None:
    def program() -> None:
        mine = aws.ec2.SecurityGroup("mine", vpc_id="vpc-0123456789abcdef0")
        args = NetworkArgs(config=EXISTING, tiers=DATA_TIERS, security_groups={"app": mine})
        pulumi.export("app", Network("web", args).app_security_group_id)

    recording = record(
        program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"}
    )
    assert recording.outputs["app"] == "mine-id"
    ingress = recording.one(INGRESS, "web-db-from-app")
    assert ingress.inputs["referencedSecurityGroupId"] == "mine-id"
    assert recording.depends_on(ingress.urn, recording.one(GROUP, "mine").urn)
    assert not recording.find(GROUP, "web-app")


def test_brought_load_balancer_groups_get_no_second_cloudfront_rule_and_reach_the_app() -> None:
    brought = {"lb": "sg-0lb"}
    recording = record_network_and_load_balancer(DEV, security_groups=brought)
    assert set(group_tiers(recording).values()) == {"app", "db", "cache"}
    rules = rules_by_name(recording)
    # The user's groups admit CloudFront's VPC-origin group already; a duplicate rule would
    # fail `pulumi up`.
    on_brought = [
        r.name for r in recording.find(INGRESS) if r.inputs["securityGroupId"] in brought.values()
    ]
    assert on_brought == []
    assert recording.find("aws:cloudfront/vpcOrigin:VpcOrigin")
    assert rules["web-lb-to-app"]["securityGroupId"] == "sg-0lb"
    assert rules["web-app-from-lb"]["referencedSecurityGroupId"] == "sg-0lb"
    assert recording.outputs["load_balancer_security_group_id"] == "sg-0lb"
    assert recording.outputs["load_balancer_security_group_ids"] == ["sg-0lb"]


def test_the_output_of_a_tier_left_out_names_the_argument() -> None:
    with pytest.raises(ComponentArgsError) as raised:
        record_network(EXISTING, tiers=DATA_TIERS)  # the default exports read the lb group
    assert str(raised.value) == "Network 'web' has no 'lb' tier: add it to NetworkArgs.tiers"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            {"tiers": ("app", "web")},
            "NetworkArgs.tiers: 'web' is no tier; the tiers are lb, app, db, cache",
        ),
        (
            {"tiers": ("lb", "lb-http", "app")},
            "NetworkArgs.tiers: 'lb-http' is no tier any more: the internal load balancer has "
            "one group, 'lb'; leave 'lb-http' out",
        ),
        (
            {"security_groups": {"lb-http": "sg-0lbhttp"}},
            "NetworkArgs.security_groups: 'lb-http' is no tier any more: the internal load "
            "balancer has one group, 'lb'; leave 'lb-http' out",
        ),
        (
            {"tiers": ("db",), "security_groups": {"app": "sg-0app"}},
            "NetworkArgs.security_groups['app']: 'app' is not in tiers (db); add it there or "
            "leave its group out",
        ),
    ],
)
def test_args_mistakes_name_the_field(args: dict[str, Any], says: str) -> None:
    with pytest.raises(ComponentArgsError) as raised:
        NetworkArgs(**args)
    assert str(raised.value) == says


# --- every child as an attribute -----------------------------------------------------------


def children(network: Network) -> dict[str, Any]:
    """The URN of every child attribute, to compare with what was registered."""

    def urns(resources: list[Any]) -> list[pulumi.Output[str]]:
        return [resource.urn for resource in resources]

    def urn(resource: pulumi.Resource | None) -> pulumi.Output[str] | None:
        return resource.urn if resource else None

    return {
        "vpc": urn(network.vpc),
        "default_security_group": urn(network.default_security_group),
        "internet_gateway": urn(network.internet_gateway),
        "public_route_table": urn(network.public_route_table),
        "private_route_tables": urns(network.private_route_tables),
        "public_subnets": urns(network.public_subnets),
        "private_subnets": urns(network.private_subnets),
        "route_table_associations": urns(network.route_table_associations),
        "routes": urns(network.routes),
        "nat_addresses": urns(network.nat_addresses),
        "nat_gateways": urns(network.nat_gateways),
        "vpc_endpoints": {key: e.urn for key, e in network.vpc_endpoints.items()},
        "security_groups": {key: g.urn for key, g in network.security_groups.items()},
        "security_group_rules": {key: r.urn for key, r in network.security_group_rules.items()},
    }


@pytest.mark.parametrize("config", [PROD, ENDPOINTS_ONLY], ids=["prod", "endpoints"])
def test_every_child_of_a_created_vpc_is_an_attribute(config: NetworkConfig) -> None:
    recording = record_network(config, exports=children, execute_command=True)
    out = recording.outputs

    def urns(type_: str, name: str | None = None) -> list[str]:
        return sorted(resource.urn for resource in recording.find(type_, name))

    assert [out["vpc"]] == urns(VPC)
    assert [out["default_security_group"]] == urns(DEFAULT_GROUP)
    assert [out["internet_gateway"]] == urns("aws:ec2/internetGateway:InternetGateway")
    assert [out["public_route_table"]] == urns(ROUTE_TABLE, "web-public")
    assert sorted(out["private_route_tables"]) == urns(ROUTE_TABLE, "web-private-.*")
    assert sorted(out["public_subnets"]) == urns(SUBNET, "web-public-.*")
    assert sorted(out["private_subnets"]) == urns(SUBNET, "web-private-.*")
    assert sorted(out["route_table_associations"]) == urns(ASSOCIATION)
    assert sorted(out["routes"]) == urns(ROUTE)
    assert sorted(out["nat_addresses"]) == urns(EIP)
    assert sorted(out["nat_gateways"]) == urns(NAT)
    assert sorted(out["vpc_endpoints"].values()) == urns(ENDPOINT)
    assert "s3" in out["vpc_endpoints"]
    assert sorted(out["security_groups"].values()) == urns(GROUP)
    assert {f"web-{tier}" for tier in out["security_groups"]} == {
        group.name for group in recording.find(GROUP)
    }
    assert sorted(out["security_group_rules"].values()) == sorted(urns(INGRESS) + urns(EGRESS))
    assert {f"web-{rule}" for rule in out["security_group_rules"]} == set(rules_by_name(recording))


def test_an_existing_vpc_has_security_groups_and_no_vpc_children() -> None:
    out = record_network(EXISTING, exports=children).outputs
    assert set(out["security_groups"]) == set(TIERS)
    assert out["security_group_rules"]
    vpc_children = {key: value for key, value in out.items() if not key.startswith("security")}
    assert not any(vpc_children.values()), vpc_children


# --- Pulumi's standard mock recipe ---------------------------------------------------------


class EchoMocks(pulumi.runtime.Mocks):
    """The recipe Pulumi's testing guide shows: every resource echoes its inputs as its
    state, every invoke answers nothing."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        return f"{args.name}_id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        return {}


@pytest.fixture
def echo_mocks() -> None:
    pulumi.runtime.set_mocks(EchoMocks(), preview=False)


def resolved(outputs: Mapping[str, Any]) -> pulumi.Output[None]:
    """Fails the test on any output that resolves to nothing."""

    def check(values: dict[str, Any]) -> None:
        empty = [name for name, value in values.items() if value is None or value == [None]]
        assert not empty, empty

    return pulumi.Output.all(**outputs).apply(check)


def data_tier(network: Network) -> dict[str, Any]:
    """A database and a cache in `network`, and every output of the three components."""
    database = Database(
        "web",
        DatabaseArgs(
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.database_security_group_id,
        ),
    )
    cache = Cache(
        "web",
        CacheArgs(
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.cache_security_group_id,
        ),
    )
    return {
        **{f"network.{name}": value for name, value in data_tier_outputs(network).items()},
        "network.vpc_id": network.vpc_id,
        "network.vpc_cidr": network.vpc_cidr,
        "network.private_subnet_ids": network.private_subnet_ids,
        **{
            f"database.{name}": getattr(database, name)
            for name in ("address", "port", "database_name", "username", "master_secret_arn")
        },
        **{
            f"cache.{name}": getattr(cache, name)
            for name in ("primary_endpoint", "port", "auth_secret_arn", "url_without_password")
        },
    }


@pytest.mark.parametrize("config", [PROD, ENDPOINTS_ONLY], ids=["prod", "endpoints"])
@pulumi.runtime.test
def test_a_created_vpc_runs_under_the_standard_mock_recipe(
    echo_mocks: None, config: NetworkConfig
) -> pulumi.Output[None]:
    network = Network("web", NetworkArgs(config=config))
    return resolved({**scalar_outputs(network), **data_tier(network)})


@pulumi.runtime.test
def test_an_existing_vpc_with_a_data_tier_runs_under_the_standard_mock_recipe(
    echo_mocks: None,
) -> pulumi.Output[None]:
    network = Network("web", NetworkArgs(config=EXISTING, tiers=DATA_TIERS))
    return resolved(data_tier(network))


# --- config mistakes -----------------------------------------------------------------------


def network_problems(network: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", "network": json.dumps(network)}, set())
    return raised.value.problems


EXISTING_KEYS = {
    "vpcId": "vpc-0123456789abcdef0",
    "publicSubnetIds": ["subnet-a", "subnet-b"],
    "privateSubnetIds": ["subnet-c", "subnet-d"],
}


def test_existing_network_with_one_private_subnet_is_rejected() -> None:
    """RDS Multi-AZ, the subnet groups and the ALB all need two AZs."""
    [problem] = network_problems({"existing": {**EXISTING_KEYS, "privateSubnetIds": ["subnet-c"]}})
    assert problem.startswith("django:network.existing.privateSubnetIds")
    assert "at least 2 AZs" in problem


def test_existing_network_rejects_keys_that_only_shape_a_new_vpc() -> None:
    [problem] = network_problems(
        {"existing": EXISTING_KEYS, "egress": "single-nat", "cidr": "10.1.0.0/16"}
    )
    assert problem.startswith("django:network:")
    assert "cidr, egress only shape a VPC created here" in problem


def test_existing_network_accepts_its_own_keys() -> None:
    config = parse_stack_config(
        {"target": "aws", "network": json.dumps({"existing": EXISTING_KEYS})}, set()
    )
    assert config.network.existing is not None
    assert config.network.existing.private_subnet_ids == ["subnet-c", "subnet-d"]


@pytest.mark.parametrize(
    ("network", "path"),
    [
        ({"availabilityZones": 1}, "django:network.availabilityZones"),
        ({"availabilityZones": 4}, "django:network.availabilityZones"),
        ({"cidr": "8.8.0.0/16"}, "django:network.cidr"),
        ({"cidr": "10.0.0.0/24"}, "django:network.cidr"),
        ({"egress": "nat-instance"}, "django:network.egress"),
        ({"existing": {**EXISTING_KEYS, "vpcId": "vpc-1"}}, "django:network.existing.vpcId"),
    ],
)
def test_network_mistakes_name_their_key(network: dict[str, Any], path: str) -> None:
    [problem] = network_problems(network)
    assert problem.startswith(path), problem
