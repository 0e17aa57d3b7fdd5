"""The shared base of every config section: camelCase keys, strict types, unknown keys rejected."""

from typing import Annotated, Any, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict
from pydantic.alias_generators import to_camel


def _as_typed(value: Any) -> Any:
    """`pulumi config set --path` stores `16` as a number; a field that wants text takes a whole
    number as typed. Booleans and decimals are refused: `True`, `yes` or `7.10` could each have
    meant other text than the one YAML left (`true`, `7.1`)."""
    if isinstance(value, bool):
        raise ValueError(
            "a boolean: quote the text the app expects, e.g. 'true' or 'True' (with "
            "`pulumi config set --path`, add `--type string`)"
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        raise ValueError("a decimal number: quote it, e.g. '7.10' (unquoted, 7.10 reads as 7.1)")
    return value


# Text that may arrive as a whole number from `pulumi config set --path`.
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


def inner_model(annotation: Any) -> type[BaseModel] | None:
    """The section model a field holds, directly or inside `X | None` or `list[X]`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = inner_model(argument)
        if found is not None:
            return found
    return None
