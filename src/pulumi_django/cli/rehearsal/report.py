"""What a rehearsal found: the requests and their failures, latency before, during and after the
release, each release step, the fleet's health checks (and any replica they had replaced), a
database outage when one was asked for, the jobs the workers failed (when the stack has
workers), and the verdict; as text for people, as JSON for
machines and as markdown for a pull request's comment."""

from __future__ import annotations

import collections
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pulumi_django.cli.rehearsal.load import (
    FAILURE_KINDS,
    REQUEST_FAILURE_KINDS,
    LatencySummary,
    Sample,
    failure_counts,
    is_missing_page,
    latency_summary,
)
from pulumi_django.cli.rehearsal.workers import WorkerOutcome, WorkersSummary

Result = Literal["ok", "failed", "refused", "halted"]
StepStatus = Literal["ok", "skipped", "refused", "halted"]
PHASES = ("before", "during", "after")
# The phase of a database outage (`--database-outage`), before the release.
OUTAGE_PHASE = "outage"
PHASE_LABELS = {
    "before": "before the release",
    "during": "during the release",
    "after": "after the release",
    OUTAGE_PHASE: "database outage",
}
# After the database is back, the time the app gets to reconnect: its 5xx until then are the
# outage's; any failure after it counts.
RECONNECT_WINDOW_SECONDS = 5.0
# Exit status of `pulumi-django rehearse` by result: 2 stays the CLI's usage error.
EXIT_CODES: dict[str, int] = {"ok": 0, "failed": 1, "refused": 3, "halted": 4}
FAILURE_EXAMPLES = 5
FAILURE_LABELS = {
    "5xx": "5xx",
    "static_404": "static 404",
    "connection": "connection error",
    "other": "other",
    "orm": "orm",
}
VERDICTS = {
    "ok": "no request failed while the old and the new version ran side by side",
    "failed": "users saw errors during this release",
    "replaced": "the fleet's health checks had replicas replaced, as ECS would replace tasks",
    "not_ready": "the replicas were not all ready again after the database outage",
    "jobs": "jobs failed on the workers",
    "refused": "the migration check refused the release before anything changed; "
    "the old version kept serving",
    "halted": "the release stopped before it reached every replica; "
    "the replicas already serving kept serving",
}
# Added to the verdict when the old version's worker failed jobs once the new version ran.
WORKER_HINT = (
    "a job enqueued by the new version failed on an old worker: make the job exist (and accept "
    "the new arguments) one release before enqueueing it"
)
EXCLUDED_LABEL = "Pages that 404 before the release (not counted)"
# The pull-request comment's name: its first line is `<!-- pulumi-django-plan:rehearsal -->`.
MARKDOWN_MARKER = "rehearsal"


@dataclass(frozen=True)
class StepReport:
    """One release step as the rehearsal carried it out."""

    key: str
    title: str
    status: StepStatus
    seconds: float
    detail: str


@dataclass(frozen=True)
class Outage:
    """A database outage the rehearsal made (`--database-outage`), in monotonic seconds:
    PostgreSQL asked to stop (its sessions end), stopped, accepting connections again, every
    replica ready again (None: not within the wait)."""

    seconds: float  # as asked
    stopping: float
    stopped: float
    back: float
    ready: float | None
    static_prefix: str = "/static/"

    @property
    def window_end(self) -> float:
        """Until when a 5xx is the outage's: the reconnect window after the database is back."""
        return self.back + RECONNECT_WINDOW_SECONDS

    def covers(self, sample: Sample) -> bool:
        """Whether the request was in flight at some time from PostgreSQL asked to stop to the
        end of the reconnect window: one that started just before the stop, and whose query the
        stop cut off, failed because of the outage too."""
        return sample.started < self.window_end and sample.answered >= self.stopping

    def what(self, sample: Sample) -> str:
        """A request as the outage's tally names it: static files together."""
        if sample.method == "GET" and sample.path.startswith(self.static_prefix):
            return f"GET {self.static_prefix}*"
        return f"{sample.method} {sample.path}"


@dataclass
class Replacement:
    """A replica the fleet's health checks called unhealthy, which ECS would replace: when
    (monotonic), why, and its replacement once in service."""

    port: int
    version: str
    reason: str
    unhealthy: float
    attempts: int = 0  # replacements started
    replaced_by: int | None = None
    in_service: float | None = None


