"""`pulumi-django render proxy|app-server`: the stack's own config, rendered and checked."""

from __future__ import annotations

import re
import shlex
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from pulumi_django.cli import main
from pulumi_django.cli.plan import Plan
from pulumi_django.cli.rehearsal.proxies import ProxyServer, check_config

PROJECT = {"name": "render-test", "runtime": "python"}


@pytest.fixture
def project() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pd-render-") as directory:
        path = Path(directory)
        (path / "Pulumi.yaml").write_text(yaml.safe_dump(PROJECT))
        (path / "__main__.py").write_text("")
        yield path


def write_stack(project: Path, stack: str, config: dict[str, object]) -> None:
    document = {"config": {f"django:{key}": value for key, value in config.items()}}
    (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))


def render(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["render", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_proxy_config_of_the_dev_stack_passes_the_servers_check(
    server: ProxyServer, project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(
        project,
        "dev",
        {
            "target": "aws",
            "proxy": {"maxBodyMb": 20, "port": 8443},
            "network": {"cidr": "10.20.0.0/16"},
        },
    )
    runtime = project / "runtime"
    runtime.mkdir()
    code, out, err = render(
        capsys, "proxy", "--server", server, "--cwd", str(project), "--runtime-dir", str(runtime)
    )
    assert (code, err) == (0, "")
    assert "10.20.0.0/16" in out
    assert ("client_max_body_size 20m;" if server == "nginx" else "max_size 20MiB") in out
    config = project / "rendered"
    config.write_text(out)
    check_config(server, config, runtime)


def test_proxy_server_defaults_to_the_stacks_choice(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(project, "prod", {"target": "aws", "proxy": {"server": "caddy"}})
    code, out, _ = render(capsys, "proxy", "--stack", "prod", "--cwd", str(project))
    assert code == 0
    assert "reverse_proxy 127.0.0.1:8000" in out


def test_extra_trusted_ranges_replace_the_vpc_range(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["proxy", "--server", "nginx", "--cwd", str(project)]
    code, out, _ = render(capsys, *args, "--trusted-cidr", "172.31.0.0/16")
    assert code == 0
    assert "set_real_ip_from 172.31.0.0/16;" in out
    assert "10.0.0.0/16" not in out
    code, _, err = render(capsys, *args, "--trusted-cidr", "everyone")
    assert code == 2
    assert "'everyone' is not a CIDR" in err
    code, _, err = render(capsys, *args, "--trusted-cidr", "10.1.2.3/16")
    assert code == 2
    assert "'10.1.2.3/16' is not a CIDR: host bits are set; the network is 10.1.0.0/16" in err


def test_an_existing_vpc_gets_a_note_about_its_range(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = {
        "vpcId": "vpc-0123456789abcdef0",
        "publicSubnetIds": ["subnet-a", "subnet-b"],
        "privateSubnetIds": ["subnet-c", "subnet-d"],
    }
    write_stack(project, "dev", {"target": "aws", "network": {"existing": existing}})
    code, _, err = render(capsys, "proxy", "--cwd", str(project))
    assert code == 0
    assert "--trusted-cidr" in err


def test_app_server_settings_follow_the_stack(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(
        project,
        "dev",
        {
            "target": "aws",
            "fleet": {"cpu": 1024, "memory": 2048},
            "loadBalancer": {"idleTimeoutSeconds": 120},
        },
    )
    code, out, _ = render(capsys, "app-server", "--cwd", str(project))
    assert code == 0
    settings = dict(
        line.split(" = ", 1) for line in out.splitlines() if " = " in line and line[0] != "#"
    )
    assert settings["workers"] == "3"
    assert settings["keepalive"] == "125"
    assert settings["wsgi_app"] == "'bigfoot.wsgi:application'"


def test_uvicorn_stacks_get_the_uvicorn_command(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(project, "dev", {"target": "aws", "app": {"server": "uvicorn", "workers": 3}})
    code, out, _ = render(capsys, "app-server", "--cwd", str(project))
    assert code == 0
    command = shlex.split(out.splitlines()[-1])
    assert command[:2] == ["uvicorn", "bigfoot.asgi:application"]
    assert command[command.index("--workers") + 1] == "3"


def test_without_a_dev_stack_the_defaults_are_rendered(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = render(capsys, "app-server", "--cwd", str(project))
    assert code == 0
    assert "bind = '127.0.0.1:8000'" in out


def test_a_missing_stack_is_a_usage_error(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = render(capsys, "app-server", "--stack", "staging", "--cwd", str(project))
    assert code == 2
    assert "no stack file Pulumi.staging.yaml" in err


def test_invalid_config_is_reported_per_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_stack(project, "dev", {"target": "aws", "proxy": {"maxBodyMb": 0}})
    code, out, err = render(capsys, "proxy", "--cwd", str(project))
    assert (code, out) == (2, "")
    assert err.startswith("pulumi-django render: error: stack dev: invalid stack config")
    assert "django:proxy.maxBodyMb" in err


@pytest.mark.parametrize("server", ["nginx", "caddy"])
def test_a_local_stack_renders_what_its_proxy_switch_uploads(
    server: str,
    project_root: Path,
    stack_plan: Callable[[str], Plan],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render(
        capsys, "proxy", "--stack", "local", "--cwd", str(project_root), "--server", server
    )
    assert code == 0
    assert "random suffix" in err
    if server != "nginx":  # the shipped local stack runs nginx
        assert "reverse_proxy bigfoot-local-app-1:8000 bigfoot-local-app-2:8000" in out
        return
    switch = stack_plan("local").recording.one(name="bigfoot-local-proxy-switch-run")
    uploaded = switch.inputs["uploads"][0]["content"]
    # The mock names every container `<resource name>-a1b2c3d`; Docker picks its own suffix.
    assert out == re.sub(r"(bigfoot-local-app-\d)-a1b2c3d", r"\1", uploaded)


def test_a_local_stack_takes_no_trusted_cidr(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["proxy", "--stack", "local", "--cwd", str(project_root), "--trusted-cidr", "10.0.0.0/8"]
    code, _, err = render(capsys, *args)
    assert code == 2
    assert "AWS stacks only" in err


def test_a_missing_project_directory_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = render(capsys, "proxy", "--cwd", "/nonexistent/project")
    assert code == 2
    assert "--cwd /nonexistent/project: no such directory" in err
