"""The plan diff's model: two offline plans (`Plan.as_json()`) compared resource by resource.

`diff_plans` finds the resources added, removed and changed (with the changed inputs, secrets
masked), flags stateful resources that would be replaced or deleted, and names the in-place
upgrades that take a data store offline (a PostgreSQL major version).

Replacement is judged offline, so the rules are conservative: a stateful resource whose URN
changes (renamed, or moved under another parent) is deleted and created again unless its
`aliases` option names the old URN (then it is the same resource, compared input by input); a
change to an input the provider can only set at creation (the table below) replaces it.

Tags are compared as AWS applies them: a resource's own `tags` over its provider's
`defaultTags`, so moving tags from the resources to the provider shows as no change.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from pulumi_django.recorder import SECRET

from .diagram import mermaid_diagram

SECRET_NAME = re.compile(
    r"secret|password|passwd|token|private_?key|credential|api_?key", re.IGNORECASE
)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEAD_REF = "the working tree"


@dataclass(frozen=True)
class StatefulType:
    """A resource that holds data, and the inputs that force its replacement (ForceNew)."""

    kind: str
    replace_on: frozenset[str]


def _stateful(kind: str, inputs: str) -> StatefulType:
    return StatefulType(kind, frozenset(inputs.split()))


# Inputs the providers can only set when they create the resource (Terraform's ForceNew, from
# the AWS provider's resource schemas; `region` is every AWS resource's since pulumi-aws 7;
# a Docker volume cannot be updated at all). Conservative: where the provider replaces on some
# changes only (ElastiCache `engine`: on a downgrade), any change is flagged. Wire names
# (camelCase). Extend it when the stack grows a new stateful type.
STATEFUL_TYPES: dict[str, StatefulType] = {
    # `identifier` is not among them: the provider renames an instance in place
    # (ModifyDBInstance's NewDBInstanceIdentifier; terraform-provider-aws #32687).
    "aws:rds/instance:Instance": _stateful(
        "database",
        "engine dbName username storageEncrypted kmsKeyId "
        "availabilityZone characterSetName ncharCharacterSetName timezone "
        "customIamInstanceProfile snapshotIdentifier restoreToPointInTime s3Import region",
    ),
    "aws:rds/cluster:Cluster": _stateful(
        "database",
        "clusterIdentifier clusterIdentifierPrefix engine engineMode databaseName "
        "masterUsername storageEncrypted kmsKeyId availabilityZones dbSubnetGroupName "
        "dbSystemId clusterScalabilityType snapshotIdentifier sourceRegion "
        "restoreToPointInTime s3Import region",
    ),
    "aws:elasticache/replicationGroup:ReplicationGroup": _stateful(
        "cache",
        "replicationGroupId engine atRestEncryptionEnabled kmsKeyId subnetGroupName port "
        "networkType dataTieringEnabled globalReplicationGroupId securityGroupNames "
        "snapshotArns snapshotName region",
    ),
    "aws:s3/bucket:Bucket": _stateful("bucket", "bucket bucketPrefix objectLockEnabled region"),
    "aws:ecr/repository:Repository": _stateful(
        "image repository", "name encryptionConfigurations region"
    ),
    "docker:index/volume:Volume": _stateful("volume", "name driver driverOpts labels"),
}


CONSERVATIVE_NOTE = (
    "Offline plan under mocks: no cloud credentials and no state were used, so values only "
    "the cloud knows show as placeholders and a change hidden inside a secret is not visible. "
    "Replacements are judged from a conservative table of stateful types and the inputs that "
    "force a new resource (pulumi_django.cli.plan_diff.STATEFUL_TYPES) plus `replaceOnChanges`; "
    "`pulumi preview` against the real stack has the last word."
)


class _Absent:
    """An input present on one side only."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


def _major(version: Any) -> str:
    return str(version).split(".")[0]


@dataclass(frozen=True)
class UpgradeRule:
    """An input whose change the provider makes in place, taking the resource offline."""

    input: str
    applies: Callable[[Any, Any], bool]
    downtime: str


