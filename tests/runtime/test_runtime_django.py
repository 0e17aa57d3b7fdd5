"""The runtime kit inside a stock `django-admin startproject` project that added the two
documented lines: the health endpoint, `collectstatic` as the image build runs it, and
uploads on S3 (moto on loopback) and on the filesystem. Each case runs Django in a fresh
interpreter, as a settings module is read once per process."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from fake_aws import AWS_TEST_ENVIRONMENT, moto_server
from runtime_projects import PROJECT, add_configure, run_django, start_project
from shared_files import made_once

from pulumi_django.cli.rehearsal.servers import LOOPBACK, free_port

SITE_HOST = "site.example"
TASK_IP_HOST = "10.0.3.17:8000"
PROBE = """
import json
from django.test import Client, override_settings
HEALTH = {health!r}
READY = {ready!r}

def ask(path, host, method="get"):
    response = getattr(Client(), method)(path, HTTP_HOST=host)
    return [response.status_code, response.content.decode(), response.get("X-Health-Check"),
            response.get("Cache-Control"), response.get("X-Health-Check-Kind")]

results = {{
    "health": ask(HEALTH, "{task_ip}"),
    "ready": ask(READY, "{task_ip}"),
    "head": ask(HEALTH, "{task_ip}", "head")[:1],
    "page": ask("/", "{task_ip}")[:1],
    "default_path": ask("/healthz", "{site}")[:1],
    "default_ready_path": ask("/readyz", "{site}")[:1],
}}
with override_settings(HEALTH_CHECKS={{"map tiles": "{project}.checks.map_tiles"}}):
    results["own check"] = ask(HEALTH, "{task_ip}")[:2]
    results["own check ready"] = ask(READY, "{task_ip}")[:2]
with override_settings(READINESS_CHECKS={{"map tiles": "{project}.checks.map_tiles"}}):
    results["readiness check"] = ask(HEALTH, "{task_ip}")[:2]
    results["readiness check ready"] = ask(READY, "{task_ip}")[:2]
with override_settings(CACHES={{"default": {{
        "BACKEND": "django.core.cache.backends.dummy.DummyCache"}}}}):
    results["dummy cache"] = ask(READY, "{task_ip}")[:2]
print(json.dumps(results))
"""
APP_CHECKS = """
import os

def map_tiles():
    if not os.environ.get("MAP_TILES_URL"):
        raise LookupError("MAP_TILES_URL is not set")
"""
UPLOAD = """
import json
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
first = default_storage.save("photos/a b.jpg", ContentFile(b"a photo"))
second = default_storage.save("photos/a b.jpg", ContentFile(b"another photo"))
print(json.dumps({"names": [first, second], "url": default_storage.url(first)}))
"""
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = start_project(tmp_path_factory.mktemp("kit"))
    add_configure(project)
    (project / PROJECT / "checks.py").write_text(APP_CHECKS)
    return project


def deployment(tmp_path: Path, **variables: str) -> dict[str, str]:
    return {
        "DJANGO_SECRET_KEY": "tests-only",
        "DJANGO_ALLOWED_HOSTS": SITE_HOST,
        "DJANGO_SECURE_COOKIES": "0",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **variables,
    }


def last_line(stdout: str) -> str:
    """What the script printed last: in a deployment the kit's logging shares stdout."""
    return stdout.splitlines()[-1]


def probe(
    project: Path, health: str = "/healthz", ready: str = "/readyz", **variables: str
) -> dict[str, Any]:
    code = PROBE.format(
        health=health, ready=ready, task_ip=TASK_IP_HOST, site=SITE_HOST, project=PROJECT
    )
    result = run_django(project, code, **variables)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(last_line(result.stdout)))


