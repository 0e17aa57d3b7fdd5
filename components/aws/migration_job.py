"""The release's migration steps on AWS: the safety check, then the migration job, each a one-off
ECS task of the new task definition, in that order, after whatever the release builds first
(`after`: the image, the static release). The ECS service takes this component as its `after`,
so a failed check or migration leaves the fleet on the previous release.

docs/migrations-in-the-release.md explains the order, the failures and how to read them.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from pulumi_django.config.migrations import MigrationsConfig
from pulumi_django.migration_check import acknowledgement_reasons
from pulumi_django.providers import migration_job
from pulumi_django.providers.migration_check import MigrationCheck
from pulumi_django.providers.release_commands import release_commands
from pulumi_django.providers.release_task import ReleaseTaskInputs


class MigrationJob(pulumi.ComponentResource):
    """Checks, then applies, the release's migrations; outputs what the job did."""

    task_arn: pulumi.Output[str]
    exit_code: pulumi.Output[int]
    applied_migrations: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        config: MigrationsConfig,
        settings_module: str,
        cluster_arn: pulumi.Input[str],
        task_definition_arn: pulumi.Input[str],
        container_name: pulumi.Input[str],
        subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]],
        log_group_name: pulumi.Input[str],
        release_id: pulumi.Input[str],
        service_name: str,
        region: pulumi.Input[str],
        log_stream_prefix: str = "app",
        after: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("pulumi-django:migrations:MigrationJob", name, None, opts)
        task = ReleaseTaskInputs(
            release_id=release_id,
            cluster_arn=cluster_arn,
            task_definition_arn=task_definition_arn,
            container_name=container_name,
            subnet_ids=subnet_ids,
            security_group_ids=security_group_ids,
            log_group_name=log_group_name,
            service_name=service_name,
            region=region,
            log_stream_prefix=log_stream_prefix,
        )
        job_waits_for: list[pulumi.Resource] = list(after)
        if config.check:
            check = MigrationCheck(
                f"{name}-check",
                task=task,
                settings_module=settings_module,
                acknowledged=acknowledgement_reasons(config.acknowledged),
                timeout_seconds=config.timeout_seconds,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
            )
            job_waits_for = [check]
        job = migration_job.MigrationJob(
            f"{name}-job",
            task=task,
            commands=release_commands(config.command, config.release_commands),
            timeout_seconds=config.timeout_seconds,
            opts=pulumi.ResourceOptions(parent=self, depends_on=job_waits_for),
        )
        self.task_arn = job.task_arn
        self.exit_code = job.exit_code
        self.applied_migrations = job.applied_migrations
        self.register_outputs(
            {
                "task_arn": self.task_arn,
                "exit_code": self.exit_code,
                "applied_migrations": self.applied_migrations,
            }
        )
