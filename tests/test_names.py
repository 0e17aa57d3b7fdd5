"""Names AWS accepts (issue 15, item 4): `django:name` and every component's name are held to the
limits of each name derived from them (`pulumi_django.config.names`), and the offline plan of
every name the validation accepts holds names within those limits, read off the plan itself."""

from __future__ import annotations

import importlib
import inspect
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pulumi
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pulumi_django.cli.stackfile import load_stack_file
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.config import NAMESPACE, ConfigError, StackConfig, parse_stack_config
from pulumi_django.config.names import (
    AUTONAME_EXAMPLE,
    DERIVED,
    NAMED_TYPES,
    RULES,
    Derived,
    kms_alias_name,
    max_name_length,
    name_problems,
    pull_through_prefix,
    rule_problems,
)
from pulumi_django.testing import RecordedResource, Recording, record

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "pulumi-django"
# What the issue names: 20 characters, two hyphens in a row.
LONGEST_PATTERN_NAME = "abcdefghij-klmnopqrs"
DOUBLE_HYPHEN = "my-shop--prod"
# `django:name`'s own pattern: what the stack file may hold before the derived names are checked.
NAMES = st.from_regex(r"[a-z][a-z0-9-]{1,18}[a-z0-9]", fullmatch=True)


def stack_document(stack: str) -> tuple[dict[str, str], set[str]]:
    return load_stack_file(ROOT, stack).namespace(NAMESPACE)


def site_config(stack: str, name: str, **sections: dict[str, Any]) -> StackConfig:
    """The shipped stack's config with another name (and sections merged over its own)."""
    values, secret_keys = stack_document(stack)
    merged = dict(values, name=name)
    for key, section in sections.items():
        merged[key] = json.dumps({**json.loads(values.get(key, "{}")), **section})
    return parse_stack_config(merged, secret_keys)


def unchecked_config(stack: str, name: str) -> StackConfig:
    """The shipped stack's config with a name the validation may refuse, set past it."""
    return site_config(stack, "bigfoot").model_copy(update={"name": name})


def record_site(config: StackConfig, stack: str) -> Recording:
    from pulumi_django.components.aws.site import AwsSite

    return record(
        lambda: AwsSite(config.name, config),
        project=PROJECT,
        stack=stack,
        config={"aws:region": "us-east-1"},
    )


