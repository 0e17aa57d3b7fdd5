"""Reads a Pulumi project and one of its stack files the way the Pulumi CLI does, offline.

Secure values cannot be decrypted without the stack's secrets provider, so they become the
placeholder `[secret]` and are marked secret, which is all an offline plan needs.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pulumi_django.errors import PulumiDjangoError, UsageError

if TYPE_CHECKING:
    from pulumi_django.config import StackConfig

STACK_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


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


def read_stack_config(
    project_dir: Path,
    stack: str,
    *,
    python: str | None = None,
    app_dir: Path | None = None,
    server: str | None = None,
) -> StackConfig:
    """The stack's validated `django:` config, read offline and resolved against the app as the
    stack program does (`python`, a `--python` flag, overrides `app.python`; `app_dir`, an
    `--app` flag, overrides `app.context`, so the defaults come from that app; `server`, a
    `--server` flag, overrides `app.server`, so the entry point resolved is the one it serves);
    UsageError naming the stack on any mistake, in the file, in the config or in the app."""
    return resolved_stack_config(
        load_stack_file(project_dir, stack), python=python, app_dir=app_dir, server=server
    )


def resolved_stack_config(
    stack_file: StackFile,
    *,
    python: str | None = None,
    app_dir: Path | None = None,
    server: str | None = None,
) -> StackConfig:
    """`read_stack_config` of a stack file already loaded (a command that also reads what the
    file says as written, e.g. `interpreter_label`)."""
    from pulumi_django.app_resolution import resolve_app_config
    from pulumi_django.config import NAMESPACE, parse_stack_config

    try:
        config = parse_stack_config(*stack_file.namespace(NAMESPACE))
        overrides: dict[str, str] = {}
        context = (stack_file.project_dir / config.app.context).resolve()
        if app_dir is not None and app_dir.resolve() != context:
            overrides["context"] = str(app_dir.resolve())
        if server is not None and server != config.app.server:
            overrides["server"] = server
        if overrides:
            config = config.model_copy(update={"app": config.app.model_copy(update=overrides)})
        return resolve_app_config(config, stack_file.project_dir, python=python)
    except PulumiDjangoError as error:
        raise UsageError(f"stack {stack_file.stack}: {error}") from None


def interpreter_label(stack_file: StackFile, python: str | None) -> str:
    """What chose the app's interpreter, for messages: the `--python` flag, the stack's
    `django:app.python`, or neither (the interpreter running pulumi-django). Read from the
    stack file as written: resolving the app fills `app.python` in."""
    from pulumi_django.app_resolution import interpreter_source
    from pulumi_django.config import NAMESPACE, parse_stack_config

    return interpreter_source(parse_stack_config(*stack_file.namespace(NAMESPACE)).app, python)


def available_stacks(project_dir: Path) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))


def _where_to_run(directory: Path) -> str:
    """What to do when `directory` holds no Pulumi project: name the one it is inside of, as
    the Pulumi CLI finds it from a subdirectory."""
    for parent in directory.resolve().parents:
        if (parent / "Pulumi.yaml").is_file():
            return f"the project is {parent}: run from there or pass --cwd {parent}"
    return "run from the project or pass --cwd"


def load_stack_file(project_dir: Path, stack: str) -> StackFile:
    """Pulumi.yaml plus Pulumi.<stack>.yaml from `project_dir`; UsageError on any mistake."""
    if not STACK_NAME.match(stack):
        raise UsageError(f"{stack!r} is not a stack name (letters, digits, _ . -)")
    project_file = project_dir / "Pulumi.yaml"
    if not project_file.is_file():
        raise UsageError(f"no Pulumi.yaml in {project_dir}; {_where_to_run(project_dir)}")
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


MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """Reads a stack file as the Pulumi CLI (Go's yaml.v3) does, where PyYAML would differ:

    - a key written twice in one mapping is an error, where PyYAML keeps the last one and
      silently drops the first (a whole config section, say);
    - only true/false are booleans and `1:30` is text (YAML 1.2), where PyYAML's YAML 1.1
      reads `NO`, `on` and `yes` as booleans and `1:30` as the number 90."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == MERGE_TAG:
                continue  # keys merged in with `<<:` may be overridden; that is their purpose
            key = key_node.value
            if key in first_line:
                raise _DuplicateKey(
                    problem=f"{key!r} appears twice (first on line {first_line[key]}); keep one",
                    problem_mark=key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


_YAML_1_1_ONLY = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float"}
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag not in _YAML_1_1_ONLY]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"),
    list("-+0123456789"),
)
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9_]+(?:[eE][-+][0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)


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
        config[key] = _mask_secure(value)
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
            # The recorder's mask, imported only here: the day-2 commands read stack files
            # without loading pulumi, and most stack files hold no secure value.
            from pulumi_django.recorder import SECRET

            return SECRET
        return {k: _mask_secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_secure(v) for v in value]
    return value


def project_default(project_dir: Path, key: str) -> Any:
    """The value Pulumi.yaml's `config:` gives `key` (`django:app`) for every stack that does
    not set it, as written; None when it gives none."""
    project_file = project_dir / "Pulumi.yaml"
    return _project_defaults(_read_yaml(project_file), project_file).get(key)


def set_config_field(project_dir: Path, stack: str, key: str, field: str, value: str) -> None:
    """Rewrites Pulumi.<stack>.yaml with `field` of the object `key` (`django:app`) set to
    `value`, starting from the object's value there or else the project's default, the rest
    as the Pulumi CLI reads it (secure values included). Written as JSON, which every YAML
    loader types alike; comments and layout are lost, so meant for a scratch copy."""
    stack_path = project_dir / f"Pulumi.{stack}.yaml"
    document = _read_yaml(stack_path)
    config = document.get("config") or {}
    current = config.get(key)
    if current is None:
        current = project_default(project_dir, key)
    if not isinstance(current, dict):
        current = {}
    config[key] = {**current, field: value}
    document["config"] = config
    stack_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
