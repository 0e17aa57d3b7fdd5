"""`pulumi-django plan`: the stack's resources and release order, offline, under mocks; for a
ready-made stack (`django:target`) or a program of one's own built from the components.

A plan that would not release safely still prints in full, then fails (exit 1), so that CI
stops it: the app's readiness check found errors, or a release step can run before the step
it must follow (a program of one's own that forgot an `after=`)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import gc
import json
import os
import sys
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from pulumi_django.cli.commands import interpreter_path
from pulumi_django.errors import PulumiDjangoError, UsageError

if TYPE_CHECKING:
    from pulumi_django.cli.plan import Plan
    from pulumi_django.cli.plan_cache import PlanOutput, PlanRequest
    from pulumi_django.release_steps import Step

EXIT_CODES = """\
exit codes:
  0    the plan is printed: the app is ready, and every release step waits
       for the one before
  1    the plan is printed, but it would not release safely: the app's
       readiness check found errors (listed in the plan), or a release step
       is not ordered after the one before (NOT ORDERED in the plan; the last
       line on stderr names the step and how to order it)
  2    no plan: a usage error, invalid stack config, or a program that fails
       (its error in one line, or its traceback when it raised anything else)
  130  interrupted
With --diff-against: 0 once the diff is printed, 2 when either side's plan
cannot be made.

