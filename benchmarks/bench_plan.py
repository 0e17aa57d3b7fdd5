"""`pulumi-django plan --stack S` against its floor: importing the Pulumi SDK modules it uses.

Any Pulumi Python program with the stack's resources pays for importing the `pulumi`,
`pulumi_aws`, `pulumi_docker` and `pulumi_random` modules they come from (seconds: each AWS
service package imports every one of its resources). That is the floor, measured as a fresh
interpreter (`python -c`) importing exactly the modules of those packages that a real plan of
the stack ends up with in `sys.modules` (read from a plan run first, never listed here; the AWS
services it never touches stay the lazy placeholders `pulumi_aws` makes them, as in the plan).

The subject is the command as a user or the test suite runs it, one process each, interpreter
start included: `.venv/bin/pulumi-django plan --stack S --cwd PROJECT`, its output discarded.
Both compile their bytecode once, in the warm-up, into a directory of the benchmark's own.
The command keeps each plan with what it depended on (`pulumi_django.cli.plan_cache`), and the
app's checks (the readiness probe and the migration check, each a run of the app's
interpreter) are cached by what they read (`pulumi_django.app_runs`), both in a cache
directory of this benchmark's own (`PULUMI_DJANGO_CACHE_DIR`):

- warm: the cache holds this commit's plan, as for every plan but the first of a commit;
- changed (unless --no-cold): the plan's entries removed each round, the app's checks kept:
  what a plan costs once the program or the stack file changed (the program runs, the checks
  are answered from their cache);
- cold (unless --no-cold): an empty cache each round, so the program and both checks run.

After one untimed warm-up of each, every round runs the floor and the subjects of each stack,
interleaved, in an order that alternates between rounds. Medians of wall time are printed,
each subject as a ratio to its stack's floor (issue 18 asks for at most 1.2 warm), with the
CPU time each took (its own and its children's): on a machine others share, the CPU ratio of
a warm plan (one process) is what its wall ratio would be on a quiet one. The last line is one
JSON object.

    .venv/bin/python benchmarks/bench_plan.py [--stacks dev,prod,local] [--rounds 5]
        [--cwd PROJECT] [--no-cold]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from measure import run_timed, succeeded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = BIN / "pulumi-django"
FLOOR_PACKAGES = ("pulumi", "pulumi_aws", "pulumi_docker", "pulumi_random")
CACHE_VARIABLE = "PULUMI_DJANGO_CACHE_DIR"

# Run as `python -c LISTER OUT ARGV...`: the plan, as the CLI runs it, then, at exit, the
# floor packages' modules it holds, each with whether it was loaded (`pulumi_aws` puts every
# service in sys.modules as a lazy placeholder, loaded on first use).
LISTER = """\
import atexit, json, runpy, sys
out = sys.argv[1]
sys.argv = ["pulumi-django", *sys.argv[2:]]
packages = %r
def dump():
    modules = [(name, type(module).__name__ != "_LazyModule")
               for name, module in list(sys.modules.items())
               if name.partition(".")[0] in packages]
    with open(out, "w") as file:
        json.dump(modules, file)
atexit.register(dump)
runpy.run_module("pulumi_django.cli", run_name="__main__")
"""

# The floor: each module imported by name in the order the plan imported it, the loaded ones
# touched so that a lazy placeholder is loaded as in the plan.
FLOOR = """\
import importlib
for name, loaded in %r:
    module = importlib.import_module(name)
    if loaded:  # any attribute but the introspection ones loads a lazy placeholder
        getattr(module, "__all__", None)
"""


def floor_modules(stack: str, cwd: Path, environment: dict[str, str]) -> list[tuple[str, bool]]:
    """The floor packages' modules a real plan of `stack` holds at exit, in import order."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "modules.json"
        code = LISTER % (FLOOR_PACKAGES,)
        command = [
            sys.executable,
            "-c",
            code,
            str(out),
            "plan",
            "--stack",
            stack,
            "--cwd",
            str(cwd),
        ]
        completed = subprocess.run(
            command, env=environment, capture_output=True, text=True, check=False
        )
        if completed.returncode not in (0, 1) or not out.is_file():
            raise SystemExit(f"plan --stack {stack} failed:\n{completed.stderr[-2000:]}")
        return [(name, loaded) for name, loaded in json.loads(out.read_text())]


