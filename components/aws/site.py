"""The whole site on AWS, wired in the order a release must follow.

Infrastructure first (network, data tier, load balancer, CDN), then the release itself:
image built -> static release published -> migration check and job -> fleet rolled out.
Each arrow is a resource dependency, so a failed step leaves the running fleet untouched.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from pulumi_django.components.aws.app_image import AppImage
from pulumi_django.components.aws.app_service import AppService
from pulumi_django.components.aws.app_task import (
    AppTask,
    CacheEndpoint,
    DatabaseEndpoint,
    MediaBucket,
)
from pulumi_django.components.aws.cache import Cache
from pulumi_django.components.aws.database import Database
from pulumi_django.components.aws.load_balancer import LoadBalancer
from pulumi_django.components.aws.media_storage import MediaStorage
from pulumi_django.components.aws.migration_job import MigrationJob
from pulumi_django.components.aws.network import Network
from pulumi_django.components.aws.static_site import StaticSite
from pulumi_django.components.site import Site
from pulumi_django.config import StackConfig
from pulumi_django.providers.static_release import StaticRelease


class AwsSite(Site):
    """ECS Fargate behind an ALB behind CloudFront, with RDS PostgreSQL and ElastiCache."""

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:site:AwsSite", name, config, opts)
        tags = {"app": name, "managed-by": "pulumi-django", **config.tags}
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region

        network = Network(
            name,
            config=config.network,
            proxy_port=config.proxy.port,
            execute_command=config.fleet.enable_execute_command,
            tags=tags,
            opts=self.child(),
        )
        database = Database(
            name,
            config=config.database,
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.database_security_group_id,
            tags=tags,
            opts=self.child(),
        )
        cache = Cache(
            name,
            config=config.cache,
            subnet_ids=network.private_subnet_ids,
            security_group_id=network.cache_security_group_id,
            tags=tags,
            opts=self.child(),
        )
        # CloudFront proves itself to the load balancer with this header; nobody else has it.
        origin_secret = random.RandomPassword(
            f"{name}-origin-verify", length=48, special=False, opts=self.child()
        )
        load_balancer = LoadBalancer(
            name,
            config=config.load_balancer,
            app=config.app,
            proxy_port=config.proxy.port,
            domain=config.domain,
            vpc_id=network.vpc_id,
            public_subnet_ids=network.public_subnet_ids,
            security_group_ids=network.load_balancer_security_group_ids,
            origin_verify_secret=origin_secret.result,
            deletion_protection=config.database.deletion_protection,
            tags=tags,
            opts=self.child(),
        )
        # Uploads: a bucket of their own, which no release step ever prunes.
        media = (
            MediaStorage(name, config=config.media, tags=tags, opts=self.child())
            if config.media.enabled
            else None
        )
        static_site = StaticSite(
            name,
            config=config.static,
            domain=config.domain,
            load_balancer_dns_name=load_balancer.dns_name,
            origin_verify_secret=origin_secret.result,
            load_balancer_https=load_balancer.https,
            tags=tags,
            media=media.public_origin if media else None,
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
            app=config.app,
            architecture=config.fleet.architecture,
            keep_images=config.static.keep_releases,
            project_dir=Path.cwd(),
            tags=tags,
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
        task = AppTask(
            name,
            config=config,
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
                MediaBucket(name=media.bucket_name, arn=media.bucket_arn, location=media.location)
                if media
                else None
            ),
            tags=tags,
            opts=self.child(),
        )
        migrations = MigrationJob(
            name,
            config=config.migrations,
            settings_module=config.app.settings_module,
            cluster_arn=task.cluster_arn,
            task_definition_arn=task.task_definition_arn,
            container_name=task.app_container_name,
            subnet_ids=network.private_subnet_ids,
            security_group_ids=[network.app_security_group_id],
            log_group_name=task.log_group_name,
            release_id=image.image_ref,
            service_name=name,
            region=region,
            after=[static_release],
            opts=self.child(),
        )
        service = AppService(
            name,
            config=config,
            cluster_arn=task.cluster_arn,
            cluster_name=task.cluster_name,
            task_definition_arn=task.task_definition_arn,
            private_subnet_ids=network.private_subnet_ids,
            security_group_id=network.app_security_group_id,
            target_group_arn=load_balancer.target_group_arn,
            load_balancer_arn_suffix=load_balancer.arn_suffix,
            target_group_arn_suffix=load_balancer.target_group_arn_suffix,
            after=[migrations],
            tags=tags,
            opts=self.child(),
        )

        self.finish(
            url=static_site.site_url,
            static_url=static_site.static_url,
            release_id=image.image_ref,
            staticBucket=static_site.bucket_name,
            **({"mediaBucket": media.bucket_name} if media else {}),
            distributionId=static_site.distribution_id,
            loadBalancerDnsName=load_balancer.dns_name,
            databaseEndpoint=database.address,
            databasePort=database.port,
            databaseName=database.database_name,
            databaseSecretArn=database.master_secret_arn,
            cacheEndpoint=cache.primary_endpoint,
            cacheAuthSecretArn=cache.auth_secret_arn,
            clusterName=task.cluster_name,
            serviceName=service.service_name,
            appliedMigrations=migrations.applied_migrations,
        )