def _nested(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for key in path.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def physical_names(
    recording: Recording, name: str
) -> Iterator[tuple[RecordedResource, Derived, str]]:
    """Each physical name the plan gives a resource a `DERIVED` row covers: its explicit input
    when there is one, else Pulumi's auto-name of its logical name."""
    for resource in recording.resources:
        for row in NAMED_TYPES.get(resource.type, []):
            if not row.covers(name, resource.name):
                continue
            value = _nested(resource.inputs, row.prop)
            if value is None and row.autonamed:
                logical = resource.name.lower() if row.lowercased else resource.name
                value = logical + AUTONAME_EXAMPLE
            if isinstance(value, str):
                yield resource, row, value


@cache
def takes_a_name(type_token: str) -> bool:
    """Whether the pulumi-aws resource has a `name` input: Pulumi auto-names those, so each is
    a physical name derived from the component's."""
    _package, path, class_name = type_token.split(":")
    cls = getattr(importlib.import_module(f"pulumi_aws.{path.split('/')[0]}"), class_name)
    return "name" in inspect.signature(cls._internal_init).parameters


def unknown_names(recording: Recording, name: str) -> list[str]:
    """AWS resources whose name derives from the component's but that no `DERIVED` row covers."""
    covered = {resource.urn for resource, _, _ in physical_names(recording, name)}
    return [
        f"{resource.type} {resource.name}"
        for resource in recording.resources
        if resource.custom
        and resource.type.startswith("aws:")
        and (resource.type in NAMED_TYPES or takes_a_name(resource.type))
        and resource.urn not in covered
    ]


def refused_in_plan(recording: Recording, name: str) -> list[str]:
    """Every physical name of the plan AWS would refuse, with the rule it breaks."""
    found = []
    for resource, row, physical in physical_names(recording, name):
        for _kind, reason, _fix in rule_problems(RULES[row.rule], physical):
            found.append(f"{resource.type} {resource.name}: {physical!r}: {reason}")
        if not row.autonamed and not row.depends_on_others:
            expected = row.physical(name, resource.name[len(name) :], PROJECT, recording.stack)
            assert physical == expected, (
                f"{resource.type} {resource.name}: the plan names it {physical!r}, the table "
                f"{expected!r}"
            )
    return found


# Configurations that between them create every named resource: the shipped prod stack (KMS
# key, log bucket, flow logs, enhanced monitoring, alarms, final snapshot), with ECS Exec, VPC
# endpoints and public media, and the dev stack (one NAT gateway, no final snapshot). Cached:
# recordings are slow and the tests only read them.
@cache
def full_plans(name: str) -> tuple[Recording, ...]:
    return (
        record_site(
            site_config(
                "prod",
                name,
                fleet={"enableExecuteCommand": True},
                network={"egress": "vpc-endpoints"},
                media={"access": "public"},
            ),
            "prod",
        ),
        record_site(site_config("dev", name), "dev"),
    )


@pytest.mark.parametrize("name", [LONGEST_PATTERN_NAME, DOUBLE_HYPHEN])
def test_the_issues_names_are_refused_in_one_line_naming_the_resource_and_the_fix(
    name: str,
) -> None:
    with pytest.raises(ConfigError) as raised:
        site_config("prod", name)
    (line,) = raised.value.problems
    assert line.startswith(f"django:name = {name!r}: the ")
    if name == LONGEST_PATTERN_NAME:
        assert "target group" in line and "32 AWS allows" in line
        assert line.endswith(f"use a name of at most {max_name_length()} characters")
    else:
        assert "two hyphens in a row" in line and line.endswith("('-', not '--')")


@pytest.mark.parametrize(("version", "family"), [("16.4", "postgres16"), ("15", "postgres15")])
def test_the_parameter_group_shown_is_the_stacks_own_family(version: str, family: str) -> None:
    """The refused name holds the family `database.engineVersion` makes, never a made-up one."""
    with pytest.raises(ConfigError) as raised:
        site_config("prod", "my--site", database={"engineVersion": version})
    (line,) = raised.value.problems
    assert f"would be named 'my--site-params-{family}' + Pulumi's" in line
    assert "99" not in line


def test_a_component_shows_its_engines_family_or_no_number() -> None:
    from pulumi_django.components.args import check_name

    with pytest.raises(ComponentArgsError, match="'shop--db-params-postgres16' "):
        check_name("Database", "shop--db", major="16")
    with pytest.raises(ComponentArgsError, match=r"'shop--db-params-postgres<major>' "):
        check_name("Database", "shop--db")


def test_the_longest_name_accepted_is_what_the_target_group_leaves() -> None:
    # `<name>-backend-xxxxxxx` within the 32 characters of CreateTargetGroup.
    assert max_name_length() == 32 - len("-backend") - len(AUTONAME_EXAMPLE) == 16
    site_config("prod", "a" * 16)
    with pytest.raises(ConfigError, match="at most 16 characters"):
        site_config("prod", "a" * 17)


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("internal-shop", "load balancer name starting with 'internal-'"),
        ("sg-shop", "security group name starting with 'sg-'"),
        ("xn-shop", None),
        ("amzn-s3-demo-a", "S3 bucket name starting with 'amzn-s3-demo-'"),
        ("sthree-shop", "S3 bucket name starting with 'sthree-'"),
    ],
)
def test_names_aws_reserves_are_refused(name: str, refusal: str | None) -> None:
    if refusal is None:
        site_config("prod", name)
        return
    with pytest.raises(ConfigError, match=refusal):
        site_config("prod", name)


def test_a_local_stack_keeps_the_pattern_alone() -> None:
    values, secret_keys = stack_document("local")
    assert parse_stack_config({**values, "name": "a" * 20}, secret_keys).name == "a" * 20


@pytest.mark.parametrize(
    ("component", "name", "fragment"),
    [
        ("LoadBalancer", "a-rather-long-web", "target group"),
        ("Database", "shop--db", "two hyphens in a row"),
        ("Cache", "shop--cache", "replication group"),
        ("AppImage", "Shop", "ECR repository"),
        ("StaticSite", "xn--shop", "S3 bucket name starting with 'xn--'"),
    ],
)
def test_a_component_refuses_a_name_it_cannot_derive_from(
    component: str, name: str, fragment: str
) -> None:
    from pulumi_django.components.args import check_name

    with pytest.raises(ComponentArgsError) as raised:
        check_name(component, name)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{component} name {name!r}: the {component} ")
    assert fragment in message


def test_a_component_used_directly_raises_before_registering_anything() -> None:
    from pulumi_django.components.aws.cache import Cache, CacheArgs

    registered: list[str] = []

    def program() -> None:
        pulumi.runtime.register_stack_transform(
            lambda args: registered.append(args.name) and None  # type: ignore[func-returns-value]
        )
        Cache(
            "shop--cache",
            CacheArgs(subnet_ids=["subnet-a", "subnet-b"], security_group_id="sg-0123"),
        )

    with pytest.raises(ComponentArgsError, match=r"^Cache name 'shop--cache': the Cache "):
        record(program, project=PROJECT, stack="dev", config={"aws:region": "us-east-1"})
    assert registered == []


