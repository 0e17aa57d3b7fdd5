"""Reads the `django:` namespace from Pulumi's config and turns mistakes into clear messages."""

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_origin

import pulumi
from pulumi.runtime import config as runtime_config
from pydantic import BaseModel, ValidationError

from pulumi_django.errors import PulumiDjangoError

from .base import inner_model
from .stack import NAMESPACE, StackConfig, validation_context

SECRET_FIELDS = frozenset({"secretKey"})


class ConfigError(PulumiDjangoError, pulumi.RunError):
    """Stops `pulumi up` or the offline plan with no traceback (Pulumi prints a RunError's
    message alone). One problem: `invalid stack config: <problem>`; several: their count, then
    one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        if len(problems) == 1:
            super().__init__(f"invalid stack config: {problems[0]}")
            return
        lines = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(f"invalid stack config ({len(problems)} problems):\n{lines}")


def load_stack_config() -> StackConfig:
    """The validated config of the stack Pulumi is running (or the offline plan mocks), with
    the app's own declarations filled in (Pulumi runs the program in the project directory)."""
    from pulumi_django.app_discovery import AppDiscoveryError
    from pulumi_django.app_resolution import resolve_app_config

    everything = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    misplaced = misspelt_namespace_keys(everything, pulumi.get_project())
    if misplaced:
        raise ConfigError(misplaced)
    values, secret_keys = _namespace_values(everything)
    try:
        return resolve_app_config(parse_stack_config(values, secret_keys), Path.cwd())
    except AppDiscoveryError as error:
        raise ConfigError([str(error)]) from None


def misspelt_namespace_keys(keys: Iterable[str], project: str) -> list[str]:
    """Our keys (`tags`, `fleet`, ...) under a namespace one typo away from `django:` would be
    dropped without a word. The project's own namespace is the user's, whatever its name."""
    ours = {field.alias or name for name, field in StackConfig.model_fields.items()}
    problems = []
    for key in keys:
        namespace, _, rest = key.partition(":")
        if (
            rest.split(".")[0] in ours
            and namespace not in (NAMESPACE, project)
            and _one_typo_apart(namespace.lower(), NAMESPACE)
        ):
            problems.append(
                f"{key}: unknown namespace {namespace!r}; did you mean {NAMESPACE}:{rest}?"
            )
    return problems


