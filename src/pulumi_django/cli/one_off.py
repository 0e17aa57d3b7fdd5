"""`pulumi-django manage` on AWS: `python manage.py ARGS` once, as an ECS task, or in a running
task through ECS Exec.

The one-off task runs as the release's migration job does (`providers.release_task`): a revision
derived from the service's current task definition, the app container alone, the command in
place of the server's, in the service's subnets and security groups. Unlike the migration job
it runs as the app runs (the app's own database role, not the master login), has a `startedBy`
tag of its own (`pulumi-django-manage/<service>`), so it never waits for a release's migration
job nor holds one up, and is attached: its CloudWatch lines are printed as they arrive, Ctrl-C
stops it, and its container's exit code is the command's.

`--interactive` runs `aws ecs execute-command` into the first RUNNING task of the service, in
the stack's AWS identity (its profile, or the credentials of its assumed roles).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.cli.stack_state import DeployedStack

MANAGE = ("python", "manage.py")
PURPOSE = "one-off command"
GROUP_PREFIX = "pulumi-django-manage"
STARTED_BY_PREFIX = "pulumi-django-manage/"
DEFAULT_TIMEOUT_SECONDS = 3600
EXEC_AGENT = "ExecuteCommandAgent"
AWS_CLI_INSTALL = "https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"
PLUGIN_INSTALL = (
    "https://docs.aws.amazon.com/systems-manager/latest/userguide/"
    "session-manager-working-with-install-plugin.html"
)


@dataclass
class Waiting:
    """The clock and sleep the one-off task is waited with (`WAITING`; tests replace it)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


WAITING = Waiting()


@dataclass(frozen=True)
class Service:
    """What DescribeServices says of the stack's ECS service."""

    cluster: str
    name: str
    task_definition: str
    subnets: list[str]
    security_groups: list[str]
    execute_command: bool


def manage_command(args: Sequence[str]) -> list[str]:
    return [*MANAGE, *args]


@contextmanager
def aws_errors() -> Iterator[None]:
    """An AWS refusal as one line; no credentials, no network and the rest of botocore's own
    failures as `stack_state.aws_call_errors` words them."""
    from botocore.exceptions import ClientError

    from pulumi_django.cli.stack_state import aws_call_errors
    from pulumi_django.providers.release_task import aws_refusal

    try:
        with aws_call_errors():
            yield
    except ClientError as error:
        raise UsageError(aws_refusal(error)) from None


