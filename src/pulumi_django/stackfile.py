"""Reads a Pulumi project and one of its stack files the way the Pulumi CLI does, offline.

Secure values cannot be decrypted without the stack's secrets provider, so they become the
placeholder `[secret]` and are marked secret, which is all an offline plan needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import UsageError

STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 (the mask, not a password)


@dataclass(frozen=True)
class StackFile:
    """A project's name, directory and program, and one stack's config as Pulumi passes it."""

    project: str
    project_dir: Path
    program: Path
    stack: str
    config: dict[str, str]
    secret_keys: list[str]

    def namespace(self, namespace: str) -> tuple[dict[str, str], set[str]]:
        """The keys under `namespace:`, without the prefix, and which of them are secret."""
        prefix = f"{namespace}:"
        values = {k[len(prefix) :]: v for k, v in self.config.items() if k.startswith(prefix)}
        secrets = {k[len(prefix) :] for k in self.secret_keys if k.startswith(prefix)}
        return values, secrets


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def load_stack_file(project_dir: Path, stack: str) -> StackFile:
    """Pulumi.yaml plus Pulumi.<stack>.yaml from `project_dir`; UsageError on any mistake."""
    if not STACK_NAME.match(stack):
        raise UsageError(f"{stack!r} is not a stack name (letters, digits, _ . -)")
    project_file = project_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise UsageError(f"no Pulumi.yaml in {project_dir}; run from the project or pass --cwd")
    project = _read_yaml(project_file)
    name = project.get("name")
    if not isinstance(name, str) or not name:
        raise UsageError(f"{project_file}: `name` is missing")
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    if not stack_path.is_file():
        known = ", ".join(available_stacks(project_dir)) or "none"
        raise UsageError(f"no stack file Pulumi.{stack}.yaml in {project_dir} (stacks: {known})")
    stack_doc = _read_yaml(stack_path)
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in _project_defaults(project, project_file).items():
        _put(config, secret_keys, _qualify(key, name), value)
    stack_config = stack_doc.get("config")
    if stack_config is None:
        stack_config = {}
    if not isinstance(stack_config, dict):
        raise UsageError(f"{stack_path}: `config` must be a mapping of keys to values")
    for key, value in stack_config.items():
        _put(config, secret_keys, _qualify(str(key), name), value)
    main = project.get("main")
    program = project_dir / main if isinstance(main, str) else project_dir
    if program.is_dir():
        program = program / "__main__.py"
    if not program.is_file():
        raise UsageError(f"the program {program} does not exist")
    return StackFile(name, project_dir, program, stack, config, secret_keys)


class _DuplicateKey(yaml.MarkedYAMLError):
    pass


class _StrictLoader(yaml.SafeLoader):
    """Refuses a key written twice in one mapping, as the Pulumi CLI does; PyYAML alone would
    keep the last one and silently drop the first (a whole config section, say)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str) and key in first_line:
                raise _DuplicateKey(
                    problem=f"{key!r} appears twice (first on line {first_line[key]}); "
                    "keep one and merge the two",
                    problem_mark=key_node.start_mark,
                )
            if isinstance(key, str):
                first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        document = yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f"line {mark.line + 1}: " if mark else ""
        raise UsageError(f"{path} is not valid YAML: {where}{error.problem}") from None
    except yaml.YAMLError as error:
        raise UsageError(f"{path} is not valid YAML: {error}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise UsageError(f"{path} must be a YAML mapping")
    return document


def _project_defaults(project: dict[str, Any], path: Path) -> dict[str, Any]:
    """Project-level `config:` entries: `key: value` or `key: {default: value}`."""
    block = project.get("config") or {}
    if not isinstance(block, dict):
        raise UsageError(f"{path}: `config` must be a mapping")
    defaults = {}
    for key, entry in block.items():
        if isinstance(entry, dict) and ("default" in entry or "value" in entry):
            defaults[str(key)] = entry.get("value", entry.get("default"))
        elif not isinstance(entry, dict):
            defaults[str(key)] = entry
    return defaults


def _qualify(key: str, project: str) -> str:
    """Pulumi puts a key without a namespace under the project's name."""
    return key if ":" in key else f"{project}:{key}"


def _put(config: dict[str, str], secret_keys: list[str], key: str, value: Any) -> None:
    has_secret = _contains_secure(value)
    if isinstance(value, dict) and set(value) == {"secure"}:
        config[key] = SECRET_PLACEHOLDER
    elif isinstance(value, dict | list):
        config[key] = json.dumps(_mask_secure(value))
    elif isinstance(value, bool):
        config[key] = "true" if value else "false"
    elif value is None:
        config[key] = ""
    else:
        config[key] = str(value)
    if has_secret and key not in secret_keys:
        secret_keys.append(key)
    elif not has_secret and key in secret_keys:
        secret_keys.remove(key)


def _contains_secure(value: Any) -> bool:
    if isinstance(value, dict):
        return set(value) == {"secure"} or any(_contains_secure(v) for v in value.values())
    if isinstance(value, list):
        return any(_contains_secure(v) for v in value)
    return False


def _mask_secure(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER
        return {k: _mask_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secure(v) for v in value]
    return value
