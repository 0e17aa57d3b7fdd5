"""How the benchmarks time a command: one process, as a pipeline runs it, interpreter start
included, with the CPU seconds it used (steadier than the wall clock on a machine others
share). Run as scripts, the benchmarks import this as their neighbour (`from measure import`)."""

from __future__ import annotations

import resource
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # the process's and those it waited for; a daemon it detached is not counted
    returncode: int
    stdout: str
    stderr: str


def run_timed(
    command: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    capture: bool = True,
) -> Run:
    """One run of `command`; its output kept when `capture`, else discarded. The CPU seconds
    are the growth of this process's reaped children's, so nothing else may be reaped meanwhile
    (the benchmarks run one command at a time; a server they started is reaped at the end)."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, stdout=output, stderr=output, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(wall, cpu, done.returncode, done.stdout or "", done.stderr or "")


def succeeded(run: Run, command: Sequence[str], ok: Collection[int] = (0,)) -> Run:
    """`run`, or the end of the benchmark with one message: the command, its status and the
    end of what it printed."""
    if run.returncode not in ok:
        printed = (run.stderr.strip() or run.stdout.strip())[-2000:]
        raise SystemExit(f"{' '.join(command)} failed ({run.returncode}):\n{printed}")
    return run