@dataclass(frozen=True)
class HealthChecks:
    """The checks the rehearsal ran on every replica in service, as ECS runs them, and the
    replacements they caused."""

    path: str
    checks: tuple[str, ...]
    grace_period_seconds: float
    replacements: tuple[Replacement, ...] = ()


@dataclass(frozen=True)
class Timeline:
    """Monotonic times: the load started, the release started and ended, the load ended; and
    the database outage, when there was one (before the release)."""

    load_start: float
    release_start: float
    release_end: float
    load_end: float
    outage: Outage | None = None

    def phase(self, sample: Sample) -> str:
        if self.outage is not None and self.outage.covers(sample):
            return OUTAGE_PHASE
        if sample.started < self.release_start:
            return "before"
        return "during" if sample.started < self.release_end else "after"

    @property
    def phases(self) -> tuple[str, ...]:
        if self.outage is None:
            return PHASES
        return ("before", OUTAGE_PHASE, "during", "after")


@dataclass(frozen=True)
class OutageSummary:
    """What users saw while the database was down (`served` and `failed`: requests by what they
    asked for, during the gap) and how the site came back: `failures` the 5xx of the outage
    and its reconnect window (left out of the run's failures); `last_failure` seconds after the
    database was back (None: none after); `first_success` seconds after it was back until a
    request that had failed while it was down (the same method and path) was answered again;
    `ready_after` seconds until every replica answered its readiness path."""

    seconds: float
    down_seconds: float
    requests: int
    failures: int
    served: dict[str, int]
    failed: dict[str, int]
    last_failure: float | None
    ready_after: float | None
    reconnect_window: float = RECONNECT_WINDOW_SECONDS
    first_success: float | None = None

    @property
    def recovered(self) -> bool:
        return self.ready_after is not None

    @property
    def warning(self) -> str | None:
        """What the outage did not show: with no request failing while the database was down
        or reconnecting, no page the load viewed needed it, and a page that does is untested."""
        if self.failed or self.failures:
            return None
        return (
            "no request failed while the database was down or reconnecting: no page the load "
            "viewed needed it, so the outage proved nothing about pages that do (the site's "
            "pages that read the database were not among those crawled)"
        )


@dataclass(frozen=True)
class WriteSummary:
    """What the model write probe did: its operations by the version that ran them, the
    models it wrote, and those it could not build (not failures: nothing to compare)."""

    operations: dict[str, int]
    models: tuple[str, ...]
    skipped: dict[str, str]
    # Why there was no probe, when the release gave it nothing to do (no migration applied).
    not_run: str = ""
    # What kept the probes from covering writes the release put at risk (a probe that could
    # not start or that died): then 0 orm failures proves nothing.
    problems: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(self.operations.values())


@dataclass(frozen=True)
class RehearsalReport:
    release: str
    previous: str
    proxy: str
    server: str
    replicas: int
    rate: float
    steps: tuple[StepReport, ...]
    requests: int
    failures: dict[str, int]
    latency: dict[str, LatencySummary]
    rollout_seconds: float
    load_seconds: float
    result: Result
    # (kind, "METHOD path -> status: detail", how many, the phases it happened in): the phases
    # tell a failure of the release from one of the old version alone or at an outage's edge.
    failure_examples: tuple[tuple[str, str, int, tuple[str, ...]], ...] = ()
    # Pages the old version answered 404 before the release: not failures (`excluded_paths`).
    excluded_paths: tuple[str, ...] = ()
    writes: WriteSummary | None = None
    # The pages the load viewed (the crawl's), in the order found.
    pages: tuple[str, ...] = ()
    health_checks: HealthChecks | None = None
    outage: OutageSummary | None = None
    phases: tuple[str, ...] = field(default=PHASES)
    # The worker of each version, when the stack has workers (`django:workers`).
    workers: WorkersSummary | None = None

    @property
    def replicas_replaced(self) -> int:
        return len(self.health_checks.replacements) if self.health_checks else 0

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.result]

    @property
    def failed_requests(self) -> int:
        return sum(self.failures.values())

    @property
    def jobs_failed(self) -> int:
        return self.workers.jobs_failed if self.workers else 0


