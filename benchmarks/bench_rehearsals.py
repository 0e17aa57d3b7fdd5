"""The release rehearsal tests against themselves as issue 18 found them, both in one run.

Issue 18 asks the rehearsal tests to take at most half the time they took when it was filed
(commit bd86f60, whose `make test` ran them one at a time after the unit tests), with the same
assertions and request counts. Machines of one kind differ from day to day (one commit's `make
test` on a fresh clone: 398.4 s one day, 287.8 s another), so that ratio only means something
with both measured in one run on one machine: this clones both
commits, installs each one's virtualenv from its own lock (`make install`, untimed; uv's cache
is left alone), then each round runs each commit's rehearsal tests as its Makefile runs them,
alternating which goes first, each with nothing cached from an earlier round (the suite's
cache under build/ removed, as on a fresh clone). Printed: each commit's wall time (median), its
CPU seconds (the tests' processes and those they waited for; a PostgreSQL that pg_ctl detached
is not counted), the tests that passed, and the ratio; the last line is one JSON object.

    .venv/bin/python benchmarks/bench_rehearsals.py [--baseline bd86f60] [--rounds 1]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench_suite import ROOT, _git

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
class Timing:
    seconds: float
    cpu_seconds: float
    passed: int


def passed_in(output: str) -> int:
    """How many tests pytest's last summary line says passed (0 when it says none did)."""
    found = re.findall(r"(\d+) passed", output.strip().splitlines()[-1] if output.strip() else "")
    return int(found[-1]) if found else 0


def timed(command: Sequence[str], checkout: Path) -> Timing:
    """One run of `command` in `checkout`, without the cache an earlier run left."""
    shutil.rmtree(checkout / SUITE_CACHE, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=checkout, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {checkout}:\n{done.stdout[-3000:]}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Timing(seconds, cpu, passed_in(done.stdout))


def checkout_of(commit: str, directory: Path) -> Path:
    """`commit` of this repository cloned into `directory`, its virtualenv installed."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(directory)], check=True)
    _git("checkout", "-q", commit, cwd=directory)
    subprocess.run(
        ["make", "--no-print-directory", "install"], cwd=directory, check=True, capture_output=True
    )
    return directory


def summary(runs: dict[str, list[Timing]], commits: dict[str, str]) -> dict[str, object]:
    """Medians of each commit's runs and the subject's ratio to the baseline."""
    medians = {
        name: {
            "commit": commits[name],
            "seconds": round(statistics.median(t.seconds for t in timings), 1),
            "cpu_seconds": round(statistics.median(t.cpu_seconds for t in timings), 1),
            "passed": min(t.passed for t in timings),
            "runs": [round(t.seconds, 1) for t in timings],
        }
        for name, timings in runs.items()
    }
    ratio = medians["subject"]["seconds"] / medians["baseline"]["seconds"]
    return {
        "benchmark": "rehearsals",
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "rounds": len(runs["subject"]),
        **medians,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default=BASELINE, help=f"(default: {BASELINE})")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    commits = {
        "baseline": _git("rev-parse", f"{args.baseline}^{{commit}}").strip(),
        "subject": _git("rev-parse", "HEAD").strip(),
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-rehearsals-"))
    try:
        checkouts = {name: checkout_of(commit, scratch / name) for name, commit in commits.items()}
        commands = {"baseline": BASELINE_COMMAND, "subject": SUBJECT_COMMAND}
        runs: dict[str, list[Timing]] = {"baseline": [], "subject": []}
        for round_number in range(args.rounds):
            order = ["subject", "baseline"][:: -1 if round_number % 2 else 1]
            for name in order:
                timing = timed(commands[name], checkouts[name])
                runs[name].append(timing)
                print(
                    f"  {name:<8} {commits[name][:8]} {timing.seconds:6.1f} s "
                    f"(CPU {timing.cpu_seconds:6.1f} s), {timing.passed} passed",
                    flush=True,
                )
        document = summary(runs, commits)
        subject, baseline = document["subject"], document["baseline"]
        print(
            f"rehearsal tests: {subject['seconds']} s at {commits['subject'][:8]} against "
            f"{baseline['seconds']} s at {commits['baseline'][:8]} = {document['ratio']}x "
            f"(issue 18: at most {TARGET_RATIO}x)"
        )
        print(json.dumps(document))
        return 0
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
