"""The release rehearsal: a real rolling release on this machine, under a steady load.

A throwaway PostgreSQL and Redis, N replicas of the app's current version under the real app
server, and the real proxy in front of them, all on loopback with the stack's settings. Then the
release is applied step by step in `Step` order, each step by its handler here (keyed by the
same `Step`s whose resources the stack wires as resource dependencies), while
virtual users view the app's pages, post its forms (`rehearsal.*` in the stack config) and probe
the health check. What they saw becomes the report. Meanwhile the fleet's health checks run on
every replica in service as ECS runs them, replacing the replicas ECS would replace
(`supervisor.py`); `--database-outage` stops PostgreSQL for a while before the release. When the
stack has workers, one worker process of each version runs its jobs (`workers.py`).

What does not wait for anything before it runs beside it: both versions are built while
PostgreSQL starts, a version's replicas start side by side, the old version's write probe and
the new one's get ready (held: they write only once released) beside the migration check and
the first new replica, and an old replica stops while the next new one starts. The app's
interpreters keep their bytecode in pulumi-django's cache (as the migration check's do), so that
only the first rehearsal compiles the libraries.

Everything started is stopped and every directory removed on the way out, also on Ctrl-C.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import itertools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from pulumi_django.caches import bytecode_cache
from pulumi_django.cli.rehearsal.app_servers import python_shim, running_app_server
from pulumi_django.cli.rehearsal.crawl import discover_pages
from pulumi_django.cli.rehearsal.load import Sample, Site, parse_page, running_load
from pulumi_django.cli.rehearsal.proxies import ProxyServer, RunningProxy, running_proxy
from pulumi_django.cli.rehearsal.report import (
    RECONNECT_WINDOW_SECONDS,
    HealthChecks,
    Outage,
    RehearsalReport,
    Replacement,
    StepReport,
    StepStatus,
    Timeline,
    WriteSummary,
    build_report,
)
from pulumi_django.cli.rehearsal.rollout import RolloutLimits
from pulumi_django.cli.rehearsal.servers import (
    LOOPBACK,
    Postgres,
    ServerError,
    free_port,
    log_tail,
    postgres,
    redis,
    run_in_group,
)
from pulumi_django.cli.rehearsal.sources import VersionSource, export_source
from pulumi_django.cli.rehearsal.supervisor import Supervisor, fleet_health
from pulumi_django.cli.rehearsal.workers import (
    NEW_VERSION,
    OUTAGE_END,
    OUTAGE_START,
    Side,
    WorkerProcess,
    WorkersSummary,
)
from pulumi_django.cli.rehearsal.write_probe import (
    WriteProbe,
    WriteProbeError,
    migrating_apps,
    start_write_probe,
)
from pulumi_django.config import StackConfig
from pulumi_django.errors import PulumiDjangoError, UsageError
from pulumi_django.release_steps import Step
from pulumi_django.rendering.app_server import app_environment_defaults, app_server_settings
from pulumi_django.rendering.media import local_media_environment
from pulumi_django.rendering.proxy import (
    SERVED_BY_HEADER,
    ProxySite,
    rehearsal_site,
    static_url_prefix,
)

# The user's own app settings never leak into the throwaway site.
APP_VARIABLE_PREFIXES = ("DJANGO_", "DATABASE_", "REDIS_", "STATIC_", "MEDIA_")
# The load balancer's health check on a starting replica, sped up: the stack's thresholds, a
# much shorter interval (a poll, not the stack's timing: the fleet's own checks run as the stack
# says, `supervisor.py`).
HEALTH_INTERVAL_SECONDS = 0.2
PROBE_TIMEOUT_SECONDS = 5.0
START_TIMEOUT_SECONDS = 60.0
DRAIN_POLL_SECONDS = 0.05
MIN_REQUESTS_POLL_SECONDS = 0.1
# Each Caddy reload opens a new listening socket (SO_REUSEPORT) and closes the old one, and
# ends idle keep-alive connections. Reloads back to back under load reset a few new
# connections (measured at 100 requests/s: one in 20 reloads with no gap; none in 80 with
# gaps of 0.5-1 s). An nginx reload returns once its old workers stopped accepting
# (`proxies.py`): no run behind nginx lost a request without a gap, so it waits for none.
RELOAD_GAP_SECONDS: dict[str, float] = {"caddy": 1.0, "nginx": 0.0}
BUILD_TIMEOUT_SECONDS = 300.0
DATABASE_NAME = "rehearsal"
# collectstatic's map of each file to its hashed name (ManifestStaticFilesStorage).
STATIC_MANIFEST = "staticfiles.json"
PAGES_PER_REPLICA = 3
CRAWL_PAGES_SHOWN = 10
TCP_ESTABLISHED = "01"
# After a database outage: how often every replica's readiness path is asked, and for how long,
# until they all answer 200 again.
READY_POLL_SECONDS = 0.1
READY_TIMEOUT_SECONDS = 60.0
# Readiness requests per app server worker before the outage (side by side, so that each
# worker process answers some).
WARM_UP_ASKS = 4
# A replacement that did not become healthy is stopped, and the next one started after this.
REPLACEMENT_RETRY_SECONDS = 5.0
# Threads for what runs beside the rehearsal's main line: the release's build, write probes
# getting ready, old replicas stopping.
BACKGROUND_THREADS = 4


class ReleaseStepError(PulumiDjangoError):
    """A release step could not be carried out; the release halts there."""


@dataclass(frozen=True)
class RehearsalOptions:
    app_dir: Path
    previous: VersionSource  # what runs before the release (`--from`)
    release: VersionSource  # what is released over it (`--to`)
    config: StackConfig
    proxy: ProxyServer
    replicas: int = 3
    rate: float = 50.0
    skip_check: bool = False
    before_seconds: float = 5.0
    after_seconds: float = 5.0
    # The load goes on after the release until at least this many requests were sent.
    min_requests: int = 0
    # PostgreSQL is stopped this long during the load, before the release (0: no outage).
    database_outage_seconds: float = 0.0


@dataclass(frozen=True)
class Version:
    """One version of the app: its files (the image's /app) and its collected static files.
    `name` is what people read (`main@1a2b3c4d`); `release_id` names its static release and
    its directories (`1a2b3c4d`)."""

    name: str
    release_id: str
    directory: Path
    static_root: Path


@dataclass(eq=False)
class Replica:
    version: Version
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    lifetime: contextlib.ExitStack
    started: float = field(default_factory=time.monotonic)
    # Deployed before the load: it stands for a fleet that has served for a while, whose
    # health checks' start period and grace period are over.
    settled: bool = False
    stop_lock: threading.Lock = field(default_factory=threading.Lock)

    def stop(self) -> None:
        """Graceful (SIGTERM): requests in flight finish. Stopping twice does nothing; a stop
        while another thread stops it returns once it is stopped."""
        with self.stop_lock:
            self.lifetime.close()


@dataclass(frozen=True)
class StepOutcome:
    status: StepStatus
    detail: str


def established_connections(port: int) -> int:
    """TCP connections that loopback:`port` accepted and that are still open (from /proc)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state = fields[1], fields[3]
                if state == TCP_ESTABLISHED and int(local.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


def fetch(port: int, path: str) -> tuple[int, str] | None:
    """One GET to loopback:`port` on a connection of its own: (status, body), or None when
    nothing answered. Health checks go to replicas this way, as the load balancer sends them."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=PROBE_TIMEOUT_SECONDS)
    try:
        connection.request("GET", path, headers={"Host": f"{LOOPBACK}:{port}"})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace").strip()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


class Rehearsal:
    """The throwaway site and the release steps carried out on it."""

    def __init__(
        self,
        options: RehearsalOptions,
        resources: contextlib.ExitStack,
        root: Path,
        progress: Callable[[str], None],
    ) -> None:
        self.options = options
        self.config = options.config
        self.resources = resources
        self.root = root
        # The bytecode the app's interpreters compile for the files of this rehearsal's
        # versions is removed with them (the libraries' stays in the cache).
        self.bytecode = bytecode_cache()
        resources.callback(_remove_mirror, self.bytecode, root)
        # What runs beside the main line; every task of it ends before anything is stopped.
        self.background = concurrent.futures.ThreadPoolExecutor(
            BACKGROUND_THREADS, thread_name_prefix="rehearsal"
        )
        resources.callback(self.background.shutdown)
        # The release's build, started beside the current version's deploy (`step_image`).
        self.release_build: concurrent.futures.Future[Version] | None = None
        # The migrated apps and the old version's write probe, made ready beside the migration
        # check (`step_migrate`).
        self.old_writes: concurrent.futures.Future[PreparedWrites] | None = None
        # The app's interpreter (`django:app.python`): its servers, and `python` on its PATH.
        self.python = options.config.app.python or sys.executable
        self.python_bin = python_shim(root / "bin", self.python)
        self.progress = progress
        self.bucket = root / "bucket"
        # MEDIA_ROOT of every replica of every version (uploads outlive releases), served by
        # the proxy under media.urlPath as on local Docker.
        self.media = root / "media"
        self.proxy_port = free_port()
        self.secret_key = secrets.token_urlsafe(40)
        self.database_url = ""
        self.redis_url = ""
        self.proxy: RunningProxy | None = None
        self.serving: list[Replica] = []
        self.replicas: list[Replica] = []  # every replica started
        self.last_reload = 0.0
        self.current: Version | None = None
        # The crawl's seeds until the crawl found the pages.
        self.page_paths: tuple[str, ...] = self.seeds
        self.write_probes: dict[str, WriteProbe] = {}  # by release id (names can repeat)
        self.migrated_apps: list[str] = []  # the apps whose migrations the release applies
        # Why no version's writes were probed, when the release gave none to probe.
        self.writes_not_run = "the release stopped before the migration job"
        # What kept a probe from covering writes the release put at risk.
        self.write_problems: list[str] = []
        self.new: Version | None = None
        self.database: Postgres | None = None
        # Held while the replicas in service change: by the rollout, a replacement, a reload.
        self.fleet_lock = threading.RLock()
        self.health = fleet_health(self.config)
        self.supervisor: Supervisor[Replica] | None = None
        self.replacements: list[Replacement] = []
        self.replica_numbers = itertools.count(1)
        # Replicas started side by side, which `stop_replicas` waits for.
        self.starting: list[concurrent.futures.Future[Replica]] = []
        # One worker process per version, when the stack has workers: the first service's.
        self.workers: list[WorkerProcess] = []

    # ------------------------------------------------------------ the site before the release

    def deploy_current(self) -> None:
        """PostgreSQL, Redis, the current version migrated with its static files published,
        its replicas healthy behind the proxy. Both versions are built meanwhile (neither
        build needs a database)."""
        building = self.background.submit(self.build, self.options.previous, 0)
        self.prepare_release()
        self.database = database = self.resources.enter_context(postgres())
        cache = self.resources.enter_context(redis())
        self.database_url = database.create_database(DATABASE_NAME)
        self.redis_url = cache.url()
        self.progress(f"PostgreSQL on {LOOPBACK}:{database.port}, Redis on {LOOPBACK}:{cache.port}")
        current = building.result()
        self.bucket.mkdir()
        self.media.mkdir()
        self.publish_static(current)
        self.migrate(current)
        # Stopped after the proxy (entered later, so it stops first and closes its
        # keep-alive connections, which would otherwise hold up every replica's stop).
        self.resources.callback(self.stop_replicas)
        starting = self.start_replicas(current, self.options.replicas)
        self.start_worker(current, "old")
        waited = self.wait_all_healthy(starting, since=time.monotonic())
        for replica, (problem, _seconds) in zip(starting, waited, strict=True):
            if problem:
                raise ReleaseStepError(
                    f"the current version {current.name} is not healthy, so there is nothing to "
                    f"release over: {problem}\n{log_tail(replica.log)}"
                )
            replica.settled = True
            self.serving.append(replica)
        ports = ", ".join(str(replica.port) for replica in self.serving)
        self.progress(f"{current.name} healthy on ports {ports}")
        self.current = current
        self.proxy = self.resources.enter_context(
            running_proxy(self.options.proxy, self.site(self.serving))
        )
        self.progress(
            f"{self.options.proxy} on {self.proxy.url()} in front of "
            f"{len(self.serving)} {self.config.app.server} replicas of {current.name}"
        )
        self.supervise()

    def supervise(self) -> None:
        """The fleet's health checks on every replica in service, from now on (stopped before
        the proxy and the replicas are)."""
        self.supervisor = Supervisor(
            self.health,
            in_service=lambda: list(self.serving),
            replace=self.replace_unhealthy,
        )
        self.supervisor.start()
        self.resources.callback(self.supervisor.stop)
        checks = "; ".join(check.describe() for check in self.health.checks)
        self.progress(
            f"health checks as ECS runs them, on {self.health.path}: {checks}; grace period "
            f"{self.health.grace_period_seconds:g} s for a replica started from now on"
        )

    @property
    def seeds(self) -> tuple[str, ...]:
        """Where the crawl starts: `/` and the stack's `rehearsal.paths`."""
        return ("/", *self.config.rehearsal.paths)

    def discover_pages(self) -> None:
        """The pages the load views: `/`, `rehearsal.paths` and the same-site pages they link
        to, found once on the current version through the proxy (rehearsal/crawl.py)."""
        rehearsal = self.config.rehearsal
        skip = [static_url_prefix(self.config.static), self.config.app.health_check_path]
        if self.config.media.enabled:
            skip.append(self.config.media.url_path)
        found = discover_pages(
            LOOPBACK,
            self.proxy_port,
            self.seeds,
            depth=rehearsal.crawl_depth,
            max_pages=rehearsal.max_pages,
            skip_prefixes=skip,
        )
        self.page_paths = found.pages
        for path, why in (*found.errors, *found.skipped):
            if path in self.seeds and path not in found.pages:
                self.progress(f"crawl: {path} is not viewed ({why})")
        shown = ", ".join(found.pages[:CRAWL_PAGES_SHOWN]) or "none"
        more = f" and {len(found.pages) - CRAWL_PAGES_SHOWN} more" * (
            len(found.pages) > CRAWL_PAGES_SHOWN
        )
        self.progress(
            f"crawl (depth {rehearsal.crawl_depth}, at most {rehearsal.max_pages} pages): "
            f"{len(found.pages)} pages to view: {shown}{more}; {len(found.skipped)} links not "
            f"followed, {len(found.errors)} that did not answer a page"
        )

    def load_site(self) -> Site:
        return Site(
            host=LOOPBACK,
            port=self.proxy_port,
            static_prefix=static_url_prefix(self.config.static),
            page_paths=self.page_paths,
            forms=tuple(self.config.rehearsal.forms),
            health_path=self.config.app.health_check_path,
            served_by_header=SERVED_BY_HEADER,
        )

    def with_serving_versions(self, samples: Sequence[Sample]) -> list[Sample]:
        """The samples, each with the name of the version whose replica answered it, when the
        load saw one. The proxy names the replica's address; nginx names each it tried (`A, B`
        when it passed the request on), the last one answered."""
        versions = {f"{LOOPBACK}:{replica.port}": replica.version.name for replica in self.replicas}
        named = []
        for sample in samples:
            answered = sample.version.rsplit(",", 1)[-1].strip()
            named.append(
                replace(sample, version=versions[answered]) if answered in versions else sample
            )
        return named

    def site(self, replicas: list[Replica]) -> ProxySite:
        return rehearsal_site(
            proxy=self.config.proxy,
            app=self.config.app,
            load_balancer=self.config.load_balancer,
            static=self.config.static,
            media=self.config.media,
            listen_port=self.proxy_port,
            upstream_ports=[replica.port for replica in replicas],
            static_dir=str(self.bucket / self.config.static.prefix),
            media_dir=str(self.media),
            runtime_dir=str(self.root / "proxy"),
        )

    # ------------------------------------------------------------ the release steps

    def release(self) -> list[StepReport]:
        """Every release step in the stack's order, until one stops the release."""
        reports = []
        for step in Step:
            handler = STEP_HANDLERS[step]
            self.progress(f"[{step}] {step.heading}")
            started = time.monotonic()
            try:
                outcome = handler(self)
            except (ReleaseStepError, ServerError) as error:  # ServerError: a proxy reload
                outcome = StepOutcome("halted", str(error).splitlines()[0])
                self.progress(f"[{step}] halted: {error}")
            seconds = time.monotonic() - started
            reports.append(StepReport(step, step.heading, outcome.status, seconds, outcome.detail))
            self.progress(f"[{step}] {outcome.status} in {seconds:.1f} s: {outcome.detail}")
            if outcome.status in ("refused", "halted"):
                break
        return reports

    def step_image(self) -> StepOutcome:
        """The new version's files and its collected static files, as the image build does
        (started beside the current version's deploy: a release's image is built before
        anything changes too)."""
        self.new = self.prepare_release().result()
        files = sum(1 for path in self.new.static_root.rglob("*") if path.is_file())
        label = self.options.release.label
        return StepOutcome("ok", f"{label} built, collectstatic wrote {files} files")

    def step_static(self) -> StepOutcome:
        return StepOutcome("ok", self.publish_static(self._new()))

    def step_check(self) -> StepOutcome:
        """The stack's migration check: the analyzer in the new version, against the database."""
        from pulumi_django.migration_check import acknowledgement_reasons
        from pulumi_django.providers.migration_check import (
            MigrationCheckFailed,
            check_command,
            judge_check,
        )

        if self.options.skip_check:
            return StepOutcome("skipped", "--skip-check: migrations are applied unchecked")
        if not self.config.migrations.check:
            return StepOutcome("skipped", "migrations.check is off in the stack config")
        version = self._new()
        self.prepare_old_writes(version)
        completed = self.run(
            "the migration check",
            check_command(self.config.app.settings_module),
            version,
            timeout=self.config.migrations.timeout_seconds,
        )
        lines = [*completed.stdout.splitlines(), *completed.stderr.splitlines()]
        acknowledged = acknowledgement_reasons(self.config.migrations.acknowledged)
        try:
            result = judge_check(lines, completed.returncode, acknowledged, "the check's output")
        except MigrationCheckFailed as error:
            if not error.refused:  # it could not run at all
                raise ReleaseStepError(str(error)) from None
            self.progress(str(error))
            refused = ", ".join(error.refused)
            return StepOutcome("refused", f"refused {refused}; nothing was migrated")
        checked = ", ".join(result.checked) or "no migration to apply"
        return StepOutcome("ok", f"checked {checked}")

    def step_migrate(self) -> StepOutcome:
        """The migration job, with the old version's write probe started just before it, on
        the old schema: it keeps writing through the migration and the rollout, as the old
        replicas do. (The new version's starts with its first replica: `step_fleet`.)"""
        version = self._new()
        prepared = self.prepare_old_writes(version).result()
        if prepared.listing_problem is not None:
            self.write_problems.append(
                f"the migrations to apply could not be listed: {prepared.listing_problem}"
            )
            self.progress(f"write probe: {self.write_problems[-1]}")
        elif not prepared.apps:
            self.writes_not_run = "the release applies no migration"
        self.migrated_apps = prepared.apps
        if prepared.probe is not None and self.current is not None:
            self.release_write_probe(self.current, prepared.probe)
        return StepOutcome("ok", self.migrate(version))

    def step_fleet(self) -> StepOutcome:
        """The replicas replaced in the batches ECS's rolling update makes of the stack's
        `fleet.rollingUpdate` (`rollout.RolloutLimits`; with the defaults, every new replica at
        once): old ones stopped first where there is no room, new ones started side by side,
        each waited for until healthy and added to the proxy, then as many old ones taken out,
        drained and stopped gracefully. A replacement of an unhealthy replica waits until the
        rollout is over (and finds its replica gone)."""
        with self.fleet_lock:
            return self._roll_fleet()

    def _roll_fleet(self) -> StepOutcome:
        version = self._new()
        old_left = list(self.serving)
        total = len(old_left)
        rolling = self.config.fleet.rolling_update
        limits = RolloutLimits(total, rolling.minimum_healthy_percent, rolling.maximum_percent)
        at_desired_count = replace(limits, desired=self.config.fleet.desired_count)
        if at_desired_count.stuck:
            return self._halt(1, total, f"could not start: {at_desired_count.why_stuck()}")
        # Old replicas stop (gracefully) while the next batch starts.
        stops: list[concurrent.futures.Future[None]] = []
        probe: HeldProbe | None = None
        started = 0
        while started < total:
            batch = limits.rehearsal_batch(len(self.serving), len(old_left), total - started)
            stops += self._retire(old_left[: batch.stop_first], "to make room")
            del old_left[: batch.stop_first]
            batch_started = time.monotonic()
            starting = self.begin_replicas(version, batch.start)
            new = [future.result() for future in starting if not future.exception()]
            failed = next((n for n, future in enumerate(starting) if future.exception()), None)
            if failed is not None:
                for replica in new:
                    replica.stop()
                error = starting[failed].exception()
                if not isinstance(error, ServerError | OSError):
                    starting[failed].result()  # raises it: not a server that failed to start
                return self._halt(started + failed + 1, total, f"did not start: {error}")
            if not started:  # the new version's worker starts with its first replicas
                self.start_worker(version, "new")
                if self.migrated_apps:  # and its probe gets ready meanwhile, held
                    probe = self.prepare_write_probe(version, self.migrated_apps)
            problems, waits = zip(*self.wait_all_healthy(new, since=batch_started), strict=True)
            failed = next((n for n, problem in enumerate(problems) if problem), None)
            if failed is not None:
                for replica in new:
                    replica.stop()
                if probe is not None:  # its version never serves
                    probe.abandon.set()
                return self._halt(
                    started + failed + 1, total, f"never became healthy: {problems[failed]}"
                )
            if probe is not None:  # it is about to serve: so it writes
                self.release_write_probe(version, probe)
                probe = None
            if not started:  # from now on the new version enqueues jobs
                self.mark_workers(NEW_VERSION)
            self.serving += new
            self.set_upstreams(self.serving)
            for number, (replica, waited) in enumerate(zip(new, waits, strict=True), started + 1):
                self.progress(
                    f"replica {number}/{total}: {version.name} on port {replica.port} healthy "
                    f"after {waited:.1f} s and added"
                )
            started += len(new)
            surplus = limits.surplus(len(self.serving))
            stops += self._retire(old_left[:surplus], "replaced")
            del old_left[:surplus]
        for stopping in stops:
            stopping.result()
        if self.current is not None:  # its last replica is gone: so is its probe
            self.stop_write_probe(self.current)
        return StepOutcome("ok", f"{total} replicas replaced, {limits.description()}, none failed")

    def _retire(self, old: list[Replica], why: str) -> list[concurrent.futures.Future[None]]:
        """Takes old replicas out of the proxy, waits until each drained, and stops them in the
        background."""
        if not old:
            return []
        for replica in old:
            self.serving.remove(replica)
        self.set_upstreams(self.serving)
        with concurrent.futures.ThreadPoolExecutor(len(old)) as pool:
            drained = list(pool.map(self.drain, old))
        return [
            self.background.submit(
                self._stop_replica,
                replica,
                f"{replica.version.name} on port {replica.port} {why}: removed, drained in "
                f"{seconds:.1f} s, stopped",
            )
            for replica, seconds in zip(old, drained, strict=True)
        ]

    def _stop_replica(self, replica: Replica, done: str) -> None:
        replica.stop()
        self.progress(done)

    def step_proxy(self) -> StepOutcome:
        """The proxy switched to exactly the new fleet: one more reload with that replica set,
        then the health path answers through the proxy and every page the load views (in
        turn) references only the new version's static files."""
        version = self._new()
        with self.fleet_lock:
            self.set_upstreams(self.serving)
        if self.proxy is None or fetch(self.proxy_port, self.config.app.health_check_path) is None:
            raise ReleaseStepError("the proxy does not answer its health path after the switch")
        manifest = json.loads((version.static_root / STATIC_MANIFEST).read_text())
        static_prefix = static_url_prefix(self.config.static)
        new_assets = {static_prefix + name for name in manifest["paths"].values()}
        paths = self.load_site().page_paths
        if not paths:
            return StepOutcome("ok", "the health path answers through the proxy; no page to view")
        pages = len(self.serving) * PAGES_PER_REPLICA
        with_static = 0
        for number in range(pages):
            path = paths[number % len(paths)]
            answer = fetch(self.proxy_port, path)
            # A 404 is a page the app does not have (a stock project has no `/`); a replica
            # rendered it all the same. Whether it is a failure is the load's to say.
            if answer is None or answer[0] not in (200, 404):
                raise ReleaseStepError(f"the page {path} through the proxy answered {answer}")
            static = {a for a in parse_page(answer[1]).assets if a.startswith(static_prefix)}
            foreign = static - new_assets
            if foreign:
                raise ReleaseStepError(
                    f"the proxy still serves pages of another version (they use "
                    f"{', '.join(sorted(foreign))}, not {version.name}'s static files)"
                )
            with_static += bool(static)
        if not with_static:
            return StepOutcome(
                "ok",
                f"{pages} pages through the proxy answered; none references a static file "
                "that tells the versions apart",
            )
        return StepOutcome(
            "ok", f"{pages} pages through the proxy all came from {version.name}'s replicas"
        )

    def _halt(self, number: int, total: int, problem: str) -> StepOutcome:
        names = sorted({replica.version.name for replica in self.serving})
        return StepOutcome(
            "halted",
            f"new replica {number} of {total} {problem}; "
            f"{len(self.serving)} replicas of {', '.join(names)} kept serving",
        )

    def _new(self) -> Version:
        if self.new is None:
            raise ReleaseStepError("the image step has not built the new version")
        return self.new

    # ------------------------------------------------------------ building blocks

    def prepare_release(self) -> concurrent.futures.Future[Version]:
        """The release's build, started (once) in the background."""
        if self.release_build is None:
            self.release_build = self.background.submit(self.build, self.options.release, 1)
        return self.release_build

    def build(self, source: VersionSource, number: int) -> Version:
        """The version's files as its image's build context holds them, and `collectstatic`
        into its STATIC_ROOT, with no secret and no database, as the Dockerfile does at build
        time. STATIC_ROOT is outside the files: a `staticfiles/` left in a working tree is
        never taken for the version's. `number` tells its directories from the other's."""
        name = f"{number}-{source.release_name}"
        try:
            directory = export_source(self.options.app_dir, source, self.root / "versions" / name)
        except UsageError as error:
            raise ReleaseStepError(str(error)) from None
        version = Version(source.label, source.release_name, directory, self.root / "static" / name)
        completed = self.run(
            f"collectstatic of {source.label}",
            ["python", "manage.py", "collectstatic", "--noinput"],
            version,
            timeout=BUILD_TIMEOUT_SECONDS,
            with_services=False,
        )
        if completed.returncode != 0:
            raise ReleaseStepError(
                f"collectstatic of {source.label} failed (exit status {completed.returncode}):\n"
                f"{completed.stdout}{completed.stderr}".rstrip()
            )
        return version

    def prepare_old_writes(self, new: Version) -> concurrent.futures.Future[PreparedWrites]:
        """In the background (once): the apps whose migrations the release applies (the new
        version's plan on the database) and, when there are some, the current version's
        write probe over their models, held. Nothing is migrated meanwhile, so both stay
        true until the migration job; a release that stops before it discards the probe."""
        if self.old_writes is None:
            self.old_writes = self.background.submit(
                self._prepare_old_writes, new, self.current, self._held_probe()
            )
        return self.old_writes

    def _prepare_old_writes(
        self, new: Version, current: Version | None, probe: HeldProbe
    ) -> PreparedWrites:
        try:
            apps = migrating_apps(
                self.python,
                new.directory,
                self.environment(new),
                DATABASE_NAME,
                timeout=self.config.migrations.timeout_seconds,
            )
        except WriteProbeError as error:
            probe.future.cancel()
            return PreparedWrites([], str(error), None)
        if not apps or current is None:
            probe.future.cancel()
            return PreparedWrites(apps, None, None)
        self._make_ready(probe, current, apps)
        return PreparedWrites(apps, None, probe)

    def prepare_write_probe(self, version: Version, apps: list[str]) -> HeldProbe:
        """The version's write probe over the models of `apps`, started and warmed up in the
        background, held until `release_write_probe`; discarded at the end at the latest."""
        probe = self._held_probe()
        self.background.submit(self._make_ready, probe, version, apps)
        return probe

    def _held_probe(self) -> HeldProbe:
        """A probe to make ready, discarded at the end of the rehearsal at the latest."""
        probe = HeldProbe()
        self.resources.callback(probe.discard)
        return probe

    def _make_ready(self, probe: HeldProbe, version: Version, apps: list[str]) -> None:
        if not probe.future.set_running_or_notify_cancel():
            return  # discarded before it started
        log = self.root / "probes" / f"{version.release_id}.log"
        log.parent.mkdir(exist_ok=True)
        try:
            probe.future.set_result(
                start_write_probe(
                    python=self.python,
                    cwd=version.directory,
                    env=self.environment(version),
                    version=version.name,
                    apps=apps,
                    database_name=DATABASE_NAME,
                    log=log,
                    hold=True,
                    abandon=probe.abandon,
                )
            )
        except WriteProbeError as error:
            probe.future.set_exception(error)

    def release_write_probe(self, version: Version, prepared: HeldProbe) -> None:
        """The version's write probe writes from now on, until the version's last replica
        stops or the rehearsal ends. One that could not start is reported and the release
        goes on: the probe is a witness of the release, not a step of it."""
        try:
            probe = prepared.future.result()
        except WriteProbeError as error:  # its message names the probe and says why
            self.write_problems.append(str(error))
            self.progress(f"write probe: {error}")
            return
        probe.release()
        self.write_probes[version.release_id] = probe
        skipped = ", ".join(probe.skipped) or "none"
        self.progress(
            f"write probe of {version.name}: {len(probe.models)} models of "
            f"{', '.join(self.migrated_apps)}; "
            f"not probed: {skipped}"
        )

    def stop_write_probe(self, version: Version) -> None:
        probe = self.write_probes.get(version.release_id)
        if probe is not None:
            probe.stop()
            if probe.exited_early:
                self.progress(f"write probe of {version.name} {probe.exited_early}")

    def write_results(self) -> tuple[list[Sample], WriteSummary]:
        """Every probe's operations, each probe stopped, and what they add up to: a probe
        that wrote no model, or died before the end, is a problem the verdict names."""
        samples: list[Sample] = []
        operations: dict[str, int] = {}
        models: set[str] = set()
        skipped: dict[str, str] = {}
        problems = list(self.write_problems)
        probes = list(self.write_probes.values())
        with concurrent.futures.ThreadPoolExecutor(len(probes) or 1) as pool:
            stopped = list(pool.map(WriteProbe.stop, probes))  # side by side
        for probe, done in zip(probes, stopped, strict=True):
            samples += done
            operations[probe.version] = operations.get(probe.version, 0) + len(done)
            written = [model for model in probe.models if model not in probe.skipped]
            models.update(written)
            skipped.update(probe.skipped)
            if not written:
                problems.append(f"the write probe of {probe.version} could write no model")
            if probe.exited_early:
                problems.append(f"the write probe of {probe.version} {probe.exited_early}")
        not_run = "" if self.write_probes or problems else self.writes_not_run
        return samples, WriteSummary(
            operations, tuple(sorted(models)), skipped, not_run, tuple(problems)
        )

    def publish_static(self, version: Version) -> str:
        """The version's files next to the earlier ones in the local bucket, oldest pruned."""
        from pulumi_django.static_publish import DirectoryStorage, PublishError, publish

        try:
            result = publish(
                DirectoryStorage(self.bucket),
                version.static_root,
                version.release_id,
                prefix=self.config.static.prefix,
                keep=self.config.static.keep_releases,
            )
        except PublishError as error:
            raise ReleaseStepError(
                f"publishing {version.name}'s static files failed: {error}"
            ) from None
        kept = ", ".join(result.kept_releases)
        return f"{version.name}: {result.summary()}; releases published: {kept}"

    def migrate(self, version: Version) -> str:
        """The stack's migration command and release commands, in the version's files."""
        from pulumi_django.providers.release_commands import (
            applied_migrations,
            release_command,
            release_commands,
            what_failed,
        )

        migrations = self.config.migrations
        commands = release_commands(migrations.command, migrations.release_commands)
        completed = self.run(
            "the migration job",
            release_command(commands, migrations.timeout_seconds),
            version,
            timeout=migrations.timeout_seconds + PROBE_TIMEOUT_SECONDS,
        )
        if completed.returncode != 0:
            raise ReleaseStepError(
                f"{what_failed(commands, completed.returncode, migrations.timeout_seconds)}; "
                f"the fleet was not changed:\n{completed.stdout}{completed.stderr}".rstrip()
            )
        applied = applied_migrations(completed.stdout.splitlines())
        return f"applied {', '.join(applied)}" if applied else "no migration to apply"

    def environment(self, version: Version, *, with_services: bool = True) -> dict[str, str]:
        """What the version's container would get: the stack's plain variables, where its
        static files and uploads are, and (unless building) the secret key, database and
        cache."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(APP_VARIABLE_PREFIXES)}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # replicas start much faster with bytecode
        env.update(
            PATH=os.pathsep.join(
                [
                    str(self.python_bin),
                    str(Path(self.python).parent),
                    env.get("PATH", "/usr/bin:/bin"),
                ]
            ),
            PYTHONPYCACHEPREFIX=str(self.bytecode),
            PYTHONUNBUFFERED="1",
        )
        env.update(app_environment_defaults(self.config.app))
        env.update(self.config.app.environment)
        env.update(
            DJANGO_SETTINGS_MODULE=self.config.app.settings_module,
            STATIC_URL=static_url_prefix(self.config.static),
            STATIC_ROOT=str(version.static_root),
            DJANGO_HEALTH_CHECK_PATH=self.config.app.health_check_path,
            DJANGO_READINESS_PATH=self.config.app.readiness_path,
        )
        env.update(local_media_environment(self.config.media, str(self.media)))
        if with_services:
            env.update(
                DJANGO_SECRET_KEY=self.secret_key,
                DJANGO_ALLOWED_HOSTS=f"{LOOPBACK},localhost",
                DJANGO_CSRF_TRUSTED_ORIGINS=f"http://{LOOPBACK}:{self.proxy_port}",
                # Plain HTTP on loopback: a Secure cookie would never come back.
                DJANGO_SECURE_COOKIES="0",
                DATABASE_URL=self.database_url,
                REDIS_URL=self.redis_url,
            )
        return env

    def run(
        self,
        what: str,
        command: list[str],
        version: Version,
        *,
        timeout: float,
        with_services: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        """A one-off command in the version's directory, as a release task runs in its image;
        stopped with everything it started when it times out or the rehearsal is interrupted,
        as the task's container would be."""
        try:
            return run_in_group(
                command,
                cwd=version.directory,
                env=self.environment(version, with_services=with_services),
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            raise ReleaseStepError(f"{what} did not finish within {timeout:.0f} s") from None

    def start_replica(self, version: Version) -> Replica:
        """The version under the stack's app server on a new loopback port; stopped at the end
        of the rehearsal at the latest."""
        port = free_port()
        # Replacements start replicas from threads of their own: numbers are handed out.
        home = self.root / "replicas" / f"{next(self.replica_numbers)}-{version.release_id}"
        home.mkdir(parents=True)
        env = self.environment(version)
        env["XDG_RUNTIME_DIR"] = str(home)  # Gunicorn's control socket
        settings = app_server_settings(
            app=self.config.app,
            fleet=self.config.fleet,
            load_balancer=self.config.load_balancer,
            bind_host=LOOPBACK,
            port=port,
        )
        lifetime = contextlib.ExitStack()
        log = home / "server.log"
        try:
            process = lifetime.enter_context(
                running_app_server(
                    settings, log=log, cwd=version.directory, env=env, python=self.python
                )
            )
        except BaseException:
            lifetime.close()
            raise
        replica = Replica(version, port, process, log, lifetime)
        self.replicas.append(replica)
        return replica

    def start_replicas(self, version: Version, count: int) -> list[Replica]:
        """`count` replicas of the version, started side by side. When one does not start,
        those that did are stopped with the others at the end."""
        return [replica.result() for replica in self.begin_replicas(version, count)]

    def begin_replicas(
        self, version: Version, count: int
    ) -> list[concurrent.futures.Future[Replica]]:
        """`count` replicas of the version started side by side, each done or failed."""
        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            starting = [pool.submit(self.start_replica, version) for _ in range(count)]
            self.starting += starting
        return starting

    def stop_site(self) -> None:
        """The proxy, then every replica (stopped first, the proxy closes its keep-alive
        connections, which would otherwise hold up each replica's graceful stop)."""
        if self.proxy is not None:
            self.proxy.stop()
        self.stop_replicas()

    def stop_replicas(self) -> None:
        """Stops every replica still running, side by side (each stop is graceful), once
        those still starting (after Ctrl-C) have started."""
        concurrent.futures.wait(self.starting)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.replicas) or 1) as pool:
            for stopping in [pool.submit(replica.stop) for replica in self.replicas]:
                stopping.result()

    def wait_all_healthy(
        self, replicas: list[Replica], *, since: float
    ) -> list[tuple[str | None, float]]:
        """`wait_healthy` for every one of `replicas`, side by side: what was wrong with each
        (None: healthy) and the seconds since `since` (their start) it took."""

        def waited(replica: Replica) -> tuple[str | None, float]:
            problem = self.wait_healthy(replica)
            return problem, time.monotonic() - since

        with concurrent.futures.ThreadPoolExecutor(len(replicas)) as pool:
            return list(pool.map(waited, replicas))

    def wait_healthy(self, replica: Replica) -> str | None:
        """None once the replica passed the stack's healthy threshold of checks in a row; else
        what was wrong (the unhealthy threshold of failed checks in a row, or no answer)."""
        load_balancer = self.config.load_balancer
        path = self.config.app.health_check_path
        passed = failed = 0
        last = "no answer"
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.supervisor is not None and self.supervisor.stopping.is_set():
                return "the rehearsal is ending"
            if replica.process.poll() is not None:
                return f"the server exited with status {replica.process.returncode}"
            answer = fetch(replica.port, path)
            if answer is not None and answer[0] == 200:
                passed, failed = passed + 1, 0
                if passed >= load_balancer.healthy_threshold:
                    return None
            elif answer is not None:
                passed, failed = 0, failed + 1
                last = f"{answer[0]} {answer[1][:120]}"
                if failed >= load_balancer.unhealthy_threshold:
                    return f"{failed} health checks in a row answered {last}"
            time.sleep(HEALTH_INTERVAL_SECONDS)
        return f"no healthy answer within {START_TIMEOUT_SECONDS:.0f} s (last: {last})"

    def replace_unhealthy(self, replica: Replica, reason: str) -> None:
        """What ECS does with a task its health checks call unhealthy (minimum healthy 100 %):
        start a replacement of the same version, and once it is healthy, put it in service and
        take the unhealthy one out, drained. A replacement that does not get healthy is stopped
        and another started, until one does or the rehearsal ends. Meanwhile the unhealthy
        replica keeps its traffic, as the load balancer keeps sending it when every target is
        unhealthy (it fails open)."""
        record = Replacement(replica.port, replica.version.name, reason, time.monotonic())
        self.replacements.append(record)
        self.progress(
            f"replica on port {replica.port} ({replica.version.name}) is unhealthy: {reason}; "
            "replacing it, as ECS would"
        )
        stopping = self.supervisor.stopping if self.supervisor else threading.Event()
        while not stopping.is_set():
            record.attempts += 1
            try:
                new = self.start_replica(replica.version)
            except (ServerError, OSError) as error:
                self.progress(f"replacement of port {replica.port} did not start: {error}")
                stopping.wait(REPLACEMENT_RETRY_SECONDS)
                continue
            problem = self.wait_healthy(new)
            if problem:
                new.stop()
                stopping.wait(REPLACEMENT_RETRY_SECONDS)
                continue
            with self.fleet_lock:
                if replica not in self.serving:  # the rollout took it out meanwhile
                    new.stop()
                    return
                self.serving.append(new)
                self.set_upstreams(self.serving)
                self.serving.remove(replica)
                self.set_upstreams(self.serving)
            record.replaced_by, record.in_service = new.port, time.monotonic()
            if not stopping.is_set():
                self.drain(replica)
            replica.stop()
            self.progress(
                f"replica on port {replica.port} replaced by port {new.port} after "
                f"{record.attempts} start(s), {record.in_service - record.unhealthy:.1f} s after "
                "it turned unhealthy"
            )
            return

    def start_worker(self, version: Version, side: Side) -> None:
        """The version's worker process (the stack's first worker service's command, in the
        version's files, with the replicas' environment), until the rehearsal stops it; none
        when the stack has no worker service."""
        services = self.config.workers.services
        if not services:
            return
        name, service = next(iter(services.items()))
        log = self.root / "workers" / f"{len(self.workers) + 1}-{version.release_id}.log"
        worker = WorkerProcess.start(
            version.name,
            side,
            service.command,
            cwd=version.directory,
            env=self.environment(version),
            log=log,
        )
        self.workers.append(worker)
        if len(self.workers) == 1:
            self.resources.callback(self.stop_workers)
        started = worker.start_error or f"pid {worker.process.pid if worker.process else '-'}"
        self.progress(
            f"worker of {version.name} ({side}; service {name}: {' '.join(service.command)}): "
            f"{started}"
        )

    def stop_workers(self) -> None:
        """Every worker stopped side by side: SIGTERM, then the service's stop timeout to
        finish its job before SIGKILL. Stopping twice does nothing."""
        services = self.config.workers.services
        if not services or not self.workers:
            return
        timeout = float(next(iter(services.values())).stop_timeout_seconds)
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(self.workers)) as pool:
            for stopping in [pool.submit(worker.stop, timeout) for worker in self.workers]:
                stopping.result()

    def workers_summary(self) -> WorkersSummary | None:
        """What the workers did, once stopped; None when the stack has no worker service."""
        services = self.config.workers.services
        if not services:
            return None
        name, service = next(iter(services.items()))
        return WorkersSummary(
            service=name,
            command=tuple(service.command),
            stop_timeout_seconds=float(service.stop_timeout_seconds),
            processes=tuple(worker.outcome() for worker in self.workers),
        )

    def mark_workers(self, mark: str) -> None:
        for worker in self.workers:
            worker.mark(mark)

    def database_outage(self, seconds: float) -> Outage:
        """PostgreSQL stopped (`pg_ctl stop -m fast`: every connection ends) for `seconds`, then
        started again with the same data; then the wait until every replica in service answers
        its readiness path again, and the rest of the reconnect window. Nothing else is done:
        whatever recovers, recovers by itself."""
        if self.database is None:
            raise ReleaseStepError("the database is not running")
        # Every replica ready first: what the outage takes away was there. Then each worker
        # process's readiness path warmed up (its first answer imports the cache client), so
        # that the time to be ready again measures the recovery, not the warm-up.
        if self.wait_ready(time.monotonic() + READY_TIMEOUT_SECONDS) is None:
            self.progress("database outage: not every replica was ready before it")
        asks = [
            r.port
            for r in self.serving
            for _ in range(WARM_UP_ASKS * (self.config.app.workers or 1))
        ]
        with concurrent.futures.ThreadPoolExecutor(max_workers=WARM_UP_ASKS * 2) as pool:
            list(pool.map(lambda port: fetch(port, self.config.app.readiness_path), asks))
        self.progress(f"database outage: PostgreSQL stopped (fast shutdown) for {seconds:g} s")
        self.mark_workers(OUTAGE_START)
        stopping = time.monotonic()
        self.database.stop()
        stopped = time.monotonic()
        time.sleep(max(0.0, stopped + seconds - time.monotonic()))
        self.database.start()
        back = time.monotonic()
        self.progress(
            f"database outage: PostgreSQL stopped in {stopped - stopping:.1f} s, accepts "
            f"connections again {back - stopped:.1f} s later"
        )
        ready = self.wait_ready(back + READY_TIMEOUT_SECONDS)
        if ready is None:
            self.progress(
                f"database outage: not every replica was ready within {READY_TIMEOUT_SECONDS:g} s"
            )
        else:
            self.progress(f"database outage: every replica ready {ready - back:.1f} s later")
        time.sleep(max(0.0, back + RECONNECT_WINDOW_SECONDS - time.monotonic()))
        self.mark_workers(OUTAGE_END)
        return Outage(
            seconds, stopping, stopped, back, ready, static_url_prefix(self.config.static)
        )

    def wait_ready(self, deadline: float) -> float | None:
        """When every replica in service answered `app.readinessPath` 200 (each once it has),
        or None at `deadline`."""
        path = self.config.app.readiness_path
        pending = {replica.port for replica in self.serving}
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(pending) or 1) as pool:
            while time.monotonic() < deadline:
                asked = {port: pool.submit(fetch, port, path) for port in pending}
                pending = {
                    port for port, answer in asked.items() if (answer.result() or (0,))[0] != 200
                }
                pending &= {replica.port for replica in self.serving}
                if not pending:
                    return time.monotonic()
                time.sleep(READY_POLL_SECONDS)
        return None

    def health_checks(self) -> HealthChecks:
        return HealthChecks(
            path=self.health.path,
            checks=tuple(check.describe() for check in self.health.checks),
            grace_period_seconds=self.health.grace_period_seconds,
            replacements=tuple(self.replacements),
        )

    def set_upstreams(self, replicas: list[Replica]) -> None:
        """Reloads the proxy with `replicas` as its upstreams, at least the proxy's
        RELOAD_GAP_SECONDS after the previous reload."""
        if self.proxy is None:
            raise ReleaseStepError("the proxy is not running")
        gap = RELOAD_GAP_SECONDS[self.options.proxy]
        with self.fleet_lock:
            time.sleep(max(0.0, self.last_reload + gap - time.monotonic()))
            self.proxy.reload(self.site(replicas))
            self.last_reload = time.monotonic()

    def drain(self, replica: Replica) -> float:
        """Waits until the proxy closed its last connection to the replica, at most the load
        balancer's deregistration delay (like the ALB, which ends draining early when a target
        has nothing in flight). Returns how long it waited."""
        from pulumi_django.components.aws.load_balancer import deregistration_delay

        limit = deregistration_delay(
            self.config.load_balancer, self.config.app.graceful_timeout_seconds
        )
        started = time.monotonic()
        while established_connections(replica.port) and time.monotonic() - started < limit:
            time.sleep(DRAIN_POLL_SECONDS)
        return time.monotonic() - started


