"""ElastiCache as `pulumi up` registers it: private, encrypted in transit and at rest, an AUTH
token the app reads from Secrets Manager, failover whenever a replica exists."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.cache import AUTH_TOKEN_LENGTH, Cache, CacheArgs
from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.config.cache import CacheConfig
from pulumi_django.recorder import MOCK_ACCOUNT, SECRET, Recording, record

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SUBNET_GROUP = "aws:elasticache/subnetGroup:SubnetGroup"
TOKEN = "random:index/randomPassword:RandomPassword"
SECRET_TYPE = "aws:secretsmanager/secret:Secret"
SECRET_VERSION = "aws:secretsmanager/secretVersion:SecretVersion"
GUARD = "pulumi-python:dynamic/data:DataStoreGuard"
PRIVATE_SUBNETS = ["subnet-private-a", "subnet-private-b"]
CACHE_GROUP = "sg-cache"

PROD = CacheConfig()
DEV = CacheConfig(nodes=1, snapshot_retention_days=0)


OUTPUTS = ("primary_endpoint", "port", "auth_secret_arn", "url_without_password")


def scalar_outputs(cache: Cache) -> dict[str, Any]:
    return {output: getattr(cache, output) for output in OUTPUTS}


def record_cache(
    config: CacheConfig,
    exports: Callable[[Cache], Mapping[str, Any]] = scalar_outputs,
    bring: Callable[[], Mapping[str, Any]] = dict,
    **args: Any,
) -> Recording:
    """`args` are CacheArgs' other fields (by default the private subnets and the cache
    group); `bring` makes, inside the program, a subnet group of the user's own."""

    def program() -> None:
        defaults = {"subnet_ids": PRIVATE_SUBNETS, "security_group_id": CACHE_GROUP}
        cache = Cache("sessions", CacheArgs(config=config, **{**defaults, **args, **bring()}))
        for output, value in exports(cache).items():
            pulumi.export(output, value)

    return record(program, project="pulumi-django", stack="dev", config={"aws:region": "us-east-1"})


@pytest.fixture(scope="module")
def prod() -> Recording:
    return record_cache(PROD)


@pytest.fixture(scope="module")
def dev() -> Recording:
    return record_cache(DEV)


@pytest.fixture(params=["prod", "dev"])
def either(request: pytest.FixtureRequest) -> Recording:
    recording: Recording = request.getfixturevalue(request.param)
    return recording


def test_private_subnets_and_the_cache_group_only(either: Recording) -> None:
    group = either.one(GROUP)
    subnet_group = either.one(SUBNET_GROUP)
    assert subnet_group.inputs["subnetIds"] == PRIVATE_SUBNETS
    assert group.inputs["subnetGroupName"] == f"{subnet_group.name}-a1b2c3d"
    assert group.inputs["securityGroupIds"] == [CACHE_GROUP]
    assert group.inputs["port"] == 6379


def test_encrypted_in_transit_and_at_rest(either: Recording) -> None:
    inputs = either.one(GROUP).inputs
    assert inputs["transitEncryptionEnabled"] is True
    assert inputs["atRestEncryptionEnabled"] is True


def test_auth_token_is_random_secret_and_within_elasticache_rules(either: Recording) -> None:
    token = either.one(TOKEN)
    assert 16 <= token.inputs["length"] == AUTH_TOKEN_LENGTH <= 128  # ElastiCache's bounds
    # Letters and digits only: within ElastiCache's alphabet, and a token pasted into
    # redis://:token@host needs no percent-encoding.
    assert token.inputs["special"] is False
    group = either.one(GROUP)
    assert group.inputs["authToken"] == SECRET
    assert token.urn in group.property_dependencies["authToken"]


def test_the_token_sits_in_secrets_manager_for_the_app(either: Recording) -> None:
    secret = either.one(SECRET_TYPE)
    version = either.one(SECRET_VERSION)
    assert version.inputs["secretId"] == f"{secret.name}-id"
    assert version.inputs["secretString"] == SECRET
    assert either.one(TOKEN).urn in version.property_dependencies["secretString"]
    assert either.outputs["auth_secret_arn"] == (
        f"arn:aws:secretsmanager:us-east-1:{MOCK_ACCOUNT}:secret:{secret.name}-AbCdEf"
    )


