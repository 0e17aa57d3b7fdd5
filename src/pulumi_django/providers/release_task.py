"""One-off ECS tasks of a release (the migration check and the migration job), and of
`pulumi-django manage`.

Each runs in a one-off revision derived from the new task definition, in the service's subnets
and security groups, tagged so that a second release task for the same service is refused while
the first still runs (a `manage` task has a tag of its own and is not `exclusive`); it is
waited for up to a time limit, stopped when it overruns, and its exit code and CloudWatch log
are read back (`manage`: followed while it runs, `Attached`). Every AWS failure becomes a
ReleaseTaskError whose message says what happened and carries the log tail.

The derived revision holds the app container alone, running the task's command, without its
health check or dependencies: the proxy waits for the app to turn HEALTHY, which a migration
never does, and ECS stops the whole task once the proxy's start timeout (120 s at most) runs
out. The command also travels there rather than in RunTask's overrides, which allow 8192
characters (the embedded migration analyzer is about 18 000). Image, environment, secrets,
user, logging, the volumes the app mounts, roles, cpu, memory, network mode and platform are
the app's own. The revision is deregistered when the task has stopped.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import pulumi
import pulumi.dynamic

from ..errors import PulumiDjangoError
from ..rendering.container_definitions import release_log_prefix
from .aws_session import aws_client, with_session
from .release_commands import log_tail_section

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_logs import CloudWatchLogsClient

POLL_SECONDS = 6.0
# CloudWatch can receive a task's last lines a little after ECS reports the task stopped.
LOG_RETRIES = 5
LOG_RETRY_SECONDS = 3.0
LOG_PAGES_LIMIT = 200
STARTED_BY_PREFIX = "pulumi-django-migrate/"
# A release task serves nothing and waits for no other container.
UNSERVED_KEYS = frozenset({"healthCheck", "dependsOn"})
_STARTED_BY_UNSAFE = re.compile(r"[^A-Za-z0-9_/-]")

ClientFactory = Callable[..., Any]
"""(service, region[, session=aws_session settings]) -> a boto3 client; tests pass
Stubber-wrapped clients. `session` is given when the resource has `aws_session` settings."""


def boto3_clients(service: str, region: str, session: Mapping[str, Any] | None = None) -> Any:
    """A client acting as the stack's `aws:` settings say (`providers.aws_session`)."""
    return aws_client(service, region, session)


class ReleaseTaskError(PulumiDjangoError):
    """A release step failed; the message is everything the operator needs."""


def aws_refusal(error: Any) -> str:
    """A botocore `ClientError` as one line: `AWS refused <operation>: <code>: <message>`."""
    details = error.response.get("Error", {})
    return (
        f"AWS refused {error.operation_name}: {details.get('Code', '?')}: "
        f"{details.get('Message', '')}"
    )


@dataclass(frozen=True)
class ReleaseTask:
    """Where and what to run: the service's network, the new task definition, a command."""

    purpose: str  # "migration check" or "migration job": named in every message
    group: str  # the ECS task group, e.g. pulumi-django-migrate:<service>
    cluster_arn: str
    task_definition_arn: str
    container_name: str
    subnet_ids: Sequence[str]
    security_group_ids: Sequence[str]
    log_group_name: str
    log_stream_prefix: str
    service_name: str
    command: Sequence[str]
    timeout_seconds: float
    # What the task changes in the container's environment and secrets (`None`: removed), e.g.
    # to log in to the database as the master user rather than as the app's role.
    container_overrides: Mapping[str, Any] | None = None
    # The RunTask `startedBy` tag's prefix (see started_by): ListTasks finds the tasks by it.
    started_by_prefix: str = STARTED_BY_PREFIX
    # Refuse to start while a task with the same tag runs (two migrations never overlap); a
    # one-off command (`pulumi-django manage`) has a tag of its own and runs beside others.
    exclusive: bool = True
    # What an overrun's message names as the time limit, and what the stopped task leaves.
    timeout_setting: str = "migrations.timeoutSeconds"
    overrun_note: str = (
        "its database transaction is rolled back, migrations it had already committed stay applied"
    )


