"""Checks a RegisterTaskDefinition request against botocore's ECS service model: member names,
types, required members, ranges (botocore's ParamValidator) and enum values (which it skips)."""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.validate import ParamValidator

_ECS = botocore.session.get_session().get_service_model("ecs")
REGISTER_TASK_DEFINITION: Any = _ECS.operation_model("RegisterTaskDefinition").input_shape


def register_task_definition_problems(request: dict[str, Any]) -> list[str]:
    report = ParamValidator().validate(request, REGISTER_TASK_DEFINITION)
    problems = report.generate_report().splitlines() if report.has_errors() else []
    return problems + _enum_problems(request, REGISTER_TASK_DEFINITION, "request")


def _enum_problems(value: Any, shape: Any, path: str) -> list[str]:
    problems: list[str] = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, item in value.items():
            if name in shape.members:
                problems += _enum_problems(item, shape.members[name], f"{path}.{name}")
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            problems += _enum_problems(item, shape.member, f"{path}[{index}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        for key, item in value.items():
            problems += _enum_problems(item, shape.value, f"{path}[{key}]")
    elif shape.type_name == "string" and shape.enum and value not in shape.enum:
        problems.append(f"{path}: {value!r} is not one of {shape.enum}")
    return problems
