"""The dynamic resources act as the stack's `aws:` settings say: the settings read from the
stack config into every dynamic resource's `aws_session` input (names only, secrets kept
secret), and the boto3 Session built from them (the profile, then STS AssumeRole chained per
role, behind botocore Stubbers)."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import boto3
import pulumi
import pytest
from botocore.stub import Stubber
from fleet_stacks import DEV_LIKE, stack_config

from pulumi_django.config import ConfigError
from pulumi_django.providers import aws_session as sessions
from pulumi_django.providers.aws_session import (
    AssumeRole,
    AwsSession,
    AwsSessionError,
    aws_session,
    go_duration_seconds,
    parse_assume_roles,
)
from pulumi_django.providers.migration_job import MigrationJobProvider
from pulumi_django.providers.rollout_verification import RolloutVerificationProvider
from pulumi_django.providers.static_release import StaticRelease
from pulumi_django.recorder import SECRET, record

DEPLOY = "arn:aws:iam::111111111111:role/deploy"
TARGET = "arn:aws:iam::222222222222:role/site-admin"
ROLES = [
    {"roleArn": DEPLOY, "sessionName": "ci", "duration": "1h"},
    {
        "roleArn": TARGET,
        "sessionName": "pulumi",
        "externalId": "shop-42",
        "duration": "20m",
        "policy": '{"Version":"2012-10-17","Statement":[]}',
        "policyArns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
        "tags": {"team": "shop"},
        "transitiveTagKeys": ["team"],
    },
]
STACK_AWS = {
    "aws:region": "eu-west-1",
    "aws:profile": "ops",
    "aws:stsRegion": "eu-central-1",
    "aws:assumeRoles": json.dumps(ROLES),
}
EXPECTED = {
    "profile": "ops",
    "shared_config_files": [],
    "shared_credentials_files": [],
    "sts_region": "eu-central-1",
    "assume_roles": [
        {
            "role_arn": DEPLOY,
            "session_name": "ci",
            "external_id": None,
            "duration_seconds": 3600,
            "policy": None,
            "policy_arns": [],
            "tags": {},
            "transitive_tag_keys": [],
            "source_identity": None,
        },
        {
            "role_arn": TARGET,
            "session_name": "pulumi",
            "external_id": "shop-42",
            "duration_seconds": 1200,
            "policy": '{"Version":"2012-10-17","Statement":[]}',
            "policy_arns": ["arn:aws:iam::aws:policy/ReadOnlyAccess"],
            "tags": {"team": "shop"},
            "transitive_tag_keys": ["team"],
            "source_identity": None,
        },
    ],
}
DYNAMIC_AWS_RESOURCES = {
    "pulumi-python:dynamic/static:StaticRelease",
    "pulumi-python:dynamic/migrations:MigrationCheck",
    "pulumi-python:dynamic/migrations:MigrationJob",
    "pulumi-python:dynamic/fleet:RolloutVerification",
    "pulumi-python:dynamic/fleet:ImageReleaseTag",
}


def site_plan(aws_config: dict[str, str], secret_keys: list[str] | None = None) -> Any:
    from pulumi_django.components.aws.site import AwsSite

    config = stack_config(DEV_LIKE)
    return record(
        lambda: AwsSite("shop-dev", config),
        project="p",
        stack="dev",
        config=aws_config,
        secret_keys=secret_keys,
    )


# ---------------------------------------------------------------- the plan


def test_every_dynamic_aws_resource_of_the_site_carries_the_stack_s_settings() -> None:
    recording = site_plan(STACK_AWS)
    dynamic = [r for r in recording.resources if r.type.startswith("pulumi-python:dynamic/")]
    assert {r.type for r in dynamic} >= DYNAMIC_AWS_RESOURCES
    # Whatever calls AWS in a region (any dynamic resource given one) acts as the stack.
    for resource in dynamic:
        if resource.type in DYNAMIC_AWS_RESOURCES or "region" in resource.inputs:
            assert resource.inputs["aws_session"] == EXPECTED, resource.type
            assert resource.inputs["region"] == "eu-west-1", resource.type
    # The provider of the site's own resources reads the same settings.
    provider = recording.one("pulumi:providers:aws").inputs
    assert (provider["profile"], json.loads(provider["assumeRoles"])) == ("ops", ROLES)


def test_a_secret_setting_keeps_the_input_secret_and_credentials_never_travel() -> None:
    recording = site_plan(
        {
            **STACK_AWS,
            "aws:accessKey": "AKIAEXAMPLEEXAMPLE00",
            "aws:secretKey": "never-in-the-state-0123456789",
        },
        secret_keys=["aws:assumeRoles", "aws:secretKey"],
    )
    for resource in recording.resources:
        if resource.type in DYNAMIC_AWS_RESOURCES:
            assert resource.inputs["aws_session"] == SECRET, resource.type
            text = json.dumps(resource.inputs)
            assert "AKIAEXAMPLE" not in text and "never-in-the-state" not in text


def test_without_settings_boto3_s_own_chain_is_used() -> None:
    recording = site_plan({"aws:region": "eu-west-1"})
    for resource in recording.resources:
        if resource.type in DYNAMIC_AWS_RESOURCES:
            assert resource.inputs.get("aws_session") is None


def test_an_explicit_session_wins_over_the_stack_s(tmp_path: Path) -> None:
    (tmp_path / "style.css").write_text("body{}")
    given = AwsSession(profile="other", assume_roles=(AssumeRole(role_arn=TARGET),))

    def program() -> None:
        StaticRelease(
            "r", bucket="b", release_id="v1", source_dir=tmp_path, aws_session=given, keep=2
        )

    recording = record(program, project="p", stack="dev", config=STACK_AWS)
    settings = recording.one("pulumi-python:dynamic/static:StaticRelease").inputs["aws_session"]
    assert settings["profile"] == "other"
    assert [role["role_arn"] for role in settings["assume_roles"]] == [TARGET]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        (
            "aws:assumeRoles",
            json.dumps([{"roleArn": DEPLOY, "duration": "5m"}]),
            r"aws:assumeRoles\[0\]\.duration: '5m' is outside 15m to 12h",
        ),
        (
            "aws:assumeRoles",
            json.dumps([{"roleArn": DEPLOY, "duration": "an hour"}]),
            r"aws:assumeRoles\[0\]\.duration: 'an hour' is no duration",
        ),
        ("aws:sharedConfigFiles", '"~/.aws/config"', r"aws:sharedConfigFiles: give a list"),
    ],
)
def test_bad_settings_are_one_line_naming_the_key(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        site_plan({"aws:region": "eu-west-1", key: value})


def test_roles_that_are_not_json_are_one_line() -> None:
    with pytest.raises(ConfigError, match=r"aws:assumeRoles: not valid JSON"):
        parse_assume_roles("[{roleArn: x}]")


def test_go_durations() -> None:
    assert go_duration_seconds("1h30m", "x") == 5400
    assert go_duration_seconds("900s", "x") == 900
    assert go_duration_seconds("12h", "x") == 43200


# ---------------------------------------------------------------- the session


def credentials(key: str) -> dict[str, Any]:
    return {
        "AccessKeyId": key,
        "SecretAccessKey": f"secret-of-{key}",
        "SessionToken": f"token-of-{key}",
        "Expiration": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    }


@pytest.fixture
def ops_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared config file with the `ops` profile's own keys; no other AWS environment."""
    for name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "nonexistent"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "nonexistent"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    config = tmp_path / "aws-config"
    config.write_text(
        "[profile ops]\naws_access_key_id = AKIAOPSPROFILE\naws_secret_access_key = ops-secret\n"
    )
    return config


