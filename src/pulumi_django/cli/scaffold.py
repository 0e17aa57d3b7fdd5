"""The files `pulumi-django init` writes, rendered as text from what it found in the app.

Every renderer here is a pure function of its arguments (no file, no environment), so each file
can be tested on its own; `commands/init.py` inspects the app, decides the values and writes.
The one exception, `runtime_kit_requirement`, reads how pulumi-django itself was installed.
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from pulumi_django.app_resolution import IMAGE_APP_DIR
from pulumi_django.cli.rehearsal.releases import RELEASES_DIR
from pulumi_django.config.app import AppConfig
from pulumi_django.config.names import max_name_length, name_problems

KIT_DISTRIBUTION = "pulumi-django-runtime"
KIT_MODULE = "pulumi_django_runtime"
KIT_EXTRA = "aws"
# Where the kit is fetched from when pulumi-django was not itself installed from git.
REPOSITORY = "https://github.com/pulumi-django/pulumi-django"
KIT_SUBDIRECTORY = "runtime"
# The app servers the stack runs, as requirement lines (the ranges pulumi-django is tested with).
SERVER_REQUIREMENTS = {"gunicorn": "gunicorn>=23", "uvicorn": "uvicorn>=0.30"}
POSTGRESQL_DRIVER = "psycopg[binary]>=3.2"
REDIS_CLIENT = "redis>=5"
APP_UID = 10001
# StackConfig.name: lowercase letters, digits, single hyphens, 3 characters and at most what
# every AWS name derived from it leaves room for (`config/names.py`; 20 on `local`, and a local
# stack's name must suit `aws` too once its target changes).
RESOURCE_NAME_MAX = max_name_length()
# What init writes into a stack file, by target: small and cheap, every relaxation of the
# secure defaults written out (the same choices as the repository's Pulumi.dev.yaml and
# Pulumi.local.yaml), so that raising them for production is an edit, not a discovery.
SMALL_AWS_SECTIONS: dict[str, dict[str, Any]] = {
    "fleet": {
        "desiredCount": 1,
        "minCount": 1,
        "maxCount": 3,
        "cpu": 256,
        "memory": 512,
        "logRetentionDays": 7,
    },
    "database": {
        "instanceClass": "db.t4g.micro",
        "multiAz": False,
        "deletionProtection": False,
        "skipFinalSnapshot": True,
        "performanceInsights": False,
    },
    "cache": {"nodeType": "cache.t4g.micro", "nodes": 1, "snapshotRetentionDays": 0},
    "network": {"egress": "single-nat"},
    "loadBalancer": {"deletionProtection": False},
}
SMALL_LOCAL_SECTIONS: dict[str, dict[str, Any]] = {
    "local": {"replicas": 2, "httpPort": 8080},
    "fleet": {"cpu": 512, "memory": 1024},
}
# AWS stacks init leaves on the secure, highly available defaults.
PRODUCTION_STACKS = frozenset({"prod", "production"})
# The sections a new stack file sets, and how its header describes them, by kind of stack.
STACK_SETUPS: dict[str, tuple[dict[str, dict[str, Any]], str]] = {
    "aws": (
        SMALL_AWS_SECTIONS,
        "a small AWS setup, relaxed on purpose: single-AZ database without deletion\n"
        "# protection or final snapshot, one cache node, one shared NAT gateway, one small task,\n"
        "# a load balancer without deletion protection",
    ),
    "production": (
        {},
        "the secure AWS defaults, nothing relaxed: Multi-AZ database with deletion\n"
        "# protection and final snapshot, a 2-node cache with failover, a NAT gateway per AZ",
    ),
    "local": (
        SMALL_LOCAL_SECTIONS,
        "two app replicas on this machine's Docker engine, the proxy on 127.0.0.1:8080",
    ),
}


def installed_direct_url(distribution: importlib.metadata.Distribution) -> dict[str, Any]:
    """PEP 610's direct_url.json of an installed distribution: where pip took it from (a URL,
    with the commit for git); empty when it came from an index."""
    try:
        direct_url = json.loads(distribution.read_text("direct_url.json") or "{}")
    except ValueError:
        return {}
    return direct_url if isinstance(direct_url, dict) else {}


def runtime_kit_requirement(distribution: importlib.metadata.Distribution | None = None) -> str:
    """The requirement line that installs the runtime kit matching this pulumi-django.

    Installed from git (PEP 610's direct_url.json records the repository and the commit), the
    kit comes from that same commit; otherwise, or when that repository is on this machine
    (`git+file://`, which no image build can reach), from this version's release tag."""
    installed = distribution or importlib.metadata.distribution("pulumi-django")
    direct_url = installed_direct_url(installed)
    vcs_info = direct_url.get("vcs_info") or {}
    url = direct_url.get("url") or ""
    if vcs_info.get("vcs") == "git" and vcs_info.get("commit_id") and not _is_local(url):
        source = f"git+{url}@{vcs_info['commit_id']}"
    else:
        source = f"git+{REPOSITORY}@v{installed.version}"
    return f"{KIT_DISTRIBUTION}[{KIT_EXTRA}] @ {source}#subdirectory={KIT_SUBDIRECTORY}"


def local_install_url(distribution: importlib.metadata.Distribution | None = None) -> str | None:
    """The `file:` URL this pulumi-django was installed from (a path or a `git+file://` clone),
    whose kit the image build cannot fetch; None when installed from an index or a remote."""
    installed = distribution or importlib.metadata.distribution("pulumi-django")
    url = installed_direct_url(installed).get("url") or ""
    return url if _is_local(url) else None


def _is_local(url: str) -> bool:
    return url.startswith("file:")


def requirement_name(line: str) -> str | None:
    """The normalized project name a requirements.txt line installs (PEP 503), or None for a
    comment, a blank line or an option such as `-r base.txt`."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line.split("#", 1)[0])
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def image_requirements(kit: str, server: str) -> dict[str, tuple[str, ...]]:
    """What the image needs beside the app's own requirements, each requirement line with the
    projects that already provide it: the runtime kit, the app server the stack runs, and the
    drivers of the database and the cache the stack injects (the kit leaves the choice of
    driver to the app, so it depends on neither)."""
    return {
        kit: (KIT_DISTRIBUTION,),
        SERVER_REQUIREMENTS[server]: (server,),
        POSTGRESQL_DRIVER: ("psycopg", "psycopg-binary", "psycopg2", "psycopg2-binary"),
        REDIS_CLIENT: ("redis",),
    }


def missing_requirements(requirements_text: str, wanted: Mapping[str, Sequence[str]]) -> list[str]:
    """The lines of `wanted` that no line of a requirements.txt already provides."""
    present = {requirement_name(line) for line in requirements_text.splitlines()}
    return [line for line, providers in wanted.items() if present.isdisjoint(providers)]


def append_requirements(requirements_text: str, lines: Sequence[str]) -> str:
    """The file with `lines` added at its end, after a newline if it lacked one."""
    if requirements_text and not requirements_text.endswith("\n"):
        requirements_text += "\n"
    return requirements_text + "".join(f"{line}\n" for line in lines)


def resource_name(project: str, stack: str) -> str:
    """`django:name` for the project's stack: `<project>-<stack>`, lowercase letters, digits and
    single hyphens, 3 to `RESOURCE_NAME_MAX` characters, no hyphen last, a name every AWS name
    derived from it suits (`config/names.py`: `app-` goes first where the project's would start
    one with a prefix AWS refuses, such as `internal-` or `sg-`); the stack's part is kept
    whole where it fits so that two stacks of one project never share names."""
    base = _slug(project) or "django"
    if not base[0].isalpha():
        base = f"app-{base}"
    name = _joined(base, stack)
    if name_problems(name):
        name = _joined(f"app-{base}", stack)
    return name


def _joined(base: str, stack: str) -> str:
    suffix = _slug(stack)[: RESOURCE_NAME_MAX // 2].rstrip("-")
    room = RESOURCE_NAME_MAX - (len(suffix) + 1 if suffix else 0)
    name = f"{base[:room].rstrip('-')}-{suffix}" if suffix else base[:RESOURCE_NAME_MAX]
    name = re.sub(r"-{2,}", "-", name).rstrip("-")
    return name if len(name) >= 3 else f"{name}-app"


def project_name(project: str) -> str:
    """A Pulumi project name (letters, digits, hyphens, underscores, periods) for the app."""
    return _slug(project) or "django-app"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class AppSettings:
    """What the stack file says about the app (`django:app`); None leaves the default."""

    context: str
    settings_module: str
    wsgi_app: str | None
    asgi_app: str | None
    static_root: str
    python: str | None = None

    @property
    def server(self) -> Literal["gunicorn", "uvicorn"]:
        """Gunicorn when the app has a WSGI entry point, Uvicorn when it only has ASGI."""
        return "gunicorn" if self.wsgi_app or not self.asgi_app else "uvicorn"

    @property
    def served_app(self) -> str:
        """The entry point the server runs: `module:attribute`."""
        served = self.wsgi_app if self.server == "gunicorn" else self.asgi_app
        if served is None:
            raise ValueError("the app declares neither a WSGI nor an ASGI application")
        return served

    def as_config(self) -> dict[str, str]:
        section = {"context": self.context, "settingsModule": self.settings_module}
        if self.wsgi_app:
            section["wsgiApp"] = self.wsgi_app
        if self.asgi_app:
            section["asgiApp"] = self.asgi_app
        if self.server != AppConfig.model_fields["server"].default:
            section["server"] = self.server
        section["staticRoot"] = self.static_root
        if self.python:
            section["python"] = self.python
        return section


def render_stack_file(
    *, stack: str, target: str, name: str, app: AppSettings, region: str = "us-east-1"
) -> str:
    """Pulumi.<stack>.yaml: the target, the resource name, the app, and small settings, except
    for an AWS stack named like production, which keeps the secure, highly available defaults."""
    config: dict[str, Any] = {}
    if target == "aws":
        config["aws:region"] = region
    config["django:target"] = target
    config["django:name"] = name
    config["django:app"] = app.as_config()
    setup = "production" if target == "aws" and stack in PRODUCTION_STACKS else target
    sections, described = STACK_SETUPS[setup]
    config.update({f"django:{key}": dict(value) for key, value in sections.items()})
    if target == "aws":
        config["django:tags"] = {"environment": stack}
    header = (
        f"# Stack {stack}, written by `pulumi-django init`: the app's own declarations and\n"
        f"# {described}.\n"
        "# Every key and its default: `pulumi-django config-reference`.\n"
    )
    return header + yaml.safe_dump({"config": config}, sort_keys=False, width=100)


def render_project_file(*, name: str, virtualenv: str | None) -> str:
    """Pulumi.yaml for a directory that has no Pulumi project yet (the app's own repository).

    `virtualenv` is the environment pulumi-django is installed in: Pulumi runs the program with
    its Python, so `pulumi up` uses what `pulumi-django plan` used. Without one, Pulumi runs
    the `python3` on PATH, which then needs pulumi-django installed."""
    runtime: dict[str, Any] = {"name": "python"}
    if virtualenv:
        runtime["options"] = {"toolchain": "pip", "virtualenv": virtualenv}
    document = {
        "name": name,
        "description": f"The {name} Django site, deployed by pulumi-django.",
        "runtime": runtime,
    }
    return (
        "# Written by `pulumi-django init`. The program is __main__.py; the stacks are\n"
        "# Pulumi.<stack>.yaml.\n" + yaml.safe_dump(document, sort_keys=False, width=100)
    )


PROGRAM = '''\
"""The {name} stack: pulumi-django's ready-made site for the stack's target (AWS or local
Docker), configured by Pulumi.<stack>.yaml. Written by `pulumi-django init`."""

import pulumi

from pulumi_django import load_stack_config, site_class

# Options for every resource of the stack: the site passes them to its components, whose
# children inherit them (`transforms`, `protect`, an AWS provider of your own; docs/library.md).
STACK_OPTIONS = pulumi.ResourceOptions()

config = load_stack_config()
site = site_class(config.target)(config.name, config, opts=STACK_OPTIONS)
site.export_outputs()
'''


def render_program(*, name: str) -> str:
    """__main__.py: the installed pulumi_django's site for the stack, so no clone is needed."""
    return PROGRAM.format(name=name)


@dataclass(frozen=True)
class ImageRecipe:
    """What the app's Dockerfile needs to know about the app."""

    python_version: str  # "3.12": the app's own interpreter's
    settings_module: str  # the production settings, which collectstatic runs under
    static_root: str  # STATIC_ROOT in the image
    server: Literal["gunicorn", "uvicorn"]
    server_app: str  # "pkg.wsgi:application" (or asgi)
    # "requirements.txt", or "pyproject.toml" (its [project] dependencies are installed)
    dependencies: Literal["requirements.txt", "pyproject.toml"]
    # Installed next to the dependency file when that file does not list them.
    extra_requirements: tuple[str, ...] = ()
    port: int = AppConfig.model_fields["port"].default
    health_check_path: str = AppConfig.model_fields["health_check_path"].default


def render_dockerfile(recipe: ImageRecipe) -> str:
    """A multi-stage Dockerfile: a builder that installs the dependencies into /venv, then a
    runtime that copies only that venv and the code, collects static files at build time and
    runs as a fixed non-root uid, with /tmp declared a volume for the read-only root."""
    install = _dependency_install(recipe)
    health_url = f"http://127.0.0.1:{recipe.port}{recipe.health_check_path}"
    health = json.dumps(
        [
            "python",
            "-c",
            f"import urllib.request; urllib.request.urlopen('{health_url}', timeout=4)",
        ]
    )
    return f"""\
# syntax=docker/dockerfile:1
# Written by `pulumi-django init`. The stack runs the app server with its own settings
# (`pulumi-django render app-server`); CMD is for a plain `docker run`.
ARG PYTHON_IMAGE=python:{recipe.python_version}-slim-bookworm

FROM ${{PYTHON_IMAGE}} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \\
    PIP_NO_CACHE_DIR=1
# git: pip fetches the runtime kit from its repository (a `git+` requirement).
RUN apt-get update \\
    && apt-get install --yes --no-install-recommends git \\
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /venv
{install}
FROM ${{PYTHON_IMAGE}} AS runtime
ENV PATH=/venv/bin:$PATH \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PYTHONUNBUFFERED=1 \\
    PYTHONPATH={IMAGE_APP_DIR} \\
    DJANGO_SETTINGS_MODULE={recipe.settings_module} \\
    STATIC_ROOT={recipe.static_root}
RUN groupadd --system --gid {APP_UID} app \\
    && useradd --system --uid {APP_UID} --gid app --home-dir {IMAGE_APP_DIR} --no-create-home \\
       --shell /usr/sbin/nologin app
COPY --from=builder /venv /venv
WORKDIR {IMAGE_APP_DIR}
# Owned by root: the app user can read the code and the static files but not change them.
COPY . {IMAGE_APP_DIR}
# The hashed static files and their manifest ship inside the image, collected under the
# production settings. No secret, database or cache is needed (or available) here.
RUN python manage.py collectstatic --noinput
USER {APP_UID}:{APP_UID}
EXPOSE {recipe.port}
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \\
    CMD {health}
CMD {json.dumps(_server_command(recipe))}
# Fargate copies a declared VOLUME's directory (and its permissions) into the task volume,
# so the non-root app can write /tmp while the root filesystem stays read-only.
VOLUME ["/tmp"]
"""


def _dependency_install(recipe: ImageRecipe) -> str:
    extra = "".join(f" {json.dumps(line)}" for line in recipe.extra_requirements)
    if recipe.dependencies == "requirements.txt":
        return (
            "COPY requirements.txt /tmp/requirements.txt\n"
            f"RUN /venv/bin/pip install -r /tmp/requirements.txt{extra}\n"
        )
    extract = (
        "import tomllib; "
        "print('\\n'.join(tomllib.load(open('/tmp/pyproject.toml', 'rb'))['project']"
        ".get('dependencies', [])))"
    )
    return (
        "COPY pyproject.toml /tmp/pyproject.toml\n"
        "# The project's dependencies only: the app runs from /app, it is not installed.\n"
        f'RUN python -c "{extract}" > /tmp/requirements.txt \\\n'
        f"    && /venv/bin/pip install -r /tmp/requirements.txt{extra}\n"
    )


def _server_command(recipe: ImageRecipe) -> list[str]:
    if recipe.server == "uvicorn":
        return ["uvicorn", recipe.server_app, "--host", "0.0.0.0", "--port", str(recipe.port)]  # noqa: S104
    return [
        "gunicorn",
        recipe.server_app,
        "--bind",
        f"0.0.0.0:{recipe.port}",
        "--worker-class",
        "gthread",
        "--workers",
        "2",
        "--threads",
        "4",
        "--access-logfile",
        "-",
    ]


def render_dockerignore(*, generated_dirs: Sequence[str], extra: Sequence[str] = ()) -> str:
    """.dockerignore: only what the image runs. `generated_dirs` are directories of the app that
    are build output or user data (STATIC_ROOT, media), relative to the context; `extra` are
    further patterns (the Pulumi project when it shares the app's directory, virtualenvs).

    The app's tests stay: a release command or a settings module may import from them, and they
    cost a few kilobytes. Docker reads `dir` and `dir/` alike, so each is written once."""
    patterns = [
        ".git",
        ".venv/",
        "venv/",
        "**/__pycache__",
        "**/*.pyc",
        ".*_cache",
        "*.sqlite3",
        ".env*",
        "node_modules/",
        *(f"{directory.rstrip('/')}/" for directory in generated_dirs),
        # The rehearsal's overlays of the next release: never part of this one's image.
        f"{RELEASES_DIR}/",
        "Pulumi.*.yaml",
        *extra,
        "Dockerfile",
        ".dockerignore",
    ]
    unique: dict[str, str] = {}
    for pattern in patterns:
        unique.setdefault(pattern.rstrip("/"), pattern)
    lines = ["# Written by `pulumi-django init`: only what the image runs.", *unique.values()]
    return "\n".join(lines) + "\n"


def render_gitignore(*, virtualenvs: Sequence[str] = ()) -> str:
    """.gitignore for a new Pulumi project directory: its virtualenvs (`.venv/`, and any other
    `virtualenvs`, relative directories) and bytecode, so neither is ever committed."""
    patterns = [".venv/", *(f"{venv.rstrip('/')}/" for venv in virtualenvs), "__pycache__/"]
    return "# Written by `pulumi-django init`.\n" + "".join(
        f"{pattern}\n" for pattern in dict.fromkeys(patterns)
    )


@dataclass(frozen=True)
class ConfigureCall:
    """How a settings module uses the runtime kit's `configure`."""

    imported_as: str | None  # the name `configure` is reachable by, e.g. "configure"
    called: bool


def configure_call(settings_source: str) -> ConfigureCall:
    """Whether a settings module's source imports and calls the kit's `configure`, read without
    running it (`from pulumi_django_runtime import configure` or `import pulumi_django_runtime`)."""
    tree = ast.parse(settings_source)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == KIT_MODULE:
            names |= {
                alias.asname or alias.name for alias in node.names if alias.name == "configure"
            }
        elif isinstance(node, ast.Import):
            names |= {
                f"{alias.asname or alias.name}.configure"
                for alias in node.names
                if alias.name == KIT_MODULE
            }
    called = any(
        isinstance(node, ast.Call) and ast.unparse(node.func) in names for node in ast.walk(tree)
    )
    preferred = "configure" if "configure" in names else min(names, default=None)
    return ConfigureCall(preferred, called)


def settings_lines(usage: ConfigureCall) -> list[str]:
    """The lines to add at the end of the settings module: only what it lacks."""
    if usage.called:
        return []
    if usage.imported_as:
        return [f"{usage.imported_as}(globals())"]
    return [f"from {KIT_MODULE} import configure", "configure(globals())"]
