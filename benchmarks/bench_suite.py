"""`make test` on a fresh clone, phase by phase, each against its floor measured in the same run.

Clones this repository's current commit into a new directory (or, with `--worktree`, that
clone with every uncommitted change of the working tree copied over it, untracked files
included: for work not committed yet) and runs `make test` there with this script as make's
shell: make hands it every recipe line, it runs the line with bash and records the line's wall
time and CPU time (the line's processes and every process they waited for). Each line is filed
under a phase by what it runs:

    system-deps venv uv lock editable bytecode   setting up (`make packages`, `make bytecode`)
    lint typecheck                               ruff, mypy
    unit                                         pytest: everything but the rehearsals
    rehearsal                                    pytest: the release rehearsals

and the figures are printed with four ratios:
  - the whole `make test` against the issue's target, 6 minutes;
  - the rehearsal phase against the time its rehearsals must spend under load: each
    rehearsal's JSON report says how long its load ran (`load_seconds`; the release with the
    stack's own health checks, start periods and drains, any database outage and the asked
    quiet time before and after all happen under load). The reports are read from the phase's
    JUnit XML, in which pytest keeps what each test printed (the rehearsal tests print each
    report); a report without `load_seconds` (older commits) counts requests / rate. When the
    phase runs its tests side by side (pytest's `-n N`), the floor is their loads spread over
    the N workers: the sum over N, or the longest test's loads, whichever is more;
  - the unit phase against its CPU seconds over the cores, the ideal parallel floor (processes
    that detach from the test, e.g. a PostgreSQL started by pg_ctl, are not counted in);
  - the two together, which `make test` runs side by side (the rehearsals leave cores idle
    while they wait on their loads; neither floor above holds while they share the cores):
    their combined wall time against their CPU seconds over the cores, or the rehearsals' own
    floor if that is more.

uv's cache is left alone: as on any machine that ran `make` before, nothing is downloaded
again (the output says whether the cache was there). The virtualenv, the bytecode and mypy's
and ruff's caches are new on every run, also with --dir.

    .venv/bin/python benchmarks/bench_suite.py [--worktree] [--dir DIR]
        [--phases lint,typecheck] [--skip-install]

--dir keeps the directory (default: a new temporary one, removed afterwards) and reuses it when
it exists; --skip-install then reuses its virtualenv (only the editable installs run again, so
that new modules resolve).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 360.0  # issue 18: `make test` on a fresh clone under 6 minutes
SETUP = ("system-deps", "venv", "uv", "lock", "editable", "bytecode")
PHASES = (*SETUP, "lint", "typecheck", "unit", "rehearsal")
# What --skip-install leaves out: the editable installs run again, so that new modules resolve.
INSTALLS = ("system-deps", "venv", "uv", "lock", "bytecode")
REHEARSAL_TESTS = "tests/test_rehearse"
BASH = "/bin/bash"  # the Makefile's SHELL
SHELL_MODE = "--as-make-shell"
LOG_VARIABLE = "BENCH_SUITE_LOG"  # the JSON-lines file the shell appends one record per line to
PHASES_VARIABLE = "BENCH_SUITE_PHASES"  # the phases the shell runs; it skips the others' lines


def words_of(command: str) -> list[str]:
    """A recipe line's words as bash splits them (continuation lines joined, comments dropped)."""
    return shlex.split(command.replace("\\\n", " "), comments=True)


def phase_of(command: str) -> str | None:
    """The phase of one recipe line, by the program it runs; None for a line that runs nothing
    (a comment), a make that runs lines of its own, or nothing this benchmark knows."""
    words = words_of(command)
    if not words:
        return None
    program = Path(words[0]).name
    if program.startswith("python") and len(words) > 1:  # the module or the script it runs
        program = words[words.index("-m") + 1] if "-m" in words[:-1] else Path(words[1]).name
    if program == "install-system-deps.sh":
        return "system-deps"
    if program == "venv":
        return "venv"
    if program in ("compileall", "compile_bytecode.py"):
        return "bytecode"
    if program == "ruff":
        return "lint"
    if program == "mypy":
        return "typecheck"
    if program == "pytest":
        # The rehearsal files as arguments, not as --ignore=... (the other phase leaves them out).
        return "rehearsal" if any(w.startswith(REHEARSAL_TESTS) for w in words) else "unit"
    if "install" in words:
        if any(w.startswith("uv==") for w in words):
            return "uv"
        if "-r" in words:
            return "lock"
        if "-e" in words or "--editable" in words:
            return "editable"
    return None


