"""What a change does to a stack, offline: two offline plans compared, resource by resource.

Pure functions over the plan JSON (`Plan.as_json()`), in three parts: the model (`model`:
`diff_plans` finds the resources added, removed and changed, with the changed inputs, secrets
masked, and flags stateful resources that would be replaced or deleted), the diagram
(`diagram`: `mermaid_diagram` draws the stack) and the renderers (`render`: `render_text`,
`render_markdown` and `diff_json` present it). `git_plan` produces the two plans from a git ref.
"""

from .diagram import mermaid_diagram
from .model import (
    HEAD_REF,
    IN_PLACE_UPGRADES,
    STATEFUL_TYPES,
    AppSides,
    InPlaceUpgrade,
    MigrationReview,
    PlanDiff,
    ResourceChange,
    Side,
    StatefulRisk,
    ValueChange,
    diff_plans,
    mask,
)
from .render import (
    COMMENT_LIMIT,
    MARKER,
    diff_json,
    escape_markdown,
    render_markdown,
    render_text,
)

__all__ = [
    "COMMENT_LIMIT",
    "HEAD_REF",
    "IN_PLACE_UPGRADES",
    "MARKER",
    "STATEFUL_TYPES",
    "AppSides",
    "InPlaceUpgrade",
    "MigrationReview",
    "PlanDiff",
    "ResourceChange",
    "Side",
    "StatefulRisk",
    "ValueChange",
    "diff_json",
    "diff_plans",
    "escape_markdown",
    "mask",
    "mermaid_diagram",
    "render_markdown",
    "render_text",
]
