"""The stack's app settings resolved against the app itself: its interpreter, the defaults it
declares (settings module, WSGI/ASGI application, STATIC_ROOT) and the environment it is
imported under offline.

Used by the stack program (`load_stack_config`, so `pulumi up` too) and by the commands that
read a stack (`read_stack_config`), so a plan and a deployment resolve the same values. No CLI
module is imported here.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path, PurePosixPath

from . import app_runs
from .app_discovery import (
    AppDeclarations,
    AppDiscoveryError,
    InterpreterError,
    declared_in_files,
    discover,
    production_settings_module,
    settings_module_of,
)
from .config import StackConfig
from .config.app import AppConfig
from .migration_check.runner import OFFLINE_APP_ENVIRONMENT
from .rendering.app_server import app_environment_defaults
from .rendering.container_definitions import DatabaseSettings, app_environment, app_secrets
from .rendering.proxy import static_url_prefix

DEFAULT_CONTEXT: str = AppConfig.model_fields["context"].default
# Keys whose default is what the app declares, when the app is not the default one.
DECLARED_KEYS = {
    "settings_module": "settingsModule",
    "wsgi_app": "wsgiApp",
    "asgi_app": "asgiApp",
    "static_root": "staticRoot",
}
# The image copies `context` to this directory, its WORKDIR (see the example's Dockerfile).
IMAGE_APP_DIR = PurePosixPath("/app")
# A secret only a deployment has; the offline import needs a value, never the real one.
SECRET_PLACEHOLDER = "offline-placeholder"  # noqa: S105 (a placeholder, not a password)
# Where the offline import's database and cache are: a host that never resolves.
PLACEHOLDER_HOST = "offline.invalid"
PLACEHOLDER_SITE_HOST = OFFLINE_APP_ENVIRONMENT["DJANGO_ALLOWED_HOSTS"]
# The shapes the runtime kit checks: an AWS region, a Secrets Manager ARN.
PLACEHOLDER_REGION = "us-east-1"
PLACEHOLDER_SECRET_ARN = (
    f"arn:aws:secretsmanager:{PLACEHOLDER_REGION}:000000000000:secret:{SECRET_PLACEHOLDER}"
)
# The kit's backend that logs in with RDS IAM tokens: what `database.appAuth: iam` needs.
IAM_DATABASE_ENGINE = "pulumi_django_runtime.db.postgresql_iam"
DJANGO_CHECK_TIMEOUT_SECONDS = 60.0
# Image variables that describe the image's own filesystem and would mislead this machine's
# interpreter: its PATH, virtualenv, Python and pip switches.
IMAGE_ONLY_VARIABLE = re.compile(r"^(PATH|HOME|VIRTUAL_ENV|PYTHON\w*|PIP_\w*|UV_\w*|LD_\w*)$")


def resolve_app_config(
    config: StackConfig, project_dir: Path, *, python: str | None = None
) -> StackConfig:
    """`config` with `app.python` an absolute path (`python`, a `--python` flag, wins over the
    key) and, for another app than the default one, the unset `settingsModule`, `wsgiApp`,
    `asgiApp` and `staticRoot` taken from what the app declares. AppDiscoveryError, naming the
    key to set, when the app must be inspected and cannot be."""
    app = config.app
    interpreter = app_interpreter(app, project_dir, python=python)
    updates: dict[str, str] = {"python": interpreter}
    unset = [field for field in DECLARED_KEYS if field not in app.model_fields_set]
    # The entry point the other server would use never makes the app be imported: a stack file
    # that sets what its server needs deploys without the app's interpreter.
    unused = "asgi_app" if app.server == "gunicorn" else "wsgi_app"
    app_dir = (project_dir / app.context).resolve()
    # A context that is no directory is the program's to report (build_context), not ours.
    if app.context != DEFAULT_CONTEXT and set(unset) - {unused} and app_dir.is_dir():
        updates |= _declared_values(
            _discover(config, app_dir, interpreter, python), unset, app, app_dir
        )
    resolved = AppConfig.model_validate({**app.model_dump(exclude_unset=True), **updates})
    return config.model_copy(update={"app": resolved})


def _discover(
    config: StackConfig, app_dir: Path, interpreter: str, python: str | None
) -> AppDeclarations:
    """What the app declares: imported, or read from its files when its settings do not
    import. AppDiscoveryError naming the key when there is no settings module or no usable
    interpreter."""
    app = config.app
    explicit = "settings_module" in app.model_fields_set
    named = settings_module_of(app_dir)
    module = (
        app.settings_module if explicit else named and production_settings_module(app_dir, named)
    )
    if module is None:
        raise AppDiscoveryError(
            f"django:app.settingsModule: no manage.py, wsgi.py or asgi.py in {app_dir} sets "
            "DJANGO_SETTINGS_MODULE; set it"
        )
    try:
        declared = discover(
            app_dir,
            python=interpreter,
            settings_module=module,
            environment=deployment_environment(config, app_dir),
        )
    except InterpreterError as error:
        raise AppDiscoveryError(f"{interpreter_source(app, python)}: {error}") from None
    except AppDiscoveryError:
        # Settings that do not import are the readiness check's to report, with the rest of
        # the plan; meanwhile the app's files say enough to build it.
        return declared_in_files(app_dir, module)
    needed = "wsgi_app" if app.server == "gunicorn" else "asgi_app"
    if needed not in app.model_fields_set and getattr(declared, needed) is None:
        what = "WSGI_APPLICATION" if needed == "wsgi_app" else "ASGI_APPLICATION nor an asgi.py"
        raise AppDiscoveryError(
            f"django:app.{DECLARED_KEYS[needed]}: {app_dir} declares no {what} for "
            f"{app.server}; set django:app.{DECLARED_KEYS[needed]}"
        )
    return declared


def _declared_values(
    declared: AppDeclarations, unset: list[str], app: AppConfig, app_dir: Path
) -> dict[str, str]:
    """The unset keys' values from the app's declarations; a key the app declares nothing for
    keeps its default."""
    values = {
        "settings_module": declared.settings_module,
        "wsgi_app": declared.wsgi_app,
        "asgi_app": declared.asgi_app,
        "static_root": image_static_root(declared.static_root, app_dir)
        if declared.static_root
        else None,
    }
    return {field: value for field in unset if (value := values[field]) is not None}


def app_interpreter(app: AppConfig, project_dir: Path, *, python: str | None = None) -> str:
    """The app's interpreter as an absolute path: `python` (a flag, relative to the current
    directory), else `app.python` (relative to the project directory), else this interpreter."""
    if python:
        return str(Path(python).absolute())
    if app.python:
        return str((project_dir / app.python).absolute())
    return sys.executable


def interpreter_source(app: AppConfig, python: str | None) -> str:
    """What named the interpreter, for messages: the flag, the key, or neither."""
    if python:
        return "--python"
    if app.python:
        return "django:app.python"
    return "the interpreter running pulumi-django (set django:app.python)"


def require_django(interpreter: str, source: str) -> None:
    """AppDiscoveryError naming `source` (the key or flag) unless `interpreter` runs and
    imports Django: checked before anything starts in it."""
    named = f"{source}: interpreter {interpreter}"
    try:
        completed = subprocess.run(
            [interpreter, "-c", "import django, sys; sys.stdout.write(django.get_version())"],
            capture_output=True,
            text=True,
            errors="replace",
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            timeout=DJANGO_CHECK_TIMEOUT_SECONDS,
            check=False,
        )
    except OSError as error:
        raise AppDiscoveryError(f"{named}: {app_runs.start_failure(interpreter, error)}") from None
    except subprocess.TimeoutExpired:
        raise AppDiscoveryError(
            f"{named}: did not import Django within {DJANGO_CHECK_TIMEOUT_SECONDS:.0f} s"
        ) from None
    said = app_runs.last_line(completed.stderr)
    if completed.returncode != 0 and said and "No module named 'django'" in said:
        raise AppDiscoveryError(f"{named}: {app_runs.NO_DJANGO}")
    if completed.returncode != 0:
        raise AppDiscoveryError(
            f"{named}: exited with status {completed.returncode} importing Django: "
            f"{said or 'it said nothing'}"
        )
    if not completed.stdout.strip():  # a program that takes `-c` without running it
        raise AppDiscoveryError(f"{named}: printed no Django version; is it a Python?")


def image_static_root(host_path: str, app_dir: Path) -> str:
    """A STATIC_ROOT as the image sees it: inside the app directory (`BASE_DIR / "static"`),
    the same place under the image's /app; any other absolute path as it is."""
    path = Path(host_path)
    if path.is_relative_to(app_dir):
        return str(IMAGE_APP_DIR.joinpath(*path.relative_to(app_dir).parts))
    return host_path