# ---------------------------------------------------------------- the shell make runs lines with


def as_make_shell(flags: Sequence[str]) -> int:
    """Runs one recipe line as bash would (`flags`: make's .SHELLFLAGS and the line) and appends
    its record to $BENCH_SUITE_LOG; a line of a phase not in $BENCH_SUITE_PHASES is skipped."""
    command = flags[-1]
    phase = phase_of(command)
    log = Path(os.environ[LOG_VARIABLE])
    if phase is not None and phase not in os.environ[PHASES_VARIABLE].split(","):
        _append(log, {"phase": phase, "command": command, "skipped": True})
        return 0
    env = dict(os.environ)
    junit = None
    if phase == "rehearsal":
        junit = log.with_name(f"junit-{phase}-{os.getpid()}.xml")
        extra = f"--junitxml={junit} -o junit_logging=system-out"
        env["PYTEST_ADDOPTS"] = f"{env.get('PYTEST_ADDOPTS', '')} {extra}".strip()
    started = time.time()
    clock = time.perf_counter()
    pid = os.posix_spawn(BASH, [BASH, *flags], env)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - clock
    code = os.waitstatus_to_exitcode(status)
    if phase is not None:
        record = {
            "phase": phase,
            "command": command,
            "start": started,
            "seconds": seconds,
            "cpu_seconds": usage.ru_utime + usage.ru_stime,
            "status": code,
            "junit": None if junit is None else str(junit),
        }
        _append(log, record)
    return code


def _append(log: Path, record: dict[str, object]) -> None:
    with log.open("a") as stream:  # one short write: lines run in parallel stay whole
        stream.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class Step:
    phase: str
    command: str
    start: float
    seconds: float
    cpu_seconds: float
    status: int
    junit: str | None

    @classmethod
    def parse(cls, line: str) -> Step | None:
        """A record of the log; None for a skipped line."""
        record = json.loads(line)
        if record.get("skipped"):
            return None
        return cls(**record)


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float  # wall: the union of its lines' intervals (lines may run in parallel)
    cpu_seconds: float
    failed: bool


def phases_of(steps: Iterable[Step]) -> dict[str, Phase]:
    """The phases in the order they started."""
    grouped: dict[str, list[Step]] = {}
    for step in sorted(steps, key=lambda step: step.start):
        grouped.setdefault(step.phase, []).append(step)
    return {
        name: Phase(
            name=name,
            seconds=_covered((step.start, step.start + step.seconds) for step in phase_steps),
            cpu_seconds=sum(step.cpu_seconds for step in phase_steps),
            failed=any(step.status != 0 for step in phase_steps),
        )
        for name, phase_steps in grouped.items()
    }


def _covered(intervals: Iterable[tuple[float, float]]) -> float:
    total = 0.0
    end = float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def reports_in(text: str) -> Iterator[dict[str, object]]:
    """The rehearsal reports (JSON objects with `requests` and `rate`) a test printed."""
    decoder = json.JSONDecoder()
    position = 0
    while (start := text.find("{", position)) != -1:
        try:
            value, position = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            position = start + 1
            continue
        if isinstance(value, dict) and "requests" in value and "rate" in value:
            yield value


def load_seconds(report: dict[str, object]) -> float:
    """How long the rehearsal's load ran; before `load_seconds` was reported, requests / rate
    (the load sends at most `rate` a second, so this is at most the time it ran)."""
    if isinstance(seconds := report.get("load_seconds"), int | float):
        return float(seconds)
    requests, rate = report["requests"], report["rate"]
    assert isinstance(requests, int | float) and isinstance(rate, int | float)
    return requests / rate


