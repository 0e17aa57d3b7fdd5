"""The app task's ECS container definitions, as RegisterTaskDefinition wants them (camelCase).

Two containers share the task's network namespace:

- `proxy` (nginx or Caddy) takes the load balancer's traffic on the proxy port and forwards it
  to the app on 127.0.0.1. Its config text arrives in the `PROXY_CONFIG` environment variable
  and is written to a file at start, so the stock image is used as published: on AWS from the
  stack's own ECR by digest (`UpstreamImage.cached_ref`), never from public.ecr.aws.
- `app` runs the Django app server from the app image, by digest. It publishes no port: only
  the proxy is reachable from outside the task.

A background worker's task (`worker_container_definition`) has one container: the app's image,
environment and secrets running the worker's command.

Pure: plain values in, plain dicts out; no Pulumi, so tests feed the output to botocore's model.
docs/app-task.md explains each default.
"""

from __future__ import annotations

import hashlib
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pulumi_django.config.app import AppConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.media import MediaConfig
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.config.workers import ProcessHealthCheck

from .app_server import app_environment_defaults, app_server_command, app_server_settings
from .media import aws_media_environment
from .proxy import CONTAINER_RUNTIME_DIR, render_proxy, sidecar_site

APP_CONTAINER = "app"
PROXY_CONTAINER = "proxy"
APP_TMP_VOLUME = "app-tmp"
APP_TMP_PATH = "/tmp"  # noqa: S108 - the app container's own /tmp volume
DEFAULT_APP_USER = "10001:10001"
# Where ECS Exec's SSM agent writes in the container (aws/containers-roadmap#1359,
# aws-containers/amazon-ecs-exec-checker#21): with Exec on, each is a task volume of its own
# (Fargate ephemeral storage), so the root stays read-only.
EXEC_AGENT_VOLUMES: dict[str, str] = {
    "exec-managed-agents": "/managed-agents",
    "exec-ssm-lib": "/var/lib/amazon/ssm",
    "exec-ssm-log": "/var/log/amazon/ssm",
}

PUBLIC_ECR = "public.ecr.aws"


@dataclass(frozen=True)
class UpstreamImage:
    """A Docker Official Image as ECR Public mirrors it (same digests as Docker Hub), by tag.
    Which digest of the tag the AWS target runs is decided at deploy time (`ProxyImageCache`:
    the `proxy.imageDigest` pin, or what the tag names when the stack first pulls it)."""

    repository: str
    tag: str

    @property
    def public_ref(self) -> str:
        return f"{PUBLIC_ECR}/{self.repository}:{self.tag}"

    def cached_ref(self, registry: str, prefix: str, digest: str) -> str:
        """The image through an ECR pull-through cache rule for ECR Public whose prefix is
        `prefix`, in `registry` (`<account>.dkr.ecr.<region>.amazonaws.com`), by `digest`."""
        return f"{registry}/{prefix}/{self.repository}@{digest}"


# The proxy images, by tag. The AWS target pulls them through the stack's own ECR (a
# pull-through cache rule, `cached_ref`) by digest, so a task starts without reaching
# public.ecr.aws and always runs the same bytes; no digest is written here (one not checked
# against the registry would stop the first `pulumi up`): `ProxyImageCache` resolves the tag.
# The local target's Docker pulls `PROXY_IMAGES` by tag.
PROXY_UPSTREAM: dict[str, UpstreamImage] = {
    "nginx": UpstreamImage("docker/library/nginx", "1.28.0-alpine"),
    "caddy": UpstreamImage("docker/library/caddy", "2.10.0-alpine"),
}
PROXY_IMAGES: dict[str, str] = {
    server: image.public_ref for server, image in PROXY_UPSTREAM.items()
}
# uid 101 is the nginx image's own `nginx` user; Caddy's image has none, so `nobody`.
PROXY_USERS: dict[str, str] = {"nginx": "101:101", "caddy": "65534:65534"}
# Where the proxy writes its config file; the rendered config keeps its pid file, temp
# directories and admin socket there too. The stock images' /tmp is world-writable.
PROXY_RUNTIME_DIR = CONTAINER_RUNTIME_DIR

