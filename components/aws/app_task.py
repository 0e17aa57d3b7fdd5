"""The app task: the Fargate task definition (proxy sidecar + app server), its log group, the
Django secret key and the two IAM roles. docs/app-task.md explains the defaults."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random
from pydantic import SecretStr

from pulumi_django._mock_answers import MOCK_ACCOUNT, mock_arn, mock_region, or_mock_answer
from pulumi_django.components.args import ComponentArgsError, arg, check_name, resource_ref
from pulumi_django.components.aws.database import AppDatabaseRole
from pulumi_django.components.site import django_secret_key
from pulumi_django.config.app import AppConfig
from pulumi_django.config.fleet import FleetConfig
from pulumi_django.config.load_balancer import LoadBalancerConfig
from pulumi_django.config.media import MediaConfig
from pulumi_django.config.names import pull_through_prefix
from pulumi_django.config.proxy import ProxyConfig
from pulumi_django.config.stack import ECS_MAX_STOP_TIMEOUT
from pulumi_django.providers.proxy_image import MOCK_DIGEST, ProxyImageCache
from pulumi_django.rendering.container_definitions import (
    APP_CONTAINER,
    DEFAULT_APP_USER,
    PROXY_UPSTREAM,
    PUBLIC_ECR,
    AppContainer,
    DatabaseSettings,
    TaskInputs,
    app_container,
    app_secrets,
    database_password_from,
    task_container_definitions,
    task_volumes,
)
from pulumi_django.rendering.iam_policies import (
    check_statement,
    database_connect_policy,
    database_secret_policy,
    ecs_tasks_assume_role_policy,
    exec_command_policy,
    execution_role_policy,
    extra_statements_policy,
    media_storage_policy,
    proxy_cache_repositories_arn,
    proxy_image_pull_policy,
    rds_db_user_arn,
)

SECRET_KEY_LENGTH = 64
APP_DATABASE_PASSWORD_LENGTH = 40
# The release's step that creates and updates the app's database role (runtime kit).
APP_ROLE_MODULE = "pulumi_django_runtime.db.app_role"


@dataclass(frozen=True)
class DatabaseEndpoint:
    """Where the app's database is; `username` and `secret_arn` are the master user's (the
    RDS-managed secret, JSON), which the release's one-off tasks (migrations) use. `app_role`:
    the app's own role (`Database.app_role`), as which the fleet connects; None: the fleet
    connects as the master too (a database you manage yourself; docs/security.md)."""

    host: pulumi.Input[str]
    port: pulumi.Input[int]
    name: pulumi.Input[str]
    username: pulumi.Input[str]
    secret_arn: pulumi.Input[str]
    app_role: AppDatabaseRole | None = None

    def __post_init__(self) -> None:
        role = self.app_role
        if role is not None and role.auth == "iam" and role.resource_id is None:
            raise ComponentArgsError(
                "DatabaseEndpoint.app_role: IAM authentication needs the instance's resource_id "
                "(its DbiResourceId, `Database.resource_id`) for the rds-db:connect grant"
            )


@dataclass(frozen=True)
class CacheEndpoint:
    """The cache's URL without a password, and the secret holding its AUTH token."""

    url: pulumi.Input[str]
    auth_secret_arn: pulumi.Input[str]


@dataclass(frozen=True)
class MediaBucket:
    """The bucket the app stores uploads in, and the media section (URL path, access, key
    prefix); the app may use the keys under `config.location` only."""

    name: pulumi.Input[str]
    arn: pulumi.Input[str]
    config: MediaConfig


