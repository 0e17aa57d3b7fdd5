"""`pulumi-django rollback`: deploy an earlier kept release again, without migrating down, by
pinning `django:app.image` to its image and running `pulumi up` (printed, or run with `--yes`)."""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from pulumi_django.cli.stack_state import add_stack_arguments
from pulumi_django.errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.add_argument(
        "--to",
        required=True,
        metavar="RELEASE",
        help="the release: its number in `pulumi-django releases` (1 = newest), `previous`, "
        "its digest or a unique prefix of it (7+ hex digits), or its image reference",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="run the two commands (`pulumi config set`, then `pulumi up --yes`) instead of "
        "printing them",
    )


def again_command(args: argparse.Namespace, to: str) -> list[str]:
    """This rollback with `--yes`, to the release resolved now (`to`: its digest, which
    `previous` or a number no longer names once the history moves), with the `--cwd` and
    `--outputs` given."""
    command = ["pulumi-django", "rollback", "--stack", args.stack]
    if args.cwd != ".":
        command += ["--cwd", str(args.cwd)]
    if args.outputs is not None:
        command += ["--outputs", str(args.outputs)]
    return [*command, "--to", to, "--yes"]


def run(args: argparse.Namespace) -> int:
    from pulumi_django.cli.release_history import StackReleases, plan_rollback

    releases = StackReleases.deployed(args)
    index = releases.resolve(args.to)
    rollback = plan_rollback(releases, index)
    print("\n".join(rollback.explanation()))
    if not args.yes:
        print(f"Or run them now: {shlex.join(again_command(args, releases.name_for(index)))}")
        return 0
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError("the Pulumi CLI is not on PATH: install it, or run the commands above")
    set_image, deploy = rollback.commands()
    for command in (set_image, [*deploy, "--yes"]):
        print(f"$ {shlex.join(command)}", flush=True)
        done = subprocess.run([pulumi, *command[1:]], cwd=Path(args.cwd), check=False)
        if done.returncode != 0:
            print(
                f"pulumi-django rollback: `{shlex.join(command)}` failed (exit {done.returncode})",
                file=sys.stderr,
            )
            return done.returncode
    return 0
