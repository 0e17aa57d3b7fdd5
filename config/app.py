"""The Django application: how it is built, served and configured."""

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator

from .base import Section, Text
from .media import MEDIA_VARIABLES

ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
# Set by pulumi-django itself from the database, cache, static-file and media resources.
RESERVED_ENV = MEDIA_VARIABLES | frozenset(
    {
        "DATABASE_URL",
        "DATABASE_HOST",
        "DATABASE_PORT",
        "DATABASE_NAME",
        "DATABASE_USER",
        "DATABASE_PASSWORD",
        "REDIS_URL",
        "REDIS_PASSWORD",
        "DJANGO_SECRET_KEY",
        "DJANGO_ALLOWED_HOSTS",
        "DJANGO_SETTINGS_MODULE",
        "DJANGO_HEALTH_CHECK_PATH",
        "DJANGO_READINESS_PATH",
        "STATIC_URL",
    }
)
SECRET_LOOKING = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|CREDENTIAL|API_?KEY")
SECRET_ARN = re.compile(r"^arn:aws[a-z-]*:(secretsmanager|ssm):[a-z0-9-]+:\d{12}:.+$")
# A Docker image reference: `[registry/]repository` then `:tag`, `@sha256:<64 hex>` or both.
IMAGE_REFERENCE = re.compile(
    r"^(?P<repository>[a-z0-9]+(?:[._-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
# An image ID as the Docker engine shows it (`docker images --no-trunc`): used as is, locally.
IMAGE_ID = re.compile(r"^sha256:[0-9a-f]{64}$")
# An image in ECR: `ACCOUNT.dkr.ecr.REGION.amazonaws.com[.cn]/REPOSITORY`, a tag and/or digest.
ECR_IMAGE = re.compile(
    r"^(?P<registry>(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\."
    r"(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.amazonaws\.com(?P<china>\.cn)?)"
    r"/(?P<repository>(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
ECR_IMAGE_FORM = (
    "ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY@sha256:<64 hex> (or :TAG, resolved to "
    "its digest at preview)"
)


@dataclass(frozen=True)
class EcrImage:
    """`app.image` when it names an ECR image: where it is, and its tag and/or digest."""

    registry: str  # the registry's host
    account: str  # the registry id
    region: str
    repository: str
    tag: str | None
    digest: str | None
    partition: str

    @classmethod
    def parse(cls, image: str) -> "EcrImage | None":
        """The ECR image `image` names, with a tag or a digest; None for anything else."""
        found = ECR_IMAGE.match(image)
        if found is None or not (found["tag"] or found["digest"]):
            return None
        region = found["region"]
        partition = (
            "aws-cn" if found["china"] else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        )
        return cls(
            registry=found["registry"],
            account=found["account"],
            region=region,
            repository=found["repository"],
            tag=found["tag"],
            digest=found["digest"],
            partition=partition,
        )

    def at(self, digest: str) -> str:
        """The reference of `digest` in this repository: `registry/repository@sha256:...`."""
        return f"{self.registry}/{self.repository}@{digest}"

    @property
    def repository_arn(self) -> str:
        return f"arn:{self.partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


class AppConfig(Section):
    """The Django app image and the app server that runs it."""

    context: str = Field(
        "examples/bigfoot",
        min_length=1,
        description="Docker build context, relative to the Pulumi project directory. Another "
        "app than the default one gives `settingsModule`, `wsgiApp`, `asgiApp` and `staticRoot` "
        "the defaults it declares itself.",
    )
    image: str | None = Field(
        None,
        description="A prebuilt image to release instead of building `context`: "
        "`repository@sha256:<digest>`, or `repository:tag`, which the preview resolves to its "
        "digest (a moved tag is a new release, an unchanged one no change). On `aws` an ECR "
        "image (`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO`), read without Docker; the "
        "stack's execution role may pull from its repository. Locally any image the engine "
        "has or can pull: a tag with a registry host (`ghcr.io/...`, `docker.io/...`) is "
        "resolved in that registry, one without (`notebook:v2`) in the engine, an image ID "
        "(`sha256:...`) is used as is. Static files come from that image, and the migration "
        "check and job run it; `plan` checks the source at `context`, which must be the one "
        "the image was built from. `pulumi-django rollback` sets it; unset: build.",
    )
    python: str | None = Field(
        None,
        min_length=1,
        description="The app's Python interpreter, where `plan`, `check-migrations` and "
        "`rehearse` import and run the app (the image has its own): a path relative to the "
        "project directory, or absolute; default: the interpreter running pulumi-django (the "
        "project's venv). It needs the app's requirements, not pulumi-django.",
    )
    dockerfile: str = Field(
        "Dockerfile", min_length=1, description="Dockerfile path, relative to `context`."
    )
    server: Literal["gunicorn", "uvicorn"] = Field(
        "gunicorn", description="App server: Gunicorn (WSGI) or Uvicorn (ASGI)."
    )
    worker_class: Literal["sync", "gthread"] = Field(
        "gthread", description="Gunicorn worker class (ignored by Uvicorn)."
    )
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Worker processes per task; default derived from the task's vCPUs "
        "(2 x vCPU + 1, at least 2).",
    )
    threads: int = Field(4, ge=1, le=64, description="Threads per gthread worker.")
    preload: bool = Field(
        True,
        description="Gunicorn starts Django once, in its main process, and forks the workers "
        "from it (`--preload`): a task is ready sooner and its workers share that memory "
        "(docs/proxy-and-app-server.md). The runtime kit gives each worker database connections "
        "of its own. Set false for an app that starts threads or opens other connections while "
        "Django starts (an analytics or monitoring client). Ignored by Uvicorn.",
    )
    port: int = Field(
        8000,
        ge=1024,
        le=65535,
        description="Port the app server listens on, on localhost inside the task.",
    )
    wsgi_app: str = Field(
        "bigfoot.wsgi:application",
        pattern=r"^[\w.]+:\w+$",
        description="WSGI application, `module:attribute`; default: what the app declares "
        "(`WSGI_APPLICATION`), `bigfoot.wsgi:application` for the default `context`.",
    )
    asgi_app: str = Field(
        "bigfoot.asgi:application",
        pattern=r"^[\w.]+:\w+$",
        description="ASGI application, `module:attribute`; default: what the app declares "
        "(`ASGI_APPLICATION`, else the `asgi.py` beside its WSGI module), "
        "`bigfoot.asgi:application` for the default `context`.",
    )
    settings_module: str = Field(
        "bigfoot.settings",
        pattern=r"^[\w.]+$",
        description="`DJANGO_SETTINGS_MODULE`; default: what the app declares (its `wsgi.py`, "
        "`asgi.py`, then `manage.py`), `bigfoot.settings` for the default `context`.",
    )
    timeout_seconds: int = Field(
        30, ge=5, le=600, description="A request running longer than this is aborted."
    )
    graceful_timeout_seconds: int = Field(
        25,
        ge=1,
        le=120,
        description="Time in-flight requests get to finish when a worker or task stops.",
    )
    health_check_path: str = Field(
        "/healthz",
        pattern=r"^/[\w./-]*$",
        description="Liveness: the path the load balancer and the container health checks "
        "request, and the one the proxy container waits for. The runtime kit answers it 200 "
        "while the process serves, without the database or the cache (a failover must not get "
        "every task replaced); your own view here must not need them either.",
    )
    readiness_path: str = Field(
        "/readyz",
        pattern=r"^/[\w./-]*$",
        description="Readiness, for people, alarms and tools: the runtime kit answers it 200 "
        "only when the database, the cache and the project's checks are reachable. No health "
        "check of the stack requests it. Set to `healthCheckPath` only to have the load "
        "balancer check the database again (the plan warns).",
    )
    static_root: str = Field(
        "/app/staticfiles",
        pattern=r"^/",
        description="`STATIC_ROOT` inside the image, where `collectstatic` wrote at build time; "
        "default: what the app's settings declare, a directory inside `context` mapped to "
        "`/app/...` (the image's copy of it), `/app/staticfiles` when they declare none.",
    )
    environment: dict[str, Text] = Field(
        default_factory=dict,
        description="Plain, non-secret environment variables for the app container.",
    )
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables injected from Secrets Manager or SSM: "
        "`NAME: <secret ARN>`; the value never enters state or the task definition.",
    )

    @field_validator("image")
    @classmethod
    def _image_reference(cls, image: str | None) -> str | None:
        if image is not None:
            found = IMAGE_REFERENCE.match(image)
            if found is None or not (found["tag"] or found["digest"]):
                raise ValueError(
                    f"{image!r} is not an image reference with a tag or a digest: "
                    "REPOSITORY@sha256:<64 hex> or REPOSITORY:TAG"
                )
        return image

    @field_validator("environment")
    @classmethod
    def _plain_environment(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, _)")
            if name in RESERVED_ENV:
                raise ValueError(f"{name} is set by pulumi-django; remove it")
            if SECRET_LOOKING.search(name):
                raise ValueError(
                    f"{name} looks like a secret; put its Secrets Manager ARN under app.secrets"
                )
        return env

    @field_validator("secrets")
    @classmethod
    def _secret_references(cls, secrets: dict[str, str]) -> dict[str, str]:
        for name, arn in secrets.items():
            if not ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name (A-Z, 0-9, _)")
            if name in RESERVED_ENV:
                raise ValueError(f"{name} is set by pulumi-django; remove it")
            if not SECRET_ARN.match(arn):
                raise ValueError(
                    f"{name}: {arn!r} is not a Secrets Manager or SSM parameter ARN; "
                    "give the ARN, never the secret itself"
                )
        return secrets