HEALTH_INTERVAL_SECONDS = 10
HEALTH_TIMEOUT_SECONDS = 5
HEALTH_RETRIES = 3
APP_HEALTH_START_PERIOD_SECONDS = 30
PROXY_HEALTH_START_PERIOD_SECONDS = 10
# The proxy waits this long for the app to turn healthy (Fargate's ceiling is 120 s).
PROXY_START_TIMEOUT_SECONDS = 120
# Logs go out without blocking the app when CloudWatch is slow; the buffer absorbs bursts.
LOG_MODE = "non-blocking"
LOG_BUFFER = "25m"


@dataclass(frozen=True)
class AppContainer:
    """The app server container; `secrets` maps a variable name to its `valueFrom` ARN."""

    image: str
    command: Sequence[str]
    port: int
    health_check_path: str
    user: str = DEFAULT_APP_USER
    environment: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)
    # ECS Exec on (`fleet.enableExecuteCommand`): the SSM agent's paths are writable volumes.
    execute_command: bool = False


@dataclass(frozen=True)
class ProxyContainer:
    """The reverse proxy container; `config_text` is the rendered nginx.conf or Caddyfile."""

    server: Literal["nginx", "caddy"]
    config_text: str
    port: int
    runtime_dir: str = PROXY_RUNTIME_DIR
    # None: `PROXY_IMAGES[server]`, from ECR Public by tag (the AWS target always passes its
    # own: `TaskInputs.proxy_image`).
    image: str | None = None


@dataclass(frozen=True)
class DatabaseSettings:
    """Where the app connects, and as whom. With a password, it comes separately, as a secret
    read at task start; `secret_arn` names that secret so the app can read it again after it
    rotates. With `iam_region` instead, the app logs in with an RDS IAM token per connection
    (the runtime kit signs it in that region) and has no password at all."""

    host: str
    port: int
    name: str
    user: str
    secret_arn: str | None = None
    iam_region: str | None = None

    def __post_init__(self) -> None:
        if (self.secret_arn is None) == (self.iam_region is None):
            raise ValueError("DatabaseSettings: give secret_arn (a password) or iam_region")


@dataclass(frozen=True)
class TaskLogs:
    """One CloudWatch log group for the task. Every container of a release writes under the
    release's prefix (`release_log_prefix`): stream `r-<12 hex>/<container>/<task id>`."""

    group: str
    region: str


@dataclass(frozen=True)
class TaskInputs:
    """The resolved values other resources give the task; `secrets` maps a variable name to
    its `valueFrom` (see `app_secrets`)."""

    image: str
    # The proxy image through the stack's own ECR, by digest (`UpstreamImage.cached_ref`).
    proxy_image: str
    region: str
    log_group: str
    site_host: str
    site_url: str
    static_url: str
    vpc_cidr: str
    database: DatabaseSettings
    redis_url: str
    secrets: Mapping[str, str]
    # The media bucket's name; None when media is off (`media.enabled`).
    media_bucket: str | None = None


