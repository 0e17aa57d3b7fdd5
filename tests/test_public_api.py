"""The public API: what `pulumi_django` and `pulumi_django.testing` export, that it is documented
and cheap to import, and that the recorder runs `transforms` as the engine does."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest

import pulumi_django
from pulumi_django import testing

ROOT = Path(__file__).resolve().parent.parent
DOCS = (ROOT / "README.md").read_text() + (ROOT / "docs" / "library.md").read_text()
INIT = Path(pulumi_django.__file__)
SITES = {"AwsSite", "LocalSite"}


def public(module: Any) -> list[tuple[str, Any]]:
    return [(name, getattr(module, name)) for name in module.__all__]


def components() -> list[str]:
    return [
        name
        for name, value in public(pulumi_django)
        if isinstance(value, type) and issubclass(value, pulumi.ComponentResource)
    ]


@pytest.mark.parametrize("module", [pulumi_django, testing], ids=lambda m: m.__name__)
def test_every_exported_name_resolves_is_documented_and_public(module: Any) -> None:
    assert len(set(module.__all__)) == len(module.__all__)
    for name, value in public(module):
        assert not name.startswith("_"), name
        in_code = re.search(rf"`[^`\n]*\b{name}\b[^`\n]*`", DOCS)
        assert in_code, f"{name} is in no table of the README and not in docs/library.md"
        defined_in = getattr(value, "__module__", None)
        if defined_in is not None:  # constants have none
            assert defined_in.startswith("pulumi_django."), (name, defined_in)
            assert not any(part.startswith("_") for part in defined_in.split(".")), (
                f"{name} comes from the private module {defined_in}"
            )


def test_the_lazy_table_the_type_checking_imports_and_all_agree() -> None:
    """Three spellings of one list (names load on first use; type checkers read the imports):
    they must not drift."""
    tree = ast.parse(INIT.read_text())
    checked = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
    )
    imported = {
        (node.module, alias.name)
        for node in checked.body
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    lazy = {
        (module, name)
        for module, names in pulumi_django._EXPORTS.items()  # type: ignore[attr-defined]
        for name in names
    }
    assert imported == lazy
    assert {name for _, name in lazy} == set(pulumi_django.__all__)


def test_every_component_but_the_sites_takes_documented_frozen_args() -> None:
    for name in components():
        if name in SITES:
            continue
        args = getattr(pulumi_django, f"{name}Args")
        assert dataclasses.is_dataclass(args), name
        assert args.__dataclass_params__.frozen, name  # type: ignore[attr-defined]
        for field in dataclasses.fields(args):
            assert field.kw_only, (name, field.name)
            assert field.metadata.get("doc"), f"{name}Args.{field.name} has no arg(...) doc"


def test_every_type_an_args_field_names_is_exported_too() -> None:
    """A program can build every args object from `pulumi_django` alone."""
    for name, args in public(pulumi_django):
        if not (name.endswith("Args") and dataclasses.is_dataclass(args)):
            continue
        module = sys.modules[args.__module__]
        for field in dataclasses.fields(args):
            for word in re.findall(r"\b[A-Z]\w+\b", str(field.type)):
                named = getattr(module, word, None)
                if isinstance(named, type) and named.__module__.startswith("pulumi_django."):
                    assert word in pulumi_django.__all__, f"{name}.{field.name} needs {word}"


def test_the_components_and_the_config_and_error_roots_are_exported() -> None:
    names = set(pulumi_django.__all__)
    assert {"Network", "Database", "Cache", "AppTask", "AppService", "Cluster"} <= names
    assert {"LoadBalancer", "StaticSite", "AppImage", "MediaStorage", "MigrationJob"} <= names
    assert {"AwsSite", "LocalSite", "StackConfig", "PulumiDjangoError", "ConfigError"} <= names
    assert issubclass(pulumi_django.ConfigError, pulumi_django.PulumiDjangoError)
    # Every section of the stack config is there, by its model's own name.
    sections = {
        field.annotation.__name__
        for field in pulumi_django.StackConfig.model_fields.values()
        if isinstance(field.annotation, type) and field.annotation.__module__.startswith("pulumi_")
    }
    assert sections and sections <= names


def test_version_is_the_installed_distributions() -> None:
    assert pulumi_django.__version__ == metadata.version("pulumi-django")


def test_importing_the_package_or_the_command_line_loads_no_dependency() -> None:
    """The `pulumi-django` command imports this package first: the components' SDKs (and even
    `typing`) load only when a program asks for a name."""
    probe = (
        "import sys; before = set(sys.modules); import pulumi_django, pulumi_django.cli; "
        "print(sorted(set(sys.modules) - before))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = ast.literal_eval(result.stdout)
    assert [name for name in loaded if name.split(".")[0] in ("pulumi", "pydantic", "typing")] == []


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Nowhere"):
        _ = pulumi_django.Nowhere  # type: ignore[attr-defined]


# --- transforms, as the engine runs them -----------------------------------------------------


class Pair(pulumi.ComponentResource):
    """A component with a nested component, to see transforms reach grandchildren."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("test:index:Pair", name, None, opts)
        self.vpc = aws.ec2.Vpc(
            f"{name}-vpc", cidr_block="10.0.0.0/16", opts=pulumi.ResourceOptions(parent=self)
        )
        inner = pulumi.ComponentResource(
            "test:index:Inner", f"{name}-inner", None, pulumi.ResourceOptions(parent=self)
        )
        self.subnet = aws.ec2.Subnet(
            f"{name}-subnet",
            vpc_id=self.vpc.id,
            cidr_block="10.0.1.0/24",
            opts=pulumi.ResourceOptions(parent=inner, transforms=[_noting("own")]),
        )
        self.register_outputs({})