# How the rehearsal carries out each release step; `rehearse` refuses to start while a step of
# the registry has none.
STEP_HANDLERS: dict[Step, Callable[[Rehearsal], StepOutcome]] = {
    Step.IMAGE: Rehearsal.step_image,
    Step.STATIC: Rehearsal.step_static,
    Step.CHECK: Rehearsal.step_check,
    Step.MIGRATE: Rehearsal.step_migrate,
    Step.FLEET: Rehearsal.step_fleet,
    Step.PROXY: Rehearsal.step_proxy,
}


@dataclass(frozen=True)
class HeldProbe:
    """A write probe being made ready in the background and held (`start_write_probe(hold=...)`)
    until its version serves, or discarded."""

    future: concurrent.futures.Future[WriteProbe] = field(default_factory=concurrent.futures.Future)
    abandon: threading.Event = field(default_factory=threading.Event)

    def discard(self) -> None:
        """Not needed (any more): its start is given up, or it is stopped (a probe that was
        released is stopped twice: that does nothing)."""
        self.abandon.set()
        if self.future.cancel():  # never started
            return
        with contextlib.suppress(WriteProbeError):
            self.future.result().stop()


@dataclass(frozen=True)
class PreparedWrites:
    """What `Rehearsal.prepare_old_writes` found: the apps the release migrates (none when
    `listing_problem` says why they could not be listed), and the old version's held probe
    over them, if any."""

    apps: list[str]
    listing_problem: str | None
    probe: HeldProbe | None


