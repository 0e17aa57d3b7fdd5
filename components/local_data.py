"""PostgreSQL and Redis for the local target: containers on the site's private network whose data
lives in named volumes, so it outlives every container (an app release, an image upgrade, a
`pulumi up` that replaces them) until the stack is destroyed."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from pulumi_django.config import StackConfig

from .local_containers import HealthCheck, env_list, long_running, loopback_port, on_network

POSTGRES_HOST = "postgres"
POSTGRES_PORT = 5432
REDIS_HOST = "redis"
REDIS_PORT = 6379
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


class LocalData(pulumi.ComponentResource):
    """The database and the cache the app containers (and the migration job) connect to."""

    database_password: pulumi.Output[str]
    redis_password: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: StackConfig,
        network_name: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:local:Data", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Two containers cannot share a data directory: a replacement stops the old one first.
        replace_in_place = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        local = config.local
        # Secret in the program itself, not only once the engine has marked the result secret.
        self.database_password = pulumi.Output.secret(
            random.RandomPassword(
                f"{name}-postgres-password", length=PASSWORD_LENGTH, special=False, opts=child
            ).result
        )
        self.redis_password = pulumi.Output.secret(
            random.RandomPassword(
                f"{name}-redis-password", length=PASSWORD_LENGTH, special=False, opts=child
            ).result
        )
        postgres_volume = docker.Volume(f"{name}-postgres", name=f"{name}-postgres", opts=child)
        redis_volume = docker.Volume(f"{name}-redis", name=f"{name}-redis", opts=child)
        postgres_image = docker.RemoteImage(
            f"{name}-postgres-image", name=local.postgres_image, keep_locally=True, opts=child
        )
        redis_image = docker.RemoteImage(
            f"{name}-redis-image", name=local.redis_image, keep_locally=True, opts=child
        )

        database = config.database
        postgres_health = HealthCheck(
            # Over TCP: the image's first-start initialisation runs a socket-only server.
            ["CMD", "pg_isready", "-h", "127.0.0.1", "-U", database.username, "-d", database.name],
            start_period_seconds=20,
        )
        postgres = docker.Container(
            f"{name}-postgres",
            name=f"{name}-postgres",
            image=postgres_image.image_id,
            envs=env_list(
                {
                    "POSTGRES_DB": database.name,
                    "POSTGRES_USER": database.username,
                    "POSTGRES_PASSWORD": self.database_password,
                    "PGDATA": POSTGRES_PGDATA,
                }
            ),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=postgres_volume.name, container_path=POSTGRES_VOLUME_PATH
                )
            ],
            networks_advanced=on_network(network_name, POSTGRES_HOST),
            ports=loopback_port(POSTGRES_PORT, local.postgres_port),
            healthcheck=postgres_health.args(),
            wait=True,
            wait_timeout=postgres_health.wait_timeout_seconds,
            **long_running(DATA_STOP_TIMEOUT_SECONDS),
            opts=replace_in_place,
        )
        redis_health = HealthCheck(
            ["CMD-SHELL", 'REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli ping | grep -q PONG'],
            start_period_seconds=10,
        )
        redis = docker.Container(
            f"{name}-redis",
            name=f"{name}-redis",
            image=redis_image.image_id,
            command=["sh", "-c", REDIS_COMMAND],
            envs=env_list({"REDIS_PASSWORD": self.redis_password}),
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=redis_volume.name, container_path=REDIS_VOLUME_PATH
                )
            ],
            networks_advanced=on_network(network_name, REDIS_HOST),
            ports=loopback_port(REDIS_PORT, local.redis_port),
            healthcheck=redis_health.args(),
            wait=True,
            wait_timeout=redis_health.wait_timeout_seconds,
            **long_running(DATA_STOP_TIMEOUT_SECONDS),
            opts=replace_in_place,
        )

        # How the app connects (docs/local-docker.md lists the whole environment).
        self.environment: dict[str, pulumi.Input[str]] = {
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
        self.container_names = [postgres.name, redis.name]
        self.register_outputs(
            {
                "database_host": POSTGRES_HOST,
                "redis_host": REDIS_HOST,
                "containers": self.container_names,
            }
        )