def test_the_profile_then_each_role_with_the_credentials_of_the_one_before(
    ops_profile: Path,
) -> None:
    settings = json.loads(json.dumps(EXPECTED))
    settings["shared_config_files"] = [str(ops_profile)]
    made: list[tuple[str, str | None, str]] = []
    stubs: list[Stubber] = []
    answers = iter(
        [
            (
                {
                    "RoleArn": DEPLOY,
                    "RoleSessionName": "ci",
                    "DurationSeconds": 3600,
                },
                credentials("ASIADEPLOYEXAMPLE0"),
            ),
            (
                {
                    "RoleArn": TARGET,
                    "RoleSessionName": "pulumi",
                    "ExternalId": "shop-42",
                    "DurationSeconds": 1200,
                    "Policy": '{"Version":"2012-10-17","Statement":[]}',
                    "PolicyArns": [{"arn": "arn:aws:iam::aws:policy/ReadOnlyAccess"}],
                    "Tags": [{"Key": "team", "Value": "shop"}],
                    "TransitiveTagKeys": ["team"],
                },
                credentials("ASIATARGETEXAMPLE0"),
            ),
        ]
    )

    def make_client(session: Any, service: str, region: str | None) -> Any:
        made.append((service, region, session.get_credentials().access_key))
        client = session.client(service, region_name=region)
        expected, answer = next(answers)
        stub = Stubber(client)
        stub.add_response("assume_role", {"Credentials": answer}, expected)
        stub.activate()
        stubs.append(stub)
        return client

    final = aws_session(settings, "eu-west-1", make_client=make_client)

    # In order: the profile's keys assume the first role, whose keys assume the second.
    assert made == [
        ("sts", "eu-central-1", "AKIAOPSPROFILE"),
        ("sts", "eu-central-1", "ASIADEPLOYEXAMPLE0"),
    ]
    for stub in stubs:
        stub.assert_no_pending_responses()
    frozen = final.get_credentials().get_frozen_credentials()
    assert (frozen.access_key, frozen.secret_key, frozen.token) == (
        "ASIATARGETEXAMPLE0",
        "secret-of-ASIATARGETEXAMPLE0",
        "token-of-ASIATARGETEXAMPLE0",
    )
    assert final.region_name == "eu-west-1"
    # A client of the final session signs with the assumed credentials.
    s3 = final.client("s3")
    assert s3._request_signer._credentials.access_key == "ASIATARGETEXAMPLE0"


