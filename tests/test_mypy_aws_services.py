"""mypy reads pulumi_aws's top level and the services the stack uses, nothing else of the SDK
(pyproject.toml), and `make bytecode` compiles the same services (scripts/compile_bytecode.py).
A service the code uses but the list leaves out would be an unknown module to mypy, its calls
unchecked: these tests fail first, naming it."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path

import pulumi_aws

ROOT = Path(__file__).resolve().parent.parent
# What mypy checks: the packages pulumi_django and pulumi_django_runtime, from these sources.
CHECKED = ("src", "components", "config", "runtime")
SDK = Path(pulumi_aws.__file__).parent


def services_used(sources: Iterable[str]) -> set[str]:
    """The pulumi_aws subpackages the code names: `aws.ec2.Vpc` after `import pulumi_aws as
    aws`, `from pulumi_aws.appautoscaling import ...`, `import pulumi_aws.s3`, `from pulumi_aws
    import iam`."""
    names: set[str] = set()
    for source in sources:
        tree = ast.parse(source)
        aliases = {
            alias.asname or alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
            if alias.name == "pulumi_aws"
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(
                    alias.name.split(".")[1]
                    for alias in node.names
                    if alias.name.startswith("pulumi_aws.")
                )
            elif isinstance(node, ast.ImportFrom) and node.module == "pulumi_aws":
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pulumi_aws."):
                names.add((node.module or "").split(".")[1])
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                names.add(node.attr)
    return {name for name in names if (SDK / name / "__init__.py").exists()}


def _our_sources() -> list[str]:
    return [
        path.read_text()
        for directory in CHECKED
        for path in sorted((ROOT / directory).rglob("*.py"))
        if "fixtures" not in path.parts
    ]


def _followed() -> set[str]:
    overrides = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]["overrides"]
    return {
        module
        for override in overrides
        if override.get("follow_imports") == "normal"
        for module in override["module"]
    }


def test_the_scan_finds_every_way_the_code_names_a_service() -> None:
    source = (
        "import pulumi_aws as aws\nimport pulumi_aws.s3\nfrom pulumi_aws import iam\n"
        "from pulumi_aws.appautoscaling import Policy\n"
        "aws.ec2.Vpc('v')\naws.get_region_output()\naws.appflow.Flow('f')\n"
    )
    assert services_used([source]) == {"s3", "iam", "appautoscaling", "ec2", "appflow"}


def test_mypy_reads_every_service_the_code_uses() -> None:
    used = services_used(_our_sources())
    assert "ec2" in used  # the scan sees the components
    followed = _followed()
    missing = sorted(
        service
        for service in used
        if not {f"pulumi_aws.{service}", f"pulumi_aws.{service}.*"} <= followed
    )
    assert missing == [], f'add "pulumi_aws.NAME", "pulumi_aws.NAME.*" to pyproject.toml: {missing}'


def test_mypy_reads_the_whole_top_level_of_the_installed_sdk() -> None:
    top_level = {f"pulumi_aws.{path.stem}" for path in SDK.glob("*.py") if path.stem != "__init__"}
    missing = sorted(top_level - _followed())
    assert missing == [], f"pulumi_aws has new top-level modules; list them: {missing}"
    assert "pulumi_aws" in _followed()


def test_bytecode_is_of_the_services_mypy_reads_and_the_packages_imported(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    files = [
        "pulumi_aws/__init__.py",
        "pulumi_aws/provider.py",
        "pulumi_aws/config/vars.py",
        "pulumi_aws/ec2/vpc.py",
        "pulumi_aws/ec2/_inputs.py",
        "pulumi_aws/appflow/flow.py",
        "pulumi_aws/ec2extra/thing.py",
        "other/appflow/flow.py",
        "sympy/core/basic.py",
        "sympyish/basic.py",
    ]
    for name in files:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("VALUE = 1\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compile_bytecode.py"), str(site)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    compiled = {
        str(path.parent.parent.relative_to(site) / path.name.split(".")[0]) + ".py"
        for path in site.rglob("*.pyc")
    }
    assert compiled == set(files) - {
        "pulumi_aws/appflow/flow.py",
        "pulumi_aws/ec2extra/thing.py",
        "sympy/core/basic.py",
    }


def test_a_file_that_does_not_compile_fails_the_step(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("def (:\n")
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "compile_bytecode.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
