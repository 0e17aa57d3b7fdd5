"""One exception hierarchy: the library's errors and the command line's `UsageError` share one
root, a library error is no usage error, and the command line prints any of them as one line."""

from __future__ import annotations

import argparse

import pulumi
import pytest

from pulumi_django import cli
from pulumi_django.app_discovery import AppDiscoveryError, InterpreterError
from pulumi_django.build_context import BuildContextError
from pulumi_django.cli.rehearsal.rehearse import ReleaseStepError
from pulumi_django.cli.rehearsal.servers import ServerError
from pulumi_django.cli.rehearsal.write_probe import WriteProbeError
from pulumi_django.config import ConfigError
from pulumi_django.errors import PulumiDjangoError, UsageError
from pulumi_django.migration_check import MigrationCheckError
from pulumi_django.providers.migration_check import MigrationCheckFailed
from pulumi_django.providers.migration_job import MigrationJobError
from pulumi_django.providers.release_task import ReleaseTaskError
from pulumi_django.providers.rollout_verification import RolloutError
from pulumi_django.providers.static_release import StaticReleaseError

LIBRARY_ERRORS = [
    ConfigError,
    AppDiscoveryError,
    InterpreterError,
    BuildContextError,
    MigrationCheckError,
    ReleaseTaskError,
    MigrationCheckFailed,
    MigrationJobError,
    RolloutError,
    StaticReleaseError,
]
# What `pulumi up` meets while it runs the program: Pulumi prints a RunError without traceback.
PROGRAM_ERRORS = [ConfigError, BuildContextError, StaticReleaseError]


@pytest.mark.parametrize("error", LIBRARY_ERRORS)
def test_a_library_error_is_under_the_root_and_no_usage_error(error: type[Exception]) -> None:
    assert issubclass(error, PulumiDjangoError)
    assert not issubclass(error, UsageError)


@pytest.mark.parametrize("error", [UsageError, ServerError, WriteProbeError, ReleaseStepError])
def test_the_command_line_s_errors_are_under_the_root_too(error: type[Exception]) -> None:
    assert issubclass(error, PulumiDjangoError)


@pytest.mark.parametrize("error", PROGRAM_ERRORS)
def test_errors_of_the_program_are_one_line_in_pulumi_up(error: type[Exception]) -> None:
    assert issubclass(error, pulumi.RunError)


@pytest.mark.parametrize(
    "raised",
    [
        UsageError("--cwd /nowhere: no such directory"),
        AppDiscoveryError("/srv/app: no such app directory"),
        MigrationCheckError("--python: interpreter /nope: no such file"),
    ],
)
def test_the_command_line_prints_any_of_them_as_one_line_with_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], raised: Exception
) -> None:
    def run(_args: argparse.Namespace) -> int:
        raise raised

    monkeypatch.setattr("pulumi_django.cli.commands.config_reference.run", run)

    assert cli.main(["config-reference"]) == 2
    assert capsys.readouterr().err == f"pulumi-django config-reference: error: {raised}\n"
