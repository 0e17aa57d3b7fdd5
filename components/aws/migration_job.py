"""The release's migration steps on AWS: the safety check, then the migration job, each a one-off
ECS task of the new task definition, in that order, after whatever the release builds first
(`after`: the image, the static release). The ECS service takes this component as its `after`,
so a failed check or migration leaves the fleet on the previous release.

docs/migrations-in-the-release.md explains the order, the failures and how to read them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from pulumi_django.components.args import arg
from pulumi_django.components.aws.cluster import Cluster, cluster_ref
from pulumi_django.config.migrations import MigrationsConfig
from pulumi_django.migration_check import acknowledgement_reasons
from pulumi_django.providers.aws_session import AwsSession, session_input
from pulumi_django.providers.migration_check import MigrationCheck
from pulumi_django.providers.migration_job import MigrationTaskRun
from pulumi_django.providers.release_commands import release_commands
from pulumi_django.providers.release_task import ReleaseTaskInputs
from pulumi_django.release_steps import check_then_job
from pulumi_django.rendering.container_definitions import release_log_prefix


@dataclass(frozen=True, kw_only=True)
class MigrationJobArgs:
    """The release's task definition and where its one-off tasks run."""

    settings_module: str = arg(
        "The Django settings module the safety check loads (`app.settingsModule`)."
    )
    cluster: Cluster | aws.ecs.Cluster | pulumi.Input[str] = arg(
        "The cluster the one-off tasks run in (on Fargate): a `Cluster`, an `aws.ecs.Cluster`, "
        "or a cluster's ARN."
    )
    task_definition_arn: pulumi.Input[str] = arg(
        "The release's task definition: the check and the job run its app container."
    )
    container_name: pulumi.Input[str] = arg(
        "The app container of the task definition whose command the tasks override."
    )
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = arg(
        "The subnets the tasks run in: the app's private subnets, which reach the database."
    )
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]] = arg(
        "The tasks' security groups: the app's, which the database admits."
    )
    log_group_name: pulumi.Input[str] = arg(
        "The task definition's log group, read back for the report and the failure's log tail."
    )
    release_id: pulumi.Input[str] = arg(
        "The release (the image reference): a new one runs the check and the job again."
    )
    service_name: str = arg(
        "A stable key for the app's releases, e.g. the component name (`AwsSite` passes the site's "
        "name; the ECS service itself is auto-named). The release tasks are tagged with it "
        "(`startedBy`), so that two release tasks of one app never run at once."
    )
    region: pulumi.Input[str] | None = arg(
        "The AWS region of the cluster, where the tasks are run. Default: the region of the "
        "component's AWS provider.",
        default=None,
    )
    config: MigrationsConfig = arg(
        "The migrations section: whether the check runs, the acknowledged migrations, the "
        "command, the further release commands and the timeout. Default: the section's "
        "defaults (check on, `python manage.py migrate --noinput`, 900 s).",
        default_factory=MigrationsConfig,
    )
    log_stream_prefix: pulumi.Input[str] | None = arg(
        "The app container's awslogs stream prefix in the task definition, where the tasks' "
        "log is read back. Default: `release_log_prefix(release_id)` (`r-<12 hex of the "
        "digest>`), as `AppTask` sets it for every container of the release.",
        default=None,
    )
    after: Sequence[pulumi.Resource] = arg(
        "What the check (or, with the check off, the job) waits for: the release's earlier "
        "steps (the image, the static release). Default: nothing.",
        default=(),
    )
    container_overrides: pulumi.Input[Mapping[str, Any]] | None = arg(
        "What the check and the job change in the app container's `environment` and `secrets` "
        "(name -> value or `valueFrom`; None removes it): `AppTask.release_overrides`, so that "
        "they log in to the database as the master user, not as the app's role. Default: None, "
        "the container's own.",
        default=None,
    )
    setup_commands: Sequence[Sequence[pulumi.Input[str]]] = arg(
        "Commands the job runs before `migrations.command`, in the same task: "
        "`AppTask.release_setup_commands` (the app's database role, created or updated as the "
        "master). A change to one runs the job again. Default: none.",
        default=(),
    )
    secret_versions: Sequence[pulumi.Resource] = arg(
        "The `SecretVersion`s of the secrets the tasks read (`AppTask.secret_versions`, the "
        "cache's): neither the check nor the job starts before their values exist. Default: "
        "none.",
        default=(),
    )
    aws_session: AwsSession | None = arg(
        "The AWS identity the one-off tasks' boto3 calls act as (profile, roles to assume). "
        "Default: the stack's `aws:` settings, as the site's AWS provider reads them.",
        default=None,
    )


class MigrationJob(pulumi.ComponentResource):
    """Checks, then applies, the release's migrations; outputs what the job did.

    `check` (None with `migrations.check` off) and `job` are the two one-off task runs."""

    check: MigrationCheck | None
    job: MigrationTaskRun
    task_arn: pulumi.Output[str]
    exit_code: pulumi.Output[int]
    applied_migrations: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: MigrationJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:migrations:MigrationJob", name, None, opts)
        config = args.config
        task = ReleaseTaskInputs(
            release_id=args.release_id,
            cluster_arn=cluster_ref(args.cluster).arn,
            task_definition_arn=args.task_definition_arn,
            container_name=args.container_name,
            subnet_ids=args.subnet_ids,
            security_group_ids=args.security_group_ids,
            log_group_name=args.log_group_name,
            service_name=args.service_name,
            region=(
                aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
                if args.region is None
                else args.region
            ),
            log_stream_prefix=(
                pulumi.Output.from_input(args.release_id).apply(release_log_prefix)
                if args.log_stream_prefix is None
                else args.log_stream_prefix
            ),
            aws_session=session_input(args.aws_session),
            container_overrides=args.container_overrides,
        )

        def check(waits_for: list[pulumi.Resource]) -> MigrationCheck:
            return MigrationCheck(
                f"{name}-check",
                task=task,
                settings_module=args.settings_module,
                acknowledged=acknowledgement_reasons(config.acknowledged),
                timeout_seconds=config.timeout_seconds,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*waits_for, *args.secret_versions]
                ),
            )

        def job(waits_for: list[pulumi.Resource]) -> MigrationTaskRun:
            return MigrationTaskRun(
                f"{name}-job",
                task=task,
                commands=[
                    *(list(command) for command in args.setup_commands),
                    *release_commands(config.command, config.release_commands),
                ],
                timeout_seconds=config.timeout_seconds,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[*waits_for, *args.secret_versions]
                ),
            )

        self.check, self.job = check_then_job(
            check_enabled=config.check, after=args.after, check=check, job=job
        )
        self.task_arn = self.job.task_arn
        self.exit_code = self.job.exit_code
        self.applied_migrations = self.job.applied_migrations
        self.register_outputs(
            {
                "task_arn": self.task_arn,
                "exit_code": self.exit_code,
                "applied_migrations": self.applied_migrations,
            }
        )
