"""`pulumi-django logs`: a deployed stack's app, proxy, migration and worker logs, interleaved
by time, each line naming its container (and, on AWS, its task and release).

- AWS: CloudWatch Logs `FilterLogEvents` on the task's log group (the `logGroupName` output),
  where every container of a release writes under the release's stream prefix
  (`r-<12 hex of the image digest>/<container>/<task id>`: web app and proxy, workers, the
  migration check and job). `--release` narrows to one prefix, `--filter` is a CloudWatch
  filter pattern (plain text is quoted into a phrase), `--follow` polls every 2 s.
- Local: `docker logs --timestamps` of the stack's containers (`appContainers`,
  `proxyContainer`, `workerContainers`, and the release's migration check and job containers,
  which the local target keeps after they exit), merged by timestamp.
"""

from __future__ import annotations

import argparse
import queue
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn

from pulumi_django.cli.stack_state import (
    add_stack_arguments,
    aws_call_errors,
    load_deployed_stack,
)
from pulumi_django.errors import PulumiDjangoError, UsageError

if TYPE_CHECKING:
    from pulumi_django.cli.stack_state import DeployedStack

DEFAULT_SINCE = "10m"
FOLLOW_POLL_SECONDS = 2.0
# A follow re-reads this far behind the newest event it printed, so that a line CloudWatch
# ingests late (another task's, a buffered one) still shows; event ids keep it printed once.
FOLLOW_LOOKBACK_MS = 10_000
THROTTLED = frozenset({"ThrottlingException", "TooManyRequestsException", "Throttling"})
THROTTLE_FIRST_SECONDS = 1.0
THROTTLE_MAX_SECONDS = 30.0
# Without --follow, give up after this many throttled calls in a row (about 2 minutes).
THROTTLE_ATTEMPTS = 8
# Local --follow: lines arriving this close together are sorted by time before printing.
LOCAL_BATCH_SECONDS = 0.3
TASK_ID_SHOWN = 8
RELEASE_SHOWN = 7
SINCE_FORMS = (
    "a duration (30s, 10m, 2h, 1d) or an ISO time (2025-05-01T12:00:00Z; UTC unless it has "
    "an offset)"
)
_DURATION = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_HEX = re.compile(r"(?:sha256:)?([0-9a-f]{7,64})")
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_DOCKER_TIME = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})"
)

# The clock and sleep the command uses; tests replace them (a follow stops when sleep raises).
now: Callable[[], float] = time.time
sleep: Callable[[float], None] = time.sleep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_stack_arguments(parser)
    parser.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines as they come, until Ctrl-C",
    )
    parser.add_argument(
        "--since",
        default=DEFAULT_SINCE,
        metavar="WHEN",
        help=f"from when: {SINCE_FORMS} (default: {DEFAULT_SINCE})",
    )
    parser.add_argument(
        "--filter",
        metavar="TEXT",
        help="only lines containing TEXT (case-sensitive). On AWS, TEXT starting with one of "
        '{ [ %% " ? is passed as a CloudWatch filter pattern',
    )
    parser.add_argument(
        "--release",
        metavar="RELEASE",
        help="only one release's containers: its number in `pulumi-django releases` (1 = "
        "newest), `previous`, `current`, its image digest or a prefix of at least 7 hex digits "
        "(also as r-<hex>, the log streams' prefix), or its image reference",
    )
    parser.add_argument(
        "-n",
        "--limit",
        type=_positive_int,
        metavar="N",
        help="at most the last N lines (with --follow: of those before it starts following)",
    )


def run(args: argparse.Namespace) -> int:
    start = parse_since(args.since, now())
    stack = load_deployed_stack(args)
    if stack.target == "aws":
        with aws_call_errors():
            return aws_logs(stack, args, start)
    return local_logs(stack, args, start)


# --- shared ------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of lines, 1 or more")
    return value


