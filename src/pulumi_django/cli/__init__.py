"""`pulumi-django`: the command line. Each subcommand lives in `pulumi_django.cli.commands`.

A command module defines `add_arguments(parser)` and `run(args) -> int`, and keeps heavy
imports inside `run`. Any pulumi-django error a command lets through (a `UsageError` of the
command line, or the library's own: invalid config, an app that cannot be inspected...) is
printed as one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pulumi_django.errors import PulumiDjangoError

# Set to `skip` by `plan --diff-against` for the plan at the ref, whose app checks the review
# never reads (it checks the migrations added since the ref itself): no app interpreter runs for
# it, and the plan is not kept (a scratch copy no later plan shares). An environment variable,
# not a flag, so that a ref's older code, which knows neither, runs.
APP_CHECKS_VARIABLE = "PULUMI_DJANGO_PLAN_APP_CHECKS"

# Subcommand name -> (module under pulumi_django.cli.commands, one-line help). Names are a public
# contract. Only the chosen command's module is imported, so every command starts fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "plan": (
        "plan",
        "Show what a stack deploys, offline: the resource tree, the release order, the outputs.",
    ),
    "render": (
        "render",
        "Print the proxy config (nginx or Caddy) or the app-server settings a stack deploys.",
    ),
    "publish-static": (
        "publish_static",
        "Publish a release's collected static files to S3, keeping the previous releases' files.",
    ),
    "check-migrations": (
        "check_migrations",
        "Refuse migrations that would break the version still running during a rolling update.",
    ),
    "rehearse": (
        "rehearse",
        "Rehearse a rolling release on real servers under load and report what users saw.",
    ),
    "init": (
        "init",
        "Make an existing Django project deployable: stack file, Dockerfile, settings lines.",
    ),
    "releases": (
        "releases",
        "List a stack's kept releases, newest first: image, when, migrations, the running one.",
    ),
    "rollback": (
        "rollback",
        "Deploy an earlier kept release through the normal release order, without migrating down.",
    ),
    "manage": (
        "manage",
        "Run `manage.py` once in the deployed stack (a one-off task), or open a shell in it.",
    ),
    "logs": (
        "logs",
        "Show the app, proxy, migration and worker logs of a stack, interleaved by time.",
    ),
    "config-reference": (
        "config_reference",
        "Print the stack config reference (the table in README.md) as Markdown.",
    ),
}


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pulumi-django",
        description="Deploy Django with Pulumi so that rolling releases never break the site.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((word for word in argv if not word.startswith("-")), None)
    for name, (module_name, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        if name == chosen:
            module = importlib.import_module(f"pulumi_django.cli.commands.{module_name}")
            module.add_arguments(sub)
            sub.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments).parse_args(arguments)
    try:
        return int(args.handler(args))
    except PulumiDjangoError as error:
        print(f"pulumi-django {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"pulumi-django {args.command}: interrupted", file=sys.stderr)
        return 130