def timed(command: Sequence[str], environment: dict[str, str]) -> tuple[float, float]:
    """(wall time, CPU time of the process and the processes it waited for)."""
    # A plan exits 1 when the app is not ready, after planning; anything else did not run.
    run = succeeded(run_timed(command, env=environment, capture=False), command[:4], ok=(0, 1))
    return run.wall, run.cpu


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return (
        statistics.median(wall for wall, _ in samples),
        statistics.median(cpu for _, cpu in samples),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stacks", default="dev,prod,local")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cwd", type=Path, default=ROOT)
    parser.add_argument("--no-cold", action="store_true", help="time warm plans only")
    args = parser.parse_args(argv)
    stacks = [stack for stack in args.stacks.split(",") if stack]
    scratch = Path(tempfile.mkdtemp(prefix="bench-plan-"))
    try:
        warm_cache = scratch / "warm"
        # Bytecode compiled once, as on any installation (in a directory of this run's own, so
        # that neither the tree nor a PYTHONDONTWRITEBYTECODE of the caller's decides).
        environment = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        base = {
            **environment,
            "PYTHONPYCACHEPREFIX": str(scratch / "bytecode"),
            CACHE_VARIABLE: str(warm_cache),
        }
        floors = {}
        for stack in stacks:
            modules = floor_modules(stack, args.cwd, base)
            loaded = sum(1 for _, was_loaded in modules if was_loaded)
            print(f"{stack}: the floor imports {loaded} modules of {', '.join(FLOOR_PACKAGES)}")
            floors[stack] = [sys.executable, "-c", FLOOR % (modules,)]
        subjects = {
            stack: [str(CLI), "plan", "--stack", stack, "--cwd", str(args.cwd)] for stack in stacks
        }
        kinds = ["floor", "warm", *([] if args.no_cold else ["changed", "cold"])]
        times: dict[tuple[str, str], list[tuple[float, float]]] = {}

        def run(stack: str, kind: str, round_number: int) -> tuple[float, float]:
            if kind == "floor":
                return timed(floors[stack], base)
            # Each stack's warm cache is its own: removing a stack's plans leaves the others'.
            warm = {**base, CACHE_VARIABLE: str(warm_cache / stack)}
            if kind == "changed":
                shutil.rmtree(warm_cache / stack / "plans", ignore_errors=True)
            if kind in ("warm", "changed"):
                return timed(subjects[stack], warm)
            cold = scratch / f"cold-{stack}-{round_number}"
            return timed(subjects[stack], {**base, CACHE_VARIABLE: str(cold)})

        for stack in stacks:  # warm-up: page cache, bytecode, the warm cache's entries
            for kind in kinds:
                run(stack, kind, -1)
        for number in range(args.rounds):
            order = [(stack, kind) for stack in stacks for kind in kinds]
            for stack, kind in order if number % 2 == 0 else reversed(order):
                times.setdefault((stack, kind), []).append(run(stack, kind, number))
        report: dict[str, dict[str, float]] = {}
        for stack in stacks:
            floor, floor_cpu = medians(times[stack, "floor"])
            row = {"floor_s": round(floor, 3), "floor_cpu_s": round(floor_cpu, 3)}
            line = f"{stack:>6}: floor {floor:6.2f} s (CPU {floor_cpu:5.2f} s)"
            for kind in kinds[1:]:
                wall, cpu = medians(times[stack, kind])
                row |= {f"{kind}_s": round(wall, 3), f"{kind}_cpu_s": round(cpu, 3)}
                row[f"{kind}_ratio"] = round(wall / floor, 3)
                row[f"{kind}_cpu_ratio"] = round(cpu / floor_cpu, 3)
                line += (
                    f" | plan {kind} {wall:6.2f} s = {wall / floor:4.2f}x"
                    f" (CPU {cpu:5.2f} s = {cpu / floor_cpu:4.2f}x)"
                )
            report[stack] = row
            print(line)
        summary = {
            "benchmark": "plan",
            "ratio": max(row["warm_ratio"] for row in report.values()),
            **(
                {}
                if args.no_cold
                else {
                    "changed_ratio": max(row["changed_ratio"] for row in report.values()),
                    "cold_ratio": max(row["cold_ratio"] for row in report.values()),
                }
            ),
            "rounds": args.rounds,
            "stacks": report,
        }
        print(json.dumps(summary))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