def parse_since(text: str, current: float) -> float:
    """The epoch second `--since` names: a duration back from `current`, or an ISO time. Not
    before 1970: CloudWatch's startTime and `docker logs --since` count from the epoch (and a
    huge duration would not even print as a date)."""
    value = text.strip()
    duration = _DURATION.fullmatch(value)
    if duration:
        start = current - int(duration[1]) * _UNITS[duration[2]]
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise UsageError(f"--since {text!r}: give {SINCE_FORMS}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        start = moment.timestamp()
    if start < 0:
        raise UsageError(f"--since {text!r} is before 1970: give a later time")
    return start


def format_time(epoch_ms: int) -> str:
    """`2025-05-01T12:00:03.123Z`: UTC, to the millisecond, the same width on every line."""
    moment = datetime.fromtimestamp(epoch_ms // 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _emit(line: str) -> None:
    print(line, flush=True)


def _warn(message: str) -> None:
    print(f"pulumi-django logs: warning: {message}", file=sys.stderr, flush=True)


def _none_found(start: float, where: str, args: argparse.Namespace) -> None:
    """The one line on stderr when `logs` (without --follow) found no line: a quiet stack, or
    a --since, --release or --filter that leaves nothing."""
    narrowed = "".join(
        f" {flag} {value}"
        for flag, value in (("--release", args.release), ("--filter", args.filter))
        if value is not None
    )
    print(
        f"pulumi-django logs: no log lines since {format_time(int(start * 1000))} in {where}"
        + (f" (with{narrowed})" if narrowed else ""),
        file=sys.stderr,
        flush=True,
    )


@dataclass(frozen=True)
class Release:
    """What `--release` names: a digest (all or a prefix of its hex), or an image reference
    without a digest."""

    hex: str | None = None
    ref: str | None = None

    def matches(self, image: str) -> bool:
        """Whether `image` (a reference, an image id `sha256:…`) is this release's."""
        if self.hex is not None:
            found = _DIGEST.search(image)
            return found is not None and found[1].startswith(self.hex)
        return image == self.ref


def resolve_release(text: str, stack: DeployedStack) -> Release:
    """The release `--release` names, as `releases` and `rollback` name them
    (`release_history.StackReleases.resolve`: its number in `pulumi-django releases`, 1 =
    newest; `previous`; its digest or a unique prefix of 7+ hex digits, with or without
    `sha256:` or `r-`; its image reference), plus `current` (the `releaseId` output). A digest
    or prefix the history no longer holds (or a stack without one) is taken as given: its logs
    may outlive the history."""
    from pulumi_django.cli.release_history import MIN_PREFIX, StackReleases, digest_of

    value = text.strip()
    if value == "current":
        value = str(stack.output("releaseId"))
    hex_form = _HEX.fullmatch(value.lower().removeprefix("r-"))
    digest = _DIGEST.search(value)
    if stack.outputs.get("releases"):
        history = StackReleases.of(stack)
        if hex_form or digest:
            wanted = digest[1] if digest else str(hex_form[1] if hex_form else "")
            if not any(digest_of(r.release).startswith(wanted) for r in history.records):
                return Release(hex=wanted)
        record = history.records[history.resolve(value)]
        found = _DIGEST.search(record.release) or _DIGEST.search(record.image)
        return Release(hex=found[1]) if found else Release(ref=record.image)
    if digest:
        return Release(hex=digest[1])
    if hex_form:
        return Release(hex=hex_form[1])
    if value.isdigit() or value == "previous":
        raise UsageError(
            f"--release {text}: numbers and `previous` count through the stack's release "
            "history, and this stack has no `releases` output (deploy it with this version of "
            "pulumi-django first); give the release's digest instead"
        )
    if value and not any(char.isspace() for char in value) and re.search(r"[:/]", value):
        return Release(ref=value)
    raise UsageError(
        f"--release {text!r}: give `current`, `previous`, its number in `pulumi-django "
        f"releases`, its image digest (sha256:…) or a prefix of at least {MIN_PREFIX} hex "
        "digits, or its image reference"
    )


def _known_releases(stack: DeployedStack) -> str:
    from pulumi_django.cli.release_history import StackReleases

    if not stack.outputs.get("releases"):
        return ""
    return f" (stack {stack.name} keeps {StackReleases.of(stack).listing()})"


# --- AWS: CloudWatch Logs ----------------------------------------------------------------------


class LogsError(PulumiDjangoError):
    """CloudWatch Logs refused or failed a call; the message names the call and the reason."""


def stream_prefix(release: Release) -> str:
    """The awslogs stream prefix of a release's containers (`release_log_prefix`); with a
    digest prefix shorter than 12 hex digits, the streams of every release it starts."""
    from pulumi_django.rendering.container_definitions import release_log_prefix

    if release.hex is not None:
        return "r-" + release.hex[:12]
    return release_log_prefix(str(release.ref))


def filter_pattern(text: str) -> str:
    """`--filter` as a CloudWatch filter pattern: plain text becomes one quoted term, so that
    text with spaces or punctuation matches as written; a pattern (JSON `{…}`, space-delimited
    `[…]`, regex `%…%`, quoted terms, `?` alternatives) is passed as it is."""
    if text[:1] in ("{", "[", "%", '"', "?"):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stream_label(stream: str) -> str:
    """`app/1a2b3c4d r-0123456` from `r-0123456789ab/app/1a2b3c4d…`: the container, the task
    id's start and the release; another stream's name as it is."""
    parts = stream.split("/")
    if len(parts) == 3 and parts[0].startswith("r-"):
        prefix, container, task = parts
        return f"{container}/{task[:TASK_ID_SHOWN]} {prefix[: 2 + RELEASE_SHOWN]}"
    return stream


def format_event(event: Mapping[str, Any]) -> str:
    message = str(event.get("message", "")).rstrip("\n")
    return (
        f"{format_time(int(event['timestamp']))}  {stream_label(event['logStreamName'])}  {message}"
    )


class CloudWatchReader:
    """Pages through FilterLogEvents, backing off while CloudWatch throttles."""

    def __init__(self, client: Any, request: Mapping[str, Any], *, patient: bool) -> None:
        self.client = client
        self.request = dict(request)
        self.patient = patient  # --follow: wait out throttling however long it lasts

    def events(self, start_ms: int) -> list[dict[str, Any]]:
        """Every event from `start_ms` on, sorted by time (then ingestion, then id)."""
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {**self.request, "startTime": start_ms}
        while True:
            page = self._call(request)
            found.extend(page.get("events", []))
            token = page.get("nextToken")
            if not token or token == request.get("nextToken"):
                break
            request["nextToken"] = token
        found.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0), e.get("eventId", "")))
        return found

    def _call(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """One FilterLogEvents page; what botocore raises before AWS answers (no credentials)
        goes to `aws_call_errors`."""
        from botocore.exceptions import ClientError

        delay = THROTTLE_FIRST_SECONDS
        attempts = 0
        while True:
            try:
                response: dict[str, Any] = self.client.filter_log_events(**request)
                return response
            except ClientError as error:
                details = error.response.get("Error", {})
                code = str(details.get("Code", "?"))
                attempts += 1
                if code in THROTTLED and (self.patient or attempts < THROTTLE_ATTEMPTS):
                    sleep(delay)
                    delay = min(delay * 2, THROTTLE_MAX_SECONDS)
                    continue
                group = request["logGroupName"]
                if code == "ResourceNotFoundException":
                    raise LogsError(
                        f"log group {group} does not exist (the stack's logGroupName output): "
                        "was the stack destroyed? run `pulumi up` again"
                    ) from None
                raise LogsError(
                    f"CloudWatch Logs refused FilterLogEvents on {group}: {code}: "
                    f"{details.get('Message', '')}".rstrip(": ")
                ) from None


def _release_has_streams(client: Any, group: str, prefix: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        found = client.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix, limit=1)
    except (ClientError, BotoCoreError):
        return True  # FilterLogEvents says what is wrong
    return bool(found.get("logStreams"))


def aws_logs(stack: DeployedStack, args: argparse.Namespace, start: float) -> int:
    group = str(stack.output("logGroupName"))
    request: dict[str, Any] = {"logGroupName": group}
    if args.release is not None:
        release = resolve_release(args.release, stack)
        request["logStreamNamePrefix"] = stream_prefix(release)
    if args.filter:
        request["filterPattern"] = filter_pattern(args.filter)
    client = stack.aws_client("logs")
    if args.release is not None and not args.follow:
        prefix = request["logStreamNamePrefix"]
        if not _release_has_streams(client, group, prefix):
            raise UsageError(
                f"no such release {args.release}: log group {group} has no stream under "
                f"{prefix}/ (never ran, or its logs expired){_known_releases(stack)}"
            )
    reader = CloudWatchReader(client, request, patient=args.follow)
    start_ms = int(start * 1000)
    polled_ms = int(now() * 1000)
    events = reader.events(start_ms)
    shown = events[-args.limit :] if args.limit else events
    for event in shown:
        _emit(format_event(event))
    if args.follow:
        follow(reader, start_ms, events, polled_ms)
    if not events:
        _none_found(start, f"log group {group}", args)
    return 0


def follow(
    reader: CloudWatchReader,
    start_ms: int,
    printed: Sequence[Mapping[str, Any]],
    polled_ms: int,
) -> NoReturn:
    """Polls every FOLLOW_POLL_SECONDS for new events, printing each event id once, until
    Ctrl-C. Each poll reads from FOLLOW_LOOKBACK_MS behind the later of the newest event printed
    and the time of the poll before (`polled_ms` for the first), so that a line CloudWatch
    ingests late still shows while a quiet group is not read again from `--since` each time."""
    seen = {str(e.get("eventId")): int(e["timestamp"]) for e in printed}
    newest = max([polled_ms, *seen.values()])
    while True:
        sleep(FOLLOW_POLL_SECONDS)
        since = max(start_ms, newest - FOLLOW_LOOKBACK_MS)
        polled = int(now() * 1000)
        for event in reader.events(since):
            key = str(event.get("eventId"))
            if key in seen:
                continue
            seen[key] = int(event["timestamp"])
            newest = max(newest, int(event["timestamp"]))
            _emit(format_event(event))
        newest = max(newest, polled)
        horizon = max(start_ms, newest - FOLLOW_LOOKBACK_MS)
        seen = {key: stamp for key, stamp in seen.items() if stamp >= horizon}


# --- local: docker logs ------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class DockerLine:
    """One line of `docker logs --timestamps`: sorted by its time (nanoseconds since the
    epoch), then by the order it came in."""

    nanos: int
    order: int
    container: str
    text: str

    def render(self) -> str:
        return f"{format_time(self.nanos // 1_000_000)}  {self.container}  {self.text}"


def docker_time(stamp: str) -> int | None:
    """Nanoseconds since the epoch of an RFC 3339 time as `docker logs --timestamps` prints it;
    None when it is not one."""
    found = _DOCKER_TIME.fullmatch(stamp)
    if not found:
        return None
    base, fraction, zone = found.groups()
    moment = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    return int(moment.timestamp()) * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def parse_docker_line(raw: str, previous: int) -> tuple[int, str]:
    """(time, text) of one line of `docker logs --timestamps`; a line without a timestamp
    continues the one before, at its time."""
    stamp, _, text = raw.rstrip("\n").partition(" ")
    nanos = docker_time(stamp)
    if nanos is None:
        return previous, raw.rstrip("\n")
    return nanos, text


def docker_lines(container: str, output: str, counter: Iterator[int]) -> Iterator[DockerLine]:
    nanos = 0
    for raw in output.splitlines():
        nanos, text = parse_docker_line(raw, nanos)
        yield DockerLine(nanos, next(counter), container, text)


def stack_containers(stack: DeployedStack, docker: str) -> list[str]:
    """The stack's containers, in the order lines of the same instant are shown: the app
    replicas, the proxy, the workers, then the release's migration containers."""
    outputs = stack.outputs
    names: list[str] = [*stack.output("appContainers"), stack.output("proxyContainer")]
    workers = outputs.get("workerContainers") or {}
    for worker in sorted(workers):
        names.extend(workers[worker])
    network = outputs.get("networkName")
    if isinstance(network, str) and network:
        names.extend(migration_containers(docker, network))
    return list(dict.fromkeys(names))


def migration_containers(docker: str, network: str) -> list[str]:
    """The release's migration check and job containers. The local target runs them as
    `<site>-migrate-check-…` and `<site>-migrate-job-…` (auto-named; the site's network is
    named after the site) and keeps them after they exit, until the next release replaces
    them."""
    prefix = f"{network}-migrate-"
    done = subprocess.run(
        [docker, "ps", "--all", "--filter", f"name={prefix}", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        return []
    return sorted(name for name in done.stdout.split() if name.startswith(prefix))


def inspect_images(docker: str, names: Sequence[str]) -> dict[str, list[str]]:
    """Container name -> [its image id, the image reference it was created from], for the
    containers that exist. Raises UsageError when Docker itself cannot be asked."""
    from pulumi_django.cli.local_one_off import refuse_if_docker_down

    done = subprocess.run(
        [docker, "inspect", "--type", "container", "--format",
         "{{.Name}} {{.Image}} {{.Config.Image}}", *names],
        capture_output=True,
        text=True,
    )  # fmt: skip
    found: dict[str, list[str]] = {}
    for line in done.stdout.splitlines():
        # The CLI prints the format's line (blank) for a container it could not ask about.
        name, *images = line.split() or [""]
        if name:
            found[name.lstrip("/")] = images
    if done.returncode != 0 and not found:
        refuse_if_docker_down(done.stderr)
        problems = [line for line in done.stderr.splitlines() if line.strip()]
        if problems and not all("no such" in line.lower() for line in problems):
            raise UsageError(f"`docker inspect` failed: {problems[-1].removeprefix('Error: ')}")
    return found


def local_logs(stack: DeployedStack, args: argparse.Namespace, start: float) -> int:
    docker = shutil.which("docker")
    if docker is None:
        raise UsageError(
            "the docker CLI is not on PATH: the local target's logs are its containers' "
            "(`docker logs`); install Docker, or run this where the stack runs"
        )
    names = stack_containers(stack, docker)
    images = inspect_images(docker, names)
    missing = [name for name in names if name not in images]
    if len(missing) == len(names):
        raise UsageError(
            f"none of stack {stack.name}'s containers exist ({', '.join(names)}): run "
            f"`pulumi up --stack {stack.name}` first"
        )
    for name in missing:
        _warn(f"container {name} does not exist; its logs are not shown")
    names = [name for name in names if name in images]
    if args.release is not None:
        release = resolve_release(args.release, stack)
        names = [n for n in names if any(release.matches(image) for image in images[n])]
        if not names:
            raise UsageError(
                f"no such release {args.release}: no container of stack {stack.name} runs it "
                f"(the local target keeps only the current release's containers)"
                f"{_known_releases(stack)}"
            )
    # With --follow: the lines until now, merged and sorted, then the followed ones from now.
    until = now() if args.follow else None
    if until is None or start < until:
        backlog = _backlog(docker, names, start, until, args.filter, args.limit)
        for line in backlog:
            _emit(line.render())
        if not backlog and until is None:
            _none_found(start, f"containers {', '.join(names)}", args)
    if until is not None:
        follow_local(
            [docker, "logs", "--timestamps", "--since", docker_since(max(start, until))],
            names,
            args.filter,
        )
    return 0


def docker_since(epoch: float) -> str:
    """An epoch second as `docker logs --since/--until` take it: RFC 3339, UTC."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _backlog(
    docker: str,
    names: Sequence[str],
    start: float,
    until: float | None,
    filter_text: str | None,
    limit: int | None,
) -> list[DockerLine]:
    """The containers' lines from `start` (to `until`) that hold `filter_text` (`--filter`),
    merged by time; the last `limit`."""
    command = [docker, "logs", "--timestamps", "--since", docker_since(start)]
    if until is not None:
        command += ["--until", docker_since(until)]
    if limit and not filter_text:  # with a filter, the last N matching lines may lie further back
        command += ["--tail", str(limit)]
    counter = iter(range(sys.maxsize))
    lines: list[DockerLine] = []
    for name in names:
        done = subprocess.run([*command, name], capture_output=True, text=True)
        if done.returncode != 0:
            problems = [line for line in done.stderr.splitlines() if line.strip()]
            _warn(f"`docker logs {name}` failed: {problems[-1] if problems else done.returncode}")
            continue
        lines.extend(docker_lines(name, done.stdout, counter))
        lines.extend(docker_lines(name, done.stderr, counter))
    shown = sorted(_matching(lines, filter_text))
    return shown[-limit:] if limit else shown


def _matching(lines: Iterable[DockerLine], filter_text: str | None) -> Iterator[DockerLine]:
    return (line for line in lines if not filter_text or filter_text in line.text)


def follow_local(command: Sequence[str], names: Sequence[str], filter_text: str | None) -> None:
    """`docker logs --follow` of every container at once (a reader thread per output), the
    lines that arrive together sorted by time, until every container stops or Ctrl-C."""
    arrived: queue.Queue[DockerLine | None] = queue.Queue()
    counter = iter(range(sys.maxsize))
    lock = threading.Lock()

    def read(name: str, stream: Iterable[str]) -> None:
        nanos = 0
        for raw in stream:
            nanos, line = parse_docker_line(raw, nanos)
            with lock:
                order = next(counter)
            arrived.put(DockerLine(nanos, order, name, line))
        arrived.put(None)

    processes = [
        subprocess.Popen(
            [*command, "--follow", name], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for name in names
    ]
    readers = [
        threading.Thread(target=read, args=(name, pipe), daemon=True)
        for name, process in zip(names, processes, strict=True)
        for pipe in (process.stdout, process.stderr)
    ]
    for reader in readers:
        reader.start()
    open_streams = len(readers)
    try:
        while open_streams:
            batch: list[DockerLine] = []
            item = arrived.get()
            deadline = time.monotonic() + LOCAL_BATCH_SECONDS
            while True:
                if item is None:
                    open_streams -= 1
                else:
                    batch.append(item)
                if not open_streams:
                    break
                try:
                    item = arrived.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
            for line in sorted(_matching(batch, filter_text)):
                _emit(line.render())
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
        for process in processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