def task_container_definitions(
    *,
    app: AppConfig,
    proxy: ProxyConfig,
    fleet: FleetConfig,
    load_balancer: LoadBalancerConfig,
    media: MediaConfig | None,
    inputs: TaskInputs,
    stop_timeout_seconds: int,
    app_user: str = DEFAULT_APP_USER,
) -> list[dict[str, Any]]:
    """The app task's container definitions: the `app` and `proxy` sections through the
    app-server and proxy renderers (the worker count follows `fleet.cpu`, the keep-alives nest
    around `load_balancer.idleTimeoutSeconds`), plus the values of the resources around the
    task. `media` is the media section when the app stores uploads in `inputs.media_bucket`."""
    site = sidecar_site(
        proxy=proxy,
        app=app,
        load_balancer=load_balancer,
        trusted_proxies=[inputs.vpc_cidr],
        runtime_dir=PROXY_RUNTIME_DIR,
    )
    return render_container_definitions(
        app=app_container(
            app=app,
            fleet=fleet,
            load_balancer=load_balancer,
            media=media,
            inputs=inputs,
            app_user=app_user,
        ),
        proxy=ProxyContainer(
            server=proxy.server,
            config_text=render_proxy(proxy.server, site),
            port=proxy.port,
            image=inputs.proxy_image,
        ),
        logs=TaskLogs(group=inputs.log_group, region=inputs.region),
        site_host=inputs.site_host,
        stop_timeout_seconds=stop_timeout_seconds,
    )


def app_container(
    *,
    app: AppConfig,
    fleet: FleetConfig,
    load_balancer: LoadBalancerConfig,
    media: MediaConfig | None,
    inputs: TaskInputs,
    app_user: str = DEFAULT_APP_USER,
) -> AppContainer:
    """The app container of `task_container_definitions`: the image, the app server's command,
    the settings contract (`app_environment`) and the secrets. The background workers
    (`worker_container_definition`) run their own commands with the same image, user,
    environment and secrets."""
    if (media is None) != (inputs.media_bucket is None):
        raise ValueError("media and inputs.media_bucket go together: give both or neither")
    media_environment = (
        aws_media_environment(
            media, bucket=inputs.media_bucket, region=inputs.region, site_url=inputs.site_url
        )
        if media is not None and inputs.media_bucket is not None
        else {}
    )
    environment = app_environment(
        settings_module=app.settings_module,
        health_check_path=app.health_check_path,
        readiness_path=app.readiness_path,
        site_host=inputs.site_host,
        site_url=inputs.site_url,
        static_url=inputs.static_url,
        database=inputs.database,
        redis_url=inputs.redis_url,
        media=media_environment,
        extra={**app_environment_defaults(app), **app.environment},
    )
    settings = app_server_settings(app=app, fleet=fleet, load_balancer=load_balancer)
    return AppContainer(
        image=inputs.image,
        command=app_server_command(settings),
        port=app.port,
        health_check_path=app.health_check_path,
        user=app_user,
        environment=environment,
        secrets=inputs.secrets,
        execute_command=fleet.enable_execute_command,
    )


def render_container_definitions(
    *,
    app: AppContainer,
    proxy: ProxyContainer,
    logs: TaskLogs,
    site_host: str,
    stop_timeout_seconds: int,
) -> list[dict[str, Any]]:
    """Both container definitions; `site_host` is the Host the health checks send, so that
    an app validating ALLOWED_HOSTS answers them."""
    _refuse_environment_and_secret(app)
    return [
        _proxy_definition(proxy, app, logs, site_host, stop_timeout_seconds),
        _app_definition(app, logs, site_host, stop_timeout_seconds),
    ]


def app_environment(
    *,
    settings_module: str,
    health_check_path: str,
    site_host: str,
    site_url: str,
    static_url: str,
    database: DatabaseSettings,
    redis_url: str,
    media: Mapping[str, str],
    extra: Mapping[str, str],
    readiness_path: str = AppConfig.model_fields["readiness_path"].default,
) -> dict[str, str]:
    """The plain settings contract between pulumi-django and the app (see docs/app-task.md);
    `media` is `rendering.media.aws_media_environment`'s (empty when media is off); `extra` is
    `app.environment`, whose names the config already keeps apart from these."""
    return {
        **extra,
        **media,
        "DJANGO_SETTINGS_MODULE": settings_module,
        # The runtime kit answers both paths before checking ALLOWED_HOSTS (health checks come
        # with the task's IP as Host): liveness, which every health check of the task requests
        # (no database, no cache), and readiness, for people and alarms.
        "DJANGO_HEALTH_CHECK_PATH": health_check_path,
        "DJANGO_READINESS_PATH": readiness_path,
        "DJANGO_ALLOWED_HOSTS": site_host,
        "DJANGO_CSRF_TRUSTED_ORIGINS": site_url,
        "STATIC_URL": static_url,
        "DATABASE_HOST": database.host,
        "DATABASE_PORT": str(database.port),
        "DATABASE_NAME": database.name,
        "DATABASE_USER": database.user,
        "DATABASE_SSLMODE": "require",
        **database_authentication(database),
        "REDIS_URL": redis_url,
        "TMPDIR": APP_TMP_PATH,
    }


