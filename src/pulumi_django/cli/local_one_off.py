"""`pulumi-django manage` on the local target: `python manage.py ARGS` once, in a container of
its own on the stack's network, with the app's image, user, environment and mounts as
`docker container inspect` shows them on the first app container.

The environment goes in an env file (mode 0600, in a private temporary directory removed when
the command ends), never on the command line where `ps` shows it; a value over several lines,
which an env file cannot hold, goes as `--env NAME` with the value in the docker CLI's own
environment.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulumi_django.cli.one_off import manage_command, wait_passing_interrupts
from pulumi_django.errors import UsageError

if TYPE_CHECKING:
    from pulumi_django.cli.stack_state import DeployedStack

DOCKER_INSTALL = "https://docs.docker.com/get-docker/"
# How the docker CLI says it cannot reach the daemon (Docker Engine and Desktop, old and new).
DAEMON_DOWN = (
    "cannot connect to the docker daemon",
    "failed to connect to the docker api",
    "is the docker daemon running",
    "error during connect",
)


@dataclass(frozen=True)
class OneOffContainer:
    """A `docker run` command line, the env file's text, and the variables the docker CLI's
    own environment passes on (`--env NAME`)."""

    argv: list[str]
    env_file_text: str
    passed_env: dict[str, str] = field(default_factory=dict)


def run_container(
    stack: DeployedStack, args: Sequence[str], *, interactive: bool, stdin_is_tty: bool
) -> int:
    """Runs `python manage.py ARGS` in a one-off container; its exit code (docker's own, 125 and
    up, when the container could not run)."""
    docker = shutil.which("docker")
    if docker is None:
        raise UsageError(
            f"the docker CLI is not on PATH: install Docker ({DOCKER_INSTALL}) to run commands "
            "on the local target"
        )
    containers = stack.output("appContainers")
    network = str(stack.output("networkName"))
    if not containers:
        raise UsageError(
            f"stack {stack.name} runs no app container to copy: run `pulumi up --stack "
            f"{stack.name}` first"
        )
    inspected = inspect_container(docker, str(containers[0]), stack.name)
    with tempfile.TemporaryDirectory(prefix="pulumi-django-manage-") as directory:
        env_file = Path(directory) / "app.env"
        plan = one_off_container(
            docker,
            inspected,
            network=network,
            args=args,
            interactive=interactive,
            tty=stdin_is_tty,
            env_file=env_file,
        )
        descriptor = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(plan.env_file_text)
        process = subprocess.Popen(plan.argv, env={**os.environ, **plan.passed_env})
        return wait_passing_interrupts(process)


def refuse_if_docker_down(stderr: str) -> None:
    """A UsageError when the docker CLI's `stderr` says the daemon cannot be reached (not
    started, or another DOCKER_HOST), which is no news about the stack's containers."""
    for line in stderr.splitlines():
        if any(sign in line.lower() for sign in DAEMON_DOWN):
            reason = line.strip().removeprefix("Error: ").removeprefix("ERROR: ")
            raise UsageError(f"Docker is not answering: {reason}; start Docker")


def inspect_container(docker: str, name: str, stack: str) -> Mapping[str, Any]:
    done = subprocess.run(
        [docker, "container", "inspect", name], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        refuse_if_docker_down(done.stderr)
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit {done.returncode}"
        if "no such" not in reason.lower():
            raise UsageError(f"`docker container inspect {name}` failed: {reason}")
        raise UsageError(
            f"the app container {name} does not exist ({reason}): is stack {stack} up? Run "
            f"`pulumi up --stack {stack}`"
        )
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise UsageError(f"`docker container inspect {name}` printed no JSON") from None
    if not isinstance(document, list) or not document or not isinstance(document[0], dict):
        raise UsageError(f"`docker container inspect {name}` printed no container")
    return document[0]


def one_off_container(
    docker: str,
    inspected: Mapping[str, Any],
    *,
    network: str,
    args: Sequence[str],
    interactive: bool,
    tty: bool,
    env_file: Path,
) -> OneOffContainer:
    """The `docker run` of a one-off container copying the inspected app container. `-i` when
    interactive or on a terminal, `-t` only on one (docker refuses `-t` without)."""
    config = inspected.get("Config") or {}
    host = inspected.get("HostConfig") or {}
    lines: list[str] = []
    passed: dict[str, str] = {}
    for entry in config.get("Env") or []:
        name, equals, value = str(entry).partition("=")
        if not equals:
            continue
        if "\n" in value or "\r" in value:
            passed[name] = value
        else:
            lines.append(f"{name}={value}\n")
    argv = [docker, "run", "--rm"]
    if interactive or tty:
        argv.append("-i")
    if tty:
        argv.append("-t")
    argv += ["--network", network, "--env-file", str(env_file)]
    for name in passed:
        argv += ["--env", name]
    if config.get("User"):
        argv += ["--user", str(config["User"])]
    if host.get("Init"):
        argv.append("--init")
    for mount in inspected.get("Mounts") or []:
        flag = mount_flag(mount)
        if flag:
            argv += ["--mount", flag]
    image = inspected.get("Image") or config.get("Image")
    if not image:
        raise UsageError(f"container {inspected.get('Name', '?')} shows no image to run")
    argv += [str(image), *manage_command(args)]
    return OneOffContainer(argv, "".join(lines), passed)


def mount_flag(mount: Mapping[str, Any]) -> str | None:
    """`--mount`'s value for one of `docker inspect`'s Mounts (a volume, a bind or a tmpfs), as
    docker reads it (CSV fields, quoted when they hold a comma or a quote)."""
    kind = mount.get("Type")
    fields = [f"type={kind}"]
    if kind == "volume":
        fields.append(f"source={mount['Name']}")
    elif kind == "bind":
        fields.append(f"source={mount['Source']}")
    elif kind != "tmpfs":
        return None
    fields.append(f"target={mount['Destination']}")
    if kind != "tmpfs" and mount.get("RW") is False:
        fields.append("readonly")
    text = io.StringIO()
    csv.writer(text, lineterminator="").writerow(fields)
    return text.getvalue()
