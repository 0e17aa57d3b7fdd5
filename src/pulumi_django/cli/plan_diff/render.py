"""The plan diff presented: text for a terminal, a Markdown pull-request comment, and JSON (the
`--format json` contract)."""

from __future__ import annotations

import json
import re
from typing import Any

from .model import (
    ABSENT,
    CONSERVATIVE_NOTE,
    HEAD_REF,
    AppSides,
    MigrationReview,
    PlanDiff,
    ResourceChange,
    Side,
    ValueChange,
)

MARKER = "<!-- pulumi-django-plan:{stack} -->"
# GitHub refuses comments over 65,536 characters.
COMMENT_LIMIT = 60_000
VALUE_WIDTH = 120


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
            "upgrades": len(diff.upgrades),
        },
        "added": diff.added,
        "removed": diff.removed,
        "changed": [change.as_json() for change in diff.changed],
        "stateful": [risk.as_json() for risk in diff.risks],
        "upgrades": [upgrade.as_json() for upgrade in diff.upgrades],
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
    if diff.upgrades:
        lines += ["", "! IN-PLACE UPGRADES WITH DOWNTIME (the data is kept):"]
        lines += [
            f"!   {upgrade.type}  {upgrade.name} ({upgrade.kind}): {upgrade.path} "
            f"{_value(upgrade.before)} -> {_value(upgrade.after)}: {upgrade.downtime}"
            for upgrade in diff.upgrades
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
                forces += "  (in-place upgrade, downtime)" if _upgrades(diff, change, item) else ""
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


def _upgrades(diff: PlanDiff, change: ResourceChange, item: ValueChange) -> bool:
    """Whether `item` of `change` is one of the diff's in-place upgrades."""
    return any(u.urn == change.urn and u.path == item.path for u in diff.upgrades)


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
    if diff.upgrades:
        lines += ["", "> [!WARNING]", "> **In-place upgrades with downtime (the data is kept):**"]
        lines += [
            f"> - **{upgrade.kind}** `{upgrade.name}` (`{upgrade.type}`): `{upgrade.path}` "
            f"{_code_cell(upgrade.before)} -> {_code_cell(upgrade.after)}: {upgrade.downtime}"
            for upgrade in diff.upgrades
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
                    forces += (
                        " (in-place upgrade, downtime)" if _upgrades(diff, change, item) else ""
                    )
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