# AWS: "Upgrades of the RDS for PostgreSQL DB engine" (USER_UpgradeDBInstance.PostgreSQL) and
# "How do I calculate downtime when my RDS for PostgreSQL instance has a major version
# upgrade?" (repost.aws knowledge center, rds-postgresql-upgrade-downtime).
RDS_MAJOR_UPGRADE_DOWNTIME = (
    "in-place major version upgrade: RDS takes a snapshot, shuts the database down, runs "
    "pg_upgrade and takes another snapshot; the database is unavailable throughout, for "
    "minutes (longer with many tables), Multi-AZ included (primary and standby are upgraded "
    "at the same time). Test it on a restored snapshot first (docs/operations.md)"
)
IN_PLACE_UPGRADES: dict[str, UpgradeRule] = {
    "aws:rds/instance:Instance": UpgradeRule(
        "engineVersion",
        lambda before, after: (
            before is not ABSENT and after is not ABSENT and _major(before) != _major(after)
        ),
        RDS_MAJOR_UPGRADE_DOWNTIME,
    ),
}


@dataclass(frozen=True)
class ValueChange:
    """One changed input (or resource option), at a property path such as `ingress[0].fromPort`."""

    path: str
    before: Any
    after: Any
    replaces: bool = False

    @property
    def change(self) -> str:
        if self.before is ABSENT:
            return "added"
        if self.after is ABSENT:
            return "removed"
        return "changed"

    def as_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "before": None if self.before is ABSENT else self.before,
            "after": None if self.after is ABSENT else self.after,
            "replaces": self.replaces,
        }


@dataclass(frozen=True)
class ResourceChange:
    urn: str
    type: str
    name: str
    stateful: str | None
    inputs: list[ValueChange] = field(default_factory=list)
    options: list[ValueChange] = field(default_factory=list)

    @property
    def replaced(self) -> bool:
        return any(change.replaces for change in self.inputs)

    def as_json(self) -> dict[str, Any]:
        return {
            **_identity(self),
            "replaced": self.replaced,
            "inputs": [change.as_json() for change in self.inputs],
            "options": [change.as_json() for change in self.options],
        }


@dataclass(frozen=True)
class StatefulRisk:
    """A stateful resource whose data would not survive the change."""

    urn: str
    type: str
    name: str
    kind: str
    action: str  # "replace", "move" (its URN changes) or "delete"
    reason: str
    inputs: list[str] = field(default_factory=list)
    new_urn: str | None = None

    def as_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True)
class InPlaceUpgrade:
    """A stateful resource that keeps its data but is offline while the change is applied."""

    urn: str
    type: str
    name: str
    kind: str
    path: str
    before: Any
    after: Any
    downtime: str

    def as_json(self) -> dict[str, Any]:
        return _fields_json(self)


@dataclass(frozen=True)
class MigrationReview:
    """The migration check of the migrations added since the base ref."""

    added: list[str]
    checked: list[str] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    # The ref has none of the app's migrations: nothing of the app runs yet, none is judged.
    first_deploy: bool = False

    @property
    def unsafe(self) -> list[dict[str, Any]]:
        return [f for f in self.findings if f.get("severity") == "unsafe" and not f["acknowledged"]]

    def as_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "checked": self.checked,
            "findings": self.findings,
            "error": self.error,
            "firstDeploy": self.first_deploy,
        }


@dataclass(frozen=True)
class Side:
    """One side of the comparison: the ref as given, the commit it names."""

    ref: str
    commit: str | None
    # base: whether the stack existed there; head: whether the tree has uncommitted changes.
    found: bool = True
    dirty: bool = False


@dataclass(frozen=True)
class AppSides:
    """The app's two sides when it lives in another git repository than the project."""

    repository: str  # its work tree, relative to the project directory
    base: Side
    head: Side

    def as_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "base": {"ref": self.base.ref, "commit": self.base.commit},
            "head": {"ref": self.head.ref, "commit": self.head.commit, "dirty": self.head.dirty},
        }


@dataclass
class PlanDiff:
    stack: str
    base: Side
    head: Side
    added: list[dict[str, Any]]
    removed: list[dict[str, Any]]
    changed: list[ResourceChange]
    risks: list[StatefulRisk]
    unchanged: int
    release_before: list[dict[str, Any]]
    release_after: list[dict[str, Any]]
    mermaid: str
    migrations: MigrationReview | None = None
    notes: list[str] = field(default_factory=list)
    app: AppSides | None = None
    upgrades: list[InPlaceUpgrade] = field(default_factory=list)

    @property
    def migrations_base(self) -> Side:
        """The side the app's migrations are compared with: the app's own repository's."""
        return self.app.base if self.app else self.base

    @property
    def replaced(self) -> list[ResourceChange]:
        return [change for change in self.changed if change.replaced]

    @property
    def release_order_changed(self) -> bool:
        return _release_shape(self.release_before) != _release_shape(self.release_after)


