"""The release's migration steps on the local Docker target: the safety check and the migration
job as one-off containers of the app image (on the app network, with the app's environment),
each followed by a verdict that fails `pulumi up` on a refusal or a non-zero exit, because
pulumi-docker's `attach` waits for a container but accepts any exit status.

The app containers come after: take `gate` (the image reference, resolved once the migrations
succeeded) as their image, or put this component in their `depends_on`.
docs/migrations-in-the-release.md explains the order and the failures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from pulumi_django.components.args import arg
from pulumi_django.components.local.containers import app_process
from pulumi_django.config.migrations import MigrationsConfig
from pulumi_django.migration_check import acknowledgement_reasons
from pulumi_django.providers.local_migration import LocalCheckVerdict, LocalJobVerdict
from pulumi_django.providers.migration_check import check_command
from pulumi_django.providers.release_commands import release_command, release_commands
from pulumi_django.release_steps import (
    check_then_job,
)


@dataclass(frozen=True, kw_only=True)
class LocalMigrationJobArgs:
    """The release's image and what its one-off containers are attached to."""

    settings_module: str = arg(
        "The Django settings module the safety check loads (`app.settingsModule`)."
    )
    image: pulumi.Input[str] = arg("The release's app image the check and the job run.")
    network_name: pulumi.Input[str] = arg(
        "The private Docker network the containers join, where the database is."
    )
    environment: Mapping[str, pulumi.Input[str]] = arg(
        "The app's environment (database, cache, media, Django settings), as the replicas get "
        "it; a secret value keeps its entry secret."
    )
    config: MigrationsConfig = arg(
        "The migrations section: whether the check runs, the acknowledged migrations, the "
        "command, the further release commands and the timeout. Default: the section's "
        "defaults (check on, `python manage.py migrate --noinput`, 900 s).",
        default_factory=MigrationsConfig,
    )
    mounts: Sequence[docker.ContainerMountArgs] = arg(
        "The replicas' shared volumes (media), which a data migration may write. Default: none.",
        default=(),
    )
    after: Sequence[pulumi.Resource] = arg(
        "What the check (or, with the check off, the job) waits for: the release's earlier "
        "steps (the static release, the data containers). Default: nothing.",
        default=(),
    )


class LocalMigrationJob(pulumi.ComponentResource):
    """Checks, then applies, the release's migrations in containers of the new image.

    `check_container` and `check_verdict` are None with `migrations.check` off; `job_container`
    and `job_verdict` always exist."""

    check_container: docker.Container | None
    check_verdict: LocalCheckVerdict | None
    job_container: docker.Container
    job_verdict: LocalJobVerdict
    gate: pulumi.Output[str]
    exit_code: pulumi.Output[int]
    applied_migrations: pulumi.Output[list[str]]

    def __init__(
        self, name: str, args: LocalMigrationJobArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("pulumi-django:local:MigrationJob", name, None, opts)
        config = args.config
        self.check_container = None

        def one_off(
            suffix: str, command: list[str], waits_for: list[pulumi.Resource]
        ) -> docker.Container:
            return docker.Container(
                f"{name}-{suffix}",
                # As the replicas and the AWS task run: the app user.
                **app_process(
                    args.image,
                    command,
                    environment=args.environment,
                    network_name=args.network_name,
                    mounts=args.mounts,
                ),
                attach=True,
                logs=True,
                must_run=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for),
            )

        def check(waits_for: list[pulumi.Resource]) -> LocalCheckVerdict:
            self.check_container = one_off("check", check_command(args.settings_module), waits_for)
            return LocalCheckVerdict(
                f"{name}-check-verdict",
                container=self.check_container,
                acknowledged=acknowledgement_reasons(config.acknowledged),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.check_container]),
            )

        commands = release_commands(config.command, config.release_commands)

        def job(waits_for: list[pulumi.Resource]) -> LocalJobVerdict:
            self.job_container = one_off(
                "job", release_command(commands, config.timeout_seconds), waits_for
            )
            return LocalJobVerdict(
                f"{name}-job-verdict",
                container=self.job_container,
                image=args.image,
                commands=commands,
                timeout_seconds=config.timeout_seconds,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.job_container]),
            )

        self.check_verdict, self.job_verdict = check_then_job(
            check_enabled=config.check, after=args.after, check=check, job=job
        )
        self.gate = self.job_verdict.image
        self.exit_code = self.job_verdict.exit_code
        self.applied_migrations = self.job_verdict.applied_migrations
        self.register_outputs(
            {
                "gate": self.gate,
                "exit_code": self.exit_code,
                "applied_migrations": self.applied_migrations,
            }
        )