def test_a_role_that_cannot_be_assumed_names_the_setting(ops_profile: Path) -> None:
    settings = {"shared_config_files": [str(ops_profile)], "profile": "ops", **EXPECTED}
    settings["shared_config_files"] = [str(ops_profile)]

    def make_client(session: Any, service: str, region: str | None) -> Any:
        client = session.client(service, region_name=region)
        stub = Stubber(client)
        stub.add_client_error("assume_role", "AccessDenied", "not authorized to perform")
        stub.activate()
        return client

    with pytest.raises(
        AwsSessionError, match=rf"aws:assumeRoles\[0\]: cannot assume {DEPLOY}: .*AccessDenied"
    ):
        aws_session(settings, "eu-west-1", make_client=make_client)


def test_an_unknown_profile_is_one_line(ops_profile: Path) -> None:
    with pytest.raises(AwsSessionError, match=r"aws:profile nobody: no such profile"):
        aws_session({"profile": "nobody", "shared_config_files": [str(ops_profile)]}, "us-east-1")


def test_an_unknown_environment_profile_names_aws_profile(
    ops_profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `aws:profile`, boto3 reads AWS_PROFILE: the message names where it came from."""
    monkeypatch.setenv("AWS_PROFILE", "nobody")
    with pytest.raises(AwsSessionError, match=r"^AWS_PROFILE nobody: no such profile"):
        aws_session({"shared_config_files": [str(ops_profile)]}, "us-east-1")


def test_clients_of_one_identity_share_one_role_chain(
    ops_profile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []

    def make_client(session: Any, service: str, region: str | None) -> Any:
        calls.append(service)
        client = session.client(service, region_name=region)
        stub = Stubber(client)
        stub.add_response("assume_role", {"Credentials": credentials("ASIASHAREDEXAMPLE0")})
        stub.activate()
        return client

    monkeypatch.setattr(sessions, "_client", make_client)
    monkeypatch.setattr(sessions, "_cache", {})
    settings = {
        "profile": "ops",
        "shared_config_files": [str(ops_profile)],
        "assume_roles": [{"role_arn": DEPLOY}],
    }
    ecs = sessions.aws_client("ecs", "eu-west-1", settings)
    logs = sessions.aws_client("logs", "eu-west-1", settings)
    assert calls == ["sts"]
    assert ecs._request_signer._credentials.access_key == "ASIASHAREDEXAMPLE0"
    assert logs._request_signer._credentials.access_key == "ASIASHAREDEXAMPLE0"


# ---------------------------------------------------------------- the providers pass them on


def test_release_tasks_and_the_rollout_check_build_their_clients_from_the_settings() -> None:
    asked: list[tuple[Any, ...]] = []

    def clients(*args: Any, **kwargs: Any) -> Any:
        asked.append((*args, kwargs.get("session")))
        return boto3.Session(
            aws_access_key_id="x", aws_secret_access_key="y", region_name="eu-west-1"
        ).client(args[0])

    class Probe(MigrationJobProvider):
        run_task = staticmethod(lambda _props, runner: {"ecs": runner.ecs})

    settings = {"profile": "ops", "assume_roles": [{"role_arn": DEPLOY}]}
    Probe(clients)._run({"region": "eu-west-1", "aws_session": settings})
    assert asked == [("ecs", "eu-west-1", settings), ("logs", "eu-west-1", settings)]

    asked.clear()

    def ecs_factory(region: str, session: Any = None) -> Any:
        asked.append((region, session))
        raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        RolloutVerificationProvider(client_factory=ecs_factory).create(
            {
                "cluster": "c",
                "service": "s",
                "task_definition": "t:1",
                "region": "eu-west-1",
                "timeout_seconds": 1,
                "aws_session": settings,
            }
        )
    assert asked == [("eu-west-1", settings)]


def test_the_session_input_is_what_the_components_pass() -> None:
    """`AwsSession()` is the default chain alone: no input, no secret."""
    assert AwsSession().input() is None
    assert AwsSession(profile="ops").settings() == {
        "profile": "ops",
        "shared_config_files": [],
        "shared_credentials_files": [],
        "sts_region": None,
        "assume_roles": [],
    }
    assert isinstance(AwsSession(profile="ops", secret=True).input(), pulumi.Output)
