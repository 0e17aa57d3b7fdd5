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

import pulumi
import pulumi_docker as docker

from pulumi_django.components.local.containers import env_list, on_network
from pulumi_django.config.migrations import MigrationsConfig
from pulumi_django.migration_check import acknowledgement_reasons
from pulumi_django.providers.local_migration import LocalCheckVerdict, LocalJobVerdict
from pulumi_django.providers.migration_check import check_command
from pulumi_django.providers.release_commands import release_command, release_commands
from pulumi_django.rendering.container_definitions import DEFAULT_APP_USER


class LocalMigrationJob(pulumi.ComponentResource):
    """Checks, then applies, the release's migrations in containers of the new image."""

    gate: pulumi.Output[str]
    exit_code: pulumi.Output[int]
    applied_migrations: pulumi.Output[list[str]]

    def __init__(
        self,
        name: str,
        *,
        config: MigrationsConfig,
        settings_module: str,
        image: pulumi.Input[str],
        network_name: pulumi.Input[str],
        environment: Mapping[str, pulumi.Input[str]],
        after: Sequence[pulumi.Resource] = (),
        mounts: Sequence[docker.ContainerMountArgs] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`mounts`: the replicas' shared volumes (media), which a data migration may write."""
        super().__init__("pulumi-django:local:MigrationJob", name, None, opts)
        envs = env_list(environment)

        def one_off(
            suffix: str, command: list[str], waits_for: list[pulumi.Resource]
        ) -> docker.Container:
            return docker.Container(
                f"{name}-{suffix}",
                image=image,
                command=command,
                envs=envs,
                # As the replicas and the AWS task run: the app user.
                user=DEFAULT_APP_USER,
                networks_advanced=on_network(network_name),
                mounts=list(mounts) or None,
                attach=True,
                logs=True,
                must_run=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for),
            )

        job_waits_for: list[pulumi.Resource] = list(after)
        if config.check:
            check = one_off("check", check_command(settings_module), list(after))
            check_verdict = LocalCheckVerdict(
                f"{name}-check-verdict",
                container=check,
                acknowledged=acknowledgement_reasons(config.acknowledged),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[check]),
            )
            job_waits_for = [check_verdict]
        commands = release_commands(config.command, config.release_commands)
        job = one_off("job", release_command(commands, config.timeout_seconds), job_waits_for)
        job_verdict = LocalJobVerdict(
            f"{name}-job-verdict",
            container=job,
            image=image,
            commands=commands,
            timeout_seconds=config.timeout_seconds,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[job]),
        )
        self.gate = job_verdict.image
        self.exit_code = job_verdict.exit_code
        self.applied_migrations = job_verdict.applied_migrations
        self.register_outputs(
            {
                "gate": self.gate,
                "exit_code": self.exit_code,
                "applied_migrations": self.applied_migrations,
            }
        )
