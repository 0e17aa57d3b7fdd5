"""`pulumi-django logs` against the offline plan's stack state: on AWS, CloudWatch Logs behind a
botocore Stubber (which checks every request against the service model); locally, a stub
`docker` on PATH serving timestamped lines for the plan's containers. Also the stream prefix
every container of a release logs under, as the plan's task definition and release tasks show
it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber
from path_stubs import python_executable
from release_histories import Deployments
from stub_clients import stub_client

from pulumi_django.cli import main
from pulumi_django.cli.commands import logs as logs_command
from pulumi_django.cli.plan import Plan
from pulumi_django.cli.stack_state import DeployedStack
from pulumi_django.rendering.container_definitions import release_log_prefix

NOW = datetime(2025, 5, 1, 12, 0, tzinfo=UTC).timestamp()
NOW_MS = int(NOW * 1000)
TASK_A = "0123456789abcdef0123456789abcdef"
TASK_B = "fedcba9876543210fedcba9876543210"
OLDER_DIGEST = "sha256:" + "7e57" * 16
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
JOB = "pulumi-python:dynamic/migrations:MigrationJob"
CHECK = "pulumi-python:dynamic/migrations:MigrationCheck"


# --- the prefix every container of a release logs under ---------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod", "notebook/dev"])
def test_every_container_and_release_task_logs_under_the_releases_prefix(
    stack_plan: Callable[..., Plan], project_root: Path, stack: str
) -> None:
    """bigfoot's stacks (prod with two worker services and the scheduler) and the second
    example app's."""
    if stack.startswith("notebook/"):
        recording = stack_plan("dev", project=project_root / "examples" / "notebook").recording
    else:
        recording = stack_plan(stack).recording
    prefix = release_log_prefix(recording.outputs["releaseId"])
    assert prefix.startswith("r-") and len(prefix) == 14
    for definition in recording.find(TASK_DEFINITION):
        for container in json.loads(definition.inputs["containerDefinitions"]):
            options = container["logConfiguration"]["options"]
            assert options["awslogs-stream-prefix"] == prefix, container["name"]
            assert options["awslogs-group"] == recording.outputs["logGroupName"]
    # The check and the job read their log back where the task definition writes it.
    for task in [*recording.find(JOB), *recording.find(CHECK)]:
        assert task.inputs["log_stream_prefix"] == prefix


# --- AWS: CloudWatch Logs ----------------------------------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The command's clock at NOW; its sleeps recorded here."""
    slept: list[float] = []
    monkeypatch.setattr(logs_command, "now", lambda: NOW)
    monkeypatch.setattr(logs_command, "sleep", slept.append)
    return slept


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch, clock: list[float]) -> Iterator[Stubber]:
    """The stack's `logs` client, behind a Stubber; every queued response must be asked for."""
    client = stub_client("logs")
    asked: list[str] = []

    def aws_client(_stack: DeployedStack, service: str) -> Any:
        asked.append(service)
        return client

    monkeypatch.setattr(DeployedStack, "aws_client", aws_client)
    with Stubber(client) as stub:
        yield stub
        stub.assert_no_pending_responses()
    assert set(asked) <= {"logs"}


def write_outputs(tmp_path: Path, outputs: dict[str, Any]) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    return path


@pytest.fixture
def dev_outputs(stack_plan: Callable[[str], Plan]) -> dict[str, Any]:
    return dict(stack_plan("dev").recording.outputs)


def logs(project_root: Path, outputs: Path, *argv: str, stack: str = "dev") -> list[str]:
    return [
        "logs", "--stack", stack, "--cwd", str(project_root), "--outputs", str(outputs), *argv
    ]  # fmt: skip


@dataclass
class LogsCommand:
    """`pulumi-django logs` on a stack whose outputs (`--outputs`) are `outputs`, and what it
    printed."""

    stack: str
    outputs: dict[str, Any]
    project_root: Path
    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    @property
    def group(self) -> str:
        return str(self.outputs["logGroupName"])

    @property
    def prefix(self) -> str:
        """The stream prefix of the release running now."""
        return release_log_prefix(self.outputs["releaseId"])

    def run(self, *argv: str, outputs: dict[str, Any] | None = None) -> int:
        """The exit code of `logs ARGV`, on other `outputs` when given."""
        path = write_outputs(self.tmp_path, self.outputs if outputs is None else outputs)
        return main(logs(self.project_root, path, *argv, stack=self.stack))

    def out(self) -> list[str]:
        return self.capsys.readouterr().out.splitlines()

    def error(self) -> str:
        """The one line the command printed on stderr."""
        [line] = self.capsys.readouterr().err.splitlines()
        return line


