"""`pulumi-django`: the command line. Each subcommand lives in `pulumi_django.commands`.

A command module defines `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`,
and keeps heavy imports inside `run` so that every command starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from .errors import UsageError

# Subcommand name -> module under pulumi_django.commands. Names are a public contract.
COMMANDS: dict[str, str] = {
    "plan": "plan",
    "config-reference": "config_reference",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulumi-django",
        description="Deploy Django with Pulumi so that rolling releases never break the site.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"pulumi_django.commands.{module_name}")
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as error:
        print(f"pulumi-django {args.command}: error: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:  # a model built from CLI input, not from stack config
        print(f"pulumi-django {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pulumi-django {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
