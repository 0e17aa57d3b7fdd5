"""What a change does to a stack, offline: two offline plans compared, resource by resource.

Pure functions over the plan JSON (`Plan.as_json()`): `diff_plans` finds the resources added,
removed and changed (with the changed inputs, secrets masked) and flags stateful resources that
would be replaced or deleted; `render_text`, `render_markdown` and `diff_json` present it;
`mermaid_diagram` draws the stack. `git_plan` produces the two plans from a git ref.

Replacement is judged offline, so the rules are conservative: a stateful resource whose URN
changes (renamed, or moved under another parent) is deleted and created again unless an
`aliases` option carries it over, which the offline plan cannot see; a change to an input the
provider can only set at creation (the table below) replaces it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pulumi_django.recorder import SECRET, STACK_TYPE

MARKER = "<!-- pulumi-django-plan:{stack} -->"
# GitHub refuses comments over 65,536 characters.
COMMENT_LIMIT = 60_000
# Above this many cloud resources, the diagram shows the unchanged ones of each component as
# one node: a picture of a whole stack is too tall to read in a comment.
DIAGRAM_NODE_LIMIT = 40
VALUE_WIDTH = 120
SECRET_NAME = re.compile(
    r"secret|password|passwd|token|private_?key|credential|api_?key", re.IGNORECASE
)
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
HEAD_REF = "the working tree"
PROVIDER_TYPE_PREFIX = "pulumi:providers:"


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
    "aws:rds/instance:Instance": _stateful(
        "database",
        "identifier identifierPrefix engine dbName username storageEncrypted kmsKeyId "
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
        return {
            "urn": self.urn,
            "type": self.type,
            "name": self.name,
            "kind": self.kind,
            "action": self.action,
            "reason": self.reason,
            "inputs": self.inputs,
            "newUrn": self.new_urn,
        }


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
    """Compares two plan documents (`Plan.as_json()`), resource by resource, keyed by URN."""
    before = {resource["urn"]: resource for resource in base.get("resources", [])}
    after = {resource["urn"]: resource for resource in head.get("resources", [])}
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
        notes=[] if base_side.found else [f"Stack {stack} does not exist at {base_side.ref}."],
    )


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
    options = [
        ValueChange(path, old, new)
        for path, old, new in _value_changes(before.get("options", {}), after.get("options", {}))
    ]
    return ResourceChange(
        after["urn"],
        after["type"],
        after["name"],
        stateful.kind if stateful else None,
        inputs,
        options,
    )


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
    added: list[Mapping[str, Any]],
    removed: list[Mapping[str, Any]],
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


# --- the diagram ------------------------------------------------------------------------


STATUS_STYLES = {
    "added": "fill:#dafbe1,stroke:#1a7f37,color:#0d3b1a",
    "changed": "fill:#fff8c5,stroke:#9a6700,color:#3b2a00",
    "replaced": "fill:#ffebe9,stroke:#cf222e,stroke-width:3px,color:#5c0a0f",
    "removed": "fill:#ffebe9,stroke:#cf222e,stroke-dasharray:5 5,color:#5c0a0f",
}


def mermaid_diagram(
    head: Mapping[str, Any],
    removed: Iterable[Mapping[str, Any]] = (),
    statuses: Mapping[str, str] | None = None,
) -> str:
    """The stack as a flowchart: one box per component, one node per cloud or Docker resource,
    coloured by what the change does to it (removed ones drawn dashed), and an arrow from a
    component to the ones that wait for it."""
    statuses = statuses or {}
    resources = [r for r in head.get("resources", []) if r["type"] != STACK_TYPE]
    resources += [r for r in removed if r["type"] != STACK_TYPE]
    resources = [r for r in resources if not r["type"].startswith(PROVIDER_TYPE_PREFIX)]
    by_urn = {r["urn"]: r for r in resources}
    ids = {urn: f"n{index}" for index, urn in enumerate(by_urn)}
    children: dict[str | None, list[Mapping[str, Any]]] = {}
    for resource in resources:
        parent = resource.get("parent")
        children.setdefault(parent if parent in by_urn else None, []).append(resource)
    collapse = sum(1 for r in resources if r["custom"]) > DIAGRAM_NODE_LIMIT
    for resource in resources:
        if collapse and resource["custom"] and resource["urn"] not in statuses:
            # Drawn as its component's "N unchanged" node, and so are the arrows to it.
            parent = resource.get("parent")
            ids[resource["urn"]] = f"{ids[parent] if parent in by_urn else 'top'}_unchanged"
    lines = ["flowchart LR"]

    def emit(parent: str | None, indent: str) -> None:
        quiet = 0
        for resource in children.get(parent, []):
            urn = resource["urn"]
            if not resource["custom"]:
                lines.append(f'{indent}subgraph {ids[urn]}["{_mermaid_label(resource, " ")}"]')
                emit(urn, indent + "  ")
                lines.append(f"{indent}end")
            elif ids[urn].endswith("_unchanged"):
                quiet += 1
            else:
                status = statuses.get(urn)
                suffix = f":::{status}" if status else ""
                lines.append(f'{indent}{ids[urn]}["{_mermaid_label(resource)}"]{suffix}')
        if quiet:
            owner = ids[parent] if parent else "top"
            lines.append(f'{indent}{owner}_unchanged["{quiet} unchanged"]')

    emit(None, "  ")
    for status in ("removed", "replaced", "changed", "added"):
        if status in statuses.values():
            lines.append(f"  classDef {status} {STATUS_STYLES[status]}")
    drawn: list[tuple[str, str]] = []
    for before, after in _group_edges(head, by_urn):
        edge = (ids[before], ids[after])
        if edge[0] != edge[1] and edge not in drawn:
            drawn.append(edge)
            lines.append(f"  {edge[0]} --> {edge[1]}")
    return "\n".join(lines)


def _group_edges(head: Mapping[str, Any], by_urn: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Dependencies drawn between the two siblings under which the dependent and what it
    waits for part ways (dependency first): between components, a component and a resource,
    or two resources at the top. Edges between two resources inside a component are left
    out: they would bury the picture."""

    def lineage(urn: str) -> list[str]:
        chain = []
        current = by_urn.get(urn)
        while current is not None:
            chain.append(str(current["urn"]))
            current = by_urn.get(current.get("parent"))
        return chain[::-1]

    edges: list[tuple[str, str]] = []
    for resource in head.get("resources", []):
        mine = lineage(resource["urn"])
        needed = set(resource.get("dependencies", []))
        for urns in (resource.get("propertyDependencies") or {}).values():
            needed.update(urns)
        for dependency in sorted(needed):
            theirs = lineage(dependency)
            level = next(
                (i for i, (a, b) in enumerate(zip(theirs, mine, strict=False)) if a != b), None
            )
            if level is None:  # one holds the other
                continue
            before, after = theirs[level], mine[level]
            components = not (by_urn[before]["custom"] and by_urn[after]["custom"])
            if (components or level == 0) and (before, after) not in edges:
                edges.append((before, after))
    return edges