def diff_plans(
    base: Mapping[str, Any],
    head: Mapping[str, Any],
    *,
    stack: str,
    base_side: Side,
    head_side: Side,
) -> PlanDiff:
    """Compares two plan documents (`Plan.as_json()`), resource by resource, keyed by URN; a
    head resource aliased to a base URN is compared with the base resource of that URN."""
    before = _by_urn(base)
    after = _by_urn(head)
    for urn, resource in list(after.items()):
        former = next(
            (alias for alias in resource.get("options", {}).get("aliases", []) if alias in before),
            None,
        )
        if former is not None and former not in after:
            before[urn] = before.pop(former)
    added = [after[urn] for urn in after if urn not in before]
    removed = [before[urn] for urn in before if urn not in after]
    changed: list[ResourceChange] = []
    unchanged = 0
    for urn, resource in after.items():
        if urn not in before:
            continue
        change = _resource_change(before[urn], resource)
        if change.inputs or change.options:
            changed.append(change)
        else:
            unchanged += 1
    risks = _stateful_risks(added, removed, changed)
    statuses = {resource["urn"]: "added" for resource in added}
    statuses |= {resource["urn"]: "removed" for resource in removed}
    statuses |= {c.urn: "replaced" if c.replaced else "changed" for c in changed}
    return PlanDiff(
        stack=stack,
        base=base_side,
        head=head_side,
        added=[_summary(resource) for resource in added],
        removed=[_summary(resource) for resource in removed],
        changed=changed,
        risks=risks,
        unchanged=unchanged,
        release_before=_named_release_order(base),
        release_after=_named_release_order(head),
        mermaid=mermaid_diagram(head, removed, statuses),
        notes=(
            [*_provider_moves(before, after)]
            if base_side.found
            else [f"Stack {stack} does not exist at {base_side.ref}."]
        ),
        upgrades=_in_place_upgrades(changed),
    )


def _in_place_upgrades(changed: list[ResourceChange]) -> list[InPlaceUpgrade]:
    """The changes an `IN_PLACE_UPGRADES` rule names, on resources not replaced anyway."""
    found = []
    for change in changed:
        rule = IN_PLACE_UPGRADES.get(change.type)
        if rule is None or change.replaced:
            continue
        for item in change.inputs:
            if item.path == rule.input and rule.applies(item.before, item.after):
                found.append(
                    InPlaceUpgrade(
                        change.urn,
                        change.type,
                        change.name,
                        change.stateful or "resource",
                        item.path,
                        item.before,
                        item.after,
                        rule.downtime,
                    )
                )
    return found


