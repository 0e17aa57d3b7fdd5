"""The whole site on AWS, wired in the order a release must follow.

Infrastructure first (network, data tier, load balancer, CDN), then the release itself:
image built -> static release published -> migration check and job -> fleet rolled out.
Each arrow is a resource dependency, so a failed step leaves the running fleet untouched.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from pulumi_django.components.aws.app_image import AppImage, AppImageArgs
from pulumi_django.components.aws.app_service import AppService, AppServiceArgs
from pulumi_django.components.aws.app_task import (
    AppTask,
    AppTaskArgs,
    CacheEndpoint,
    DatabaseEndpoint,
    MediaBucket,
)
from pulumi_django.components.aws.cache import Cache, CacheArgs
from pulumi_django.components.aws.cluster import Cluster, ClusterArgs
from pulumi_django.components.aws.database import Database, DatabaseArgs
from pulumi_django.components.aws.load_balancer import LoadBalancer, LoadBalancerArgs
from pulumi_django.components.aws.media_storage import MediaStorage, MediaStorageArgs
from pulumi_django.components.aws.migration_job import MigrationJob, MigrationJobArgs
from pulumi_django.components.aws.network import Network, NetworkArgs
from pulumi_django.components.aws.static_site import StaticSite, StaticSiteArgs
from pulumi_django.components.site import Site
from pulumi_django.config import ConfigError, StackConfig
from pulumi_django.providers.static_release import StaticRelease

# The stack's `aws:` settings the site's own provider takes over from the default provider
# (an explicit provider reads none of them by itself); JSON-valued ones are decoded.
FORWARDED_AWS_SETTINGS = {
    "region": False,
    "profile": False,
    "allowedAccountIds": True,
    "forbiddenAccountIds": True,
    "sharedConfigFiles": True,
    "sharedCredentialsFiles": True,
    "assumeRoles": True,
    "defaultTags": True,
}


def site_tags(config: StackConfig) -> dict[str, str]:
    """The tags every AWS resource of the site carries: its name, its maker, `django:tags`."""
    return {"app": config.name, "managed-by": "pulumi-django", **config.tags}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def tagged_provider(name: str, config: StackConfig, opts: pulumi.ResourceOptions) -> aws.Provider:
    """The AWS provider of the site's resources: the stack's `aws:` settings, with the site's
    tags as default tags, so that every taggable resource gets them without passing them.

    An `aws:` setting it cannot forward is refused rather than dropped: pass your own provider
    (`opts.providers`) to use it, and set the default tags on that provider."""
    settings: dict[str, Any] = {}
    for full_key, raw in sorted(pulumi.runtime.config.CONFIG.get().items()):
        namespace, _, key = full_key.partition(":")
        if namespace != "aws":
            continue
        if key not in FORWARDED_AWS_SETTINGS:
            raise ConfigError(
                [
                    f"aws:{key}: the site's tagging AWS provider does not take this setting; "
                    "pass your own aws.Provider in the site's opts.providers instead"
                ]
            )
        settings[key] = json.loads(raw) if FORWARDED_AWS_SETTINGS[key] else raw
    stack_default_tags = settings.pop("defaultTags", {}).get("tags", {})
    return aws.Provider(
        f"{name}-aws",
        **{_snake(key): value for key, value in settings.items() if key != "assumeRoles"},
        assume_roles=[
            aws.ProviderAssumeRoleArgs(**{_snake(key): value for key, value in role.items()})
            for role in settings.get("assumeRoles", [])
        ]
        or None,
        default_tags=aws.ProviderDefaultTagsArgs(tags={**stack_default_tags, **site_tags(config)}),
        opts=opts,
    )


class AwsSite(Site):
    """ECS Fargate behind an ALB behind CloudFront, with RDS PostgreSQL and ElastiCache."""

    STACK_OUTPUTS = (
        *Site.STACK_OUTPUTS,
        "static_bucket",
        "media_bucket",
        "distribution_id",
        "load_balancer_dns_name",
        "database_endpoint",
        "database_port",
        "database_name",
        "database_secret_arn",
        "cache_endpoint",
        "cache_auth_secret_arn",
        "cluster_name",
        "service_name",
        "applied_migrations",
    )
    static_bucket: pulumi.Output[str]
    media_bucket: pulumi.Output[str] | None
    distribution_id: pulumi.Output[str]
    load_balancer_dns_name: pulumi.Output[str]
    database_endpoint: pulumi.Output[str]
    database_port: pulumi.Output[int]
    database_name: pulumi.Output[str]
    database_secret_arn: pulumi.Output[str]
    cache_endpoint: pulumi.Output[str]
    cache_auth_secret_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    service_name: pulumi.Output[str]
    applied_migrations: pulumi.Output[Any]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:site:AwsSite", name, config, opts)
        # Tags through the provider's default tags, unless the program brings its own provider.
        if opts is None or not _has_aws_provider(opts):
            self.use_provider(tagged_provider(name, config, pulumi.ResourceOptions(parent=self)))
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region

        network = Network(
            name,
            NetworkArgs(
                config=config.network,
                proxy_port=config.proxy.port,
                execute_command=config.fleet.enable_execute_command,
            ),
            opts=self.child(),
        )
        database = Database(
            name,
            DatabaseArgs(
                config=config.database,
                subnet_ids=network.private_subnet_ids,
                security_group_id=network.database_security_group_id,
            ),
            opts=self.child(),
        )
        cache = Cache(
            name,
            CacheArgs(
                config=config.cache,
                subnet_ids=network.private_subnet_ids,
                security_group_id=network.cache_security_group_id,
            ),
            opts=self.child(),
        )
        # CloudFront proves itself to the load balancer with this header; nobody else has it.
        origin_secret = random.RandomPassword(
            f"{name}-origin-verify", length=48, special=False, opts=self.child()
        )
        load_balancer = LoadBalancer(
            name,
            LoadBalancerArgs(
                config=config.load_balancer,
                origin_verify_secret=origin_secret.result,
                proxy_port=config.proxy.port,
                health_check_path=config.app.health_check_path,
                graceful_timeout_seconds=config.app.graceful_timeout_seconds,
                certificate_arn=(
                    config.domain.load_balancer_certificate_arn if config.domain else None
                ),
                vpc_id=network.vpc_id,
                public_subnet_ids=network.public_subnet_ids,
                security_group_ids=network.load_balancer_security_group_ids,
            ),
            opts=self.child(),
        )
        # Uploads: a bucket of their own, which no release step ever prunes.
        media = (
            MediaStorage(name, MediaStorageArgs(config=config.media), opts=self.child())
            if config.media.enabled
            else None
        )
        static_site = StaticSite(
            name,
            StaticSiteArgs(
                config=config.static,
                domain=config.domain,
                load_balancer_origin=load_balancer.origin,
                media=media.public_origin if media else None,
            ),
            opts=self.child(),
        )
        if media:
            media.attach_policy(static_site.distribution_arn)
        site_host = (
            pulumi.Output.from_input(config.domain.name)
            if config.domain
            else static_site.distribution_domain_name
        )

        # The release, step by step.
        image = AppImage(
            name,
            AppImageArgs(
                app=config.app,
                architecture=config.fleet.architecture,
                keep_images=config.static.keep_releases,
            ),
            opts=self.child(),
        )
        static_release = StaticRelease(
            f"{name}-static-release",
            bucket=static_site.bucket_name,
            release_id=image.image_ref,
            image=image.image_ref,
            static_root=config.app.static_root,
            prefix=config.static.prefix,
            keep=config.static.keep_releases,
            region=region,
            opts=self.child(),
        )
        cluster = Cluster(name, ClusterArgs(), opts=self.child())
        task = AppTask(
            name,
            AppTaskArgs(
                app=config.app,
                proxy=config.proxy,
                fleet=config.fleet,
                load_balancer=config.load_balancer,
                secret_key=config.secret_key,
                stop_timeout_seconds=config.stop_timeout_seconds,
                image_ref=image.image_ref,
                repository_arn=image.repository_arn,
                database=DatabaseEndpoint(
                    host=database.address,
                    port=database.port,
                    name=database.database_name,
                    username=database.username,
                    secret_arn=database.master_secret_arn,
                ),
                cache=CacheEndpoint(
                    url=cache.url_without_password, auth_secret_arn=cache.auth_secret_arn
                ),
                site_host=site_host,
                site_url=static_site.site_url,
                static_url=static_site.static_url,
                vpc_cidr=network.vpc_cidr,
                media=(
                    MediaBucket(name=media.bucket_name, arn=media.bucket_arn, config=config.media)
                    if media
                    else None
                ),
            ),
            opts=self.child(),
        )
        migrations = MigrationJob(
            name,
            MigrationJobArgs(
                config=config.migrations,
                settings_module=config.app.settings_module,
                cluster_arn=cluster.cluster_arn,
                task_definition_arn=task.task_definition_arn,
                container_name=task.app_container_name,
                subnet_ids=network.private_subnet_ids,
                security_group_ids=[network.app_security_group_id],
                log_group_name=task.log_group_name,
                release_id=image.image_ref,
                service_name=name,
                region=region,
                after=[static_release],
            ),
            opts=self.child(),
        )
        service = AppService(
            name,
            AppServiceArgs(
                fleet=config.fleet,
                proxy_port=config.proxy.port,
                cluster=cluster,
                task_definition_arn=task.task_definition_arn,
                private_subnet_ids=network.private_subnet_ids,
                security_group_id=network.app_security_group_id,
                # Resolves once the listener forwards to the group, which ECS insists on.
                target_group=load_balancer.target_group_arn,
                target_group_arn_suffix=load_balancer.target_group_arn_suffix,
                load_balancer_arn_suffix=load_balancer.arn_suffix,
                after=[migrations],
            ),
            opts=self.child(),
        )

        self.url = static_site.site_url
        self.static_url = static_site.static_url
        self.release_id = image.image_ref
        self.static_bucket = static_site.bucket_name
        self.media_bucket = media.bucket_name if media else None
        self.distribution_id = static_site.distribution_id
        self.load_balancer_dns_name = load_balancer.dns_name
        self.database_endpoint = database.address
        self.database_port = database.port
        self.database_name = database.database_name
        self.database_secret_arn = database.master_secret_arn
        self.cache_endpoint = cache.primary_endpoint
        self.cache_auth_secret_arn = cache.auth_secret_arn
        self.cluster_name = cluster.cluster_name
        self.service_name = service.service_name
        self.applied_migrations = migrations.applied_migrations
        self.register_outputs(self.exports)


def _has_aws_provider(opts: pulumi.ResourceOptions) -> bool:
    providers = opts.providers
    packages = (
        list(providers)
        if isinstance(providers, dict)
        else [p.package for p in providers or [] if isinstance(p, pulumi.ProviderResource)]
    )
    return "aws" in packages or (opts.provider is not None and opts.provider.package == "aws")
