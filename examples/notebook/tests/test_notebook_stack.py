"""pulumi-django's commands on the Notebook app's own Pulumi project: the offline plans of its
stacks and the migration safety check, from a first deploy to its two releases."""

import json
from pathlib import Path
from typing import Any

import pytest
from notebook_testing import (
    APP_DIR,
    PRODUCTION_SETTINGS,
    clean_environment,
    manage_ok,
    pulumi_django,
    pulumi_django_here,
    release,
)

APP_MIGRATIONS = ["journal.0001_initial", "journal.0002_inbox"]
NEW_MIGRATION = "journal.0003_entry_tags"


def app_container(plan: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The app container's command and plain environment, on either target."""
    for resource in plan["resources"]:
        if resource["type"] == "aws:ecs/taskDefinition:TaskDefinition":
            (app,) = (
                c
                for c in json.loads(resource["inputs"]["containerDefinitions"])
                if c["name"] == "app"
            )
            return app["command"], {e["name"]: e["value"] for e in app["environment"]}
        if resource["name"].endswith("-app-1"):
            inputs = resource["inputs"]
            pairs = (e.split("=", 1) for e in inputs["envs"] if "=" in e)
            return inputs["command"], dict(pairs)
    raise AssertionError("the plan has no app container")


@pytest.mark.parametrize(("stack", "target"), [("dev", "aws"), ("local", "local")])
def test_plan_builds_the_app_from_its_own_directory(
    stack: str, target: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    done = pulumi_django_here(monkeypatch, capsys, "plan", "--stack", stack, "--json", "-")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert (plan["project"], plan["stack"], plan["target"]) == ("notebook", stack, target)
    readiness = plan["appReadiness"]
    assert (readiness["ready"], readiness["errors"], readiness["warnings"]) == (True, [], [])
    assert (readiness["settingsModule"], readiness["server"]) == (PRODUCTION_SETTINGS, "uvicorn")
    (build,) = (
        r["inputs"]["build"] for r in plan["resources"] if r["type"] == "docker:index/image:Image"
    )
    assert (build["context"], build["dockerfile"]) == (".", "Dockerfile")
    command, environment = app_container(plan)
    assert command[:2] == ["uvicorn", "notebook.asgi:application"]
    assert environment["DJANGO_SETTINGS_MODULE"] == PRODUCTION_SETTINGS
    check = plan["migrationCheck"]
    assert set(APP_MIGRATIONS) <= set(check["checked"])
    assert (check["findings"], check["skipped"]) == ([], None)
    assert check["appDir"] == str(APP_DIR)


def check_migrations(app_dir: Path, database_url: str) -> tuple[int, dict[str, Any]]:
    done = pulumi_django(
        "check-migrations",
        "--settings",
        PRODUCTION_SETTINGS,
        "--pythonpath",
        str(app_dir),
        "--database-url",
        database_url,
        "--json",
    )
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.mark.slow
def test_check_migrations_passes_a_first_deploy_and_judges_each_release(
    database_url: str, tmp_path: Path
) -> None:
    code, first = check_migrations(APP_DIR, database_url)
    assert (code, first["findings"], first["firstDeploy"]) == (0, [], True)
    assert {"auth.0001_initial", "admin.0001_initial", *APP_MIGRATIONS} <= set(first["checked"])

    manage_ok(APP_DIR, clean_environment(DATABASE_URL=database_url), "migrate", "--no-input")
    code, safe = check_migrations(release("v2", tmp_path), database_url)
    assert (code, safe["checked"], safe["findings"]) == (0, [NEW_MIGRATION], [])

    code, unsafe = check_migrations(release("v2-unsafe", tmp_path), database_url)
    assert (code, unsafe["checked"]) == (1, [NEW_MIGRATION])
    assert [(f["rule"], f["severity"]) for f in unsafe["findings"]] == [
        ("not-null-column-without-db-default", "unsafe")
    ]
