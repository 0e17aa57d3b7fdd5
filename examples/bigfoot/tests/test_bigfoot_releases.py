"""The release variants the rehearsal rolls out: each is built from the app plus its overlay,
and each does on a real PostgreSQL what its description promises."""

from collections.abc import Callable
from pathlib import Path

import pytest
from bigfoot_testing import (
    APP_DIR,
    Services,
    collect_static,
    http_request,
    manage,
    manage_ok,
    serving,
    submit_form,
)
from shared_files import made_once

from pulumi_django.cli.rehearsal.releases import overlay_chain, read_releases
from pulumi_django.cli.rehearsal.sources import build_variant
from pulumi_django.errors import UsageError

RELEASES = ("v1", "v2", "v2-unsafe", "v2-broken", "v2-new-job")
MIGRATION = "sightings/migrations/0002_sighting_gdpr_accepted.py"
# v2-broken's whole copy of the settings: the app's, plus its extra health check.
BROKEN_HEALTH_CHECK = """\
# Run by /healthz (liveness), and by /readyz after its database and cache checks.
HEALTH_CHECKS = {"map tiles": "sightings.health.check_map_tiles"}

"""
# v2-new-job's whole copy of sightings/jobs.py: the app's, plus a job and its enqueueing.
NEW_JOB = """@job("sightings.notify_rangers")
def notify_rangers(sighting_id: int, consent: bool) -> None:
    \"\"\"New in this release: tells the rangers, naming the reporter only with their consent.\"\"\"
    logger.info("rangers notified of sighting %s (reporter named: %s)", sighting_id, consent)


"""
ENQUEUE_NEW_JOB = """
    enqueue("sightings.notify_rangers", sighting_id=sighting.pk, consent=sighting.gdpr_accepted)"""
# What a server still running v1 does while (or after) v2's migration runs.
V1_INSERT = """
from datetime import UTC, datetime
from sightings.models import Sighting
Sighting.objects.create(location="Bluff Creek", seen_at=datetime(1967, 10, 20, tzinfo=UTC),
                        description="Reported by a server still running v1.", reporter="v1")
"""
COUNT_CONSENTS = """
from sightings.models import Sighting
print(sorted(Sighting.objects.values_list("reporter", "gdpr_accepted")))
"""
REPORT = {
    "location": "Willow Creek",
    "seen_at": "2024-10-03T06:15",
    "description": "Crossed the road in two strides.",
    "reporter": "v2",
}


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("releases")
    return {name: build_variant(APP_DIR, name, root / name) for name in RELEASES}


@pytest.fixture(scope="module")
def collected(
    builds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], tuple[Path, dict[str, str]]]:
    """`collected(release)`: its STATIC_ROOT and manifest, collected once for the session's
    workers."""
    done: dict[str, tuple[Path, dict[str, str]]] = {}

    def get(release: str) -> tuple[Path, dict[str, str]]:
        if release not in done:
            done[release] = made_once(
                tmp_path_factory,
                f"bigfoot-static-{release}",
                lambda directory: (directory, collect_static(builds[release], directory)),
            )
        return done[release]

    return get


def test_the_app_ships_exactly_these_releases() -> None:
    assert sorted(read_releases(APP_DIR)) == sorted(RELEASES)
    assert [r.name for r in overlay_chain(read_releases(APP_DIR), "v2-broken")] == [
        "v2",
        "v2-broken",
    ]


def test_a_release_is_the_app_plus_its_overlays_and_nothing_else(builds: dict[str, Path]) -> None:
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    def changed(base: Path, release: Path) -> set[str]:
        return {
            name
            for name in files(release)
            if not (base / name).exists()
            or (base / name).read_bytes() != (release / name).read_bytes()
        }

    v1 = files(builds["v1"])
    assert {"manage.py", "requirements.txt", "bigfoot/settings.py"} <= v1
    # What the image's /app holds: the .dockerignore leaves out the rest.
    assert not [n for n in v1 if n.startswith(("tests/", "releases/")) or "__pycache__" in n]
    assert not {"Dockerfile", ".dockerignore"} & v1
    assert changed(APP_DIR, builds["v1"]) == set()

    overlays = read_releases(APP_DIR)
    added = {
        "v2": {MIGRATION},
        "v2-unsafe": {MIGRATION},
        "v2-broken": {MIGRATION, "sightings/health.py"},
        "v2-new-job": {MIGRATION},
    }
    for release, new_files in added.items():
        expected = {str(f) for r in overlay_chain(overlays, release) for f in r.files()}
        assert changed(builds["v1"], builds[release]) == expected
        assert files(builds[release]) - v1 == new_files

    migration = builds["v2"] / MIGRATION
    unsafe = builds["v2-unsafe"] / MIGRATION
    assert "BooleanField(db_default=False)" in migration.read_text()
    assert "BooleanField(default=False)" in unsafe.read_text()


