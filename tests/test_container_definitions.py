"""The app task's container definitions: valid for ECS, safe by default, and the proxy's start
script and both health probes run for real against nginx and a stand-in app."""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from ecs_request import register_task_definition_problems
from fleet_stacks import (
    ACCOUNT,
    PROD_LIKE,
    SENTRY_SECRET,
    STACKS,
    STRIPE_PARAMETER,
    stack_config,
)

from pulumi_django.cli.rehearsal.servers import (
    find_binary,
    free_port,
    log_tail,
    start_process,
    stop_process,
    wait_for_port,
)
from pulumi_django.config import StackConfig
from pulumi_django.config.app import SECRET_LOOKING
from pulumi_django.rendering.container_definitions import (
    APP_CONTAINER,
    PROXY_CONTAINER,
    PROXY_UPSTREAM,
    AppContainer,
    DatabaseSettings,
    ProxyContainer,
    TaskInputs,
    TaskLogs,
    app_secrets,
    release_log_prefix,
    render_container_definitions,
    task_container_definitions,
    task_volumes,
)
from pulumi_django.rendering.proxy import render_nginx, sidecar_site

SITE_HOST = "shop.example.com"
REGISTRY = f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com"
IMAGE = f"{REGISTRY}/shop@sha256:{'ab' * 32}"
# What ProxyImageCache resolves the proxy tag to at deploy time (any digest).
PROXY_DIGEST = f"sha256:{'ef' * 32}"
RDS_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds!db-1234-AbCdEf"
CACHE_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:shop-auth-token-QwErTy"
DJANGO_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:shop-django-ZxCvBn"


def task_inputs(config: StackConfig) -> TaskInputs:
    return TaskInputs(
        image=IMAGE,
        proxy_image=PROXY_UPSTREAM[config.proxy.server].cached_ref(
            REGISTRY, "shop-0a1b2c", PROXY_DIGEST
        ),
        region="us-east-1",
        log_group="/ecs/site/prod/shop",
        site_host=SITE_HOST,
        site_url=f"https://{SITE_HOST}",
        static_url=f"https://{SITE_HOST}/static/",
        vpc_cidr="10.0.0.0/16",
        database=DatabaseSettings(
            host="db.internal", port=5432, name="app", user="django", secret_arn=RDS_SECRET
        ),
        redis_url="rediss://cache.internal:6379/0",
        secrets=app_secrets(
            database_secret_arn=RDS_SECRET,
            cache_auth_secret_arn=CACHE_SECRET,
            django_secret_arn=DJANGO_SECRET,
            extra=config.app.secrets,
        ),
    )


def render(config: StackConfig, inputs: TaskInputs) -> list[dict[str, Any]]:
    """A stack's sections through the renderer, as AwsSite maps them (media with a bucket)."""
    return task_container_definitions(
        app=config.app,
        proxy=config.proxy,
        fleet=config.fleet,
        load_balancer=config.load_balancer,
        media=config.media if inputs.media_bucket is not None else None,
        inputs=inputs,
        stop_timeout_seconds=config.stop_timeout_seconds,
    )


def definitions_of(stack: str) -> tuple[StackConfig, dict[str, dict[str, Any]]]:
    config = STACKS[stack]()
    rendered = render(config, task_inputs(config))
    return config, {definition["name"]: definition for definition in rendered}


def request_for(config: StackConfig, definitions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "family": config.name,
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/task",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/execution",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": str(config.fleet.cpu),
        "memory": str(config.fleet.memory),
        "runtimePlatform": {
            "cpuArchitecture": config.fleet.architecture,
            "operatingSystemFamily": "LINUX",
        },
        "volumes": task_volumes(execute_command=config.fleet.enable_execute_command),
        "containerDefinitions": definitions,
    }


def environment(definition: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in definition.get("environment", [])}


def secrets(definition: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["valueFrom"] for item in definition.get("secrets", [])}


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_register_task_definition_request_is_valid_for_ecs(stack: str) -> None:
    config, by_name = definitions_of(stack)
    request = request_for(config, list(by_name.values()))
    assert register_task_definition_problems(request) == []


