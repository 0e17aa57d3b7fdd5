"""ElastiCache Redis or Valkey (AWS) or a Redis container (local)."""

from typing import Literal

from pydantic import Field, model_validator

from .base import Section, Text


class CacheConfig(Section):
    """A replication group; more than one node turns on failover and Multi-AZ."""

    engine: Literal["redis", "valkey"] = Field("redis", description="Cache engine.")
    engine_version: Text = Field(
        "7.1", pattern=r"^\d+\.\d+$", description="Engine version, major.minor."
    )
    node_type: str = Field(
        "cache.t4g.small",
        pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$",
        description="Node type, e.g. `cache.t4g.small`.",
    )
    nodes: int = Field(
        2,
        ge=1,
        le=6,
        description="Primary plus replicas; 2 or more turn on automatic failover and Multi-AZ, "
        "1 has neither (a node failure loses the cache until ElastiCache replaces it).",
    )
    snapshot_retention_days: int = Field(
        1, ge=0, le=35, description="Daily snapshots kept, days (0: none)."
    )
    apply_immediately: bool = Field(
        True,
        description="Apply a change (node type, engine version, node count...) during `pulumi "
        "up`; false defers what ElastiCache can defer to its maintenance window, and every "
        "preview shows it again until then (a perpetual diff).",
    )

    @model_validator(mode="after")
    def _offered_version(self) -> "CacheConfig":
        major_minor = tuple(int(part) for part in self.engine_version.split("."))
        if self.engine == "valkey" and major_minor < (7, 2):
            raise ValueError('ElastiCache Valkey starts at 7.2; set engineVersion, e.g. "8.0"')
        if self.engine == "redis" and not (6, 0) <= major_minor <= (7, 1):
            raise ValueError(
                "use a Redis OSS engineVersion from 6.0 (TLS plus AUTH) to 7.1 (the last "
                "ElastiCache offers); for later ones use engine: valkey"
            )
        return self