def decide_result(
    failed_requests: int,
    steps: Sequence[StepReport],
    replicas_replaced: int = 0,
    recovered: bool = True,
    jobs_failed: int = 0,
) -> Result:
    """A refusal is `refused` whatever the load counted: nothing changed, so any failure came
    from the old version alone. Otherwise any failed request, any replica the health checks had
    replaced, a fleet not ready again after a database outage, or any job a worker failed
    fails the rehearsal; otherwise a halted step halts it; otherwise ok."""
    statuses = {step.status for step in steps}
    if "refused" in statuses:
        return "refused"
    if failed_requests or replicas_replaced or not recovered or jobs_failed:
        return "failed"
    return "halted" if "halted" in statuses else "ok"


def summarize_outage(samples: Sequence[Sample], outage: Outage) -> OutageSummary:
    """The outage's tally (see OutageSummary) of the load's `samples`."""
    served: collections.Counter[str] = collections.Counter()
    failed: collections.Counter[str] = collections.Counter()
    after_back = []
    covered = [sample for sample in samples if outage.covers(sample)]
    for sample in covered:
        if sample.failure == "5xx":
            if sample.started < outage.back:
                failed[outage.what(sample)] += 1
            else:
                after_back.append(sample.started - outage.back)
        elif sample.failure is None and outage.stopped <= sample.started < outage.back:
            served[outage.what(sample)] += 1
    answered_again = [
        sample.started - outage.back
        for sample in samples
        if sample.started >= outage.back
        and sample.failure is None
        and outage.what(sample) in failed
    ]
    return OutageSummary(
        seconds=outage.seconds,
        down_seconds=outage.back - outage.stopped,
        requests=len(covered),
        failures=sum(1 for sample in covered if sample.failure == "5xx"),
        served=dict(served.most_common()),
        failed=dict(failed.most_common()),
        last_failure=max(after_back, default=None),
        ready_after=None if outage.ready is None else outage.ready - outage.back,
        first_success=min(answered_again, default=None),
    )


def pages_missing_before(samples: Sequence[Sample], timeline: Timeline) -> tuple[str, ...]:
    """The paths of pages that answered 404 before the release started, when only the old
    version served: pages the app does not have (a stock project has no `/`), not failures of
    the release."""
    return tuple(
        sorted(
            {
                sample.path
                for sample in samples
                if timeline.phase(sample) == "before" and is_missing_page(sample)
            }
        )
    )


def build_report(
    *,
    release: str,
    previous: str,
    proxy: str,
    server: str,
    replicas: int,
    rate: float,
    steps: Sequence[StepReport],
    samples: Sequence[Sample],
    timeline: Timeline,
    writes: Sequence[Sample] = (),
    write_summary: WriteSummary | None = None,
    pages: Sequence[str] = (),
    health_checks: HealthChecks | None = None,
    workers: WorkersSummary | None = None,
) -> RehearsalReport:
    """`samples` are the load's HTTP requests (the latency and the request count); `writes`
    the write probe's operations, whose failures count with the requests'. During a database
    outage and its reconnect window (see Outage.covers), 5xx answers are the outage's
    (`outage`), not failures.
    `workers`: the worker of each version (None: the stack has none)."""
    by_phase: dict[str, list[Sample]] = {phase: [] for phase in timeline.phases}
    for sample in samples:
        by_phase[timeline.phase(sample)].append(sample)
    excluded = pages_missing_before(samples, timeline)
    outage = timeline.outage
    # Their 404s are left out for the whole run; any other failure of those paths still counts.
    counted = [
        s
        for s in samples
        if not (s.path in excluded and is_missing_page(s))
        and not (outage is not None and outage.covers(s) and s.failure == "5xx")
    ]
    counted += writes
    failures = failure_counts(counted)
    outage_summary = None if outage is None else summarize_outage(samples, outage)
    replaced = len(health_checks.replacements) if health_checks else 0
    return RehearsalReport(
        release=release,
        previous=previous,
        proxy=proxy,
        server=server,
        replicas=replicas,
        rate=rate,
        steps=tuple(steps),
        requests=len(samples),
        failures=failures,
        latency={phase: latency_summary(by_phase[phase]) for phase in timeline.phases},
        rollout_seconds=timeline.release_end - timeline.release_start,
        load_seconds=timeline.load_end - timeline.load_start,
        result=decide_result(
            sum(failures.values()),
            steps,
            replaced,
            outage_summary is None or outage_summary.recovered,
            workers.jobs_failed if workers else 0,
        ),
        failure_examples=_examples(counted, timeline),
        excluded_paths=excluded,
        writes=write_summary,
        pages=tuple(pages),
        health_checks=health_checks,
        outage=outage_summary,
        phases=timeline.phases,
        workers=workers,
    )


