"""The whole stack's config: one model per section, read from the `django:` namespace."""

import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .app import ECR_IMAGE_FORM, AppConfig, EcrImage
from .base import Section, Text
from .cache import CacheConfig
from .database import DatabaseConfig
from .domain import DomainConfig
from .fleet import FleetConfig
from .load_balancer import LoadBalancerConfig
from .local import LocalConfig
from .media import MediaConfig
from .migrations import MigrationsConfig
from .names import max_name_length, name_problems, postgres_major
from .network import NetworkConfig
from .proxy import ProxyConfig
from .rehearsal import RehearsalConfig
from .security import SecurityConfig
from .static import StaticConfig
from .workers import WorkersConfig

NAMESPACE = "django"
# ECS waits at most 120 s between SIGTERM and SIGKILL; the app needs its graceful time
# plus a margin for the proxy to finish last.
ECS_MAX_STOP_TIMEOUT = 120
STOP_MARGIN_SECONDS = 10


def _flag(value: Any) -> Any:
    """A top-level flag arrives as Pulumi passes every scalar: the text `true` or `false`."""
    return {"true": True, "false": False}.get(value, value) if isinstance(value, str) else value


Flag = Annotated[bool, BeforeValidator(_flag)]


# The validation context's key for the PostgreSQL major `name`'s derived names hold: `name` is
# validated before `database`, so the raw document's engineVersion comes this way.
MAJOR_CONTEXT = "postgresMajor"
ENGINE_VERSION = re.compile(r"\d+(\.\d+)?")  # DatabaseConfig.engine_version's pattern


def validation_context(document: Mapping[str, Any]) -> dict[str, Any]:
    """The context `StackConfig.model_validate(document, context=...)` checks names with:
    the major of the document's `database.engineVersion` (its default when unset; none when
    it is not a version, which `database` then reports)."""
    database = document.get("database")
    if database is None:
        database = {}
    version = database.get("engineVersion") if isinstance(database, Mapping) else None
    if isinstance(database, Mapping) and version is None:
        version = DatabaseConfig.model_fields["engine_version"].default
    if isinstance(version, str | int) and ENGINE_VERSION.fullmatch(str(version)):
        return {MAJOR_CONTEXT: postgres_major(str(version))}
    return {}


