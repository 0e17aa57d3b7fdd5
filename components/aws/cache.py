"""ElastiCache Redis or Valkey in private subnets: TLS and encryption at rest, an AUTH
token that the app reads from Secrets Manager, and failover whenever there is a replica."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from pulumi_django.components.site import REDIS_PORT
from pulumi_django.config.cache import CacheConfig

# ElastiCache takes 16-128 printable characters; letters and digits only also keep the token
# safe to paste into a redis:// URL without percent-encoding.
AUTH_TOKEN_LENGTH = 64


class Cache(pulumi.ComponentResource):
    """The app connects to `url_without_password` with the token from the secret at
    `auth_secret_arn` (an ECS `secrets` valueFrom, never a plain environment variable)."""

    primary_endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    auth_secret_arn: pulumi.Output[str]
    url_without_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: CacheConfig,
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_id: pulumi.Input[str],
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:cache:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = dict(tags or {})
        subnet_group = aws.elasticache.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=subnet_ids,
            description=f"{name}: private subnets only",
            tags=tags,
            opts=child,
        )
        token = random.RandomPassword(
            f"{name}-auth-token", length=AUTH_TOKEN_LENGTH, special=False, opts=child
        )
        # A replica is what failover promotes; with one node there is nothing to promote.
        has_replica = config.nodes > 1
        group = aws.elasticache.ReplicationGroup(
            f"{name}-group",  # not named after the engine: a move to Valkey keeps the group
            description=f"{name}: Django cache and sessions",
            engine=config.engine,
            engine_version=config.engine_version,
            node_type=config.node_type,
            num_cache_clusters=config.nodes,
            automatic_failover_enabled=has_replica,
            multi_az_enabled=has_replica,
            port=REDIS_PORT,
            subnet_group_name=subnet_group.name,
            security_group_ids=[security_group_id],
            at_rest_encryption_enabled=True,
            transit_encryption_enabled=True,
            auth_token=token.result,
            snapshot_retention_limit=config.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            apply_immediately=False,
            tags=tags,
            opts=child,
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-auth-token",
            description=f"{name}: AUTH token of the {config.engine} replication group",
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-auth-token",
            secret_id=secret.id,
            secret_string=token.result,
            opts=child,
        )
        self.primary_endpoint = group.primary_endpoint_address
        self.port = group.port.apply(lambda port: port or REDIS_PORT)
        self.auth_secret_arn = secret.arn
        self.url_without_password = pulumi.Output.concat(
            "rediss://", group.primary_endpoint_address, f":{REDIS_PORT}/0"
        )
        self.register_outputs(
            {
                "primary_endpoint": self.primary_endpoint,
                "port": self.port,
                "auth_secret_arn": self.auth_secret_arn,
                "url_without_password": self.url_without_password,
            }
        )