def test_v2_broken_settings_are_the_apps_plus_the_failing_health_check() -> None:
    """An overlay replaces whole files: this keeps v2-broken's copy of settings.py in step."""
    app = (APP_DIR / "bigfoot/settings.py").read_text()
    broken = (APP_DIR / "releases/v2-broken/bigfoot/settings.py").read_text()
    assert broken.replace(BROKEN_HEALTH_CHECK, "") == app
    assert BROKEN_HEALTH_CHECK in broken


def test_v2_new_job_jobs_are_the_apps_plus_the_new_job_it_enqueues() -> None:
    """An overlay replaces whole files: this keeps v2-new-job's copy of jobs.py in step."""
    app = (APP_DIR / "sightings/jobs.py").read_text()
    new_job = (APP_DIR / "releases/v2-new-job/sightings/jobs.py").read_text()
    assert new_job.replace(NEW_JOB, "").replace(ENQUEUE_NEW_JOB, "") == app
    assert NEW_JOB in new_job and ENQUEUE_NEW_JOB in new_job


def test_v2_gives_the_stylesheet_a_new_hashed_name_and_keeps_the_script(
    collected: Callable[[str], tuple[Path, dict[str, str]]],
) -> None:
    _, v1 = collected("v1")
    _, v2 = collected("v2")
    assert v1["sightings/bigfoot.css"] != v2["sightings/bigfoot.css"]
    assert v1["sightings/bigfoot.js"] == v2["sightings/bigfoot.js"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("release", "old_code_can_insert"), [("v2", True), ("v2-broken", True), ("v2-unsafe", False)]
)
def test_old_code_inserts_after_the_release_migrates(
    release: str,
    old_code_can_insert: bool,
    builds: dict[str, Path],
    services: Services,
    tmp_path: Path,
) -> None:
    # The app's migrations applied: v1's (the app is v1, test above).
    env = services.app_environment(tmp_path / "static", migrated=True)
    migrated = manage_ok(builds[release], env, "migrate", "--noinput")
    assert "Applying sightings.0002_sighting_gdpr_accepted... OK" in migrated

    old_insert = manage(builds["v1"], env, "shell", "--verbosity", "0", "--command", V1_INSERT)
    if old_code_can_insert:
        assert old_insert.returncode == 0, old_insert.stderr
        stored = manage_ok(
            builds[release], env, "shell", "--verbosity", "0", "--command", COUNT_CONSENTS
        )
        assert stored.strip() == "[('v1', False)]"
    else:
        assert old_insert.returncode != 0
        assert "NotNullViolation" in old_insert.stderr
        assert 'null value in column "gdpr_accepted"' in old_insert.stderr


@pytest.mark.slow
def test_v2_asks_for_consent_and_v2_broken_fails_its_health_check(
    builds: dict[str, Path],
    services: Services,
    tmp_path: Path,
    collected: Callable[[str], tuple[Path, dict[str, str]]],
) -> None:
    static_root, _ = collected("v2")
    env = services.app_environment(static_root)
    manage_ok(builds["v2"], env, "migrate", "--noinput")

    with serving(builds["v2"], env, "gunicorn", tmp_path / "v2.log") as port:
        assert http_request(port, "/healthz").status == 200
        form, created = submit_form(port, "/sightings/new/", {**REPORT, "gdpr_accepted": "on"})
        assert 'type="checkbox" name="gdpr_accepted"' in form.body
        assert "checked" not in form.body, "consent must not be given by default"
        assert created.status == 303
    assert manage_ok(
        builds["v2"], env, "shell", "--verbosity", "0", "--command", COUNT_CONSENTS
    ).strip() == ("[('v2', True)]")

    with serving(builds["v2-broken"], env, "gunicorn", tmp_path / "v2-broken.log") as port:
        health = http_request(port, "/healthz")
        assert (health.status, health.body) == (503, "map tiles unavailable: LookupError")
        assert http_request(port, "/").status == 200


def write_release(app: Path, name: str, toml: str) -> None:
    (app / "releases" / name).mkdir(parents=True)
    (app / "releases" / name / "release.toml").write_text(toml)


def test_names_the_known_releases_when_asked_for_an_unknown_one(tmp_path: Path) -> None:
    write_release(tmp_path, "v1", 'description = "first"')
    write_release(tmp_path, "v3", 'description = "third"\nbase = "v2"')
    with pytest.raises(UsageError, match=r"unknown release 'v9'; known releases: v1, v3"):
        build_variant(tmp_path, "v9", tmp_path / "out")
    with pytest.raises(UsageError, match=r"unknown release 'v2' \(base of v3\)"):
        build_variant(tmp_path, "v3", tmp_path / "out")


def test_refuses_bases_that_form_a_cycle(tmp_path: Path) -> None:
    write_release(tmp_path, "a", 'description = "a"\nbase = "b"')
    write_release(tmp_path, "b", 'description = "b"\nbase = "a"')
    with pytest.raises(UsageError, match="base releases form a cycle"):
        build_variant(tmp_path, "a", tmp_path / "out")


def test_a_release_must_say_what_it_changes(tmp_path: Path) -> None:
    write_release(tmp_path, "v1", 'base = "v0"')
    with pytest.raises(UsageError, match=r'set description = "\.\.\."'):
        read_releases(tmp_path)
