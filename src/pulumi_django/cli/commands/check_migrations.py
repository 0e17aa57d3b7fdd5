"""`pulumi-django check-migrations`: refuse migrations that would break the running version."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pulumi_django.cli.commands import interpreter_path
from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.cli.stackfile import StackFile
    from pulumi_django.config import StackConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "labels",
        nargs="*",
        metavar="LABEL",
        help="app_label or app_label.migration_name (default: the migrations not yet applied)",
    )
    parser.add_argument(
        "--settings",
        metavar="MODULE",
        help="the Django settings (default: the --stack's django:app.settingsModule)",
    )
    parser.add_argument(
        "--pythonpath",
        metavar="DIR",
        help="directory holding the project (default: the --stack's django:app.context, "
        "else current)",
    )
    parser.add_argument(
        "--python",
        type=interpreter_path,
        metavar="PATH",
        help="interpreter of the app's environment (default: the --stack's django:app.python, "
        "else this one)",
    )
    parser.add_argument("--database-url", metavar="URL", help="DATABASE_URL for the app's settings")
    parser.add_argument(
        "--all",
        action="store_true",
        dest="check_all",
        help="check every migration, applied or not (Django's own apps only when named)",
    )
    parser.add_argument(
        "--one-release",
        action="store_true",
        help="the LABELs ship together: what one of them creates is new to the others",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="do not connect to the database (with --all or LABEL; custom operations unchecked)",
    )
    parser.add_argument(
        "--acknowledge",
        action="append",
        default=[],
        metavar="MIGRATION=REASON",
        help="allow app_label.migration_name, or a whole app (app_label or app_label.*), on "
        "purpose, with a reason (repeatable)",
    )
    parser.add_argument(
        "--stack",
        metavar="NAME",
        help="take the app from the stack (django:app.settingsModule, app.context, app.python) "
        "and also allow its migrations.acknowledged",
    )
    parser.add_argument(
        "--cwd", default=".", help="the Pulumi project directory for --stack (default: current)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from pulumi_django.cli.stackfile import interpreter_label, resolved_stack_config
    from pulumi_django.migration_check import (
        OFFLINE_APP_ENVIRONMENT,
        acknowledgement_reasons,
        format_report,
        parse_acknowledgements,
        run_check,
    )

    if args.check_all and args.labels:
        raise UsageError("--all and LABEL exclude each other: pass one or the other")
    if args.one_release and not args.labels:
        raise UsageError("--one-release needs LABELs: the migrations that ship together")
    if args.offline and not (args.check_all or args.labels):
        raise UsageError(
            "--offline needs --all or LABEL: only the database knows what is unapplied"
        )
    if args.settings is None and not args.stack:
        raise UsageError(
            "pass --settings MODULE, or --stack NAME to take the stack's django:app.settingsModule"
        )
    if args.pythonpath is not None and not Path(args.pythonpath).is_dir():
        raise UsageError(f"--pythonpath {args.pythonpath}: no such directory")
    stack_file = _load_stack_file(args.stack, Path(args.cwd)) if args.stack else None
    stack = (
        resolved_stack_config(stack_file, python=args.python) if stack_file is not None else None
    )
    settings, pythonpath = _app_location(args, stack)
    acknowledged = acknowledgement_reasons(stack.migrations.acknowledged) if stack else {}
    try:
        acknowledged |= parse_acknowledgements(args.acknowledge)
    except ValueError as error:
        raise UsageError(str(error)) from None
    result = run_check(
        settings,
        pythonpath=pythonpath,
        python=args.python or (stack.app.python if stack else None),
        python_source=(
            interpreter_label(stack_file, args.python) if stack_file is not None else "--python"
        ),
        database_url=args.database_url,
        labels=args.labels,
        check_all=args.check_all,
        offline=args.offline,
        one_release=args.one_release,
        acknowledged=acknowledged,
        # Offline, nothing is reached: placeholders let the settings import where unset.
        environment={k: v for k, v in OFFLINE_APP_ENVIRONMENT.items() if k not in os.environ}
        if args.offline
        else None,
    )
    print(json.dumps(result.to_json(), indent=2) if args.json else format_report(result))
    return result.exit_code


def _app_location(args: argparse.Namespace, stack: StackConfig | None) -> tuple[str, str | None]:
    """The settings module and the directory it is imported from: the flags, else the stack's
    `app.settingsModule` (as the stack resolves it) and `app.context` (relative to --cwd)."""
    if stack is None:
        return args.settings, args.pythonpath
    settings = args.settings or stack.app.settings_module
    if args.pythonpath is not None:
        return settings, args.pythonpath
    app_dir = (Path(args.cwd) / stack.app.context).resolve()
    if not app_dir.is_dir():
        raise UsageError(
            f"django:app.context of stack {args.stack}: {app_dir} is no directory; "
            "fix it or pass --pythonpath"
        )
    return settings, str(app_dir)


def _load_stack_file(stack: str, project_dir: Path) -> StackFile:
    """The stack whose `migrations.acknowledged` apply and whose app (settings module,
    directory, interpreter) is the default one."""
    from pulumi_django.cli.stackfile import load_stack_file

    if not project_dir.is_dir():
        raise UsageError(f"--cwd {project_dir}: no such directory")
    return load_stack_file(project_dir, stack)
