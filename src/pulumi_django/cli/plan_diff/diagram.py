"""The stack as a Mermaid flowchart, coloured by what a change does to each resource: pure, over
the plan JSON (`Plan.as_json()`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_django.recorder import STACK_TYPE

# Above this many cloud resources, the diagram shows the unchanged ones of each component as
# one node: a picture of a whole stack is too tall to read in a comment.
DIAGRAM_NODE_LIMIT = 40
PROVIDER_TYPE_PREFIX = "pulumi:providers:"

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
