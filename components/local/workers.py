"""The background workers of the local target, and the one scheduler: containers of the
release's image on the stack's network, started once the migrations succeeded.

Each worker service of `django:workers` runs `count` containers of its `command` (autoscaling
bounds do not apply locally); the scheduler runs one. They take the migration job's gate as their
image, so a release never starts a worker before its migrations ran, get the app's environment
and media volume, and no port; an image's HEALTHCHECK (the example apps' asks the web port) is
replaced by the process's own `healthCheck`, or turned off: nothing listens there in a worker.

A release replaces them as it replaces the replicas, with the difference the scheduler needs:

- a worker's replacement is created before the container it replaces is deleted (no fixed
  name), so the old and the new version's workers overlap for a while, as on AWS;
- the scheduler is deleted before its replacement starts (`delete_before_replace`), so there are
  never two schedulers, and no periodic job is sent twice.

Pulumi's delete (and `docker stop`) sends SIGTERM, the warm shutdown of Celery, RQ and Django's
task workers, then waits the process's `stopTimeoutSeconds` for the jobs it is running before
SIGKILL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from pulumi_django.components.args import arg
from pulumi_django.components.local.containers import (
    HealthCheck,
    app_process,
    confined,
    long_running,
)
from pulumi_django.config.workers import (
    SCHEDULER_NAME,
    ProcessHealthCheck,
    ProcessSize,
    WorkersConfig,
)

# The warm shutdown of Celery, RQ and Django's task workers.
STOP_SIGNAL = "SIGTERM"
# Turns off a HEALTHCHECK the image declares (Docker's `--no-healthcheck`).
NO_HEALTH_CHECK = ["NONE"]


@dataclass(frozen=True, kw_only=True)
class LocalWorkersArgs:
    """What the workers and the scheduler run, and what they are attached to."""

    image: pulumi.Input[str] = arg(
        "The image they run (an image ID or name). `LocalSite` passes the migration job's gate, "
        "as to the replicas, so they start only once the migrations succeeded."
    )
    network_name: pulumi.Input[str] = arg(
        "The private Docker network they join (the database and Redis are on it)."
    )
    workers: WorkersConfig = arg(
        "The workers section: each worker service's command, `count` (its containers; "
        "`minCount`/`maxCount` do not apply locally), CPU, memory and stop timeout, and the "
        "scheduler. Default: none of either.",
        default_factory=WorkersConfig,
    )
    environment: Mapping[str, pulumi.Input[str]] = arg(
        "The app's environment (database, cache, media, Django settings), as the replicas get "
        "it; a secret value keeps its entry secret. Default: none.",
        default_factory=dict,
    )
    mounts: Sequence[docker.ContainerMountArgs] = arg(
        "The replicas' shared volumes (the media volume). Default: none.", default=()
    )


def docker_health_check(check: ProcessHealthCheck | None) -> docker.ContainerHealthcheckArgs:
    """Docker's health check of a worker or the scheduler: the process's own (its command,
    `CMD` form, as on ECS), or none: the image's HEALTHCHECK asks the web port, where nothing
    listens in a worker."""
    if check is None:
        return docker.ContainerHealthcheckArgs(tests=NO_HEALTH_CHECK)
    return HealthCheck(
        test=["CMD", *check.command],
        interval_seconds=check.interval_seconds,
        timeout_seconds=check.timeout_seconds,
        retries=check.retries,
        start_period_seconds=check.start_period_seconds,
    ).args()


class LocalWorkers(pulumi.ComponentResource):
    """`count` containers per worker service and one scheduler container; `names` maps each
    worker (and `scheduler`) to its containers' names."""

    # Worker name -> its containers, in order.
    workers: dict[str, list[docker.Container]]
    scheduler: docker.Container | None
    names: pulumi.Output[dict[str, list[str]]]

    def __init__(
        self, name: str, args: LocalWorkersArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:Workers", name, None, opts)

        def process(
            resource_name: str,
            command: list[str],
            size: ProcessSize,
            options: pulumi.ResourceOptions,
        ) -> docker.Container:
            return docker.Container(
                # No fixed container name: a worker's replacement and the old one coexist.
                resource_name,
                # As the replicas and the AWS task run: the app user, a read-only root, /tmp.
                **app_process(
                    args.image,
                    command,
                    environment=args.environment,
                    network_name=args.network_name,
                    mounts=args.mounts,
                ),
                healthcheck=docker_health_check(size.health_check),
                **confined(size.cpu, size.memory),
                stop_signal=STOP_SIGNAL,
                **long_running(size.stop_timeout_seconds),
                opts=options,
            )

        self.workers = {
            worker: [
                process(
                    f"{name}-{worker}-{number}",
                    list(config.command),
                    config,
                    pulumi.ResourceOptions(parent=self),
                )
                for number in range(1, config.count + 1)
            ]
            for worker, config in args.workers.services.items()
        }
        scheduler = args.workers.scheduler
        self.scheduler = (
            process(
                f"{name}-{SCHEDULER_NAME}",
                list(scheduler.command),
                scheduler,
                # Never two at once: the old one has stopped before the new one starts.
                pulumi.ResourceOptions(parent=self, delete_before_replace=True),
            )
            if scheduler is not None
            else None
        )
        containers = {
            **self.workers,
            **({SCHEDULER_NAME: [self.scheduler]} if self.scheduler is not None else {}),
        }
        self.names = (
            pulumi.Output.all(
                **{
                    key: pulumi.Output.all(*[container.name for container in group])
                    for key, group in containers.items()
                }
            )
            if containers
            else pulumi.Output.from_input({})
        )
        self.register_outputs({"names": self.names})
