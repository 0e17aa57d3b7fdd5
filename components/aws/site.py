"""The whole site on AWS, wired in the order a release must follow.

Infrastructure first (network, data tier, load balancer, CDN), then the release itself:
image built -> static release published -> migration check and job -> fleet rolled out.
Each arrow is a resource dependency, so a failed step leaves the running fleet untouched.
"""

from __future__ import annotations

import inspect
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
from pulumi_django.components.aws.log_bucket import LogBucket, LogBucketArgs
from pulumi_django.components.aws.media_storage import MediaStorage, MediaStorageArgs
from pulumi_django.components.aws.migration_job import MigrationJob, MigrationJobArgs
from pulumi_django.components.aws.network import Network, NetworkArgs
from pulumi_django.components.aws.stack_key import StackKey, StackKeyArgs
from pulumi_django.components.aws.static_site import StaticSite, StaticSiteArgs
from pulumi_django.components.aws.worker_service import (
    SCHEDULER_CONTAINER,
    WorkerService,
    WorkerServiceArgs,
)
from pulumi_django.components.site import Site
from pulumi_django.config import ConfigError, StackConfig
from pulumi_django.providers.release_history import ReleaseHistory
from pulumi_django.providers.static_release import StaticRelease
from pulumi_django.release_records import unsafe_acknowledged


def site_tags(config: StackConfig) -> dict[str, str]:
    """The tags every AWS resource of the site carries: its name, its maker, `django:tags`."""
    return {"app": config.name, "managed-by": "pulumi-django", **config.tags}


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


def tagged_provider(name: str, config: StackConfig, opts: pulumi.ResourceOptions) -> aws.Provider:
    """The AWS provider of the site's resources: every `aws:` setting of the stack (an
    explicit provider reads none of them by itself), with the site's tags added to the stack's
    `aws:defaultTags`, so that every taggable resource gets them without passing them.
    Secret settings stay secret; a key the provider does not know is refused, naming it."""
    accepted = inspect.signature(aws.Provider._internal_init).parameters
    settings: dict[str, Any] = {}
    for full_key, raw in sorted(pulumi.runtime.config.CONFIG.get().items()):
        namespace, _, key = full_key.partition(":")
        if namespace != "aws":
            continue
        argument = _snake(key)
        if argument not in accepted:
            raise ConfigError([f"aws:{key}: the AWS provider has no such setting"])
        # JSON objects go to the engine as they are: their keys are already its wire names.
        value = raw if _is_text(accepted[argument].annotation) else json.loads(raw)
        settings[argument] = (
            pulumi.Output.secret(value) if pulumi.runtime.is_config_secret(full_key) else value
        )
    stack_default_tags = settings.pop("default_tags", {})
    return aws.Provider(
        f"{name}-aws",
        **settings,
        default_tags=pulumi.Output.from_input(stack_default_tags).apply(
            lambda stack: {"tags": {**(stack or {}).get("tags", {}), **site_tags(config)}}
        ),
        opts=opts,
    )


def network_identity(config: StackConfig) -> dict[str, str]:
    """What the data stores' guards know their network by, under the key that sets it: a VPC
    created from `network.cidr` (a new CIDR replaces it, and the subnets the stores sit in), or
    an existing VPC."""
    existing = config.network.existing
    if existing is not None:
        return {"network.existing.vpcId": existing.vpc_id}
    return {"network.cidr": config.network.cidr}


def _is_text(annotation: Any) -> bool:
    """Whether a provider argument is a plain string (else its config value is JSON)."""
    text = str(annotation)
    return "str]" in text and not any(kind in text for kind in ("Sequence", "Mapping", "Args"))


