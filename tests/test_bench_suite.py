"""benchmarks/bench_suite.py, the timing of `make test` by phase: which phase each line of the
Makefile belongs to, the shell it gives make (runs, records and skips lines), and the figures
and ratios it prints, from canned steps and a canned JUnit file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import benchmark_scripts
import pytest

ROOT = Path(__file__).resolve().parent.parent


bench = benchmark_scripts.load("bench_suite")


def _make_lines(*args: str) -> list[str]:
    """The recipe lines `make -n` prints, continuation lines joined."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines: list[str] = []
    pending = ""
    for line in done.stdout.splitlines():
        if line.endswith("\\"):
            pending += line + "\n"
            continue
        lines.append(pending + line)
        pending = ""
    return lines


def test_every_line_make_test_runs_on_a_fresh_clone_is_filed_under_its_phase() -> None:
    # -B: as on a fresh clone, where the virtualenv does not exist yet.
    lines = [line for line in _make_lines("-B", "test") if not line.lstrip().startswith("#")]
    phases = [bench.phase_of(line) for line in lines]
    # A recursive make's own lines follow it.
    unfiled = [
        line
        for line, phase in zip(lines, phases, strict=True)
        if phase is None and line.split()[0] != "make"
    ]
    assert unfiled == []
    assert set(phases) - {None} == set(bench.PHASES)


@pytest.mark.parametrize(
    ("line", "phase"),
    [
        (
            ".venv/bin/pytest -n 3 -p no:cacheprovider --ignore=tests/test_rehearse.py \\\n"
            "\t\t--ignore=tests/test_rehearse_workers.py",
            "unit",
        ),
        (
            ".venv/bin/pytest -p no:cacheprovider tests/test_rehearse.py \\\n\ttests/x.py",
            "rehearsal",
        ),
        ('.venv/bin/pip install -q "uv==0.13.9"', "uv"),
        (
            ".venv/bin/uv pip install -q --no-deps -e . --config-settings editable_mode=strict",
            "editable",
        ),
        (".venv/bin/python -m compileall -q -j0 .venv/lib src > /dev/null", "bytecode"),
        (".venv/bin/python scripts/compile_bytecode.py .venv/lib src", "bytecode"),
        ("python3 -m venv .venv", "venv"),
        ("make --no-print-directory -j3 bytecode lint typecheck", None),
        ("# Bytecode once, up front", None),
        ("echo done", None),
    ],
)
def test_a_line_is_filed_by_the_program_it_runs(line: str, phase: str | None) -> None:
    assert bench.phase_of(line) == phase


STAND_IN = """#!/bin/sh
{body}
"""
MAKEFILE = """SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
all:
\t# a comment runs nothing
\t$(MAKE) --no-print-directory first
\tbin/pytest -n 3 --ignore=tests/test_rehearse.py
\tbin/pytest tests/test_rehearse.py
\tbin/mypy
\tbin/ruff format --check .
first:
\tbin/ruff check .
"""