CALLS: list[tuple[str, str]] = []


def _noting(label: str) -> pulumi.ResourceTransform:
    def transform(args: pulumi.ResourceTransformArgs) -> None:
        CALLS.append((label, args.name))

    return transform


def _team_tag_and_protect(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult:
    props = dict(args.props)
    if args.custom:
        props["tags"] = {**(props.get("tags") or {}), "team": "web"}
    protect = pulumi.ResourceOptions(protect=True, ignore_changes=["tags"])
    return pulumi.ResourceTransformResult(props, pulumi.ResourceOptions.merge(args.opts, protect))


def test_a_components_transforms_reach_every_descendant_in_the_engines_order() -> None:
    CALLS.clear()

    def program() -> None:
        pulumi.runtime.register_resource_transform(_noting("stack"))
        transforms = [_noting("pair"), _team_tag_and_protect]
        pair = Pair("p", pulumi.ResourceOptions(transforms=transforms))
        pulumi.export("vpcTags", pair.vpc.tags)

    recording = testing.record(program, project="t", stack="s", config={})
    for resource in recording.find(type_=None, name="p-(vpc|subnet)"):
        assert resource.inputs["tags"] == {"team": "web"}
        assert resource.options["protect"] is True
        assert resource.options["ignoreChanges"] == ["tags"]
    # What the program reads back is what the engine would have created.
    assert recording.outputs["vpcTags"] == {"team": "web"}
    # The resource's own transforms, then each ancestor's from the parent up, then the stack's.
    assert [label for label, name in CALLS if name == "p-subnet"] == ["own", "pair", "stack"]
    assert [label for label, name in CALLS if name == "p-inner"] == ["pair", "stack"]
    # The subnet still waits for the VPC: dependencies survive the transforms.
    subnet = recording.one(name="p-subnet")
    assert recording.one(name="p-vpc").urn in subnet.dependencies


def test_a_transforms_exception_reaches_the_test_unchanged() -> None:
    def fail(_: pulumi.ResourceTransformArgs) -> None:
        raise ValueError("no VPC without a ticket")

    def program() -> None:
        Pair("p", pulumi.ResourceOptions(transforms=[fail]))

    with pytest.raises(ValueError, match="no VPC without a ticket"):
        testing.record(program, project="t", stack="s", config={})
    # The failed program leaves nothing behind for the next one.
    recording = testing.record(lambda: Pair("q"), project="t", stack="s", config={})
    assert recording.one(name="q-subnet")