def test_no_resource_holds_the_token_in_plain_text(either: Recording) -> None:
    token_value = "x" * AUTH_TOKEN_LENGTH  # what the mocked RandomPassword returns
    for resource in either.resources:
        assert token_value not in json.dumps(resource.inputs), resource.name
    assert token_value not in json.dumps(either.outputs)


def test_two_nodes_fail_over_across_zones(prod: Recording) -> None:
    inputs = prod.one(GROUP).inputs
    assert inputs["numCacheClusters"] == 2
    assert inputs["automaticFailoverEnabled"] is True
    assert inputs["multiAzEnabled"] is True


def test_one_node_has_nothing_to_fail_over_to(dev: Recording) -> None:
    inputs = dev.one(GROUP).inputs
    assert inputs["numCacheClusters"] == 1
    assert inputs["automaticFailoverEnabled"] is False
    assert inputs["multiAzEnabled"] is False


@pytest.mark.parametrize("nodes", [2, 3, 6])
def test_every_replicated_size_fails_over(nodes: int) -> None:
    inputs = record_cache(CacheConfig(nodes=nodes)).one(GROUP).inputs
    assert inputs["numCacheClusters"] == nodes
    assert inputs["automaticFailoverEnabled"] is True and inputs["multiAzEnabled"] is True


def test_dev_differs_from_prod_only_in_size_failover_and_snapshots(
    dev: Recording, prod: Recording
) -> None:
    strict, relaxed = prod.one(GROUP).inputs, dev.one(GROUP).inputs
    differing = {key for key in set(strict) | set(relaxed) if strict.get(key) != relaxed.get(key)}
    assert differing == {
        "numCacheClusters",
        "automaticFailoverEnabled",
        "multiAzEnabled",
        "snapshotRetentionLimit",
    }
    assert strict["snapshotRetentionLimit"] == 1 and relaxed["snapshotRetentionLimit"] == 0


def test_engine_version_and_upgrades(either: Recording) -> None:
    inputs = either.one(GROUP).inputs
    assert inputs["engine"] == "redis"
    assert inputs["engineVersion"] == PROD.engine_version
    assert inputs["nodeType"] == PROD.node_type
    assert inputs["autoMinorVersionUpgrade"] is True
    # Applied during `pulumi up`: a deferred change would show in every preview until the
    # maintenance window.
    assert inputs["applyImmediately"] is True
    assert "parameterGroupName" not in inputs  # the engine default suits a Django cache


def test_valkey_is_the_same_group_on_another_engine(prod: Recording) -> None:
    recording = record_cache(CacheConfig(engine="valkey", engine_version="8.0"))
    assert recording.one(GROUP).urn == prod.one(GROUP).urn  # an upgrade, not a new group
    inputs = recording.one(GROUP).inputs
    assert inputs["engine"] == "valkey"
    assert inputs["engineVersion"] == "8.0"
    assert inputs["transitEncryptionEnabled"] is True and inputs["authToken"] == SECRET


def test_outputs_give_a_tls_url_without_the_password(prod: Recording) -> None:
    primary = f"master.{prod.one(GROUP).name}.abcdef.use1.cache.amazonaws.com"
    assert prod.outputs["primary_endpoint"] == primary
    assert prod.outputs["port"] == 6379
    assert prod.outputs["url_without_password"] == f"rediss://{primary}:6379/0"


def test_children_are_parented_and_take_their_tags_from_the_provider(either: Recording) -> None:
    component = either.one("pulumi-django:cache:Cache")
    for resource in either.resources:
        if resource.custom:
            assert resource.parent == component.urn, resource.name
            assert "tags" not in resource.inputs, resource.name


# --- your own subnet group, and the children -----------------------------------------------


def children(cache: Cache) -> dict[str, Any]:
    return {
        "replication_group": cache.replication_group.urn,
        "subnet_group": cache.subnet_group.urn if cache.subnet_group else None,
        "auth_token": cache.auth_token.urn,
        "auth_secret": cache.auth_secret.urn,
        "auth_secret_version": cache.auth_secret_version.urn,
    }


def test_every_child_is_an_attribute() -> None:
    recording = record_cache(PROD, exports=children)
    assert recording.outputs == {
        "replication_group": recording.one(GROUP).urn,
        "subnet_group": recording.one(SUBNET_GROUP).urn,
        "auth_token": recording.one(TOKEN).urn,
        "auth_secret": recording.one(SECRET_TYPE).urn,
        "auth_secret_version": recording.one(SECRET_VERSION).urn,
    }


