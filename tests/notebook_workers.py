"""The second example app (examples/notebook) with background processes, for the workers tests
of both targets."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

NOTEBOOK = Path(__file__).resolve().parent.parent / "examples" / "notebook"


def notebook_with_workers(tmp_path: Path, stack: str, workers: dict[str, Any]) -> Path:
    """A copy of the notebook project whose stack `stack` (`Pulumi.<stack>.yaml`) sets
    `django:workers` to `workers`."""
    project = tmp_path / "notebook"
    shutil.copytree(NOTEBOOK, project, ignore=shutil.ignore_patterns("__pycache__"))
    stack_file = project / f"Pulumi.{stack}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["django:workers"] = workers
    stack_file.write_text(yaml.safe_dump(document))
    return project