@pytest.fixture(scope="module")
def deployed_answers(project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The probe's answers under a deployment's environment, read by several tests (asked
    once for the session's workers)."""
    return made_once(
        tmp_path_factory, "runtime-deployed", lambda where: probe(project, **deployment(where))
    )


def test_health_answers_a_foreign_host_before_allowed_hosts_is_checked(
    deployed_answers: dict[str, Any],
) -> None:
    answers = deployed_answers
    status, body, recognised, cache_control, kind = answers["health"]
    assert (status, body, recognised, kind) == (200, "ok", "pulumi-django-runtime", "liveness")
    assert "no-store" in cache_control
    status, body, recognised, cache_control, kind = answers["ready"]
    assert (status, body, recognised, kind) == (200, "ok", "pulumi-django-runtime", "readiness")
    assert "no-store" in cache_control
    assert answers["head"] == [200]
    assert answers["page"] == [400]  # pages still refuse the task's IP as Host
    assert answers["dummy cache"] == [200, "ok"]  # a cache that keeps nothing is not checked


def test_the_projects_checks_of_this_process_fail_both_and_of_other_services_readiness_only(
    deployed_answers: dict[str, Any],
) -> None:
    """HEALTH_CHECKS (configuration, local files) take the task out of service: a release
    missing a setting never becomes healthy. READINESS_CHECKS (a service over the network) only
    tell people and alarms: its outage must not get every task replaced."""
    answers = deployed_answers
    unavailable = [503, "map tiles unavailable: LookupError"]
    assert answers["own check"] == answers["own check ready"] == unavailable
    assert answers["readiness check"] == [200, "ok"]
    assert answers["readiness check ready"] == unavailable


def test_the_health_and_readiness_paths_follow_the_stack(project: Path, tmp_path: Path) -> None:
    answers = probe(
        project,
        "/-/alive",
        "/-/ready",
        **deployment(tmp_path),
        DJANGO_HEALTH_CHECK_PATH="/-/alive",
        DJANGO_READINESS_PATH="/-/ready",
    )
    assert [answers["health"][:2], answers["health"][4]] == [[200, "ok"], "liveness"]
    assert [answers["ready"][:2], answers["ready"][4]] == [[200, "ok"], "readiness"]
    assert answers["default_path"] == answers["default_ready_path"] == [404]


def test_liveness_answers_without_the_database_and_readiness_says_it_is_unreachable(
    project: Path, tmp_path: Path
) -> None:
    """A database failover must not fail the load balancer's and the container checks (they
    would get every task replaced); readiness reports it, with a short reason."""
    nowhere = f"postgres://app@{LOOPBACK}:{free_port()}/app"
    answers = probe(
        project, **deployment(tmp_path, DATABASE_URL=nowhere, DATABASE_SSLMODE="disable")
    )
    assert answers["health"][:2] == [200, "ok"]
    assert answers["ready"][:2] == [503, "database unavailable: OperationalError"]


def test_one_path_for_both_is_readiness_as_the_health_path_was_before(
    project: Path, tmp_path: Path
) -> None:
    nowhere = f"postgres://app@{LOOPBACK}:{free_port()}/app"
    answers = probe(
        project,
        "/healthz",
        "/healthz",
        **deployment(tmp_path, DATABASE_URL=nowhere, DATABASE_SSLMODE="disable"),
        DJANGO_READINESS_PATH="/healthz",
    )
    assert answers["health"][:2] == [503, "database unavailable: OperationalError"]
    assert answers["health"][4] == "readiness"


def test_a_check_named_in_both_settings_stops_the_server_at_start(
    project: Path, tmp_path: Path
) -> None:
    code = (
        "from django.test import Client, override_settings\n"
        f"check = '{PROJECT}.checks.map_tiles'\n"
        "both = {'HEALTH_CHECKS': {'tiles': check}, 'READINESS_CHECKS': {'tiles': check}}\n"
        "with override_settings(**both):\n"
        "    try:\n"
        "        Client().get('/healthz')\n"
        "    except Exception as error:\n"
        "        print(type(error).__name__, error)\n"
    )
    result = run_django(project, code, **deployment(tmp_path))
    assert last_line(result.stdout) == (
        "ImproperlyConfigured READINESS_CHECKS['tiles']: HEALTH_CHECKS has a check of that "
        "name; rename one"
    )


def test_collectstatic_as_the_image_build_runs_it_needs_no_secret(
    project: Path, tmp_path: Path
) -> None:
    static_root = tmp_path / "static"
    result = run_django(
        project,
        "from django.core.management import call_command\n"
        "call_command('collectstatic', '--noinput', verbosity=0)",
        STATIC_ROOT=str(static_root),
    )
    assert result.returncode == 0, result.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    hashed = manifest["admin/css/base.css"]
    assert hashed != "admin/css/base.css"
    assert (static_root / hashed).is_file()


def test_uploads_go_to_media_root_in_local_docker_and_the_rehearsal(
    project: Path, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    result = run_django(project, UPLOAD, **deployment(tmp_path, MEDIA_ROOT=str(media)))
    assert result.returncode == 0, result.stderr
    uploaded = json.loads(last_line(result.stdout))
    first, second = uploaded["names"]
    assert first == "photos/a b.jpg" and second != first  # never overwritten
    assert (media / first).read_bytes() == b"a photo"
    assert uploaded["url"] == "/media/photos/a%20b.jpg"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Any:
    """A client of the moto server (one: each new one reads the S3 model again)."""
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def upload_to_s3(project: Path, tmp_path: Path, s3: Any, **media: str) -> dict[str, Any]:
    bucket = f"media-{free_port()}"
    endpoint = s3.meta.endpoint_url
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    variables = deployment(
        tmp_path,
        **AWS_TEST_ENVIRONMENT,
        AWS_ENDPOINT_URL_S3=endpoint,
        MEDIA_BUCKET=bucket,
        MEDIA_REGION=REGION,
        **media,
    )
    result = run_django(project, UPLOAD, **variables)
    assert result.returncode == 0, result.stderr
    listed = s3.list_objects_v2(Bucket=bucket)
    return {
        **json.loads(last_line(result.stdout)),
        "keys": sorted(o["Key"] for o in listed["Contents"]),
    }


def test_private_media_on_s3_gets_urls_that_expire(
    project: Path, tmp_path: Path, s3: Any, s3_endpoint: str
) -> None:
    uploaded = upload_to_s3(project, tmp_path, s3, MEDIA_URL_EXPIRY_SECONDS="600")
    first, second = uploaded["names"]
    assert first == "photos/a b.jpg" and second != first
    assert uploaded["keys"] == sorted([f"media/{first}", f"media/{second}"])
    url = uploaded["url"]
    assert url.startswith(f"{s3_endpoint}/") and "/media/photos/a%20b.jpg?" in url
    assert "X-Amz-Expires=600" in url and "X-Amz-Signature=" in url
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - moto on loopback
        assert response.read() == b"a photo"


def test_public_media_urls_are_media_url_plus_the_name(
    project: Path, tmp_path: Path, s3: Any
) -> None:
    uploaded = upload_to_s3(project, tmp_path, s3, MEDIA_ACCESS="public")
    assert uploaded["url"] == "/media/photos/a%20b.jpg"  # CloudFront: /media/x -> key media/x
    assert "media/photos/a b.jpg" in uploaded["keys"]
    cdn = upload_to_s3(
        project,
        tmp_path,
        s3,
        MEDIA_ACCESS="public",
        MEDIA_URL="https://cdn.example/uploads/",
        MEDIA_LOCATION="uploads",
    )
    assert cdn["url"] == "https://cdn.example/uploads/photos/a%20b.jpg"
    assert "uploads/photos/a b.jpg" in cdn["keys"]


def test_a_stock_project_still_checks_clean_on_a_laptop(project: Path) -> None:
    """No deployment variables at all: the project's own SQLite and DEBUG, as before."""
    result = run_django(
        project,
        "from django.conf import settings\n"
        "from django.core.management import call_command\n"
        "call_command('check')\n"
        "print(settings.DATABASES['default']['ENGINE'], settings.DEBUG)",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["django.db.backends.sqlite3", "True"]
