"""Background workers and the scheduler on AWS (issue 17, item 5): an ECS service each, from the
web task's image, environment, secrets and roles; released after the migration job with the
fleet's circuit breaker and rollout check; the scheduler never two at once. In the shipped prod
stack, in the notebook app's stack, and built from the component's args alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from ecs_request import register_task_definition_problems
from notebook_workers import notebook_with_workers

from pulumi_django.cli.plan import Plan, plan_stack, render_text
from pulumi_django.components.args import ComponentArgsError
from pulumi_django.components.aws.app_task import (
    AppTask,
    AppTaskArgs,
    CacheEndpoint,
    DatabaseEndpoint,
)
from pulumi_django.components.aws.worker_service import WorkerService, WorkerServiceArgs
from pulumi_django.config import StackConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.workers import SchedulerConfig, WorkerConfig
from pulumi_django.recorder import RecordedResource, Recording, record
from pulumi_django.release_steps import Step
from pulumi_django.rendering.container_definitions import (
    AppContainer,
    TaskLogs,
    release_log_prefix,
    worker_container_definition,
)

ROOT = Path(__file__).resolve().parent.parent
SERVICE = "aws:ecs/service:Service"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
WORKER_SERVICE = "pulumi-django:fleet:WorkerService"
SCALING_TARGET = "aws:appautoscaling/target:Target"
SCALING_POLICY = "aws:appautoscaling/policy:Policy"
VERIFICATION = "pulumi-python:dynamic/fleet:RolloutVerification"
MIGRATION_JOB = "pulumi-python:dynamic/migrations:MigrationJob"
GRANTS_AND_SECRET_VERSIONS = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:secretsmanager/secretVersion:SecretVersion",
)
# Task definition inputs of the Pulumi provider that ECS never sees.
PROVIDER_ONLY = {"skipDestroy", "trackLatest", "region"}
CLUSTER_ARN = "arn:aws:ecs:eu-west-1:123456789012:cluster/shop-cluster"
IMAGE = f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop@sha256:{'ab' * 32}"


# --- reading a plan ---------------------------------------------------------------------------


def child(recording: Recording, component: RecordedResource, type_: str) -> RecordedResource:
    [found] = [r for r in recording.children(component.urn) if r.type == type_]
    return found


def children(recording: Recording, component: RecordedResource, type_: str) -> list[Any]:
    return [r for r in recording.children(component.urn) if r.type == type_]


def containers(task_definition: RecordedResource) -> list[dict[str, Any]]:
    definitions: list[dict[str, Any]] = json.loads(task_definition.inputs["containerDefinitions"])
    return definitions


def web_app_container(recording: Recording) -> dict[str, Any]:
    task = recording.one("pulumi-django:fleet:AppTask")
    [app] = [c for c in containers(child(recording, task, TASK_DEFINITION)) if c["name"] == "app"]
    return app


def processes(recording: Recording, site: str) -> dict[str, RecordedResource]:
    """The WorkerService components by worker name (`scheduler` for the scheduler)."""
    found = {}
    for component in recording.find(WORKER_SERVICE):
        name = component.name.removeprefix(f"{site}-")
        found[name.removeprefix("worker-")] = component
    return found


@pytest.fixture(scope="module")
def prod(stack_plan: Callable[[str], Plan]) -> Plan:
    return stack_plan("prod")


def prod_config(plan: Plan) -> StackConfig:
    assert plan.config is not None
    return plan.config


# --- the shipped prod stack -------------------------------------------------------------------


def test_prod_runs_two_worker_services_and_the_scheduler(prod: Plan) -> None:
    config = prod_config(prod)
    recording = prod.recording
    found = processes(recording, config.name)
    assert set(found) == {"default", "emails", "scheduler"}
    assert set(config.workers.services) == {"default", "emails"}
    assert config.workers.scheduler is not None
    assert recording.outputs["workerServices"] == {
        process: f"{component.name}-service-a1b2c3d" for process, component in found.items()
    }
    for component in found.values():
        assert component.parent == recording.one("pulumi-django:site:AwsSite").urn


def test_every_process_waits_for_the_migration_job_and_the_plan_says_so(prod: Plan) -> None:
    recording = prod.recording
    job = recording.one(MIGRATION_JOB)
    found = processes(recording, prod_config(prod).name)
    services = {process: child(recording, c, SERVICE) for process, c in found.items()}
    for service in services.values():
        assert recording.depends_on(service.urn, job.urn)
        # Nothing of the release before waits for a worker.
        assert not recording.depends_on(job.urn, service.urn)
    # The release history records the release once its workers rolled out too.
    history = recording.one("pulumi-python:dynamic/releases:ReleaseHistory")
    assert all(recording.depends_on(history.urn, s.urn) for s in services.values())
    # The scheduler's new jobs find new workers: it rolls once they have.
    for process in ("default", "emails"):
        assert recording.depends_on(services["scheduler"].urn, services[process].urn)
    fleet = next(step for step in prod.release_order() if step.step.key is Step.FLEET)
    assert {s.urn for s in services.values()} <= {r.urn for r in fleet.resources}
    assert fleet.after is not None and fleet.after.key is Step.MIGRATE and fleet.ordered
    # The text `pulumi-django plan` prints: the workers in the fleet's step, after the job's.
    lines = render_text(prod).split("Release order:\n", 1)[1].splitlines()
    numbers = {line.split(".")[0].strip(): line for line in lines[:6] if "." in line}
    [migrate] = [n for n, line in numbers.items() if "migration job" in line]
    [rolled] = [n for n, line in numbers.items() if "app fleet updated" in line]
    assert int(rolled) > int(migrate)
    for service in services.values():
        assert service.name in numbers[rolled]
    assert numbers[rolled].endswith(f"(waits for step {migrate})")


def test_workers_roll_new_tasks_first_and_the_scheduler_never_runs_twice(prod: Plan) -> None:
    config = prod_config(prod)
    recording = prod.recording
    web = child(recording, recording.one("pulumi-django:fleet:AppService"), SERVICE).inputs
    for process, component in processes(recording, config.name).items():
        inputs = child(recording, component, SERVICE).inputs
        if process == "scheduler":
            expected = (1, 0, 100)
        else:
            expected = (config.workers.services[process].count, 100, 200)
        assert (
            inputs["desiredCount"],
            inputs["deploymentMinimumHealthyPercent"],
            inputs["deploymentMaximumPercent"],
        ) == expected, process
        assert inputs["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
        assert inputs["waitForSteadyState"] is True
        assert inputs["deploymentController"] == {"type": "ECS"}
        # No load balancer, no proxy: nothing connects to a worker.
        assert "loadBalancers" not in inputs
        assert "healthCheckGracePeriodSeconds" not in inputs
        assert inputs["networkConfiguration"] == web["networkConfiguration"]
        assert inputs["enableExecuteCommand"] == config.fleet.enable_execute_command
        task = child(recording, component, TASK_DEFINITION)
        assert (
            inputs["taskDefinition"]
            == f"arn:aws:ecs:us-east-1:123456789012:task-definition/{task.inputs['family']}:1"
        )
        # `pulumi up` fails when the release did not take, as for the web fleet.
        verification = child(recording, component, VERIFICATION)
        assert verification.inputs["service"] == f"{component.name}-service-a1b2c3d"
        assert verification.inputs["task_definition"] == inputs["taskDefinition"]
        assert recording.depends_on(verification.urn, child(recording, component, SERVICE).urn)


def test_each_process_runs_its_command_from_the_web_tasks_image_environment_and_secrets(
    prod: Plan,
) -> None:
    config = prod_config(prod)
    recording = prod.recording
    web_task = child(recording, recording.one("pulumi-django:fleet:AppTask"), TASK_DEFINITION)
    app = web_app_container(recording)
    for process, component in processes(recording, config.name).items():
        settings = (
            config.workers.scheduler if process == "scheduler" else config.workers.services[process]
        )
        assert settings is not None
        task = child(recording, component, TASK_DEFINITION)
        family = (
            f"{config.name}-scheduler"
            if process == "scheduler"
            else f"{config.name}-worker-{process}"
        )
        assert task.inputs["family"] == family
        assert (task.inputs["cpu"], task.inputs["memory"]) == (
            str(settings.cpu),
            str(settings.memory),
        )
        assert task.inputs["runtimePlatform"]["cpuArchitecture"] == config.fleet.architecture
        for key in ("taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities"):
            assert task.inputs[key] == web_task.inputs[key], key
        assert task.inputs["skipDestroy"] is True
        # Registered, as the web task is, once every grant and secret version exists.
        waits = {
            urn
            for urn in web_task.dependencies
            if any(kind in urn for kind in GRANTS_AND_SECRET_VERSIONS)
        }
        assert waits and waits <= set(task.dependencies)
        [container] = containers(task)
        assert container["name"] == process
        assert container["command"] == settings.command
        assert container["stopTimeout"] == settings.stop_timeout_seconds
        assert container["image"] == app["image"]
        assert container["environment"] == app["environment"]
        assert container["secrets"] == app["secrets"]
        for key in ("user", "readonlyRootFilesystem", "mountPoints", "linuxParameters"):
            assert container[key] == app[key], key
        assert container["linuxParameters"]["initProcessEnabled"] is True
        assert "portMappings" not in container and "healthCheck" not in container
        options = container["logConfiguration"]["options"]
        assert options["awslogs-group"] == app["logConfiguration"]["options"]["awslogs-group"]
        assert options["awslogs-stream-prefix"] == release_log_prefix(app["image"])


def test_every_worker_task_definition_is_a_valid_register_request(prod: Plan) -> None:
    recording = prod.recording
    for component in processes(recording, prod_config(prod).name).values():
        inputs = child(recording, component, TASK_DEFINITION).inputs
        request = {
            **{key: value for key, value in inputs.items() if key not in PROVIDER_ONLY},
            "containerDefinitions": json.loads(inputs["containerDefinitions"]),
        }
        assert register_task_definition_problems(request) == [], component.name


def test_only_a_worker_with_room_between_its_bounds_autoscales(prod: Plan) -> None:
    config = prod_config(prod)
    recording = prod.recording
    for process, component in processes(recording, config.name).items():
        service = child(recording, component, SERVICE)
        targets = children(recording, component, SCALING_TARGET)
        settings = config.workers.services.get(process)
        if settings is None or settings.ceiling == settings.floor:
            assert targets == [] and children(recording, component, SCALING_POLICY) == []
            assert "ignoreChanges" not in service.options
            continue
        [target] = targets
        assert (target.inputs["minCapacity"], target.inputs["maxCapacity"]) == (
            settings.floor,
            settings.ceiling,
        )
        assert target.inputs["resourceId"] == (
            f"service/{config.name}-cluster-a1b2c3d/{component.name}-service-a1b2c3d"
        )
        policy = child(recording, component, SCALING_POLICY).inputs
        tracking = policy["targetTrackingScalingPolicyConfiguration"]
        assert tracking["targetValue"] == settings.cpu_target_percent
        assert tracking["predefinedMetricSpecification"] == {
            "predefinedMetricType": "ECSServiceAverageCPUUtilization"
        }
        # A count autoscaling moved is not reset by the next `pulumi up`.
        assert service.options["ignoreChanges"] == ["desiredCount"]
    assert {p for p, s in config.workers.services.items() if s.ceiling > s.floor} == {"default"}


def test_a_stack_without_workers_has_none_and_no_output(stack_plan: Callable[[str], Plan]) -> None:
    recording = stack_plan("dev").recording
    assert recording.find(WORKER_SERVICE) == []
    assert "workerServices" not in recording.outputs


EXEC_AGENT_PATHS = {"/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"}


def task_definitions_with_exec(recording: Recording) -> dict[str, dict[str, Any]]:
    """Every task definition of the web task and the processes, by component name: its volumes
    and its app-image container (`app`, or the process's)."""
    components = [recording.one("pulumi-django:fleet:AppTask"), *recording.find(WORKER_SERVICE)]
    found = {}
    for component in components:
        task = child(recording, component, TASK_DEFINITION)
        [process] = [c for c in containers(task) if c["name"] != "proxy"]
        found[component.name] = {"inputs": task.inputs, "container": process}
    return found


def test_with_ecs_exec_every_app_image_container_gets_the_ssm_agents_volumes(
    prod: Plan, tmp_path: Path
) -> None:
    """ECS Exec's SSM agent writes under three paths: with `fleet.enableExecuteCommand` the web
    app container and every worker's mount a task volume at each, on a read-only root; without
    it, none. Both are valid RegisterTaskDefinition requests."""
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"]["django:fleet"]["enableExecuteCommand"] = True
    document["config"]["django:app"] = {
        **document["config"].get("django:app", {}),
        "context": str(ROOT / "examples" / "bigfoot"),
    }
    (tmp_path / "Pulumi.prod.yaml").write_text(yaml.safe_dump(document))
    with_exec = plan_stack(tmp_path, "prod").recording

    for recording, on in ((with_exec, True), (prod.recording, False)):
        found = task_definitions_with_exec(recording)
        assert len(found) == 4  # the web task, two workers and the scheduler
        for component, task in found.items():
            container, inputs = task["container"], task["inputs"]
            assert container["readonlyRootFilesystem"] is True, component
            mounts = {m["containerPath"]: m["sourceVolume"] for m in container["mountPoints"]}
            assert set(mounts) & EXEC_AGENT_PATHS == (EXEC_AGENT_PATHS if on else set())
            assert set(mounts.values()) <= {v["name"] for v in inputs["volumes"]}, component
            request = {
                **{key: value for key, value in inputs.items() if key not in PROVIDER_ONLY},
                "containerDefinitions": containers_from(inputs),
            }
            assert register_task_definition_problems(request) == [], component


def containers_from(inputs: dict[str, Any]) -> list[dict[str, Any]]:
    definitions: list[dict[str, Any]] = json.loads(inputs["containerDefinitions"])
    return definitions


def test_the_scheduler_stops_within_ten_seconds_and_its_service_is_deleted_before_replaced(
    prod: Plan,
) -> None:
    """ECS's maximumPercent counts RUNNING and PENDING tasks, not one still STOPPING: the old
    scheduler may overlap the new one for its stop timeout, 10 s by default (workers: 120)."""
    config = prod_config(prod)
    assert config.workers.scheduler is not None
    assert "stop_timeout_seconds" not in config.workers.scheduler.model_fields_set
    recording = prod.recording
    for process, component in processes(recording, config.name).items():
        [container] = containers(child(recording, component, TASK_DEFINITION))
        options = child(recording, component, SERVICE).options
        if process == "scheduler":
            assert container["stopTimeout"] == 10
            assert options.get("deleteBeforeReplace") is True
        else:
            assert container["stopTimeout"] == 120
            assert "deleteBeforeReplace" not in options


def test_a_process_health_check_is_its_containers_and_a_valid_request() -> None:
    check = {
        "command": ["sh", "-c", "celery -A shop inspect ping -d celery@$HOSTNAME"],
        "startPeriodSeconds": 60,
        "intervalSeconds": 30,
        "retries": 3,
        "timeoutSeconds": 10,
    }
    recording = record_processes(
        **{
            "shop-celery": {
                "process": WorkerConfig.model_validate(
                    {"command": ["celery", "-A", "shop", "worker"], "healthCheck": check}
                )
            },
            "shop-beat": {
                "process": SchedulerConfig.model_validate(
                    {"command": ["celery", "-A", "shop", "beat"], "healthCheck": check}
                )
            },
            "shop-mail": {"process": WorkerConfig(command=["mail"])},
        }
    )
    for name in ("shop-celery", "shop-beat"):
        task = child(recording, recording.one(WORKER_SERVICE, name), TASK_DEFINITION)
        [container] = containers(task)
        assert container["healthCheck"] == {
            "command": ["CMD", "sh", "-c", "celery -A shop inspect ping -d celery@$HOSTNAME"],
            "interval": 30,
            "timeout": 10,
            "retries": 3,
            "startPeriod": 60,
        }
        request = {
            **{key: value for key, value in task.inputs.items() if key not in PROVIDER_ONLY},
            "containerDefinitions": [container],
        }
        assert register_task_definition_problems(request) == [], name
    mail = child(recording, recording.one(WORKER_SERVICE, "shop-mail"), TASK_DEFINITION)
    assert "healthCheck" not in containers(mail)[0]


# --- the notebook app -------------------------------------------------------------------------


def test_the_notebook_apps_aws_stack_with_a_worker_and_a_scheduler(tmp_path: Path) -> None:
    """A differently shaped app (ASGI under Uvicorn, a settings package): its processes get
    the app container's settings and wait for its migration job."""
    section = {
        "services": {
            "jobs": {
                "command": ["python", "manage.py", "process_jobs"],
                "cpu": 256,
                "memory": 512,
                "stopTimeoutSeconds": 45,
            }
        },
        "scheduler": {"command": ["python", "manage.py", "schedule"], "stopTimeoutSeconds": 5},
    }

    plan = plan_stack(notebook_with_workers(tmp_path, "dev", section), "dev")
    recording = plan.recording
    found = processes(recording, "notebook-dev")
    assert set(found) == {"jobs", "scheduler"}
    app = web_app_container(recording)
    environment = {pair["name"]: pair["value"] for pair in app["environment"]}
    assert environment["DJANGO_SETTINGS_MODULE"] == "notebook.settings.production"
    job = recording.one(MIGRATION_JOB)
    for process, timeout in (("jobs", 45), ("scheduler", 5)):
        [container] = containers(child(recording, found[process], TASK_DEFINITION))
        assert container["environment"] == app["environment"]
        assert container["secrets"] == app["secrets"]
        assert container["stopTimeout"] == timeout
        assert recording.depends_on(child(recording, found[process], SERVICE).urn, job.urn)
    assert all(step.ordered for step in plan.release_order()[1:])
    assert recording.outputs["workerServices"] == {
        "jobs": "notebook-dev-worker-jobs-service-a1b2c3d",
        "scheduler": "notebook-dev-scheduler-service-a1b2c3d",
    }


# --- the component on its own -----------------------------------------------------------------


def app_task(name: str) -> AppTask:
    return AppTask(
        name,
        AppTaskArgs(
            image_ref=IMAGE,
            repository_arn="arn:aws:ecr:eu-west-1:123456789012:repository/shop",
            database=DatabaseEndpoint(
                host="db.internal",
                port=5432,
                name="app",
                username="django",
                secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
            ),
            cache=CacheEndpoint(
                url="rediss://cache.internal:6379/0",
                auth_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:c-AbCdEf",
            ),
            site_host="shop.example.com",
            site_url="https://shop.example.com",
            static_url="https://shop.example.com/static/",
            vpc_cidr="10.0.0.0/16",
            stop_timeout_seconds=35,
        ),
    )


def record_processes(**processes: dict[str, Any]) -> Recording:
    """A web task and one WorkerService per keyword, given only the args it needs plus those."""

    def program() -> None:
        task = app_task("shop")
        for name, extra in processes.items():
            WorkerService(
                name,
                WorkerServiceArgs(
                    app_task=task,
                    cluster=CLUSTER_ARN,
                    subnet_ids=["subnet-a", "subnet-b"],
                    security_group_ids=["sg-app"],
                    **extra,
                ),
            )

    return record(program, project="shop", stack="dev", config={"aws:region": "eu-west-1"})


def test_the_component_builds_from_its_args_alone() -> None:
    recording = record_processes(
        **{
            "shop-celery": {"process": WorkerConfig(command=["celery", "-A", "shop", "worker"])},
            "shop-beat": {"process": SchedulerConfig(command=["celery", "-A", "shop", "beat"])},
        }
    )
    worker, beat = (recording.one(WORKER_SERVICE, name) for name in ("shop-celery", "shop-beat"))
    [worker_container] = containers(child(recording, worker, TASK_DEFINITION))
    [beat_container] = containers(child(recording, beat, TASK_DEFINITION))
    # Default container names: `worker`, and `scheduler` for the scheduler.
    assert (worker_container["name"], beat_container["name"]) == ("worker", "scheduler")
    assert worker_container["image"] == beat_container["image"] == IMAGE
    assert child(recording, worker, TASK_DEFINITION).inputs["family"] == "shop-celery"
    app = web_app_container(recording)
    assert worker_container["environment"] == app["environment"]
    assert worker_container["secrets"] == app["secrets"]
    worker_service = child(recording, worker, SERVICE).inputs
    beat_service = child(recording, beat, SERVICE).inputs
    assert worker_service["cluster"] == beat_service["cluster"] == CLUSTER_ARN
    assert (worker_service["desiredCount"], beat_service["desiredCount"]) == (1, 1)
    assert children(recording, worker, SCALING_TARGET) == []
    # Given no `after`, the service waits for its task definition alone.
    assert child(recording, worker, SERVICE).dependencies == [
        child(recording, worker, TASK_DEFINITION).urn
    ]


def test_spot_is_for_workers_and_a_brought_cluster_names_the_scaling_target() -> None:
    fleet = FleetConfig(spot_percent=25, enable_execute_command=True, architecture="ARM64")
    recording = record_processes(
        **{
            "shop-celery": {
                "process": WorkerConfig(command=["celery"], count=2, max_count=5),
                "container_name": "celery",
                "fleet": fleet,
            },
            "shop-beat": {"process": SchedulerConfig(command=["beat"]), "fleet": fleet},
        }
    )
    worker, beat = (recording.one(WORKER_SERVICE, name) for name in ("shop-celery", "shop-beat"))
    worker_service = child(recording, worker, SERVICE).inputs
    beat_service = child(recording, beat, SERVICE).inputs
    weights = {
        s["capacityProvider"]: s["weight"] for s in worker_service["capacityProviderStrategies"]
    }
    assert weights == {"FARGATE": 75, "FARGATE_SPOT": 25}
    # One scheduler task: never on Spot, whose interruption would leave no schedule.
    assert beat_service["capacityProviderStrategies"] == [
        {"capacityProvider": "FARGATE", "weight": 100}
    ]
    assert worker_service["enableExecuteCommand"] is beat_service["enableExecuteCommand"] is True
    task = child(recording, worker, TASK_DEFINITION).inputs
    assert task["runtimePlatform"]["cpuArchitecture"] == "ARM64"
    target = child(recording, worker, SCALING_TARGET).inputs
    assert target["resourceId"] == "service/shop-cluster/shop-celery-service-a1b2c3d"
    assert (target["minCapacity"], target["maxCapacity"]) == (2, 5)
    assert containers(child(recording, worker, TASK_DEFINITION))[0]["name"] == "celery"


def test_the_scheduler_waits_for_what_it_is_given() -> None:
    def program() -> None:
        task = app_task("shop")
        common: dict[str, Any] = {
            "app_task": task,
            "cluster": CLUSTER_ARN,
            "subnet_ids": ["subnet-a"],
            "security_group_ids": ["sg-app"],
        }
        migrate = pulumi.CustomResource("test:release:Migration", "migrate", {})
        worker = WorkerService(
            "shop-celery",
            WorkerServiceArgs(process=WorkerConfig(command=["celery"]), after=[migrate], **common),
        )
        WorkerService(
            "shop-beat",
            WorkerServiceArgs(
                process=SchedulerConfig(command=["beat"]), after=[migrate, worker], **common
            ),
        )

    recording = record(program, project="shop", stack="dev", config={"aws:region": "eu-west-1"})
    migrate = recording.one("test:release:Migration")
    worker = child(recording, recording.one(WORKER_SERVICE, "shop-celery"), SERVICE)
    beat = child(recording, recording.one(WORKER_SERVICE, "shop-beat"), SERVICE)
    assert recording.depends_on(worker.urn, migrate.urn)
    assert recording.depends_on(beat.urn, worker.urn)
    assert not recording.depends_on(worker.urn, beat.urn)


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        (
            "shop-celery",
            {"container_name": "celery worker"},
            r"^WorkerServiceArgs\.container_name: 'celery worker' is no ECS container name",
        ),
        (
            "s" * 240,
            {},
            r"^WorkerService name 's+': the WorkerService ECS service would be named .*255",
        ),
    ],
)
def test_mistakes_are_one_line_naming_the_arg(
    name: str, extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ComponentArgsError, match=message) as raised:
        record_processes(**{name: {"process": WorkerConfig(command=["celery"]), **extra}})
    assert "\n" not in str(raised.value)