def deployment_environment(config: StackConfig, app_dir: Path) -> dict[str, str]:
    """What the app's settings see when deployed, with placeholders where only a deployment
    knows the value: the image's ENV, then the variables the stack injects."""
    return {
        **image_environment(app_dir / config.app.dockerfile),
        **injected_environment(config),
        **dict.fromkeys(config.app.secrets, SECRET_PLACEHOLDER),
        **app_environment_defaults(config.app),
        **config.app.environment,
        "DJANGO_SETTINGS_MODULE": config.app.settings_module,
        "DJANGO_HEALTH_CHECK_PATH": config.app.health_check_path,
        "DJANGO_READINESS_PATH": config.app.readiness_path,
        "STATIC_URL": static_url_prefix(config.static),
    }


def injected_environment(config: StackConfig) -> dict[str, str]:
    """The connection variables the stack's target gives the app's task, by the same names and
    in the same shapes, with placeholder values: on AWS the task's (`app_environment` and the
    `app_secrets` ECS reads at start), the database as DATABASE_HOST/PORT/NAME/USER with IAM
    tokens (DATABASE_IAM_REGION) or a password; on local Docker the data containers'."""
    database = config.database
    if config.target == "aws":
        iam = database.app_auth == "iam"
        settings = DatabaseSettings(
            host=PLACEHOLDER_HOST,
            port=5432,
            name=database.name,
            user=database.app_username,
            secret_arn=None if iam else PLACEHOLDER_SECRET_ARN,
            iam_region=PLACEHOLDER_REGION if iam else None,
        )
        plain = app_environment(
            settings_module=config.app.settings_module,
            health_check_path=config.app.health_check_path,
            readiness_path=config.app.readiness_path,
            site_host=PLACEHOLDER_SITE_HOST,
            site_url=f"https://{PLACEHOLDER_SITE_HOST}",
            static_url=static_url_prefix(config.static),
            database=settings,
            redis_url=f"rediss://{PLACEHOLDER_HOST}:6379/0",
            media={},
            extra={},
        )
        secrets = app_secrets(
            database_secret_arn=None if iam else PLACEHOLDER_SECRET_ARN,
            cache_auth_secret_arn="",
            django_secret_arn="",
            extra={},
        )
        # TMPDIR is the task's own volume, not a directory of this machine.
        plain.pop("TMPDIR", None)
        return {**plain, **dict.fromkeys(secrets, SECRET_PLACEHOLDER)}
    # components/local/data.py: the PostgreSQL and Redis containers on the private network.
    return {
        "DJANGO_SECRET_KEY": SECRET_PLACEHOLDER,
        "DJANGO_ALLOWED_HOSTS": PLACEHOLDER_SITE_HOST,
        "DATABASE_HOST": PLACEHOLDER_HOST,
        "DATABASE_PORT": "5432",
        "DATABASE_NAME": database.name,
        "DATABASE_USER": database.username,
        "DATABASE_PASSWORD": SECRET_PLACEHOLDER,
        "DATABASE_SSLMODE": "disable",
        "REDIS_URL": f"redis://{PLACEHOLDER_HOST}:6379/0",
        "REDIS_PASSWORD": SECRET_PLACEHOLDER,
    }


