"""The VPC: created here, or an existing one."""

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .base import Section


class ExistingNetwork(Section):
    """An existing VPC to deploy into instead of creating one."""

    vpc_id: str = Field(pattern=r"^vpc-[0-9a-f]{8,17}$", description="VPC id.")
    public_subnet_ids: list[str] = Field(
        description="Public subnets, in different AZs (2 or more): the stack output "
        "`publicSubnetIds`; nothing of the stack runs in them (the load balancer is internal)."
    )
    private_subnet_ids: list[str] = Field(
        description="Subnets for tasks, database and cache, in different AZs (2 or more)."
    )

    @field_validator("public_subnet_ids", "private_subnet_ids")
    @classmethod
    def _subnet_ids(cls, ids: list[str]) -> list[str]:
        if len(ids) < 2:
            raise ValueError(
                "list subnets in at least 2 AZs: the load balancer, RDS and ElastiCache "
                "subnet groups and every Multi-AZ standby need two"
            )
        for subnet in ids:
            if not subnet.startswith("subnet-"):
                raise ValueError(f"{subnet!r} is not a subnet id (subnet-...)")
        if len(set(ids)) != len(ids):
            raise ValueError("subnet ids repeat")
        return ids


class NetworkConfig(Section):
    """Egress trade-off (us-east-1, 2 AZs): a NAT gateway costs about $33/month plus
    $0.045/GB; `nat-per-az` survives an AZ outage at 2-3x that, `single-nat` is cheapest
    with internet egress, `vpc-endpoints` has no internet egress and costs about
    $7.30/month per interface endpoint per AZ (4 endpoints, 5 with `fleet.enableExecuteCommand`)."""

    availability_zones: int = Field(2, ge=2, le=3, description="AZs to spread over.")
    cidr: str = Field("10.0.0.0/16", description="VPC CIDR, a /16 to /22 private range.")
    egress: Literal["nat-per-az", "single-nat", "vpc-endpoints"] = Field(
        "nat-per-az", description="How private subnets reach AWS APIs and the internet."
    )
    existing: ExistingNetwork | None = Field(
        None, description="Deploy into this VPC instead of creating one."
    )

    @field_validator("cidr")
    @classmethod
    def _private_cidr(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as error:
            raise ValueError(f"not an IPv4 CIDR: {error}") from None
        if not network.is_private or not 16 <= network.prefixlen <= 22:
            raise ValueError("use a private range from /16 to /22, e.g. 10.0.0.0/16")
        return value

    @model_validator(mode="after")
    def _existing_ignores_layout(self) -> "NetworkConfig":
        ignored = {"availability_zones", "cidr", "egress"} & self.model_fields_set
        if self.existing and ignored:
            keys = ", ".join(sorted(to_camel(key) for key in ignored))
            raise ValueError(
                f"{keys} only shape a VPC created here; remove them when deploying into "
                "network.existing (its routing and egress stay yours)"
            )
        return self
