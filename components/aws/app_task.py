"""The app task: an ECS cluster, the Fargate task definition (proxy sidecar + app server), its
log group, the Django secret key and the two IAM roles. docs/app-task.md explains the defaults."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from pulumi_django.components.site import django_secret_key
from pulumi_django.config import StackConfig
from pulumi_django.rendering.container_definitions import (
    APP_CONTAINER,
    DEFAULT_APP_USER,
    DatabaseSettings,
    TaskInputs,
    app_secrets,
    stack_container_definitions,
    task_volumes,
)
from pulumi_django.rendering.iam_policies import (
    database_secret_policy,
    ecs_tasks_assume_role_policy,
    exec_command_policy,
    execution_role_policy,
    media_storage_policy,
)

SECRET_KEY_LENGTH = 64


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where the app's database is; `secret_arn` is the RDS-managed master secret (JSON)."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    name: pulumi.Input[str]
    username: pulumi.Input[str]
    secret_arn: pulumi.Input[str]


@dataclass(frozen=True)
class CacheEndpoint:
    """The cache's URL without a password, and the secret holding its AUTH token."""

    url: pulumi.Input[str]
    auth_secret_arn: pulumi.Input[str]


@dataclass(frozen=True)
class MediaBucket:
    """The bucket the app stores uploads in; it may use the keys under `location` only."""

    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    location: str


