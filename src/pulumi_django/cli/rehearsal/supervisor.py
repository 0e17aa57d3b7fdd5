"""The fleet's health checks, run on the rehearsal's replicas the way ECS and the load balancer
run them on the tasks, so that "no replica was replaced" is a measurement.

Two checks watch every replica in service, each on the stack's `app.healthCheckPath`, with the
settings the stack deploys:

- the app container's health check (`rendering.container_definitions`: every 10 s, a 5 s
  timeout, unhealthy after 3 failures in a row, a 30 s start period during which failures
  count only once a check has passed, as Docker and ECS count them);
- the load balancer's target health check (`loadBalancer.healthCheckIntervalSeconds`, the
  timeout `components.aws.load_balancer.health_check_timeout` gives it, unhealthy after
  `loadBalancer.unhealthyThreshold` failures in a row).

ECS replaces a task that either check calls unhealthy, once the service's health-check grace
period (`fleet.rollingUpdate.healthCheckGracePeriodSeconds`) has passed since the task started;
it starts the replacement first and stops the unhealthy task once the replacement is healthy
(minimum healthy 100 %). `Supervisor` calls `replace` for each such replica; the rehearsal
carries the replacement out (`Rehearsal.replace_unhealthy`).

The replicas deployed before the load stand for a fleet that has been serving for a while: their
start period and grace period are over, as a real fleet's are when its database fails over. A
replica started during the rehearsal (by the rollout, or as a replacement) gets both.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from pulumi_django.cli.rehearsal.servers import LOOPBACK

if TYPE_CHECKING:
    from pulumi_django.config import StackConfig

# How often the supervisor looks for checks that are due.
TICK_SECONDS = 0.1
ANSWER_SHOWN = 80


@dataclass(frozen=True)
class CheckSettings:
    """One health check as the stack configures it."""

    name: str
    interval_seconds: float
    timeout_seconds: float
    # Failures in a row that make the target or container unhealthy.
    unhealthy_after: int
    # Docker's start period: failures in it count only once a check passed (0: none).
    start_period_seconds: float = 0.0

    def describe(self) -> str:
        start = f", start period {self.start_period_seconds:g} s" * bool(self.start_period_seconds)
        return (
            f"{self.name}: every {self.interval_seconds:g} s, timeout "
            f"{self.timeout_seconds:g} s, unhealthy after {self.unhealthy_after} failures in a "
            f"row{start}"
        )


@dataclass(frozen=True)
class FleetHealth:
    """The checks ECS acts on, and the grace period it gives a task before it acts."""

    path: str
    checks: tuple[CheckSettings, ...]
    grace_period_seconds: float


def fleet_health(config: StackConfig) -> FleetHealth:
    """The health checks the stack deploys, read from where the stack reads them."""
    from pulumi_django.components.aws.load_balancer import health_check_timeout
    from pulumi_django.rendering.container_definitions import (
        APP_HEALTH_START_PERIOD_SECONDS,
        HEALTH_INTERVAL_SECONDS,
        HEALTH_RETRIES,
        HEALTH_TIMEOUT_SECONDS,
    )

    load_balancer = config.load_balancer
    interval = load_balancer.health_check_interval_seconds
    return FleetHealth(
        path=config.app.health_check_path,
        checks=(
            CheckSettings(
                "container health check",
                HEALTH_INTERVAL_SECONDS,
                # The probe's own urlopen timeout, one second inside the check's.
                HEALTH_TIMEOUT_SECONDS - 1,
                HEALTH_RETRIES,
                APP_HEALTH_START_PERIOD_SECONDS,
            ),
            CheckSettings(
                "load balancer health check",
                interval,
                health_check_timeout(interval),
                load_balancer.unhealthy_threshold,
            ),
        ),
        grace_period_seconds=config.fleet.rolling_update.health_check_grace_period_seconds,
    )


@dataclass
class CheckState:
    """One check of one replica: when it runs next and what it counted so far."""

    settings: CheckSettings
    started: float  # when the replica started (its start period runs from there)
    next_at: float
    passed_once: bool = False
    failures: int = 0  # counted failures in a row
    last_answer: str = ""
    running: bool = False

    @property
    def unhealthy(self) -> bool:
        return self.failures >= self.settings.unhealthy_after

    def record(self, now: float, ok: bool, answer: str) -> None:
        """One check's outcome, `now` being when it ended; the next runs an interval later."""
        self.next_at = max(self.next_at + self.settings.interval_seconds, now)
        self.last_answer = answer
        if ok:
            self.failures, self.passed_once = 0, True
            return
        in_start_period = now - self.started < self.settings.start_period_seconds
        if in_start_period and not self.passed_once:
            return
        self.failures += 1


