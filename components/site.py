"""What every target deploys, whatever runs it: a site URL, its static URL and its release."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

import pulumi
import pulumi_random as random
from pydantic import SecretStr
from pydantic.alias_generators import to_camel

from pulumi_django.config.loader import ConfigError

if TYPE_CHECKING:
    from pulumi_django.components.aws.site import AwsSite
    from pulumi_django.components.local.site import LocalSite

# Where every target's app reaches its database and cache.
POSTGRES_PORT = 5432
REDIS_PORT = 6379


def django_secret_key(
    name: str, secret_key: SecretStr | None, length: int, opts: pulumi.ResourceOptions
) -> pulumi.Output[str]:
    """`secret_key` (`django:secretKey`) when set, else one generated once and kept, encrypted,
    in the state."""
    if secret_key is not None:
        return pulumi.Output.secret(secret_key.get_secret_value())
    generated = random.RandomPassword(
        f"{name}-django-secret-key", length=length, special=False, opts=opts
    )
    return pulumi.Output.secret(generated.result)


class Site(pulumi.ComponentResource):
    """Base of AwsSite and LocalSite: the same config in, the same outputs out.

    A variant builds its children in `__init__` with `child()` options, sets the output
    attributes its `STACK_OUTPUTS` names (every target has `url`, `static_url`, `release_id`
    and `readiness_url`), and ends with `register_outputs(self.exports)`."""

    # Output attributes, exported as camelCase stack outputs; one left None is not exported.
    STACK_OUTPUTS: ClassVar[tuple[str, ...]] = ("url", "static_url", "release_id", "readiness_url")

    url: pulumi.Output[str]
    static_url: pulumi.Output[str]
    release_id: pulumi.Output[str]
    # The site's readiness path (`app.readinessPath`: database, cache and the project's checks),
    # for people and alarms; no health check of the stack asks it.
    readiness_url: pulumi.Output[str]

    def readiness_url_of(self, path: str) -> pulumi.Output[str]:
        return self.url.apply(lambda url: url.rstrip("/") + path)

    def __init__(self, type_token: str, name: str, opts: pulumi.ResourceOptions | None) -> None:
        super().__init__(type_token, name, None, opts)
        self._site_providers: list[pulumi.ProviderResource] = []

    def use_provider(self, provider: pulumi.ProviderResource) -> None:
        """Every child created after this (and its children) uses `provider`."""
        self._site_providers.append(provider)

    def child(self) -> pulumi.ResourceOptions:
        """Options for a direct child: parented to the site, with the site's providers."""
        return pulumi.ResourceOptions(parent=self, providers=list(self._site_providers))

    @property
    def exports(self) -> dict[str, Any]:
        """The stack outputs, camelCase as `pulumi stack output` shows them."""
        return {
            to_camel(attribute): getattr(self, attribute)
            for attribute in self.STACK_OUTPUTS
            if getattr(self, attribute, None) is not None
        }

    def export_outputs(self) -> None:
        """Export the site's outputs as the stack's (a ready-made stack's last line)."""
        for name, value in self.exports.items():
            pulumi.export(name, value)


@overload
def site_class(target: Literal["aws"]) -> type[AwsSite]: ...
@overload
def site_class(target: Literal["local"]) -> type[LocalSite]: ...
@overload
def site_class(target: Literal["aws", "local"]) -> type[AwsSite] | type[LocalSite]: ...
def site_class(target: str) -> type[AwsSite] | type[LocalSite]:
    """The ready-made site of a stack's target (`django:target`): AwsSite or LocalSite.

    Only that target's components are imported, so a local stack never loads the AWS ones nor
    the AWS SDK (most of a plan's import time)."""
    if target == "aws":
        from pulumi_django.components.aws.site import AwsSite

        return AwsSite
    if target == "local":
        from pulumi_django.components.local.site import LocalSite

        return LocalSite
    raise ConfigError([f"django:target: no site for {target!r}; 'aws' or 'local'"])