def test_the_validator_reports_wrong_types_and_enum_values() -> None:
    config, by_name = definitions_of("prod-like")
    broken = [dict(definition) for definition in by_name.values()]
    broken[0]["stopTimeout"] = "35"
    broken[0]["dependsOn"] = [{"containerName": APP_CONTAINER, "condition": "HEALTY"}]
    problems = register_task_definition_problems(request_for(config, broken))
    assert any("stopTimeout" in problem for problem in problems)
    assert any("HEALTY" in problem for problem in problems)


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_containers_run_as_non_root_with_stop_time_beyond_the_graceful_timeout(stack: str) -> None:
    config, by_name = definitions_of(stack)
    assert set(by_name) == {PROXY_CONTAINER, APP_CONTAINER}
    for definition in by_name.values():
        uid, gid = definition["user"].split(":")
        assert int(uid) > 0 and int(gid) > 0
        assert definition["essential"] is True
        assert definition["stopTimeout"] == config.stop_timeout_seconds
        assert definition["stopTimeout"] > config.app.graceful_timeout_seconds
        assert definition["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
        assert definition["healthCheck"]["command"][0] == "CMD"
        assert definition["healthCheck"]["timeout"] < definition["healthCheck"]["interval"]


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_app_container_is_read_only_with_a_writable_tmp_volume(stack: str) -> None:
    config, by_name = definitions_of(stack)
    app = by_name[APP_CONTAINER]
    assert app["readonlyRootFilesystem"] is True
    execute_command = config.fleet.enable_execute_command
    volumes = {volume["name"] for volume in task_volumes(execute_command=execute_command)}
    assert (app["mountPoints"][0]["sourceVolume"], app["mountPoints"][0]["containerPath"]) == (
        "app-tmp",
        "/tmp",
    )
    assert {m["sourceVolume"] for m in app["mountPoints"]} <= volumes
    assert environment(app)["TMPDIR"] == "/tmp"


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_with_ecs_exec_the_ssm_agent_writes_to_volumes_on_a_read_only_root(stack: str) -> None:
    """The SSM agent behind ECS Exec writes under these three paths (aws/containers-roadmap
    #1359): with Exec on each is a task volume the app mounts, and the root stays read-only."""
    agent_paths = {"/managed-agents", "/var/lib/amazon/ssm", "/var/log/amazon/ssm"}
    for execute_command in (False, True):
        config = STACKS[stack]()
        config = config.model_copy(
            update={
                "fleet": config.fleet.model_copy(update={"enable_execute_command": execute_command})
            }
        )
        rendered = render(config, task_inputs(config))
        [app] = [d for d in rendered if d["name"] == APP_CONTAINER]
        assert app["readonlyRootFilesystem"] is True
        mounts = {m["containerPath"]: m for m in app["mountPoints"]}
        assert set(mounts) & agent_paths == (agent_paths if execute_command else set())
        assert all(m["readOnly"] is False for m in mounts.values())
        volumes = task_volumes(execute_command=execute_command)
        assert {m["sourceVolume"] for m in mounts.values()} == {v["name"] for v in volumes}
        request = {**request_for(config, rendered), "volumes": volumes}
        assert register_task_definition_problems(request) == []


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_app_image_by_digest_and_only_the_proxy_publishes_a_port(stack: str) -> None:
    config, by_name = definitions_of(stack)
    app, proxy = by_name[APP_CONTAINER], by_name[PROXY_CONTAINER]
    assert app["image"] == IMAGE and "@sha256:" in app["image"]
    assert "portMappings" not in app
    assert proxy["portMappings"] == [{"containerPort": config.proxy.port, "protocol": "tcp"}]
    # Through the stack's ECR by digest (issue 15, item 7), never public.ecr.aws by tag.
    assert proxy["image"] == (
        f"{REGISTRY}/shop-0a1b2c/{PROXY_UPSTREAM[config.proxy.server].repository}@{PROXY_DIGEST}"
    )
    assert proxy["dependsOn"] == [{"containerName": APP_CONTAINER, "condition": "HEALTHY"}]


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_secrets_only_as_value_from_and_no_secret_looking_plain_variable(stack: str) -> None:
    config, by_name = definitions_of(stack)
    app = by_name[APP_CONTAINER]
    expected = {
        "DATABASE_PASSWORD": f"{RDS_SECRET}:password::",
        "REDIS_PASSWORD": CACHE_SECRET,
        "DJANGO_SECRET_KEY": DJANGO_SECRET,
        **config.app.secrets,
    }
    assert secrets(app) == expected
    for definition in by_name.values():
        for name, value in environment(definition).items():
            # The one secret-looking name carries the secret's ARN, never its value.
            if SECRET_LOOKING.search(name):
                assert (name, value) == ("DATABASE_SECRET_ARN", RDS_SECRET)


def test_prod_like_app_gets_its_own_environment_and_secrets() -> None:
    _, by_name = definitions_of("prod-like")
    app = by_name[APP_CONTAINER]
    assert environment(app)["FEATURE_CHECKOUT"] == "on"
    assert secrets(app)["STRIPE_KEY"] == STRIPE_PARAMETER
    assert secrets(app)["SENTRY_DSN"] == f"{SENTRY_SECRET}:dsn::"


def test_app_environment_contract() -> None:
    _, by_name = definitions_of("prod-like")
    env = environment(by_name[APP_CONTAINER])
    assert {key: env[key] for key in env if key != "FEATURE_CHECKOUT"} == {
        "DJANGO_SETTINGS_MODULE": "bigfoot.settings",
        "DJANGO_HEALTH_CHECK_PATH": "/healthz",
        "DJANGO_READINESS_PATH": "/readyz",
        "DJANGO_ALLOWED_HOSTS": SITE_HOST,
        "DJANGO_CSRF_TRUSTED_ORIGINS": f"https://{SITE_HOST}",
        "STATIC_URL": f"https://{SITE_HOST}/static/",
        "DATABASE_HOST": "db.internal",
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": "app",
        "DATABASE_USER": "django",
        "DATABASE_SSLMODE": "require",
        "DATABASE_SECRET_ARN": RDS_SECRET,
        "REDIS_URL": "rediss://cache.internal:6379/0",
        "TMPDIR": "/tmp",
        "XDG_RUNTIME_DIR": "/dev/shm",
    }


@pytest.mark.parametrize("access", ["private", "public"])
def test_the_app_is_told_where_uploads_go(access: str) -> None:
    """With a media bucket, the contract's MEDIA_* variables for django-storages' S3 backend;
    the key prefix follows the URL path, so that CloudFront's /uploads/x is the key uploads/x."""
    media = {"access": access, "urlPath": "/uploads/", "signedUrlExpirySeconds": 900}
    config = stack_config({**PROD_LIKE, "media": media})
    inputs = dataclasses.replace(task_inputs(config), media_bucket="shop-media-0a1b2c")
    definitions = render(config, inputs)
    assert register_task_definition_problems(request_for(config, definitions)) == []
    env = environment({d["name"]: d for d in definitions}[APP_CONTAINER])
    assert {key: value for key, value in env.items() if key.startswith("MEDIA_")} == {
        "MEDIA_URL": f"https://{SITE_HOST}/uploads/",
        "MEDIA_BUCKET": "shop-media-0a1b2c",
        "MEDIA_LOCATION": "uploads",
        "MEDIA_REGION": "us-east-1",
        "MEDIA_ACCESS": access,
        "MEDIA_URL_EXPIRY_SECONDS": "900",
    }
    assert "MEDIA_ROOT" not in env  # AWS stores uploads in the bucket, never on the task's disk


def test_without_a_media_bucket_the_app_gets_no_media_variables() -> None:
    config = stack_config({**PROD_LIKE, "media": {"enabled": False}})
    definitions = render(config, task_inputs(config))
    env = environment({d["name"]: d for d in definitions}[APP_CONTAINER])
    assert not [key for key in env if key.startswith("MEDIA_")]


def test_the_media_section_and_its_bucket_come_together() -> None:
    config = STACKS["prod-like"]()
    sections = {
        "app": config.app,
        "proxy": config.proxy,
        "fleet": config.fleet,
        "load_balancer": config.load_balancer,
        "stop_timeout_seconds": config.stop_timeout_seconds,
    }
    with_bucket = dataclasses.replace(task_inputs(config), media_bucket="shop-media-0a1b2c")
    for media, inputs in [(config.media, task_inputs(config)), (None, with_bucket)]:
        with pytest.raises(ValueError, match="give both or neither"):
            task_container_definitions(media=media, inputs=inputs, **sections)  # type: ignore[arg-type]


def test_a_custom_health_path_reaches_the_app_and_both_probes() -> None:
    """Both containers' checks (and so the proxy's wait for a HEALTHY app) ask the liveness
    path; the readiness path, which needs the database, reaches the app and no probe."""
    config = stack_config(
        {**PROD_LIKE, "app": {"healthCheckPath": "/-/alive", "readinessPath": "/-/ready"}}
    )
    definitions = {d["name"]: d for d in render(config, task_inputs(config))}
    env = environment(definitions[APP_CONTAINER])
    assert (env["DJANGO_HEALTH_CHECK_PATH"], env["DJANGO_READINESS_PATH"]) == (
        "/-/alive",
        "/-/ready",
    )
    for definition in definitions.values():
        assert "/-/alive" in " ".join(definition["healthCheck"]["command"])
        assert "/-/ready" not in " ".join(definition["healthCheck"]["command"])
    assert definitions[PROXY_CONTAINER]["dependsOn"] == [
        {"containerName": APP_CONTAINER, "condition": "HEALTHY"}
    ]


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_both_containers_log_to_the_task_log_group_under_the_release_prefix(stack: str) -> None:
    _, by_name = definitions_of(stack)
    for definition in by_name.values():
        logging = definition["logConfiguration"]
        assert logging["logDriver"] == "awslogs"
        assert logging["options"]["awslogs-group"] == "/ecs/site/prod/shop"
        assert logging["options"]["awslogs-region"] == "us-east-1"
        # `r-` and the image digest's first 12 hex digits: the streams are
        # `r-abababababab/app/<task id>` and `r-abababababab/proxy/<task id>`.
        assert logging["options"]["awslogs-stream-prefix"] == "r-" + IMAGE.split("@sha256:")[1][:12]


def test_the_release_log_prefix_names_the_image() -> None:
    other = f"{REGISTRY}/shop@sha256:{'cd' * 32}"
    assert release_log_prefix(IMAGE) == "r-abababababab"
    assert release_log_prefix(other) == "r-cdcdcdcdcdcd"
    # Without a digest (a tag), a hash of the reference: still 12 hex, still per image.
    tagged = release_log_prefix(f"{REGISTRY}/shop:v1")
    assert tagged.startswith("r-") and len(tagged) == 14 and int(tagged[2:], 16) >= 0
    assert tagged != release_log_prefix(f"{REGISTRY}/shop:v2")


def test_app_command_comes_from_the_app_server_settings() -> None:
    _, dev = definitions_of("dev-like")
    _, prod = definitions_of("prod-like")
    assert dev[APP_CONTAINER]["command"][:2] == ["uvicorn", "bigfoot.asgi:application"]
    assert prod[APP_CONTAINER]["command"][0] == "gunicorn"
    assert "--graceful-timeout" in prod[APP_CONTAINER]["command"]
    assert prod[APP_CONTAINER]["command"][-1] == "bigfoot.wsgi:application"


def test_a_variable_set_both_plain_and_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="FEATURE"):
        render_container_definitions(
            app=AppContainer(
                image=IMAGE,
                command=["gunicorn"],
                port=8000,
                health_check_path="/healthz",
                environment={"FEATURE": "1"},
                secrets={"FEATURE": CACHE_SECRET},
            ),
            proxy=ProxyContainer(server="nginx", config_text="", port=8080),
            logs=TaskLogs(group="g", region="us-east-1"),
            site_host=SITE_HOST,
            stop_timeout_seconds=35,
        )