@dataclass(frozen=True)
class Attached:
    """A task run attached to a terminal (`pulumi-django manage`): its log lines are handed to
    `on_line` as they arrive, `on_notice` hears what happens to the task, the task is polled
    every `poll_seconds`, and Ctrl-C stops it before the KeyboardInterrupt goes on. Messages
    carry no log tail: the lines were shown already."""

    on_line: Callable[[str], None]
    on_notice: Callable[[str], None]
    poll_seconds: float = 2.0


@dataclass(frozen=True)
class TaskOutcome:
    task_arn: str
    exit_code: int
    stopped_reason: str
    log_stream: str
    log_lines: list[str]
    duration_seconds: float


def started_by(service_name: str, prefix: str = STARTED_BY_PREFIX) -> str:
    """The RunTask `startedBy` tag shared by every release task of a service (ECS allows letters,
    digits, `-`, `_`, `/` and 128 characters; ListTasks filters on it)."""
    return (prefix + _STARTED_BY_UNSAFE.sub("-", service_name))[:128]


def log_stream_name(task: ReleaseTask, task_arn: str) -> str:
    """The awslogs stream of the task's container: `<prefix>/<container>/<task id>`."""
    return f"{task.log_stream_prefix}/{task.container_name}/{task_arn.rsplit('/', 1)[-1]}"


def run_request(task: ReleaseTask, task_definition: str) -> dict[str, Any]:
    return {
        "cluster": task.cluster_arn,
        "taskDefinition": task_definition,
        "launchType": "FARGATE",
        "count": 1,
        "startedBy": started_by(task.service_name, task.started_by_prefix),
        "group": task.group,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": list(task.subnet_ids),
                "securityGroups": list(task.security_group_ids),
                "assignPublicIp": "DISABLED",
            }
        },
    }


def derived_definition(
    definition: Mapping[str, Any], task: ReleaseTask, registrable: Sequence[str]
) -> dict[str, Any]:
    """A RegisterTaskDefinition request copying `definition` (DescribeTaskDefinition's) down to
    the task's container alone, running the task's command without its health check or
    dependencies, with only the volumes it mounts, in a family of its own
    (`<family>-<purpose>`)."""
    container = next(
        (
            item
            for item in definition["containerDefinitions"]
            if item["name"] == task.container_name
        ),
        None,
    )
    if container is None:
        raise ReleaseTaskError(
            f"{task.purpose}: task definition {task.task_definition_arn} has no container "
            f"named {task.container_name!r}"
        )
    mounted = {mount["sourceVolume"] for mount in container.get("mountPoints", [])}
    request = {key: value for key, value in definition.items() if key in registrable}
    request["family"] = f"{definition['family']}-{task.purpose.replace(' ', '-')}"
    request["containerDefinitions"] = [
        {
            **with_overrides(
                {key: value for key, value in container.items() if key not in UNSERVED_KEYS},
                task.container_overrides or {},
            ),
            "command": list(task.command),
        }
    ]
    request["volumes"] = [item for item in definition.get("volumes", []) if item["name"] in mounted]
    return request