@dataclass(frozen=True, kw_only=True)
class AppTaskArgs:
    """The sections the task renders, the resources around it, and the children you bring."""

    image_ref: pulumi.Input[str] = arg("The app image, by digest (`AppImage.image_ref`).")
    database: DatabaseEndpoint = arg("Where the app's database is, and its master secret.")
    cache: CacheEndpoint = arg("The cache's URL and its AUTH token's secret.")
    site_host: pulumi.Input[str] = arg(
        "The site's host name: `DJANGO_ALLOWED_HOSTS`, and the Host the health checks send."
    )
    site_url: pulumi.Input[str] = arg("The site's URL: `DJANGO_CSRF_TRUSTED_ORIGINS`.")
    static_url: pulumi.Input[str] = arg("`STATIC_URL`: where the release's static files are.")
    vpc_cidr: pulumi.Input[str] = arg(
        "The VPC's CIDR: the proxy trusts X-Forwarded-For from the load balancer in it."
    )
    stop_timeout_seconds: int = arg(
        "How long ECS waits after SIGTERM before it kills a container (at most 120): longer "
        "than `app.gracefulTimeoutSeconds`. `AwsSite` passes that plus 10 s."
    )
    app: AppConfig = arg(
        "The app section: server, port, health path, environment and secrets. Default: the "
        "section's defaults.",
        default_factory=AppConfig,
    )
    proxy: ProxyConfig = arg(
        "The proxy sidecar's section. Default: the section's defaults (nginx on 8080).",
        default_factory=ProxyConfig,
    )
    fleet: FleetConfig = arg(
        "Task size and architecture, log retention, ECS Exec, and the task role's extra "
        "grants (`taskRole`). Default: the section's defaults.",
        default_factory=FleetConfig,
    )
    load_balancer: LoadBalancerConfig = arg(
        "Its `idleTimeoutSeconds`, which the proxy's and the app server's keep-alives outlast. "
        "Default: the section's defaults.",
        default_factory=LoadBalancerConfig,
    )
    secret_key: SecretStr | None = arg(
        "Django's `SECRET_KEY`, kept in Secrets Manager. Default: None, one is generated once "
        "and kept, encrypted, in the state.",
        default=None,
    )
    repository_arn: pulumi.Input[str] | None = arg(
        "The ECR repository the execution role may pull the image from; needed unless you "
        "bring your own `execution_role`.",
        default=None,
    )
    media: MediaBucket | None = arg(
        "The bucket the app stores uploads in; the task role may read and write its files. "
        "Default: None, the app gets no `MEDIA_*` settings.",
        default=None,
    )
    secret_versions: Sequence[pulumi.Resource] = arg(
        "The `aws.secretsmanager.SecretVersion`s of the secrets passed in (the cache's AUTH "
        "token, `app.secrets` of yours): the task definition is registered only once their "
        "values exist, like the versions created here (`AppTask.secret_versions`). Default: none.",
        default=(),
    )
    task_role_policy_arns: Sequence[pulumi.Input[str]] = arg(
        "Managed policies attached to the task role, besides `fleet.taskRole.managedPolicyArns` "
        "(these may be outputs of your program).",
        default=(),
    )
    task_role_statements: Sequence[Mapping[str, Any]] = arg(
        "IAM statements (`Effect`, `Action`, `Resource`, optional `Sid`, `Condition`; values "
        "may be outputs) granted to the task role besides `fleet.taskRole.statements`, all in "
        "one inline policy `<name>-task-extra`.",
        default=(),
    )
    app_user: str = arg(
        "The `uid:gid` the app container runs as; the image's files must be readable by it.",
        default=DEFAULT_APP_USER,
    )
    execution_role: aws.iam.Role | pulumi.Input[str] | None = arg(
        "The role ECS starts the task with (a role or its ARN). Yours must let "
        "`ecs-tasks.amazonaws.com` assume it, pull the image, read the app's secrets "
        "(`app.secrets`, the database, cache and Django secrets), write to the log group and "
        "pull the proxy image through the pull-through cache (`proxy_image_pull_policy` on "
        "`AppTask.proxy_cache_repositories_arn`). "
        "Default: None, one is created that may do exactly that.",
        default=None,
    )
    task_role: aws.iam.Role | pulumi.Input[str] | None = arg(
        "The app's own AWS identity (a role or its ARN). Yours gets no policy from here: grant "
        "it `secretsmanager:GetSecretValue` on the database secret (the app reads it again "
        "after a rotation), the media files, and ECS Exec's `ssmmessages` when enabled. "
        "Default: None, one is created with those grants and the extra ones.",
        default=None,
    )
    log_group: aws.cloudwatch.LogGroup | pulumi.Input[str] | None = arg(
        "The CloudWatch log group the containers write to (a log group or its name). Default: "
        "None, `/ecs/<project>/<stack>/<name>` is created with `fleet.logRetentionDays`.",
        default=None,
    )
    kms_key_arn: pulumi.Input[str] | None = arg(
        "A customer-managed KMS key's ARN (`StackKey.arn`) for the log group and the Django "
        "secret created here; the roles created here may decrypt it through Secrets Manager "
        "for the task's secrets (and through S3 for the media files). Its key policy must let "
        "CloudWatch Logs use it (`StackKey`'s does). Default: None, AWS managed keys.",
        default=None,
    )

    def __post_init__(self) -> None:
        if not 0 < self.stop_timeout_seconds <= ECS_MAX_STOP_TIMEOUT:
            raise ComponentArgsError(
                f"AppTaskArgs.stop_timeout_seconds: {self.stop_timeout_seconds} is not between 1 "
                f"and {ECS_MAX_STOP_TIMEOUT}, the longest ECS waits on Fargate"
            )
        if self.execution_role is None and self.repository_arn is None:
            raise ComponentArgsError(
                "AppTaskArgs.repository_arn: needed for the execution role created here "
                "(it may pull from that repository only); or bring your own execution_role"
            )
        extras = self.task_role_policy_arns or self.task_role_statements
        configured = self.fleet.task_role.managed_policy_arns or self.fleet.task_role.statements
        if self.task_role is not None and (extras or configured):
            raise ComponentArgsError(
                "AppTaskArgs.task_role: a task role of your own gets no policy from here; grant "
                "it what task_role_policy_arns, task_role_statements or fleet.taskRole hold "
                "yourself, and leave those empty"
            )
        for index, statement in enumerate(self.task_role_statements):
            try:
                check_statement(statement)
            except ValueError as error:
                raise ComponentArgsError(
                    f"AppTaskArgs.task_role_statements[{index}]: {error}"
                ) from None