def _examples(
    samples: Sequence[Sample], timeline: Timeline
) -> tuple[tuple[str, str, int, tuple[str, ...]], ...]:
    counter: collections.Counter[tuple[str, str]] = collections.Counter()
    phases: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    for sample in samples:
        if sample.failure is not None:
            status = "no answer" if sample.status is None else str(sample.status)
            detail = " ".join(sample.detail.split())[:120]
            # A write probe's operation has no status: "create journal.Entry".
            what = f"{sample.method} {sample.path}"
            if sample.failure != "orm":
                what += f" -> {status}"
            if sample.version:
                what += f" (from {sample.version})"
            key = (sample.failure, f"{what}: {detail}" if detail else what)
            counter[key] += 1
            phases[key].add(timeline.phase(sample))
    return tuple(
        (kind, what, count, tuple(p for p in timeline.phases if p in phases[kind, what]))
        for (kind, what), count in counter.most_common(FAILURE_EXAMPLES)
    )


def _phase_list(phases: Sequence[str]) -> str:
    return ", ".join(PHASE_LABELS.get(phase, phase) for phase in phases)


def report_json(report: RehearsalReport) -> dict[str, Any]:
    """The `--json` document; the first keys are the documented contract."""
    return {
        "release": report.release,
        "requests": report.requests,
        "failures": {kind: report.failures[kind] for kind in FAILURE_KINDS},
        "latency_ms": {
            phase: {"p50": _rounded(summary.p50), "p99": _rounded(summary.p99)}
            for phase, summary in report.latency.items()
        },
        "rollout_seconds": round(report.rollout_seconds, 2),
        "result": report.result,
        "previous": report.previous,
        "proxy": report.proxy,
        "server": report.server,
        "replicas": report.replicas,
        "rate": report.rate,
        "requests_by_phase": {phase: summary.requests for phase, summary in report.latency.items()},
        "steps": [
            {
                "key": step.key,
                "title": step.title,
                "status": step.status,
                "seconds": round(step.seconds, 2),
                "detail": step.detail,
            }
            for step in report.steps
        ],
        "failure_examples": [
            {"kind": kind, "what": what, "count": count, "phases": list(phases)}
            for kind, what, count, phases in report.failure_examples
        ],
        "excluded_paths": list(report.excluded_paths),
        "writes": None if report.writes is None else _writes_json(report.writes),
        "pages": list(report.pages),
        "replicas_replaced": report.replicas_replaced,
        "health_checks": (
            None if report.health_checks is None else _health_checks_json(report.health_checks)
        ),
        "database_outage": None if report.outage is None else _outage_json(report.outage),
        "workers": None if report.workers is None else _workers_json(report.workers),
        # How long the load ran: the release and the waits around it (`--before`, `--after`,
        # the outage), the part of a run no setup can shorten.
        "load_seconds": round(report.load_seconds, 2),
    }


def _workers_json(workers: WorkersSummary) -> dict[str, Any]:
    return {
        "service": workers.service,
        "command": list(workers.command),
        "stop_timeout_seconds": workers.stop_timeout_seconds,
        "jobs_failed": workers.jobs_failed,
        "processes": [
            {
                "version": process.version,
                "side": process.side,
                "jobs_failed": process.jobs_failed,
                "jobs_failed_since_new_version": process.since_new_version,
                "tracebacks": process.tracebacks,
                "tracebacks_during_outage": process.during_outage,
                "exit_status": process.exit_status,
                "exited_early": process.exited_early,
                "stop": process.stop,
                "errors": [{"error": error, "count": count} for error, count in process.errors],
                "detail": process.detail or None,
            }
            for process in workers.processes
        ],
    }