@pytest.fixture
def aws(
    cloudwatch: Stubber,
    project_root: Path,
    tmp_path: Path,
    dev_outputs: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> LogsCommand:
    """The command on the dev stack, its CloudWatch Logs client the `cloudwatch` Stubber."""
    return LogsCommand("dev", dev_outputs, project_root, tmp_path, capsys)


def event(stream: str, seconds: float, message: str, event_id: str) -> dict[str, Any]:
    stamp = NOW_MS - int(seconds * 1000)
    return {
        "logStreamName": stream,
        "timestamp": stamp,
        "message": message,
        "ingestionTime": stamp + 50,
        "eventId": event_id,
    }


def stamp(seconds_ago: float) -> str:
    return logs_command.format_time(NOW_MS - int(seconds_ago * 1000))


def test_aws_interleaves_the_streams_of_every_container_by_time(
    cloudwatch: Stubber, aws: LogsCommand
) -> None:
    prefix = aws.prefix
    request = {"logGroupName": aws.group, "startTime": NOW_MS - 600_000}
    # Two pages, neither in time order across the streams of two tasks and a migration job.
    cloudwatch.add_response(
        "filter_log_events",
        {
            "events": [
                event(f"{prefix}/app/{TASK_A}", 30, "GET /orders 200", "e3"),
                event(f"{prefix}/proxy/{TASK_B}", 50, '"GET /orders HTTP/1.1" 200', "e2"),
            ],
            "nextToken": "page-2",
        },
        request,
    )
    cloudwatch.add_response(
        "filter_log_events",
        {
            "events": [
                event(f"{prefix}/app/{TASK_B}", 90, "Applying shop.0002_price... OK", "e1"),
                event(f"{prefix}/proxy/{TASK_A}", 10, '"GET /healthz HTTP/1.1" 200', "e4"),
            ]
        },
        {**request, "nextToken": "page-2"},
    )

    assert aws.run() == 0

    release = prefix[:9]
    assert aws.out() == [
        f"{stamp(90)}  app/fedcba98 {release}  Applying shop.0002_price... OK",
        f'{stamp(50)}  proxy/fedcba98 {release}  "GET /orders HTTP/1.1" 200',
        f"{stamp(30)}  app/01234567 {release}  GET /orders 200",
        f'{stamp(10)}  proxy/01234567 {release}  "GET /healthz HTTP/1.1" 200',
    ]


def test_a_stream_named_before_the_release_prefix_shows_whole(
    cloudwatch: Stubber, aws: LogsCommand
) -> None:
    """A stream written before the `r-<12 hex>` naming (`app/app/<task id>`) is not cut into
    container, task and release: its whole name shows."""
    legacy = f"app/app/{TASK_A}"
    cloudwatch.add_response(
        "filter_log_events",
        {
            "events": [
                event(legacy, 8, "old", "e1"),
                event(f"{aws.prefix}/app/{TASK_B}", 3, "new", "e2"),
            ]
        },
        {"logGroupName": aws.group, "startTime": NOW_MS - 600_000},
    )

    assert aws.run() == 0
    assert aws.out() == [
        f"{stamp(8)}  {legacy}  old",
        f"{stamp(3)}  app/fedcba98 {aws.prefix[:9]}  new",
    ]


def with_history(outputs: dict[str, Any], *older: str) -> dict[str, Any]:
    """The outputs with the release history `pulumi up` writes (`providers.release_history`):
    `older` releases (image references) rolled out first, then the current one."""
    deployments = Deployments()
    for release in [*older, outputs["releaseId"]]:
        history = deployments.up(release)
    return {**outputs, "releases": history}


def older_release(outputs: dict[str, Any], digest: str = OLDER_DIGEST) -> str:
    return outputs["releaseId"].split("@")[0] + "@" + digest


@pytest.mark.parametrize(
    ("release", "digest"),
    [
        ("current", None),
        ("1", None),  # the newest in `pulumi-django releases`
        ("2", OLDER_DIGEST),
        ("previous", OLDER_DIGEST),
        (OLDER_DIGEST[7:14], OLDER_DIGEST),  # a 7-hex prefix
        ("r-" + OLDER_DIGEST[7:19], OLDER_DIGEST),  # as a log line shows it
        (OLDER_DIGEST, OLDER_DIGEST),
        ("older-image", OLDER_DIGEST),
    ],
)
def test_aws_release_reads_only_that_releases_streams(
    cloudwatch: Stubber, aws: LogsCommand, release: str, digest: str | None
) -> None:
    outputs = with_history(aws.outputs, older_release(aws.outputs))
    if release == "older-image":
        release = older_release(aws.outputs)
    image = outputs["releaseId"] if digest is None else f"shop@{digest}"
    prefix = release_log_prefix(image)
    cloudwatch.add_response(
        "describe_log_streams",
        {"logStreams": [{"logStreamName": f"{prefix}/app/{TASK_A}"}]},
        {"logGroupName": aws.group, "logStreamNamePrefix": prefix, "limit": 1},
    )
    cloudwatch.add_response(
        "filter_log_events",
        {"events": [event(f"{prefix}/app/{TASK_A}", 5, "ready", "e1")]},
        {"logGroupName": aws.group, "startTime": NOW_MS - 7_200_000, "logStreamNamePrefix": prefix},
    )

    assert aws.run("--release", release, "--since", "2h", outputs=outputs) == 0
    assert aws.out() == [f"{stamp(5)}  app/01234567 {prefix[:9]}  ready"]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("GET /admin/ 500", '"GET /admin/ 500"'),
        ('said "no"', '"said \\"no\\""'),
        ("?ERROR ?Traceback", "?ERROR ?Traceback"),
        ('{ $.level = "error" }', '{ $.level = "error" }'),
    ],
)
def test_aws_filter_is_a_cloudwatch_pattern_quoting_plain_text(
    cloudwatch: Stubber, aws: LogsCommand, text: str, pattern: str
) -> None:
    since = "2025-05-01T11:30:00+00:00"
    cloudwatch.add_response(
        "filter_log_events",
        {"events": []},
        {"logGroupName": aws.group, "startTime": NOW_MS - 1_800_000, "filterPattern": pattern},
    )
    assert aws.run("--filter", text, "--since", since) == 0