class Watched(Protocol):
    """What the supervisor needs of a replica."""

    port: int
    started: float
    settled: bool  # deployed before the load: start and grace periods are over


Replica = TypeVar("Replica", bound=Watched)


@dataclass
class ReplicaHealth(Generic[Replica]):
    replica: Replica
    checks: list[CheckState]
    reported: bool = False


def probe(port: int, path: str, timeout: float) -> tuple[bool, str]:
    """One health check's request: a GET on its own connection; passes on a 200."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Host": f"{LOOPBACK}:{port}"})
        response = connection.getresponse()
        body = response.read().decode(errors="replace").strip()
        return response.status == 200, f"{response.status} {' '.join(body.split())}"[:ANSWER_SHOWN]
    except (OSError, http.client.HTTPException) as error:
        return False, f"no answer ({type(error).__name__})"
    finally:
        connection.close()


@dataclass
class Supervisor(Generic[Replica]):
    """Runs the fleet's checks on every replica `in_service` returns, and calls `replace`
    (in a thread of its own) once for each replica ECS would replace, with the reason."""

    health: FleetHealth
    in_service: Callable[[], Sequence[Replica]]
    replace: Callable[[Replica, str], None]
    clock: Callable[[], float] = time.monotonic
    check: Callable[[int, str, float], tuple[bool, str]] = probe
    _watched: dict[int, ReplicaHealth[Replica]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _pool: concurrent.futures.ThreadPoolExecutor | None = None

    def start(self) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=8, thread_name_prefix="health-check"
        )
        thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """No more checks; waits for the checks in flight and the replacements under way
        (each of which watches `stopping`)."""
        self._stop.set()
        if self._threads:
            self._threads[0].join()  # the checking loop: it starts no replacement after this
        for thread in self._threads[1:]:
            thread.join()
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    @property
    def stopping(self) -> threading.Event:
        return self._stop

    def _run(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            self.tick()

    def tick(self) -> None:
        """Starts the checks that are due, and the replacement of each replica ECS would now
        replace. (Public for tests, which drive it with their own clock.)"""
        now = self.clock()
        serving = {id(replica): replica for replica in self.in_service()}
        with self._lock:
            for key in [key for key in self._watched if key not in serving]:
                del self._watched[key]
            for key, replica in serving.items():
                if key not in self._watched:
                    self._watched[key] = self._watch(replica, now)
            due = [
                (state, check)
                for state in self._watched.values()
                for check in state.checks
                if not check.running and now >= check.next_at
            ]
            for _, check in due:
                check.running = True
        for state, check in due:
            self._submit(state, check)
        self._act(now)

    def _watch(self, replica: Replica, now: float) -> ReplicaHealth[Replica]:
        """A replica's checks: the first of each an interval after it is watched. A settled
        replica's start period is long over; it passed its checks before it took traffic."""
        started = -float("inf") if replica.settled else replica.started
        return ReplicaHealth(
            replica,
            [
                CheckState(
                    settings,
                    started=started,
                    next_at=now + settings.interval_seconds,
                    passed_once=replica.settled,
                )
                for settings in self.health.checks
            ],
        )

    def _submit(self, state: ReplicaHealth[Replica], check: CheckState) -> None:
        def run() -> None:
            ok, answer = self.check(
                state.replica.port, self.health.path, check.settings.timeout_seconds
            )
            with self._lock:
                check.record(self.clock(), ok, answer)
                check.running = False

        if self._pool is None:  # driven by a test: run in place
            run()
        else:
            self._pool.submit(run)

    def _act(self, now: float) -> None:
        with self._lock:
            to_replace = []
            for state in self._watched.values():
                failing = [check for check in state.checks if check.unhealthy]
                started = -float("inf") if state.replica.settled else state.replica.started
                in_grace = now - started < self.health.grace_period_seconds
                if failing and not state.reported and not in_grace:
                    state.reported = True
                    check = failing[0]
                    to_replace.append(
                        (
                            state.replica,
                            f"{check.settings.name} failed {check.failures} times in a row "
                            f"({check.last_answer})",
                        )
                    )
        for replica, reason in to_replace:
            if self._pool is None:
                self.replace(replica, reason)
                continue
            thread = threading.Thread(
                target=self.replace, args=(replica, reason), name="replacement", daemon=True
            )
            self._threads.append(thread)
            thread.start()
