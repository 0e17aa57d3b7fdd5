"""`pulumi-django manage --stack NAME [-i|--interactive] [--timeout S] -- ARGS`: `python manage.py
ARGS` once in the deployed stack, or a shell in it.

- AWS: a one-off ECS task from the service's current task definition, the app container alone
  (`cli.one_off`), its CloudWatch lines streamed, its exit code returned. `--interactive`: ECS
  Exec into a running task (`shell` when no ARGS).
- Local: a one-off container on the stack's network, copying the first app container
  (`cli.local_one_off`).

A task whose container never ran, and every usual mistake, is one line, exit 2; Ctrl-C stops a
one-off ECS task, exit 130.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, NoReturn


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from pulumi_django.cli.one_off import DEFAULT_TIMEOUT_SECONDS
    from pulumi_django.cli.stack_state import add_stack_arguments

    add_stack_arguments(parser)
    parser.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="a shell or a prompting command (default `shell`): AWS, ECS Exec into a running "
        "task (needs fleet.enableExecuteCommand, the aws CLI and the Session Manager plugin); "
        "local, a container with stdin attached",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help=f"AWS one-off task: stop it after this long (default {DEFAULT_TIMEOUT_SECONDS})",
    )
    parser.add_argument(
        "args",
        nargs=argparse.REMAINDER,
        metavar="-- ARGS",
        help="what follows `--` is given to `python manage.py`; pulumi-django's flags go before",
    )
    _hint_flags_after_double_dash(parser)


def _hint_flags_after_double_dash(parser: argparse.ArgumentParser) -> None:
    """When argparse misses `--stack` that the command line has after `--` (given to manage.py
    there), its error says to move pulumi-django's flags before `--`."""
    parse_known_args, error = parser.parse_known_args, parser.error
    given: list[str] = []

    def parse_known(args: Any = None, namespace: Any = None) -> Any:
        given[:] = list(args or [])
        return parse_known_args(args, namespace)

    def error_with_hint(message: str) -> NoReturn:
        after = given[given.index("--") + 1 :] if "--" in given else []
        if "--stack" in message and any(w.split("=")[0] == "--stack" for w in after):
            message += "; put pulumi-django's flags before `--` (after it, they go to manage.py)"
        error(message)

    parser.parse_known_args = parse_known  # type: ignore[method-assign]
    parser.error = error_with_hint  # type: ignore[method-assign]


def manage_args(args: argparse.Namespace) -> list[str]:
    """The words after `--` (or after the flags); `shell` for --interactive without any."""
    from pulumi_django.errors import UsageError

    words = list(args.args or [])
    if words[:1] == ["--"]:
        words = words[1:]
    if words:
        return words
    if args.interactive:
        return ["shell"]
    raise UsageError(
        "give the manage.py command after --, e.g. `pulumi-django manage --stack "
        f"{args.stack} -- migrate --plan`, or --interactive for a shell"
    )


def run(args: argparse.Namespace) -> int:
    from pulumi_django.cli.stack_state import load_deployed_stack
    from pulumi_django.errors import UsageError

    words = manage_args(args)
    if not args.timeout > 0:
        raise UsageError(f"--timeout {args.timeout:g}: give a number of seconds above 0")
    stack = load_deployed_stack(args)
    if stack.target == "aws":
        from pulumi_django.cli import one_off
        from pulumi_django.cli.stack_state import aws_call_errors

        with aws_call_errors():
            if args.interactive:
                return one_off.exec_in_running_task(stack, words)
            return one_off.run_task(stack, words, args.timeout)
    from pulumi_django.cli.local_one_off import run_container

    return run_container(stack, words, interactive=args.interactive, stdin_is_tty=_stdin_is_tty())


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except ValueError:  # closed
        return False