# --- the renderer -----------------------------------------------------------------------------


def test_the_worker_container_is_the_app_process_with_its_own_command() -> None:
    app = AppContainer(
        image=IMAGE,
        command=["gunicorn", "shop.wsgi:application"],
        port=8000,
        health_check_path="/healthz",
        environment={"DJANGO_SETTINGS_MODULE": "shop.settings"},
        secrets={"DJANGO_SECRET_KEY": "arn:aws:secretsmanager:r:1:secret:k"},
    )
    logs = TaskLogs(group="/ecs/shop", region="eu-west-1")
    worker = worker_container_definition(
        app, name="celery", command=["celery", "worker"], logs=logs, stop_timeout_seconds=90
    )
    assert worker["command"] == ["celery", "worker"]
    assert worker["stopTimeout"] == 90
    assert worker["environment"] == [{"name": "DJANGO_SETTINGS_MODULE", "value": "shop.settings"}]
    assert worker["secrets"] == [
        {"name": "DJANGO_SECRET_KEY", "valueFrom": "arn:aws:secretsmanager:r:1:secret:k"}
    ]
    assert worker["logConfiguration"]["options"]["awslogs-stream-prefix"] == "r-" + "ab" * 6
    with pytest.raises(ValueError, match="both as plain environment and as secret: X"):
        worker_container_definition(
            AppContainer(
                image=IMAGE,
                command=["gunicorn"],
                port=8000,
                health_check_path="/healthz",
                environment={"X": "1"},
                secrets={"X": "arn:aws:ssm:r:1:parameter/x"},
            ),
            name="celery",
            command=["celery"],
            logs=logs,
            stop_timeout_seconds=90,
        )