def describe_service(ecs: Any, stack: DeployedStack) -> Service:
    """The service the stack's `clusterName`/`serviceName` outputs name; one line when gone."""
    cluster = str(stack.output("clusterName"))
    name = str(stack.output("serviceName"))
    answer = ecs.describe_services(cluster=cluster, services=[name])
    found = next(iter(answer.get("services", [])), None)
    if found is None or found.get("status") == "INACTIVE":
        reasons = ", ".join(item.get("reason", "?") for item in answer.get("failures", []))
        raise UsageError(
            f"service {name} not found in cluster {cluster} ({reasons or 'INACTIVE'}): was stack "
            f"{stack.name} destroyed? Run `pulumi up --stack {stack.name}`"
        )
    vpc = (found.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
    return Service(
        cluster=found.get("clusterArn") or cluster,
        name=found.get("serviceName") or name,
        task_definition=found["taskDefinition"],
        subnets=list(vpc.get("subnets", [])),
        security_groups=list(vpc.get("securityGroups", [])),
        execute_command=bool(found.get("enableExecuteCommand")),
    )


class Settled:
    """`logs_complete` for a command whose output is unknown: the log is complete once a poll
    after the task stopped brought nothing new."""

    def __init__(self) -> None:
        self.seen = -1

    def __call__(self, lines: list[str]) -> bool:
        done = len(lines) == self.seen
        self.seen = len(lines)
        return done


def run_task(stack: DeployedStack, args: Sequence[str], timeout_seconds: float) -> int:
    """Runs `python manage.py ARGS` as a one-off ECS task; its container's exit code."""
    from pulumi_django.providers.release_task import Attached, ReleaseTask, ReleaseTaskRunner
    from pulumi_django.rendering.container_definitions import APP_CONTAINER

    def clients(service: str, _region: str, **_options: Any) -> Any:
        return stack.aws_client(service)  # in the stack's region and AWS identity

    runner = ReleaseTaskRunner(clients, stack.aws_region or "", WAITING.clock, WAITING.sleep)
    with aws_errors():
        service = describe_service(runner.ecs, stack)
        definition = runner.task_definition(service.task_definition)
    log_group, log_prefix = _app_log(definition, service.task_definition, APP_CONTAINER)
    task = ReleaseTask(
        purpose=PURPOSE,
        group=f"{GROUP_PREFIX}:{service.name}",
        cluster_arn=service.cluster,
        task_definition_arn=service.task_definition,
        container_name=APP_CONTAINER,
        subnet_ids=service.subnets,
        security_group_ids=service.security_groups,
        log_group_name=log_group,
        log_stream_prefix=log_prefix,
        service_name=service.name,
        command=manage_command(args),
        timeout_seconds=timeout_seconds,
        started_by_prefix=STARTED_BY_PREFIX,
        exclusive=False,
        timeout_setting="--timeout",
        overrun_note="what the command had committed stays",
    )

    def line(text: str) -> None:
        print(text, flush=True)

    def notice(text: str) -> None:
        print(f"pulumi-django manage: {text}", file=sys.stderr, flush=True)

    outcome = runner.run(task, Settled(), Attached(on_line=line, on_notice=notice))
    notice(f"{PURPOSE} task {outcome.task_arn} exited with code {outcome.exit_code}")
    return outcome.exit_code


def _app_log(definition: Mapping[str, Any], arn: str, container: str) -> tuple[str, str]:
    """The awslogs group and stream prefix of the app container in `definition`."""
    app = next(
        (item for item in definition.get("containerDefinitions", []) if item["name"] == container),
        None,
    )
    if app is None:
        raise UsageError(f"task definition {arn} has no container named {container!r}")
    logging = app.get("logConfiguration") or {}
    options = logging.get("options") or {}
    if logging.get("logDriver") != "awslogs" or not options.get("awslogs-stream-prefix"):
        raise UsageError(
            f"the {container} container of {arn} does not log to CloudWatch with a stream "
            "prefix (awslogs-stream-prefix), so its output cannot be shown"
        )
    return str(options["awslogs-group"]), str(options["awslogs-stream-prefix"])


# ---------------------------------------------------------------- ECS Exec


def exec_in_running_task(stack: DeployedStack, args: Sequence[str]) -> int:
    """`aws ecs execute-command` running `python manage.py ARGS` in the first RUNNING task of
    the service, interactively; the AWS CLI's exit code."""
    from pulumi_django.rendering.container_definitions import APP_CONTAINER

    if not stack.config.fleet.enable_execute_command:  # before asking AWS anything
        raise UsageError(
            f"ECS Exec is off for stack {stack.name}: set django:fleet.enableExecuteCommand "
            "true and run pulumi up (`pulumi config set --path "
            f"django:fleet.enableExecuteCommand true --stack {stack.name}`)"
        )
    with aws_errors():
        ecs = stack.aws_client("ecs")
        service = describe_service(ecs, stack)
    if not service.execute_command:  # the file turns it on; the deployed service has it off
        raise UsageError(
            f"ECS Exec is off for service {service.name}, though stack {stack.name}'s file sets "
            f"django:fleet.enableExecuteCommand true: run `pulumi up --stack {stack.name}`"
        )
    aws = shutil.which("aws")
    if aws is None:
        raise UsageError(
            f"the AWS CLI (`aws`) is not on PATH: install AWS CLI v2 ({AWS_CLI_INSTALL})"
        )
    if shutil.which("session-manager-plugin") is None:
        raise UsageError(
            "the Session Manager plugin (`session-manager-plugin`) is not on PATH, which ECS "
            f"Exec needs: install it ({PLUGIN_INSTALL})"
        )
    with aws_errors():
        task_arn = running_task(ecs, service)
    region = stack.aws_region
    options, env = aws_cli_identity(stack, region)
    argv = [
        aws,
        "ecs",
        "execute-command",
        "--cluster",
        service.cluster,
        "--task",
        task_arn,
        "--container",
        APP_CONTAINER,
        "--interactive",
        # The agent in the container splits this as a shell would, and runs it without one.
        "--command",
        shlex.join(manage_command(args)),
        *(["--region", region] if region else []),
        *options,
    ]
    return wait_passing_interrupts(subprocess.Popen(argv, env=env))


def running_task(ecs: Any, service: Service) -> str:
    """The first RUNNING task of the service that ECS Exec can enter."""
    arns: list[str] = []
    pages = ecs.get_paginator("list_tasks").paginate(
        cluster=service.cluster, serviceName=service.name, desiredStatus="RUNNING"
    )
    for page in pages:
        arns.extend(page.get("taskArns", []))
    described = ecs.describe_tasks(cluster=service.cluster, tasks=arns[:100]) if arns else {}
    running = [item for item in described.get("tasks", []) if item.get("lastStatus") == "RUNNING"]
    if not running:
        raise UsageError(
            f"service {service.name} has no RUNNING task to open a shell in"
            + (f" ({len(arns)} starting)" if arns else "")
            + ": wait for one, or run the command as a one-off task (without --interactive)"
        )
    enabled = [item for item in running if item.get("enableExecuteCommand")]
    if not enabled:
        raise UsageError(
            f"the running tasks of service {service.name} started before ECS Exec was turned "
            "on: replace them with `aws ecs update-service --cluster "
            f"{service.cluster} --service {service.name} --force-new-deployment`"
        )
    ready = [item for item in enabled if _exec_agent_running(item)]
    return str((ready or enabled)[0]["taskArn"])


def _exec_agent_running(task: Mapping[str, Any]) -> bool:
    return any(
        agent.get("name") == EXEC_AGENT and agent.get("lastStatus") == "RUNNING"
        for container in task.get("containers", [])
        for agent in container.get("managedAgents", [])
    )


def aws_cli_identity(stack: DeployedStack, region: str | None) -> tuple[list[str], dict[str, str]]:
    """The AWS CLI options and environment acting as the stack's `aws:` settings say: nothing
    more with none; `--profile` with a profile alone; with roles to assume, the assumed role's
    credentials from boto3's session as environment variables (never on the command line)."""
    from pulumi_django.providers.aws_session import AwsSession, cached_session

    raw, secret_keys = stack.stack_file.namespace("aws")
    settings = AwsSession.from_settings(raw, secret_keys).settings()
    env = dict(os.environ)
    if settings is None:
        return [], env
    for variable, key in (
        ("AWS_CONFIG_FILE", "shared_config_files"),
        ("AWS_SHARED_CREDENTIALS_FILE", "shared_credentials_files"),
    ):
        if settings.get(key):
            env[variable] = str(settings[key][0])
    if not settings.get("assume_roles"):
        return (["--profile", settings["profile"]] if settings.get("profile") else []), env
    session = cached_session(settings, region)
    credentials = session.get_credentials()
    if credentials is None:
        raise UsageError("no AWS credentials found to assume the stack's aws:assumeRoles with")
    frozen = credentials.get_frozen_credentials()
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(variable, None)
    env["AWS_ACCESS_KEY_ID"] = frozen.access_key
    env["AWS_SECRET_ACCESS_KEY"] = frozen.secret_key
    if frozen.token:
        env["AWS_SESSION_TOKEN"] = frozen.token
    return [], env


def wait_passing_interrupts(process: subprocess.Popen[Any]) -> int:
    """The child's exit code. Ctrl-C reaches the child too (same terminal): it decides what an
    interrupt means (a shell cancels its line), so this process waits on."""
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            continue
