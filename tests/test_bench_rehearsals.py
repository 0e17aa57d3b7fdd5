"""benchmarks/bench_rehearsals.py, the rehearsal tests against issue 18's commit: what it runs
for each commit, how it reads pytest's count, and the ratio it prints, from canned timings."""

from __future__ import annotations

import subprocess
from pathlib import Path

import benchmark_scripts

bench = benchmark_scripts.load("bench_rehearsals", "bench_suite")
ROOT = Path(__file__).resolve().parent.parent


def test_the_subject_runs_the_makefiles_rehearsal_recipe_over_the_files_the_baseline_ran() -> None:
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "rehearsal-tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert all(name in recipe for name in bench.TEST_FILES)
    assert bench.SUITE_CACHE in (ROOT / "Makefile").read_text()
    assert set(bench.TEST_FILES) <= set(bench.BASELINE_COMMAND)


def test_the_passed_count_is_read_from_pytests_last_line() -> None:
    assert bench.passed_in("....\n82 passed in 105.75s (0:01:45)\n") == 82
    assert bench.passed_in("F.\n1 failed, 81 passed, 2 warnings in 3.0s\n") == 81
    assert bench.passed_in("no tests ran in 0.01s\n") == 0
    assert bench.passed_in("") == 0


def test_the_ratio_is_of_the_medians_and_the_fewest_passes_are_reported() -> None:
    timing = bench.Timing
    runs = {
        "baseline": [timing(270.0, 120.0, 81), timing(280.0, 125.0, 81), timing(275.0, 123.0, 81)],
        "subject": [timing(100.0, 130.0, 82), timing(110.0, 140.0, 82), timing(106.0, 135.0, 81)],
    }
    document = bench.summary(runs, {"baseline": "b" * 40, "subject": "s" * 40})
    assert document["ratio"] == round(106.0 / 275.0, 2)
    assert document["subject"]["seconds"] == 106.0
    assert document["subject"]["cpu_seconds"] == 135.0
    assert document["subject"]["passed"] == 81
    assert document["baseline"]["runs"] == [270.0, 280.0, 275.0]
    assert (document["rounds"], document["target_ratio"]) == (3, 0.5)
