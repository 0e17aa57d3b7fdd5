"""The shipped AWS stacks (Pulumi.dev.yaml, Pulumi.prod.yaml), some of their `django:` sections
changed, recorded as `pulumi up` registers the site (`AwsSite` alone, without the stack program's
exports or the plan's app checks).

A whole site's recording is most of a second of CPU, and several modules record the same ones:
`shipped_site` records each config once per test session, for all of xdist's workers
(`worker_shared.computed_once`), keyed by the config itself (its values as JSON text), so that
two changes which give the same config (prod's own egress, say) share one recording.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from worker_shared import computed_once

from pulumi_django.cli.stackfile import load_stack_file
from pulumi_django.config import NAMESPACE, StackConfig, parse_stack_config
from pulumi_django.recorder import Recording, record

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "pulumi-django"
REGION = "us-east-1"

# This process's recordings (one test session per process), by config key.
_RECORDED: dict[str, Recording] = {}


def site_values(stack: str, **changes: Any) -> tuple[dict[str, str], set[str]]:
    """The shipped stack's `django:` values (JSON text per key) and secret keys; each change
    is merged into its section when both are mappings, else replaces the key's value."""
    values, secret_keys = load_stack_file(ROOT, stack).namespace(NAMESPACE)
    merged = dict(values)
    for key, change in changes.items():
        if isinstance(change, dict):
            current = json.loads(values[key]) if key in values else {}
            change = {**current, **change} if isinstance(current, dict) else change
        merged[key] = change if isinstance(change, str) else json.dumps(change)
    return merged, secret_keys


def site_config(stack: str, **changes: Any) -> StackConfig:
    return parse_stack_config(*site_values(stack, **changes))


def record_site(config: StackConfig, stack: str) -> Recording:
    """`AwsSite(config.name, config)` recorded as stack `stack` of the project."""
    from pulumi_django.components.aws.site import AwsSite

    return record(
        lambda: AwsSite(config.name, config),
        project=PROJECT,
        stack=stack,
        config={"aws:region": REGION},
    )


def shipped_site(tmp_path_factory: pytest.TempPathFactory, stack: str, **changes: Any) -> Recording:
    """`record_site(site_config(stack, **changes), stack)`, recorded once per session. Tests
    share the object: they read it, never change it."""
    values, secret_keys = site_values(stack, **changes)
    key = json.dumps([stack, values, sorted(secret_keys)], sort_keys=True)
    if key not in _RECORDED:
        _RECORDED[key] = computed_once(
            tmp_path_factory,
            "shipped-site-" + hashlib.sha256(key.encode()).hexdigest()[:16],
            lambda: record_site(parse_stack_config(values, secret_keys), stack),
        )
    return _RECORDED[key]
