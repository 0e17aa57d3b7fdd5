"""The whole site on this machine's Docker engine, released in the same order as on AWS.

Infrastructure first (private network, PostgreSQL and Redis with their volumes, the proxy),
then the release: image built -> static release published -> migration check and job -> app
replicas -> proxy switched to them. Each arrow is a resource dependency, so a failed step leaves
the running replicas and the proxy's config untouched. docs/local-docker.md explains it.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_docker as docker

from pulumi_django.components.local.app import LocalAppReplicas
from pulumi_django.components.local.app_image import LocalAppImage
from pulumi_django.components.local.containers import LOOPBACK
from pulumi_django.components.local.data import LocalData
from pulumi_django.components.local.media import LocalMedia
from pulumi_django.components.local.migration_job import LocalMigrationJob
from pulumi_django.components.local.proxy import LocalProxy
from pulumi_django.components.local.static import LocalStaticRelease
from pulumi_django.components.site import Site, django_secret_key
from pulumi_django.config import StackConfig
from pulumi_django.rendering.app_server import app_environment_defaults
from pulumi_django.rendering.media import LOCAL_MEDIA_ROOT
from pulumi_django.rendering.proxy import static_url_prefix

SECRET_KEY_LENGTH = 50
LOCAL_HOSTS = (LOOPBACK, "localhost")


class LocalSite(Site):
    """The AWS architecture in containers: replicas behind nginx or Caddy, PostgreSQL, Redis."""

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:site:LocalSite", name, config, opts)
        port = config.local.http_port
        url = f"http://{LOOPBACK}:{port}"
        static_url = static_url_prefix(config)

        # User-defined, so containers find each other by name; nothing else is attached to it.
        network = docker.Network(f"{name}-network", name=name, driver="bridge", opts=self.child())
        data = LocalData(name, config=config, network_name=network.name, opts=self.child())
        image = LocalAppImage(
            f"{name}-app-image", app=config.app, project_dir=Path.cwd(), opts=self.child()
        )
        static = LocalStaticRelease(
            f"{name}-static",
            image=image.ref,
            release_id=image.ref,
            static_root=config.app.static_root,
            prefix=config.static.prefix,
            keep=config.static.keep_releases,
            opts=self.child(),
        )
        # Uploads: a volume of their own, which the static release never mounts.
        media = (
            LocalMedia(f"{name}-media", config=config.media, image=image.ref, opts=self.child())
            if config.media.enabled
            else None
        )
        environment: dict[str, pulumi.Input[str]] = {
            **app_environment_defaults(config.app),
            **config.app.environment,
            "DJANGO_SETTINGS_MODULE": config.app.settings_module,
            "DJANGO_HEALTH_CHECK_PATH": config.app.health_check_path,
            "DJANGO_SECRET_KEY": django_secret_key(name, config, SECRET_KEY_LENGTH, self.child()),
            "DJANGO_ALLOWED_HOSTS": ",".join(LOCAL_HOSTS),
            "DJANGO_CSRF_TRUSTED_ORIGINS": ",".join(
                f"http://{host}:{port}" for host in LOCAL_HOSTS
            ),
            "STATIC_URL": static_url,
            **(media.environment if media else {}),
            **data.environment,
        }
        media_mounts = [media.mount(LOCAL_MEDIA_ROOT)] if media else []
        migration = LocalMigrationJob(
            f"{name}-migrate",
            config=config.migrations,
            settings_module=config.app.settings_module,
            image=image.ref,
            network_name=network.name,
            environment=environment,
            after=[static, data, *([media] if media else [])],
            mounts=media_mounts,
            opts=self.child(),
        )
        replicas = LocalAppReplicas(
            f"{name}-app",
            config=config,
            # Resolved only once the migrations succeeded: the replicas wait for them.
            image=migration.gate,
            network_name=network.name,
            environment=environment,
            mounts=media_mounts,
            opts=self.child(),
        )
        proxy = LocalProxy(
            f"{name}-proxy",
            config=config,
            network_name=network.name,
            static_volume=static.volume_name,
            upstreams=replicas.upstreams,
            media=media,
            opts=self.child(),
        )
        self.finish(
            url=url,
            static_url=static_url,
            release_id=image.ref,
            appContainers=replicas.names,
            proxyContainer=proxy.container_name,
            **({"mediaVolume": media.volume_name} if media else {}),
        )
