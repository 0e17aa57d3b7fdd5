"""ElastiCache Redis or Valkey in private subnets: TLS and encryption at rest, an AUTH
token that the app reads from Secrets Manager, and failover whenever there is a replica."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from pulumi_django._mock_answers import mock_arn, or_mock_answer
from pulumi_django.components.args import ComponentArgsError, arg, check_name, resource_ref
from pulumi_django.components.site import REDIS_PORT
from pulumi_django.config.cache import CacheConfig
from pulumi_django.providers.data_store_guard import DataStoreGuard

# ElastiCache takes 16-128 printable characters; letters and digits only also keep the token
# safe to paste into a redis:// URL without percent-encoding.
AUTH_TOKEN_LENGTH = 64
REPLACEMENT_CONSEQUENCE = (
    "ElastiCache would create a new, empty replication group (sessions and cached data lost) "
    "and delete this one"
)


@dataclass(frozen=True, kw_only=True)
class CacheArgs:
    """The replication group's settings, where it sits, and the subnet group of yours it uses."""

    config: CacheConfig = arg(
        "The cache section: engine and version, node type, node count (2 or more fail over), "
        "snapshots. Default: the section's defaults (Redis 7.1, two nodes).",
        default_factory=CacheConfig,
    )
    security_group_id: pulumi.Input[str] = arg(
        "The cache's security group (`Network.cache_security_group_id`): the only group "
        "attached, so what it lets in is all that reaches the nodes."
    )
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] | None = arg(
        "Private subnets (2 or more AZs) for the subnet group created here "
        "(`Network.private_subnet_ids`). Default: none, which needs `subnet_group`.",
        default=None,
    )
    subnet_group: aws.elasticache.SubnetGroup | pulumi.Input[str] | None = arg(
        "An ElastiCache subnet group of yours (the resource or its name) instead of one "
        "created over `subnet_ids`. Default: None, one is created.",
        default=None,
    )
    kms_key_arn: pulumi.Input[str] | None = arg(
        "A customer-managed KMS key's ARN (`StackKey.arn`) for the data at rest and the AUTH "
        "token's secret. Changing it replaces the replication group. Default: None, the "
        "ElastiCache default key and `aws/secretsmanager`.",
        default=None,
    )
    protect: bool = arg(
        "Pulumi's `protect` on the replication group: `pulumi destroy`, removing it from the "
        "program or a change that replaces it stops with an error until a `pulumi up` turned "
        "this off (`django:protect`). Default: True.",
        default=True,
    )
    allow_replacement: bool = arg(
        "Let a change that replaces the replication group go through (another KMS key, "
        "Valkey back to Redis, another network); without it such a change is refused "
        "at preview by the group's guard, one line naming it (`django:allowReplacement`). "
        "Default: False.",
        default=False,
    )
    network_identity: Mapping[str, pulumi.Input[str]] = arg(
        "What identifies the network the group lives in, by config key (e.g. "
        "`{'network.cidr': '10.0.0.0/16'}`): the guard refuses a change to it like a "
        "replacement. Default: none, not guarded.",
        default_factory=dict,
    )

    def __post_init__(self) -> None:
        if (self.subnet_ids is None) == (self.subnet_group is None):
            raise ComponentArgsError(
                "CacheArgs: give either subnet_ids (a subnet group is created over them) "
                "or subnet_group (yours), not both and not neither"
            )


