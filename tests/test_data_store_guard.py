"""The data-store guard: a change that would replace the database or the cache is refused at
preview (check) and at update (diff), one line naming what changes and the key that allows it;
the shipped stacks wire a guard in front of each store, which waits for it, and protect what
holds data in prod."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
import yaml
from pulumi.dynamic.dynamic import serialize_provider
from pulumi.runtime import proto, rpc
from pulumi.runtime.proto import provider_pb2_grpc
from shipped_sites import shipped_site

from pulumi_django.config import parse_stack_config
from pulumi_django.providers.data_store_guard import (
    UNKNOWN_VALUE,
    DataStoreGuardProvider,
    ReplacementRefused,
    refusal,
)
from pulumi_django.recorder import Recording

GUARD = "pulumi-python:dynamic/data:DataStoreGuard"
INSTANCE = "aws:rds/instance:Instance"
GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
UNKNOWN = (
    "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's unknown value, as a provider gets it
)

DATABASE: dict[str, Any] = {
    "kind": "database",
    "resource": "RDS instance shop-db",
    "identity": {
        "engine": "postgres",
        "database.name": "app",
        "database.username": "django",
        "network.cidr": "10.0.0.0/16",
    },
    "allow_replacement": False,
    "consequence": "RDS would create a new, empty instance",
    "allow_hint": "add database to django:allowReplacement",
    "in_place": [],
    "immediate": {"database.engineVersion (major)": "17"},
    "apply_immediately": True,
    "immediate_hint": "set database.applyImmediately to true",
}


def changed(props: dict[str, Any], **identity: str) -> dict[str, Any]:
    return {**props, "identity": {**props["identity"], **identity}}


# --- the rule, pure --------------------------------------------------------------------------


def test_the_same_identity_passes() -> None:
    assert refusal(DATABASE, dict(DATABASE)) is None
    # Changes outside the identity (the hint's wording, say) never stop anything.
    assert refusal(DATABASE, {**DATABASE, "consequence": "reworded"}) is None


def test_a_new_guard_has_nothing_to_compare_with() -> None:
    assert refusal({}, DATABASE) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("database.name", "shop"), ("database.username", "admin"), ("network.cidr", "10.1.0.0/16")],
)
def test_an_identity_change_is_refused_in_one_line_naming_it(key: str, value: str) -> None:
    reason = refusal(DATABASE, changed(DATABASE, **{key: value}))
    assert reason is not None
    old = DATABASE["identity"][key]
    assert reason == (
        f"refused: this change replaces the database (RDS instance shop-db): {key} {old!r} -> "
        f"{value!r}. RDS would create a new, empty instance. "
        "add database to django:allowReplacement."
    )
    assert "\n" not in reason


def test_allowed_it_goes_through() -> None:
    assert (
        refusal(
            DATABASE, {**changed(DATABASE, **{"database.name": "shop"}), "allow_replacement": True}
        )
        is None
    )


def test_a_value_known_only_after_apply_counts_as_a_change() -> None:
    """A KMS key created in the same `pulumi up`: its ARN is unknown at preview, and RDS cannot
    re-encrypt an instance in place."""
    before = changed(DATABASE, **{"security.customerManagedKey": ""})
    reason = refusal(before, changed(DATABASE, **{"security.customerManagedKey": UNKNOWN}))
    assert reason is not None
    assert f"security.customerManagedKey (none) -> {UNKNOWN_VALUE}" in reason


def test_an_identity_key_that_appears_or_goes_is_a_change() -> None:
    network_now = changed(DATABASE)
    del network_now["identity"]["network.cidr"]
    network_now["identity"]["network.existing.vpcId"] = "vpc-0123456789abcdef0"
    reason = refusal(DATABASE, network_now)
    assert reason is not None
    assert "network.cidr '10.0.0.0/16' -> (none)" in reason
    assert "network.existing.vpcId (none) -> 'vpc-0123456789abcdef0'" in reason


def test_an_identity_key_added_empty_is_no_change() -> None:
    """A later version adding an identity input that is unset (no KMS key) must not refuse."""
    assert refusal(DATABASE, changed(DATABASE, **{"security.customerManagedKey": ""})) is None


def test_an_in_place_transition_is_not_a_replacement() -> None:
    cache = {
        **DATABASE,
        "kind": "cache",
        "identity": {"cache.engine": "redis"},
        "in_place": [["cache.engine", "redis", "valkey"]],
        "immediate": {},
    }
    valkey = changed(cache, **{"cache.engine": "valkey"})
    assert refusal(cache, valkey) is None
    back = refusal(valkey, cache)  # Valkey back to Redis OSS replaces the group
    assert back is not None and "cache.engine 'valkey' -> 'redis'" in back


def test_a_major_upgrade_deferred_to_the_window_is_refused() -> None:
    upgrade = {**DATABASE, "immediate": {"database.engineVersion (major)": "18"}}
    assert refusal(DATABASE, upgrade) is None  # applied immediately: fine
    deferred = {**upgrade, "apply_immediately": False}
    assert refusal(DATABASE, deferred) == (
        "refused: database.engineVersion (major) '17' -> '18' on the database (RDS instance "
        "shop-db) must be applied immediately. set database.applyImmediately to true."
    )
    # Deferring anything else is fine.
    assert refusal(DATABASE, {**DATABASE, "apply_immediately": False}) is None


# --- the provider: check at preview, diff at update ------------------------------------------


def test_check_fails_the_preview_with_the_reason_and_no_property() -> None:
    provider = DataStoreGuardProvider()
    result = provider.check(DATABASE, changed(DATABASE, **{"database.name": "shop"}))
    [failure] = result.failures
    assert failure.property == ""  # the engine prints "<type> resource '<name>' has a problem: ..."
    assert failure.reason.startswith("refused: this change replaces the database")
    assert provider.check(DATABASE, dict(DATABASE)).failures == []
    assert provider.check({}, DATABASE).failures == []


def test_diff_raises_the_same_refusal() -> None:
    provider = DataStoreGuardProvider()
    with pytest.raises(ReplacementRefused, match=r"^refused: this change replaces the database"):
        provider.diff("database-guard", DATABASE, changed(DATABASE, **{"database.name": "shop"}))


def test_diff_records_an_allowed_change_in_place_and_nothing_else() -> None:
    provider = DataStoreGuardProvider()
    allowed = {**changed(DATABASE, **{"database.name": "shop"}), "allow_replacement": True}
    result = provider.diff("database-guard", DATABASE, allowed)
    assert result.changes is True and result.replaces == []
    same = provider.diff("database-guard", DATABASE, {**DATABASE, "__provider": "other"})
    assert same.changes is False
    assert provider.update("database-guard", DATABASE, allowed).outs == allowed
    created = provider.create(DATABASE)
    assert created.id == "database-guard" and created.outs == DATABASE


def test_the_engines_dynamic_provider_host_fails_check_and_diff() -> None:
    """Through `python -m pulumi.dynamic`, the process Pulumi runs a Python dynamic provider in,
    over gRPC as the engine calls it: the guard, deserialized from its `__provider` input,
    answers Check with the refusal (a preview or `pulumi up` stops there) and Diff with it."""
    provider = serialize_provider(DataStoreGuardProvider())

    def struct(props: dict[str, Any]) -> Any:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(
                rpc.serialize_properties({**props, "__provider": provider}, {})
            )
        finally:
            loop.close()

    urn = "urn:pulumi:prod::shop::pulumi-python:dynamic/data:DataStoreGuard::shop-db-guard"
    after = changed(DATABASE, **{"database.name": "shop"})
    host = subprocess.Popen([sys.executable, "-m", "pulumi.dynamic"], stdout=subprocess.PIPE)
    try:
        assert host.stdout is not None
        port = int(host.stdout.readline())
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = provider_pb2_grpc.ResourceProviderStub(channel)
            stub.Configure(proto.ConfigureRequest(args=struct({})))
            checked = stub.Check(
                proto.CheckRequest(urn=urn, olds=struct(DATABASE), news=struct(after))
            )
            assert [(f.property, f.reason) for f in checked.failures] == [
                ("", refusal(DATABASE, after))
            ]
            assert not stub.Check(
                proto.CheckRequest(urn=urn, olds=struct(DATABASE), news=struct(DATABASE))
            ).failures
            with pytest.raises(grpc.RpcError) as raised:
                stub.Diff(
                    proto.DiffRequest(id="g", urn=urn, olds=struct(DATABASE), news=struct(after))
                )
            assert raised.value.details().strip().splitlines()[-1] == (
                f"pulumi_django.providers.data_store_guard.ReplacementRefused: "
                f"{refusal(DATABASE, after)}"
            )
    finally:
        host.terminate()
        host.wait()


# --- in the shipped stacks --------------------------------------------------------------------


def stack_document(project_root: Path, stack: str) -> dict[str, Any]:
    document = yaml.safe_load((project_root / f"Pulumi.{stack}.yaml").read_text())
    return {
        key.removeprefix("django:"): value
        for key, value in document["config"].items()
        if key.startswith("django:")
    }


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Recording]:
    """`recorded(stack, **changes)`: the shipped `stack`, its `django:` sections merged with
    `changes`, as `pulumi up` registers it (recorded once per session)."""
    return lambda stack, **changes: shipped_site(tmp_path_factory, stack, **changes)


def guard_inputs(recording: Recording, kind: str) -> dict[str, Any]:
    [guard] = [g for g in recording.find(GUARD) if g.inputs["kind"] == kind]
    return guard.inputs


def preview(before: Recording, after: Recording, kind: str) -> list[str]:
    """What the engine's check of the guard says when `after` is previewed over `before`."""
    result = DataStoreGuardProvider().check(guard_inputs(before, kind), guard_inputs(after, kind))
    return [failure.reason for failure in result.failures]