@dataclass(frozen=True)
class Rehearsed:
    """One test of the rehearsal phase: its wall time and the loads of the rehearsals it ran."""

    test: str
    seconds: float
    loads: tuple[float, ...]


def rehearsed(junit: Path) -> list[Rehearsed]:
    tests = []
    for case in ElementTree.parse(junit).iter("testcase"):  # noqa: S314 - pytest's own file
        out = case.find("system-out")
        printed = (out.text or "") if out is not None else ""
        loads = tuple(load_seconds(report) for report in reports_in(printed))
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        tests.append(Rehearsed(test=name, seconds=float(case.get("time", 0.0)), loads=loads))
    return tests


def pytest_workers(command: str) -> int:
    """How many tests a pytest line runs side by side: xdist's `-n N` (also `-nN`,
    `--numprocesses N`, `--numprocesses=N`; `auto` and `logical` as xdist counts them, 0 runs
    them in pytest's own process); 1 without it."""
    words = words_of(command)
    for word, following in itertools.pairwise([*words, ""]):
        if word in ("-n", "--numprocesses"):
            value = following
        elif word.startswith("--numprocesses="):
            value = word.partition("=")[2]
        elif word.startswith("-n"):
            value = word[2:]
        else:
            continue
        if value in ("auto", "logical"):
            return _xdist_auto_workers()
        if value.isdigit():
            return max(1, int(value))
    return 1


def _xdist_auto_workers() -> int:
    """The workers pytest-xdist starts for `-n auto` / `-n logical`, counted its way without
    psutil (which the lock does not hold): $PYTEST_XDIST_AUTO_NUM_WORKERS, else the CPUs this
    process may run on."""
    if (configured := os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "")).isdigit():
        return max(1, int(configured))
    return len(os.sched_getaffinity(0))


def _ratio(value: float, floor: float | None) -> float | None:
    return round(value / floor, 2) if floor else None


