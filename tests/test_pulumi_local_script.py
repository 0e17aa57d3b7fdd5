"""scripts/pulumi-local.sh (`make up`, `make down`): a clear message when Pulumi or Docker is
missing, and the exact pulumi commands otherwise, run against stand-in `pulumi` and `docker`
executables on a PATH that holds nothing else."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "pulumi-local.sh"
BASH = shutil.which("bash") or "/bin/bash"
# Each stand-in appends its arguments and the environment the script gave it to calls.log.
STAND_IN = """#!{bash}
printf '%s %s|%s|%s|%s\\n' "${{0##*/}}" "$*" "${{PULUMI_BACKEND_URL-unset}}" \\
    "${{PULUMI_CONFIG_PASSPHRASE-unset}}" "${{DOCKER_HOST-unset}}" >> {log}
{body}
"""


def _stand_in(bin_dir: Path, name: str, body: str = "exit 0") -> None:
    path = bin_dir / name
    path.write_text(STAND_IN.format(bash=BASH, log=bin_dir / "calls.log", body=body))
    path.chmod(0o755)


def _run(
    bin_dir: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        env={"PATH": str(bin_dir), "HOME": str(bin_dir), **(env or {})},
        timeout=30,
    )


def _calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


def test_without_pulumi_it_says_to_install_the_cli(bin_dir: Path) -> None:
    _stand_in(bin_dir, "docker")
    done = _run(bin_dir, "up")
    assert done.returncode == 1
    assert "the Pulumi CLI is not installed (no `pulumi` on PATH)" in done.stderr
    assert "then run make up again" in done.stderr
    assert _calls(bin_dir) == []


def test_without_docker_it_says_to_install_docker(bin_dir: Path) -> None:
    _stand_in(bin_dir, "pulumi")
    done = _run(bin_dir, "destroy")
    assert done.returncode == 1
    assert "Docker is not installed (no `docker` on PATH)" in done.stderr
    assert "then run make down again" in done.stderr
    assert _calls(bin_dir) == []


def test_with_the_engine_down_it_says_to_start_docker(bin_dir: Path) -> None:
    _stand_in(bin_dir, "pulumi")
    _stand_in(bin_dir, "docker", body='[ "$1" = info ] && exit 1; exit 0')
    done = _run(bin_dir, "up")
    assert done.returncode == 1
    assert "its engine does not answer (`docker info` failed)" in done.stderr
    assert "Start Docker Desktop" in done.stderr
    assert not any(call.startswith("pulumi") for call in _calls(bin_dir))


def test_up_selects_the_local_stack_on_the_file_backend(bin_dir: Path) -> None:
    _stand_in(bin_dir, "pulumi")
    _stand_in(
        bin_dir,
        "docker",
        body='[ "$1" = context ] && echo unix:///run/user/1000/docker.sock; exit 0',
    )
    done = _run(bin_dir, "up", "--yes")
    assert done.returncode == 0, done.stderr
    assert "the local stack's secrets use an empty passphrase" in done.stderr
    # The file backend, the empty passphrase, the Docker context's endpoint.
    environment = "file://~||unix:///run/user/1000/docker.sock"
    assert _calls(bin_dir) == [
        "docker info|unset|unset|unset",
        "docker context inspect --format {{.Endpoints.docker.Host}}|unset|unset|unset",
        f"pulumi stack select --create local --non-interactive|{environment}",
        f"pulumi up --stack local --yes|{environment}",
    ]


def test_a_passphrase_and_docker_host_of_the_user_are_kept(bin_dir: Path) -> None:
    _stand_in(bin_dir, "pulumi")
    _stand_in(bin_dir, "docker")
    done = _run(
        bin_dir,
        "destroy",
        env={"PULUMI_CONFIG_PASSPHRASE": "correct horse", "DOCKER_HOST": "tcp://127.0.0.1:2375"},
    )
    assert done.returncode == 0, done.stderr
    assert "empty passphrase" not in done.stderr
    assert _calls(bin_dir)[-1] == (
        "pulumi destroy --stack local|file://~|correct horse|tcp://127.0.0.1:2375"
    )


def test_an_unknown_action_prints_the_usage(bin_dir: Path) -> None:
    done = _run(bin_dir, "deploy")
    assert done.returncode == 2
    assert "usage: scripts/pulumi-local.sh up|preview|destroy|refresh" in done.stderr