@pytest.mark.parametrize("stack", ["dev", "prod"])
@pytest.mark.parametrize(
    ("changes", "kind", "says"),
    [
        ({"database": {"name": "shop"}}, "database", "database.name 'app' -> 'shop'"),
        ({"database": {"username": "admin"}}, "database", "database.username 'django' -> 'admin'"),
        ({"network": {"cidr": "10.1.0.0/16"}}, "database", "network.cidr '10.0.0.0/16' -> "),
        ({"network": {"cidr": "10.1.0.0/16"}}, "cache", "network.cidr '10.0.0.0/16' -> "),
    ],
    ids=["database-name", "database-username", "cidr-database", "cidr-cache"],
)
def test_a_replacing_change_of_a_shipped_stack_is_refused_unless_allowed(
    recorded: Callable[..., Recording], stack: str, changes: dict[str, Any], kind: str, says: str
) -> None:
    before, after = recorded(stack), recorded(stack, **changes)
    [reason] = preview(before, after, kind)
    assert says in reason
    assert f"add {kind} to django:allowReplacement" in reason
    allowed = recorded(stack, allowReplacement=[kind], **changes)
    assert preview(before, allowed, kind) == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_changes_that_keep_the_stores_pass_the_guards(
    recorded: Callable[..., Recording], stack: str
) -> None:
    before = recorded(stack)
    after = recorded(
        stack,
        database={"instanceClass": "db.r7g.large", "engineVersion": "18"},
        cache={"nodeType": "cache.r7g.large", "engine": "valkey", "engineVersion": "8.0"},
        static={"keepReleases": 3},
    )
    assert preview(before, after, "database") == []
    assert preview(before, after, "cache") == []


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_each_store_and_its_subnet_group_wait_for_their_guard(
    recorded: Callable[..., Recording], stack: str
) -> None:
    recording = recorded(stack)
    for store, subnets, kind in (
        (INSTANCE, "aws:rds/subnetGroup:SubnetGroup", "database"),
        (GROUP, "aws:elasticache/subnetGroup:SubnetGroup", "cache"),
    ):
        [guard] = [g for g in recording.find(GUARD) if g.inputs["kind"] == kind]
        assert guard.urn in recording.one(store).dependencies
        assert guard.urn in recording.one(subnets).dependencies
        # The guard waits for nothing of the store: it is checked before anything of it.
        assert not recording.depends_on(guard.urn, recording.one(store).urn)