def database_variables(config: StackConfig) -> list[str]:
    """The names of the database variables the stack's target gives the app, for messages."""
    return [name for name in injected_environment(config) if name.startswith("DATABASE_")]


def image_environment(dockerfile: Path) -> dict[str, str]:
    """The `ENV` variables of a Dockerfile's last stage (the image that runs), literal values
    only, without those that describe the image's own filesystem (PATH, PYTHON*...).
    Empty when the file is missing."""
    try:
        text = dockerfile.read_text(encoding="utf-8")
    except OSError:
        return {}
    environment: dict[str, str] = {}
    for instruction in _instructions(text):
        keyword, _, rest = instruction.partition(" ")
        if keyword.upper() == "FROM":
            environment = {}
        elif keyword.upper() == "ENV":
            environment |= _env_pairs(rest.strip())
    return {
        name: value
        for name, value in environment.items()
        if not IMAGE_ONLY_VARIABLE.match(name) and "$" not in value
    }


def _instructions(text: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined and comments dropped."""
    instructions: list[str] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or (not stripped and not current):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        instructions.append((current + stripped).strip())
        current = ""
    if current.strip():
        instructions.append(current.strip())
    return instructions


def _env_pairs(arguments: str) -> dict[str, str]:
    """`ENV A=1 B="two words"` or the legacy `ENV A one value`."""
    try:
        words = shlex.split(arguments, posix=True)
    except ValueError:
        return {}
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words if "=" in word)
