"""The day-2 commands' view of a deployed stack: its outputs from the Pulumi CLI or a file,
with one-line errors for each usual mistake."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from path_stubs import python_executable

from pulumi_django.cli import main
from pulumi_django.cli.plan import Plan
from pulumi_django.cli.stack_state import (
    AWS_IDENTITY,
    add_stack_arguments,
    aws_call_errors,
    load_deployed_stack,
)
from pulumi_django.errors import UsageError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_stack_arguments(parser)
    return parser.parse_args(list(argv))


def _stub_pulumi(directory: Path, script: str) -> None:
    """A `pulumi` on PATH running the Python `script` (argv in `sys.argv`)."""
    python_executable(directory, "pulumi", f"import os, sys\n{script}\n")


def test_outputs_come_from_the_pulumi_cli_in_the_project_directory(
    project_root: Path, stack_plan: Callable[[str], Plan], bin_dir: Path, tmp_path: Path
) -> None:
    outputs = stack_plan("dev").recording.outputs
    (tmp_path / "outputs.json").write_text(json.dumps(outputs))
    _stub_pulumi(
        bin_dir,
        f"open({str(tmp_path / 'argv')!r}, 'w').write(' '.join([os.getcwd(), *sys.argv[1:]]))\n"
        f"print(open({str(tmp_path / 'outputs.json')!r}).read())",
    )
    stack = load_deployed_stack(_args("--stack", "dev", "--cwd", str(project_root)))
    assert stack.target == "aws"
    assert stack.output("clusterName") == outputs["clusterName"]
    assert stack.output("logGroupName") == outputs["logGroupName"]
    assert (tmp_path / "argv").read_text().split() == [
        str(project_root),
        *["stack", "output", "--json", "--stack", "dev"],
    ]


def test_an_outputs_file_stands_in_for_the_cli(
    project_root: Path, stack_plan: Callable[[str], Plan], bin_dir: Path, tmp_path: Path
) -> None:
    file = tmp_path / "outputs.json"
    file.write_text(json.dumps(stack_plan("local").recording.outputs))
    stack = load_deployed_stack(
        _args("--stack", "local", "--cwd", str(project_root), "--outputs", str(file))
    )
    assert stack.target == "local"
    assert stack.output("networkName")


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        (None, "the Pulumi CLI is not on PATH: install it, or pass --outputs FILE"),
        (
            "print('error: no stack named dev found', file=sys.stderr); sys.exit(255)",
            "`pulumi stack output --json --stack dev` failed: error: no stack named dev found",
        ),
        ("print('{}')", "stack dev has no outputs: it was never deployed"),
        ("print('not json')", "printed no JSON object"),
    ],
)
def test_cli_mistakes_are_one_line(
    project_root: Path, bin_dir: Path, script: str | None, expected: str
) -> None:
    if script is not None:
        _stub_pulumi(bin_dir, script)
    with pytest.raises(UsageError) as raised:
        load_deployed_stack(_args("--stack", "dev", "--cwd", str(project_root)))
    assert expected in str(raised.value)
    assert "\n" not in str(raised.value)


def test_file_and_stack_mistakes_are_one_line(project_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"resources": [], "releaseOrder": [], "outputs": {}}))
    cases = {
        ("--stack", "nope"): "no stack file Pulumi.nope.yaml",
        ("--stack", "dev", "--outputs", str(missing)): "No such file or directory",
        ("--stack", "dev", "--outputs", str(listed)): "not a JSON object of outputs",
        ("--stack", "dev", "--outputs", str(plan_file)): "a `pulumi-django plan --json` file",
    }
    for argv, expected in cases.items():
        with pytest.raises(UsageError) as raised:
            load_deployed_stack(_args(*argv, "--cwd", str(project_root)))
        assert expected in str(raised.value)


def test_a_missing_output_names_the_fix(project_root: Path, tmp_path: Path) -> None:
    file = tmp_path / "outputs.json"
    file.write_text(json.dumps({"url": "https://example.org"}))
    stack = load_deployed_stack(
        _args("--stack", "dev", "--cwd", str(project_root), "--outputs", str(file))
    )
    with pytest.raises(UsageError, match=r"has no output 'clusterName': run `pulumi up"):
        stack.output("clusterName")


def test_clients_act_as_the_stack_file_says(
    project_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The region and profile of the stack's `aws:` settings, as `pulumi up` deploys with."""
    (tmp_path / "Pulumi.yaml").write_text((project_root / "Pulumi.yaml").read_text())
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.ops.yaml").write_text(
        "config:\n  aws:region: eu-west-3\n  aws:profile: ops\n  django:target: aws\n"
    )
    (tmp_path / "config").write_text("[profile ops]\nregion = us-east-1\n")
    (tmp_path / "credentials").write_text(
        "[ops]\naws_access_key_id = AKIDOPS\naws_secret_access_key = secret\n"
    )
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    for variable in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(variable, raising=False)
    file = tmp_path / "outputs.json"
    file.write_text(json.dumps({"url": "https://example.org"}))
    stack = load_deployed_stack(
        _args("--stack", "ops", "--cwd", str(tmp_path), "--outputs", str(file))
    )
    client = stack.aws_client("ecs")
    assert client.meta.region_name == "eu-west-3"
    file.write_text(json.dumps({"url": "https://example.org", "region": "ap-south-2"}))
    deployed = load_deployed_stack(
        _args("--stack", "ops", "--cwd", str(tmp_path), "--outputs", str(file))
    )
    assert deployed.aws_client("logs").meta.region_name == "ap-south-2"
    assert client._request_signer._credentials.access_key == "AKIDOPS"
    assert os.environ.get("AWS_PROFILE") is None