def test_aws_follow_rereads_a_look_back_printing_each_event_once(
    cloudwatch: Stubber, aws: LogsCommand, monkeypatch: pytest.MonkeyPatch
) -> None:
    prefix, group = aws.prefix, aws.group
    app, worker = f"{prefix}/app/{TASK_A}", f"{prefix}/celery/{TASK_B}"
    first, second, third = (
        event(app, 120, "booted", "e1"),
        event(worker, 4, "task received", "e2"),
        event(app, 1, "GET / 200", "e3"),
    )
    late = event(worker, 3, "task done", "e4")  # ingested after e3, a second older
    start = NOW_MS - 300_000
    # The clock stands at NOW: each poll re-reads the look-back before the poll before it.
    since = NOW_MS - logs_command.FOLLOW_LOOKBACK_MS
    cloudwatch.add_response(
        "filter_log_events",
        {"events": [first, second]},
        {"logGroupName": group, "startTime": start},
    )
    cloudwatch.add_response(
        "filter_log_events",
        {"events": [second, third]},
        {"logGroupName": group, "startTime": since},
    )
    cloudwatch.add_response(
        "filter_log_events",
        {"events": [second, late, third]},
        {"logGroupName": group, "startTime": since},
    )
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # Ctrl-C during the third wait
        slept.append(seconds)
        if len(slept) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(logs_command, "sleep", sleep)

    assert aws.run("-f", "--since", "5m") == 130  # the command line's Ctrl-C
    assert slept == [logs_command.FOLLOW_POLL_SECONDS] * 3
    release = prefix[:9]
    assert aws.out() == [
        f"{stamp(120)}  app/01234567 {release}  booted",
        f"{stamp(4)}  celery/fedcba98 {release}  task received",
        f"{stamp(1)}  app/01234567 {release}  GET / 200",
        f"{stamp(3)}  celery/fedcba98 {release}  task done",
    ]


