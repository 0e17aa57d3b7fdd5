"""What every target deploys, whatever runs it: a site URL, its static URL and its release."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_random as random

from pulumi_django.config import StackConfig

# Where every target's app reaches its database and cache.
POSTGRES_PORT = 5432
REDIS_PORT = 6379


def django_secret_key(
    name: str, config: StackConfig, length: int, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """`django:secretKey` when set, else one generated once and kept, encrypted, in the state."""
    if config.secret_key is not None:
        return pulumi.Output.secret(config.secret_key.get_secret_value())
    generated = random.RandomPassword(
        f"{name}-django-secret-key", length=length, special=False, opts=opts
    )
    return pulumi.Output.secret(generated.result)


class Site(pulumi.ComponentResource):
    """Base of AwsSite and LocalSite: the same config in, the same outputs out.

    A variant builds its children in `__init__` and ends with `finish(...)`, which records
    and registers the outputs every target has."""

    url: pulumi.Output[str]
    static_url: pulumi.Output[str]
    release_id: pulumi.Output[str]

    def __init__(
        self, type_token: str, name: str, config: StackConfig, opts: pulumi.ResourceOptions | None
    ) -> None:
        super().__init__(type_token, name, None, opts)
        self.config = config
        self.extra_outputs: dict[str, Any] = {}

    def child(self, **extra: Any) -> pulumi.ResourceOptions:
        """Options for a direct child: parented to the site."""
        return pulumi.ResourceOptions(parent=self, **extra)

    def finish(
        self,
        *,
        url: pulumi.Input[str],
        static_url: pulumi.Input[str],
        release_id: pulumi.Input[str],
        **extra: Any,
    ) -> None:
        self.url = pulumi.Output.from_input(url)
        self.static_url = pulumi.Output.from_input(static_url)
        self.release_id = pulumi.Output.from_input(release_id)
        self.extra_outputs = extra
        self.register_outputs(self.exports)

    @property
    def exports(self) -> dict[str, Any]:
        """The stack outputs, camelCase as `pulumi stack output` shows them."""
        return {
            "url": self.url,
            "staticUrl": self.static_url,
            "releaseId": self.release_id,
            **self.extra_outputs,
        }