class Cache(pulumi.ComponentResource):
    """The app connects to `url_without_password` with the token from the secret at
    `auth_secret_arn` (an ECS `secrets` valueFrom, never a plain environment variable).

    Children: `replication_group`, `auth_token` (the random token), `auth_secret` and
    `auth_secret_version` (the token in Secrets Manager); `subnet_group` is None when brought;
    `guard`, which refuses a change that would replace the group.
    The engine's default parameter group suits a Django cache, so none is created."""

    primary_endpoint: pulumi.Output[str]
    port: pulumi.Output[int]
    auth_secret_arn: pulumi.Output[str]
    url_without_password: pulumi.Output[str]
    replication_group: aws.elasticache.ReplicationGroup
    subnet_group: aws.elasticache.SubnetGroup | None
    auth_token: random.RandomPassword
    auth_secret: aws.secretsmanager.Secret
    auth_secret_version: aws.secretsmanager.SecretVersion
    guard: DataStoreGuard

    def __init__(
        self, name: str, args: CacheArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("Cache", name)
        super().__init__("pulumi-django:cache:Cache", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        config = args.config
        # The group's inputs ElastiCache sets only at creation, under the keys that set them.
        self.guard = guard = DataStoreGuard(
            f"{name}-cache-guard",
            kind="cache",
            resource=f"ElastiCache replication group {name}-group",
            identity={
                "cache.engine": config.engine,
                "security.customerManagedKey": "" if args.kms_key_arn is None else args.kms_key_arn,
                **args.network_identity,
            },
            # Redis OSS -> Valkey is an in-place engine upgrade; the way back replaces.
            in_place=[("cache.engine", "redis", "valkey")],
            allow_replacement=args.allow_replacement,
            consequence=REPLACEMENT_CONSEQUENCE,
            allow_hint="To replace it on purpose, add cache to django:allowReplacement "
            "(CacheArgs.allow_replacement) for that `pulumi up`",
            opts=child,
        )
        guarded = pulumi.ResourceOptions(parent=self, depends_on=[guard])
        self.subnet_group = None
        subnet_group = args.subnet_group
        if subnet_group is None:
            self.subnet_group = subnet_group = aws.elasticache.SubnetGroup(
                f"{name}-subnets",
                subnet_ids=args.subnet_ids,
                description=f"{name}: private subnets only",
                opts=guarded,
            )
        self.auth_token = token = random.RandomPassword(
            f"{name}-auth-token", length=AUTH_TOKEN_LENGTH, special=False, opts=child
        )
        # A replica is what failover promotes; with one node there is nothing to promote.
        has_replica = config.nodes > 1
        self.replication_group = group = aws.elasticache.ReplicationGroup(
            f"{name}-group",  # not named after the engine: a move to Valkey keeps the group
            description=f"{name}: Django cache and sessions",
            engine=config.engine,
            engine_version=config.engine_version,
            node_type=config.node_type,
            num_cache_clusters=config.nodes,
            automatic_failover_enabled=has_replica,
            multi_az_enabled=has_replica,
            port=REDIS_PORT,
            subnet_group_name=resource_ref(subnet_group, "name"),
            security_group_ids=[args.security_group_id],
            at_rest_encryption_enabled=True,
            kms_key_id=args.kms_key_arn,
            transit_encryption_enabled=True,
            auth_token=token.result,
            snapshot_retention_limit=config.snapshot_retention_days,
            auto_minor_version_upgrade=True,
            # On by default: a deferred change shows in every preview until the maintenance
            # window (cache.applyImmediately).
            apply_immediately=config.apply_immediately,
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect, depends_on=[guard]),
        )
        self.auth_secret = secret = aws.secretsmanager.Secret(
            f"{name}-auth-token",
            description=f"{name}: AUTH token of the {config.engine} replication group",
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        self.auth_secret_version = aws.secretsmanager.SecretVersion(
            f"{name}-auth-token",
            secret_id=secret.id,
            secret_string=token.result,
            opts=child,
        )
        self.primary_endpoint = or_mock_answer(
            group.primary_endpoint_address, f"{name}-group.mock.cache.amazonaws.com"
        )
        self.port = group.port.apply(lambda port: port or REDIS_PORT)
        self.auth_secret_arn = or_mock_answer(
            secret.arn, mock_arn("secretsmanager", f"secret:{name}-auth-token")
        )
        self.url_without_password = pulumi.Output.concat(
            "rediss://", self.primary_endpoint, f":{REDIS_PORT}/0"
        )
        self.register_outputs(
            {
                "primary_endpoint": self.primary_endpoint,
                "port": self.port,
                "auth_secret_arn": self.auth_secret_arn,
                "url_without_password": self.url_without_password,
            }
        )
