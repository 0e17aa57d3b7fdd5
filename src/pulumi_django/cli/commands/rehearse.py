"""`pulumi-django rehearse`: a real rolling release on this machine, under load, then a report."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from pulumi_django.cli.commands import interpreter_path
from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.cli.stackfile import StackFile
    from pulumi_django.config import StackConfig

DEFAULT_STACK = "local"
MAX_REPLICAS = 20
MAX_RATE = 1000.0
MAX_WORKERS = 16
MAX_PHASE_SECONDS = 600.0
STDOUT = "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pulumi_django.cli.rehearsal.sources import DEFAULT_FROM, WORKTREE

    parser.add_argument(
        "--app",
        metavar="DIR",
        help="the app, the Django project's directory (default: the stack's app.context)",
    )
    sides = (
        f"a git ref of the repository holding the app, {WORKTREE} (the working tree, "
        "uncommitted changes included) or a release variant in DIR/releases"
    )
    parser.add_argument(
        "--from",
        dest="from_spec",
        metavar="REF",
        help=f"the version that runs before the release: {sides} (default: {DEFAULT_FROM}; "
        "with a variant --to, the variant without overlay files, such as v1)",
    )
    parser.add_argument(
        "--to",
        dest="to_spec",
        metavar="REF",
        help=f"the version released over it: {sides} (default: {WORKTREE})",
    )
    parser.add_argument(
        "--replicas", type=int, default=3, metavar="N", help="app replicas (default: 3)"
    )
    parser.add_argument(
        "--server", choices=("gunicorn", "uvicorn"), help="app server (default: the stack's)"
    )
    parser.add_argument(
        "--python",
        type=interpreter_path,
        metavar="PATH",
        help="the app's interpreter: its servers, collectstatic, check and migrations run there "
        "(default: the stack's django:app.python, else this one)",
    )
    parser.add_argument(
        "--proxy", choices=("nginx", "caddy"), help="reverse proxy (default: the stack's)"
    )
    parser.add_argument(
        "--rate", type=float, default=50.0, metavar="RPS", help="requests per second (default: 50)"
    )
    parser.add_argument(
        "--skip-check",
        action="store_true",
        help="migrate without the migration safety check (to see what it prevents)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--markdown",
        nargs="?",
        const=STDOUT,
        metavar="FILE",
        help="the report as markdown (a pull-request comment): printed instead of the text, or "
        "written to FILE besides what is printed",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="app server worker processes per replica (default: 2, for a small machine)",
    )
    parser.add_argument(
        "--before",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds of load before the release starts (default: 5)",
    )
    parser.add_argument(
        "--after",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="seconds of load after the release ended (default: 5)",
    )
    parser.add_argument(
        "--min-requests",
        type=int,
        default=0,
        metavar="N",
        help="keep the load on after the release until at least N requests were sent",
    )
    parser.add_argument(
        "--database-outage",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="stop PostgreSQL this long during the load, before the release (pg_ctl stop -m "
        "fast), and report what users saw, whether the health checks had replicas replaced and "
        "how the site recovered (default: 0, no outage)",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help=f"the stack whose settings are rehearsed (default: {DEFAULT_STACK}, else the "
        "project's only stack)",
    )
    parser.add_argument(
        "--cwd", default=".", help="the Pulumi project directory (default: the current one)"
    )


def run(args: argparse.Namespace) -> int:
    from pulumi_django.app_resolution import require_django
    from pulumi_django.cli.rehearsal.rehearse import RehearsalOptions, ReleaseStepError, rehearse
    from pulumi_django.cli.rehearsal.report import render_markdown, render_report, report_json
    from pulumi_django.cli.rehearsal.servers import ServerError
    from pulumi_django.cli.rehearsal.sources import resolve_sides, same_code
    from pulumi_django.cli.stackfile import interpreter_label, load_stack_file

    _check_numbers(args)
    _check_outputs(args)
    project_dir = Path(args.cwd)
    if not project_dir.is_dir():
        raise UsageError(f"--cwd {args.cwd}: no such directory")
    if args.app:
        _require_django_project(Path(args.app))
    stack_file = load_stack_file(project_dir, args.stack or _default_stack(project_dir))
    config = _stack_config(args, stack_file)
    require_django(config.app.python or "", interpreter_label(stack_file, args.python))
    app_dir = (Path(args.app) if args.app else project_dir / config.app.context).resolve()
    _require_django_project(app_dir)
    # Both sides exist before any server starts.
    previous, release = resolve_sides(app_dir, args.from_spec, args.to_spec)
    if same_code(app_dir, previous, release):
        _progress(
            f"{previous.label} and {release.label} are the same code (nothing changed in "
            f"{app_dir}): this rehearses the release machinery on the app, not a change"
        )
    options = RehearsalOptions(
        app_dir=app_dir,
        previous=previous,
        release=release,
        config=config,
        proxy=args.proxy or config.proxy.server,
        replicas=args.replicas,
        rate=args.rate,
        skip_check=args.skip_check,
        before_seconds=args.before,
        after_seconds=args.after,
        min_requests=args.min_requests,
        database_outage_seconds=args.database_outage,
    )
    try:
        with _interrupts_as_keyboard_interrupt():
            report = rehearse(options, progress=_progress)
    except (ServerError, ReleaseStepError) as error:
        raise UsageError(f"the rehearsal could not set up its site: {error}") from None
    document = report_json(report)
    if args.markdown not in (None, STDOUT):
        Path(args.markdown).write_text(render_markdown(document))
    if args.json:
        print(json.dumps(document, indent=2))
    elif args.markdown == STDOUT:
        print(render_markdown(document), end="")
    else:
        print(render_report(report), end="")
    return report.exit_code


def _check_outputs(args: argparse.Namespace) -> None:
    """Both outputs can be had at once, and the markdown's file can be written, before the
    rehearsal spends a minute."""
    if args.markdown == STDOUT and args.json:
        raise UsageError(
            "--json and --markdown both print the report: write one to a file, e.g. "
            "--json --markdown rehearsal.md"
        )
    if args.markdown not in (None, STDOUT):
        parent = Path(args.markdown).parent
        if not parent.is_dir():
            raise UsageError(f"--markdown {args.markdown}: no such directory {parent}")


def _require_django_project(app_dir: Path) -> None:
    if not (app_dir / "manage.py").is_file():
        raise UsageError(f"{app_dir} holds no manage.py: pass --app DIR, the Django project")


def _check_numbers(args: argparse.Namespace) -> None:
    if not 1 <= args.replicas <= MAX_REPLICAS:
        raise UsageError(f"--replicas {args.replicas}: use 1 to {MAX_REPLICAS}")
    if not 0 < args.rate <= MAX_RATE:
        raise UsageError(f"--rate {args.rate:g}: use more than 0, at most {MAX_RATE:g}")
    if not 1 <= args.workers <= MAX_WORKERS:
        raise UsageError(f"--workers {args.workers}: use 1 to {MAX_WORKERS}")
    if not 0 <= args.min_requests <= MAX_RATE * MAX_PHASE_SECONDS:
        raise UsageError(
            f"--min-requests {args.min_requests}: use 0 to {MAX_RATE * MAX_PHASE_SECONDS:.0f}"
        )
    for flag, seconds in (
        ("--before", args.before),
        ("--after", args.after),
        ("--database-outage", args.database_outage),
    ):
        if not 0 <= seconds <= MAX_PHASE_SECONDS:
            raise UsageError(f"{flag} {seconds:g}: use 0 to {MAX_PHASE_SECONDS:g} seconds")


def _stack_config(args: argparse.Namespace, stack_file: StackFile) -> StackConfig:
    """The stack's config, with the app server and its worker count the flags ask for."""
    from pulumi_django.cli.stackfile import resolved_stack_config

    app_dir = Path(args.app) if args.app else None
    config = resolved_stack_config(
        stack_file, python=args.python, app_dir=app_dir, server=args.server
    )
    app = config.app.model_copy(update={"workers": args.workers})
    return config.model_copy(update={"app": app})


def _default_stack(project_dir: Path) -> str:
    """`local` when the project has it, else its only stack (`init` writes `dev`)."""
    from pulumi_django.cli.stackfile import available_stacks

    stacks = available_stacks(project_dir)
    if DEFAULT_STACK in stacks:
        return DEFAULT_STACK
    if len(stacks) == 1:
        return stacks[0]
    known = f"stacks: {', '.join(stacks)}" if stacks else "no Pulumi.<stack>.yaml at all"
    raise UsageError(
        f"pass --stack NAME: the stack whose settings are rehearsed ({known} in {project_dir})"
    )


_STARTED = time.monotonic()


def _progress(line: str) -> None:
    """One line on stderr (stdout is the report's), with the seconds since the command began."""
    print(f"rehearse {time.monotonic() - _STARTED:6.1f}s  {line}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _interrupts_as_keyboard_interrupt() -> Iterator[None]:
    """Ctrl-C and SIGTERM both unwind the rehearsal, stopping every server it started; a
    second signal while it cleans up is ignored, so the clean-up finishes."""
    interrupted = False

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        nonlocal interrupted
        if interrupted:
            return
        interrupted = True
        raise KeyboardInterrupt

    previous = {
        signum: signal.signal(signum, interrupt) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
