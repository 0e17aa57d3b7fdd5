"""The background workers of a rehearsal: one worker process of each version, and the jobs
they failed.

When the stack has `django:workers`, the rehearsal runs the first worker service's command
(one process per version, not every service nor its count): the old version's from when its
replicas start, the new version's from when its first replica starts, both on the rehearsal's
PostgreSQL and Redis with the replicas' environment, both until the load stops; then each gets
SIGTERM and the service's `stopTimeoutSeconds` to finish its job (a warm shutdown) before
SIGKILL. Old workers outlive the web rollout in a real release too: their service rolls while
the fleet does, and each old task may take its stop timeout to finish.

A worker's output is its log. A failed job is what any Python job runner (Celery, RQ, Django's
tasks, a loop of one's own) writes when a job raises: a traceback. So the failures counted are
each traceback in the worker's output (a chained exception, `During handling of...` or `The
above exception was the direct cause...`, is one failure, not two) and, once, a worker that
exits with a non-zero status (or cannot start) before it is stopped. Points in the rehearsal
(the new version's start, a database outage) are marked by the log's size at that moment, so
that each failure is placed before or after them.
"""

from __future__ import annotations

import collections
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pulumi_django.cli.rehearsal.servers import start_process, stop_process

TRACEBACK = "Traceback (most recent call last):"
# What Python prints between the tracebacks of one chain of exceptions.
CHAINED = (
    "During handling of the above exception, another exception occurred:",
    "The above exception was the direct cause of the following exception:",
)
ERRORS_SHOWN = 5
ERROR_LENGTH = 200
# The marks a rehearsal sets on a worker's log.
NEW_VERSION = "new-version"
OUTAGE_START, OUTAGE_END = "outage-start", "outage-end"

Side = Literal["old", "new"]


@dataclass(frozen=True)
class Failure:
    """One failed job: where its traceback starts in the log, and the exception it ended in."""

    offset: int
    error: str


def failures_in(text: str) -> list[Failure]:
    """The failures in a worker's output: each traceback that does not continue a chain of
    exceptions, with the last exception line of its chain."""
    failures: list[Failure] = []
    offset = 0
    previous = ""  # the last non-blank line before this one
    in_traceback = False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if stripped.endswith(TRACEBACK):
            if not any(previous.endswith(chained) for chained in CHAINED):
                failures.append(Failure(offset, ""))
            in_traceback = True
        elif in_traceback and stripped and not line[:1].isspace() and failures:
            # The first unindented line after the frames: the exception (the chain's last).
            failures[-1] = Failure(failures[-1].offset, " ".join(stripped.split())[:ERROR_LENGTH])
            in_traceback = False
        if stripped:
            previous = stripped
        offset += len(line.encode())
    return failures


@dataclass(frozen=True)
class WorkerOutcome:
    """What one worker process did during the rehearsal."""

    version: str
    side: Side
    # Tracebacks in its output, outside a database outage.
    tracebacks: int
    # Of those, the ones after the new version started: on the old worker, where the new
    # version's jobs fail; on the new worker, all of them.
    since_new_version: int
    # Tracebacks while the database was down or reconnecting: the outage's, not counted.
    during_outage: int
    # Its exit status once stopped, or when it exited by itself (None: it never started).
    exit_status: int | None
    # It exited (or could not start) before the rehearsal stopped it.
    exited_early: bool
    # The exceptions that failed its jobs, the most frequent first: (exception line, count).
    errors: tuple[tuple[str, int], ...] = ()
    # Why it stopped early: its last line of output, or why it did not start.
    detail: str = ""

    @property
    def crashed(self) -> bool:
        """It exited non-zero, or never started, before it was stopped."""
        return self.exited_early and self.exit_status != 0

    @property
    def jobs_failed(self) -> int:
        return self.tracebacks + int(self.crashed)

    @property
    def stop(self) -> str:
        """How it ended, in a few words."""
        if self.exit_status is None:
            return "did not start"
        how = "exited by itself" if self.exited_early else "stopped"
        if self.exit_status == 0:
            return f"{how}, exit status 0"
        if self.exit_status < 0:
            return f"{how}, killed by signal {-self.exit_status}"
        return f"{how}, exit status {self.exit_status}"


@dataclass(frozen=True)
class WorkersSummary:
    """The rehearsal's workers: the service whose command they ran, and each process."""

    service: str
    command: tuple[str, ...]
    stop_timeout_seconds: float
    processes: tuple[WorkerOutcome, ...]

    @property
    def jobs_failed(self) -> int:
        return sum(process.jobs_failed for process in self.processes)

    @property
    def old_jobs_failed_since_new(self) -> int:
        """Jobs the old version's worker failed once the new version ran: the new version's
        jobs failing on an old worker, as a rolling release makes them."""
        return sum(p.since_new_version for p in self.processes if p.side == "old")


@dataclass(eq=False)
class WorkerProcess:
    """One worker process of one version, its output in `log`."""

    version: str
    side: Side
    log: Path
    process: subprocess.Popen[bytes] | None = None
    start_error: str = ""
    exited_early: bool = False
    stopped: bool = False
    marks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        version: str,
        side: Side,
        command: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        log: Path,
    ) -> WorkerProcess:
        """Starts `command` in its own process group; a command that cannot start is
        recorded (a failure of this worker), not raised."""
        log.parent.mkdir(parents=True, exist_ok=True)
        log.touch()
        worker = cls(version, side, log)
        try:
            worker.process = start_process(list(command), log, env=dict(env), cwd=cwd)
        except OSError as error:
            worker.start_error = f"{command[0]}: {error.strerror or error}"
        return worker

    def mark(self, name: str) -> None:
        """Notes that `name` happens now: the output so far came before it."""
        self.marks.setdefault(name, self._size())

    def _size(self) -> int:
        try:
            return self.log.stat().st_size
        except OSError:
            return 0

    def stop(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after `timeout` (the warm shutdown). Stopping twice, or a
        worker that never started, does nothing."""
        if self.stopped or self.process is None:
            self.stopped = True
            return
        self.stopped = True
        self.exited_early = self.process.poll() is not None
        stop_process(self.process, timeout)

    def outcome(self) -> WorkerOutcome:
        """What it did; call once it is stopped."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        failures = failures_in(text)
        outage = (self.marks.get(OUTAGE_START), self.marks.get(OUTAGE_END, len(text.encode())))
        counted, during_outage = [], 0
        for failure in failures:
            if outage[0] is not None and outage[0] <= failure.offset < outage[1]:
                during_outage += 1
            else:
                counted.append(failure)
        new_from = self.marks.get(NEW_VERSION)
        since_new = len(counted) if self.side == "new" else 0
        if self.side == "old" and new_from is not None:
            since_new = sum(1 for failure in counted if failure.offset >= new_from)
        errors = collections.Counter(failure.error or "(no exception line)" for failure in counted)
        status = None if self.process is None else self.process.poll()
        exited_early = self.exited_early or self.process is None
        detail = self.start_error
        if not detail and exited_early:
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            detail = lines[-1][:ERROR_LENGTH] if lines else "no output"
        return WorkerOutcome(
            version=self.version,
            side=self.side,
            tracebacks=len(counted),
            since_new_version=since_new,
            during_outage=during_outage,
            exit_status=status,
            exited_early=exited_early,
            errors=tuple(errors.most_common(ERRORS_SHOWN)),
            detail=detail,
        )
