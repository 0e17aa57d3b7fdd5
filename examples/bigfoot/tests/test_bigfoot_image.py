"""The image recipe, checked without a Docker engine: the Dockerfile's structure, and its
collectstatic step run here exactly as the build runs it (no secret, no database, no cache)."""

import importlib.metadata
import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from bigfoot_testing import APP_DIR, clean_environment

from pulumi_django.config.app import SECRET_LOOKING, AppConfig

DEFAULTS = AppConfig()
CONTRACT_SECRETS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "DATABASE_PASSWORD", "REDIS_PASSWORD")
STATIC_TAG = re.compile(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for word, argument in self.instructions if word == keyword]

    def position(self, keyword: str, containing: str = "") -> int:
        for index, (word, argument) in enumerate(self.instructions):
            if word == keyword and containing in argument:
                return index
        raise AssertionError(f"no {keyword} {containing!r} in stage {self.name or self.base}")

    def env(self) -> dict[str, str]:
        pairs = (item.split("=", 1) for line in self.all("ENV") for item in shlex.split(line))
        return dict(pairs)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    logical, pending = [], ""
    for line in dockerfile.splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return [
        (word.upper(), rest.strip())
        for word, _, rest in (i.strip().partition(" ") for i in logical)
    ]


def stages(dockerfile: str) -> list[Stage]:
    parsed: list[Stage] = []
    for keyword, argument in instructions(dockerfile):
        if keyword == "FROM":
            base, _, name = argument.partition(" AS ")
            parsed.append(Stage(base.strip(), name.strip() or None))
        elif parsed:
            parsed[-1].instructions.append((keyword, argument))
    return parsed


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (APP_DIR / "Dockerfile").read_text()


@pytest.fixture(scope="module")
def runtime(dockerfile: str) -> Stage:
    return stages(dockerfile)[-1]


def test_is_multi_stage_and_the_runtime_copies_only_the_built_venv(dockerfile: str) -> None:
    builder, runtime = stages(dockerfile)
    assert builder.name and runtime.name
    assert any("pip install" in run for run in builder.all("RUN"))
    assert not any("pip install" in run for run in runtime.all("RUN"))
    assert f"--from={builder.name} /venv /venv" in runtime.all("COPY")


def test_collects_static_files_at_build_time_then_runs_as_a_fixed_non_root_user(
    runtime: Stage,
) -> None:
    (user,) = runtime.all("USER")
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 10000, f"USER {user}: use a fixed uid >= 10000"
    assert any(f"--uid {uid}" in run for run in runtime.all("RUN")), "USER is never created"
    assert runtime.position("RUN", "collectstatic") < runtime.position("USER")
    assert runtime.env()["STATIC_ROOT"] == DEFAULTS.static_root
    assert runtime.env()["DJANGO_SETTINGS_MODULE"] == DEFAULTS.settings_module


def test_serves_the_wsgi_app_on_the_configured_port_with_a_health_check(runtime: Stage) -> None:
    assert runtime.all("EXPOSE") == [str(DEFAULTS.port)]
    (command,) = runtime.all("CMD")
    argv = json.loads(command)
    assert argv[:2] == ["gunicorn", DEFAULTS.wsgi_app]
    assert argv[argv.index("--bind") + 1] == f"0.0.0.0:{DEFAULTS.port}"
    (health,) = runtime.all("HEALTHCHECK")
    assert f"http://127.0.0.1:{DEFAULTS.port}{DEFAULTS.health_check_path}" in health
    assert "urllib.request" in health


def test_puts_no_secret_into_the_image(dockerfile: str) -> None:
    for stage in stages(dockerfile):
        for name in [*stage.env(), *(arg.split("=")[0] for arg in stage.all("ARG"))]:
            assert not SECRET_LOOKING.search(name), f"{name} in ENV/ARG would be baked in"
    for secret in CONTRACT_SECRETS:
        assert secret not in dockerfile


def test_requirements_pin_the_versions_the_app_is_tested_with() -> None:
    lines = (APP_DIR / "requirements.txt").read_text().splitlines()
    pins = [line for line in lines if line and not line.startswith("#")]
    assert pins
    for pin in pins:
        name, _, version = pin.partition("==")
        assert version, f"{pin}: pin an exact version"
        assert importlib.metadata.version(name.split("[")[0]) == version, pin


def test_dockerignore_keeps_tests_and_release_overlays_out() -> None:
    ignored = (APP_DIR / ".dockerignore").read_text().split()
    assert {"tests/", "releases/", "staticfiles/"} <= set(ignored)


def test_collectstatic_as_the_build_runs_it_writes_the_manifest_and_hashed_assets(
    runtime: Stage, tmp_path: Path
) -> None:
    (command,) = [run for run in runtime.all("RUN") if "collectstatic" in run]
    env = clean_environment(
        **{**runtime.env(), "PATH": clean_environment()["PATH"], "STATIC_ROOT": str(tmp_path)}
    )
    assert not any(secret in env for secret in CONTRACT_SECRETS)
    build = subprocess.run(
        ["sh", "-c", command], cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert build.returncode == 0, build.stderr

    manifest = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    templates = (APP_DIR / "sightings" / "templates" / "sightings").glob("*.html")
    referenced = {name for page in templates for name in STATIC_TAG.findall(page.read_text())}
    assert {"sightings/bigfoot.css", "sightings/bigfoot.js"} <= referenced
    for name in referenced:
        hashed = manifest[name]
        stem, suffix = name.rsplit(".", 1)
        assert re.fullmatch(rf"{re.escape(stem)}\.[0-9a-f]{{12}}\.{suffix}", hashed)
        assert (tmp_path / hashed).read_bytes() == (
            APP_DIR / "sightings/static" / name
        ).read_bytes()