def parse_stack_config(values: Mapping[str, str], secret_keys: set[str]) -> StackConfig:
    """Validates raw config strings keyed without the namespace, e.g. {"fleet": "{...}"}."""
    problems: list[str] = []
    document: dict[str, Any] = {}
    for key, raw in values.items():
        if key in secret_keys and key not in SECRET_FIELDS:
            problems.append(
                f"{NAMESPACE}:{key}: holds a secret value; only {NAMESPACE}:secretKey may be "
                "secret. Keep secrets in Secrets Manager and list their ARNs under app.secrets"
            )
            continue
        if key in SECRET_FIELDS and key not in secret_keys:
            problems.append(
                f"{NAMESPACE}:{key}: is stored in plain text; set it with "
                f"`pulumi config set --secret {NAMESPACE}:{key}`"
            )
            continue
        document[key] = _decode(key, raw, problems)
    if problems:
        raise ConfigError(problems)
    try:
        return StackConfig.model_validate(document, context=validation_context(document))
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem: key path, the bad value, what is allowed."""
    lines = []
    for item in error.errors():
        path = _key_path(item["loc"])
        message = _explain(item)
        # A whole section (as typed, or its defaults when the problem spans sections).
        section = isinstance(item["input"], dict | BaseModel)
        if item["type"] in {"missing", "extra_forbidden"} or section:
            lines.append(f"{path}: {message}")
        else:
            lines.append(f"{path} = {_show(path, item['input'])}: {message}")
    return lines


def _one_typo_apart(typed: str, meant: str) -> bool:
    """One letter wrong, missing, extra, or two neighbours swapped (or only the case differs)."""
    if len(typed) == len(meant):
        wrong = [i for i, (a, b) in enumerate(zip(typed, meant, strict=True)) if a != b]
        swapped = (
            len(wrong) == 2 and wrong[1] == wrong[0] + 1 and typed[wrong[0]] == meant[wrong[1]]
        )
        return len(wrong) <= 1 or (swapped and typed[wrong[1]] == meant[wrong[0]])
    longer, shorter = (typed, meant) if len(typed) > len(meant) else (meant, typed)
    return len(longer) == len(shorter) + 1 and any(
        longer[:i] + longer[i + 1 :] == shorter for i in range(len(longer))
    )


def _namespace_values(everything: Mapping[str, Any]) -> tuple[dict[str, str], set[str]]:
    prefix = f"{NAMESPACE}:"
    values = {
        key[len(prefix) :]: str(raw) for key, raw in everything.items() if key.startswith(prefix)
    }
    secret_keys = {key for key in values if runtime_config.is_config_secret(prefix + key)}
    secret_keys |= {
        key[len(prefix) :]
        for key in runtime_config.get_config_secret_keys_env()
        if key.startswith(prefix)
    }
    return values, secret_keys


def _decode(key: str, raw: str, problems: list[str]) -> Any:
    """Structured config arrives as JSON text; scalars as plain strings."""
    field = StackConfig.model_fields.get(_snake(key))
    if field is None or not _is_structured(field.annotation):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        problems.append(
            f"{NAMESPACE}:{key} = {raw[:60]!r}: expected {_expected_shape(field.annotation)} "
            f"(see the config reference in README.md)"
        )
        return None


def _expected_shape(annotation: Any) -> str:
    """What a structured key holds, as its message says it: a list (with an example of its
    items), a map, or a section of keys of its own."""
    origin = getattr(annotation, "__origin__", None)
    if origin is list:
        (item,) = getattr(annotation, "__args__", (Any,))
        choices = [str(choice) for choice in getattr(item, "__args__", ())]
        if getattr(item, "__origin__", None) is Literal and choices:
            return f"a list, e.g. [{choices[0]}] (any of {', '.join(choices)})"
        return "a list, e.g. [first, second]"
    if origin is dict:
        return "a map of names to values, e.g. {name: value}"
    return "an object with keys of its own"


def _is_structured(annotation: Any) -> bool:
    return inner_model(annotation) is not None or any(
        getattr(candidate, "__origin__", None) in (dict, list)
        for candidate in [annotation, *getattr(annotation, "__args__", ())]
    )


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key_path(loc: tuple[int | str, ...]) -> str:
    """Map keys the user typed may hold anything, so odd ones are quoted to keep one line."""
    path = NAMESPACE + ":"
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            path += ("." if index else "") + part
        else:
            path += f"[{json.dumps(part)}]"
    return path


def _explain(item: Any) -> str:
    kind, message = item["type"], item["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(item["loc"])
        key = str(item["loc"][-1])
        if len(item["loc"]) == 1 and key.split(".")[0] in allowed:
            return (
                "unknown key; a nested key is set with `pulumi config set --path "
                f"{NAMESPACE}:{key} VALUE`, which writes it under {NAMESPACE}:{key.split('.')[0]}; "
                f"remove this one with `pulumi config rm {NAMESPACE}:{key}`"
            )
        return f"unknown key; allowed keys: {', '.join(allowed)}"
    if kind == "missing":
        return f"required; {_description(item['loc'])}"
    if kind == "string_pattern_mismatch":
        return f"wrong format; {_description(item['loc'])}"
    if kind == "bool_type":
        # A nested key arrives as JSON, where `"false"` in quotes is a string (and a string
        # that reads false would be true to anything that tests it); a top-level one as text.
        return "use true or false" + ("" if len(item["loc"]) == 1 else ", without quotes")
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The section model at `loc`; a part naming an entry of a mapping of sections (a worker
    of `workers.services`) is the entry's key, not a field."""
    model: type[BaseModel] | None = StackConfig
    entry_key_next = False
    for part in loc:
        if model is None or isinstance(part, int) or entry_key_next:
            entry_key_next = False
            continue
        field = next((f for name, f in model.model_fields.items() if part in (name, f.alias)), None)
        if field is None:
            return None
        model = inner_model(field.annotation)
        entry_key_next = get_origin(field.annotation) is dict
    return model


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    model = _model_at(loc[:-1])
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def _description(loc: tuple[int | str, ...]) -> str:
    model = _model_at(loc[:-1])
    if model is None:
        return "see the config reference in README.md"
    for name, field in model.model_fields.items():
        if loc[-1] in (name, field.alias):
            return field.description or ""
    return ""


def _show(path: str, value: Any) -> str:
    if path.removeprefix(f"{NAMESPACE}:") in SECRET_FIELDS:
        return "[secret]"
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