A plan is kept with everything it read (the stack file, the program and its
modules, the project's and the app's files) and printed again, without running
anything, while none of those changed: --no-cache plans again, and
PULUMI_DJANGO_CACHE_DIR= (empty) turns every cache off."""
# No plan: what the command line exits with for any error it prints as one line.
NO_PLAN_EXIT_CODE = 2


def ordering_fix(step: Step, after: Step) -> str:
    """How a program of one's own makes `step` wait for the step before it, in the components'
    arguments (the ready-made stacks always do). Imported here, as pulumi is: `--help` and the
    other commands start without it."""
    from pulumi_django.release_steps import Step

    waited_for = "static_release" if after == Step.STATIC else "image"
    after_static = (
        f"`MigrationJobArgs.after=[{waited_for}]` (`LocalMigrationJobArgs.after` on the "
        "local target)"
    )
    return {  # not Step.IMAGE: the first step waits for nothing
        Step.STATIC: "`StaticRelease(image=image.image_ref, ...)` publishing the built image "
        "(`LocalStaticReleaseArgs.image=image.ref` on the local target)",
        Step.CHECK: after_static,
        Step.MIGRATE: after_static,
        Step.FLEET: "`AppServiceArgs.after=[migrations]` "
        "(`LocalAppReplicasArgs.image=migrations.gate` on the local target)",
        Step.PROXY: "`LocalProxySwitchArgs.config_text` rendered from the new replicas' "
        "`upstreams`",
    }[step]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EXIT_CODES
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.NAME.yaml")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the plan as JSON to PATH (`-` for standard output, text then omitted)",
    )
    parser.add_argument(
        "--cwd",
        default=".",
        help="the Pulumi project directory (default: the current one): a ready-made stack's, "
        "or one's own program's (no django:target), whose app image's build context is checked",
    )
    parser.add_argument(
        "--diff-against",
        metavar="GITREF",
        help="compare with the plan at a git commit, branch or tag (run with that ref's code): "
        "resources added, removed, changed, stateful replacements, new migrations",
    )
    parser.add_argument(
        "--app-ref",
        metavar="REF",
        help="with --diff-against, when django:app.context is in another git repository: the "
        "app's commit, branch or tag to compare with (default: the commit a submodule is "
        "pinned to at GITREF, else the app repository's HEAD)",
    )
    parser.add_argument(
        "--python",
        type=interpreter_path,
        metavar="PATH",
        help="the app's interpreter, where its settings are imported (default: "
        "django:app.python, else this one; for one's own program, this one)",
    )
    parser.add_argument(
        "--no-cache",
        action="store_true",
        help="plan again even when nothing the last identical plan read has changed (the app "
        "checks' own cache still answers)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="how to print: text (default), markdown (a pull-request comment, with "
        "--diff-against) or json",
    )


def run(args: argparse.Namespace) -> int:
    with _collector_paused():
        code = _run(args)
        if _is_this_command():
            _exit_without_teardown(code)
    return code


def _is_this_command() -> bool:
    """Whether this process is the `pulumi-django` command (its script, or `python -m
    pulumi_django.cli`), rather than a program calling `main` (a test)."""
    program = sys.modules.get("__main__")
    spec = getattr(program, "__spec__", None)
    if spec is not None:
        return bool(spec.name == "pulumi_django.cli.__main__")
    return Path(getattr(program, "__file__", None) or "").name == "pulumi-django"


def _exit_without_teardown(code: int) -> NoReturn:
    """Exits once the output is out and the exit handlers have run, as a normal exit would, but
    without the interpreter's teardown: freeing, one by one, the objects of the thousand-odd
    modules a plan imports takes half a second (prod), and nothing outlives the process."""
    sys.stdout.flush()
    sys.stderr.flush()
    # It closes the SDK's event loops for the teardown's sake (no "Exception ignored" after a
    # failed program): there is none here, and it walks every object to find them. A plan
    # printed from the cache never loaded it.
    recorder = sys.modules.get("pulumi_django.recorder")
    if recorder is not None:
        atexit.unregister(recorder.close_event_loops)
    atexit._run_exitfuncs()
    os._exit(code)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the plan runs. Importing the Pulumi SDK's modules
    makes a few hundred thousand objects that all live to the end, and the collector would walk
    them again at every threshold for nothing to free: about a fifth of the command's time,
    for a few megabytes of memory at most (the program's cycles, freed at exit)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _run(args: argparse.Namespace) -> int:
    from pulumi_django.cli import APP_CHECKS_VARIABLE
    from pulumi_django.cli.plan_cache import PlanRequest, lookup, watched

    project_dir = Path(args.cwd)
    if not project_dir.is_dir():
        raise UsageError(f"--cwd {args.cwd}: no such directory")
    if args.diff_against is not None:
        if args.python is not None:
            raise UsageError("--python is not used with --diff-against: set django:app.python")
        return _diff(args, project_dir)
    if args.app_ref is not None:
        raise UsageError(
            "--app-ref needs --diff-against GITREF, the project's side (HEAD if only the app "
            "changed)"
        )
    if args.format == "markdown":
        raise UsageError("--format markdown needs --diff-against GITREF")
    target = _json_target(args.json)
    request = PlanRequest(
        project_dir, args.stack, args.python, os.environ.get(APP_CHECKS_VARIABLE) != "skip"
    )
    # Only the command itself caches: a program calling `main` (a test) may have changed what
    # no file shows.
    cached = _is_this_command()
    kept = lookup(request) if cached and not args.no_cache else None
    if kept is not None:
        kept.replay()
        _print_plan(args, target, kept.output)
        print(
            f"pulumi-django plan: as planned at {kept.planned_at}: nothing it read has changed "
            "since (--no-cache plans again)",
            file=sys.stderr,
        )
        return kept.output.code
    with watched(request, store=cached) as watch:
        output = _plan_output(request)
        if output is None:
            return NO_PLAN_EXIT_CODE
        watch.done(output)
        _print_plan(args, target, output)
    return output.code


def _print_plan(args: argparse.Namespace, target: Path | None, output: PlanOutput) -> None:
    """The plan as asked for: text, JSON to stdout or to `target`; the unordered steps on
    stderr."""
    if args.json == "-" or (args.format == "json" and not args.json):
        print(output.document, end="")
    else:
        if target:
            target.write_text(output.document)
        print(output.document if args.format == "json" else output.text, end="")
    for line in output.warnings:
        print(f"pulumi-django plan: {line}", file=sys.stderr)


def _plan_output(request: PlanRequest) -> PlanOutput | None:
    """The plan's output; None when the program failed with an error of its own (its traceback
    printed)."""
    from pulumi_django.cli.plan import APP_NOT_READY_EXIT_CODE, plan_stack_or_explain, render_text
    from pulumi_django.cli.plan_cache import PlanOutput

    try:
        plan = plan_stack_or_explain(
            request.project_dir,
            request.stack,
            python=request.python,
            app_checks=request.app_checks,
        )
    except PulumiDjangoError:
        raise
    except Exception:
        # A bug in the program: its traceback, as `pulumi up` shows it, but not Python's exit
        # code 1, which says that a plan was printed.
        traceback.print_exc()
        return None
    unordered = unordered_steps(plan)
    # Either failure is the readiness check's exit code, which `--diff-against` accepts from
    # each side's plan: the plan was printed all the same.
    return PlanOutput(
        document=json.dumps(plan.as_json(), indent=2, sort_keys=False) + "\n",
        text=render_text(plan),
        warnings=tuple(unordered),
        code=0 if plan.ready and not unordered else APP_NOT_READY_EXIT_CODE,
        app_dir=plan.migrations.app_dir,
    )


def unordered_steps(plan: Plan) -> list[str]:
    """One line per release step that can run before the step it must follow: which, and the
    argument that orders it."""
    steps = plan.release_order()
    numbers = {found.step.key: number for number, found in enumerate(steps, 1)}
    return [
        f"release step {numbers[found.step.key]} ({found.step.title}: "
        f"{', '.join(resource.name for resource in found.resources)}) is not ordered after "
        f"step {numbers[found.after.key]} ({found.after.title}): it can run before it; make it "
        f"wait for it, e.g. {ordering_fix(found.step.key, found.after.key)}"
        for found in steps
        if found.after is not None and found.ordered is False
    ]


def _json_target(path: str | None) -> Path | None:
    """Checked before the plan runs, so a typo costs no wait."""
    if path is None or path == "-":
        return None
    target = Path(path)
    if target.is_dir():
        raise UsageError(
            f"--json {path}: is a directory; give a file name, e.g. {target / 'plan.json'}"
        )
    if not target.parent.is_dir():
        raise UsageError(f"--json {path}: directory {target.parent} does not exist")
    return target


def _diff(args: argparse.Namespace, project_dir: Path) -> int:
    from pulumi_django.cli.git_plan import review_against
    from pulumi_django.cli.plan_diff import diff_json, render_markdown
    from pulumi_django.cli.plan_diff import render_text as render_diff_text

    if args.json:
        raise UsageError("--json writes a plan, not a diff: use --format json with --diff-against")
    diff = review_against(project_dir, args.stack, args.diff_against, args.app_ref)
    if args.format == "json":
        print(json.dumps(diff_json(diff), indent=2))
    elif args.format == "markdown":
        print(render_markdown(diff), end="")
    else:
        print(render_diff_text(diff), end="")
    return 0