def database_authentication(database: DatabaseSettings) -> dict[str, str]:
    """The variables that tell the runtime kit how the app logs in."""
    if database.iam_region is not None:
        # The kit signs an IAM token for every new connection, in the instance's region.
        return {"DATABASE_IAM_REGION": database.iam_region}
    # An ARN, not a secret: the app re-reads a rotated password with the task role.
    return {"DATABASE_SECRET_ARN": str(database.secret_arn)}


def app_secrets(
    *,
    database_secret_arn: str | None,
    cache_auth_secret_arn: str,
    django_secret_arn: str,
    extra: Mapping[str, str],
) -> dict[str, str]:
    """Variable name -> `valueFrom`: ECS reads these at task start; their values never reach
    the task definition or Pulumi's state. A database secret (RDS's or the app role's) is JSON:
    take `password`; None when the app logs in with IAM tokens and has no password."""
    return {
        **extra,
        **(
            {"DATABASE_PASSWORD": database_password_from(database_secret_arn)}
            if database_secret_arn is not None
            else {}
        ),
        "REDIS_PASSWORD": cache_auth_secret_arn,
        "DJANGO_SECRET_KEY": django_secret_arn,
    }


def database_password_from(secret_arn: str) -> str:
    """The `valueFrom` of the `password` key of a JSON database secret."""
    return f"{secret_arn}:password::"


def task_volumes(*, execute_command: bool = False) -> list[dict[str, str]]:
    """The task-level volumes the definitions mount (Fargate ephemeral storage): `/tmp`, and
    with ECS Exec on (`execute_command`) the SSM agent's `EXEC_AGENT_VOLUMES`."""
    exec_volumes = list(EXEC_AGENT_VOLUMES) if execute_command else []
    return [{"name": name} for name in [APP_TMP_VOLUME, *exec_volumes]]


def proxy_start_script(proxy: ProxyContainer) -> str:
    """Writes the config text to a file, then runs the proxy in the foreground.

    Caddy stops gracefully on SIGTERM, so the shell becomes Caddy. nginx treats SIGTERM as
    a fast shutdown that cuts requests in flight, and ECS always sends SIGTERM whatever the
    image's stop signal (aws/containers-roadmap#359), so the shell stays and turns SIGTERM
    into SIGQUIT, nginx's graceful stop, then waits for nginx and exits with its status."""
    if proxy.server == "nginx":
        config = shlex.quote(f"{proxy.runtime_dir}/nginx.conf")
        start = (
            "status=0; trap 'kill -QUIT \"$pid\"' TERM INT; "
            f"nginx -c {config} -g 'daemon off;' & pid=$!; "
            'while kill -0 "$pid" 2>/dev/null; do status=0; wait "$pid" || status=$?; done; '
            'exit "$status"'
        )
    else:
        config = shlex.quote(f"{proxy.runtime_dir}/Caddyfile")
        start = f"exec caddy run --config {config} --adapter caddyfile"
    write = f"printf '%s\\n' \"$PROXY_CONFIG\" > {config}"
    return f"set -eu; mkdir -p {shlex.quote(proxy.runtime_dir)}; {write}; {start}"


