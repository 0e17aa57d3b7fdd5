"""The config reference table, generated from the models so that docs never drift."""

from __future__ import annotations

import json
import types
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Le
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .stack import NAMESPACE, StackConfig


def reference_table() -> str:
    rows = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    rows += _rows(StackConfig, f"{NAMESPACE}:")
    return "\n".join(rows) + "\n"


def _rows(model: type[BaseModel], prefix: str) -> list[str]:
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = _model_of(field.annotation)
        if nested is not None and get_origin(field.annotation) is not list:
            rows.append(f"| `{key}` | section | | {_cell(field.description or '')} |")
            rows += _rows(nested, f"{key}.")
            continue
        rows.append(
            f"| `{key}` | {_cell(_type_name(field.annotation, field))} | "
            f"{_cell(_default(field))} | {_cell(field.description or '')} |"
        )
        if nested is not None:  # a list of sub-objects: document their keys too
            rows += _rows(nested, f"{key}[].")
    return rows


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None


def _type_name(annotation: Any, field: FieldInfo | None = None) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(f"`{value}`" for value in get_args(annotation))
    if origin in (Union, types.UnionType):
        parts = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " | ".join(parts) + " or null"
    if origin is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if origin is dict:
        key, value = get_args(annotation)
        return f"map {_type_name(key)} to {_type_name(value)}"
    if annotation is SecretStr:
        return "secret string"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    name = getattr(annotation, "__name__", str(annotation))
    return name + (_bounds(field) if field and annotation in (int, float) else "")


def _bounds(field: FieldInfo) -> str:
    low = high = None
    for item in field.metadata:
        if isinstance(item, Ge):
            low = item.ge
        if isinstance(item, Le):
            high = item.le
    if low is None and high is None:
        return ""
    return f" ({'' if low is None else low}..{'' if high is None else high})"


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if value is None:
        return "none"
    if isinstance(value, BaseModel):
        return "see keys below"
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")