def summary(
    steps: Sequence[Step], total_seconds: float, cores: int, **context: object
) -> dict[str, object]:
    """The figures and their ratios, as the JSON line prints them."""
    phases = phases_of(steps)
    document: dict[str, object] = {
        "benchmark": "suite",
        "ratio": round(total_seconds / TARGET_SECONDS, 2),
        "seconds": round(total_seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "cores": cores,
        **context,
        "failed": [name for name, phase in phases.items() if phase.failed],
        "phases": {
            name: {"seconds": round(phase.seconds, 1), "cpu_seconds": round(phase.cpu_seconds, 1)}
            for name, phase in phases.items()
        },
    }
    if setup := [phases[name] for name in SETUP if name in phases]:
        document["setup_seconds"] = round(sum(phase.seconds for phase in setup), 1)
    if unit := phases.get("unit"):
        floor = unit.cpu_seconds / cores
        document["unit"] = {
            "seconds": round(unit.seconds, 1),
            "floor_seconds": round(floor, 1),
            "ratio": _ratio(unit.seconds, floor),
        }
    if rehearsal := phases.get("rehearsal"):
        rehearsal_steps = [step for step in steps if step.phase == "rehearsal"]
        tests = [
            test
            for step in rehearsal_steps
            if step.junit and Path(step.junit).exists()
            for test in rehearsed(Path(step.junit))
        ]
        workers = max(pytest_workers(step.command) for step in rehearsal_steps)
        loads = [sum(test.loads) for test in tests]
        floor = max([sum(loads) / workers, *loads])
        document["rehearsal"] = {
            "seconds": round(rehearsal.seconds, 1),
            "workers": workers,
            "floor_seconds": round(floor, 1),
            "ratio": _ratio(rehearsal.seconds, floor),
            "reports": sum(len(test.loads) for test in tests),
            # Where the rest of the phase goes: the tests with the most time beyond their loads.
            "overhead": {
                test.test: round(test.seconds - sum(test.loads), 1)
                for test in sorted(tests, key=lambda t: t.seconds - sum(t.loads), reverse=True)[:5]
            },
        }
        if unit:
            document["tests"] = _tests_side_by_side(steps, unit, rehearsal, floor, cores)
    return document


def _tests_side_by_side(
    steps: Sequence[Step], unit: Phase, rehearsal: Phase, rehearsal_floor: float, cores: int
) -> dict[str, object]:
    """The unit and rehearsal phases together, as `make test` may run them side by side: their
    wall time (the union of their lines) against the more of their CPU seconds over the cores
    and the rehearsals' own floor (neither phase's floor alone holds when they share cores)."""
    seconds = _covered(
        (step.start, step.start + step.seconds)
        for step in steps
        if step.phase in ("unit", "rehearsal")
    )
    floor = max((unit.cpu_seconds + rehearsal.cpu_seconds) / cores, rehearsal_floor)
    return {
        "seconds": round(seconds, 1),
        "side_by_side": seconds < unit.seconds + rehearsal.seconds,
        "floor_seconds": round(floor, 1),
        "ratio": _ratio(seconds, floor),
    }


def render(document: dict[str, object]) -> str:
    phases = document["phases"]
    assert isinstance(phases, dict)
    lines = [f"{'phase':<12} {'wall s':>8} {'cpu s':>8}"]
    for name, figures in phases.items():
        lines.append(f"{name:<12} {figures['seconds']:>8.1f} {figures['cpu_seconds']:>8.1f}")
    lines.append(
        f"make test: {document['seconds']} s = {document['ratio']}x the "
        f"{TARGET_SECONDS:.0f} s target ({document['cores']} cores)"
    )
    if "setup_seconds" in document:
        lines.append(f"setup: {document['setup_seconds']} s")
    tests = document.get("tests")
    # Each phase's own floor holds while it has the cores to itself.
    sharing = " (sharing the cores)" if isinstance(tests, dict) and tests["side_by_side"] else ""
    if isinstance(unit := document.get("unit"), dict):
        lines.append(
            f"unit{sharing}: {unit['seconds']} s = {unit['ratio']}x its floor, CPU seconds / "
            f"cores = {unit['floor_seconds']} s"
        )
    if isinstance(rehearsal := document.get("rehearsal"), dict):
        lines.append(
            f"rehearsal{sharing}: {rehearsal['seconds']} s = {rehearsal['ratio']}x its floor, the "
            f"{rehearsal['reports']} rehearsals' time under load over {rehearsal['workers']} "
            f"worker(s) = {rehearsal['floor_seconds']} s"
        )
        for test, seconds in rehearsal["overhead"].items():
            lines.append(f"  {seconds:>6.1f} s beyond its load: {test}")
    if isinstance(tests, dict):
        how = "side by side" if tests["side_by_side"] else "one after the other"
        lines.append(
            f"unit and rehearsal, {how}: {tests['seconds']} s = {tests['ratio']}x their floor, "
            f"their CPU seconds / cores or the rehearsals' floor, the more = "
            f"{tests['floor_seconds']} s"
        )
    if isinstance(failed := document["failed"], list) and failed:
        lines.append(f"FAILED: {', '.join(failed)}")
    return "\n".join(lines)


# ---------------------------------------------------------------- the run


def _git(*args: str, cwd: Path = ROOT) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def prepare(directory: Path, worktree: bool, keep_venv: bool = False) -> str:
    """`directory` at this repository's commit (cloned, or reset when it exists), with the
    working tree's changes over it when asked; returns what it holds."""
    commit = _git("rev-parse", "HEAD").strip()
    if not (directory / ".git").exists():
        subprocess.run(["git", "clone", "-q", str(ROOT), str(directory)], check=True)
    else:
        _git("fetch", "-q", str(ROOT), commit, cwd=directory)
        # Ignored files too (the bytecode, build/, the suite's cache): a run starts cold, but
        # for the virtualenv --skip-install reuses.
        _git("clean", "-q", "-fdx", *(["-e", ".venv"] if keep_venv else []), cwd=directory)
    _git("reset", "-q", "--hard", commit, cwd=directory)
    for cache in (".mypy_cache", ".ruff_cache"):  # cold, as on a fresh clone
        shutil.rmtree(directory / cache, ignore_errors=True)
    if not worktree:
        return f"commit {commit[:12]}"
    changed = _git("ls-files", "-z", "--modified", "--others", "--exclude-standard").split("\0")
    deleted = set(_git("ls-files", "-z", "--deleted").split("\0"))
    for name in filter(None, changed):
        (directory / name).unlink(missing_ok=True)
        if name not in deleted:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, directory / name, follow_symlinks=False)
    changes = len([name for name in changed if name and name not in deleted])
    return f"worktree over commit {commit[:12]} ({changes} changed files)"


