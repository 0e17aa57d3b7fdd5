"""What the day-2 commands (`releases`, `rollback`, `manage`, `logs`) know of a deployed stack:
its stack file's config, and its outputs as `pulumi stack output --json` shows them.

The outputs come from the Pulumi CLI, run in the project directory, or from a file written by
it (`--outputs FILE`), for a machine without the CLI or a CI job that saved them. Every mistake
(no such stack, no CLI, a stack never deployed, an output missing) is a one-line UsageError.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulumi_django.cli.stackfile import StackFile, load_stack_file
from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.config import StackConfig

# No `--show-secrets`: none of the outputs the commands read is secret, and decrypting would
# prompt for a passphrase the captured CLI cannot ask.
OUTPUTS_COMMAND = "pulumi stack output --json --stack {stack}"
AWS_IDENTITY = (
    "the commands act as the stack's aws: settings (aws:profile, aws:assumeRoles) or "
    "AWS_PROFILE / the default chain, as `pulumi up` does"
)


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """`--stack`, `--cwd` and `--outputs`, the same on every day-2 command."""
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.NAME.yaml")
    parser.add_argument(
        "--cwd", default=".", help="the Pulumi project directory (default: the current one)"
    )
    parser.add_argument(
        "--outputs",
        metavar="FILE",
        type=Path,
        help="the stack's outputs as JSON, written by `pulumi stack output --json --stack NAME` "
        "(default: ask the Pulumi CLI)",
    )


@dataclass(frozen=True)
class DeployedStack:
    """A stack's file, validated `django:` config and outputs (camelCase keys)."""

    stack_file: StackFile
    config: StackConfig
    outputs: Mapping[str, Any]

    @property
    def name(self) -> str:
        return self.stack_file.stack

    @property
    def target(self) -> str:
        return self.config.target

    def output(self, key: str) -> Any:
        """The output `key`; a one-line error when the stack does not have it."""
        if key not in self.outputs:
            raise UsageError(
                f"stack {self.name} has no output {key!r}: run `pulumi up --stack {self.name}` "
                "with this version of pulumi-django first"
            )
        return self.outputs[key]

    @property
    def aws_region(self) -> str | None:
        """The region the stack deployed to (its `region` output), else its file's
        `aws:region`; None: boto3's own (AWS_REGION, the profile)."""
        return self.outputs.get("region") or self.stack_file.config.get("aws:region") or None

    def aws_client(self, service: str) -> Any:
        """A boto3 client acting as the stack's `aws:` settings say (profile, roles to assume),
        in its region: the identity `pulumi up` deploys with."""
        from pulumi_django.providers.aws_session import AwsSession, aws_client

        raw, secret_keys = self.stack_file.namespace("aws")
        session = AwsSession.from_settings(raw, secret_keys)
        return aws_client(service, self.aws_region, session.settings())


@contextmanager
def aws_call_errors() -> Iterator[None]:
    """What botocore raises before AWS answers, as one line: no credentials or a profile that
    is not in the config files (saying where the commands' AWS identity comes from), an
    endpoint that cannot be reached, anything else. AWS's own refusals (`ClientError`) are the
    caller's to word."""
    from botocore.exceptions import (
        BotoCoreError,
        EndpointConnectionError,
        NoCredentialsError,
        ProfileNotFound,
    )

    try:
        yield
    except NoCredentialsError:
        raise UsageError(f"no AWS credentials: {AWS_IDENTITY}") from None
    except ProfileNotFound as error:
        raise UsageError(f"{error}: {AWS_IDENTITY}") from None
    except EndpointConnectionError as error:
        raise UsageError(
            f"AWS cannot be reached ({error}): check the network and the stack's region "
            "(its `region` output, aws:region or AWS_REGION)"
        ) from None
    except BotoCoreError as error:
        raise UsageError(f"AWS could not be asked: {error}") from None


def load_deployed_stack(args: argparse.Namespace) -> DeployedStack:
    """The stack `--stack` names, from `--cwd`, with its outputs (`--outputs` or the CLI)."""
    from pulumi_django.config import NAMESPACE, ConfigError, parse_stack_config

    project_dir = Path(args.cwd)
    stack_file = load_stack_file(project_dir, args.stack)
    try:
        config = parse_stack_config(*stack_file.namespace(NAMESPACE))
    except ConfigError as error:
        raise UsageError(f"stack {args.stack}: {error}") from None
    outputs = (
        read_outputs_file(args.outputs)
        if args.outputs is not None
        else stack_outputs(project_dir, args.stack)
    )
    if not outputs:
        raise UsageError(
            f"stack {args.stack} has no outputs: it was never deployed; run "
            f"`pulumi up --stack {args.stack}` first"
        )
    return DeployedStack(stack_file, config, outputs)


def read_outputs_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text())
    except OSError as error:
        raise UsageError(f"--outputs {path}: {error.strerror}") from None
    except json.JSONDecodeError as error:
        raise UsageError(f"--outputs {path}: not JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(document, dict):
        raise UsageError(
            f"--outputs {path}: not a JSON object of outputs; write it with "
            f"`{OUTPUTS_COMMAND.format(stack='<stack>')} > {path}`"
        )
    if {"resources", "releaseOrder"} <= document.keys():
        raise UsageError(
            f"--outputs {path}: a `pulumi-django plan --json` file, whose outputs are the "
            "mocks' placeholders; give the deployed stack's, from "
            f"`{OUTPUTS_COMMAND.format(stack='<stack>')}`"
        )
    return document


def stack_outputs(project_dir: Path, stack: str) -> dict[str, Any]:
    """`pulumi stack output --json` of `stack`, run in `project_dir`."""
    command = OUTPUTS_COMMAND.format(stack=stack)
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise UsageError(
            "the Pulumi CLI is not on PATH: install it, or pass --outputs FILE written by "
            f"`{command}`"
        )
    done = subprocess.run(
        [pulumi, *command.split()[1:]], cwd=project_dir, capture_output=True, text=True
    )
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise UsageError(f"`{command}` failed: {lines[-1] if lines else f'exit {done.returncode}'}")
    try:
        document = json.loads(done.stdout or "{}")
    except json.JSONDecodeError:
        raise UsageError(f"`{command}` printed no JSON object") from None
    if not isinstance(document, dict):
        raise UsageError(f"`{command}` printed no JSON object")
    return document
