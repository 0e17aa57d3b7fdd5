"""Stops a change that would replace a data store (the database, the cache), unless allowed.

Some inputs of an RDS instance or an ElastiCache replication group can only be set when it is
created: a new database name or master user, another port, a move to another VPC. Pulumi
"updates" such a change by creating a new, empty data store and deleting the old one, and the
preview shows it as one line among many. A `DataStoreGuard` holds the store's identity (those
inputs, as the program last deployed them) and refuses a change to it:

- `check` compares the identity it recorded with the new one. A difference fails `pulumi
  preview` and `pulumi up` (the engine checks every resource before it steps it, with
  `--skip-preview` too) with one line: what changes, what it would do, and the setting that
  allows it. The data store depends on its guard, so nothing of it is touched first.
- `diff` applies the same rule, for an engine that would step the guard without checking it.

`allow_replacement` lets the change through once it is deliberate; the guard then records the
new identity. Values listed in `in_place` are transitions of an identity input that the provider
makes in place (Redis -> Valkey). `immediate` holds values whose change the service applies only
immediately (a PostgreSQL major upgrade): while `apply_immediately` is off, a change to one of
them is refused with `immediate_hint`, instead of failing half-way through `pulumi up`.

Pure: no cloud call; `refusal` is the whole rule.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic
from pulumi.runtime import rpc

from ..errors import PulumiDjangoError

# What a value still unknown during a preview reads as (an input computed by another resource).
UNKNOWN_VALUE = "(known after apply)"


class ReplacementRefused(PulumiDjangoError):
    """A change would replace a data store (or needs an immediate apply) and is not allowed;
    the message says what changes and which setting allows it."""


def _shown(value: Any) -> str:
    if value == rpc.UNKNOWN:
        return UNKNOWN_VALUE
    if value is None or value == "":
        return "(none)"
    return repr(value)


def _value(identity: Mapping[str, Any], key: str) -> Any:
    """An identity value; absent and empty are the same (no KMS key, say), so that a key
    added to the identity by a later version does not read as a change."""
    value = identity.get(key)
    return None if value == "" else value


def _in_place(key: str, old: Any, new: Any, transitions: Sequence[Sequence[Any]]) -> bool:
    return any(list(each) == [key, old, new] for each in transitions or [])


def identity_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """`key 'old' -> 'new'` for each identity input that changes and is not an in-place
    transition. An input unknown during a preview counts as a change: it is computed by a
    resource that is itself being created or replaced."""
    before: Mapping[str, Any] = olds.get("identity") or {}
    after: Mapping[str, Any] = news.get("identity") or {}
    transitions = news.get("in_place") or []
    return [
        f"{key} {_shown(_value(before, key))} -> {_shown(_value(after, key))}"
        for key in sorted(set(before) | set(after))
        if _value(before, key) != _value(after, key)
        and not _in_place(key, _value(before, key), _value(after, key), transitions)
    ]


def immediate_changes(olds: Mapping[str, Any], news: Mapping[str, Any]) -> list[str]:
    """`key 'old' -> 'new'` for each value the service applies only immediately."""
    before: Mapping[str, Any] = olds.get("immediate") or {}
    after: Mapping[str, Any] = news.get("immediate") or {}
    return [
        f"{key} {_shown(before[key])} -> {_shown(after.get(key))}"
        for key in sorted(before)
        if key in after and before[key] != after[key]
    ]


def refusal(olds: Mapping[str, Any], news: Mapping[str, Any]) -> str | None:
    """One line saying why the change from `olds` to `news` is refused, or None when it may
    go ahead. With no `olds` (the guard is new) there is nothing to compare with."""
    if not olds or not olds.get("identity"):
        return None
    what = f"{news.get('kind') or 'data store'} ({news.get('resource') or 'its resource'})"
    changes = identity_changes(olds, news)
    if changes and not news.get("allow_replacement"):
        return _sentences(
            f"refused: this change replaces the {what}: {'; '.join(changes)}",
            news.get("consequence"),
            news.get("allow_hint"),
        )
    upgrades = immediate_changes(olds, news)
    if upgrades and not news.get("apply_immediately"):
        return _sentences(
            f"refused: {'; '.join(upgrades)} on the {what} must be applied immediately",
            news.get("immediate_hint"),
        )
    return None


def _sentences(*parts: Any) -> str:
    """The parts that are set, as one line of sentences."""
    return " ".join(f"{str(part).rstrip('.')}." for part in parts if part)


class DataStoreGuardProvider(pulumi.dynamic.ResourceProvider):
    """The guard's lifecycle: nothing exists in the cloud; its state is the identity it saw."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.CheckResult:
        reason = refusal(olds, news)
        failures = [pulumi.dynamic.CheckFailure("", reason)] if reason else []
        return pulumi.dynamic.CheckResult(news, failures)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        reason = refusal(olds, news)
        if reason:
            raise ReplacementRefused(reason)
        keys = set(olds) | set(news)
        changed = any(olds.get(key) != news.get(key) for key in keys if key != "__provider")
        return pulumi.dynamic.DiffResult(changes=changed, replaces=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(f"{props.get('kind', 'data-store')}-guard", props)

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult(news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to delete: the guard is a record, not infrastructure."""


class DataStoreGuard(pulumi.dynamic.Resource, module="data", name="DataStoreGuard"):
    """Refuses a change to `identity` unless `allow_replacement`; the data store it guards
    lists it in `depends_on`.

    `kind` and `resource` name the store in the message (`database`, `RDS instance x-db`),
    `consequence` says what a replacement does, `allow_hint` which setting allows it."""

    identity: pulumi.Output[dict[str, Any]]

    def __init__(
        self,
        resource_name: str,
        *,
        kind: str,
        resource: str,
        identity: Mapping[str, pulumi.Input[str | None]],
        allow_replacement: bool,
        consequence: str,
        allow_hint: str,
        in_place: Sequence[tuple[str, str, str]] = (),
        immediate: Mapping[str, pulumi.Input[str]] | None = None,
        apply_immediately: bool = True,
        immediate_hint: str = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(
            DataStoreGuardProvider(),
            resource_name,
            {
                "kind": kind,
                "resource": resource,
                "identity": dict(identity),
                "allow_replacement": allow_replacement,
                "consequence": consequence,
                "allow_hint": allow_hint,
                "in_place": [list(each) for each in in_place],
                "immediate": dict(immediate or {}),
                "apply_immediately": apply_immediately,
                "immediate_hint": immediate_hint,
            },
            opts,
        )
