"""The local target's background workers and scheduler (`django:workers`): containers of the
release's image, started once the migrations succeeded, stopped warm, the scheduler never two at
once; in the `local` stack (bigfoot), in the notebook app's, and built from their args alone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
from notebook_workers import notebook_with_workers

from pulumi_django import LocalWorkers, LocalWorkersArgs
from pulumi_django.cli.plan import Plan, plan_stack, render_text
from pulumi_django.components.local.site import LocalSite
from pulumi_django.config import StackConfig
from pulumi_django.config.workers import SchedulerConfig, WorkerConfig, WorkersConfig
from pulumi_django.recorder import RecordedResource, Recording, record
from pulumi_django.release import RELEASE_STEPS, StepInPlan, release_order
from pulumi_django.release_steps import Step

CONTAINER = "docker:index/container:Container"
JOB_VERDICT = "pulumi-python:dynamic/migrations:LocalJobVerdict"
WORKERS = "pulumi-django:local:Workers"
SITE = "bigfoot-local"
ROOT = Path(__file__).resolve().parent.parent
# Pulumi.local.yaml's worker and scheduler.
WORKER_COMMAND = ["python", "manage.py", "run_worker", "--queue", "default"]
SCHEDULER_COMMAND = ["python", "manage.py", "run_scheduler"]


@pytest.fixture(autouse=True)
def _project_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The program runs where `pulumi up` runs it: in the project directory."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def plan(stack_plan: Callable[[str], Plan]) -> Plan:
    return stack_plan("local")


@pytest.fixture(scope="module")
def recording(plan: Plan) -> Recording:
    return plan.recording


def workers_of(recording: Recording, site: str = SITE) -> list[RecordedResource]:
    return recording.find(CONTAINER, rf"{site}-workers-.+")


def replicas_of(recording: Recording, site: str = SITE) -> list[RecordedResource]:
    return recording.find(CONTAINER, rf"{site}-app-\d+")


def record_site(workers: dict[str, Any] | None, **sections: Any) -> Recording:
    """A LocalSite of the Bigfoot app with `django:workers` (and other sections), exporting
    its outputs as the stack program does."""
    config = StackConfig.model_validate(
        {"target": "local", "name": SITE, **({"workers": workers} if workers else {}), **sections}
    )

    def program() -> None:
        LocalSite(SITE, config).export_outputs()

    return record(program, project="pulumi-django", stack="local", config={})


# --- the local stack (Pulumi.local.yaml) --------------------------------------------------------


def test_the_local_stack_runs_its_worker_and_its_scheduler(recording: Recording) -> None:
    by_name = {resource.name: resource for resource in workers_of(recording)}
    assert sorted(by_name) == [f"{SITE}-workers-default-1", f"{SITE}-workers-scheduler"]
    assert by_name[f"{SITE}-workers-default-1"].inputs["command"] == WORKER_COMMAND
    assert by_name[f"{SITE}-workers-scheduler"].inputs["command"] == SCHEDULER_COMMAND
    (component,) = recording.find(WORKERS)
    assert {child.name for child in recording.children(component.urn)} == set(by_name)


def test_workers_run_the_released_image_once_the_migrations_ran(recording: Recording) -> None:
    verdict = recording.one(JOB_VERDICT)
    replica_image = replicas_of(recording)[0].inputs["image"]
    for worker in workers_of(recording):
        # The migration job's gate, as the replicas get it: known only once the job succeeded.
        assert worker.inputs["image"] == replica_image == f"sha256:{'0' * 64}"
        assert verdict.urn in worker.property_dependencies["image"], worker.name
        assert recording.depends_on(worker.urn, verdict.urn), worker.name
        for data in ("postgres", "redis"):
            assert recording.depends_on(worker.urn, recording.one(CONTAINER, f"{SITE}-{data}").urn)


def test_workers_get_the_replicas_environment_and_media(recording: Recording) -> None:
    replica = replicas_of(recording)[0].inputs
    for worker in workers_of(recording):
        assert worker.inputs["envs"] == replica["envs"], worker.name
        assert worker.inputs["mounts"] == replica["mounts"], worker.name
        assert worker.inputs["networksAdvanced"] == [{"name": SITE}]
        assert worker.inputs["user"] == replica["user"]
        assert worker.inputs["readOnly"] is True
        assert worker.inputs["tmpfs"] == replica["tmpfs"]
        assert worker.inputs["capabilities"] == {"drops": ["ALL"]}


def test_workers_stop_warm_restart_with_the_engine_and_are_never_health_checked(
    recording: Recording,
) -> None:
    for worker in workers_of(recording):
        inputs = worker.inputs
        assert inputs["stopSignal"] == "SIGTERM"
        # stopTimeoutSeconds' default, given to Docker too: ECS's most for a worker, 10 s for
        # the scheduler (no jobs to finish).
        expected = 10 if worker.name.endswith("-scheduler") else 120
        assert inputs["stopTimeout"] == inputs["destroyGraceSeconds"] == expected
        assert inputs["restart"] == "unless-stopped"
        assert inputs["init"] is True
        # Nothing listens: no port, and the image's HEALTHCHECK (the web port) turned off.
        assert "ports" not in inputs
        assert inputs["healthcheck"] == {"tests": ["NONE"]}
        assert "wait" not in inputs
        assert "name" not in inputs  # a replacement coexists with the container it replaces


def test_the_scheduler_is_deleted_before_its_replacement_starts(recording: Recording) -> None:
    scheduler = recording.one(CONTAINER, f"{SITE}-workers-scheduler")
    assert scheduler.options.get("deleteBeforeReplace") is True
    worker = recording.one(CONTAINER, f"{SITE}-workers-default-1")
    assert "deleteBeforeReplace" not in worker.options


def test_the_plan_releases_the_workers_with_the_fleet_after_the_migration_job(
    plan: Plan, recording: Recording
) -> None:
    steps = {found.step.key: found for found in plan.release_order()}
    fleet = steps[Step.FLEET]
    assert sorted(resource.name for resource in fleet.resources) == [
        f"{SITE}-app",
        f"{SITE}-workers",
    ]
    assert fleet.after is not None and fleet.after.key is Step.MIGRATE
    assert all(found.ordered for found in plan.release_order()[1:])
    # The proxy switches to the web replicas only: it does not wait for the workers.
    switch = recording.one(CONTAINER, f"{SITE}-proxy-switch-run")
    for worker in workers_of(recording):
        assert not recording.depends_on(switch.urn, worker.urn), worker.name
    assert f"5. app fleet updated          {SITE}-app, {SITE}-workers  (waits for step 4)" in (
        render_text(plan)
    )
    rows = plan.as_json()["releaseOrder"]
    (fleet_row,) = [row for row in rows if row["step"] == "fleet"]
    (component,) = recording.find(WORKERS)
    assert component.urn in fleet_row["resources"]


def test_the_outputs_name_every_worker_container(plan: Plan) -> None:
    assert plan.recording.outputs["workerContainers"] == {
        "default": [f"{SITE}-workers-default-1-a1b2c3d"],
        "scheduler": [f"{SITE}-workers-scheduler-a1b2c3d"],
    }


# --- other shapes of `django:workers` -----------------------------------------------------------


def test_count_containers_per_worker_with_its_size_and_stop_timeout() -> None:
    recorded = record_site(
        {
            "services": {
                "celery": {
                    "command": ["celery", "-A", "proj", "worker"],
                    "count": 3,
                    "minCount": 1,
                    "maxCount": 6,  # autoscaling bounds: AWS only
                    "cpu": 1024,
                    "memory": 2048,
                    "stopTimeoutSeconds": 45,
                },
                "mail": {"command": ["python", "manage.py", "send_queued_mail"]},
            }
        }
    )
    celery = recorded.find(CONTAINER, rf"{SITE}-workers-celery-\d+")
    assert sorted(resource.name for resource in celery) == [
        f"{SITE}-workers-celery-{n}" for n in (1, 2, 3)
    ]
    for worker in celery:
        assert worker.inputs["command"] == ["celery", "-A", "proj", "worker"]
        assert worker.inputs["stopTimeout"] == worker.inputs["destroyGraceSeconds"] == 45
        assert worker.inputs["memory"] == 2048
        assert worker.inputs["cpus"] == "1"
    (mail,) = recorded.find(CONTAINER, rf"{SITE}-workers-mail-\d+")
    assert mail.inputs["stopTimeout"] == 120
    # No scheduler configured: none runs, and the output has no `scheduler` key.
    assert recorded.find(CONTAINER, rf"{SITE}-workers-scheduler") == []
    assert recorded.outputs["workerContainers"] == {
        "celery": [f"{SITE}-workers-celery-{n}-a1b2c3d" for n in (1, 2, 3)],
        "mail": [f"{SITE}-workers-mail-1-a1b2c3d"],
    }


def test_a_scheduler_alone() -> None:
    recorded = record_site(
        {"scheduler": {"command": ["celery", "-A", "proj", "beat"], "stopTimeoutSeconds": 10}}
    )
    (scheduler,) = workers_of(recorded)
    assert scheduler.name == f"{SITE}-workers-scheduler"
    assert scheduler.inputs["stopTimeout"] == 10
    assert scheduler.options.get("deleteBeforeReplace") is True
    assert recorded.outputs["workerContainers"] == {
        "scheduler": [f"{SITE}-workers-scheduler-a1b2c3d"]
    }


def test_a_process_health_check_replaces_the_images_and_none_keeps_it_off() -> None:
    check = {
        "command": ["sh", "-c", "celery -A proj inspect ping -d celery@$HOSTNAME"],
        "intervalSeconds": 20,
        "retries": 2,
    }
    recorded = record_site(
        {
            "services": {
                "celery": {"command": ["celery", "-A", "proj", "worker"], "healthCheck": check},
                "mail": {"command": ["python", "manage.py", "send_queued_mail"]},
            },
            "scheduler": {"command": ["celery", "-A", "proj", "beat"], "healthCheck": check},
        }
    )
    expected = {
        "tests": ["CMD", "sh", "-c", "celery -A proj inspect ping -d celery@$HOSTNAME"],
        "interval": "20s",
        "timeout": "10s",
        "retries": 2,
        "startPeriod": "60s",
    }
    (celery,) = recorded.find(CONTAINER, rf"{SITE}-workers-celery-\d+")
    scheduler = recorded.one(CONTAINER, f"{SITE}-workers-scheduler")
    assert celery.inputs["healthcheck"] == scheduler.inputs["healthcheck"] == expected
    (mail,) = recorded.find(CONTAINER, rf"{SITE}-workers-mail-\d+")
    assert mail.inputs["healthcheck"] == {"tests": ["NONE"]}


def test_a_stack_without_workers_has_none_and_no_output() -> None:
    recorded = record_site(None)
    assert recorded.find(WORKERS) == []
    assert workers_of(recorded) == []
    assert "workerContainers" not in recorded.outputs
    assert recorded.outputs["appContainers"]  # the outputs were exported
    sites: list[LocalSite] = []

    def program() -> None:
        sites.append(LocalSite(SITE, StackConfig.model_validate({"target": "local", "name": SITE})))

    record(program, project="pulumi-django", stack="local", config={})
    assert sites[0].workers is None
    assert sites[0].worker_containers is None


def test_without_media_the_workers_mount_nothing() -> None:
    recorded = record_site(
        {"services": {"jobs": {"command": ["rq", "worker"]}}}, media={"enabled": False}
    )
    (worker,) = workers_of(recorded)
    assert "mounts" not in worker.inputs
    assert not any(entry.startswith("MEDIA_") for entry in worker.inputs["envs"])


# --- the release table --------------------------------------------------------------------------


def test_the_fleet_step_holds_the_workers_which_the_next_step_need_not_wait_for() -> None:
    (fleet,) = [step for step in RELEASE_STEPS if step.key is Step.FLEET]
    assert WORKERS in fleet.types
    assert fleet.beside == (WORKERS,)
    for step in RELEASE_STEPS:
        if step.key is not Step.FLEET:
            assert step.beside == (), step.key


def _fleet(*, workers_wait: bool, switch_waits_for: tuple[str, ...]) -> list[StepInPlan]:
    """The release order of a migration job, then replicas and workers (components of the
    steps' types, each with a child), and a proxy switch waiting for `switch_waits_for`."""

    def program() -> None:
        job = pulumi.CustomResource(JOB_VERDICT, "job", {})

        def component(type_: str, name: str, after: list[pulumi.Resource]) -> pulumi.Resource:
            resource = pulumi.ComponentResource(type_, name, None)
            opts = pulumi.ResourceOptions(parent=resource, depends_on=after)
            pulumi.CustomResource("test:index:Child", f"{name}-child", {}, opts)
            return resource

        fleet = {
            "app": component("pulumi-django:local:AppReplicas", "app", [job]),
            "workers": component(WORKERS, "workers", [job] if workers_wait else []),
        }
        after = [fleet[name] for name in switch_waits_for]
        component("pulumi-django:local:ProxySwitch", "switch", after)

    return release_order(record(program, project="shop", stack="dev", config={}))


def test_workers_that_could_start_before_the_migration_job_leave_the_fleet_unordered() -> None:
    fleet, proxy = _fleet(workers_wait=False, switch_waits_for=("app",))[-2:]
    assert sorted(resource.name for resource in fleet.resources) == ["app", "workers"]
    assert fleet.ordered is False
    assert proxy.ordered is True


@pytest.mark.parametrize("switch_waits_for", [("app",), ("app", "workers")])
def test_the_switch_must_wait_for_the_replicas_and_may_skip_the_workers(
    switch_waits_for: tuple[str, ...],
) -> None:
    fleet, proxy = _fleet(workers_wait=True, switch_waits_for=switch_waits_for)[-2:]
    assert fleet.step.key is Step.FLEET and fleet.ordered is True
    assert proxy.step.key is Step.PROXY and proxy.ordered is True
    *_, unordered = _fleet(workers_wait=True, switch_waits_for=("workers",))
    assert unordered.step.key is Step.PROXY and unordered.ordered is False


# --- the notebook app -------------------------------------------------------------------------


def test_the_notebook_apps_local_stack_with_a_worker(tmp_path: Path) -> None:
    """A differently shaped app (ASGI under Uvicorn, a settings package): its worker gets the
    same environment as its replicas and waits for its migration job."""
    section = {
        "services": {"jobs": {"command": ["python", "manage.py", "process_jobs"], "count": 2}}
    }

    plan = plan_stack(notebook_with_workers(tmp_path, "local", section), "local")
    recording = plan.recording
    site = "notebook-local"
    workers = workers_of(recording, site)
    assert sorted(worker.name for worker in workers) == [f"{site}-workers-jobs-{n}" for n in (1, 2)]
    replica = replicas_of(recording, site)[0].inputs
    assert "DJANGO_SETTINGS_MODULE=notebook.settings.production" in replica["envs"]
    verdict = recording.one(JOB_VERDICT)
    for worker in workers:
        assert worker.inputs["envs"] == replica["envs"]
        assert worker.inputs["image"] == replica["image"]
        assert worker.inputs["command"] == ["python", "manage.py", "process_jobs"]
        assert recording.depends_on(worker.urn, verdict.urn)
    assert all(found.ordered for found in plan.release_order()[1:])
    assert recording.outputs["workerContainers"] == {
        "jobs": [f"{site}-workers-jobs-{n}-a1b2c3d" for n in (1, 2)]
    }


# --- the component on its own -------------------------------------------------------------------


def test_the_component_builds_from_its_args_alone_and_exposes_its_containers() -> None:
    built: list[LocalWorkers] = []

    def program() -> None:
        built.append(
            LocalWorkers(
                "shop-workers",
                LocalWorkersArgs(
                    image="shop:1",
                    network_name="shop",
                    workers=WorkersConfig(
                        services={"celery": WorkerConfig(command=["celery", "worker"], count=2)},
                        scheduler=SchedulerConfig(command=["celery", "beat"]),
                    ),
                    environment={"REDIS_URL": "redis://redis:6379/0"},
                ),
                opts=pulumi.ResourceOptions(protect=True),
            )
        )
        LocalWorkers("idle", LocalWorkersArgs(image="shop:1", network_name="shop"))

    recorded = record(program, project="shop", stack="dev", config={})
    workers = built[0]
    assert sorted(workers.workers) == ["celery"]
    assert workers.scheduler is not None
    (component,) = recorded.find(WORKERS, "shop-workers")
    children = recorded.children(component.urn)
    assert sorted(child.name for child in children) == [
        "shop-workers-celery-1",
        "shop-workers-celery-2",
        "shop-workers-scheduler",
    ]
    for child in children:
        assert child.options.get("protect") is True, child.name
        assert child.inputs["image"] == "shop:1"
        assert child.inputs["envs"] == ["REDIS_URL=redis://redis:6379/0"]
        assert "mounts" not in child.inputs
    (idle,) = recorded.find(WORKERS, "idle")
    assert recorded.children(idle.urn) == []
