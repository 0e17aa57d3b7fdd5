"""The local Docker target."""

from pydantic import Field

from .base import Section


class LocalConfig(Section):
    """The same architecture on a laptop's Docker engine."""

    replicas: int = Field(2, ge=1, le=20, description="App containers behind the proxy.")
    http_port: int = Field(
        8080, ge=1024, le=65535, description="Port the proxy publishes on 127.0.0.1."
    )
    postgres_image: str = Field("postgres:17-alpine", description="PostgreSQL image.")
    redis_image: str = Field("redis:7-alpine", description="Redis image.")
    proxy_image: str | None = Field(
        None, description="Proxy image; default the official nginx or caddy Alpine image."
    )
    postgres_port: int | None = Field(
        None,
        ge=1024,
        le=65535,
        description="Publish PostgreSQL on 127.0.0.1 at this port (psql); none: unpublished.",
    )
    redis_port: int | None = Field(
        None,
        ge=1024,
        le=65535,
        description="Publish Redis on 127.0.0.1 at this port; none: unpublished.",
    )