def with_overrides(container: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """`container` with `overrides["environment"]` (name -> value) and `overrides["secrets"]`
    (name -> valueFrom) applied: a name given None is removed, a name set in one list leaves
    the other (ECS takes a variable from one of them)."""
    if not overrides:
        return dict(container)
    environment = {item["name"]: item["value"] for item in container.get("environment", [])}
    secrets = {item["name"]: item["valueFrom"] for item in container.get("secrets", [])}
    for mine, other, kind in (
        (environment, secrets, "environment"),
        (secrets, environment, "secrets"),
    ):
        for name, value in (overrides.get(kind) or {}).items():
            if value is None:
                mine.pop(name, None)
            else:
                mine[name] = value
                other.pop(name, None)
    changed = dict(container)
    changed["environment"] = [{"name": k, "value": v} for k, v in sorted(environment.items())]
    changed["secrets"] = [{"name": k, "valueFrom": v} for k, v in sorted(secrets.items())]
    return changed


def refuse_if_running(ecs: ECSClient, task: ReleaseTask) -> None:
    """Raises when a release task of the same service is still running (a `pulumi up` that was
    interrupted, or one from another machine): two migrations must never overlap. A task that
    is not `exclusive` never waits."""
    if not task.exclusive:
        return
    tag = started_by(task.service_name, task.started_by_prefix)
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=task.cluster_arn, startedBy=tag):
        arns.extend(page.get("taskArns", []))
    if not arns:
        return
    described = ecs.describe_tasks(cluster=task.cluster_arn, tasks=arns[:100]).get("tasks", [])
    running = [
        f"{item['taskArn']} ({item.get('group', '?')}, {item.get('lastStatus', '?')}"
        + (f", started {item['startedAt']}" if item.get("startedAt") else "")
        + ")"
        for item in described
        if item.get("lastStatus") != "STOPPED"
    ]
    if not running:
        return
    raise ReleaseTaskError(
        f"{task.purpose} not started: another release task of service {task.service_name} is "
        f"still running: {'; '.join(running)}. Wait for it to finish, or stop it with "
        f"`aws ecs stop-task --cluster {task.cluster_arn} --task <arn>`, then run `pulumi up` "
        "again; the fleet was not changed"
    )


def read_log_lines(
    logs: CloudWatchLogsClient, group: str, stream: str, pages_limit: int = LOG_PAGES_LIMIT
) -> list[str]:
    """Every line of a log stream, oldest first; [] when the stream does not exist (yet)."""
    return LogFollower(logs, group, stream, lambda _line: None, pages_limit).poll()


# ECS statuses in which the task's containers may have logged (before: nothing to read yet).
LOGGING_STATUSES = frozenset({"RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING"})


class LogFollower:
    """Reads a log stream forward from where it last stopped, handing each new line to
    `on_line` as it comes (CloudWatch's `nextForwardToken`; an unchanged token: the end)."""

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        group: str,
        stream: str,
        on_line: Callable[[str], None],
        pages_limit: int = LOG_PAGES_LIMIT,
    ) -> None:
        self.logs = logs
        self.group = group
        self.stream = stream
        self.on_line = on_line
        self.pages_limit = pages_limit
        self.token: str | None = None
        self.lines: list[str] = []

    def poll(self) -> list[str]:
        """The lines that arrived since the last poll (none while the stream does not exist)."""
        new: list[str] = []
        for _page in range(self.pages_limit):
            request: dict[str, Any] = {
                "logGroupName": self.group,
                "logStreamName": self.stream,
                "startFromHead": True,
            }
            if self.token:
                request["nextToken"] = self.token
            try:
                response = self.logs.get_log_events(**request)
            except self.logs.exceptions.ResourceNotFoundException:
                break
            for event in response["events"]:
                line = event.get("message", "").rstrip("\n")
                new.append(line)
                self.lines.append(line)
                self.on_line(line)
            token = response.get("nextForwardToken")
            if not token or token == self.token:
                break
            self.token = token
        return new