def test_the_shell_runs_and_records_each_line_and_skips_the_phases_not_asked_for(
    tmp_path: Path,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    bodies = {
        # Some CPU time of its own, in a child it waits for.
        "ruff": f"{sys.executable} -c 'sum(range(3_000_000))'",
        "pytest": 'echo "$* | $PYTEST_ADDOPTS" >> pytest.log',
        "mypy": "exit 3",
    }
    for name, body in bodies.items():
        (bin_dir / name).write_text(STAND_IN.format(body=body))
        (bin_dir / name).chmod(0o755)
    (tmp_path / "Makefile").write_text(MAKEFILE)
    shell = bench.write_shell(tmp_path / "shell")
    log = tmp_path / "steps.jsonl"
    done = subprocess.run(
        ["make", "--no-print-directory", f"SHELL={shell}", "all"],
        cwd=tmp_path,
        env={
            **os.environ,
            bench.LOG_VARIABLE: str(log),
            bench.PHASES_VARIABLE: "lint,typecheck,rehearsal",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0, "mypy's exit status stops make"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["phase"], r.get("skipped", False)) for r in records] == [
        ("lint", False),
        ("unit", True),
        ("rehearsal", False),
        ("typecheck", False),
    ]
    ruff, _, rehearsal, mypy = records
    assert ruff["status"] == 0 and ruff["cpu_seconds"] > 0 and ruff["seconds"] > 0
    assert mypy["status"] == 3
    # Only the rehearsal line ran pytest, with its JUnit file and the tests' output in it.
    assert (tmp_path / "pytest.log").read_text() == (
        f"tests/test_rehearse.py | --junitxml={rehearsal['junit']} -o junit_logging=system-out\n"
    )


def _step(phase: str, start: float, seconds: float, cpu: float, **extra: Any) -> Any:
    return bench.Step(
        phase=phase,
        command=extra.get("command", phase),
        start=start,
        seconds=seconds,
        cpu_seconds=cpu,
        status=extra.get("status", 0),
        junit=extra.get("junit"),
    )


def test_lines_of_a_phase_run_in_parallel_count_once_and_their_cpu_adds_up() -> None:
    phases = bench.phases_of(
        [
            _step("lint", 100.0, 2.0, 1.0),
            _step("typecheck", 101.0, 10.0, 9.0, status=1),
            _step("lint", 101.0, 0.5, 0.5),  # within the first
            _step("unit", 120.0, 10.0, 15.0),
            _step("unit", 125.0, 10.0, 15.0),
            _step("unit", 140.0, 5.0, 4.0),
        ]
    )
    assert list(phases) == ["lint", "typecheck", "unit"]
    assert (phases["lint"].seconds, phases["lint"].cpu_seconds) == (2.0, 1.5)
    assert (phases["unit"].seconds, phases["unit"].cpu_seconds) == (20.0, 34.0)
    assert phases["typecheck"].failed and not phases["unit"].failed


def _report(**figures: float) -> str:
    return json.dumps({"release": "v2", "requests": 0, "rate": 50.0, **figures}, indent=2)


def test_the_ratios_are_to_the_target_to_cpu_over_cores_and_to_the_time_under_load(
    tmp_path: Path,
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite>'
        '<testcase classname="tests.test_rehearse" name="test_two" time="60.0"><system-out>'
        f"--replicas 2: 30 s\n{_report(requests=1000, load_seconds=20.0)}\n"
        f"--to v2: 25 s\n{_report(requests=600, load_seconds=12.5)}\n</system-out></testcase>"
        '<testcase classname="tests.test_rehearse" name="test_old" time="14.0"><system-out>'
        f"{_report(requests=500)}\n</system-out></testcase>"
        '<testcase classname="tests.test_rehearse" name="test_fast" time="0.5"/>'
        "</testsuite></testsuites>"
    )
    steps = [
        _step("venv", 0.0, 5.0, 4.0),
        _step("bytecode", 5.0, 20.0, 38.0),
        _step("unit", 30.0, 100.0, 150.0),
        _step("rehearsal", 130.0, 90.0, 40.0, junit=str(junit)),
    ]
    document = bench.summary(steps, 270.0, 2, source="commit abc")
    assert document["ratio"] == 0.75  # 270 s of the 360
    assert document["setup_seconds"] == 25.0
    assert document["unit"] == {"seconds": 100.0, "floor_seconds": 75.0, "ratio": 1.33}
    # Loads: 20 + 12.5, and 500 requests at 50 a second for the report without load_seconds.
    assert document["rehearsal"] == {
        "seconds": 90.0,
        "workers": 1,
        "floor_seconds": 42.5,
        "ratio": 2.12,
        "reports": 3,
        "overhead": {
            "tests.test_rehearse::test_two": 27.5,
            "tests.test_rehearse::test_old": 4.0,
            "tests.test_rehearse::test_fast": 0.5,
        },
    }
    # One after the other: 190 s against the 190 CPU seconds over 2 cores, 95 s.
    assert document["tests"] == {
        "seconds": 190.0,
        "side_by_side": False,
        "floor_seconds": 95.0,
        "ratio": 2.0,
    }
    assert document["source"] == "commit abc" and document["failed"] == []
    rendered = bench.render(document)
    assert "rehearsal: 90.0 s = 2.12x its floor" in rendered
    assert "unit and rehearsal, one after the other: 190.0 s = 2.0x their floor" in rendered
    assert json.loads(json.dumps(document)) == document


@pytest.mark.parametrize(
    ("rehearsal_cpu", "floor"),
    [
        (250.0, 200.0),  # (150 + 250) CPU seconds over 2 cores
        (2.0, 80.0),  # the rehearsals' loads: 80 s under load on 1 worker, more than 152 / 2
    ],
)
def test_unit_and_rehearsal_side_by_side_count_once_against_their_cpu_or_the_loads(
    tmp_path: Path, rehearsal_cpu: float, floor: float
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite>'
        '<testcase classname="tests.test_rehearse" name="test_one" time="90.0">'
        f"<system-out>{_report(load_seconds=80.0)}</system-out></testcase>"
        "</testsuite></testsuites>"
    )
    steps = [
        _step("unit", 30.0, 220.0, 150.0),
        _step("rehearsal", 31.0, 180.0, rehearsal_cpu, junit=str(junit)),
    ]
    document = bench.summary(steps, 260.0, 2)
    assert document["tests"] == {
        "seconds": 220.0,
        "side_by_side": True,
        "floor_seconds": floor,
        "ratio": round(220.0 / floor, 2),
    }
    rendered = bench.render(document)
    assert "unit and rehearsal, side by side: 220.0 s" in rendered
    assert "unit (sharing the cores): 220.0 s" in rendered
    assert "rehearsal (sharing the cores): 180.0 s" in rendered


@pytest.mark.parametrize(
    ("command", "workers", "floor"),
    [
        ("pytest tests/test_rehearse.py", 1, 90.0),  # 40 + 25 + 25 one after another
        ("pytest -n 2 tests/test_rehearse.py", 2, 45.0),  # spread: 90 / 2
        ("pytest --numprocesses=2 -p no:cacheprovider \\\n\ttests/test_rehearse.py", 2, 45.0),
        ("pytest --numprocesses 2 tests/test_rehearse.py", 2, 45.0),
        ("pytest -n3 tests/test_rehearse.py", 3, 40.0),  # the longest test's 40 s: 90 / 3 is less
        ("pytest -n 0 tests/test_rehearse.py", 1, 90.0),  # no workers: pytest's own process
    ],
)
def test_rehearsals_run_side_by_side_have_their_loads_spread_over_the_workers(
    tmp_path: Path, command: str, workers: int, floor: float
) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite>'
        + "".join(
            f'<testcase classname="tests.test_rehearse" name="test_{n}" time="{load + 5}">'
            f"<system-out>{_report(load_seconds=load)}</system-out></testcase>"
            for n, load in enumerate((40.0, 25.0, 25.0))
        )
        + "</testsuite></testsuites>"
    )
    rehearsal = _step("rehearsal", 0.0, 50.0, 60.0, junit=str(junit), command=command)
    document = bench.summary([rehearsal], 50.0, 2)
    assert (document["rehearsal"]["workers"], document["rehearsal"]["floor_seconds"]) == (
        workers,
        floor,
    )
    assert f"over {workers} worker(s) = {floor} s" in bench.render(document)


def test_xdist_s_auto_worker_count_is_counted_as_xdist_counts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_AUTO_NUM_WORKERS", "5")
    for command in ("pytest -n auto tests", "pytest --numprocesses=logical tests"):
        assert bench.pytest_workers(command) == 5