def test_the_pull_through_prefix_is_per_stack_and_always_valid() -> None:
    prefixes = {
        pull_through_prefix(name, PROJECT, stack)
        for name in ("bigfoot", "bigfoot-dev")
        for stack in ("dev", "prod")
    }
    assert len(prefixes) == 4
    rule = RULES["ecr-pull-through-prefix"]
    for name in ("bigfoot", "A--Very_Long.Name-Of-Some-Library-User", "---", "x"):
        prefix = pull_through_prefix(name, PROJECT, "dev")
        assert list(rule_problems(rule, prefix)) == [], prefix


def test_the_kms_alias_is_per_stack_and_always_valid() -> None:
    """An alias is unique per account and region: two stacks (or projects) giving the key the
    same name get different ones, each one KMS accepts, whatever the name."""
    aliases = {
        kms_alias_name(name, project, stack)
        for name in ("bigfoot", "bigfoot-dev")
        for stack in ("dev", "prod")
        for project in (PROJECT, "other")
    }
    assert len(aliases) == 8
    assert kms_alias_name("bigfoot", PROJECT, "prod").startswith("alias/bigfoot-")
    rule = RULES["kms-alias"]
    for name in ("bigfoot", "aws/rds", "team/shop", "shop key:1", "---", "x" * 300):
        alias = kms_alias_name(name, PROJECT, "dev")
        assert list(rule_problems(rule, alias)) == [], alias
    assert len(kms_alias_name("x" * 300, PROJECT, "dev")) == rule.max_length


@pytest.mark.parametrize(
    ("alias", "accepted"),
    [
        ("alias/team/shop_1-a", True),
        ("alias/shop:1", False),  # the API reference allows letters, digits, '/', '_', '-'
        ("alias/aws/rds", False),
        ("alias/" + "a" * 250, True),
        ("alias/" + "a" * 251, False),
    ],
)
def test_one_kms_alias_rule_for_the_table_and_the_component(alias: str, accepted: bool) -> None:
    from pulumi_django.components.aws.stack_key import check_alias

    assert (list(rule_problems(RULES["kms-alias"], alias)) == []) is accepted
    if accepted:
        check_alias(alias.removeprefix("alias/"), "StackKeyArgs.alias")
    else:
        with pytest.raises(ComponentArgsError, match=r"^StackKeyArgs\.alias: "):
            check_alias(alias.removeprefix("alias/"), "StackKeyArgs.alias")


def test_every_named_resource_of_the_full_plans_has_its_row() -> None:
    """A component that names a new resource after itself must add it to `DERIVED`, or the
    validation would not know its limit."""
    for recording in full_plans("bigfoot"):
        assert unknown_names(recording, "bigfoot") == []
    # The tables see what the plans hold: every row's type is in one of them.
    types = {
        resource.type for recording in full_plans("bigfoot") for resource in recording.resources
    }
    rows = {row.type_token for row in DERIVED}
    assert rows - types == set()


def assert_accepted_exactly_when_the_plans_are(name: str) -> None:
    """Accepted: every physical name in the plans fits its rule. Refused: the plans, made with
    the name set past the validation (and the components' own check off), hold a name AWS
    would refuse."""
    problems = name_problems(name)
    if not problems:
        for recording in full_plans(name):
            assert refused_in_plan(recording, name) == []
            assert unknown_names(recording, name) == []
        return
    with pytest.raises(ComponentArgsError):
        record_site(unchecked_config("prod", name), "prod")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("pulumi_django.components.args.name_problems", lambda *_a, **_k: [])
        recordings = [
            record_site(unchecked_config(stack, name), stack) for stack in ("prod", "dev")
        ]
    refused = [line for recording in recordings for line in refused_in_plan(recording, name)]
    assert refused, f"{name!r} was refused ({problems[0].line('')}) but its plans are fine"
    assert any(problems[0].derived.type_token in line for line in refused)


# The edges and the issue's names, each a test of its own so that xdist spreads their plans
# over the cores (as `@example`s they would all run in one test, one after another).
@pytest.mark.parametrize(
    "name",
    [
        "a" * 16,
        "a" * 17,
        "bigfoot-dev",
        DOUBLE_HYPHEN,
        LONGEST_PATTERN_NAME,
        "internal-shop",
        "sg-shop",
    ],
)
def test_the_validation_accepts_exactly_the_names_whose_plans_aws_accepts(name: str) -> None:
    assert_accepted_exactly_when_the_plans_are(name)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(NAMES)
def test_the_validation_accepts_exactly_the_drawn_names_whose_plans_aws_accepts(
    name: str,
) -> None:
    assert_accepted_exactly_when_the_plans_are(name)