# --- The start script and the probes, run for real ---------------------------------------


class StandInApp(BaseHTTPRequestHandler):
    """Answers the health path like Django would: 400 for a Host outside ALLOWED_HOSTS."""

    status = 200
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:
        StandInApp.seen.append(dict(self.headers))
        if self.headers.get("Host", "").split(":")[0] != SITE_HOST:
            self.send_response(400)
        else:
            self.send_response(StandInApp.status if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def stand_in_app() -> Iterator[int]:
    StandInApp.status = 200
    StandInApp.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandInApp)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def probe(definition: dict[str, Any]) -> int:
    """Runs a container's health check command here (`python` is this interpreter)."""
    command = list(definition["healthCheck"]["command"][1:])
    if command[0] == "python":
        command[0] = sys.executable
    return subprocess.run(command, capture_output=True, timeout=10, check=False).returncode


def loopback_definitions(
    config: StackConfig, runtime_dir: Path, app_port: int
) -> dict[str, dict[str, Any]]:
    """The sidecar's definitions with everything on loopback and in a throwaway directory."""
    site = dataclasses.replace(
        sidecar_site(
            proxy=config.proxy,
            app=config.app,
            load_balancer=config.load_balancer,
            trusted_proxies=["10.0.0.0/16"],
            runtime_dir=str(runtime_dir),
        ),
        listen_host="127.0.0.1",
    )
    rendered = render_container_definitions(
        app=AppContainer(image=IMAGE, command=[], port=app_port, health_check_path="/healthz"),
        proxy=ProxyContainer(
            server=config.proxy.server,
            config_text=render_nginx(site),
            port=config.proxy.port,
            runtime_dir=str(runtime_dir),
        ),
        logs=TaskLogs(group="g", region="us-east-1"),
        site_host=SITE_HOST,
        stop_timeout_seconds=config.stop_timeout_seconds,
    )
    return {definition["name"]: definition for definition in rendered}