def _proxy_environment(proxy: ProxyContainer) -> dict[str, str]:
    environment = {"PROXY_CONFIG": proxy.config_text}
    if proxy.server == "caddy":
        # Caddy keeps its instance id and storage under XDG paths; the image's /config and
        # /data belong to root.
        environment |= {
            "HOME": proxy.runtime_dir,
            "XDG_CONFIG_HOME": f"{proxy.runtime_dir}/caddy-config",
            "XDG_DATA_HOME": f"{proxy.runtime_dir}/caddy-data",
        }
    return environment


def _proxy_definition(
    proxy: ProxyContainer, app: AppContainer, logs: TaskLogs, site_host: str, stop_timeout: int
) -> dict[str, Any]:
    # Through the proxy to the app: healthy means the proxy serves and reaches the app.
    url = f"http://127.0.0.1:{proxy.port}{app.health_check_path}"
    probe = [
        "wget", "-q", "-O", "/dev/null", "-T", str(HEALTH_TIMEOUT_SECONDS - 1),
        "--header", f"Host: {site_host}", url,
    ]  # fmt: skip
    return {
        "name": PROXY_CONTAINER,
        "image": proxy.image or PROXY_IMAGES[proxy.server],
        "essential": True,
        "user": PROXY_USERS[proxy.server],
        # The stock images declare no VOLUME for a task volume to copy, and Fargate mounts an
        # empty volume owned by root: a non-root proxy can only write its own layer's /tmp.
        "readonlyRootFilesystem": False,
        "entryPoint": ["/bin/sh", "-c"],
        "command": [proxy_start_script(proxy)],
        "portMappings": [{"containerPort": proxy.port, "protocol": "tcp"}],
        "environment": _name_values(_proxy_environment(proxy)),
        # Takes traffic only once the app answers its liveness path (never waits on the
        # database or the cache); ECS also stops it before the app.
        "dependsOn": [{"containerName": APP_CONTAINER, "condition": "HEALTHY"}],
        "startTimeout": PROXY_START_TIMEOUT_SECONDS,
        "stopTimeout": stop_timeout,
        "healthCheck": _health_check(probe, PROXY_HEALTH_START_PERIOD_SECONDS),
        "linuxParameters": _linux_parameters(),
        "logConfiguration": _log_configuration(logs, release_log_prefix(app.image)),
    }


def _app_definition(
    app: AppContainer, logs: TaskLogs, site_host: str, stop_timeout: int
) -> dict[str, Any]:
    url = f"http://127.0.0.1:{app.port}{app.health_check_path}"
    headers = {"Host": site_host, "X-Forwarded-Proto": "https"}
    # urlopen raises on any status >= 400 and on a timeout: both exit non-zero.
    probe = [
        "python",
        "-c",
        "import urllib.request as u; "
        f"u.urlopen(u.Request({url!r}, headers={headers!r}), "
        f"timeout={HEALTH_TIMEOUT_SECONDS - 1})",
    ]
    return {
        "name": APP_CONTAINER,
        **_app_process(app, app.command),
        "stopTimeout": stop_timeout,
        "healthCheck": _health_check(probe, APP_HEALTH_START_PERIOD_SECONDS),
        "linuxParameters": _linux_parameters(),
        "logConfiguration": _log_configuration(logs, release_log_prefix(app.image)),
    }


def worker_container_definition(
    app: AppContainer,
    *,
    name: str,
    command: Sequence[str],
    logs: TaskLogs,
    stop_timeout_seconds: int,
    health_check: ProcessHealthCheck | None = None,
) -> dict[str, Any]:
    """A background process's container (a worker, or the scheduler), named `name`: the app
    container's image, user, environment and secrets (`app_container`), running `command`
    instead of the app server, on the same read-only root and volumes.

    No port and no proxy: nothing connects to it. A health check only when the process gives
    one (`health_check`, e.g. `celery inspect ping`): a generic probe cannot tell a worker busy
    with a long job from a stuck one, and ECS replaces an unhealthy task. `stopTimeout` is
    its warm shutdown: ECS sends SIGTERM (passed on by the init process), then SIGKILL that
    many seconds later; the process finishes the jobs it is running meanwhile. Its logs go
    to the task's group under the release's prefix, as the web containers' do."""
    _refuse_environment_and_secret(app)
    if not command:
        raise ValueError(f"the {name} container needs a command")
    return {
        "name": name,
        **_app_process(app, command),
        "stopTimeout": stop_timeout_seconds,
        **({"healthCheck": process_health_check(health_check)} if health_check else {}),
        "linuxParameters": _linux_parameters(),
        "logConfiguration": _log_configuration(logs, release_log_prefix(app.image)),
    }


