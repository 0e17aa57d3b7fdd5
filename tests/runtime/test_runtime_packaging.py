"""The runtime kit is installed into users' images from a built wheel, not in editable mode as
here: a subpackage missing from runtime/pyproject.toml's list would import in this repository's
tests and be absent from every image (the release's role step would stop on it)."""

from __future__ import annotations

import tomllib
from pathlib import Path

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"


def test_every_package_of_the_kit_is_in_its_wheel() -> None:
    listed = set(
        tomllib.loads((RUNTIME / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    source = RUNTIME / "src"
    on_disk = {
        ".".join(init.parent.relative_to(source).parts)
        for init in source.rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk == listed