def _provider_moves(
    before: Mapping[str, Mapping[str, Any]], after: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """A note per provider that resources move to: the engine compares the two providers'
    settings (DiffConfig) and updates such resources in place only since pulumi/pulumi#18509
    (February 2025); an older CLI replaces them all, data-holding ones included."""
    moved: dict[str, int] = {}
    for urn, resource in after.items():
        if urn in before and _provider_urn(before[urn]) != _provider_urn(resource):
            name = (_provider_urn(resource) or "the default provider").rsplit("::", 1)[-1]
            moved[name] = moved.get(name, 0) + 1
    return [
        f"{count} {'resource moves' if count == 1 else 'resources move'} to the provider "
        f"{name}: a Pulumi CLI released after "
        "10 February 2025 (pulumi/pulumi#18509) updates them in place; an older one replaces "
        "them, databases included, so upgrade the CLI before `pulumi up`."
        for name, count in sorted(moved.items())
    ]


def _provider_urn(resource: Mapping[str, Any]) -> str | None:
    """The URN of a resource's provider (the reference is `URN::ID`); None: the default one."""
    reference = resource.get("provider")
    return reference.rsplit("::", 1)[0] if reference else None


def _by_urn(plan: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The plan's resources by URN, each AWS resource's tags as AWS applies them."""
    resources = plan.get("resources", [])
    default_tags = {
        f"{resource['urn']}::": _json_document(resource["inputs"].get("defaultTags", {}))
        for resource in resources
        if resource["type"] == "pulumi:providers:aws"
    }
    found = {}
    for resource in resources:
        provider = next(
            (
                tags
                for prefix, tags in default_tags.items()
                if (resource.get("provider") or "").startswith(prefix)
            ),
            None,
        )
        provided = (provider or {}).get("tags") if isinstance(provider, dict) else None
        if provided and _taggable(resource["type"]):
            inputs = resource.get("inputs", {})
            resource = {
                **resource,
                "inputs": {**inputs, "tags": {**provided, **inputs.get("tags", {})}},
            }
        found[resource["urn"]] = resource
    return found


@functools.cache
def _taggable(type_: str) -> bool:
    """Whether a pulumi-aws resource type takes `tags` (so the provider's default tags apply)."""
    package, module, name = [*type_.split(":"), "", ""][:3]
    if package != "aws" or not name:
        return False
    try:
        found = importlib.import_module(f"pulumi_aws.{module.split('/')[0]}")
    except ImportError:
        return False
    resource_class = getattr(found, name, None)
    init = getattr(resource_class, "_internal_init", None)
    return init is not None and "tags" in inspect.signature(init).parameters


def stateful_kind(type_: str) -> str | None:
    found = STATEFUL_TYPES.get(type_)
    return found.kind if found else None


def _summary(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "urn": resource["urn"],
        "type": resource["type"],
        "name": resource["name"],
        "stateful": stateful_kind(resource["type"]),
    }


def _fields_json(flagged: StatefulRisk | InPlaceUpgrade) -> dict[str, Any]:
    """A flagged resource's fields, in order, named in camelCase (`new_urn`: `newUrn`)."""
    return {
        re.sub(r"_(\w)", lambda match: match[1].upper(), each.name): getattr(flagged, each.name)
        for each in fields(flagged)
    }


def _identity(change: ResourceChange) -> dict[str, Any]:
    return {
        "urn": change.urn,
        "type": change.type,
        "name": change.name,
        "stateful": change.stateful,
    }


def _resource_change(before: Mapping[str, Any], after: Mapping[str, Any]) -> ResourceChange:
    stateful = STATEFUL_TYPES.get(after["type"])
    replace_on = set(stateful.replace_on if stateful else ())
    # A `replaceOnChanges` path counts for its whole top-level input: conservative.
    replace_on.update(
        _top_level(path) for path in (after.get("options") or {}).get("replaceOnChanges", [])
    )
    inputs = [
        ValueChange(path, old, new, "*" in replace_on or _top_level(path) in replace_on)
        for path, old, new in _value_changes(before.get("inputs", {}), after.get("inputs", {}))
    ]
    # Aliases only name the URNs a resource was known by: no change to the resource itself.
    options = [
        ValueChange(path, old, new)
        for path, old, new in _value_changes(
            _without_aliases(before.get("options", {})), _without_aliases(after.get("options", {}))
        )
    ]
    return ResourceChange(
        after["urn"],
        after["type"],
        after["name"],
        stateful.kind if stateful else None,
        inputs,
        options,
    )


def _without_aliases(options: Mapping[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in options.items() if name != "aliases"}


def _value_changes(before: Any, after: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    """Leaf-level differences, secrets masked. A JSON document held in a string (a task
    definition, a policy) is compared as the document it is."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        # `{"name": "API_TOKEN", "value": ...}` (a container's environment) hides its value.
        secret_entry = any(
            isinstance(side.get("name"), str) and SECRET_NAME.search(side["name"])
            for side in (before, after)
        )
        found = []
        for key in sorted(set(before) | set(after)):
            items = _value_changes(
                before.get(key, ABSENT), after.get(key, ABSENT), _join(path, key)
            )
            if key == "value" and secret_entry:
                items = [(where, _mask_all(old), _mask_all(new)) for where, old, new in items]
            found += items
        return found
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        found = []
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            found += _value_changes(old, new, f"{path}[{index}]")
        return found
    old_document, new_document = _json_document(before), _json_document(after)
    if old_document is not None and new_document is not None:
        return _value_changes(old_document, new_document, path)
    return [(path, mask(path, before), mask(path, after))]


# Resource options that list property names: their values are names, never secrets.
PROPERTY_NAME_OPTIONS = frozenset({"additionalSecretOutputs", "ignoreChanges", "replaceOnChanges"})


def mask(path: str, value: Any) -> Any:
    """Strings under a secret-looking key are shown as `[secret]`, whatever marked them."""
    if value is ABSENT:
        return value
    keys = _path_keys(path)
    if any(SECRET_NAME.search(key) for key in keys if key not in PROPERTY_NAME_OPTIONS):
        return _mask_all(value)
    if isinstance(value, dict):
        secret_value = isinstance(value.get("name"), str) and SECRET_NAME.search(value["name"])
        return {
            key: _mask_all(item) if key == "value" and secret_value else mask(key, item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask("", item) for item in value]
    return value


def _mask_all(value: Any) -> Any:
    if isinstance(value, str):
        return SECRET
    if isinstance(value, dict):
        return {key: _mask_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_mask_all(item) for item in value]
    return value


def _path_keys(path: str) -> list[str]:
    """`a.b["c d"][0].e` -> ["a", "b", "c d", "e"]."""
    found = re.findall(r'\[("(?:[^"\\]|\\.)*")\]|([A-Za-z_][A-Za-z0-9_]*)', path)
    return [json.loads(quoted) if quoted else bare for quoted, bare in found]


def _join(path: str, key: str) -> str:
    step = key if IDENTIFIER.match(key) else json.dumps(key)
    if not IDENTIFIER.match(key):
        return f"{path}[{step}]"
    return f"{path}.{step}" if path else step


def _top_level(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _json_document(value: Any) -> Any:
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        document = json.loads(value)
    except ValueError:
        return None
    return document if isinstance(document, dict | list) else None


def _stateful_risks(
    added: Sequence[Mapping[str, Any]],
    removed: Sequence[Mapping[str, Any]],
    changed: list[ResourceChange],
) -> list[StatefulRisk]:
    risks = []
    for change in changed:
        if change.stateful and change.replaced:
            forcing = [c.path for c in change.inputs if c.replaces]
            names = ", ".join(f"`{path}`" for path in forcing)
            risks.append(
                StatefulRisk(
                    change.urn,
                    change.type,
                    change.name,
                    change.stateful,
                    "replace",
                    f"replaced (delete + create) because {names} can only be set at creation",
                    forcing,
                )
            )
    newcomers = [r for r in added if r["type"] in STATEFUL_TYPES]
    for resource in removed:
        stateful = STATEFUL_TYPES.get(resource["type"])
        if stateful is None:
            continue
        successor = _successor(resource, newcomers)
        if successor is not None:
            newcomers.remove(successor)
            risks.append(
                StatefulRisk(
                    resource["urn"],
                    resource["type"],
                    resource["name"],
                    stateful.kind,
                    "move",
                    f"its URN changes (now `{successor['name']}`): deleted and created again "
                    "unless the new resource lists the old URN in its `aliases` option",
                    new_urn=successor["urn"],
                )
            )
            continue
        options = resource.get("options") or {}
        reason = "deleted: the program no longer declares it"
        if options.get("retainOnDelete"):
            reason += " (retainOnDelete: the cloud resource is kept, but no longer managed)"
        if options.get("protect"):
            reason += " (protect: `pulumi up` refuses until it is unprotected)"
        risks.append(
            StatefulRisk(
                resource["urn"], resource["type"], resource["name"], stateful.kind, "delete", reason
            )
        )
    return risks


def _successor(
    resource: Mapping[str, Any], newcomers: list[Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    """The added resource that most likely is `resource` renamed or moved: the same type and
    name under another parent, or else the only added resource of its type."""
    same_type = [r for r in newcomers if r["type"] == resource["type"]]
    same_name = [r for r in same_type if r["name"] == resource["name"]]
    if same_name:
        return same_name[0]
    return same_type[0] if len(same_type) == 1 else None


def _named_release_order(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    names = {resource["urn"]: resource["name"] for resource in plan.get("resources", [])}
    return [
        {
            "step": step["step"],
            "title": step["title"],
            "resources": [names.get(urn, urn) for urn in step["resources"]],
            "after": step.get("after"),
            "ordered": step.get("ordered"),
        }
        for step in plan.get("releaseOrder", [])
    ]


def _release_shape(steps: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(step["step"], step["ordered"]) for step in steps]