class ReleaseTaskRunner:
    """Runs ReleaseTasks; the clock and sleep are injectable so timeouts test instantly."""

    def __init__(
        self,
        clients: ClientFactory,
        region: str,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.ecs: ECSClient = clients("ecs", region)
        self.logs: CloudWatchLogsClient = clients("logs", region)
        self.clock = clock
        self.sleep = sleep
        self._task_definitions: dict[str, Mapping[str, Any]] = {}
        self._attached: Attached | None = None

    def task_definition(self, arn: str) -> Mapping[str, Any]:
        """DescribeTaskDefinition's `taskDefinition` of `arn`, described once per runner."""
        if arn not in self._task_definitions:
            described = self.ecs.describe_task_definition(taskDefinition=arn)
            self._task_definitions[arn] = described["taskDefinition"]
        return self._task_definitions[arn]

    def run(
        self,
        task: ReleaseTask,
        logs_complete: Callable[[list[str]], bool] = bool,
        attached: Attached | None = None,
    ) -> TaskOutcome:
        """Runs `task` to its end. Raises ReleaseTaskError when it cannot start, overruns, or
        stops without its container having run; a non-zero exit is the caller's to judge.
        `logs_complete` says when the log holds what the caller needs (see LOG_RETRIES).
        `attached`: the log streams while the task runs, Ctrl-C stops it (see Attached)."""
        from botocore.exceptions import ClientError

        self._attached = attached
        try:
            return self._run(task, logs_complete)
        except ClientError as error:
            raise ReleaseTaskError(f"{task.purpose}: {aws_refusal(error)}") from None

    def _run(self, task: ReleaseTask, logs_complete: Callable[[list[str]], bool]) -> TaskOutcome:
        refuse_if_running(self.ecs, task)
        with self._derived_definition(task) as task_definition:
            started = self.clock()
            task_arn = self._start(task, run_request(task, task_definition))
            stream = log_stream_name(task, task_arn)
            follower = self._follower(task, task_arn, stream)
            stopped = self._wait(task, task_arn, started, follower)
            duration = round(self.clock() - started, 1)
        lines = (
            self._read_log(task, stream, logs_complete)
            if follower is None
            else self._drain(follower, logs_complete)
        )
        container: Mapping[str, Any] = next(
            (item for item in stopped.get("containers", []) if item["name"] == task.container_name),
            {},
        )
        stopped_reason = str(stopped.get("stoppedReason", ""))
        exit_code = container.get("exitCode")
        if exit_code is None:
            reasons = [reason for reason in (stopped_reason, container.get("reason")) if reason]
            raise ReleaseTaskError(
                f"{task.purpose} task {task_arn} stopped before its container ran: "
                f"{' / '.join(map(str, reasons)) or 'ECS gave no reason'}"
                f"{self._tail(task, stream, lines)}"
            )
        return TaskOutcome(task_arn, int(exit_code), stopped_reason, stream, lines, duration)

    @contextmanager
    def _derived_definition(self, task: ReleaseTask) -> Iterator[str]:
        """The ARN of a one-off revision running the task (see derived_definition), deregistered
        when the block ends."""
        described = self.task_definition(task.task_definition_arn)
        register = self.ecs.meta.service_model.operation_model("RegisterTaskDefinition")
        registrable = list(register.input_shape.members) if register.input_shape else []
        request = derived_definition(described, task, registrable)
        registered = self.ecs.register_task_definition(**request)
        arn = registered["taskDefinition"]["taskDefinitionArn"]
        try:
            yield arn
        finally:
            self.ecs.deregister_task_definition(taskDefinition=arn)

    def _start(self, task: ReleaseTask, request: Mapping[str, Any]) -> str:
        response = self.ecs.run_task(**request)
        tasks = response.get("tasks", [])
        if not tasks:
            failures = "; ".join(
                f"{item.get('reason', '?')}"
                + (f" ({item['detail']})" if item.get("detail") else "")
                + (f" for {item['arn']}" if item.get("arn") else "")
                for item in response.get("failures", [])
            )
            raise ReleaseTaskError(
                f"ECS could not start the {task.purpose}: {failures or 'no task and no reason'}"
            )
        return tasks[0]["taskArn"]

    def _follower(self, task: ReleaseTask, task_arn: str, stream: str) -> LogFollower | None:
        """Attached: a follower of the task's stream, the task announced; else None."""
        if self._attached is None:
            return None
        self._attached.on_notice(
            f"{task.purpose} task {task_arn} started; its log: {log_source(task, stream)}"
        )
        return LogFollower(self.logs, task.log_group_name, stream, self._attached.on_line)

    def _wait(
        self,
        task: ReleaseTask,
        task_arn: str,
        started: float,
        follower: LogFollower | None = None,
    ) -> Mapping[str, Any]:
        poll_seconds = self._attached.poll_seconds if self._attached else POLL_SECONDS
        try:
            while True:
                described = self.ecs.describe_tasks(cluster=task.cluster_arn, tasks=[task_arn])
                current = next(iter(described.get("tasks", [])), None)
                if current is not None and current.get("lastStatus") == "STOPPED":
                    return current
                if follower is not None and (current or {}).get("lastStatus") in LOGGING_STATUSES:
                    follower.poll()
                if self.clock() - started >= task.timeout_seconds:
                    self._stop_overrun(task, task_arn, follower)
                self.sleep(poll_seconds)
        except KeyboardInterrupt:
            if self._attached is not None:
                self._attached.on_notice(f"interrupted: stopping {task.purpose} task {task_arn}")
                self.ecs.stop_task(
                    cluster=task.cluster_arn,
                    task=task_arn,
                    reason=f"pulumi-django: {task.purpose} interrupted (Ctrl-C)",
                )
            raise

    def _stop_overrun(
        self, task: ReleaseTask, task_arn: str, follower: LogFollower | None = None
    ) -> None:
        """Stops a task past its time limit (a migration waiting on a lock holds it meanwhile,
        blocking the site), then raises with what it logged (attached: shown already)."""
        limit = int(task.timeout_seconds)
        self.ecs.stop_task(
            cluster=task.cluster_arn,
            task=task_arn,
            reason=f"pulumi-django: {task.purpose} exceeded {limit} s",
        )
        stream = log_stream_name(task, task_arn)
        if follower is not None:
            follower.poll()
            lines = follower.lines
        else:
            lines = read_log_lines(self.logs, task.log_group_name, stream)
        raise ReleaseTaskError(
            f"{task.purpose} task {task_arn} did not finish within {limit} s "
            f"({task.timeout_setting}) and was stopped; {task.overrun_note}"
            f"{self._tail(task, stream, lines)}"
        )

    def _tail(self, task: ReleaseTask, stream: str, lines: Sequence[str]) -> str:
        """The log tail an error message ends with; none when attached (shown as it came)."""
        return "" if self._attached is not None else _tail_section(task, stream, lines)

    def _drain(
        self, follower: LogFollower, logs_complete: Callable[[list[str]], bool]
    ) -> list[str]:
        """The rest of a followed log once the task stopped (see LOG_RETRIES)."""
        follower.poll()
        for _retry in range(LOG_RETRIES):
            if logs_complete(follower.lines):
                break
            self.sleep(LOG_RETRY_SECONDS)
            follower.poll()
        return follower.lines

    def _read_log(
        self, task: ReleaseTask, stream: str, logs_complete: Callable[[list[str]], bool]
    ) -> list[str]:
        lines = read_log_lines(self.logs, task.log_group_name, stream)
        for _retry in range(LOG_RETRIES):
            if logs_complete(lines):
                break
            self.sleep(LOG_RETRY_SECONDS)
            lines = read_log_lines(self.logs, task.log_group_name, stream)
        return lines


def log_source(task: ReleaseTask, stream: str) -> str:
    """Where a task's log lines come from, for an operator to find them."""
    return f"CloudWatch log group {task.log_group_name}, stream {stream}"


def _tail_section(task: ReleaseTask, stream: str, lines: Sequence[str]) -> str:
    return log_tail_section(log_source(task, stream), lines)


def describe_failure(task: ReleaseTask, outcome: TaskOutcome, what: str) -> str:
    """The error message of a task that ran but failed: what failed, why ECS stopped it, and the
    end of its log."""
    return (
        f"{task.purpose} failed: {what}, in task {outcome.task_arn} "
        f"({outcome.stopped_reason or 'no stop reason'})"
        f"{_tail_section(task, outcome.log_stream, outcome.log_lines)}"
    )


@dataclass(frozen=True)
class ReleaseTaskInputs:
    """Where a release task runs, as Pulumi inputs: the service's cluster, network, new task
    definition and log group, plus the release it belongs to (the image digest)."""

    release_id: pulumi.Input[str]
    cluster_arn: pulumi.Input[str]
    task_definition_arn: pulumi.Input[str]
    container_name: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    log_group_name: pulumi.Input[str]
    service_name: pulumi.Input[str]
    region: pulumi.Input[str]
    # The container's awslogs stream prefix; None: `release_log_prefix(release_id)`, as the
    # release's task definition sets it (`r-<12 hex of the digest>`).
    log_stream_prefix: pulumi.Input[str | None] = None
    # The stack's AWS identity (`providers.aws_session.AwsSession.input()`); None: boto3's own.
    aws_session: pulumi.Input[Mapping[str, Any] | None] = None
    # The environment and secrets the release tasks change in the container (ReleaseTask).
    container_overrides: pulumi.Input[Mapping[str, Any] | None] = None

    def props(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def release_task(
    props: Mapping[str, Any],
    *,
    purpose: str,
    group_prefix: str,
    command: Sequence[str],
    timeout_seconds: float,
) -> ReleaseTask:
    """The ReleaseTask described by a dynamic resource's ReleaseTaskInputs props."""
    return ReleaseTask(
        purpose=purpose,
        group=f"{group_prefix}:{props['service_name']}",
        cluster_arn=props["cluster_arn"],
        task_definition_arn=props["task_definition_arn"],
        container_name=props["container_name"],
        subnet_ids=list(props["subnet_ids"]),
        security_group_ids=list(props["security_group_ids"]),
        log_group_name=props["log_group_name"],
        log_stream_prefix=props.get("log_stream_prefix") or release_log_prefix(props["release_id"]),
        service_name=props["service_name"],
        command=list(command),
        timeout_seconds=timeout_seconds,
        container_overrides=props.get("container_overrides"),
    )


def changed(olds: Mapping[str, Any], news: Mapping[str, Any], keys: Sequence[str]) -> bool:
    """True when any of `keys` differs from the last run (unknown during a preview counts)."""
    return any(olds.get(key) != news.get(key) for key in keys)


class ReleaseTaskProvider(pulumi.dynamic.ResourceProvider):
    """Runs a release task once per release: when one of `rerun_keys` changed, never for another
    input. Subclasses name the run function (a staticmethod), the keys and the id's prefix; the
    clients, clock and sleep are injectable so tests drive it against botocore Stubbers."""

    rerun_keys: ClassVar[Sequence[str]]
    group_prefix: ClassVar[str]

    def __init__(
        self,
        clients: ClientFactory = boto3_clients,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__()
        self.clients = clients
        self.clock = clock
        self.sleep = sleep

    @staticmethod
    def run_task(props: Mapping[str, Any], runner: ReleaseTaskRunner) -> dict[str, Any]:
        """The task's outputs, or a ReleaseTaskError."""
        raise NotImplementedError

    def _run(self, props: Mapping[str, Any]) -> dict[str, Any]:
        clients = with_session(self.clients, props.get("aws_session"))
        runner = ReleaseTaskRunner(clients, props["region"], self.clock, self.sleep)
        return self.run_task(props, runner)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        return pulumi.dynamic.DiffResult(changes=changed(olds, news, self.rerun_keys))

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outputs = self._run(props)
        # The outputs keep the inputs, so the next diff compares against this run.
        return pulumi.dynamic.CreateResult(
            f"{self.group_prefix}:{props['service_name']}", {**props, **outputs}
        )

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        return pulumi.dynamic.UpdateResult({**news, **self._run(news)})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to undo: a check only read the database, and applied migrations stay."""