@pytest.mark.slow
def test_nginx_starts_from_the_start_script_and_both_probes_track_the_app(
    tmp_path: Path, stand_in_app: int
) -> None:
    proxy_port = free_port()
    config = stack_config(
        {
            "target": "aws",
            "proxy": {"server": "nginx", "port": proxy_port},
            "app": {"port": stand_in_app},
        }
    )
    runtime_dir = tmp_path / "runtime"
    by_name = loopback_definitions(config, runtime_dir, stand_in_app)
    proxy = by_name[PROXY_CONTAINER]
    nginx_dir = str(Path(find_binary("nginx", package="nginx")).parent)
    env = {**os.environ, **environment(proxy), "PATH": f"{nginx_dir}:{os.environ['PATH']}"}
    log = tmp_path / "nginx.log"
    process = start_process([*proxy["entryPoint"], *proxy["command"]], log, env=env)
    try:
        wait_for_port(proxy_port, timeout=10, process=process)
        assert (runtime_dir / "nginx.conf").read_text() == environment(proxy)["PROXY_CONFIG"] + "\n"
        assert probe(by_name[APP_CONTAINER]) == 0, log_tail(log)
        assert probe(proxy) == 0, log_tail(log)
        assert StandInApp.seen and all(seen["Host"] == SITE_HOST for seen in StandInApp.seen)
        StandInApp.status = 503
        assert probe(by_name[APP_CONTAINER]) != 0
        assert probe(proxy) != 0
    finally:
        stop_process(process)