def write_shell(path: Path) -> Path:
    """The program make is given as SHELL: this script in its shell mode."""
    path.write_text(
        f"#!/bin/sh\nexec {shlex.quote(sys.executable)} "
        f'{shlex.quote(str(Path(__file__).resolve()))} {SHELL_MODE} "$@"\n'
    )
    path.chmod(0o755)
    return path


def uv_cache() -> str:
    """Whether uv's cache was there before the run (it is not cleared)."""
    found = os.environ.get("UV_CACHE_DIR") or str(Path.home() / ".cache" / "uv")
    return "warm" if Path(found).is_dir() and any(Path(found).iterdir()) else "cold"


def run(args: argparse.Namespace) -> int:
    phases = [name for name in args.phases if not (args.skip_install and name in INSTALLS)]
    directory = Path(args.dir or tempfile.mkdtemp(prefix="bench-suite-")).resolve()
    if args.skip_install and not (directory / ".venv" / "bin" / "python").exists():
        raise SystemExit(f"--skip-install: no virtualenv in {directory} (run once without it)")
    logs = Path(tempfile.mkdtemp(prefix="bench-suite-logs-"))
    try:
        cache = uv_cache()
        source = prepare(directory, args.worktree, keep_venv=args.skip_install)
        shell = write_shell(logs / "shell")
        steps_log = logs / "steps.jsonl"
        steps_log.touch()
        print(f"{source} in {directory}; uv cache {cache}; make's output in {logs}/make.log")
        env = {**os.environ, LOG_VARIABLE: str(steps_log), PHASES_VARIABLE: ",".join(phases)}
        started = time.perf_counter()
        with (logs / "make.log").open("w") as output:
            make = subprocess.Popen(
                ["make", "--no-print-directory", f"SHELL={shell}", "test"],
                cwd=directory,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            shown = 0
            while make.poll() is None or shown < len(steps_log.read_text().splitlines()):
                for line in steps_log.read_text().splitlines()[shown:]:
                    if step := Step.parse(line):
                        print(f"  {step.phase:<12} {step.seconds:7.1f} s  {step.command[:60]}")
                    shown += 1
                time.sleep(1)
        total = time.perf_counter() - started
        steps = [s for line in steps_log.read_text().splitlines() if (s := Step.parse(line))]
        document = summary(
            steps, total, len(os.sched_getaffinity(0)), source=source, uv_cache=cache
        )
        print(render(document))
        print(json.dumps(document))
        if make.returncode != 0:
            print(f"make test failed ({make.returncode}): see {logs}/make.log", file=sys.stderr)
            return 1
        shutil.rmtree(logs)
        return 0
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == [SHELL_MODE]:
        return as_make_shell(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--worktree",
        action="store_true",
        help="the working tree's uncommitted changes over the commit (default: the commit)",
    )
    parser.add_argument("--dir", help="where to run, kept afterwards (default: a temporary one)")
    parser.add_argument(
        "--phases",
        type=lambda text: text.split(","),
        default=list(PHASES),
        help=f"comma-separated, of {','.join(PHASES)} (default: all); make skips the others",
    )
    parser.add_argument(
        "--skip-install",
        action="store_true",
        help="reuse --dir's virtualenv: leaves out " + ", ".join(INSTALLS),
    )
    args = parser.parse_args(argv)
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"--phases: no phase {', '.join(sorted(unknown))}")
    if args.skip_install and args.dir is None:
        parser.error("--skip-install needs --dir, the directory of an earlier run")
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