def test_a_subnet_group_brought_by_name_is_used_and_none_is_created() -> None:
    recording = record_cache(PROD, exports=children, subnet_ids=None, subnet_group="shared-cache")
    assert not recording.find(SUBNET_GROUP)
    assert recording.one(GROUP).inputs["subnetGroupName"] == "shared-cache"
    assert recording.outputs["subnet_group"] is None


def test_a_subnet_group_brought_as_a_resource_is_referenced_by_name() -> None:
    def bring() -> dict[str, Any]:
        return {"subnet_group": aws.elasticache.SubnetGroup("mine", subnet_ids=PRIVATE_SUBNETS)}

    recording = record_cache(PROD, bring=bring, subnet_ids=None)
    subnets = recording.one(SUBNET_GROUP)
    assert subnets.name == "mine"
    assert recording.one(GROUP).inputs["subnetGroupName"] == "mine-a1b2c3d"  # mocked auto-name
    assert recording.depends_on(recording.one(GROUP).urn, subnets.urn)


@pytest.mark.parametrize(
    "args",
    [{"subnet_ids": None}, {"subnet_ids": PRIVATE_SUBNETS, "subnet_group": "shared-cache"}],
    ids=["neither", "both"],
)
def test_subnets_come_from_exactly_one_argument(args: dict[str, Any]) -> None:
    with pytest.raises(ComponentArgsError) as raised:
        CacheArgs(security_group_id=CACHE_GROUP, **args)
    assert str(raised.value) == (
        "CacheArgs: give either subnet_ids (a subnet group is created over them) or "
        "subnet_group (yours), not both and not neither"
    )


# --- config mistakes -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cache", "path", "says"),
    [
        ({"nodes": 0}, "django:cache.nodes = 0", "greater than"),
        ({"nodes": 7}, "django:cache.nodes = 7", "less than"),
        ({"nodeType": "t4g.small"}, "django:cache.nodeType", "cache.t4g.small"),
        ({"engine": "memcached"}, "django:cache.engine", "redis"),
        ({"engine": "valkey"}, "django:cache:", "Valkey starts at 7.2"),
        ({"engineVersion": "5.0"}, "django:cache:", "from 6.0"),
        ({"engineVersion": "7.2"}, "django:cache:", "use engine: valkey"),
        ({"engineVersion": "7"}, "django:cache.engineVersion", "wrong format"),
        ({"snapshotRetentionDays": 36}, "django:cache.snapshotRetentionDays", "less than"),
        ({"multiAz": True}, "django:cache.multiAz", "unknown key"),
    ],
)
def test_cache_mistakes_name_their_key(cache: dict[str, Any], path: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", "cache": json.dumps(cache)}, set())
    [problem] = raised.value.problems
    assert problem.startswith(path), problem
    assert says in problem, problem


# --- replacement safety and deferral --------------------------------------------------------


def test_the_group_waits_for_its_guard_which_knows_its_identity(prod: Recording) -> None:
    guard = prod.one(GUARD)
    assert guard.name == "sessions-cache-guard"
    assert guard.urn in prod.one(GROUP).dependencies
    assert guard.urn in prod.one(SUBNET_GROUP).dependencies
    assert guard.inputs["identity"] == {
        "cache.engine": "redis",
        "security.customerManagedKey": "",
    }
    # Redis OSS to Valkey is an upgrade in place, not a replacement.
    assert guard.inputs["in_place"] == [["cache.engine", "redis", "valkey"]]
    assert guard.inputs["allow_replacement"] is False


def test_the_guard_knows_the_network_and_what_is_allowed() -> None:
    recording = record_cache(
        PROD, network_identity={"network.cidr": "10.0.0.0/16"}, allow_replacement=True
    )
    guard = recording.one(GUARD).inputs
    assert guard["identity"]["network.cidr"] == "10.0.0.0/16"
    assert guard["allow_replacement"] is True


def test_the_group_is_protected_unless_told_otherwise(prod: Recording) -> None:
    assert prod.one(GROUP).options.get("protect") is True
    assert not record_cache(PROD, protect=False).one(GROUP).options.get("protect")


def test_deferring_changes_is_an_explicit_key() -> None:
    assert CacheConfig().apply_immediately is True
    deferred = record_cache(CacheConfig(apply_immediately=False))
    assert deferred.one(GROUP).inputs["applyImmediately"] is False
