"""The Bigfoot app on real PostgreSQL and Redis: Django's own suite, then real app servers."""

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from bigfoot_testing import (
    APP_DIR,
    SITE_HOST,
    Services,
    clean_environment,
    http_request,
    manage,
    open_connections,
    serving,
    submit_form,
)

from pulumi_django.cli.rehearsal.servers import free_port

TASK_IP_HOST = "10.0.3.17:8000"
REPORT = {
    "location": "Bluff Creek",
    "seen_at": "1967-10-20T13:30",
    "description": "Walked across the gravel bar and looked back.",
    "reporter": "Roger",
}
CONCURRENT_CLIENTS = 6
STATIC_REFERENCE = re.compile(r'(?:href|src)="(/static/[^"]+)"')


@pytest.mark.slow
def test_django_suite_passes_against_real_postgresql_and_redis(
    services: Services, tmp_path: Path
) -> None:
    env = services.app_environment(tmp_path / "static")
    result = manage(APP_DIR, env, "test", "tests/django_suite", "--noinput", "--verbosity", "2")
    assert result.returncode == 0, result.stderr
    database = env["DATABASE_URL"].rsplit("/", 1)[1]
    assert f"Creating test database for alias 'default' ('test_{database}')" in result.stderr
    ran = re.search(r"^Ran (\d+) tests?", result.stderr, re.MULTILINE)
    assert ran is not None and int(ran.group(1)) > 0, result.stderr
    assert re.search(r"^OK$", result.stderr, re.MULTILINE), result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("server", ["gunicorn", "uvicorn"])
def test_serves_pages_forms_and_health_under_a_real_app_server(
    server: str, services: Services, collected_static: Path, tmp_path: Path
) -> None:
    static_root = collected_static
    env = services.app_environment(static_root, migrated=True)
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]

    with serving(APP_DIR, env, server, tmp_path / f"{server}.log") as port:
        health = http_request(port, "/healthz", host=TASK_IP_HOST)
        assert (health.status, health.body) == (200, "ok")
        assert "no-store" in health.headers["Cache-Control"]

        form, created = submit_form(port, "/sightings/new/", REPORT)
        assert "; Secure" in form.headers["Set-Cookie"]
        assert (created.status, created.headers["Location"]) == (303, "/"), created.body[:500]

        page = http_request(port, "/")
        assert page.status == 200
        assert "Walked across the gravel bar and looked back." in page.body
        referenced = set(STATIC_REFERENCE.findall(page.body))
        expected = {
            f"/static/{manifest[name]}"
            for name in ("sightings/bigfoot.css", "sightings/bigfoot.js")
        }
        assert referenced == expected

        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["X-Frame-Options"] == "DENY"
        assert http_request(port, "/", host=TASK_IP_HOST).status == 400
        assert "Strict-Transport-Security" not in page.headers
        behind_tls = http_request(port, "/", headers={"X-Forwarded-Proto": "https"})
        assert behind_tls.headers["Strict-Transport-Security"].startswith("max-age=")

        with ThreadPoolExecutor(CONCURRENT_CLIENTS) as clients:
            paths = ["/", "/healthz", "/sightings/new/"] * 20
            statuses = set(clients.map(lambda path: http_request(port, path).status, paths))
        assert statuses == {200}
        # Connections are kept per worker thread under WSGI, closed after each request under
        # ASGI (where each request gets a new thread); they must never pile up.
        assert open_connections(services.postgres, env["DATABASE_URL"]) <= 2


@pytest.mark.slow
def test_readiness_fails_when_the_database_is_unreachable_and_liveness_does_not(
    services: Services, tmp_path: Path
) -> None:
    env = clean_environment(
        DJANGO_SECRET_KEY="bigfoot-tests-only",  # noqa: S106
        DJANGO_ALLOWED_HOSTS=SITE_HOST,
        DATABASE_URL=f"postgres://bigfoot@127.0.0.1:{free_port()}/bigfoot",
        REDIS_URL=services.redis.url(),
        STATIC_ROOT=str(tmp_path / "static"),
    )
    with serving(APP_DIR, env, "gunicorn", tmp_path / "gunicorn.log") as port:
        ready = http_request(port, "/readyz", host=TASK_IP_HOST)
        health = http_request(port, "/healthz", host=TASK_IP_HOST)
    assert (ready.status, ready.body) == (503, "database unavailable: OperationalError")
    # The load balancer's and the container checks: a failover must not get the task replaced.
    assert (health.status, health.body) == (200, "ok")
