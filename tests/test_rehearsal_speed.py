"""What keeps a rehearsal's setup short, each shown without a clock: work that does not wait for
anything runs side by side (a barrier that sequential work would break), a throwaway cluster is
copied from the one initdb made before, PostgreSQL stops with its fast shutdown, a held write
probe writes only once released, and the command imports no component."""

from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pulumi_django.caches import CACHE_VARIABLE, bytecode_cache
from pulumi_django.cli.rehearsal import rehearse as rehearse_module
from pulumi_django.cli.rehearsal import servers
from pulumi_django.cli.rehearsal.rehearse import Rehearsal, RehearsalOptions, Version
from pulumi_django.cli.rehearsal.rollout import Batch, RolloutLimits
from pulumi_django.cli.rehearsal.servers import Postgres, postgres
from pulumi_django.cli.rehearsal.sources import build_variant, resolve_sides
from pulumi_django.cli.rehearsal.write_probe import WriteProbeError, start_write_probe
from pulumi_django.cli.stackfile import load_stack_file
from pulumi_django.config import parse_stack_config

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "bigfoot"
# Long enough for any thread to reach a barrier on a busy machine; only a failure waits it out.
BARRIER_SECONDS = 30.0


@pytest.fixture
def rehearsal(tmp_path: Path) -> Iterator[Rehearsal]:
    """A rehearsal of bigfoot's v2 on the local stack, with nothing started."""
    config = parse_stack_config(*load_stack_file(ROOT, "local").namespace("django"))
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), config, "nginx", replicas=3)
    with contextlib.ExitStack() as resources:
        yield Rehearsal(options, resources, tmp_path, progress=lambda _line: None)


def version(name: str, tmp_path: Path) -> Version:
    return Version(name, name, tmp_path / name, tmp_path / name / "static")


@dataclass(eq=False)
class FakeReplica:
    version: Version
    port: int
    stops: list[int] = field(default_factory=list)
    stopped: Any = None  # called when it stops

    def stop(self) -> None:
        if self.stopped is not None:
            self.stopped()
        self.stops.append(self.port)


class FakeProbe:
    models = ["sightings.Sighting"]
    skipped: dict[str, str] = {}
    released = stopped = False

    def release(self) -> None:
        self.released = True

    def stop(self) -> list[Any]:
        self.stopped = True
        return []


