"""The shared base of every config section: camelCase keys, strict types, unknown keys rejected."""

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel


def _as_typed(value: Any) -> Any:
    """`pulumi config set --path` stores `16` as a number and `true` as a boolean; a field that
    wants text takes them as typed. A float would already have lost its digits (`7.10`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError(f"write it as text, in quotes: '{value}'")
    return value


# Text that may arrive as a number or boolean from `pulumi config set --path`.
Text = Annotated[str, BeforeValidator(_as_typed)]


class Section(BaseModel):
    """A block of stack config; field descriptions are the one place inputs are documented."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        use_attribute_docstrings=False,
    )