def _mermaid_label(resource: Mapping[str, Any], separator: str = "<br/>") -> str:
    """Type and name, escaped for a quoted Mermaid label (a box's title on one line: Mermaid
    draws a second one over the box's first node)."""
    escaped = [
        text.replace('"', "#quot;").replace("<", "#lt;").replace(">", "#gt;")
        for text in (short_type(resource["type"]), resource["name"])
    ]
    return separator.join(escaped)


def short_type(type_: str) -> str:
    """`aws:rds/instance:Instance` -> `rds.Instance`; `docker:index/image:Image` ->
    `docker.Image`."""
    parts = type_.split(":")
    if len(parts) != 3:
        return type_
    provider, module, name = parts
    module = module.split("/")[0]
    return f"{provider if module == 'index' else module}.{name}"


# --- presenting it ----------------------------------------------------------------------


def diff_json(diff: PlanDiff) -> dict[str, Any]:
    """The diff as one JSON document (the `--format json` contract; extend, never rename)."""
    return {
        "stack": diff.stack,
        "base": {"ref": diff.base.ref, "commit": diff.base.commit, "found": diff.base.found},
        "head": {"ref": diff.head.ref, "commit": diff.head.commit, "dirty": diff.head.dirty},
        "app": diff.app.as_json() if diff.app else None,
        "summary": {
            "added": len(diff.added),
            "removed": len(diff.removed),
            "changed": len(diff.changed),
            "replaced": len(diff.replaced),
            "unchanged": diff.unchanged,
            "statefulAtRisk": len(diff.risks),
        },
        "added": diff.added,
        "removed": diff.removed,
        "changed": [change.as_json() for change in diff.changed],
        "stateful": [risk.as_json() for risk in diff.risks],
        "releaseOrder": {
            "before": diff.release_before,
            "after": diff.release_after,
            "changed": diff.release_order_changed,
        },
        "migrations": diff.migrations.as_json() if diff.migrations else None,
        "mermaid": diff.mermaid,
        "notes": [*diff.notes, CONSERVATIVE_NOTE],
    }


def _side(side: Side, *, markdown: bool) -> str:
    """`v1 (0123456789ab)`, or `the working tree (0123456789ab, with uncommitted changes)`."""
    details = [f"`{side.commit[:12]}`" if markdown else side.commit[:12]] if side.commit else []
    details += ["with uncommitted changes"] if side.dirty else []
    name = side.ref if side.ref == HEAD_REF or not markdown else f"`{side.ref}`"
    return f"{name} ({', '.join(details)})" if details else name