def _start_script(tmp_path: Path, server: str, stand_in: str) -> tuple[dict[str, Any], Path]:
    """The proxy container's start command with a stand-in proxy binary on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    binary = bin_dir / server
    binary.write_text(stand_in)
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    runtime_dir = tmp_path / "runtime"
    config_text = f"# {server} config with 'quotes', $dollars, \"double\" and\n\\backslashes"
    (definition, _) = render_container_definitions(
        app=AppContainer(image=IMAGE, command=[], port=8000, health_check_path="/healthz"),
        proxy=ProxyContainer(
            server=server,  # type: ignore[arg-type]
            config_text=config_text,
            port=8080,
            runtime_dir=str(runtime_dir),
        ),
        logs=TaskLogs(group="g", region="us-east-1"),
        site_host=SITE_HOST,
        stop_timeout_seconds=35,
    )
    env = {**environment(definition), "PATH": f"{bin_dir}:/usr/bin:/bin"}
    config_file = runtime_dir / ("nginx.conf" if server == "nginx" else "Caddyfile")
    return {
        "command": [*definition["entryPoint"], *definition["command"]],
        "env": env,
        "config_text": config_text,
    }, config_file


def test_caddy_start_script_writes_the_config_then_execs_caddy(tmp_path: Path) -> None:
    """Caddy stops gracefully on SIGTERM, so it must be the container's own process."""
    started, config_file = _start_script(tmp_path, "caddy", '#!/bin/sh\nprintf "%s\\n" "$$" "$@"\n')
    process = subprocess.Popen(
        started["command"], env=started["env"], stdout=subprocess.PIPE, text=True
    )
    output, _ = process.communicate(timeout=10)
    assert process.returncode == 0
    pid, *arguments = output.splitlines()
    assert int(pid) == process.pid
    assert config_file.read_text() == started["config_text"] + "\n"
    assert arguments == ["run", "--config", str(config_file), "--adapter", "caddyfile"]
    assert started["env"]["XDG_DATA_HOME"].startswith(str(tmp_path / "runtime"))


