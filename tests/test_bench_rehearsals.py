"""benchmarks/bench_rehearsals.py, the rehearsal tests against issue 18's commit: what it runs
for this commit, how it reads pytest's count, and the figures it prints, from canned runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import benchmark_scripts

measure = benchmark_scripts.load("measure")
bench = benchmark_scripts.load("bench_rehearsals", "measure")
ROOT = Path(__file__).resolve().parent.parent


def test_the_subject_runs_the_recipe_of_exactly_the_rehearsal_files_with_the_suites_cache() -> None:
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", *bench.SUBJECT_COMMAND[2:]],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert all(name in recipe for name in bench.TEST_FILES)
    assert "--ignore" not in recipe  # not the unit tests' recipe, which leaves them out
    exports = [
        line
        for line in (ROOT / "Makefile").read_text().splitlines()
        if line.endswith(f"export PULUMI_DJANGO_CACHE_DIR := $(CURDIR)/{bench.SUITE_CACHE}")
    ]
    assert any("rehearsal-tests" in line.split(":")[0] for line in exports), exports


def test_the_passed_count_is_read_from_pytests_last_line() -> None:
    assert bench.passed_in("....\n82 passed in 105.75s (0:01:45)\n") == 82
    assert bench.passed_in("x\n81 passed, 2 warnings in 3.0s\n") == 81
    assert bench.passed_in("no tests ran in 0.01s\n") == 0
    assert bench.passed_in("") == 0


def test_the_ratio_is_of_the_medians_and_the_fewest_passes_are_reported() -> None:
    def run(wall: float, cpu: float, passed: int) -> object:
        return measure.Run(wall, cpu, 0, f"...\n{passed} passed in {wall}s\n", "")

    baseline = bench.figures("b" * 40, [run(270.0, 120.0, 81), run(280.0, 125.0, 81)])
    subject = bench.figures(
        "s" * 40, [run(100.0, 130.0, 82), run(110.0, 140.0, 82), run(106.0, 135.0, 81)]
    )
    assert (subject.seconds, subject.cpu_seconds, subject.passed) == (106.0, 135.0, 81)
    assert (baseline.seconds, baseline.runs) == (275.0, [270.0, 280.0])
    document = bench.summary(baseline, subject)
    assert document["ratio"] == round(106.0 / 275.0, 2)
    assert (document["rounds"], document["target_ratio"]) == (3, 0.5)
    assert document["subject"]["commit"] == "s" * 40
