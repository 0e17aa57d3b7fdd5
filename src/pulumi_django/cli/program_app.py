"""The app a Pulumi program of one's own deploys, read from its offline recording.

Such a program (a stack file without `django:target`) builds pulumi-django's components from
`AppConfig`s of its own, so there is no `django:app` section for the plan's migration check and
readiness to read. What the components were given shows in their resources' inputs instead:

- the build context and Dockerfile: the image step's `docker.Image` (`build.context` and
  `build.dockerfile`, relative to the project directory, as `AppImage` records them); an image
  whose context holds no manage.py is not a Django app;
- the settings module and the acknowledged migrations: the migration check's inputs, else the
  app container's `DJANGO_SETTINGS_MODULE`; a program that runs no check gets none from the plan;
- the server, its entry point and the health check path: the app container, the one whose
  command runs gunicorn or uvicorn (in an ECS task definition, or a Docker container);
- STATIC_ROOT: the static release's `static_root`;
- anything none of them shows: what the app declares, as for a stack's `app.context`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pulumi_django.config import StackConfig
from pulumi_django.config.loader import describe_errors
from pulumi_django.errors import UsageError
from pulumi_django.recorder import RecordedResource, Recording
from pulumi_django.release import release_order
from pulumi_django.release_steps import Step

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
CONTAINER = "docker:index/container:Container"
NO_CHECK = "the program runs no migration check (a MigrationJob with its check on)"
# StackConfig wants a target; the app's checks read only its `app` and `migrations` sections.
CHECKED_AS_TARGET = "aws"


class NoAppDeployed(Exception):
    """The program builds no Django app the plan can check; the message says why, in a line."""


def program_key(field: str) -> str:
    """How a finding names an app setting of a program: the `AppConfig` field it sets."""
    return f"AppConfig.{field}"


def program_app_config(recording: Recording, project_dir: Path) -> StackConfig:
    """The program's app as a stack's `django:app` and `migrations` would describe it, before
    `resolve_app_config` fills in what the app declares. Raises NoAppDeployed when it builds
    none, or several (which container serves which, the recording cannot tell apart), and
    UsageError when what it recorded is no valid app config."""
    steps = {found.step.key: found.resources for found in release_order(recording)}
    builds = [build for image in steps.get(Step.IMAGE, []) if (build := _build(image))]
    apps = {
        context: dockerfile
        for context, dockerfile in builds
        if (project_dir / context / "manage.py").is_file()
    }
    if not apps:
        built = "no app image" if not builds else "no image whose build context has a manage.py"
        raise NoAppDeployed(f"the program builds {built}, so no Django app to check")
    if len(apps) > 1:
        raise NoAppDeployed(
            f"the program builds {len(apps)} Django app images ({', '.join(sorted(apps))}); "
            "the plan checks a program's app when it builds one"
        )
    [(context, dockerfile)] = apps.items()
    container = next(_app_containers(recording), None)
    environment = container[1] if container else {}
    checks = steps.get(Step.CHECK, [])
    app: dict[str, Any] = {
        "context": context,
        "dockerfile": os.path.relpath(project_dir / dockerfile, project_dir / context),
        **_known(
            settingsModule=_first_input(checks, "settings_module")
            or environment.get("DJANGO_SETTINGS_MODULE"),
            healthCheckPath=environment.get("DJANGO_HEALTH_CHECK_PATH"),
            readinessPath=environment.get("DJANGO_READINESS_PATH"),
            staticRoot=_first_input(steps.get(Step.STATIC, []), "static_root"),
        ),
        **(_server(container[0]) if container else {}),
    }
    acknowledged = _first_input(checks, "acknowledged") or {}
    try:
        return StackConfig.model_validate(
            {
                "target": CHECKED_AS_TARGET,
                "app": app,
                "migrations": {
                    "check": bool(checks),
                    "acknowledged": [
                        {"migration": migration, "reason": reason}
                        for migration, reason in acknowledged.items()
                    ],
                },
            }
        )
    except ValidationError as error:
        problem = describe_errors(error)[0]
        raise UsageError(f"the app the program deploys ({context}): {problem}") from None


def _build(image: RecordedResource) -> tuple[str, str] | None:
    """The image's build context and Dockerfile as recorded, when both are known."""
    build = image.inputs.get("build")
    if not isinstance(build, Mapping):
        return None
    context, dockerfile = build.get("context"), build.get("dockerfile")
    if isinstance(context, str) and isinstance(dockerfile, str):
        return context, dockerfile
    return None


def _app_containers(recording: Recording) -> Iterator[tuple[list[str], dict[str, str]]]:
    """(command, plain environment) of each container that runs an app server: in the task
    definitions' `containerDefinitions` (JSON), then the Docker containers (`NAME=value`,
    a secret one masked whole)."""
    for resource in recording.resources:
        if resource.type == TASK_DEFINITION:
            try:
                definitions = json.loads(resource.inputs.get("containerDefinitions") or "[]")
            except (TypeError, ValueError):
                continue
            for definition in definitions if isinstance(definitions, list) else []:
                command = definition.get("command") or []
                if _runs_server(command):
                    pairs = definition.get("environment") or []
                    yield command, {pair["name"]: pair["value"] for pair in pairs}
        elif resource.type == CONTAINER and _runs_server(resource.inputs.get("command")):
            envs = [entry for entry in resource.inputs.get("envs") or [] if "=" in str(entry)]
            yield resource.inputs["command"], dict(entry.split("=", 1) for entry in envs)


def _runs_server(command: Any) -> bool:
    return isinstance(command, list) and bool(command) and command[0] in ("gunicorn", "uvicorn")


def _server(command: list[str]) -> dict[str, str]:
    """The server and its entry point from its command, as `rendering.app_server` writes it:
    Gunicorn's WSGI application last, Uvicorn's ASGI application first."""
    if command[0] == "gunicorn":
        return {"server": "gunicorn", "wsgiApp": command[-1]}
    return {"server": "uvicorn", "asgiApp": command[1]}


def _first_input(resources: list[RecordedResource], name: str) -> Any:
    return next((r.inputs[name] for r in resources if r.inputs.get(name) is not None), None)


def _known(**values: Any) -> dict[str, Any]:
    """The values the recording knows (an output not resolved offline is None)."""
    return {key: value for key, value in values.items() if isinstance(value, str)}
