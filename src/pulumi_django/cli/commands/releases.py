"""`pulumi-django releases`: a stack's kept releases, newest first, from its outputs."""

from __future__ import annotations

import argparse
import json

from pulumi_django.cli.stack_state import add_stack_arguments


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the history as JSON, every record in full, with its index and whether it "
        "runs now",
    )


def run(args: argparse.Namespace) -> int:
    from pulumi_django.cli.release_history import StackReleases, releases_json, releases_table

    releases = StackReleases.deployed(args)
    if args.json:
        print(json.dumps(releases_json(releases), indent=2))
    else:
        print("\n".join(releases_table(releases)))
    return 0