def test_nginx_start_script_turns_the_stop_signal_into_a_graceful_quit(tmp_path: Path) -> None:
    """ECS sends SIGTERM, nginx's fast shutdown; the script must hand nginx SIGQUIT instead,
    wait for it to drain, and exit with its status."""
    record = tmp_path / "record"
    # A Python stand-in: like nginx, it installs its own handlers, which a shell could not
    # do for SIGQUIT (ignored for background jobs of a non-interactive shell).
    stand_in = (
        f"#!{sys.executable}\n"
        "import pathlib, signal, sys, time\n"
        f"record = pathlib.Path({str(record)!r})\n"
        "pathlib.Path(str(record) + '.args').write_text('\\n'.join(sys.argv[1:]) + '\\n')\n"
        "def stop(number, _frame):\n"
        "    name = signal.Signals(number).name\n"
        "    pathlib.Path(str(record) + '.signal').write_text(name + '\\n')\n"
        "    sys.exit(0 if number == signal.SIGQUIT else 1)\n"
        "signal.signal(signal.SIGQUIT, stop)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "pathlib.Path(str(record) + '.ready').touch()\n"
        "while True:\n"
        "    time.sleep(0.05)\n"
    )
    started, config_file = _start_script(tmp_path, "nginx", stand_in)
    process = subprocess.Popen(started["command"], env=started["env"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not Path(f"{record}.ready").exists():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        stop_process(process, timeout=1)
    assert Path(f"{record}.signal").read_text() == "SIGQUIT\n"
    assert config_file.read_text() == started["config_text"] + "\n"
    assert Path(f"{record}.args").read_text().splitlines() == [
        "-c",
        str(config_file),
        "-g",
        "daemon off;",
    ]


@pytest.mark.parametrize(
    ("server", "runtime_directory"), [("gunicorn", "/dev/shm"), ("uvicorn", None)]
)
def test_gunicorn_gets_a_runtime_directory_on_the_tmpfs_for_its_control_socket(
    server: str, runtime_directory: str | None
) -> None:
    """The app container's root is read-only: Gunicorn's control socket goes to the tmpfs its
    heartbeat files use, not under $HOME (test_rendering_app_server runs a real Gunicorn)."""
    config = STACKS["prod-like"]()
    config = config.model_copy(update={"app": config.app.model_copy(update={"server": server})})
    by_name = {definition["name"]: definition for definition in render(config, task_inputs(config))}
    assert by_name[APP_CONTAINER]["readonlyRootFilesystem"] is True
    assert environment(by_name[APP_CONTAINER]).get("XDG_RUNTIME_DIR") == runtime_directory


@pytest.mark.parametrize(
    ("server", "environment_key", "expected"),
    [
        ("uvicorn", {}, "0"),
        ("gunicorn", {}, None),
        ("uvicorn", {"DATABASE_CONN_MAX_AGE": "30"}, "30"),
    ],
)
def test_an_asgi_app_gets_no_persistent_database_connections_unless_it_asks(
    server: str, environment_key: dict[str, str], expected: str | None
) -> None:
    """Django's docs: with ASGI, persistent connections should be disabled. The stack tells
    the runtime kit so (on every target, `app_environment_defaults`); `app.environment` still
    decides."""
    config = STACKS["prod-like"]()
    app = config.app.model_copy(update={"server": server, "environment": environment_key})
    config = config.model_copy(update={"app": app})
    rendered = render(config, task_inputs(config))
    by_name = {definition["name"]: definition for definition in rendered}
    assert environment(by_name[APP_CONTAINER]).get("DATABASE_CONN_MAX_AGE") == expected
