"""The layers, held by the import graph of the source files (read with `ast`, nothing imported).

From the bottom: the publish engine and the scripts run in the app's interpreter (standard
library, and Django where they run inside the app); config; the deploy-time library
(providers, rendering, recorder, components; `release` reads the components); the command line
(`pulumi_django.cli`), which may import anything and which nothing else imports.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Where each part of the `pulumi_django` package lives (pyproject's package-dir).
SOURCES = {
    "pulumi_django": ROOT / "src" / "pulumi_django",
    "pulumi_django.components": ROOT / "components",
    "pulumi_django.config": ROOT / "config",
}
CLI = "pulumi_django.cli"
ENGINE = "pulumi_django.static_publish"
# Files run outside this package, by path: what each may import besides the standard library.
SELF_CONTAINED = {
    ENGINE: (),  # copied into a container of the app image
    "pulumi_django.migration_check.analyzer": ("django",),
    "pulumi_django.app_probe": ("django",),
    "pulumi_django.cli.rehearsal.orm_probe": ("django", "model_bakery"),
}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer} (line {self.line}) imports {self.imported}"


def module_name(package: str, root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def source_modules() -> dict[str, Path]:
    modules = {}
    for package, root in SOURCES.items():
        for path in sorted(root.rglob("*.py")):
            if "fixtures" in path.parts or "__pycache__" in path.parts:
                continue
            modules[module_name(package, root, path)] = path
    return modules


MODULES = source_modules()


def imports_of(name: str, path: Path) -> Iterator[Import]:
    """Every import in the file, at any depth (inside functions and TYPE_CHECKING blocks too),
    relative ones resolved; `from a import b` also counts as importing `a.b`."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(name, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield Import(name, module, node.lineno)
            for alias in node.names:
                yield Import(name, f"{module}.{alias.name}", node.lineno)


IMPORTS = [found for name, path in MODULES.items() for found in imports_of(name, path)]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def offending(importers: str, imported: str) -> list[str]:
    return sorted(
        {
            str(found)
            for found in IMPORTS
            if within(found.importer, importers) and within(found.imported, imported)
        }
    )


def test_the_graph_covers_the_layers() -> None:
    """A guard for the guard: a path mapping gone wrong would make every rule pass."""
    for module in (CLI, ENGINE, "pulumi_django.config", "pulumi_django.components.aws.site"):
        assert module in MODULES
    assert any(within(found.imported, CLI) for found in IMPORTS)


def test_nothing_outside_the_command_line_imports_it() -> None:
    found = [
        str(item)
        for item in IMPORTS
        if not within(item.importer, CLI) and within(item.imported, CLI)
    ]
    assert found == []


def test_the_recorder_does_not_import_the_plan_diff() -> None:
    assert offending("pulumi_django.recorder", f"{CLI}.plan_diff") == []


@pytest.mark.parametrize("imported", [ENGINE, "pulumi_django.components"])
def test_config_imports_neither_the_publish_engine_nor_components(imported: str) -> None:
    assert offending("pulumi_django.config", imported) == []


@pytest.mark.parametrize("importers", ["pulumi_django.components", "pulumi_django.providers"])
def test_what_carries_out_the_release_does_not_import_its_table(importers: str) -> None:
    """`release` imports the components and providers to read their declared steps; they
    declare with `release_steps`, so no import runs in a circle."""
    assert offending(importers, "pulumi_django.release") == []


def test_only_the_command_line_uses_usage_error() -> None:
    """A library error is no usage error: the library raises its own, under the same root."""
    found = [
        str(item)
        for item in IMPORTS
        if item.imported == "pulumi_django.errors.UsageError" and not within(item.importer, CLI)
    ]
    assert found == []


@pytest.mark.parametrize("script", sorted(SELF_CONTAINED))
def test_self_contained_files_import_only_the_standard_library(script: str) -> None:
    allowed = set(sys.stdlib_module_names) | set(SELF_CONTAINED[script])
    found = [
        str(item)
        for item in imports_of(script, MODULES[script])
        if item.imported.split(".")[0] not in allowed
    ]
    assert found == []
