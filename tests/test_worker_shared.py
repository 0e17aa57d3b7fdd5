"""`computed_once` and `made_once`: a value the suite's xdist workers share (the shipped stacks'
plans), or files they only read, are made by one process of the session, and every other one
loads them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from shared_files import made_once
from worker_shared import computed_once

TESTS = Path(__file__).resolve().parent


def in_another_worker(tmp_path_factory: pytest.TempPathFactory, function: str, key: str) -> Any:
    """What `function(factory, key, make)` (of the test helpers) returns in another process of
    the same session, whose `make` fails if it is called: it must load what this one made."""
    module, _, name = function.rpartition(".")
    other_worker = textwrap.dedent(
        f"""
        import json, sys
        from pathlib import Path
        sys.path.insert(0, {str(TESTS)!r})
        from {module} import {name}

        class Factory:
            def getbasetemp(self):
                return Path({str(tmp_path_factory.getbasetemp())!r})

        def make(*_arguments):
            raise AssertionError("made a second time")

        print(json.dumps({name}(Factory(), {key!r}, make)))
        """
    )
    loaded = subprocess.run(
        [sys.executable, "-c", other_worker], capture_output=True, text=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    return json.loads(loaded.stdout)


def test_a_value_is_computed_once_for_every_process_of_the_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    computed: list[str] = []

    def compute() -> dict[str, list[int]]:
        computed.append("here")
        return {"resources": [1, 2, 3]}

    key = "worker-shared-self-test"
    assert computed_once(tmp_path_factory, key, compute) == {"resources": [1, 2, 3]}
    assert computed_once(tmp_path_factory, key, compute) == {"resources": [1, 2, 3]}
    assert computed == ["here"]
    loaded = in_another_worker(tmp_path_factory, "worker_shared.computed_once", key)
    assert loaded == {"resources": [1, 2, 3]}


def test_files_are_made_once_for_every_process_of_the_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    made: list[Path] = []

    def make(directory: Path) -> str:
        made.append(directory)
        (directory / "settings.py").write_text("DEBUG = False\n")
        return str(directory / "settings.py")

    key = "shared-files-self-test"
    first = made_once(tmp_path_factory, key, make)
    assert made_once(tmp_path_factory, key, make) == first
    assert len(made) == 1 and Path(first).read_text() == "DEBUG = False\n"
    assert in_another_worker(tmp_path_factory, "shared_files.made_once", key) == first
