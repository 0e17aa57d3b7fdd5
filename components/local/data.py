"""PostgreSQL and Redis for the local target: containers on the site's private network whose data
lives in named volumes, so it outlives every container (an app release, an image upgrade, a
`pulumi up` that replaces them) until the stack is destroyed."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from pulumi_django.components.args import arg
from pulumi_django.components.local.containers import (
    HealthCheck,
    env_list,
    long_running,
    loopback_port,
    on_network,
)
from pulumi_django.components.site import POSTGRES_PORT, REDIS_PORT
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.config.local import LocalConfig

POSTGRES_HOST = "postgres"
REDIS_HOST = "redis"
# Where the official image keeps its data (its VOLUME); the cluster goes one level down, as the
# image's documentation advises for a mounted volume.
POSTGRES_VOLUME_PATH = "/var/lib/postgresql/data"
POSTGRES_PGDATA = f"{POSTGRES_VOLUME_PATH}/pgdata"
REDIS_VOLUME_PATH = "/data"
# PostgreSQL's image stops with SIGINT (fast shutdown); this is ample for a checkpoint.
DATA_STOP_TIMEOUT_SECONDS = 30
PASSWORD_LENGTH = 32
# The image's entrypoint drops to the `redis` user when it starts `redis-server` itself; the
# shell is only there to pass the password from the environment, not the command line.
REDIS_COMMAND = (
    'exec docker-entrypoint.sh redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes'
)


@dataclass(frozen=True, kw_only=True)
class LocalDataArgs:
    """Which images run, what they hold, and where they are reachable."""

    network_name: pulumi.Input[str] = arg(
        "The private Docker network the two containers join, as `postgres` and `redis`."
    )
    local: LocalConfig = arg(
        "The local section: the PostgreSQL and Redis images (`postgresImage`, `redisImage`) "
        "and their optional loopback ports (`postgresPort`, `redisPort`). Default: the "
        "section's defaults (official Alpine images, no published port).",
        default_factory=LocalConfig,
    )
    database: DatabaseConfig = arg(
        "The database section: the database's `name` and `username`; the rest is for RDS. "
        "Default: the section's defaults.",
        default_factory=DatabaseConfig,
    )


class LocalData(pulumi.ComponentResource):
    """The database and the cache the app containers (and the migration job) connect to."""

    database_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]
    generated_database_password: random.RandomPassword
    generated_redis_password: random.RandomPassword
    postgres: docker.Container
    postgres_volume: docker.Volume
    postgres_image: docker.RemoteImage
    redis: docker.Container
    redis_volume: docker.Volume
    redis_image: docker.RemoteImage
    environment: dict[str, pulumi.Input[str]]
    container_names: list[pulumi.Output[str]]

    def __init__(
        self, name: str, args: LocalDataArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:Data", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Two containers cannot share a data directory: a replacement stops the old one first.
        replace_in_place = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        local = args.local
        self.generated_database_password = random.RandomPassword(
            f"{name}-postgres-password", length=PASSWORD_LENGTH, special=False, opts=child
        )
        self.generated_redis_password = random.RandomPassword(
            f"{name}-redis-password", length=PASSWORD_LENGTH, special=False, opts=child
        )
        # Secret in the program itself, not only once the engine has marked the result secret.
        self.database_password = pulumi.Output.secret(self.generated_database_password.result)
        self.redis_password = pulumi.Output.secret(self.generated_redis_password.result)
        database = args.database

        def data_service(
            service: str,
            *,
            image: str,
            volume_path: str,
            port: int,
            loopback: int | None,
            health: HealthCheck,
            environment: dict[str, pulumi.Input[str]],
            command: list[str] | None = None,
        ) -> tuple[docker.Volume, docker.RemoteImage, docker.Container]:
            """`service` on the network under its own name, its data in the volume of that name."""
            volume = docker.Volume(f"{name}-{service}", name=f"{name}-{service}", opts=child)
            pulled = docker.RemoteImage(
                f"{name}-{service}-image", name=image, keep_locally=True, opts=child
            )
            container = docker.Container(
                f"{name}-{service}",
                name=f"{name}-{service}",
                image=pulled.image_id,
                command=command,
                envs=env_list(environment),
                volumes=[
                    docker.ContainerVolumeArgs(volume_name=volume.name, container_path=volume_path)
                ],
                networks_advanced=on_network(args.network_name, service),
                ports=loopback_port(port, loopback),
                healthcheck=health.args(),
                wait=True,
                wait_timeout=health.wait_timeout_seconds,
                **long_running(DATA_STOP_TIMEOUT_SECONDS),
                opts=replace_in_place,
            )
            return volume, pulled, container

        postgres_health = HealthCheck(
            # Over TCP: the image's first-start initialisation runs a socket-only server.
            ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", database.username, "-d", database.name],
            start_period_seconds=20,
        )
        self.postgres_volume, self.postgres_image, self.postgres = data_service(
            POSTGRES_HOST,
            image=local.postgres_image,
            volume_path=POSTGRES_VOLUME_PATH,
            port=POSTGRES_PORT,
            loopback=local.postgres_port,
            health=postgres_health,
            environment={
                "POSTGRES_DB": database.name,
                "POSTGRES_USER": database.username,
                "POSTGRES_PASSWORD": self.database_password,
                "PGDATA": POSTGRES_PGDATA,
            },
        )
        self.redis_volume, self.redis_image, self.redis = data_service(
            REDIS_HOST,
            image=local.redis_image,
            volume_path=REDIS_VOLUME_PATH,
            port=REDIS_PORT,
            loopback=local.redis_port,
            health=HealthCheck(
                ["CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG'],
                start_period_seconds=10,
            ),
            environment={"REDIS_PASSWORD": self.redis_password},
            command=["sh", "-c", REDIS_COMMAND],
        )

        # How the app connects (docs/local-docker.md lists the whole environment).
        self.environment = {
            "DATABASE_HOST": POSTGRES_HOST,
            "DATABASE_PORT": str(POSTGRES_PORT),
            "DATABASE_NAME": database.name,
            "DATABASE_USER": database.username,
            "DATABASE_PASSWORD": self.database_password,
            # The PostgreSQL container speaks no TLS; it is reachable on the private network only.
            "DATABASE_SSLMODE": "disable",
            "REDIS_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            "REDIS_PASSWORD": self.redis_password,
        }
        self.container_names = [self.postgres.name, self.redis.name]
        self.register_outputs(
            {
                "database_host": POSTGRES_HOST,
                "redis_host": REDIS_HOST,
                "containers": self.container_names,
            }
        )