class AppTask(pulumi.ComponentResource):
    """Everything an ECS service or a one-off task (the migration job) needs to run the app.

    The migration job runs this task definition with a command override on the `app`
    container, so it gets the same image, settings and secrets as the fleet."""

    cluster_arn: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    task_definition_arn: pulumi.Output[str]
    family: pulumi.Output[str]
    app_container_name: str
    log_group_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]
    django_secret_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        *,
        config: StackConfig,
        image_ref: pulumi.Input[str],
        repository_arn: pulumi.Input[str],
        database: DatabaseEndpoint,
        cache: CacheEndpoint,
        site_host: pulumi.Input[str],
        site_url: pulumi.Input[str],
        static_url: pulumi.Input[str],
        vpc_cidr: pulumi.Input[str],
        media: MediaBucket | None = None,
        task_role_policy_arns: Sequence[pulumi.Input[str]] = (),
        app_user: str = DEFAULT_APP_USER,
        tags: Mapping[str, str] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:fleet:AppTask", name, None, opts)
        tags = dict(tags or {})
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = aws.get_region_output(opts=invoke).region
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        partition = aws.get_partition_output(opts=invoke).partition

        cluster = aws.ecs.Cluster(
            f"{name}-cluster",
            settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
            tags=tags,
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/ecs/{pulumi.get_project()}/{pulumi.get_stack()}/{name}",
            retention_in_days=config.fleet.log_retention_days,
            tags=tags,
            opts=child,
        )
        django_secret = self._django_secret(name, config, tags, child)

        def trust(source_arn: bool) -> pulumi.Output[str]:
            return pulumi.Output.all(partition, region, account_id).apply(
                lambda values: json.dumps(
                    ecs_tasks_assume_role_policy(
                        partition=values[0],
                        region=values[1],
                        account_id=values[2],
                        source_arn=source_arn,
                    )
                )
            )

        assume_role = trust(source_arn=True)
        execution_role = aws.iam.Role(
            f"{name}-execution",
            description=f"{name}: ECS pulls the app image, reads its secrets, writes its logs",
            assume_role_policy=trust(source_arn=False),
            tags=tags,
            opts=child,
        )
        secrets = pulumi.Output.all(
            database.secret_arn, cache.auth_secret_arn, django_secret.arn
        ).apply(
            lambda arns: app_secrets(
                database_secret_arn=arns[0],
                cache_auth_secret_arn=arns[1],
                django_secret_arn=arns[2],
                extra=config.app.secrets,
            )
        )
        execution_policy = aws.iam.RolePolicy(
            f"{name}-execution",
            role=execution_role.id,
            policy=pulumi.Output.all(repository_arn, log_group.arn, secrets).apply(
                lambda values: json.dumps(
                    execution_role_policy(
                        repository_arn=values[0],
                        log_group_arn=values[1],
                        secret_value_froms=values[2].values(),
                    )
                )
            ),
            opts=child,
        )
        task_role = self._task_role(name, config, assume_role, task_role_policy_arns, tags, child)
        # The app reads the password again when RDS rotates it (the execution role read it
        # only at task start); see docs/app-task.md.
        database_secret_read = aws.iam.RolePolicy(
            f"{name}-task-database-secret",
            role=task_role.id,
            policy=pulumi.Output.from_input(database.secret_arn).apply(
                lambda arn: json.dumps(database_secret_policy(arn))
            ),
            opts=child,
        )
        # The app reads and writes its uploads (django-storages); docs/media.md.
        task_role_grants: list[pulumi.Resource] = [database_secret_read]
        if media is not None:
            task_role_grants.append(
                aws.iam.RolePolicy(
                    f"{name}-task-media",
                    role=task_role.id,
                    policy=pulumi.Output.from_input(media.arn).apply(
                        lambda arn: json.dumps(media_storage_policy(arn, media.location))
                    ),
                    opts=child,
                )
            )

        containers = pulumi.Output.all(
            image=image_ref,
            region=region,
            log_group=log_group.name,
            secrets=secrets,
            site_host=site_host,
            site_url=site_url,
            static_url=static_url,
            vpc_cidr=vpc_cidr,
            database_host=database.host,
            database_port=database.port,
            database_name=database.name,
            database_user=database.username,
            database_secret_arn=database.secret_arn,
            redis_url=cache.url,
            media_bucket=media.name if media is not None else None,
        ).apply(lambda values: json.dumps(_containers(config, app_user, values)))

        task_definition = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=name,
            requires_compatibilities=["FARGATE"],
            network_mode="awsvpc",
            cpu=str(config.fleet.cpu),
            memory=str(config.fleet.memory),
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                operating_system_family="LINUX", cpu_architecture=config.fleet.architecture
            ),
            execution_role_arn=execution_role.arn,
            task_role_arn=task_role.arn,
            container_definitions=containers,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=v["name"]) for v in task_volumes()],
            # Replaced revisions stay registered (ACTIVE): a rollback to any release whose image
            # ECR still keeps can run again.
            skip_destroy=True,
            tags=tags,
            # A task must never start before its execution role may pull and read secrets,
            # nor before the app may read its database secret again and store its uploads.
            opts=child.merge(
                pulumi.ResourceOptions(depends_on=[execution_policy, *task_role_grants])
            ),
        )

        self.cluster_arn = cluster.arn
        self.cluster_name = cluster.name
        self.task_definition_arn = task_definition.arn
        self.family = task_definition.family
        self.app_container_name = APP_CONTAINER
        self.log_group_name = log_group.name
        self.execution_role_arn = execution_role.arn
        self.task_role_arn = task_role.arn
        self.django_secret_arn = django_secret.arn
        self.register_outputs(
            {
                "cluster_arn": self.cluster_arn,
                "cluster_name": self.cluster_name,
                "task_definition_arn": self.task_definition_arn,
                "family": self.family,
                "app_container_name": self.app_container_name,
                "log_group_name": self.log_group_name,
                "execution_role_arn": self.execution_role_arn,
                "task_role_arn": self.task_role_arn,
                "django_secret_arn": self.django_secret_arn,
            }
        )

    def _django_secret(
        self,
        name: str,
        config: StackConfig,
        tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> aws.secretsmanager.Secret:
        """`django:secretKey` when set, else a generated key; either way a secret Output that
        only Secrets Manager and the (encrypted) state ever hold."""
        value = django_secret_key(name, config, SECRET_KEY_LENGTH, child)
        secret = aws.secretsmanager.Secret(
            f"{name}-django-secret-key",
            description=f"{name}: Django SECRET_KEY",
            tags=tags,
            opts=child,
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-django-secret-key",
            secret_id=secret.id,
            secret_string=value,
            opts=child,
        )
        return secret

    def _task_role(
        self,
        name: str,
        config: StackConfig,
        assume_role: pulumi.Output[str],
        policy_arns: Sequence[pulumi.Input[str]],
        tags: dict[str, str],
        child: pulumi.ResourceOptions,
    ) -> aws.iam.Role:
        """The app's own AWS identity: it may read its database secret and, given a media
        bucket, store uploads there (both granted by the caller), and nothing else unless
        given more."""
        role = aws.iam.Role(
            f"{name}-task",
            description=f"{name}: the app's AWS identity (by default: read the database secret)",
            assume_role_policy=assume_role,
            tags=tags,
            opts=child,
        )
        if config.fleet.enable_execute_command:
            aws.iam.RolePolicy(
                f"{name}-task-exec",
                role=role.id,
                policy=json.dumps(exec_command_policy()),
                opts=child,
            )
        for index, policy_arn in enumerate(policy_arns):
            aws.iam.RolePolicyAttachment(
                f"{name}-task-policy-{index}", role=role.name, policy_arn=policy_arn, opts=child
            )
        return role


def _containers(config: StackConfig, app_user: str, values: dict) -> list[dict]:
    return stack_container_definitions(
        config,
        TaskInputs(
            image=values["image"],
            region=values["region"],
            log_group=values["log_group"],
            site_host=values["site_host"],
            site_url=values["site_url"],
            static_url=values["static_url"],
            vpc_cidr=values["vpc_cidr"],
            database=DatabaseSettings(
                host=values["database_host"],
                port=int(values["database_port"]),
                name=values["database_name"],
                user=values["database_user"],
                secret_arn=values["database_secret_arn"],
            ),
            redis_url=values["redis_url"],
            secrets=values["secrets"],
            media_bucket=values["media_bucket"],
        ),
        app_user,
    )