class StackConfig(Section):
    """Everything a stack file sets under `django:`; each key is one section."""

    target: Literal["aws", "local"] = Field(
        description="Where to deploy: `aws` (ECS Fargate, RDS, ElastiCache, S3 + CloudFront) "
        "or `local` (Docker on this machine)."
    )
    name: str = Field(
        "django",
        pattern=r"^[a-z][a-z0-9-]{1,18}[a-z0-9]$",
        description="Base name of every resource: lowercase letters, digits, single hyphens; "
        f"at most {max_name_length()} characters on `aws` (what every name derived from it "
        "needs: `config/names.py`), 20 on `local`.",
    )
    app: AppConfig = Field(default_factory=AppConfig, description="The Django app.")
    proxy: ProxyConfig = Field(default_factory=ProxyConfig, description="The reverse proxy.")
    fleet: FleetConfig = Field(default_factory=FleetConfig, description="ECS tasks (aws).")
    workers: WorkersConfig = Field(
        default_factory=WorkersConfig,
        description="Background workers and a scheduler, from the app's image.",
    )
    load_balancer: LoadBalancerConfig = Field(
        default_factory=LoadBalancerConfig, description="The ALB (aws)."
    )
    database: DatabaseConfig = Field(default_factory=DatabaseConfig, description="PostgreSQL.")
    cache: CacheConfig = Field(default_factory=CacheConfig, description="Redis or Valkey.")
    static: StaticConfig = Field(default_factory=StaticConfig, description="Static files.")
    media: MediaConfig = Field(
        default_factory=MediaConfig, description="Uploaded media (user files)."
    )
    migrations: MigrationsConfig = Field(
        default_factory=MigrationsConfig, description="The release's migration job."
    )
    network: NetworkConfig = Field(default_factory=NetworkConfig, description="The VPC (aws).")
    security: SecurityConfig = Field(
        default_factory=SecurityConfig,
        description="Opt-in audit and encryption controls (aws), with their costs.",
    )
    rehearsal: RehearsalConfig = Field(
        default_factory=RehearsalConfig,
        description="The load of `pulumi-django rehearse` (not deployed).",
    )
    domain: DomainConfig | None = Field(
        None, description="Custom domain (aws); none: CloudFront's own name."
    )
    local: LocalConfig = Field(default_factory=LocalConfig, description="Docker target (local).")
    secret_key: SecretStr | None = Field(
        None,
        description="Django `SECRET_KEY`, set with `pulumi config set --secret django:secretKey`; "
        "generated and kept secret when unset.",
    )
    protect: Flag = Field(
        True,
        description="Pulumi's `protect` on what holds the data (aws): the RDS instance, the "
        "ElastiCache replication group, the static and media buckets, the ECR repository, and "
        "the VPC they sit in. `pulumi destroy`, or a change that would delete or replace one "
        "of them, stops with an error until a `pulumi up` with `protect: false` ran "
        "(docs/operations.md).",
    )
    allow_replacement: list[Literal["database", "cache"]] = Field(
        default_factory=list,
        description="Data stores a change may replace (aws). A change that would replace the "
        "database (`database.name`, `database.username`, the KMS key, `network.cidr`...) or "
        "the cache (its port, the KMS key, Valkey back to Redis, `network.cidr`...) is refused "
        "at preview, one line naming it, unless its store is listed here; remove it after that "
        "`pulumi up`.",
    )
    tags: dict[str, Text] = Field(
        default_factory=dict,
        description="Tags added to every AWS resource that takes tags, with `app` (the stack's "
        "`name`) and `managed-by`, as the default tags of the site's AWS provider.",
    )

    @model_validator(mode="after")
    def _stops_in_time(self) -> "StackConfig":
        if self.stop_timeout_seconds > ECS_MAX_STOP_TIMEOUT:
            raise ValueError(
                f"app.gracefulTimeoutSeconds must be at most "
                f"{ECS_MAX_STOP_TIMEOUT - STOP_MARGIN_SECONDS}: ECS kills a task "
                f"{ECS_MAX_STOP_TIMEOUT} s after asking it to stop"
            )
        return self

    @field_validator("name")
    @classmethod
    def _names_aws_accepts(cls, name: str, info: ValidationInfo) -> str:
        """Every AWS name the site derives from `name` fits AWS's limits (`config/names.py`)."""
        if info.data.get("target") == "aws":
            problems = name_problems(name, major=(info.context or {}).get(MAJOR_CONTEXT))
            if problems:
                raise ValueError(problems[0].line(""))
        return name

    @field_validator("app")
    @classmethod
    def _aws_image_is_in_ecr(cls, app: AppConfig, info: ValidationInfo) -> AppConfig:
        """On `aws`, a prebuilt image is an ECR image: ECS pulls it with the execution role and
        the release reads it through ECR's registry API."""
        if info.data.get("target") == "aws" and app.image and EcrImage.parse(app.image) is None:
            raise ValueError(
                f"image {app.image!r} is not in ECR; on aws give {ECR_IMAGE_FORM}: push it to "
                "ECR first (the stack's repository, or one its account may pull from)"
            )
        return app

    @field_validator("allow_replacement")
    @classmethod
    def _listed_once(cls, stores: list[str]) -> list[str]:
        if len(set(stores)) != len(stores):
            raise ValueError("list each data store once")
        return stores

    @field_validator("media")
    @classmethod
    def _media_path_is_its_own(cls, media: MediaConfig, info: ValidationInfo) -> MediaConfig:
        """The proxy and CloudFront send `urlPath` to the media files and the static prefix to
        the static files, and the health path must reach the app. (`static` and `app` come
        before `media`, so they are validated already; absent when invalid themselves.)"""
        static: StaticConfig | None = info.data.get("static")
        app: AppConfig | None = info.data.get("app")
        if not media.enabled:
            return media
        if static is not None:
            static_path = "/" + static.prefix
            if media.url_path.startswith(static_path) or static_path.startswith(media.url_path):
                raise ValueError(
                    f"urlPath {media.url_path!r} overlaps static.prefix {static.prefix!r} "
                    f"(served at {static_path!r}); give media a path of its own, e.g. '/media/'"
                )
        if app is not None and app.health_check_path.startswith(media.url_path):
            raise ValueError(
                f"urlPath {media.url_path!r} holds app.healthCheckPath "
                f"{app.health_check_path!r}: the proxy would answer it with a file, not the app"
            )
        return media

    @property
    def stop_timeout_seconds(self) -> int:
        """How long ECS or Docker waits after SIGTERM: longer than the app's graceful time."""
        return self.app.graceful_timeout_seconds + STOP_MARGIN_SECONDS
