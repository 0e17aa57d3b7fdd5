"""The whole site on this machine's Docker engine, released in the same order as on AWS.

Infrastructure first (private network, PostgreSQL and Redis with their volumes, the proxy),
then the release: image built -> static release published -> migration check and job -> app
replicas (and, beside them, the background workers) -> proxy switched to the replicas. Each
arrow is a resource dependency, so a failed step leaves the running replicas and the proxy's
config untouched. docs/local-docker.md explains it.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_docker as docker

from pulumi_django.components.local.app import LocalAppReplicas, LocalAppReplicasArgs
from pulumi_django.components.local.app_image import LocalAppImage, LocalAppImageArgs
from pulumi_django.components.local.containers import LOOPBACK
from pulumi_django.components.local.data import LocalData, LocalDataArgs
from pulumi_django.components.local.media import LocalMedia, LocalMediaArgs
from pulumi_django.components.local.migration_job import (
    LocalMigrationJob,
    LocalMigrationJobArgs,
)
from pulumi_django.components.local.proxy import LocalProxy, LocalProxyArgs
from pulumi_django.components.local.static import LocalStaticRelease, LocalStaticReleaseArgs
from pulumi_django.components.local.workers import LocalWorkers, LocalWorkersArgs
from pulumi_django.components.site import Site, django_secret_key
from pulumi_django.config import StackConfig
from pulumi_django.providers.release_history import ReleaseHistory
from pulumi_django.release_records import unsafe_acknowledged
from pulumi_django.rendering.app_server import app_environment_defaults
from pulumi_django.rendering.media import LOCAL_MEDIA_ROOT
from pulumi_django.rendering.proxy import static_url_prefix

SECRET_KEY_LENGTH = 50
LOCAL_HOSTS = (LOOPBACK, "localhost")


def redeploy_reference(image: LocalAppImage, config: StackConfig) -> pulumi.Output[str]:
    """What `app.image` is set to to release this image again (`pulumi-django rollback`): the
    built image's `<name>:<tag>`, which the engine keeps; a pinned digest or image ID as given;
    for a pinned tag, which may move, the image ID it names now."""
    if isinstance(image.image, docker.Image):
        return image.image.image_name
    if config.app.image is not None and image.image_tag is None:
        return pulumi.Output.from_input(config.app.image)
    return image.ref


class LocalSite(Site):
    """The AWS architecture in containers: replicas behind nginx or Caddy, PostgreSQL, Redis.

    The one place that maps the stack config to the local components' args; each component is
    an attribute (`network`, `data`, `image`, `static`, `media`, `migration`, `replicas`,
    `workers`, `proxy`) whose own attributes are its resources."""

    STACK_OUTPUTS = (
        *Site.STACK_OUTPUTS,
        "app_containers",
        "proxy_container",
        "media_volume",
        "network_name",
        "worker_containers",
        "releases",
    )
    app_containers: pulumi.Output[list[str]]
    proxy_container: pulumi.Output[str]
    media_volume: pulumi.Output[str] | None
    # The Docker network the day-2 commands run one-off containers on (`manage`).
    network_name: pulumi.Output[str]
    # Worker (and scheduler) name -> its containers' names; None without `django:workers`.
    worker_containers: pulumi.Output[dict[str, list[str]]] | None
    # The kept releases, newest first (`providers.release_history`), for `releases`/`rollback`.
    releases: pulumi.Output[list[dict[str, Any]]]

    network: docker.Network
    data: LocalData
    image: LocalAppImage
    static: LocalStaticRelease
    media: LocalMedia | None
    migration: LocalMigrationJob
    replicas: LocalAppReplicas
    # The worker and scheduler containers; None without `django:workers`.
    workers: LocalWorkers | None
    proxy: LocalProxy
    release_history: ReleaseHistory

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:site:LocalSite", name, opts)
        port = config.local.http_port
        url = f"http://{LOOPBACK}:{port}"
        static_url = static_url_prefix(config.static)

        # User-defined, so containers find each other by name; nothing else is attached to it.
        self.network = docker.Network(
            f"{name}-network", name=name, driver="bridge", opts=self.child()
        )
        network_name = self.network.name
        self.data = LocalData(
            name,
            LocalDataArgs(network_name=network_name, local=config.local, database=config.database),
            opts=self.child(),
        )
        self.image = LocalAppImage(
            f"{name}-app-image", LocalAppImageArgs(app=config.app), opts=self.child()
        )
        image = self.image.ref
        self.static = LocalStaticRelease(
            f"{name}-static",
            LocalStaticReleaseArgs(image=image, config=config.static, app=config.app),
            opts=self.child(),
        )
        # Uploads: a volume of their own, which the static release never mounts.
        self.media = media = (
            LocalMedia(
                f"{name}-media", LocalMediaArgs(image=image, config=config.media), opts=self.child()
            )
            if config.media.enabled
            else None
        )
        environment: dict[str, pulumi.Input[str]] = {
            **app_environment_defaults(config.app),
            **config.app.environment,
            "DJANGO_SETTINGS_MODULE": config.app.settings_module,
            "DJANGO_HEALTH_CHECK_PATH": config.app.health_check_path,
            "DJANGO_READINESS_PATH": config.app.readiness_path,
            "DJANGO_SECRET_KEY": django_secret_key(
                name, config.secret_key, SECRET_KEY_LENGTH, self.child()
            ),
            "DJANGO_ALLOWED_HOSTS": ",".join(LOCAL_HOSTS),
            "DJANGO_CSRF_TRUSTED_ORIGINS": ",".join(
                f"http://{host}:{port}" for host in LOCAL_HOSTS
            ),
            "STATIC_URL": static_url,
            **(media.environment if media else {}),
            **self.data.environment,
        }
        media_mounts = [media.mount(LOCAL_MEDIA_ROOT)] if media else []
        self.migration = LocalMigrationJob(
            f"{name}-migrate",
            LocalMigrationJobArgs(
                config=config.migrations,
                settings_module=config.app.settings_module,
                image=image,
                network_name=network_name,
                environment=environment,
                after=[self.static, self.data, *([media] if media else [])],
                mounts=media_mounts,
            ),
            opts=self.child(),
        )
        self.replicas = LocalAppReplicas(
            f"{name}-app",
            LocalAppReplicasArgs(
                # Resolved only once the migrations succeeded: the replicas wait for them.
                image=self.migration.gate,
                network_name=network_name,
                stop_timeout_seconds=config.stop_timeout_seconds,
                app=config.app,
                fleet=config.fleet,
                load_balancer=config.load_balancer,
                local=config.local,
                environment=environment,
                mounts=media_mounts,
            ),
            opts=self.child(),
        )
        # Beside the replicas, from the same gate: no worker starts before its migrations ran.
        self.workers = (
            LocalWorkers(
                f"{name}-workers",
                LocalWorkersArgs(
                    image=self.migration.gate,
                    network_name=network_name,
                    workers=config.workers,
                    environment=environment,
                    mounts=media_mounts,
                ),
                opts=self.child(),
            )
            if config.workers.enabled
            else None
        )
        self.proxy = LocalProxy(
            f"{name}-proxy",
            LocalProxyArgs(
                network_name=network_name,
                upstreams=self.replicas.upstreams,
                static_volume=self.static.volume_name,
                stop_timeout_seconds=config.stop_timeout_seconds,
                media=media,
                config=config.proxy,
                local=config.local,
                app=config.app,
                load_balancer=config.load_balancer,
                static=config.static,
            ),
            opts=self.child(),
        )
        # Recorded once the proxy switched to the new replicas (and the workers run): the kept
        # releases, which `pulumi-django releases` lists and `rollback` pins `app.image` to.
        check = self.migration.check_verdict
        self.release_history = ReleaseHistory(
            f"{name}-release-history",
            release=image,
            image=redeploy_reference(self.image, config),
            applied_migrations=self.migration.applied_migrations,
            unsafe_acknowledged=check.findings.apply(unsafe_acknowledged) if check else [],
            migrations_checked=config.migrations.check,
            kept_static_releases=self.static.kept_releases,
            keep=config.static.keep_releases,
            opts=pulumi.ResourceOptions.merge(
                self.child(),
                pulumi.ResourceOptions(
                    depends_on=[self.proxy, *([self.workers] if self.workers else [])]
                ),
            ),
        )

        self.url = pulumi.Output.from_input(url)
        self.static_url = pulumi.Output.from_input(static_url)
        self.release_id = image
        self.readiness_url = self.readiness_url_of(config.app.readiness_path)
        self.app_containers = self.replicas.names
        self.proxy_container = self.proxy.container_name
        self.media_volume = media.volume_name if media else None
        self.network_name = network_name
        self.worker_containers = self.workers.names if self.workers else None
        self.releases = self.release_history.history
        self.register_outputs(self.exports)