class AppTask(pulumi.ComponentResource):
    """Everything an ECS service or a one-off task (the migration job) needs to run the app.

    The migration job runs this task definition with a command override on the `app`
    container, so it gets the same image, settings and secrets as the fleet, but the master's
    database login (`release_overrides`) where the fleet has its own role's."""

    task_definition: aws.ecs.TaskDefinition
    execution_role: aws.iam.Role | None
    task_role: aws.iam.Role | None
    log_group: aws.cloudwatch.LogGroup | None
    django_secret: aws.secretsmanager.Secret
    django_secret_version: aws.secretsmanager.SecretVersion
    # The app role's password and its secret (`database.appAuth: password` only).
    app_database_secret: aws.secretsmanager.Secret | None
    app_database_secret_version: aws.secretsmanager.SecretVersion | None
    # The secret versions created here that the task reads; it is registered after them.
    secret_versions: list[aws.secretsmanager.SecretVersion]
    # What the release's one-off tasks change in the app container to log in as the master
    # (`MigrationJobArgs.container_overrides`), and the command that sets the app's role up
    # before `migrate` (`MigrationJobArgs.setup_commands`); None and [] without an app role.
    release_overrides: pulumi.Output[dict[str, Any]] | None
    release_setup_commands: list[list[pulumi.Input[str]]]
    execution_policy: aws.iam.RolePolicy | None
    # The task role's grants a task must not start without (database secret, uploads, extras).
    task_role_grants: list[aws.iam.RolePolicy | aws.iam.RolePolicyAttachment]
    # ECS Exec's permission, needed only once someone opens a session.
    exec_policy: aws.iam.RolePolicy | None
    task_definition_arn: pulumi.Output[str]
    family: pulumi.Output[str]
    app_container_name: str
    log_group_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]
    django_secret_arn: pulumi.Output[str]
    # The proxy image through the stack's ECR (`_proxy_image`).
    proxy_cache_rule: aws.ecr.PullThroughCacheRule
    proxy_image_cache: ProxyImageCache
    proxy_pull_policy: aws.iam.RolePolicy | None
    proxy_cache_repositories_arn: pulumi.Output[str]
    proxy_image: pulumi.Output[str]
    # The app container as rendered (image, environment, secrets' `valueFrom`s, user): the
    # background workers (`WorkerService`) run their commands with the same.
    app_container: pulumi.Output[AppContainer]
    # What a task definition of these roles and secrets waits for (the policies, the grants,
    # the secret versions): the workers' too.
    registered_after: list[pulumi.Resource]

    def __init__(
        self, name: str, args: AppTaskArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        check_name("AppTask", name)
        super().__init__("pulumi-django:fleet:AppTask", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        # What a unit test's plain mocks leave unanswered (`{}`) reads as the recorder's answer:
        # the IAM login of the app's database role needs a region.
        region = or_mock_answer(aws.get_region_output(opts=invoke).region, mock_region())
        account_id = aws.get_caller_identity_output(opts=invoke).account_id
        found_partition = aws.get_partition_output(opts=invoke)
        partition = found_partition.partition
        fleet = args.fleet

        if args.log_group is None:
            self.log_group = aws.cloudwatch.LogGroup(
                f"{name}-logs",
                name=f"/ecs/{pulumi.get_project()}/{pulumi.get_stack()}/{name}",
                retention_in_days=fleet.log_retention_days,
                kms_key_id=args.kms_key_arn,
                opts=child,
            )
            log_group_name, log_group_arn = self.log_group.name, self.log_group.arn
        elif isinstance(args.log_group, aws.cloudwatch.LogGroup):
            self.log_group = None
            log_group_name, log_group_arn = args.log_group.name, args.log_group.arn
        else:
            self.log_group = None
            log_group_name = pulumi.Output.from_input(args.log_group)
            log_group_arn = pulumi.Output.concat(
                "arn:", partition, ":logs:", region, ":", account_id, ":log-group:", log_group_name
            )
        self.django_secret = self._django_secret(name, args.secret_key, args.kms_key_arn, child)

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

        django_secret_arn = or_mock_answer(
            self.django_secret.arn, mock_arn("secretsmanager", f"secret:{name}-django-secret-key")
        )
        self.secret_versions = [self.django_secret_version]
        login = self._database_login(name, args, region, child)
        secrets = pulumi.Output.all(
            login.password_secret_arn, args.cache.auth_secret_arn, django_secret_arn
        ).apply(
            lambda arns: app_secrets(
                database_secret_arn=arns[0],
                cache_auth_secret_arn=arns[1],
                django_secret_arn=arns[2],
                extra=args.app.secrets,
            )
        )
        self.execution_policy = None
        self.task_role_grants = []
        self.exec_policy = None
        if args.execution_role is None:
            self.execution_role = aws.iam.Role(
                f"{name}-execution",
                description=f"{name}: ECS pulls the app image, reads its secrets, writes its logs",
                assume_role_policy=trust(source_arn=False),
                opts=child,
            )
            self.execution_policy = aws.iam.RolePolicy(
                f"{name}-execution",
                role=self.execution_role.id,
                policy=pulumi.Output.all(
                    args.repository_arn,
                    log_group_arn,
                    secrets,
                    args.kms_key_arn,
                    self.release_overrides,
                ).apply(
                    lambda values: json.dumps(
                        execution_role_policy(
                            repository_arn=values[0],
                            log_group_arn=values[1],
                            # The fleet's secrets and the release tasks' (the master's).
                            secret_value_froms=[
                                *values[2].values(),
                                *(v for v in (values[4] or {}).get("secrets", {}).values() if v),
                            ],
                            kms_key_arn=values[3],
                        )
                    )
                ),
                opts=child,
            )
            execution_role_arn = self.execution_role.arn
        else:
            self.execution_role = None
            execution_role_arn = resource_ref(args.execution_role, "arn")
        proxy_image = self._proxy_image(name, args, region, account_id, found_partition, child)
        if args.task_role is None:
            self.task_role = aws.iam.Role(
                f"{name}-task",
                description=(
                    f"{name}: the app's AWS identity (by default: read the database secret)"
                ),
                assume_role_policy=trust(source_arn=True),
                opts=child,
            )
            self._task_role_grants(name, args, login, self.task_role, partition, account_id, child)
            task_role_arn = self.task_role.arn
        else:
            self.task_role = None
            task_role_arn = resource_ref(args.task_role, "arn")

        media = args.media
        resolved = pulumi.Output.all(
            image=args.image_ref,
            proxy_image=proxy_image,
            region=region,
            log_group=log_group_name,
            secrets=secrets,
            site_host=args.site_host,
            site_url=args.site_url,
            static_url=args.static_url,
            vpc_cidr=args.vpc_cidr,
            database_host=args.database.host,
            database_port=args.database.port,
            database_name=args.database.name,
            database_user=login.username,
            database_secret_arn=login.password_secret_arn,
            database_iam_region=login.iam_region,
            redis_url=args.cache.url,
            media_bucket=media.name if media is not None else None,
        )
        containers = resolved.apply(lambda values: json.dumps(_containers(args, values)))
        self.app_container = resolved.apply(lambda values: _app_container(args, values))

        # A task must never start before its execution role may pull and read secrets, nor
        # before the app may log in to its database, store uploads, use its grants, nor
        # before every secret it reads has its value (a Secret exists before its version).
        self.registered_after = [
            *([self.execution_policy] if self.execution_policy else []),
            *self.task_role_grants,
            *self.secret_versions,
            *args.secret_versions,
        ]
        self.task_definition = fargate_task_definition(
            name,
            parent=self,
            family=name,
            cpu=fleet.cpu,
            memory=fleet.memory,
            architecture=fleet.architecture,
            execution_role_arn=execution_role_arn,
            task_role_arn=task_role_arn,
            container_definitions=containers,
            registered_after=self.registered_after,
            execute_command=fleet.enable_execute_command,
        )

        self.task_definition_arn = self.task_definition.arn
        self.family = self.task_definition.family
        self.app_container_name = APP_CONTAINER
        self.log_group_name = log_group_name
        self.execution_role_arn = execution_role_arn
        self.task_role_arn = task_role_arn
        self.django_secret_arn = django_secret_arn
        self.proxy_image = proxy_image
        self.register_outputs(
            {
                "task_definition_arn": self.task_definition_arn,
                "family": self.family,
                "app_container_name": self.app_container_name,
                "log_group_name": self.log_group_name,
                "execution_role_arn": self.execution_role_arn,
                "task_role_arn": self.task_role_arn,
                "django_secret_arn": self.django_secret_arn,
                "proxy_image": self.proxy_image,
            }
        )

    def _proxy_image(
        self,
        name: str,
        args: AppTaskArgs,
        region: pulumi.Output[str],
        account_id: pulumi.Output[str],
        partition: pulumi.Output[aws.GetPartitionResult],
        child: pulumi.ResourceOptions,
    ) -> pulumi.Output[str]:
        """The proxy image through the stack's own ECR, by digest (the `proxy.imageDigest` pin,
        or the one the tag named when `ProxyImageCache` was created, kept in the state until an
        input changes): a pull-through cache rule for ECR Public under a prefix of this
        stack's own, the image pulled into it by the
        deploying machine (`ProxyImageCache`: a first pull needs the internet, which tasks
        behind VPC endpoints lack), and the execution role created here allowed to pull it.
        The reference resolves once all of them exist, so no task starts before."""
        upstream = PROXY_UPSTREAM[args.proxy.server]
        prefix = pull_through_prefix(name, pulumi.get_project(), pulumi.get_stack())
        # What a unit test's plain mocks leave unanswered reads as the recorder's answers.
        account_id = or_mock_answer(account_id, MOCK_ACCOUNT)
        self.proxy_cache_rule = aws.ecr.PullThroughCacheRule(
            f"{name}-proxy-cache",
            ecr_repository_prefix=prefix,
            upstream_registry_url=PUBLIC_ECR,
            opts=child,
        )
        registry = pulumi.Output.concat(
            account_id,
            ".dkr.ecr.",
            region,
            ".",
            or_mock_answer(partition.dns_suffix, "amazonaws.com"),
        )
        self.proxy_image_cache = ProxyImageCache(
            f"{name}-proxy-image",
            registry=registry,
            repository=f"{prefix}/{upstream.repository}",
            tag=upstream.tag,
            pin=args.proxy.image_digest,
            public_ref=upstream.public_ref,
            architecture=args.fleet.architecture,
            region=region,
            opts=child.merge(pulumi.ResourceOptions(depends_on=[self.proxy_cache_rule])),
        )
        self.proxy_cache_repositories_arn = pulumi.Output.all(
            or_mock_answer(partition.partition, "aws"), region, account_id
        ).apply(
            lambda values: proxy_cache_repositories_arn(
                partition=values[0], region=values[1], account_id=values[2], prefix=prefix
            )
        )
        self.proxy_pull_policy = None
        waits: list[pulumi.Output[Any]] = []
        if self.execution_role is not None:
            self.proxy_pull_policy = aws.iam.RolePolicy(
                f"{name}-execution-proxy-image",
                role=self.execution_role.id,
                policy=self.proxy_cache_repositories_arn.apply(
                    lambda arn: json.dumps(proxy_image_pull_policy(arn))
                ),
                opts=child,
            )
            waits.append(self.proxy_pull_policy.id)
        # The pin, or the digest the tag named when the cache was filled (kept in the state);
        # offline, mocks compute no output: the pin, or the mock's digest.
        digest = or_mock_answer(
            self.proxy_image_cache.digest, args.proxy.image_digest or MOCK_DIGEST
        )
        return pulumi.Output.all(registry, digest, *waits).apply(
            lambda values: upstream.cached_ref(values[0], prefix, values[1])
        )

    def _django_secret(
        self,
        name: str,
        secret_key: SecretStr | None,
        kms_key_arn: pulumi.Input[str] | None,
        child: pulumi.ResourceOptions,
    ) -> aws.secretsmanager.Secret:
        """`secret_key` when given, else a generated key; either way a secret Output that
        only Secrets Manager and the (encrypted) state ever hold."""
        value = django_secret_key(name, secret_key, SECRET_KEY_LENGTH, child)
        secret = aws.secretsmanager.Secret(
            f"{name}-django-secret-key",
            description=f"{name}: Django SECRET_KEY",
            kms_key_id=kms_key_arn,
            opts=child,
        )
        self.django_secret_version = aws.secretsmanager.SecretVersion(
            f"{name}-django-secret-key",
            secret_id=secret.id,
            secret_string=value,
            opts=child,
        )
        return secret

    def _database_login(
        self,
        name: str,
        args: AppTaskArgs,
        region: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> _DatabaseLogin:
        """How the fleet logs in to the database, and what the release tasks change of that to
        log in as the master and set the app's role up (`release_overrides`,
        `release_setup_commands`); with a password, its secret (docs/security.md)."""
        database, role = args.database, args.database.app_role
        self.app_database_secret = self.app_database_secret_version = None
        self.release_overrides = None
        self.release_setup_commands = []
        if role is None:
            # The fleet connects as the master, re-reading its rotated password.
            return _DatabaseLogin(database.username, database.secret_arn, None)
        master_password = pulumi.Output.from_input(database.secret_arn).apply(
            database_password_from
        )
        step: list[pulumi.Input[str]] = [
            "python", "-m", APP_ROLE_MODULE, "--user", role.username, "--auth", role.auth,
        ]  # fmt: skip
        if role.auth == "iam":
            login = _DatabaseLogin(role.username, None, region)
            release_secrets: dict[str, Any] = {"DATABASE_PASSWORD": master_password}
            step += ["--region", region]
        else:
            secret, version = self._app_database_secret(name, role.username, args, child)
            self.app_database_secret, self.app_database_secret_version = secret, version
            self.secret_versions.append(version)
            secret_arn = or_mock_answer(
                secret.arn, mock_arn("secretsmanager", f"secret:{name}-app-database")
            )
            login = _DatabaseLogin(role.username, secret_arn, None)
            release_secrets = {
                "DATABASE_PASSWORD": master_password,
                # What the role step sets the app role's password to.
                "DATABASE_APP_PASSWORD": secret_arn.apply(database_password_from),
            }
            # A new value is a new command line, so the release sets it again.
            step += ["--password-version", or_mock_answer(version.version_id, "mock-version")]
        # The release's one-off tasks run the fleet's task definition as the master user.
        self.release_overrides = pulumi.Output.from_input(
            {
                "environment": {
                    "DATABASE_USER": database.username,
                    "DATABASE_IAM_REGION": None,
                    "DATABASE_SECRET_ARN": None,
                },
                "secrets": release_secrets,
            }
        )
        self.release_setup_commands = [step]
        return login

    def _app_database_secret(
        self, name: str, username: str, args: AppTaskArgs, child: pulumi.ResourceOptions
    ) -> tuple[aws.secretsmanager.Secret, aws.secretsmanager.SecretVersion]:
        """A generated password for the app's role, kept (as RDS keeps the master's) as JSON
        `{"username", "password"}`, so the runtime kit re-reads it like the master's."""
        password = random.RandomPassword(
            f"{name}-app-database",
            length=APP_DATABASE_PASSWORD_LENGTH,
            # Characters libpq, URLs and shells take as they are.
            special=False,
            opts=child,
        )
        secret = aws.secretsmanager.Secret(
            f"{name}-app-database",
            description=f"{name}: the app's database role {username} and its password",
            kms_key_id=args.kms_key_arn,
            opts=child,
        )
        version = aws.secretsmanager.SecretVersion(
            f"{name}-app-database",
            secret_id=secret.id,
            secret_string=password.result.apply(
                lambda value: json.dumps({"username": username, "password": value})
            ),
            opts=child,
        )
        return secret, version

    def _task_role_grants(
        self,
        name: str,
        args: AppTaskArgs,
        login: _DatabaseLogin,
        role: aws.iam.Role,
        partition: pulumi.Output[str],
        account_id: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> None:
        """The app may read its database secret and, given a media bucket, store uploads there;
        ECS Exec when enabled; and nothing else unless given more (`fleet.taskRole`, the
        `task_role_*` args)."""
        grants: list[aws.iam.RolePolicy | aws.iam.RolePolicyAttachment] = []
        if login.password_secret_arn is not None:
            # The app reads its password again after a rotation (the execution role read it
            # only at task start); see docs/app-task.md.
            grants.append(
                aws.iam.RolePolicy(
                    f"{name}-task-database-secret",
                    role=role.id,
                    policy=pulumi.Output.all(login.password_secret_arn, args.kms_key_arn).apply(
                        lambda arns: json.dumps(database_secret_policy(arns[0], arns[1]))
                    ),
                    opts=child,
                )
            )
        elif args.database.app_role is not None:
            # The app logs in as its role with IAM tokens: on this instance, as this user only.
            app_role = args.database.app_role
            grants.append(
                aws.iam.RolePolicy(
                    f"{name}-task-database-connect",
                    role=role.id,
                    policy=pulumi.Output.all(
                        partition,
                        login.iam_region,
                        account_id,
                        app_role.resource_id,
                    ).apply(
                        lambda values: json.dumps(
                            database_connect_policy(
                                rds_db_user_arn(
                                    partition=values[0],
                                    region=values[1],
                                    account_id=values[2],
                                    resource_id=values[3],
                                    username=app_role.username,
                                )
                            )
                        )
                    ),
                    opts=child,
                )
            )
        media = args.media
        if media is not None:
            # The app reads and writes its uploads (django-storages); docs/media.md.
            grants.append(
                aws.iam.RolePolicy(
                    f"{name}-task-media",
                    role=role.id,
                    policy=pulumi.Output.all(media.arn, args.kms_key_arn).apply(
                        lambda arns: json.dumps(
                            media_storage_policy(arns[0], media.config.location, arns[1])
                        )
                    ),
                    opts=child,
                )
            )
        if args.fleet.enable_execute_command:
            self.exec_policy = aws.iam.RolePolicy(
                f"{name}-task-exec",
                role=role.id,
                policy=json.dumps(exec_command_policy()),
                opts=child,
            )
        extra = args.fleet.task_role
        policy_arns = [*extra.managed_policy_arns, *args.task_role_policy_arns]
        grants += [
            aws.iam.RolePolicyAttachment(
                f"{name}-task-policy-{index}", role=role.name, policy_arn=policy_arn, opts=child
            )
            for index, policy_arn in enumerate(policy_arns)
        ]
        statements = [*(s.document() for s in extra.statements), *args.task_role_statements]
        if statements:
            grants.append(
                aws.iam.RolePolicy(
                    f"{name}-task-extra",
                    role=role.id,
                    policy=pulumi.Output.from_input(statements).apply(
                        lambda resolved: json.dumps(extra_statements_policy(resolved))
                    ),
                    opts=child,
                )
            )
        self.task_role_grants = grants


def fargate_task_definition(
    name: str,
    *,
    parent: pulumi.Resource,
    family: pulumi.Input[str],
    cpu: int,
    memory: int,
    architecture: str,
    execution_role_arn: pulumi.Input[str],
    task_role_arn: pulumi.Input[str],
    container_definitions: pulumi.Input[str],
    registered_after: Sequence[pulumi.Resource],
    execute_command: pulumi.Input[bool] = False,
) -> aws.ecs.TaskDefinition:
    """`{name}-task`: a Linux Fargate task definition of containers run from the app image (the
    web task's, a background process's), with their `/tmp` volume (and, with ECS Exec on,
    `execute_command`, the SSM agent's volumes the app process mounts), registered once
    `registered_after` exists (`AppTask.registered_after`). Replaced revisions stay registered
    (ACTIVE): a rollback to any release whose image ECR still keeps can run again."""
    return aws.ecs.TaskDefinition(
        f"{name}-task",
        family=family,
        requires_compatibilities=["FARGATE"],
        network_mode="awsvpc",
        cpu=str(cpu),
        memory=str(memory),
        runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
            operating_system_family="LINUX", cpu_architecture=architecture
        ),
        execution_role_arn=execution_role_arn,
        task_role_arn=task_role_arn,
        container_definitions=container_definitions,
        volumes=pulumi.Output.from_input(execute_command).apply(
            lambda on: [
                aws.ecs.TaskDefinitionVolumeArgs(name=volume["name"])
                for volume in task_volumes(execute_command=bool(on))
            ]
        ),
        skip_destroy=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(registered_after)),
    )


@dataclass(frozen=True)
class _DatabaseLogin:
    """As whom the fleet logs in: a password from `password_secret_arn` (JSON, `password`) or
    an IAM token signed in `iam_region`."""

    username: pulumi.Input[str]
    password_secret_arn: pulumi.Input[str] | None
    iam_region: pulumi.Input[str] | None


def _containers(args: AppTaskArgs, values: dict[str, Any]) -> list[dict[str, Any]]:
    return task_container_definitions(
        proxy=args.proxy,
        stop_timeout_seconds=args.stop_timeout_seconds,
        **_rendering_args(args, values),
    )


def _app_container(args: AppTaskArgs, values: dict[str, Any]) -> AppContainer:
    return app_container(**_rendering_args(args, values))


def _rendering_args(args: AppTaskArgs, values: dict[str, Any]) -> dict[str, Any]:
    """What both renderers of the app container take: the sections that shape it and the
    resolved values of the resources around the task."""
    return {
        "app": args.app,
        "fleet": args.fleet,
        "load_balancer": args.load_balancer,
        "media": args.media.config if args.media is not None else None,
        "inputs": _task_inputs(values),
        "app_user": args.app_user,
    }


def _task_inputs(values: dict[str, Any]) -> TaskInputs:
    """The resolved values of the resources around the task, as the renderers take them."""
    return TaskInputs(
        image=values["image"],
        proxy_image=values["proxy_image"],
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
            iam_region=values["database_iam_region"],
        ),
        redis_url=values["redis_url"],
        secrets=values["secrets"],
        media_bucket=values["media_bucket"],
    )
