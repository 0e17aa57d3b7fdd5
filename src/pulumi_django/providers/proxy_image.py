"""`ProxyImageCache`: fills the stack's ECR pull-through cache with the proxy image during
`pulumi up`, before any task needs it, and says which digest the tasks run.

The proxy sidecar (nginx or Caddy) is a Docker Official Image that ECR Public mirrors. Tasks pull
it from the stack's own registry, through a pull-through cache rule for `public.ecr.aws`, by
digest. Two documented limits make the cache's first pull the deploying machine's job, not a
task's:

- a first pull through a pull-through cache rule needs a route to the internet from the puller
  (AWS, "Amazon ECR interface VPC endpoints": "you need to create a public subnet in the same
  VPC, with a NAT gateway ... Subsequent image pulls don't require this"), which a VPC with
  `network.egress: vpc-endpoints` has not: the image layers come from the upstream registry
  while ECR imports them;
- the cache imports an image on a pull by tag, not on a first pull by digest
  (aws/containers-roadmap#2837), and task definitions reference the proxy by digest.

So this resource pulls the image as `docker pull --platform` would, with the stack's AWS
identity (`providers.aws_session`) over the registry API (`providers.registry`): the manifest by
tag, which imports it; then, by digest, the index, the fleet platform's manifest, the config and
every layer, each verified against its digest. Afterwards every pull by digest, from any
subnet, is served from the cache.

Which digest: the pin (`django:proxy.imageDigest`) when set; otherwise the digest of the
manifest the tag names, read through the cache on create: the sha256 of the manifest's bytes
as served (for an image index that is its digest, the one `crane digest` prints). ECR sends no
`Docker-Content-Digest` header on a GET (aws/containers-roadmap#1931); a registry that sends one
must agree with the bytes. The digest is an output kept in the stack's state: the diff compares
only the inputs (`PULL_INPUTS`), so a plain re-run, a preview or a refresh (`read` returns the
stored state) never looks at the tag again and never shows a change; a changed input replaces
the resource, which resolves the tag anew (as does `pulumi up --replace <urn>`). A pinned
digest the tag no longer names is refused in one line (the cache then holds only what the tag
names now), naming the key: `django:proxy.imageDigest`.

Deleting the resource deletes nothing: a task definition revision kept for a rollback may still
reference the cached image (the repository, `<prefix>/docker/library/<server>`, outlives the
stack; docs/security.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pulumi
import pulumi.dynamic

from ..errors import PulumiDjangoError
from .aws_session import AwsSession, SessionFactory, cached_session, session_input
from .registry import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    ImageReference,
    RegistryClient,
    RegistryError,
    session_authorization,
)

# A change to any of these replaces the resource: the tag is resolved and pulled again (the
# session's settings only say who pulls). The resolved `digest` is an output, never compared.
PULL_INPUTS = ("registry", "repository", "tag", "pin", "architecture", "region")

# What an offline plan (`pulumi-django plan`, a unit test's mocks) shows for the digest the tag
# resolves to on a real `pulumi up`: digest-shaped, and no real image's. Mocks only.
MOCK_DIGEST = "sha256:" + "c" * 64


class ProxyImageError(PulumiDjangoError, pulumi.RunError):
    """The proxy image cannot be put in the stack's pull-through cache; one line says why and
    what to do."""


class CacheClient(RegistryClient):
    """A registry client that also reads which digest a tag names."""

    def tag_digest(self, tag: str) -> str:
        """The digest of the manifest `tag` names (an index for a multi-platform image), read
        as Docker reads it: the sha256 of the bytes served, checked against the
        `Docker-Content-Digest` header when the registry sends one."""
        url = f"{self.image.base_url}/manifests/{tag}"
        with self._request(url, INDEX_TYPES + MANIFEST_TYPES) as answer:
            body = answer.read()
            header = (answer.headers.get("Docker-Content-Digest") or "").strip()
        digest = f"sha256:{hashlib.sha256(body).hexdigest()}"
        if header and header != digest:
            raise ProxyImageError(
                f"proxy image {self.image.repository}:{tag}: the registry says its manifest is "
                f"{header}, its bytes are {digest}; pin one with django:proxy.imageDigest once "
                "checked (`crane digest`)"
            )
        return digest


ClientFor = Callable[[str], CacheClient]
"""A reference (tag or digest) of the cached repository -> a client reading it."""


def fill_cache(
    client_for: ClientFor,
    *,
    tag: str,
    pin: str | None,
    public_ref: str,
    architecture: str | None,
) -> tuple[str, int]:
    """Pulls the image after its tag, as Docker does, through the cache: the tag (which
    imports it and names a digest), then `pin` or else that digest, for the fleet's
    platform. Returns (the digest pulled, how many blobs were read). Raises ProxyImageError."""
    tag_client = client_for(tag)
    try:
        resolved = tag_client.tag_digest(tag)
    except RegistryError as error:
        raise ProxyImageError(
            f"proxy image {public_ref}: the pull-through cache did not import it ({error}); the "
            "identity running pulumi up needs ecr:BatchImportUpstreamImage and "
            f"ecr:CreateRepository on {tag_client.image.repository}, and the rule must exist"
        ) from None
    digest = pin or resolved
    client = client_for(digest)
    try:
        layout = client.layout(architecture)
    except RegistryError as error:
        if pin and pin != resolved:
            raise ProxyImageError(
                f"proxy image {public_ref} no longer names the pinned {pin} (it names "
                f"{resolved}): set django:proxy.imageDigest to the digest the tag names now "
                f"(check it first: `crane digest {public_ref}`), or unset it to run that one"
            ) from None
        raise ProxyImageError(f"proxy image {public_ref} ({digest}): {error}") from None
    blobs = 1  # the config, read by `layout`
    for layer in layout.layers:
        try:
            with client.blob(str(layer["digest"])):
                blobs += 1
        except RegistryError as error:
            raise ProxyImageError(f"proxy image {public_ref}: layer not cached: {error}") from None
    return digest, blobs


ClientFactory = Callable[[ImageReference, str], CacheClient]
"""(image, Authorization header) -> a registry client; tests read a registry of their own."""


class ProxyImageCacheProvider(pulumi.dynamic.ResourceProvider):
    """Create resolves and fills; a changed input replaces; read and delete touch nothing
    (module docstring)."""

    def __init__(
        self,
        sessions: SessionFactory = cached_session,
        clients: ClientFactory = CacheClient,
    ) -> None:
        super().__init__()
        self.sessions = sessions
        self.clients = clients

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        outputs = self._fill(props)
        return pulumi.dynamic.CreateResult(outputs["image"], outputs)

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        """Only the inputs: the stored digest stays until one of them changes (an unknown
        input during a preview counts as changed)."""
        replaces = [key for key in PULL_INPUTS if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(
            changes=bool(replaces),
            replaces=replaces,
            stables=[],
            delete_before_replace=False,
        )

    def read(self, id_: str, props: dict[str, Any]) -> pulumi.dynamic.ReadResult:
        """The stored state as it is: a refresh never moves the digest to what the tag names
        now (that takes a changed input, or `pulumi up --replace`)."""
        return pulumi.dynamic.ReadResult(id_, props)

    def update(
        self, _id: str, _olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        """Not reached (every input change replaces); resolves and fills like a create."""
        return pulumi.dynamic.UpdateResult(self._fill(news))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: kept task definition revisions may still reference the image."""

    def _fill(self, props: dict[str, Any]) -> dict[str, Any]:
        registry, repository = props["registry"], props["repository"]
        by_tag = ImageReference(registry, repository, props["tag"])
        session = self.sessions(props.get("aws_session"), props.get("region"))
        try:
            authorization = session_authorization(session, by_tag, props.get("region"))
        except RegistryError as error:
            raise ProxyImageError(f"proxy image: {error}") from None
        digest, blobs = fill_cache(
            lambda reference: self.clients(
                ImageReference(registry, repository, reference), authorization
            ),
            tag=props["tag"],
            pin=props.get("pin"),
            public_ref=props["public_ref"],
            architecture=props.get("architecture"),
        )
        image = ImageReference(registry, repository, digest)
        how = "pinned" if props.get("pin") else f"named by tag {props['tag']}"
        pulumi.log.info(f"proxy image: {image} ({how}) cached ({blobs} blobs)")
        return {
            **{name: value for name, value in props.items() if not name.startswith("__")},
            "digest": digest,
            "image": str(image),
        }