def _refuse_environment_and_secret(app: AppContainer) -> None:
    """Refuses variables given both as plain environment and as secrets, naming them, rather
    than leaving to ECS which value the container sees."""
    overlap = sorted(set(app.environment) & set(app.secrets))
    if overlap:
        raise ValueError(f"set both as plain environment and as secret: {', '.join(overlap)}")


def _app_process(app: AppContainer, command: Sequence[str]) -> dict[str, Any]:
    """What every process run from the app image shares (the app server, the workers): the
    image, the non-root user on a read-only root, the environment and the secrets."""
    return {
        "image": app.image,
        "essential": True,
        "user": app.user,
        "readonlyRootFilesystem": True,
        "command": list(command),
        "environment": _name_values(app.environment),
        "secrets": [
            {"name": name, "valueFrom": value_from}
            for name, value_from in sorted(app.secrets.items())
        ],
        # Writable because the image declares `VOLUME /tmp`: Fargate copies its mode (1777).
        # With ECS Exec on, the SSM agent's paths too (it runs as root in the container).
        "mountPoints": [
            {"sourceVolume": volume, "containerPath": path, "readOnly": False}
            for volume, path in [
                (APP_TMP_VOLUME, APP_TMP_PATH),
                *(EXEC_AGENT_VOLUMES.items() if app.execute_command else []),
            ]
        ],
    }


def _name_values(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in sorted(values.items())]


def _health_check(command: list[str], start_period: int) -> dict[str, Any]:
    return {
        "command": ["CMD", *command],
        "interval": HEALTH_INTERVAL_SECONDS,
        "timeout": HEALTH_TIMEOUT_SECONDS,
        "retries": HEALTH_RETRIES,
        "startPeriod": start_period,
    }


def process_health_check(check: ProcessHealthCheck) -> dict[str, Any]:
    """A background process's own health check (`healthCheck` of a worker or the scheduler):
    its command run as is (`CMD`, no shell)."""
    return {
        "command": ["CMD", *check.command],
        "interval": check.interval_seconds,
        "timeout": check.timeout_seconds,
        "retries": check.retries,
        "startPeriod": check.start_period_seconds,
    }


def _linux_parameters() -> dict[str, Any]:
    # Non-root on ports >= 1024 needs no capability. The init process reaps zombies and
    # passes the stop signal on; ECS Exec needs it too.
    return {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True}


def release_log_prefix(image: str | None) -> str:
    """The awslogs stream prefix of every container a release runs (web, workers, release
    tasks): `r-` and the first 12 hex digits of its image digest (of a hash of the reference
    when it has no digest). A stream is `<prefix>/<container>/<task id>`, so one release's logs
    are the streams under its prefix (`pulumi-django logs --release`). None, an image not
    known yet (Pulumi's own test mocks leave outputs unknown), gets the prefix of no digest."""
    if image is None:
        return "r-unknown"
    _, marker, digest = image.partition("@sha256:")
    if not marker:
        digest = hashlib.sha256(image.encode()).hexdigest()
    return "r-" + digest[:12]


def _log_configuration(logs: TaskLogs, prefix: str) -> dict[str, Any]:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": logs.group,
            "awslogs-region": logs.region,
            "awslogs-stream-prefix": prefix,
            "mode": LOG_MODE,
            "max-buffer-size": LOG_BUFFER,
        },
    }