def test_both_versions_are_built_while_postgresql_starts(
    rehearsal: Rehearsal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither build needs a database: the two collectstatic runs and PostgreSQL's start meet
    at the barrier (one after the other, they never would)."""
    meet = threading.Barrier(3, timeout=BARRIER_SECONDS)
    built: list[str] = []

    def build(self: Rehearsal, source: Any, number: int) -> Version:
        meet.wait()
        built.append(source.label)
        return version(source.label, self.root)

    @contextlib.contextmanager
    def starting_postgres() -> Iterator[Postgres]:
        meet.wait()
        raise servers.ServerError("enough: both builds ran beside this start")
        yield  # a context manager's shape

    monkeypatch.setattr(Rehearsal, "build", build)
    monkeypatch.setattr(rehearse_module, "postgres", starting_postgres)
    with pytest.raises(servers.ServerError, match="enough"):
        rehearsal.deploy_current()
    assert rehearsal.prepare_release().result().name == "v2"
    rehearsal.background.shutdown()  # the current version's build too
    assert sorted(built) == ["v1", "v2"]


def test_nginx_reloads_back_to_back_and_caddy_a_second_apart(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An nginx reload returns once its old workers stopped accepting; Caddy's swap of its
    listening socket needs the gap."""
    slept: list[float] = []
    monkeypatch.setattr(rehearse_module.time, "sleep", slept.append)
    reloads: list[Any] = []
    rehearsal.proxy = SimpleNamespace(reload=reloads.append)  # type: ignore[assignment]
    fleet = [FakeReplica(version("v1", tmp_path), 18001)]
    for proxy in ("nginx", "caddy"):
        rehearsal.options = replace(rehearsal.options, proxy=proxy)  # type: ignore[arg-type]
        slept.clear()
        rehearsal.set_upstreams(fleet)  # type: ignore[arg-type]
        rehearsal.set_upstreams(fleet)  # type: ignore[arg-type]
        assert max(slept) == pytest.approx(rehearse_module.RELOAD_GAP_SECONDS[proxy], abs=0.1)
    assert rehearse_module.RELOAD_GAP_SECONDS == {"nginx": 0.0, "caddy": 1.0}
    assert len(reloads) == 4


def test_a_versions_replicas_start_side_by_side(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each start waits for its server's port: three started one after the other would never
    meet at the barrier."""
    meet = threading.Barrier(3, timeout=BARRIER_SECONDS)
    ports = iter(range(18001, 18004))

    def start(self: Rehearsal, started: Version) -> FakeReplica:
        meet.wait()
        return FakeReplica(started, next(ports))

    monkeypatch.setattr(Rehearsal, "start_replica", start)
    replicas = rehearsal.start_replicas(version("v1", tmp_path), 3)
    assert sorted(replica.port for replica in replicas) == [18001, 18002, 18003]  # type: ignore[attr-defined]


def test_the_old_versions_probe_gets_ready_beside_the_check_and_writes_from_the_migration(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulumi_django.providers import migration_check

    meet = threading.Barrier(2, timeout=BARRIER_SECONDS)
    probe = FakeProbe()
    ran: list[str] = []

    def held(**options: Any) -> FakeProbe:
        assert (options["version"], options["apps"], options["hold"]) == ("v1", ["sightings"], True)
        meet.wait()  # the check is running meanwhile
        return probe

    def run(self: Rehearsal, what: str, command: list[str], *_: Any, **__: Any) -> Any:
        ran.append(what)
        if what == "the migration check":
            meet.wait()
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(rehearse_module, "migrating_apps", lambda *_a, **_k: ["sightings"])
    monkeypatch.setattr(rehearse_module, "start_write_probe", held)
    monkeypatch.setattr(Rehearsal, "run", run)
    monkeypatch.setattr(
        migration_check, "judge_check", lambda *_a: SimpleNamespace(checked=["x.1"])
    )
    rehearsal.current, rehearsal.new = version("v1", tmp_path), version("v2", tmp_path)
    assert rehearsal.step_check().status == "ok"
    assert not probe.released  # held: nothing was migrated yet, and may never be
    assert rehearsal.step_migrate().status == "ok"
    assert ran == ["the migration check", "the migration job"]
    assert probe.released and rehearsal.write_probes == {"v1": probe}


def fleet_doubles(
    rehearsal: Rehearsal,
    monkeypatch: pytest.MonkeyPatch,
    start: Any,
    healthy: Any = lambda _self, _replica: None,
) -> list[list[int]]:
    """The fleet step's servers replaced by `start` and `healthy`; returns the ports the proxy
    is given, one list per reload."""
    upstreams: list[list[int]] = []
    monkeypatch.setattr(Rehearsal, "start_replica", start)
    monkeypatch.setattr(Rehearsal, "wait_healthy", healthy)
    monkeypatch.setattr(
        Rehearsal,
        "set_upstreams",
        lambda _self, replicas: upstreams.append(sorted(replica.port for replica in replicas)),
    )
    monkeypatch.setattr(Rehearsal, "drain", lambda _self, _replica: 0.0)
    monkeypatch.setattr(Rehearsal, "start_worker", lambda _self, _version, _side: None)
    return upstreams


def with_rolling_update(rehearsal: Rehearsal, minimum: int, maximum: int) -> None:
    fleet = rehearsal.config.fleet
    rolling = fleet.rolling_update.model_copy(
        update={"minimum_healthy_percent": minimum, "maximum_percent": maximum}
    )
    rehearsal.config = rehearsal.config.model_copy(
        update={"fleet": fleet.model_copy(update={"rolling_update": rolling})}
    )


def test_with_the_default_rollout_every_new_replica_starts_at_once_beside_the_new_probe(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ECS with 200 % / 100 % (the defaults) starts every new task at once and stops the old
    ones once the new ones are healthy. The new version's probe gets ready beside the new
    replicas' health checks and writes once they are healthy."""
    old, new = version("v1", tmp_path), version("v2", tmp_path)
    starts_meet = threading.Barrier(2, timeout=BARRIER_SECONDS)
    probe_meets_health = threading.Barrier(3, timeout=BARRIER_SECONDS)
    probe = FakeProbe()
    ports = iter(range(18011, 18020))

    def start(self: Rehearsal, started_version: Version) -> FakeReplica:
        starts_meet.wait()  # one after the other, they never would
        return FakeReplica(started_version, next(ports))

    def healthy(self: Rehearsal, replica: FakeReplica) -> None:
        probe_meets_health.wait()
        assert not probe.released

    def held(**options: Any) -> FakeProbe:
        assert (options["version"], options["hold"]) == ("v2", True)
        probe_meets_health.wait()
        return probe

    upstreams = fleet_doubles(rehearsal, monkeypatch, start, healthy)
    monkeypatch.setattr(rehearse_module, "start_write_probe", held)
    old_replicas = [FakeReplica(old, 18001), FakeReplica(old, 18002)]
    rehearsal.serving = list(old_replicas)  # type: ignore[arg-type]
    rehearsal.new, rehearsal.migrated_apps = new, ["sightings"]
    outcome = rehearsal.step_fleet()
    assert (outcome.status, outcome.detail) == (
        "ok",
        "2 replicas replaced, all started at once, none failed",
    )
    assert probe.released and rehearsal.write_probes == {"v2": probe}
    assert upstreams == [[18001, 18002, 18011, 18012], [18011, 18012]]
    assert [replica.stops for replica in old_replicas] == [[18001], [18002]]


@pytest.mark.parametrize(
    ("minimum", "maximum", "reloads", "detail"),
    [
        # Room for one more: one new replica, then one old one out, twice.
        (
            100,
            150,
            [[18001, 18002, 18011], [18002, 18011], [18002, 18011, 18012], [18011, 18012]],
            "2 replicas replaced, at most 1 started at a time, none failed",
        ),
        # No room, and one may go: an old replica out first, then a new one in, twice.
        (
            50,
            100,
            [[18002], [18002, 18011], [18011], [18011, 18012]],
            "2 replicas replaced, at most 1 started at a time, each batch after 1 old stopped, "
            "none failed",
        ),
    ],
)
def test_the_rollout_follows_the_stacks_rolling_update_percentages(
    rehearsal: Rehearsal,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    minimum: int,
    maximum: int,
    reloads: list[list[int]],
    detail: str,
) -> None:
    ports = iter(range(18011, 18020))
    upstreams = fleet_doubles(
        rehearsal, monkeypatch, lambda _self, started: FakeReplica(started, next(ports))
    )
    with_rolling_update(rehearsal, minimum, maximum)
    rehearsal.serving = [FakeReplica(version("v1", tmp_path), 18001 + n) for n in range(2)]  # type: ignore[misc]
    rehearsal.new = version("v2", tmp_path)
    outcome = rehearsal.step_fleet()
    assert (outcome.status, outcome.detail) == ("ok", detail)
    assert upstreams == reloads


@pytest.mark.parametrize(
    ("desired", "minimum", "maximum", "first"),
    [
        (4, 100, 200, Batch(stop_first=0, start=4)),  # AWS's example: four new before the old
        (4, 50, 100, Batch(stop_first=2, start=2)),  # AWS's example: two old stopped first
        # Both limits at once: 2 healthy at least (1.5 rounded up), 4 running at most (4.5
        # rounded down): one old stopped while two new start.
        (3, 50, 150, Batch(stop_first=1, start=2)),
        (3, 50, 100, Batch(stop_first=1, start=1)),
    ],
)
def test_the_batches_are_ecss_rounded_percentages_of_the_desired_count(
    desired: int, minimum: int, maximum: int, first: Batch
) -> None:
    limits = RolloutLimits(desired, minimum, maximum)
    assert limits.next_batch(serving=desired, old_left=desired, new_left=desired) == first


def test_a_rollout_ecs_could_not_make_halts_saying_what_to_change(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """desiredCount 1, 150 % at most (1, rounded down) and 100 % healthy: ECS can neither start
    a new task nor stop the old one. The release halts before any replica changes."""
    upstreams = fleet_doubles(rehearsal, monkeypatch, start=None)
    with_rolling_update(rehearsal, 100, 150)
    fleet = rehearsal.config.fleet.model_copy(update={"desired_count": 1})
    rehearsal.config = rehearsal.config.model_copy(update={"fleet": fleet})
    current = [FakeReplica(version("v1", tmp_path), 18001 + n) for n in range(2)]
    rehearsal.serving = list(current)  # type: ignore[arg-type]
    rehearsal.new = version("v2", tmp_path)
    outcome = rehearsal.step_fleet()
    assert outcome.status == "halted"
    assert outcome.detail == (
        "new replica 1 of 2 could not start: ECS could not start a new task: at most 1 may run "
        "(fleet.rollingUpdate.maximumPercent 150 % of desiredCount 1, rounded down) and at least "
        "1 must stay healthy (minimumHealthyPercent 100 %, rounded up); raise maximumPercent or "
        "lower minimumHealthyPercent; 2 replicas of v1 kept serving"
    )
    assert (upstreams, rehearsal.serving) == ([], current)
    assert [replica.stops for replica in current] == [[], []]


def test_a_replica_count_too_small_for_the_percentages_rolls_one_at_a_time(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--replicas 1` with 150 % / 100 %: no room at 1 replica, room at the stack's
    desiredCount (2): the rehearsal starts one new replica, then stops the old one."""
    ports = iter(range(18011, 18020))
    upstreams = fleet_doubles(
        rehearsal, monkeypatch, lambda _self, started: FakeReplica(started, next(ports))
    )
    with_rolling_update(rehearsal, 100, 150)
    rehearsal.serving = [FakeReplica(version("v1", tmp_path), 18001)]  # type: ignore[list-item]
    rehearsal.new = version("v2", tmp_path)
    outcome = rehearsal.step_fleet()
    assert (outcome.status, outcome.detail) == (
        "ok",
        "1 replicas replaced, one at a time (at 1, the percentages leave no room; at the "
        "stack's desiredCount they do), none failed",
    )
    assert upstreams == [[18001, 18011], [18011]]


def test_a_batch_replica_that_does_not_start_halts_naming_it_and_stops_the_others(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[FakeReplica] = []
    lock = threading.Lock()

    def start(self: Rehearsal, started_version: Version) -> FakeReplica:
        with lock:
            if len(started) == 1:
                started.append(FakeReplica(started_version, 0))
                raise servers.ServerError("gunicorn did not start: port taken")
            replica = FakeReplica(started_version, 18011)
            started.append(replica)
            return replica

    upstreams = fleet_doubles(rehearsal, monkeypatch, start)
    current = [FakeReplica(version("v1", tmp_path), 18001 + n) for n in range(2)]
    rehearsal.serving = list(current)  # type: ignore[arg-type]
    rehearsal.new = version("v2", tmp_path)
    outcome = rehearsal.step_fleet()
    assert outcome.status == "halted"
    # The second start fails; which of the two futures ran it is the threads' to say.
    assert re.fullmatch(
        r"new replica [12] of 2 did not start: gunicorn did not start: port taken; "
        r"2 replicas of v1 kept serving",
        outcome.detail,
    )
    assert (upstreams, rehearsal.serving) == ([], current)
    assert started[0].stops == [18011]  # the one that started is stopped at once


def test_a_throwaway_cluster_is_a_copy_of_the_one_initdb_made_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(CACHE_VARIABLE, raising=False)  # `make unit` sets it
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    runs: list[Path] = []
    run_initdb = servers.run_initdb

    def counted(initdb: str, data: Path, *args: Any) -> None:
        runs.append(data)
        run_initdb(initdb, data, *args)

    monkeypatch.setattr(servers, "run_initdb", counted)
    for database in ("first", "second"):
        with postgres() as cluster:
            url = cluster.create_database(database)
            answer = subprocess.run(
                ["psql", url, "-Atc", "SELECT current_database()"], capture_output=True, text=True
            )
            assert answer.stdout.strip() == database
    assert len(runs) == 1
    assert len(list((tmp_path / "cache" / "pulumi-django" / "postgres").iterdir())) == 1


def test_the_kept_cluster_is_keyed_by_the_initdb_that_made_it(tmp_path: Path) -> None:
    """Another PostgreSQL (another binary, or the same path printing another version) never
    gets a cluster another one made."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "cache"), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    keys = []
    for printed in (
        "initdb (PostgreSQL) 15.18",
        "initdb (PostgreSQL) 16.4",
        "initdb (PostgreSQL) 16.4",
    ):
        fake = tmp_path / "bin" / "initdb"
        fake.parent.mkdir(exist_ok=True)
        fake.write_text(f"#!/bin/sh\necho '{printed}'\n")
        fake.chmod(0o755)
        keys.append(servers.cluster_cache(str(fake), env))
    real = servers.find_binary("initdb", servers.POSTGRES_BIN_DIRS, package="postgresql")
    keys.append(servers.cluster_cache(real, env))
    assert None not in keys
    assert keys[0] != keys[1] == keys[2] != keys[3]


def test_a_throwaway_postgres_stops_with_its_fast_shutdown() -> None:
    """Not the smart shutdown SIGTERM asks for (it waits for every client, and as root
    `runuser` waits 2 s more before it kills)."""
    with postgres() as cluster:
        assert cluster.server is not None
        cluster.server.stop()
        log = cluster.server.log.read_text()
    assert "received fast shutdown request" in log
    assert "smart shutdown" not in log


def test_a_held_write_probe_writes_only_once_released(tmp_path: Path, pg: Postgres) -> None:
    """Ready (warmed up) while its version starts; its first round waits for `release`."""
    name = f"held_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    v1 = build_variant(APP, "v1", tmp_path / "v1")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bigfoot.settings",
        "DATABASE_URL": url,
        "DJANGO_SECRET_KEY": "held-probe-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=v1, env=env, check=True, timeout=120
    )
    probe = start_write_probe(
        python=sys.executable,
        cwd=v1,
        env=env,
        version="v1",
        apps=["sightings"],
        database_name=name,
        log=tmp_path / "probe.log",
        pause=0.01,
        hold=True,
    )
    try:
        assert probe.models == ["sightings.Sighting"]
        time.sleep(1.0)  # a probe that does not hold makes rounds every 0.01 s meanwhile
        assert probe.samples() == []
        probe.release()
        deadline = time.monotonic() + 30
        while not probe.samples() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert {sample.method for sample in probe.samples()} >= {"create"}
    finally:
        samples = probe.stop()
    assert all(sample.failure is None for sample in samples)
    assert probe.exited_early is None


def test_the_rehearsal_imports_no_component_nor_django() -> None:
    """The command starts in a second less: it walks `Step`, imports no component, and
    finds the model_bakery it lends without importing it."""
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pulumi_django.cli.rehearsal.rehearse; print(*sorted(sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    heavy = ("pulumi_django.components.", "pulumi_docker", "pulumi_aws", "django", "model_bakery")
    assert "pulumi_django.release" not in imported
    assert [module for module in imported if module.startswith(heavy)] == []


def test_a_throwaway_clusters_files_are_in_memory_when_it_has_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its command line still names the temporary directory (where a look for leftover
    processes finds it); the files are linked from there. Without room, they stay there."""
    memory = servers.memory_directory()
    with postgres() as cluster:
        assert cluster.server is not None
        data = cluster.server.data
        assert str(data) in " ".join(cluster.server.command)
        if memory is not None:
            assert data.is_symlink() and data.resolve().parent.parent == memory
        files = data.resolve().parent
    assert not files.exists() and not data.parent.exists()
    monkeypatch.setattr(servers, "MEMORY_ROOM_BYTES", 1 << 62)
    assert servers.memory_directory() is None
    with postgres() as cluster:
        assert cluster.server is not None
        assert not cluster.server.data.is_symlink()


def test_the_bytecode_of_a_rehearsals_versions_goes_with_them(
    rehearsal: Rehearsal, tmp_path: Path
) -> None:
    """Its interpreters keep their bytecode in pulumi-django's cache, where the libraries'
    stays from one rehearsal to the next; the mirror of the rehearsal's own directory, and the
    directories above it that it leaves empty, are removed at its end."""
    prefix = bytecode_cache()
    version_env = rehearsal.environment(version("v1", tmp_path))
    assert version_env["PYTHONPYCACHEPREFIX"] == str(prefix)
    mirror = prefix / tmp_path.resolve().relative_to("/")
    (mirror / "versions" / "0-v1").mkdir(parents=True)
    (mirror / "versions" / "0-v1" / "settings.cpython-311.pyc").write_bytes(b"")
    sibling = mirror.parent / "another-rehearsal"
    sibling.mkdir()
    rehearse_module._remove_mirror(prefix, tmp_path)
    assert not mirror.exists()
    assert sibling.is_dir()  # not ours: kept, and so are the directories above it
    sibling.rmdir()
    rehearse_module._remove_mirror(prefix, tmp_path)
    assert not mirror.parent.exists() and prefix.is_dir()


def test_the_new_probe_of_a_release_that_halts_is_given_up_without_waiting_for_its_start(
    rehearsal: Rehearsal, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its version never serves, so it never writes; a probe whose start hangs (as the version's
    replica may) does not hold up the rest of the rehearsal."""
    abandoned: list[threading.Event] = []
    starting = threading.Event()

    def hanging(**options: Any) -> FakeProbe:
        abandoned.append(options["abandon"])
        starting.set()
        assert options["abandon"].wait(BARRIER_SECONDS)
        raise WriteProbeError("the write probe of v2 was not needed")

    def unhealthy(self: Rehearsal, replica: FakeReplica) -> str:
        assert starting.wait(BARRIER_SECONDS)  # its probe is starting meanwhile
        return "3 health checks in a row answered 503"

    monkeypatch.setattr(rehearse_module, "start_write_probe", hanging)
    monkeypatch.setattr(
        Rehearsal, "start_replica", lambda _self, started: FakeReplica(started, 18021)
    )
    monkeypatch.setattr(Rehearsal, "wait_healthy", unhealthy)
    monkeypatch.setattr(Rehearsal, "start_worker", lambda _self, _version, _side: None)
    rehearsal.serving = [FakeReplica(version("v1", tmp_path), 18001)]  # type: ignore[list-item]
    rehearsal.new, rehearsal.migrated_apps = version("v2", tmp_path), ["sightings"]
    outcome = rehearsal.step_fleet()
    assert outcome.status == "halted"
    assert len(abandoned) == 1 and abandoned[0].is_set()
    assert rehearsal.write_probes == {}


def test_no_other_process_binding_port_0_gets_a_port_handed_out() -> None:
    """The kernel offers a port to a bind to port 0 only when no socket is bound to it: with
    400 ports held here, 800 binds elsewhere (each kept, so each gets a port of its own) get
    none of them. Released ports would be offered: about 11 of the 800 would hit one."""
    held = {servers.free_port() for _ in range(400)}
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket\n"
            "taken = []\n"
            "for _ in range(800):\n"
            "    probe = socket.socket()\n"
            f"    probe.bind(({servers.LOOPBACK!r}, 0))\n"
            "    taken.append(probe)\n"
            "print(' '.join(str(probe.getsockname()[1]) for probe in taken))\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert held.isdisjoint(int(port) for port in elsewhere.stdout.split())


def test_a_port_handed_out_stays_taken_for_others_but_not_for_its_server() -> None:
    """The rehearsal chooses its proxy's port before the proxy binds it, a replica's before its
    app server is up, and PostgreSQL's port is unbound through a database outage: meanwhile no
    other bind may get the port, in this process or another (a second rehearsal beside it),
    while the server it is for, binding with SO_REUSEADDR as every server here does, can."""
    port = servers.free_port()
    assert servers.free_port() != port
    elsewhere = subprocess.run(
        [
            sys.executable,
            "-c",
            "import socket, sys\n"
            "try:\n"
            f"    socket.socket().bind(({servers.LOOPBACK!r}, {port}))\n"
            "except OSError as error:\n"
            "    sys.exit(error.errno)\n",
        ],
        check=False,
    )
    assert elsewhere.returncode == errno.EADDRINUSE
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((servers.LOOPBACK, port))
        server.listen()
        with socket.create_connection((servers.LOOPBACK, port), timeout=5):
            accepted, _ = server.accept()
            accepted.close()