def _health_checks_json(health: HealthChecks) -> dict[str, Any]:
    return {
        "path": health.path,
        "checks": list(health.checks),
        "grace_period_seconds": health.grace_period_seconds,
        "replacements": [
            {
                "port": replacement.port,
                "version": replacement.version,
                "reason": replacement.reason,
                "attempts": replacement.attempts,
                "replaced_by": replacement.replaced_by,
                "seconds": None
                if replacement.in_service is None
                else round(replacement.in_service - replacement.unhealthy, 2),
            }
            for replacement in health.replacements
        ],
    }


def _outage_json(outage: OutageSummary) -> dict[str, Any]:
    return {
        "seconds": outage.seconds,
        "down_seconds": round(outage.down_seconds, 2),
        "requests": outage.requests,
        "failures": outage.failures,
        "served": outage.served,
        "failed": outage.failed,
        "reconnect_window_seconds": outage.reconnect_window,
        "last_failure_after_seconds": _rounded_seconds(outage.last_failure),
        "answered_again_after_seconds": _rounded_seconds(outage.first_success),
        "ready_after_seconds": _rounded_seconds(outage.ready_after),
        "warning": outage.warning,
    }


def _rounded_seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _writes_json(writes: WriteSummary) -> dict[str, Any]:
    return {
        "operations": writes.total,
        "operations_by_version": writes.operations,
        "models": list(writes.models),
        "skipped": writes.skipped,
        "not_run": writes.not_run or None,
        "problems": list(writes.problems),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def render_report(report: RehearsalReport) -> str:
    """The report as people read it at the end of `pulumi-django rehearse`."""
    lines = [
        f"Release rehearsal: {report.previous} -> {report.release}, {report.replicas} "
        f"{report.server} replicas behind {report.proxy}, {report.rate:g} requests/s",
        "",
        "Release steps:",
    ]
    width = max((len(step.title) for step in report.steps), default=0)
    for step in report.steps:
        lines.append(
            f"  {step.title:<{width}}  {step.status:<7} {step.seconds:6.1f} s  {step.detail}"
        )
    failed = sum(report.failures[kind] for kind in REQUEST_FAILURE_KINDS)
    kinds = ", ".join(f"{FAILURE_LABELS[k]} {report.failures[k]}" for k in REQUEST_FAILURE_KINDS)
    lines += [
        "",
        f"Pages viewed ({len(report.pages)}): {', '.join(report.pages)}",
        f"Requests: {report.requests} in {report.load_seconds:.1f} s; failed: {failed} ({kinds})",
    ]
    for kind, what, count, phases in report.failure_examples:
        lines.append(f"  {count:>5} x {FAILURE_LABELS[kind]}: {what} [{_phase_list(phases)}]")
    if report.excluded_paths:
        lines.append(f"{EXCLUDED_LABEL}: {', '.join(report.excluded_paths)}")
    if report.writes is not None:
        lines += _writes_lines(report.writes, report.failures["orm"])
    if report.outage is not None:
        lines += _outage_lines(report.outage)
    if report.health_checks is not None:
        lines += _health_lines(report.health_checks)
    if report.workers is not None:
        lines += _workers_lines(report.workers)
    lines += ["", f"  {'Latency (ms)':<20}{'requests':>8} {'p50':>7} {'p99':>7}"]
    for phase, summary in report.latency.items():
        label = PHASE_LABELS[phase]
        lines.append(
            f"  {label:<20}{summary.requests:>8} {_cell(summary.p50)} {_cell(summary.p99)}"
        )
    lines += [
        "",
        f"Rollout: {report.rollout_seconds:.1f} s",
        f"Result: {report.result.upper()}: {_verdict(report)}",
    ]
    return "\n".join(lines) + "\n"


def _tally(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{what} {count}" for what, count in counts.items()) or "none"


def _outage_sentences(outage: OutageSummary) -> list[str]:
    """The outage in a few sentences, for the text and the markdown alike."""
    if outage.last_failure is None:
        after = "none failed after it was back"
    else:
        after = f"the last 5xx started {outage.last_failure:.1f} s after it was back"
    if outage.first_success is not None:
        after += (
            f"; what had failed was answered again {outage.first_success:.2f} s after it was back"
        )
    ready = (
        f"every replica ready {outage.ready_after:.1f} s after it was back"
        if outage.ready_after is not None
        else "NOT every replica was ready again"
    )
    return [
        f"PostgreSQL stopped {outage.seconds:g} s ({outage.down_seconds:.1f} s until it "
        f"accepted connections again); {outage.requests} requests during it and the "
        f"{outage.reconnect_window:g} s reconnect window, {outage.failures} answered 5xx "
        f"(not counted above); {after}; {ready}",
        f"served while it was down: {_tally(outage.served)}",
        f"failed while it was down: {_tally(outage.failed)}",
        *([f"warning: {outage.warning}"] if outage.warning else []),
    ]


def _outage_lines(outage: OutageSummary) -> list[str]:
    first, *rest = _outage_sentences(outage)
    return ["", f"Database outage: {first}", *(f"  {line}" for line in rest)]


def _health_lines(health: HealthChecks) -> list[str]:
    lines = [
        "",
        f"Health checks on {health.path} (as ECS runs them; grace period "
        f"{health.grace_period_seconds:g} s): replicas replaced: {len(health.replacements)}",
    ]
    lines += [f"  {check}" for check in health.checks]
    for replacement in health.replacements:
        done = (
            f"replaced by port {replacement.replaced_by}"
            if replacement.replaced_by is not None
            else "not replaced before the end"
        )
        lines.append(
            f"  port {replacement.port} ({replacement.version}): {replacement.reason}; {done} "
            f"({replacement.attempts} start(s))"
        )
    return lines


def _worker_sentence(process: WorkerOutcome) -> str:
    """One worker process in a sentence: its version, jobs failed, how it ended."""
    since = ""
    if process.side == "old" and process.jobs_failed:
        since = f" ({process.since_new_version} once the new version ran)"
    outage = ""
    if process.during_outage:
        outage = f"; {process.during_outage} during the database outage (not counted)"
    detail = f": {process.detail}" if process.detail else ""
    return (
        f"{process.version} ({process.side}): jobs failed {process.jobs_failed}{since}{outage}; "
        f"{process.stop}{detail}"
    )


def _workers_heading(workers: WorkersSummary) -> str:
    return (
        f"worker service {workers.service} ({' '.join(workers.command)}), one process per "
        f"version, stopped with SIGTERM at the end ({workers.stop_timeout_seconds:g} s to "
        f"finish): jobs failed: {workers.jobs_failed}"
    )


def _workers_lines(workers: WorkersSummary) -> list[str]:
    lines = ["", f"Workers: {_workers_heading(workers)}"]
    if not workers.processes:
        lines.append("  no worker process ran")
    for process in workers.processes:
        lines.append(f"  {_worker_sentence(process)}")
        lines += [f"    {count:>5} x {error}" for error, count in process.errors]
    return lines


def _writes_lines(writes: WriteSummary, failed: int) -> list[str]:
    if writes.not_run:
        return [f"Model writes: none ({writes.not_run})"]
    by_version = ", ".join(f"{count} by {name}" for name, count in writes.operations.items())
    lines = [
        f"Model writes: {writes.total} create/update/read/delete operations "
        f"({by_version or 'no probe ran'}) on "
        f"{', '.join(writes.models) or 'no model'}; failed: {failed}"
    ]
    lines += [f"  not probed: {model}: {why}" for model, why in writes.skipped.items()]
    lines += [f"  {problem.splitlines()[0]}" for problem in writes.problems]
    return lines


def _verdict(report: RehearsalReport) -> str:
    problems = report.writes.problems if report.writes else ()
    recovered = report.outage is None or report.outage.recovered
    workers = report.workers
    return (
        verdict(
            report.result,
            report.failed_requests,
            problems,
            where="above",
            replaced=report.replicas_replaced,
            recovered=recovered,
            jobs_failed=report.jobs_failed,
            old_worker_failed=workers.old_jobs_failed_since_new if workers else 0,
        )
        + "."
    )


def verdict(
    result: Result,
    failed: int,
    write_problems: Sequence[str],
    *,
    where: str,
    replaced: int = 0,
    recovered: bool = True,
    jobs_failed: int = 0,
    old_worker_failed: int = 0,
) -> str:
    """What the result means, in a sentence (no full stop): what a refusal's failures were,
    what failed besides requests (replicas replaced, a fleet not ready after an outage, jobs
    the workers failed, with the hint when the old version's worker failed jobs once the new
    version ran), and a warning when the model writes the release put at risk went unprobed,
    so that 0 orm failures proves nothing."""
    text = VERDICTS[result]
    if result == "failed":
        reasons = [
            *([VERDICTS["failed"]] if failed else []),
            *([f"{VERDICTS['replaced']} ({replaced})"] if replaced else []),
            *([VERDICTS["not_ready"]] if not recovered else []),
            *([f"{VERDICTS['jobs']} ({jobs_failed})"] if jobs_failed else []),
            *([WORKER_HINT] if old_worker_failed else []),
        ]
        text = "; ".join(reasons) or text
    if result == "refused" and failed:
        text += f"; the {failed} failure{'s' * (failed > 1)} {where} came from it alone"
    if write_problems:
        text += "; but the model writes were not all probed (see Model writes)"
    return text


def _cell(value: float | None) -> str:
    return f"{'-':>7}" if value is None else f"{value:7.1f}"


def render_markdown(document: Mapping[str, Any]) -> str:
    """The `--json` document (`report_json`) as a pull-request comment. Its first line is the
    marker by which plan-comment.yml posts it, and updates it on the next push."""
    result: Result = document["result"]
    failures: Mapping[str, int] = document["failures"]
    writes = document.get("writes") or {}
    outage = document.get("database_outage")
    workers = document.get("workers")
    meaning = verdict(
        result,
        sum(failures.values()),
        writes.get("problems") or (),
        where="below",
        replaced=document.get("replicas_replaced") or 0,
        recovered=outage is None or outage["ready_after_seconds"] is not None,
        jobs_failed=workers["jobs_failed"] if workers else 0,
        old_worker_failed=sum(
            process["jobs_failed_since_new_version"]
            for process in (workers or {}).get("processes", [])
            if process["side"] == "old"
        ),
    )
    # Only the markdown needs the plan diff's renderer (and the recorder it imports).
    from pulumi_django.cli.plan_diff import MARKER

    failed = sum(failures.get(kind, 0) for kind in REQUEST_FAILURE_KINDS)
    lines = [
        MARKER.format(stack=MARKDOWN_MARKER),
        f"### pulumi-django rehearse: {result.upper()}, {_code(document['previous'])} -> "
        f"{_code(document['release'])}",
        "",
        f"**{meaning[0].upper()}{meaning[1:]}.**",
        "",
        f"{document['replicas']} {document['server']} replicas behind {document['proxy']}, "
        f"{document['rate']:g} requests/s; rollout {document['rollout_seconds']:.1f} s.",
        "",
        "#### Release steps",
        "",
        "| step | status | seconds | detail |",
        "|---|---|--:|---|",
    ]
    lines += [
        f"| {_markdown_cell(step['title'])} | {step['status']} | {step['seconds']:.1f} "
        f"| {_markdown_cell(step['detail'])} |"
        for step in document["steps"]
    ]
    lines += [
        "",
        f"#### Requests: {document['requests']}, failed: {failed}",
        "",
        "| failure | requests |",
        "|---|--:|",
    ]
    lines += [
        f"| {FAILURE_LABELS[kind]} | {failures.get(kind, 0)} |" for kind in REQUEST_FAILURE_KINDS
    ]
    if document["failure_examples"]:
        lines += ["", "| requests | failure | example | when |", "|--:|---|---|---|"]
        lines += [
            f"| {example['count']} | {FAILURE_LABELS.get(example['kind'], example['kind'])} "
            f"| {_markdown_cell(example['what'])} | {_phase_list(example.get('phases', []))} |"
            for example in document["failure_examples"]
        ]
    if document["excluded_paths"]:
        paths = ", ".join(_code(path) for path in document["excluded_paths"])
        lines += ["", f"{EXCLUDED_LABEL}: {paths}"]
    pages = document.get("pages") or []
    if pages:
        lines += ["", f"Pages viewed ({len(pages)}): {', '.join(_code(page) for page in pages)}"]
    if writes:
        lines += ["", "#### Model writes", "", *_markdown_writes(writes, failures.get("orm", 0))]
    if outage:
        lines += ["", "#### Database outage", "", *_markdown_outage(outage)]
    health = document.get("health_checks")
    if health:
        lines += ["", "#### Health checks", "", *_markdown_health(health)]
    if workers:
        lines += ["", "#### Workers", "", *_markdown_workers(workers)]
    lines += [
        "",
        "#### Latency (ms)",
        "",
        "| | requests | p50 | p99 |",
        "|---|--:|--:|--:|",
    ]
    for phase, latency in document["latency_ms"].items():
        lines.append(
            f"| {PHASE_LABELS.get(phase, phase)} | {document['requests_by_phase'][phase]} "
            f"| {_milliseconds(latency['p50'])} | {_milliseconds(latency['p99'])} |"
        )
    return "\n".join(lines) + "\n"


def _markdown_outage(outage: Mapping[str, Any]) -> list[str]:
    summary = OutageSummary(
        seconds=outage["seconds"],
        down_seconds=outage["down_seconds"],
        requests=outage["requests"],
        failures=outage["failures"],
        served=outage["served"],
        failed=outage["failed"],
        last_failure=outage["last_failure_after_seconds"],
        first_success=outage.get("answered_again_after_seconds"),
        ready_after=outage["ready_after_seconds"],
        reconnect_window=outage["reconnect_window_seconds"],
    )
    first, *rest = _outage_sentences(summary)
    return [f"{_markdown_cell(first)}.", "", *(f"- {_markdown_cell(line)}" for line in rest)]


def _markdown_health(health: Mapping[str, Any]) -> list[str]:
    replacements = health["replacements"]
    lines = [
        f"On {_code(health['path'])}, as ECS runs them (grace period "
        f"{health['grace_period_seconds']:g} s): **{len(replacements)} replicas replaced**.",
        "",
        *(f"- {_markdown_cell(check)}" for check in health["checks"]),
    ]
    lines += [
        f"- replaced: port {replacement['port']} ({_code(replacement['version'])}): "
        f"{_markdown_cell(replacement['reason'])}"
        for replacement in replacements
    ]
    return lines


def _markdown_workers(workers: Mapping[str, Any]) -> list[str]:
    lines = [
        f"Worker service {_code(workers['service'])} ({_code(' '.join(workers['command']))}), "
        "one process per version, stopped with SIGTERM at the end "
        f"({workers['stop_timeout_seconds']:g} s to finish): "
        f"**{workers['jobs_failed']} jobs failed**.",
    ]
    if workers["processes"]:
        lines += ["", "| version | worker | jobs failed | how it ended |", "|---|---|--:|---|"]
    for process in workers["processes"]:
        ended = process["stop"] + (f": {process['detail']}" if process["detail"] else "")
        lines.append(
            f"| {_code(process['version'])} | {process['side']} | {process['jobs_failed']} "
            f"| {_markdown_cell(ended)} |"
        )
    errors = [(process, error) for process in workers["processes"] for error in process["errors"]]
    if errors:
        lines.append("")
    lines += [
        f"- {_code(process['version'])}: {error['count']} x {_markdown_cell(error['error'])}"
        for process, error in errors
    ]
    return lines


def _markdown_writes(writes: Mapping[str, Any], failed: int) -> list[str]:
    """The write probe's section of the comment: whether it ran, what it wrote from which
    version, what it could not write and why."""
    if writes.get("not_run"):
        return [f"None: {_markdown_cell(writes['not_run'])}."]
    by_version = ", ".join(
        f"{count} by {_code(name)}" for name, count in writes["operations_by_version"].items()
    )
    models = ", ".join(_code(model) for model in writes["models"]) or "no model"
    lines = [
        f"{writes['operations']} create/update/read/delete operations "
        f"({by_version or 'no probe ran'}) "
        f"on {models}; failed: {failed}."
    ]
    lines += [
        f"- not probed: {_code(model)}: {_markdown_cell(why)}"
        for model, why in writes["skipped"].items()
    ]
    lines += [
        f"- {_markdown_cell(problem.splitlines()[0])}" for problem in writes.get("problems") or ()
    ]
    return lines


def _markdown_cell(text: str) -> str:
    """On one line, markdown's special characters escaped: a detail such as `<module>` or
    `a | b` stays text, in its own column."""
    from pulumi_django.cli.plan_diff import escape_markdown

    return escape_markdown(" ".join(text.split()))


def _code(text: str) -> str:
    return "`" + text.replace("`", "'") + "`"


def _milliseconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
