"""The image recipe, checked without a Docker engine: the Dockerfile's structure, and its
collectstatic step run here exactly as the build runs it (no secret, no database, no cache)."""

import importlib.metadata
import json
import re
import subprocess
from pathlib import Path

import pytest
from bigfoot_testing import APP_DIR, clean_environment
from dockerfile_stages import Stage, stages
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from pulumi_django.config.app import SECRET_LOOKING, AppConfig

DEFAULTS = AppConfig()
CONTRACT_SECRETS = ("DJANGO_SECRET_KEY", "DATABASE_URL", "DATABASE_PASSWORD", "REDIS_PASSWORD")
KIT = "pulumi-django-runtime"
KIT_SOURCE = re.compile(
    r"git\+https://github\.com/pulumi-django/pulumi-django@v(?P<version>[^#]+)"
    r"#subdirectory=runtime"
)
STATIC_TAG = re.compile(r"""{%\s*static\s+['"]([^'"]+)['"]\s*%}""")


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
    pins = [Requirement(line) for line in lines if line and not line.startswith("#")]
    assert pins
    for pin in pins:
        installed = importlib.metadata.version(pin.name)
        if pin.url:
            # The runtime kit, from this repository at the tag of the version tested here.
            source = KIT_SOURCE.fullmatch(pin.url)
            assert pin.name == KIT and source, f"{pin}: only the kit may come from a URL"
            assert source["version"] == installed, f"{pin}: the kit tested here is {installed}"
        else:
            (specifier,) = pin.specifier
            assert specifier.operator == "==", f"{pin}: pin an exact version"
            assert specifier.version == installed, pin
    pinned = {canonicalize_name(pin.name) for pin in pins}
    kit_on_aws = [
        Requirement(line.split(";")[0])
        for line in importlib.metadata.requires(KIT) or []
        if 'extra == "aws"' in line
    ]
    assert kit_on_aws
    for needed in kit_on_aws:
        assert canonicalize_name(needed.name) in pinned, f"pin {needed.name}, the kit needs it"


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