class AwsSite(Site):
    """ECS Fargate behind an ALB behind CloudFront, with RDS PostgreSQL and ElastiCache.

    The one place that maps the stack config to the AWS components' args; each component is
    an attribute, whose own attributes are its resources."""

    stack_key: StackKey | None
    logs: LogBucket | None
    network: Network
    database: Database
    cache: Cache
    load_balancer: LoadBalancer
    media: MediaStorage | None
    static_site: StaticSite
    image: AppImage
    static_release: StaticRelease
    cluster: Cluster
    task: AppTask
    migrations: MigrationJob
    service: AppService
    # The background processes by worker name, the scheduler under `scheduler`; empty without
    # `django:workers`.
    workers: dict[str, WorkerService]
    release_history: ReleaseHistory

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
        "log_bucket",
        "stack_key_arn",
        "region",
        "log_group_name",
        "worker_services",
        "releases",
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
    log_bucket: pulumi.Output[str] | None
    stack_key_arn: pulumi.Output[str] | None
    # What the day-2 commands (`manage`, `logs`) find the site's tasks and their logs by.
    region: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    # Worker (and scheduler) name -> its ECS service's name; None without `django:workers`.
    worker_services: pulumi.Output[dict[str, str]] | None
    # The kept releases, newest first (`providers.release_history`), for `releases`/`rollback`.
    releases: pulumi.Output[list[dict[str, Any]]]

    def __init__(
        self, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:site:AwsSite", name, opts)
        # Tags through the provider's default tags, unless the program brings its own provider
        # (in `opts` or from a parent).
        provider = self.get_provider("aws::")
        if provider is None:
            provider = tagged_provider(name, config, pulumi.ResourceOptions(parent=self))
            self.use_provider(provider)
        region = aws.get_region_output(
            opts=pulumi.InvokeOutputOptions(parent=self, provider=provider)
        ).region
        # One customer-managed key for the stack's data (`security.customerManagedKey`); None:
        # AWS managed keys. Created first: the data tier is encrypted with it from the start.
        self.stack_key = (
            StackKey(
                name,
                StackKeyArgs(
                    cloudfront_reads=config.media.enabled and config.media.access == "public"
                ),
                opts=self.child(),
            )
            if config.security.customer_managed_key
            else None
        )
        kms_key_arn = self.stack_key.arn if self.stack_key else None

        # The audit logs' bucket (`security.accessLogs`, `security.flowLogs`); None: no logs.
        # Each writer below is handed a value that resolves once the bucket admits it.
        security = config.security
        self.logs = (
            LogBucket(
                name,
                LogBucketArgs(
                    retention_days=security.log_retention_days,
                    load_balancer_prefix=name if security.access_logs else None,
                    flow_logs=security.flow_logs,
                    cloudfront_logs=security.access_logs,
                ),
                opts=self.child(),
            )
            if security.access_logs or security.flow_logs
            else None
        )

        self.network = Network(
            name,
            NetworkArgs(
                config=config.network,
                proxy_port=config.proxy.port,
                execute_command=config.fleet.enable_execute_command,
                flow_logs_destination=self.logs.flow_logs_destination if self.logs else None,
                protect=config.protect,
            ),
            opts=self.child(),
        )
        self.database = Database(
            name,
            DatabaseArgs(
                config=config.database,
                subnet_ids=self.network.private_subnet_ids,
                security_group_id=self.network.database_security_group_id,
                enhanced_monitoring_seconds=security.enhanced_monitoring_seconds,
                kms_key_arn=kms_key_arn,
                protect=config.protect,
                allow_replacement="database" in config.allow_replacement,
                network_identity=network_identity(config),
                log_retention_days=config.database.log_retention_days
                or config.fleet.log_retention_days,
            ),
            opts=self.child(),
        )
        self.cache = Cache(
            name,
            CacheArgs(
                config=config.cache,
                subnet_ids=self.network.private_subnet_ids,
                security_group_id=self.network.cache_security_group_id,
                kms_key_arn=kms_key_arn,
                protect=config.protect,
                allow_replacement="cache" in config.allow_replacement,
                network_identity=network_identity(config),
            ),
            opts=self.child(),
        )
        # CloudFront proves itself to the load balancer with this header; nobody else has it.
        origin_secret = random.RandomPassword(
            f"{name}-origin-verify", length=48, special=False, opts=self.child()
        )
        self.load_balancer = LoadBalancer(
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
                vpc_id=self.network.vpc_id,
                # Internal, in the private subnets: CloudFront reaches it through a VPC origin.
                subnet_ids=self.network.private_subnet_ids,
                security_group_ids=self.network.load_balancer_security_group_ids,
                access_logs_bucket=(
                    self.logs.bucket_name if self.logs and security.access_logs else None
                ),
                # The one ingress rule goes on the `lb` group created here; a brought group
                # admits CloudFront's VPC-origin group itself.
                cloudfront_security_group_id=(
                    self.network.security_groups["lb"].id
                    if "lb" in self.network.security_groups
                    else None
                ),
                # A VPC origin needs the VPC's internet gateway attached first.
                after=[gateway] if (gateway := self.network.internet_gateway) else [],
            ),
            opts=self.child(),
        )
        # Uploads: a bucket of their own, which no release step ever prunes.
        self.media = (
            MediaStorage(
                name,
                MediaStorageArgs(
                    config=config.media, kms_key_arn=kms_key_arn, protect=config.protect
                ),
                opts=self.child(),
            )
            if config.media.enabled
            else None
        )
        self.static_site = StaticSite(
            name,
            StaticSiteArgs(
                config=config.static,
                domain=config.domain,
                load_balancer_origin=self.load_balancer.origin,
                media=self.media.public_origin if self.media else None,
                access_logs_destination=(
                    self.logs.cloudfront_logs_destination if self.logs else None
                ),
                protect=config.protect,
            ),
            opts=self.child(),
        )
        if self.media:
            self.media.attach_policy(self.static_site.distribution_arn)
        site_host = (
            pulumi.Output.from_input(config.domain.name)
            if config.domain
            else self.static_site.distribution_domain_name
        )

        # The release, step by step.
        self.image = AppImage(
            name,
            AppImageArgs(
                app=config.app,
                architecture=config.fleet.architecture,
                keep_images=config.static.keep_releases,
                kms_key_arn=kms_key_arn,
                protect=config.protect,
            ),
            opts=self.child(),
        )
        self.static_release = StaticRelease(
            f"{name}-static-release",
            bucket=self.static_site.bucket_name,
            release_id=self.image.image_ref,
            image=self.image.image_ref,
            static_root=config.app.static_root,
            prefix=config.static.prefix,
            keep=config.static.keep_releases,
            region=region,
            # Read from the registry in the fleet's platform: no Docker daemon needed.
            architecture=config.fleet.architecture,
            opts=self.child(),
        )
        self.cluster = Cluster(name, ClusterArgs(), opts=self.child())
        self.task = AppTask(
            name,
            AppTaskArgs(
                app=config.app,
                proxy=config.proxy,
                fleet=config.fleet,
                load_balancer=config.load_balancer,
                secret_key=config.secret_key,
                stop_timeout_seconds=config.stop_timeout_seconds,
                image_ref=self.image.image_ref,
                # The repository the image is pulled from (app.image's own when prebuilt).
                repository_arn=self.image.image_repository_arn,
                database=DatabaseEndpoint(
                    host=self.database.address,
                    port=self.database.port,
                    name=self.database.database_name,
                    username=self.database.username,
                    secret_arn=self.database.master_secret_arn,
                    # The fleet connects as the app's own role; the release as the master.
                    app_role=self.database.app_role,
                ),
                cache=CacheEndpoint(
                    url=self.cache.url_without_password, auth_secret_arn=self.cache.auth_secret_arn
                ),
                secret_versions=[self.cache.auth_secret_version],
                site_host=site_host,
                site_url=self.static_site.site_url,
                static_url=self.static_site.static_url,
                vpc_cidr=self.network.vpc_cidr,
                media=(
                    MediaBucket(
                        name=self.media.bucket_name, arn=self.media.bucket_arn, config=config.media
                    )
                    if self.media
                    else None
                ),
                kms_key_arn=kms_key_arn,
            ),
            opts=self.child(),
        )
        self.migrations = MigrationJob(
            name,
            MigrationJobArgs(
                config=config.migrations,
                settings_module=config.app.settings_module,
                cluster=self.cluster,
                task_definition_arn=self.task.task_definition_arn,
                container_name=self.task.app_container_name,
                subnet_ids=self.network.private_subnet_ids,
                security_group_ids=[self.network.app_security_group_id],
                log_group_name=self.task.log_group_name,
                release_id=self.image.image_ref,
                service_name=name,
                region=region,
                after=[self.static_release],
                # As the master, setting the app's role up before `migrate`.
                container_overrides=self.task.release_overrides,
                setup_commands=self.task.release_setup_commands,
                secret_versions=[*self.task.secret_versions, self.cache.auth_secret_version],
            ),
            opts=self.child(),
        )
        self.service = AppService(
            name,
            AppServiceArgs(
                fleet=config.fleet,
                proxy_port=config.proxy.port,
                cluster=self.cluster,
                task_definition_arn=self.task.task_definition_arn,
                subnet_ids=self.network.private_subnet_ids,
                security_group_ids=[self.network.app_security_group_id],
                # Resolves once the listener forwards to the group, which ECS insists on.
                target_group=self.load_balancer.target_group_arn,
                target_group_arn_suffix=self.load_balancer.target_group_arn_suffix,
                load_balancer_arn_suffix=self.load_balancer.arn_suffix,
                after=[self.migrations],
            ),
            opts=self.child(),
        )

        self.workers = self._workers(name, config)

        # Recorded once the fleet rolled out (and its verification passed): the kept releases,
        # which `pulumi-django releases` lists and `rollback` pins `app.image` to.
        self.release_history = ReleaseHistory(
            f"{name}-release-history",
            release=self.image.image_ref,
            image=self.image.image_ref,
            applied_migrations=self.migrations.applied_migrations,
            unsafe_acknowledged=(
                self.migrations.check.findings.apply(unsafe_acknowledged)
                if self.migrations.check
                else []
            ),
            migrations_checked=config.migrations.check,
            kept_static_releases=self.static_release.kept_releases,
            keep=config.static.keep_releases,
            opts=pulumi.ResourceOptions.merge(
                self.child(),
                pulumi.ResourceOptions(depends_on=[self.service, *self.workers.values()]),
            ),
        )

        self.url = self.static_site.site_url
        self.static_url = self.static_site.static_url
        self.release_id = self.image.image_ref
        self.readiness_url = self.readiness_url_of(config.app.readiness_path)
        self.static_bucket = self.static_site.bucket_name
        self.media_bucket = self.media.bucket_name if self.media else None
        self.distribution_id = self.static_site.distribution_id
        self.load_balancer_dns_name = self.load_balancer.dns_name
        self.database_endpoint = self.database.address
        self.database_port = self.database.port
        self.database_name = self.database.database_name
        self.database_secret_arn = self.database.master_secret_arn
        self.cache_endpoint = self.cache.primary_endpoint
        self.cache_auth_secret_arn = self.cache.auth_secret_arn
        self.cluster_name = self.cluster.cluster_name
        self.service_name = self.service.service_name
        self.applied_migrations = self.migrations.applied_migrations
        self.log_bucket = self.logs.bucket_name if self.logs else None
        self.stack_key_arn = kms_key_arn
        self.region = region
        self.log_group_name = self.task.log_group_name
        self.worker_services = (
            pulumi.Output.all(
                **{process: worker.service_name for process, worker in self.workers.items()}
            )
            if self.workers
            else None
        )
        self.releases = self.release_history.history
        self.register_outputs(self.exports)

    def _workers(self, name: str, config: StackConfig) -> dict[str, WorkerService]:
        """One service per `workers.services` entry (`<name>-worker-<worker>`) and one for
        `workers.scheduler` (`<name>-scheduler`), each from the web task, after the migration
        job. The scheduler also waits for the workers: the jobs the new version schedules
        find the new workers."""
        common: dict[str, Any] = {
            "app_task": self.task,
            "cluster": self.cluster,
            "subnet_ids": self.network.private_subnet_ids,
            "security_group_ids": [self.network.app_security_group_id],
            "fleet": config.fleet,
        }
        workers = {
            process: WorkerService(
                f"{name}-worker-{process}",
                WorkerServiceArgs(
                    process=worker, container_name=process, after=[self.migrations], **common
                ),
                opts=self.child(),
            )
            for process, worker in config.workers.services.items()
        }
        scheduler = config.workers.scheduler
        if scheduler is not None:
            workers[SCHEDULER_CONTAINER] = WorkerService(
                f"{name}-scheduler",
                WorkerServiceArgs(
                    process=scheduler,
                    container_name=SCHEDULER_CONTAINER,
                    after=[self.migrations, *workers.values()],
                    **common,
                ),
                opts=self.child(),
            )
        return workers
