"""The reverse proxy in front of the app server."""

from typing import Literal

from pydantic import Field

from .base import Section


class ProxyConfig(Section):
    """nginx or Caddy, in the same task (AWS) or in front of the replicas (local)."""

    server: Literal["nginx", "caddy"] = Field("nginx", description="Proxy server.")
    port: int = Field(
        8080,
        ge=1024,
        le=65535,
        description="Port the proxy listens on; the load balancer's target port.",
    )
    max_body_mb: int = Field(10, ge=1, le=1024, description="Largest request body accepted, MiB.")
    read_timeout_seconds: int = Field(
        60, ge=5, le=3600, description="Longest wait for the app's response."
    )
    gzip: bool = Field(True, description="Compress text responses.")
    image_digest: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Pins the digest of the proxy image the AWS target runs, pulled through "
        "the stack's ECR (`public.ecr.aws/docker/library/<server>:<tag>`, the tag pulumi-django "
        "names). Default: unset, the digest the tag names when the stack first pulls it, kept "
        "in the state until the tag, server, architecture or region changes. The local target "
        "pulls by tag.",
    )