def test_aws_follow_on_a_quiet_group_moves_its_floor_with_the_clock(
    cloudwatch: Stubber, aws: LogsCommand, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No event in the --since hour: the polls after the first read only from the look-back
    before the poll before, not the whole hour again."""
    group, lookback = aws.group, logs_command.FOLLOW_LOOKBACK_MS
    clock = [NOW]
    monkeypatch.setattr(logs_command, "now", lambda: clock[0])
    polls = 3

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        if clock[0] > NOW + polls * seconds:
            raise KeyboardInterrupt

    monkeypatch.setattr(logs_command, "sleep", sleep)
    cloudwatch.add_response(
        "filter_log_events",
        {"events": []},
        {"logGroupName": group, "startTime": NOW_MS - 3_600_000},
    )
    for poll in range(polls):  # each from the poll before it, less the look-back
        before = NOW_MS + int(poll * logs_command.FOLLOW_POLL_SECONDS * 1000)
        cloudwatch.add_response(
            "filter_log_events",
            {"events": []},
            {"logGroupName": group, "startTime": before - lookback},
        )

    assert aws.run("--follow", "--since", "1h") == 130
    assert aws.out() == []


def test_aws_no_lines_is_one_line_on_stderr_and_success(
    cloudwatch: Stubber, aws: LogsCommand
) -> None:
    cloudwatch.add_response(
        "filter_log_events",
        {"events": []},
        {"logGroupName": aws.group, "startTime": NOW_MS - 600_000, "filterPattern": '"boom"'},
    )

    assert aws.run("--filter", "boom") == 0

    captured = aws.capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"pulumi-django logs: no log lines since 2025-05-01T11:50:00.000Z in log group "
        f"{aws.group} (with --filter boom)"
    ]


def throttled(cloudwatch: Stubber, times: int, request: dict[str, Any]) -> None:
    for _ in range(times):
        cloudwatch.add_client_error(
            "filter_log_events", "ThrottlingException", "Rate exceeded", 400, None, request
        )


def test_aws_throttling_backs_off_and_goes_on(
    cloudwatch: Stubber, clock: list[float], aws: LogsCommand
) -> None:
    request = {"logGroupName": aws.group, "startTime": NOW_MS - 600_000}
    throttled(cloudwatch, 2, request)
    cloudwatch.add_response(
        "filter_log_events",
        {"events": [event(f"{aws.prefix}/app/{TASK_A}", 1, "ok", "e1")]},
        request,
    )

    assert aws.run() == 0

    assert clock == [1.0, 2.0]
    assert aws.out() == [f"{stamp(1)}  app/01234567 {aws.prefix[:9]}  ok"]


def test_aws_throttling_that_never_ends_fails_in_one_line(
    cloudwatch: Stubber, aws: LogsCommand
) -> None:
    request = {"logGroupName": aws.group, "startTime": NOW_MS - 600_000}
    throttled(cloudwatch, logs_command.THROTTLE_ATTEMPTS, request)

    assert aws.run() == 2
    assert aws.error().endswith("ThrottlingException: Rate exceeded")


def test_aws_limit_keeps_the_last_lines(cloudwatch: Stubber, aws: LogsCommand) -> None:
    stream = f"{aws.prefix}/app/{TASK_A}"
    cloudwatch.add_response(
        "filter_log_events",
        {"events": [event(stream, 30 - n, f"line {n}", f"e{n}") for n in range(5)]},
        {"logGroupName": aws.group, "startTime": NOW_MS - 600_000},
    )

    assert aws.run("--limit", "2") == 0
    assert [line.rsplit("  ", 1)[1] for line in aws.out()] == ["line 3", "line 4"]


@pytest.mark.parametrize(
    ("argv", "outputs_of", "expected"),
    [
        (["--since", "ten minutes"], "dev", "--since 'ten minutes': give a duration (30s, 10m"),
        (["--since", "10x"], "dev", "or an ISO time (2025-05-01T12:00:00Z"),
        (["--since", "999999999d"], "dev", "--since '999999999d' is before 1970: give a later"),
        (["--since", "1969-12-31T23:59:59Z"], "dev", "is before 1970: give a later time"),
        ([], "never", "stack dev has no outputs: it was never deployed"),
        (["--release", "3"], "dev", "this stack has no `releases` output"),
        (["--release", "previous"], "dev", "this stack has no `releases` output"),
        (["--release", "5"], "history", "no release 5 on stack dev: it keeps 2"),
        (["--release", "not a release"], "dev", "--release 'not a release': give `current`"),
    ],
)
def test_aws_usage_errors_are_one_line(
    aws: LogsCommand, argv: list[str], outputs_of: str, expected: str
) -> None:
    outputs = {
        "dev": aws.outputs,
        "never": {},
        "history": with_history(aws.outputs, older_release(aws.outputs)),
    }[outputs_of]
    assert aws.run(*argv, outputs=outputs) == 2
    assert expected in aws.error()


def test_a_limit_below_one_is_refused_by_the_parser(aws: LogsCommand) -> None:
    with pytest.raises(SystemExit) as exit_:
        aws.run("--limit", "0", outputs={})
    assert exit_.value.code == 2
    assert "argument -n/--limit: '0' is not a whole number of lines, 1 or more" in (
        aws.capsys.readouterr().err
    )


def test_aws_a_release_without_streams_is_no_such_release(
    cloudwatch: Stubber, aws: LogsCommand
) -> None:
    cloudwatch.add_response(
        "describe_log_streams",
        {"logStreams": []},
        {"logGroupName": aws.group, "logStreamNamePrefix": "r-abcdef1", "limit": 1},
    )

    assert aws.run("--release", "abcdef1") == 2
    assert (
        f"no such release abcdef1: log group {aws.group} has no stream under r-abcdef1/"
        in aws.error()
    )


def test_aws_an_ambiguous_prefix_names_the_releases(aws: LogsCommand) -> None:
    twin = "sha256:" + "7e57" * 15 + "ffff"
    outputs = with_history(
        aws.outputs, older_release(aws.outputs), older_release(aws.outputs, twin)
    )

    assert aws.run("--release", "7e577e5", outputs=outputs) == 2
    assert "release '7e577e5' is ambiguous on stack dev: it starts 2 (7e577e577e57)" in (
        aws.error()
    )


def test_aws_a_missing_log_group_is_one_line(cloudwatch: Stubber, aws: LogsCommand) -> None:
    cloudwatch.add_client_error(
        "filter_log_events",
        "ResourceNotFoundException",
        "The specified log group does not exist.",
        400,
        None,
        {"logGroupName": aws.group, "startTime": NOW_MS - 600_000},
    )

    assert aws.run() == 2
    assert f"log group {aws.group} does not exist" in aws.error()


# --- local: docker logs ------------------------------------------------------------------------

DOCKER = """\
import json, sys
from datetime import datetime

spec = json.load(open(SPEC))
with open(spec["calls"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
containers = spec["containers"]
command, args = sys.argv[1], sys.argv[2:]
if spec.get("daemon_down"):  # as the real CLI: inspect prints its format once, blank
    if command == "inspect":
        print()
    print(
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker "
        "daemon running?",
        file=sys.stderr,
    )
    sys.exit(1)


def option(name):
    return args[args.index(name) + 1] if name in args else None


if command == "inspect":
    names = args[args.index("--format") + 2:]
    missing = [n for n in names if n not in containers]
    for name in names:
        if name in containers:
            item = containers[name]
            print(f"/{name} {item['image']} {item['ref']}")
    for name in missing:
        print(f"Error: No such container: {name}", file=sys.stderr)
    sys.exit(1 if missing else 0)
if command == "ps":
    wanted = option("--filter").removeprefix("name=")
    print("\\n".join(n for n in containers if wanted in n))
    sys.exit(0)
if command == "logs":
    name = args[-1]
    def moment(text):
        return datetime.fromisoformat(text[:26] + "+00:00")

    since = moment(option("--since"))
    until = moment(option("--until")) if "--until" in args else None
    tail = option("--tail")
    for stream, out in (("stdout", sys.stdout), ("stderr", sys.stderr)):
        lines = [
            line for line in containers[name].get(stream, [])
            if moment(line) >= since and (until is None or moment(line) < until)
        ]
        for line in lines[-int(tail):] if tail else lines:
            print(line, file=out)
    sys.exit(0)
sys.exit(f"unexpected docker {command}")
"""


def docker_time(seconds_ago: float) -> str:
    """A `docker logs --timestamps` time: RFC 3339, nanoseconds, UTC."""
    moment = datetime.fromtimestamp(NOW - seconds_ago, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


@pytest.fixture
def local_outputs(stack_plan: Callable[[str], Plan]) -> dict[str, Any]:
    outputs = dict(stack_plan("local").recording.outputs)
    assert outputs["workerContainers"]  # the local stack runs a worker and the scheduler
    return outputs


@pytest.fixture
def docker(
    tmp_path: Path,
    bin_dir: Path,
    clock: list[float],
    stack_plan: Callable[[str], Plan],
    local_outputs: dict[str, Any],
) -> Callable[..., list[list[str]]]:
    """A `docker` on PATH serving the plan's containers (images from the plan's resources) and
    the lines a test gives each; returns a function that writes the spec and later reads the
    calls made."""
    spec, calls = tmp_path / "docker.json", tmp_path / "calls.jsonl"
    python_executable(bin_dir, "docker", f"SPEC = {str(spec)!r}\n{DOCKER}")
    recording = stack_plan("local").recording
    app_image = local_outputs["releaseId"]
    proxy_image = recording.one("docker:index/container:Container", "bigfoot-local-proxy").inputs[
        "image"
    ]
    assert proxy_image != app_image
    images = {
        **dict.fromkeys(local_outputs["appContainers"], app_image),
        local_outputs["proxyContainer"]: proxy_image,
        **dict.fromkeys(worker_containers(local_outputs), app_image),
        f"{local_outputs['networkName']}-migrate-job-4f3e2d1": app_image,
    }

    def serve(
        lines: dict[str, dict[str, list[str]]],
        *,
        absent: tuple[str, ...] = (),
        daemon_down: bool = False,
    ) -> None:
        containers = {
            name: {"image": image, "ref": image, **lines.get(name, {})}
            for name, image in images.items()
            if name not in absent
        }
        spec.write_text(
            json.dumps({"calls": str(calls), "containers": containers, "daemon_down": daemon_down})
        )

    def made() -> list[list[str]]:
        return [json.loads(line) for line in calls.read_text().splitlines()]

    serve({})
    serve.calls = made  # type: ignore[attr-defined]
    return serve  # type: ignore[return-value]


def worker_containers(outputs: dict[str, Any]) -> list[str]:
    return [name for names in outputs["workerContainers"].values() for name in names]


@pytest.fixture
def local(
    project_root: Path,
    tmp_path: Path,
    local_outputs: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> LogsCommand:
    """The command on the local stack (its `docker` the `docker` fixture's, where asked)."""
    return LogsCommand("local", local_outputs, project_root, tmp_path, capsys)


def test_local_merges_every_containers_lines_by_time(docker: Any, local: LogsCommand) -> None:
    app_1, app_2 = local.outputs["appContainers"]
    proxy = local.outputs["proxyContainer"]
    worker, scheduler = worker_containers(local.outputs)
    job = f"{local.outputs['networkName']}-migrate-job-4f3e2d1"
    docker(
        {
            app_1: {"stdout": [f"{docker_time(40)} GET / 200", f"{docker_time(5)} GET /a 200"]},
            app_2: {"stderr": [f"{docker_time(20)} WARNING slow query"]},
            proxy: {"stdout": [f"{docker_time(41)} 172.18.0.1 GET /"]},
            worker: {"stdout": [f"{docker_time(30)} task received"]},
            scheduler: {"stderr": [f"{docker_time(35)} enqueued cleanup"]},
            job: {"stdout": [f"{docker_time(900)} too old", f"{docker_time(300)} Applying x OK"]},
        }
    )

    assert local.run() == 0

    assert local.out() == [
        f"{stamp(300)}  {job}  Applying x OK",
        f"{stamp(41)}  {proxy}  172.18.0.1 GET /",
        f"{stamp(40)}  {app_1}  GET / 200",
        f"{stamp(35)}  {scheduler}  enqueued cleanup",
        f"{stamp(30)}  {worker}  task received",
        f"{stamp(20)}  {app_2}  WARNING slow query",
        f"{stamp(5)}  {app_1}  GET /a 200",
    ]
    logs_calls = [call for call in docker.calls() if call[0] == "logs"]
    assert {call[-1] for call in logs_calls} == {app_1, app_2, proxy, worker, scheduler, job}
    assert all(call[1:4] == ["--timestamps", "--since", "2025-05-01T11:50:00.000000Z"]
               for call in logs_calls)  # fmt: skip


def test_local_filter_and_release(docker: Any, local: LogsCommand) -> None:
    app_1, _ = local.outputs["appContainers"]
    proxy = local.outputs["proxyContainer"]
    docker(
        {
            app_1: {"stdout": [f"{docker_time(9)} GET /admin/ 500", f"{docker_time(8)} GET / 200"]},
            proxy: {"stdout": [f"{docker_time(7)} GET /admin/ 500 upstream"]},
        }
    )

    assert local.run("--filter", "/admin/ 500") == 0
    assert [line.split("  ")[1] for line in local.out()] == [app_1, proxy]

    # The current release's containers: the app and the migration job, not the proxy.
    current = local.outputs["releaseId"].removeprefix("sha256:")[:12]
    assert local.run("--release", current) == 0
    assert [line.split("  ")[1] for line in local.out()] == [app_1, app_1]


def test_local_follow_prints_the_merged_backlog_then_the_followed_lines(
    docker: Any, local: LogsCommand
) -> None:
    app_1, app_2 = local.outputs["appContainers"]
    docker(
        {
            app_1: {
                "stdout": [f"{docker_time(3)} one", f"{docker_time(1)} three"],
                "stderr": [f"{docker_time(-1)} after"],  # logged once following
            },
            app_2: {"stdout": [f"{docker_time(2)} two"]},
        }
    )

    # Every followed container stops after its lines: the command ends by itself.
    assert local.run("--follow", "--since", "1m") == 0

    assert local.out() == [
        f"{stamp(3)}  {app_1}  one",
        f"{stamp(2)}  {app_2}  two",
        f"{stamp(1)}  {app_1}  three",
        f"{stamp(-1)}  {app_1}  after",
    ]
    calls = [call for call in docker.calls() if call[0] == "logs"]
    now = "2025-05-01T12:00:00.000000Z"
    backlog = [call for call in calls if "--follow" not in call]
    followed = [call for call in calls if "--follow" in call]
    assert {call[-1] for call in backlog} == {call[-1] for call in followed} >= {app_1, app_2}
    assert all(call[call.index("--until") + 1] == now for call in backlog)
    assert all(call[call.index("--since") + 1] == now for call in followed)


def test_local_missing_containers_are_named_and_the_rest_shown(
    docker: Any, local: LogsCommand
) -> None:
    app_1, app_2 = local.outputs["appContainers"]
    docker({app_1: {"stdout": [f"{docker_time(3)} up"]}}, absent=(app_2,))

    assert local.run() == 0

    captured = local.capsys.readouterr()
    assert captured.out.splitlines() == [f"{stamp(3)}  {app_1}  up"]
    assert f"container {app_2} does not exist" in captured.err


def test_local_with_the_docker_daemon_down_is_one_line_not_no_such_container(
    docker: Any, local: LogsCommand
) -> None:
    docker({}, daemon_down=True)

    assert local.run() == 2
    assert local.error() == (
        "pulumi-django logs: error: Docker is not answering: Cannot connect to the Docker daemon "
        "at unix:///var/run/docker.sock. Is the docker daemon running?; start Docker"
    )

    # With the daemon up and none of them there: no such container, each.
    outputs = local.outputs
    every = (*outputs["appContainers"], outputs["proxyContainer"], *worker_containers(outputs))
    docker({}, absent=(*every, f"{outputs['networkName']}-migrate-job-4f3e2d1"))
    assert local.run() == 2
    assert "none of stack local's containers exist" in local.error()


def test_local_no_lines_is_one_line_on_stderr_and_success(docker: Any, local: LogsCommand) -> None:
    app_1, app_2 = local.outputs["appContainers"]
    docker({app_1: {"stdout": [f"{docker_time(900)} before --since"]}})

    assert local.run() == 0

    captured = local.capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith(
        f"pulumi-django logs: no log lines since 2025-05-01T11:50:00.000Z in containers {app_1}, "
        f"{app_2}, {local.outputs['proxyContainer']}, "
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--release", "abcdef0123"], "no such release abcdef0123: no container of stack local"),
        (["--since", "yesterday"], "--since 'yesterday': give a duration"),
    ],
)
def test_local_errors_are_one_line(
    docker: Any, local: LogsCommand, argv: list[str], expected: str
) -> None:
    assert local.run(*argv) == 2
    assert expected in local.error()


def test_local_without_docker_is_one_line(
    local: LogsCommand, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert local.run() == 2
    assert "the docker CLI is not on PATH" in local.error()