def _app_sides(app: AppSides, *, markdown: bool) -> str:
    where = f"`{app.repository}`" if markdown else app.repository
    return (
        f"The app's own repository {where}: {_side(app.head, markdown=markdown)} "
        f"compared with {_side(app.base, markdown=markdown)}."
    )


def _counts(diff: PlanDiff) -> str:
    replaced = f" ({len(diff.replaced)} replaced)" if diff.replaced else ""
    return (
        f"{len(diff.added)} to add, {len(diff.changed)} to change{replaced}, "
        f"{len(diff.removed)} to delete, {diff.unchanged} unchanged"
    )


def _value(value: Any, width: int = VALUE_WIDTH) -> str:
    if value is ABSENT:
        return "(absent)"
    text = json.dumps(_whole_numbers(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"


def _whole_numbers(value: Any) -> Any:
    """The engine's wire format makes every number a float: 80.0 reads as 80."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    return value


def render_text(diff: PlanDiff) -> str:
    lines = [
        f"Stack {diff.stack}: {_side(diff.head, markdown=False)} compared with "
        f"{_side(diff.base, markdown=False)}, offline.",
        *([f"  {_app_sides(diff.app, markdown=False)}"] if diff.app else []),
        f"  {_counts(diff)}",
    ]
    lines += [f"  {note}" for note in diff.notes]
    if diff.risks:
        lines += ["", "!! STATEFUL RESOURCES WOULD LOSE THEIR DATA:"]
        lines += [
            f"!!   {risk.type}  {risk.name} ({risk.kind}): {risk.reason}" for risk in diff.risks
        ]
    for title, sign, resources in (("Added", "+", diff.added), ("Removed", "-", diff.removed)):
        if resources:
            lines += ["", f"{title}:"]
            lines += [f"  {sign} {r['type']}  {r['name']}" for r in resources]
    if diff.changed:
        lines += ["", "Changed:"]
        for change in diff.changed:
            lines.append(f"  ~ {change.type}  {change.name}")
            for item in [*change.inputs, *_as_options(change.options)]:
                forces = "  (forces replacement)" if item.replaces else ""
                lines.append(
                    f"      {item.path}: {_value(item.before)} -> {_value(item.after)}{forces}"
                )
    lines += ["", "Release order:"]
    lines += _release_lines(diff.release_after, markdown=False) or ["  (no release steps)"]
    if diff.release_order_changed:
        lines += [f"  was: {_release_summary(diff.release_before)}"]
    if diff.migrations is not None:
        lines += ["", f"Migrations added since {diff.migrations_base.ref}:"]
        lines += _migration_lines(diff.migrations, markdown=False)
    lines += ["", CONSERVATIVE_NOTE]
    return "\n".join(lines) + "\n"


def _as_options(options: list[ValueChange]) -> list[ValueChange]:
    return [ValueChange(f"options.{o.path}", o.before, o.after) for o in options]


def _release_lines(steps: list[dict[str, Any]], *, markdown: bool) -> list[str]:
    numbers = {step["step"]: number for number, step in enumerate(steps, 1)}
    lines = []
    for number, step in enumerate(steps, 1):
        names = ", ".join(f"`{name}`" if markdown else name for name in step["resources"])
        gate = ""
        if step["after"] is not None and not step["ordered"]:
            gate = f"NOT ORDERED after step {numbers[step['after']]}: it can run before it"
            gate = f" **({gate})**" if markdown else f" ({gate})"
        lines.append(f"{'' if markdown else '  '}{number}. {step['title']}: {names}{gate}")
    return lines


def _release_summary(steps: list[dict[str, Any]]) -> str:
    titles = [
        step["title"] + ("" if step["after"] is None or step["ordered"] else " (not ordered)")
        for step in steps
    ]
    return " -> ".join(titles) or "(no release steps)"


def _migration_lines(review: MigrationReview, *, markdown: bool) -> list[str]:
    def code(text: str) -> str:
        return f"`{text}`" if markdown else text

    bullet = "- " if markdown else "  "
    if not review.added:
        return [f"{bullet}none"]
    if review.first_deploy:
        noun = "migration" if len(review.added) == 1 else "migrations"
        return [
            f"{bullet}{len(review.added)} {noun}, the app's first: first deploy: nothing runs "
            "yet, every migration is safe"
        ]
    lines = [f"{bullet}{code(path)}" for path in review.added]
    if review.error:
        return [*lines, "", f"{bullet}could not check them: {review.error}"]
    if not review.findings:
        noun = "migration" if len(review.checked) == 1 else "migrations"
        return [*lines, "", f"{bullet}checked {len(review.checked)} {noun}: nothing found"]
    lines.append("")
    for finding in review.findings:
        label = "UNSAFE" if finding["severity"] == "unsafe" else "warning"
        if finding.get("acknowledged"):
            label += " (acknowledged)"
        lines.append(
            f"{bullet}{f'**{label}**' if markdown else label} {code(finding['migration'])} "
            f"{finding['operation']}: {finding['message']}"
        )
        if finding.get("suggestion"):
            lines.append(f"{'  - ' if markdown else '    '}instead: {finding['suggestion']}")
    return lines


def render_markdown(diff: PlanDiff) -> str:
    """A pull-request comment, starting with the marker the workflow finds it again by."""
    text = _markdown(diff, details=True, diagram=True)
    if len(text) > COMMENT_LIMIT:
        text = _markdown(diff, details=False, diagram=True)
    if len(text) > COMMENT_LIMIT:
        text = _markdown(diff, details=False, diagram=False)
    return text


def _markdown(diff: PlanDiff, *, details: bool, diagram: bool) -> str:
    lines = [
        MARKER.format(stack=diff.stack),
        f"### pulumi-django plan: stack `{diff.stack}`",
        "",
        f"Compares {_side(diff.head, markdown=True)} with {_side(diff.base, markdown=True)}, "
        "offline (no credentials, no state).",
        *(["", _app_sides(diff.app, markdown=True)] if diff.app else []),
        "",
        f"**{_counts(diff)}**",
    ]
    lines += ["", *(f"> {note}" for note in diff.notes)] if diff.notes else []
    if diff.risks:
        lines += ["", "> [!CAUTION]", "> **Stateful resources would lose their data:**"]
        lines += [
            f"> - **{risk.kind}** `{risk.name}` (`{risk.type}`): {risk.reason}"
            for risk in diff.risks
        ]
    if diff.migrations and diff.migrations.unsafe:
        lines += ["", "> [!WARNING]", "> **Migrations that break the running version:**"]
        lines += [
            f"> - `{f['migration']}` {f['operation']}: {f['message']}"
            for f in diff.migrations.unsafe
        ]
    for title, resources in (("Added", diff.added), ("Removed", diff.removed)):
        if resources:
            lines += ["", f"#### {title} ({len(resources)})", ""]
            lines += [
                f"- `{r['type']}` **{escape_markdown(r['name'])}**"
                + (f" ({r['stateful']})" if r["stateful"] else "")
                for r in resources
            ]
    if diff.changed:
        lines += ["", f"#### Changed ({len(diff.changed)})", ""]
        for change in diff.changed:
            replaced = " **replaced**" if change.replaced else ""
            lines.append(f"- `{change.type}` **{escape_markdown(change.name)}**{replaced}")
        if details:
            lines += ["", "<details><summary>Changed inputs</summary>", ""]
            for change in diff.changed:
                lines += [
                    f"`{change.type}` **{escape_markdown(change.name)}**",
                    "",
                    "| input | before | after |",
                    "|---|---|---|",
                ]
                for item in [*change.inputs, *_as_options(change.options)]:
                    forces = " (forces replacement)" if item.replaces else ""
                    lines.append(
                        f"| `{_cell(item.path)}`{forces} | {_code_cell(item.before)} "
                        f"| {_code_cell(item.after)} |"
                    )
                lines.append("")
            lines.append("</details>")
        else:
            lines += [
                "",
                "_Changed inputs left out to fit a comment: run the same "
                "`pulumi-django plan --diff-against` locally to see them._",
            ]
    lines += ["", "#### Release order", ""]
    lines += _release_lines(diff.release_after, markdown=True) or ["_No release steps._"]
    if diff.release_order_changed:
        lines += ["", f"Before this change: {_release_summary(diff.release_before)}"]
    if diff.migrations is not None:
        lines += ["", f"#### Migrations added since `{diff.migrations_base.ref}`", ""]
        lines += _migration_lines(diff.migrations, markdown=True)
    if diagram:
        lines += [
            "",
            "<details><summary>Stack diagram</summary>",
            "",
            "Green: added. Amber: changed. Red: replaced; dashed red: deleted.",
            "",
            "```mermaid",
            diff.mermaid,
            "```",
            "",
            "</details>",
        ]
    lines += ["", f"<sub>{CONSERVATIVE_NOTE}</sub>"]
    return "\n".join(lines) + "\n"


def escape_markdown(text: str) -> str:
    """`text` shown as itself in markdown: its emphasis, code, link, HTML and table
    characters escaped."""
    return re.sub(r"([\\`*_{}\[\]<>|])", r"\\\1", text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("`", "'")


def _code_cell(value: Any) -> str:
    if value is ABSENT:
        return "_(absent)_"
    return f"`{_cell(_value(value))}`"
