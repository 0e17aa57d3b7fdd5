"""`pulumi-django plan`: the stack's resources and release order, offline, under mocks; for a
ready-made stack (`django:target`) or a program of one's own built from the components."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pulumi_django.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
        metavar="PATH",
        help="the app's interpreter, where its settings are imported (default: "
        "django:app.python, else this one; for one's own program, this one)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "markdown", "json"),
        default="text",
        help="how to print: text (default), markdown (a pull-request comment, with "
        "--diff-against) or json",
    )


def run(args: argparse.Namespace) -> int:
    from pulumi_django.cli.plan import APP_NOT_READY_EXIT_CODE, plan_stack_or_explain, render_text

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
    plan = plan_stack_or_explain(project_dir, args.stack, python=args.python)
    document = json.dumps(plan.as_json(), indent=2, sort_keys=False) + "\n"
    exit_code = 0 if plan.ready else APP_NOT_READY_EXIT_CODE
    if args.json == "-" or (args.format == "json" and not args.json):
        print(document, end="")
        return exit_code
    if target:
        target.write_text(document)
    print(document if args.format == "json" else render_text(plan), end="")
    return exit_code


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
