"""`pulumi-django plan`: the stack's resources and release order, offline, under mocks."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UsageError

HELP = "Show what a stack deploys, offline: the resource tree, the release order, the outputs."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.NAME.yaml")
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the plan as JSON to PATH (`-` for standard output, text then omitted)",
    )
    parser.add_argument(
        "--cwd", default=".", help="the Pulumi project directory (default: the current one)"
    )


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..plan import plan_stack, render_text

    project_dir = Path(args.cwd)
    if not project_dir.is_dir():
        raise UsageError(f"--cwd {args.cwd}: no such directory")
    try:
        plan = plan_stack(project_dir, args.stack)
    except ConfigError as error:
        raise UsageError(f"stack {args.stack}: {error}") from None
    document = json.dumps(plan.as_json(), indent=2, sort_keys=False) + "\n"
    if args.json == "-":
        print(document, end="")
        return 0
    if args.json:
        target = Path(args.json)
        if not target.parent.is_dir():
            raise UsageError(f"--json {args.json}: directory {target.parent} does not exist")
        target.write_text(document)
    print(render_text(plan), end="")
    return 0