PROTECTED = {
    INSTANCE: None,
    GROUP: None,
    "aws:s3/bucket:Bucket": r".*-(static|media)",
    "aws:ecr/repository:Repository": None,
    "aws:ec2/vpc:Vpc": None,
}


def protected(recording: Recording) -> dict[str, bool]:
    return {
        resource.name: bool(resource.options.get("protect"))
        for type_, name in PROTECTED.items()
        for resource in recording.find(type_, name)
    }


def test_prod_protects_what_holds_data_and_nothing_else(
    recorded: Callable[..., Recording],
) -> None:
    recording = recorded("prod")
    assert protected(recording) == {
        "bigfoot-db": True,
        "bigfoot-group": True,
        "bigfoot-static": True,
        "bigfoot-media": True,
        "bigfoot-repository": True,
        "bigfoot-vpc": True,
    }
    kept = set(protected(recording))
    others = [
        r.name for r in recording.resources if r.options.get("protect") and r.name not in kept
    ]
    assert others == []


def test_dev_relaxes_protection_by_its_own_key(
    recorded: Callable[..., Recording], project_root: Path
) -> None:
    assert stack_document(project_root, "dev")["protect"] is False
    assert set(protected(recorded("dev")).values()) == {False}
    assert set(protected(recorded("dev", protect=True)).values()) == {True}


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"allowReplacement": '["database", "database"]'}, "list each data store once"),
        ({"allowReplacement": '["bucket"]'}, "'database' or 'cache'"),
        ({"protect": "maybe"}, "= 'maybe': use true or false"),
    ],
)
def test_protection_keys_refuse_mistakes(values: dict[str, str], says: str) -> None:
    from pulumi_django.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        parse_stack_config({"target": "aws", **values}, set())
    [problem] = raised.value.problems
    assert problem.startswith(f"django:{next(iter(values))}"), problem
    assert says in problem, problem


def test_protect_reads_the_text_pulumi_passes() -> None:
    assert parse_stack_config({"target": "aws", "protect": "false"}, set()).protect is False
    assert parse_stack_config({"target": "aws"}, set()).protect is True
    assert parse_stack_config({"target": "aws"}, set()).allow_replacement == []