# ---------------------------------------------------------------- AWS identity problems


def _no_aws_identity(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere in botocore's chain (and no instance metadata to ask)."""
    for variable in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("argv", [["logs"], ["manage", "--", "check"]], ids=["logs", "manage"])
def test_no_aws_credentials_is_one_line_saying_where_the_identity_comes_from(
    project_root: Path,
    stack_plan: Callable[[str], Plan],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
) -> None:
    """Both commands, with boto3's real clients: the first call finds no credentials."""
    _no_aws_identity(monkeypatch, tmp_path)
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(stack_plan("dev").recording.outputs))
    command, *rest = argv
    flags = ["--stack", "dev", "--cwd", str(project_root), "--outputs", str(outputs)]

    assert main([command, *flags, *rest]) == 2

    [line] = capsys.readouterr().err.splitlines()
    assert line == f"pulumi-django {command}: error: no AWS credentials: {AWS_IDENTITY}"
    assert "aws:profile, aws:assumeRoles" in line and "AWS_PROFILE" in line


def test_botocores_own_failures_are_one_line_each() -> None:
    from botocore.exceptions import (
        EndpointConnectionError,
        NoCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    url = "https://logs.us-east-1.amazonaws.com/"
    cases = [
        (NoCredentialsError(), f"no AWS credentials: {AWS_IDENTITY}"),
        (
            ProfileNotFound(profile="ops"),
            f"The config profile (ops) could not be found: {AWS_IDENTITY}",
        ),
        (EndpointConnectionError(endpoint_url=url), "AWS cannot be reached (Could not connect"),
        (ReadTimeoutError(endpoint_url=url), "AWS could not be asked: Read timeout"),
    ]
    for error, expected in cases:
        with pytest.raises(UsageError) as raised, aws_call_errors():
            raise error
        assert str(raised.value).startswith(expected)
        assert "\n" not in str(raised.value)


def test_the_day_2_commands_read_a_stack_without_loading_pulumi(project_root: Path) -> None:
    """`releases`, `logs`, `manage` and `rollback` start without the Pulumi SDK (0.2 s of
    start-up), which the stack file's reader needs only for a secure value's mask."""
    probe = (
        "import sys\n"
        "from pulumi_django.cli.stack_state import load_deployed_stack\n"
        "from pulumi_django.cli.stackfile import load_stack_file\n"
        f"load_stack_file(__import__('pathlib').Path({str(project_root)!r}), 'dev')\n"
        "print(sorted(m for m in ('pulumi', 'grpc', 'boto3') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
