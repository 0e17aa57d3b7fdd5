"""The release rehearsal tests against themselves as issue 18 found them, both in one run.

Issue 18 asks the rehearsal tests to take at most half the time they took when it was filed
(commit bd86f60, whose `make test` ran them one at a time after the unit tests), with the same
assertions and request counts. Machines of one kind differ from day to day (commit 7e7da45's
`make test` on a fresh clone took 398.4 s one day and 287.8 s another), so that ratio only means
something with both measured in one run on one machine: this clones both commits, installs each
one's virtualenv from its own lock (`make install`, untimed; uv's cache is left alone), then
each round runs bd86f60's rehearsal tests as its Makefile did and this commit's recipe for them
(`make rehearsal-tests`) by itself, alternating which goes first, each with nothing cached from
an earlier round (the suite's cache under build/ removed, as on a fresh clone). `make test`
runs that recipe beside the unit tests, sharing the cores: `bench_suite.py` times it there.

Printed: each commit's wall time (median), its CPU seconds (the tests' processes and those they
waited for; a PostgreSQL that pg_ctl detached is not counted), the tests that passed (bd86f60
had one rehearsal test fewer; the rehearsals' flags and request counts are the same), and the
ratio; the last line is one JSON object.

    .venv/bin/python benchmarks/bench_rehearsals.py [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from measure import Run, run_timed, succeeded

ROOT = Path(__file__).resolve().parent.parent
BASELINE = "bd86f60"  # main when issue 18 was filed
TARGET_RATIO = 0.5
TEST_FILES = ("tests/test_rehearse.py", "tests/test_rehearse_workers.py")
# bd86f60's Makefile ran the rehearsals in its `unit` recipe, one at a time.
BASELINE_COMMAND = (
    ".venv/bin/pytest",
    *("-p", "no:cacheprovider", "--hypothesis-profile=ci", *TEST_FILES),
)
SUBJECT_COMMAND = ("make", "--no-print-directory", "rehearsal-tests")
SUITE_CACHE = "build/test-cache"  # the Makefile's PULUMI_DJANGO_CACHE_DIR (bd86f60 had none)


@dataclass(frozen=True)
class CommitFigures:
    """One commit's rehearsal tests over the rounds."""

    commit: str
    seconds: float  # median
    cpu_seconds: float  # median
    passed: int  # the fewest in any round
    runs: list[float]


def passed_in(output: str) -> int:
    """How many tests pytest's last summary line says passed (0 when it says none did)."""
    lines = output.strip().splitlines()
    found = re.findall(r"(\d+) passed", lines[-1] if lines else "")
    return int(found[-1]) if found else 0


def figures(commit: str, runs: Sequence[Run]) -> CommitFigures:
    return CommitFigures(
        commit=commit,
        seconds=round(statistics.median(run.wall for run in runs), 1),
        cpu_seconds=round(statistics.median(run.cpu for run in runs), 1),
        passed=min(passed_in(run.stdout) for run in runs),
        runs=[round(run.wall, 1) for run in runs],
    )


def summary(baseline: CommitFigures, subject: CommitFigures) -> dict[str, object]:
    """The JSON line: both commits' figures and the subject's ratio to the baseline."""
    return {
        "benchmark": "rehearsals",
        "ratio": round(subject.seconds / baseline.seconds, 2),
        "target_ratio": TARGET_RATIO,
        "rounds": len(subject.runs),
        "baseline": asdict(baseline),
        "subject": asdict(subject),
    }


def output_of(command: Sequence[str], cwd: Path | None = None) -> str:
    """What a preparing command printed; a failure ends the benchmark with its message."""
    return succeeded(run_timed(command, cwd=cwd), command).stdout


def checkout_of(commit: str, directory: Path) -> Path:
    """`commit` of this repository cloned into `directory`, its virtualenv installed."""
    output_of(["git", "clone", "-q", str(ROOT), str(directory)])
    output_of(["git", "checkout", "-q", commit], cwd=directory)
    output_of(["make", "--no-print-directory", "install"], cwd=directory)
    return directory


def rehearsal_tests(command: Sequence[str], checkout: Path) -> Run:
    """One run of the rehearsal tests, without the cache an earlier run left."""
    shutil.rmtree(checkout / SUITE_CACHE, ignore_errors=True)
    return succeeded(run_timed(command, cwd=checkout), command)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    commits = {
        "baseline": output_of(["git", "rev-parse", f"{BASELINE}^{{commit}}"], cwd=ROOT).strip(),
        "subject": output_of(["git", "rev-parse", "HEAD"], cwd=ROOT).strip(),
    }
    commands = {"baseline": BASELINE_COMMAND, "subject": SUBJECT_COMMAND}
    scratch = Path(tempfile.mkdtemp(prefix="bench-rehearsals-"))
    try:
        checkouts = {name: checkout_of(commit, scratch / name) for name, commit in commits.items()}
        runs: dict[str, list[Run]] = {"baseline": [], "subject": []}
        for round_number in range(args.rounds):
            order = ["subject", "baseline"]
            for name in reversed(order) if round_number % 2 else order:
                run = rehearsal_tests(commands[name], checkouts[name])
                runs[name].append(run)
                print(
                    f"  {name:<8} {commits[name][:8]} {run.wall:6.1f} s "
                    f"(CPU {run.cpu:6.1f} s), {passed_in(run.stdout)} passed",
                    flush=True,
                )
        baseline = figures(commits["baseline"], runs["baseline"])
        subject = figures(commits["subject"], runs["subject"])
        document = summary(baseline, subject)
        print(
            f"rehearsal tests: {subject.seconds} s at {subject.commit[:8]} against "
            f"{baseline.seconds} s at {baseline.commit[:8]} = {document['ratio']}x "
            f"(issue 18: at most {TARGET_RATIO}x); CPU {subject.cpu_seconds} s against "
            f"{baseline.cpu_seconds} s"
        )
        print(json.dumps(document))
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
