"""The `local` stack's offline plan: every container, network and volume, health checks, ports,
secrets, and the release order that keeps the site up while one replica set replaces another."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pytest

from pulumi_django.cli.plan import Plan
from pulumi_django.components.local.app import LocalAppReplicas, LocalAppReplicasArgs
from pulumi_django.components.local.app_image import LocalAppImage, LocalAppImageArgs
from pulumi_django.components.local.data import LocalData, LocalDataArgs
from pulumi_django.components.local.media import LocalMedia, LocalMediaArgs
from pulumi_django.components.local.proxy import LocalProxy, LocalProxyArgs
from pulumi_django.components.local.proxy_switch import LocalProxySwitch
from pulumi_django.components.local.site import LocalSite
from pulumi_django.components.local.static import LocalStaticRelease, LocalStaticReleaseArgs
from pulumi_django.config import StackConfig
from pulumi_django.config.app import RESERVED_ENV, AppConfig
from pulumi_django.config.database import DatabaseConfig
from pulumi_django.config.local import LocalConfig
from pulumi_django.config.media import MEDIA_VARIABLES
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.providers.local_media import LocalMediaOwnerVerdict
from pulumi_django.providers.local_release import LocalStaticVerdict, LocalSwitchVerdict
from pulumi_django.recorder import SECRET, RecordedResource, Recording, record

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/image:Image"
SITE = "bigfoot-local"
REPLICA = rf"{SITE}-app-\d+"
ROOT = Path(__file__).resolve().parent.parent


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


def container(recording: Recording, name: str) -> RecordedResource:
    return recording.one(CONTAINER, name)


def replicas(recording: Recording) -> list[RecordedResource]:
    return recording.find(CONTAINER, REPLICA)


def test_the_stack_is_these_containers_volumes_and_one_network(recording: Recording) -> None:
    assert [network.inputs["name"] for network in recording.find(NETWORK)] == [SITE]
    assert sorted(volume.inputs["name"] for volume in recording.find(VOLUME)) == [
        f"{SITE}-media-files",
        f"{SITE}-postgres",
        f"{SITE}-proxy-config",
        f"{SITE}-redis",
        f"{SITE}-static-files",
    ]
    assert sorted(resource.name for resource in recording.find(CONTAINER)) == [
        f"{SITE}-app-1",
        f"{SITE}-app-2",  # local.replicas in Pulumi.local.yaml
        f"{SITE}-media-owner",
        f"{SITE}-migrate-check",
        f"{SITE}-migrate-job",
        f"{SITE}-postgres",
        f"{SITE}-proxy",
        f"{SITE}-proxy-switch-run",
        f"{SITE}-redis",
        f"{SITE}-static-publish",
        f"{SITE}-workers-default-1",  # django:workers in Pulumi.local.yaml
        f"{SITE}-workers-scheduler",
    ]
    build = recording.one(IMAGE)
    assert build.inputs["skipPush"] is True
    assert build.inputs["build"]["context"] == "examples/bigfoot"


def test_every_container_is_on_the_private_network_only(recording: Recording) -> None:
    for resource in recording.find(CONTAINER):
        if resource.name in (f"{SITE}-static-publish", f"{SITE}-media-owner"):
            # Copy files or set an owner in a volume: no network at all.
            assert resource.inputs["networkMode"] == "none"
            assert "networksAdvanced" not in resource.inputs
            continue
        assert [net["name"] for net in resource.inputs["networksAdvanced"]] == [SITE], resource.name
        assert "networkMode" not in resource.inputs


def test_only_the_proxy_publishes_a_port_and_only_on_loopback(recording: Recording) -> None:
    published = {
        r.name: r.inputs["ports"] for r in recording.find(CONTAINER) if "ports" in r.inputs
    }
    assert published == {f"{SITE}-proxy": [{"internal": 8080, "external": 8080, "ip": "127.0.0.1"}]}


def test_data_ports_are_published_on_loopback_only_when_configured() -> None:
    recorded = record_site({"local": {"postgresPort": 15432, "redisPort": 16379}})
    assert container(recorded, f"{SITE}-postgres").inputs["ports"] == [
        {"internal": 5432, "external": 15432, "ip": "127.0.0.1"}
    ]
    assert container(recorded, f"{SITE}-redis").inputs["ports"] == [
        {"internal": 6379, "external": 16379, "ip": "127.0.0.1"}
    ]


def test_services_have_health_checks_and_new_ones_are_waited_for(recording: Recording) -> None:
    services = [*replicas(recording), *recording.find(CONTAINER, rf"{SITE}-(postgres|redis)")]
    for resource in services:
        health = resource.inputs["healthcheck"]
        assert health["tests"][0] in ("CMD", "CMD-SHELL"), resource.name
        assert health["retries"] >= 3
        start_period = int(health["startPeriod"].rstrip("s"))
        assert resource.inputs["wait"] is True, resource.name
        assert resource.inputs["waitTimeout"] > start_period
    for resource in replicas(recording):
        assert "http://127.0.0.1:8000/healthz" in resource.inputs["healthcheck"]["tests"][-1]
    postgres = container(recording, f"{SITE}-postgres").inputs["healthcheck"]["tests"]
    assert postgres[:2] == ["CMD", "pg_isready"]
    assert (
        "redis-cli ping" in container(recording, f"{SITE}-redis").inputs["healthcheck"]["tests"][1]
    )
    # The proxy is checked through to the app, but not waited for: it turns healthy only once
    # the switch step has handed it its first config.
    proxy = container(recording, f"{SITE}-proxy").inputs
    assert proxy["healthcheck"]["tests"][-1] == "http://127.0.0.1:8080/healthz"
    assert "wait" not in proxy


def test_data_lives_in_named_volumes(recording: Recording) -> None:
    def mounts(name: str) -> list[dict[str, Any]]:
        return list(container(recording, name).inputs["volumes"])

    assert mounts(f"{SITE}-postgres") == [
        {"volumeName": f"{SITE}-postgres", "containerPath": "/var/lib/postgresql/data"}
    ]
    postgres_env = container(recording, f"{SITE}-postgres").inputs["envs"]
    assert "PGDATA=/var/lib/postgresql/data/pgdata" in postgres_env
    assert mounts(f"{SITE}-redis") == [{"volumeName": f"{SITE}-redis", "containerPath": "/data"}]
    assert "--appendonly yes" in container(recording, f"{SITE}-redis").inputs["command"][-1]
    # The static files: written by the release's publisher, read (only) by the proxy.
    static = {"volumeName": f"{SITE}-static-files", "containerPath": "/srv/pulumi-django/static"}
    assert mounts(f"{SITE}-static-publish") == [static]
    assert {**static, "readOnly": True} in mounts(f"{SITE}-proxy")
    config = {"volumeName": f"{SITE}-proxy-config", "containerPath": "/etc/pulumi-django/proxy"}
    assert config in mounts(f"{SITE}-proxy")
    assert mounts(f"{SITE}-proxy-switch-run") == [config]
    for resource in replicas(recording):
        assert "volumes" not in resource.inputs
        assert resource.inputs["readOnly"] is True


def test_the_release_order_is_image_static_migrations_replicas_proxy(plan: Plan) -> None:
    steps = plan.release_order()
    assert [found.step.key for found in steps] == [
        "image",
        "static",
        "check",
        "migrate",
        "fleet",
        "proxy",
    ]
    assert all(found.ordered for found in steps[1:])


def test_each_replica_waits_for_every_earlier_step(recording: Recording) -> None:
    earlier = [
        recording.one(IMAGE),
        recording.one("pulumi-python:dynamic/static:LocalStaticVerdict"),
        recording.one("pulumi-python:dynamic/migrations:LocalCheckVerdict"),
        recording.one("pulumi-python:dynamic/migrations:LocalJobVerdict"),
        container(recording, f"{SITE}-postgres"),
        container(recording, f"{SITE}-redis"),
    ]
    for replica in replicas(recording):
        for step in earlier:
            assert recording.depends_on(replica.urn, step.urn), (replica.name, step.name)
    # The migrations run once the static files of the release are published.
    job = container(recording, f"{SITE}-migrate-check")
    assert recording.depends_on(job.urn, earlier[1].urn)


def test_the_switch_waits_for_every_new_replica(recording: Recording) -> None:
    switch = container(recording, f"{SITE}-proxy-switch-run")
    verdict = recording.one("pulumi-python:dynamic/proxy:LocalSwitchVerdict")
    for replica in replicas(recording):
        assert recording.depends_on(switch.urn, replica.urn), replica.name
    assert recording.depends_on(switch.urn, container(recording, f"{SITE}-proxy").urn)
    assert recording.depends_on(verdict.urn, switch.urn)


def test_replicas_never_wait_for_one_another(recording: Recording) -> None:
    for first, second in itertools.permutations(replicas(recording), 2):
        assert not recording.depends_on(first.urn, second.urn), (first.name, second.name)


def test_the_proxy_container_outlives_releases(recording: Recording) -> None:
    """Nothing of a release feeds the proxy container, so a release never replaces it (and
    never frees its port): only the switch step changes what it serves."""
    proxy = container(recording, f"{SITE}-proxy")
    release = [
        recording.one(IMAGE),
        container(recording, f"{SITE}-static-publish"),
        container(recording, f"{SITE}-migrate-job"),
        *replicas(recording),
    ]
    for resource in release:
        assert not recording.depends_on(proxy.urn, resource.urn), resource.name
    assert proxy.options.get("deleteBeforeReplace") is True


def test_replicas_are_replaced_create_before_delete(recording: Recording) -> None:
    """No fixed container name (the replacement and the old container coexist) and no
    delete-before-replace; a graceful stop when Pulumi deletes the old ones."""
    for replica in replicas(recording):
        assert "name" not in replica.inputs
        assert "deleteBeforeReplace" not in replica.options
        assert replica.inputs["restart"] == "unless-stopped"
        # app.gracefulTimeoutSeconds (25) plus the 10 s margin.
        assert replica.inputs["stopTimeout"] == replica.inputs["destroyGraceSeconds"] == 35
    for name in ("postgres", "redis"):
        data = container(recording, f"{SITE}-{name}")
        assert data.inputs["name"] == f"{SITE}-{name}"
        assert data.options.get("deleteBeforeReplace") is True


def test_replicas_run_the_configured_app_server_with_the_released_image(
    recording: Recording,
) -> None:
    for replica in replicas(recording):
        command = replica.inputs["command"]
        assert command[0] == "gunicorn"
        assert command[command.index("--bind") + 1] == "0.0.0.0:8000"
        assert command[-1] == "bigfoot.wsgi:application"
        assert replica.inputs["image"] == f"sha256:{'0' * 64}"
        assert replica.inputs["memory"] == 1024
        assert replica.inputs["cpus"] == "0.5"


def test_secrets_never_appear_in_the_plan(recording: Recording) -> None:
    for resource in recording.find(CONTAINER):
        for entry in resource.inputs.get("envs", []):
            assert not re.match(r"(DATABASE|REDIS|POSTGRES)_PASSWORD=|DJANGO_SECRET_KEY=", entry)
    env = replicas(recording)[0].inputs["envs"]
    assert env.count(SECRET) == 3  # database and Redis passwords, the Django secret key
    # Every other variable of the app's settings contract (DATABASE_URL or its parts; media in
    # a directory, not a bucket).
    secret = {"DATABASE_PASSWORD", "REDIS_PASSWORD", "DJANGO_SECRET_KEY"}
    bucket_only = MEDIA_VARIABLES - {"MEDIA_URL", "MEDIA_ROOT"}
    names = {entry.split("=", 1)[0] for entry in env if entry != SECRET}
    assert RESERVED_ENV - secret - {"DATABASE_URL"} - bucket_only <= names
    assert not bucket_only & names
    assert "DATABASE_HOST=postgres" in env
    assert "REDIS_URL=redis://redis:6379/0" in env
    assert "DATABASE_SSLMODE=disable" in env
    assert "STATIC_URL=/static/" in env
    assert "DJANGO_ALLOWED_HOSTS=127.0.0.1,localhost" in env


def test_the_proxy_routes_to_the_current_replicas_and_serves_static_files(
    recording: Recording,
) -> None:
    upload = container(recording, f"{SITE}-proxy-switch-run").inputs["uploads"][0]
    assert upload["file"] == "/tmp/pulumi-django-proxy.new.conf"
    upstreams = re.findall(r"^\s+server (\S+) ", upload["content"], re.M)
    assert upstreams == [f"{SITE}-app-{number}-a1b2c3d:8000" for number in (1, 2)]
    assert "alias /srv/pulumi-django/static/static/;" in upload["content"]
    proxy = container(recording, f"{SITE}-proxy").inputs
    assert proxy["stopSignal"] == "SIGQUIT"  # nginx's graceful stop
    assert "nginx -s reload" in proxy["command"][0]


def test_the_static_release_keeps_the_configured_releases(recording: Recording) -> None:
    publisher = container(recording, f"{SITE}-static-publish").inputs
    assert publisher["entrypoints"] == ["python"]
    source, target, release, prefix, keep = publisher["command"][-5:]
    assert (source, target) == ("/app/staticfiles", "/srv/pulumi-django/static")
    assert (release, prefix, keep) == (f"sha256:{'0' * 64}", "static/", "5")
    assert publisher["uploads"][0]["file"] == "/tmp/pulumi_django_static_publish.py"


def test_outputs(plan: Plan) -> None:
    outputs = plan.recording.outputs
    assert outputs["url"] == "http://127.0.0.1:8080"
    assert outputs["staticUrl"] == "/static/"
    assert outputs["releaseId"] == f"sha256:{'0' * 64}"
    assert outputs["proxyContainer"] == f"{SITE}-proxy"
    assert outputs["appContainers"] == [f"{SITE}-app-{n}-a1b2c3d" for n in (1, 2)]


def record_site(local_config: dict[str, Any]) -> Recording:
    """A LocalSite of the Bigfoot app with `local_config` over the defaults."""
    config = StackConfig.model_validate({"target": "local", "name": SITE, **local_config})

    def program() -> None:
        LocalSite(SITE, config)

    return record(program, project="pulumi-django", stack="local", config={})


def test_replicas_port_and_proxy_server_follow_the_config() -> None:
    recorded = record_site(
        {"local": {"replicas": 3, "httpPort": 9000}, "proxy": {"server": "caddy", "port": 8081}}
    )
    assert len(replicas(recorded)) == 3
    proxy = container(recorded, f"{SITE}-proxy").inputs
    assert proxy["ports"] == [{"internal": 8081, "external": 9000, "ip": "127.0.0.1"}]
    assert proxy["stopSignal"] == "SIGTERM"
    assert "caddy reload" in proxy["command"][0]
    content = container(recorded, f"{SITE}-proxy-switch-run").inputs["uploads"][0]["content"]
    assert f"reverse_proxy {' '.join(f'{SITE}-app-{n}-a1b2c3d:8000' for n in (1, 2, 3))}" in content
    image = recorded.one("docker:index/remoteImage:RemoteImage", f"{SITE}-proxy-image")
    assert image.inputs["name"].split("/")[-1].startswith("caddy:")


# --- uploaded media ------------------------------------------------------------------------

MEDIA_VOLUME = f"{SITE}-media-files"


def media_mounts(resource: RecordedResource) -> list[dict[str, Any]]:
    return [m for m in resource.inputs.get("mounts", []) if m.get("source") == MEDIA_VOLUME]


def test_uploads_live_in_a_volume_the_replicas_write_and_the_proxy_reads(
    recording: Recording,
) -> None:
    """Mounted without Docker's copy from the image (which could hand the volume back to
    root), read-write at MEDIA_ROOT for the app user, read-only in the proxy."""
    writable = {
        "type": "volume",
        "source": MEDIA_VOLUME,
        "target": "/app/media",
        "readOnly": False,
        "volumeOptions": {"noCopy": True},
    }
    for resource in [*replicas(recording), container(recording, f"{SITE}-migrate-job")]:
        assert media_mounts(resource) == [writable], resource.name
        assert resource.inputs["user"] == "10001:10001"
        assert "MEDIA_ROOT=/app/media" in resource.inputs["envs"]
        assert "MEDIA_URL=/media/" in resource.inputs["envs"]
    (proxy_mount,) = media_mounts(container(recording, f"{SITE}-proxy"))
    assert proxy_mount["readOnly"] is True
    assert proxy_mount["volumeOptions"] == {"noCopy": True}
    config = container(recording, f"{SITE}-proxy-switch-run").inputs["uploads"][0]["content"]
    assert f"location /media/ {{\n            alias {proxy_mount['target']}/;" in config


def test_the_static_release_never_touches_the_media_volume(recording: Recording) -> None:
    publisher = container(recording, f"{SITE}-static-publish")
    assert media_mounts(publisher) == []
    assert all(v["volumeName"] != MEDIA_VOLUME for v in publisher.inputs["volumes"])


def test_the_volume_is_given_to_the_app_user_before_the_release_uses_it(
    recording: Recording,
) -> None:
    owner = container(recording, f"{SITE}-media-owner")
    assert owner.inputs["user"] == "0:0"
    assert owner.inputs["networkMode"] == "none"
    assert owner.inputs["command"][-2:] == ["10001", "10001"]
    (mount,) = media_mounts(owner)
    assert mount["target"] == owner.inputs["command"][-3]
    assert mount["volumeOptions"] == {"noCopy": True}
    (verdict,) = recording.find("pulumi-python:dynamic/media:LocalMediaOwnerVerdict")
    assert recording.depends_on(verdict.urn, owner.urn)
    for later in [container(recording, f"{SITE}-migrate-job"), *replicas(recording)]:
        assert recording.depends_on(later.urn, owner.urn), later.name
        assert recording.depends_on(later.urn, verdict.urn), later.name


def test_a_volume_that_could_not_be_given_to_the_app_user_fails_the_release() -> None:
    """Docker reports the failed ownership container as created; the verdict stops `pulumi up`
    before anything runs on a volume the app cannot write."""
    from docker_logs import docker_frames

    from pulumi_django.providers.local_media import LocalMediaError, judge_media_owner

    props = {
        "container_id": "c0ffee",
        "container_name": "shop-media-owner-1a2b3c4",
        "container_urn": "urn:pulumi:local::shop::docker:index/container:Container::owner",
        "exit_code": 1,
        "container_logs": docker_frames(
            (2, "PermissionError: [Errno 1] Operation not permitted\n")
        ),
        "owner": "10001:10001",
    }
    assert judge_media_owner({**props, "exit_code": 0}) == {}
    with pytest.raises(LocalMediaError) as failure:
        judge_media_owner(props)
    message = str(failure.value)
    assert message.startswith(
        "the media volume could not be given to the app user 10001:10001: exit status 1 in "
        "container shop-media-owner-1a2b3c4"
    )
    assert "PermissionError" in message
    assert "pulumi up --replace" in message


def test_media_off_means_no_volume_no_mounts_and_no_media_variables() -> None:
    recorded = record_site({"media": {"enabled": False}})
    assert not recorded.find(VOLUME, MEDIA_VOLUME)
    assert not recorded.find(CONTAINER, f"{SITE}-media-owner")
    for resource in recorded.find(CONTAINER):
        assert "mounts" not in resource.inputs, resource.name
        assert not [e for e in resource.inputs.get("envs", []) if e.startswith("MEDIA_")]
    content = container(recorded, f"{SITE}-proxy-switch-run").inputs["uploads"][0]["content"]
    assert "/media/" not in content


def test_the_media_path_follows_the_config_in_the_proxy_and_the_app() -> None:
    recorded = record_site({"media": {"urlPath": "/uploads/files/"}, "proxy": {"server": "caddy"}})
    content = container(recorded, f"{SITE}-proxy-switch-run").inputs["uploads"][0]["content"]
    assert "handle_path /uploads/files/* {" in content
    assert "MEDIA_URL=/uploads/files/" in replicas(recorded)[0].inputs["envs"]


# --- the components on their own, as a program of one's own composes them ------------------


def name_of(resource: pulumi.Resource) -> str:
    return str(resource._name)


def test_the_local_components_build_from_their_args_alone_and_expose_their_resources() -> None:
    """No StackConfig: each component takes the config sections it reads and the values of
    the others, and every resource it creates is a typed attribute, parented to it."""
    built: dict[str, Any] = {}

    def program() -> None:
        network = docker.Network("shop-network", name="shop")
        data = LocalData(
            "shop",
            LocalDataArgs(network_name=network.name, database=DatabaseConfig(name="shop")),
        )
        image = LocalAppImage("shop-app-image", LocalAppImageArgs(app=AppConfig()))
        static = LocalStaticRelease("shop-static", LocalStaticReleaseArgs(image=image.ref))
        media = LocalMedia("shop-media", LocalMediaArgs(image=image.ref))
        replicas = LocalAppReplicas(
            "shop-app",
            LocalAppReplicasArgs(
                image=image.ref,
                network_name=network.name,
                stop_timeout_seconds=40,
                local=LocalConfig(replicas=3),
                environment=data.environment,
                mounts=[media.mount("/app/media")],
            ),
        )
        proxy = LocalProxy(
            "shop-proxy",
            LocalProxyArgs(
                network_name=network.name,
                upstreams=replicas.upstreams,
                static_volume=static.volume_name,
                stop_timeout_seconds=40,
                media=media,
                config=ProxyConfig(server="caddy"),
            ),
        )
        built.update(data=data, image=image, static=static, media=media)
        built.update(replicas=replicas, proxy=proxy)

    recorded = record(program, project="shop", stack="dev", config={})
    data, image, static, media = (built[key] for key in ("data", "image", "static", "media"))
    replicas, proxy = built["replicas"], built["proxy"]

    children = {
        "pulumi-django:local:Data": [
            data.generated_database_password,
            data.generated_redis_password,
            data.postgres,
            data.postgres_volume,
            data.postgres_image,
            data.redis,
            data.redis_volume,
            data.redis_image,
        ],
        "pulumi-django:local:AppImage": [image.image],
        "pulumi-django:local:StaticRelease": [static.volume, static.publisher, static.verdict],
        "pulumi-django:local:Media": [media.volume, media.owner, media.owner_verdict],
        "pulumi-django:local:AppReplicas": replicas.replicas,
        "pulumi-django:local:Proxy": [
            proxy.image,
            proxy.config_volume,
            proxy.container,
            proxy.switch,
        ],
        "pulumi-django:local:ProxySwitch": [proxy.switch.container, proxy.switch.verdict],
    }
    for component_type, resources in children.items():
        (component,) = recorded.find(component_type)
        assert sorted(child.name for child in recorded.children(component.urn)) == sorted(
            name_of(resource) for resource in resources
        ), component_type

    assert isinstance(data.postgres, docker.Container)
    assert isinstance(data.generated_redis_password, random.RandomPassword)
    assert isinstance(image.image, docker.Image)
    assert isinstance(static.verdict, LocalStaticVerdict)
    assert isinstance(media.owner_verdict, LocalMediaOwnerVerdict)
    assert isinstance(proxy.switch, LocalProxySwitch)
    assert isinstance(proxy.switch.verdict, LocalSwitchVerdict)
    assert [name_of(replica) for replica in replicas.replicas] == [
        f"shop-app-{n}" for n in (1, 2, 3)
    ]
    # The sections given, and nothing of a stack, decide what runs.
    assert "POSTGRES_DB=shop" in recorded.one(CONTAINER, "shop-postgres").inputs["envs"]
    assert recorded.one(CONTAINER, "shop-app-1").inputs["stopTimeout"] == 40
    switch = recorded.one(CONTAINER, "shop-proxy-switch-run").inputs["uploads"][0]["content"]
    assert "reverse_proxy shop-app-1-a1b2c3d:8000" in switch
    assert "handle_path /media/* {" in switch


def test_a_local_components_options_reach_every_resource_it_creates() -> None:
    """`protect` on the data component protects its volumes, passwords and containers too."""

    def program() -> None:
        LocalData(
            "shop",
            LocalDataArgs(network_name="shop"),
            opts=pulumi.ResourceOptions(protect=True),
        )

    recorded = record(program, project="shop", stack="dev", config={})
    (component,) = recorded.find("pulumi-django:local:Data")
    children = recorded.children(component.urn)
    assert len(children) == 8
    for child in children:
        assert child.options.get("protect") is True, child.name


def test_the_site_exposes_its_components() -> None:
    """LocalSite is built of the same components, each an attribute of the site."""
    sites: list[LocalSite] = []

    def program() -> None:
        sites.append(LocalSite(SITE, StackConfig.model_validate({"target": "local", "name": SITE})))

    record(program, project="pulumi-django", stack="local", config={})
    (site,) = sites
    assert name_of(site.network) == f"{SITE}-network"
    assert name_of(site.data.postgres) == f"{SITE}-postgres"
    assert name_of(site.image.image) == f"{SITE}-app-image-build"
    assert name_of(site.static.publisher) == f"{SITE}-static-publish"
    assert site.media is not None
    assert name_of(site.media.volume) == f"{SITE}-media-files"
    assert [name_of(replica) for replica in site.replicas.replicas] == [
        f"{SITE}-app-{n}" for n in (1, 2)
    ]
    assert name_of(site.proxy.container) == f"{SITE}-proxy"
    assert name_of(site.proxy.switch.container) == f"{SITE}-proxy-switch-run"
    assert isinstance(site.migration, pulumi.ComponentResource)


def test_the_replicas_health_check_asks_liveness_and_readiness_is_an_output(
    recording: Recording,
) -> None:
    """Docker's checks ask the liveness path, which needs no database: a PostgreSQL restart
    marks no replica unhealthy. The readiness path reaches every replica, and its URL is an
    output."""
    for replica in replicas(recording):
        assert "DJANGO_HEALTH_CHECK_PATH=/healthz" in replica.inputs["envs"]
        assert "DJANGO_READINESS_PATH=/readyz" in replica.inputs["envs"]
        assert "/readyz" not in " ".join(replica.inputs["healthcheck"]["tests"])
    assert recording.outputs["readinessUrl"] == "http://127.0.0.1:8080/readyz"