class ProxyImageCache(pulumi.dynamic.Resource, module="fleet", name="ProxyImageCache"):
    """The proxy image in the stack's pull-through cache, pulled once by the deploying machine
    (module docstring). `digest` is the pin, or what the tag named when the resource was
    created; `image` is `<registry>/<repository>@<digest>`, for the task definition; depending
    on either makes a task definition wait until the image is cached."""

    image: pulumi.Output[str]
    digest: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        registry: pulumi.Input[str],
        repository: pulumi.Input[str],
        tag: str,
        public_ref: str,
        pin: str | None = None,
        architecture: str | None = None,
        region: pulumi.Input[str] | None = None,
        aws_session: AwsSession | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`registry` is `<account>.dkr.ecr.<region>.amazonaws.com`, `repository` the cached
        one (`<prefix>/docker/library/nginx`), `tag` the upstream tag, `pin` a digest of it to
        run instead of the one the tag names (`django:proxy.imageDigest`), `public_ref` the
        upstream image by tag (for messages), `architecture` the fleet's (`X86_64`, `ARM64`).
        AWS calls act as `aws_session` says (default: the stack's `aws:` settings)."""
        super().__init__(
            ProxyImageCacheProvider(),
            resource_name,
            {
                "registry": registry,
                "repository": repository,
                "tag": tag,
                "pin": pin,
                "public_ref": public_ref,
                "architecture": architecture,
                "region": region,
                "aws_session": session_input(aws_session),
                "digest": None,
                "image": None,
            },
            opts,
        )
