"""The scripts under benchmarks/ as modules, for tests of their pure parts. They are run as
scripts, not installed, and import their neighbours by name (`python benchmarks/x.py` puts
benchmarks/ first on the path); here a neighbour is loaded first, under its name."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def load(name: str, *neighbours: str) -> ModuleType:
    """benchmarks/NAME.py as the module NAME, after the NEIGHBOURS it imports."""
    for neighbour in neighbours:
        load(neighbour)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module