def _remove_mirror(prefix: Path, directory: Path) -> None:
    """Removes the bytecode Python keeps for the files under `directory` with PYTHONPYCACHEPREFIX
    `prefix` (the same path, under it), and the directories above it it leaves empty."""
    mirror = prefix / directory.resolve().relative_to(directory.resolve().anchor)
    shutil.rmtree(mirror, ignore_errors=True)
    for parent in mirror.parents:
        if parent == prefix or prefix not in parent.parents:
            break
        try:
            parent.rmdir()
        except OSError:  # not empty (another rehearsal's), or gone
            break


@contextlib.contextmanager
def _scratch_directory() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pd-rehearsal-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rehearse(options: RehearsalOptions, progress: Callable[[str], None]) -> RehearsalReport:
    """Runs the whole rehearsal and returns its report; every process it started is stopped
    and every directory it made is removed before it returns or raises."""
    missing = [step for step in Step if step not in STEP_HANDLERS]
    if missing:
        raise NotImplementedError(f"the rehearsal has no handler for release steps {missing}")
    with contextlib.ExitStack() as resources:
        root = resources.enter_context(_scratch_directory())
        rehearsal = Rehearsal(options, resources, root, progress)
        rehearsal.deploy_current()
        rehearsal.discover_pages()
        progress(f"load: {options.rate:g} requests/s; the release in {options.before_seconds:g} s")
        with running_load(rehearsal.load_site(), options.rate) as load:
            load_start = time.monotonic()
            time.sleep(options.before_seconds)
            outage = (
                rehearsal.database_outage(options.database_outage_seconds)
                if options.database_outage_seconds
                else None
            )
            release_start = time.monotonic()
            steps = rehearsal.release()
            release_end = time.monotonic()
            progress(f"load: {options.after_seconds:g} s more after the release")
            time.sleep(options.after_seconds)
            while load.count() < options.min_requests:
                time.sleep(MIN_REQUESTS_POLL_SECONDS)
            samples = load.stop()
            load_end = time.monotonic()
        if rehearsal.supervisor is not None:  # no replacement may change the fleet any more
            rehearsal.supervisor.stop()
        if rehearsal.workers:
            progress(
                f"stopping {len(rehearsal.workers)} worker(s): SIGTERM, then their jobs finish"
            )
        progress("load stopped; stopping every server")
        # The workers, the write probes and the site stop side by side: none needs another.
        stopping = [
            rehearsal.background.submit(rehearsal.stop_workers),
            rehearsal.background.submit(rehearsal.stop_site),
        ]
        writes, write_summary = rehearsal.write_results()
        for stopped in stopping:
            stopped.result()
        workers = rehearsal.workers_summary()
    return build_report(
        release=options.release.label,
        previous=options.previous.label,
        proxy=options.proxy,
        server=options.config.app.server,
        replicas=options.replicas,
        rate=options.rate,
        steps=steps,
        samples=rehearsal.with_serving_versions(samples),
        timeline=Timeline(load_start, release_start, release_end, load_end, outage),
        writes=writes,
        write_summary=write_summary,
        pages=rehearsal.page_paths,
        health_checks=rehearsal.health_checks(),
        workers=workers,
    )
