"""`pulumi-django plan` on a program of one's own (tests/fixtures/own_program): pulumi-django's
components built directly, no `django:` config. The plan shows the release order of what the
program deploys and checks the app it builds, read from its recording: Bigfoot (Gunicorn, its
default settings) in the `dev` stack, Notebook (Uvicorn, its production settings, an
acknowledged migration) in the `notebook` one."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from fixture_repos import app_history, apply_variant, commit_all

from pulumi_django.cli import main
from pulumi_django.cli.git_plan import review_against
from pulumi_django.cli.plan import Plan, plan_stack, render_text
from pulumi_django.cli.program_app import NO_CHECK, NoAppDeployed, program_app_config

ROOT = Path(__file__).resolve().parent.parent
PROGRAM = ROOT / "tests" / "fixtures" / "own_program"
CLI = [str(Path(sys.executable).parent / "pulumi-django")]
STEPS = ["image", "check", "migrate", "fleet"]
APPS = {
    "dev": ("bigfoot", "bigfoot.settings", "gunicorn", "sightings.0001_initial"),
    "notebook": ("notebook", "notebook.settings.production", "uvicorn", "journal.0002_inbox"),
}


@pytest.fixture(scope="module")
def program_plan() -> Callable[[str], Plan]:
    """`program_plan("dev")`: the fixture program's plan of a stack (cached: plans are slow)."""
    cache: dict[str, Plan] = {}

    def get(stack: str) -> Plan:
        if stack not in cache:
            cache[stack] = plan_stack(PROGRAM, stack)
        return cache[stack]

    return get


def own_program(directory: Path, app: dict[str, Any], **config: Any) -> Path:
    """The fixture program copied to `directory`, its `dev` stack deploying `app`."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("Pulumi.yaml", "__main__.py"):
        shutil.copy(PROGRAM / name, directory / name)
    values = {"aws:region": "eu-west-1", "shop:app": app}
    values |= {f"shop:{key}": value for key, value in config.items()}
    (directory / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": values}))
    return directory


@pytest.mark.parametrize("stack", sorted(APPS))
def test_the_plan_checks_the_app_the_program_builds(
    program_plan: Callable[[str], Plan], stack: str
) -> None:
    app, settings_module, server, migration = APPS[stack]
    plan = program_plan(stack)
    document = plan.as_json()
    assert document["target"] == "program"
    assert [step["step"] for step in document["releaseOrder"]] == STEPS
    assert all(step["ordered"] for step in document["releaseOrder"][1:])
    app_dir = str(ROOT / "examples" / app)
    check = document["migrationCheck"]
    assert (check["appDir"], check["skipped"], check["firstDeploy"]) == (app_dir, None, True)
    assert migration in check["checked"]
    readiness = document["appReadiness"]
    assert readiness["appDir"] == app_dir and readiness["ready"], readiness
    assert (readiness["settingsModule"], readiness["server"]) == (settings_module, server)
    text = render_text(plan)
    assert f"Stack {stack} (project shop, target program)" in text
    assert f"App readiness ({app}, " in text and f"Migration safety check ({app}, " in text


def test_what_the_program_gives_its_components_reaches_the_checks(
    program_plan: Callable[[str], Plan],
) -> None:
    assert program_plan("dev").config is not None
    config = program_plan("notebook").config
    assert config is not None
    assert (config.app.context, config.app.asgi_app) == (
        "../../../examples/notebook",
        "notebook.asgi:application",
    )
    assert [entry.migration for entry in config.migrations.acknowledged] == ["journal.0002_inbox"]


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_a_ready_made_stack_read_as_a_program_is_the_same_app(
    stack_plan: Callable[[str], Plan], stack: str
) -> None:
    """What the recording shows of the app, on either target, is what the stack configured."""
    plan = stack_plan(stack)
    assert plan.config is not None
    shown = program_app_config(plan.recording, ROOT).app
    fields = set(shown.model_fields_set)
    assert {"context", "dockerfile", "settings_module", "server", "wsgi_app"} <= fields
    assert shown.model_dump(include=fields) == plan.config.app.model_dump(include=fields)


def test_findings_name_the_program_s_appconfig_fields(tmp_path: Path) -> None:
    app = {"context": str(ROOT / "examples" / "bigfoot"), "settingsModule": "bigfoot.nosuch"}
    plan = plan_stack(own_program(tmp_path, app), "dev", python=sys.executable)
    assert plan.readiness is not None and not plan.ready
    assert plan.readiness.python == sys.executable
    assert plan.readiness.errors[0].startswith("AppConfig.settings_module: bigfoot.nosuch ")
    assert plan.migrations.skipped == (
        f"AppConfig.settings_module: no module 'bigfoot.nosuch' in {ROOT / 'examples' / 'bigfoot'}"
    )


def test_an_acknowledgement_of_no_migration_is_reported(tmp_path: Path) -> None:
    app = {"context": str(ROOT / "examples" / "bigfoot")}
    typo = {"migration": "sightings.0099_none", "reason": "A migration that does not exist."}
    plan = plan_stack(own_program(tmp_path, app, migrations={"acknowledged": [typo]}), "dev")
    assert plan.migrations.result is not None
    assert plan.migrations.result.unknown_acknowledgements == ["sightings.0099_none"]


@pytest.mark.parametrize(
    ("contexts", "skipped"),
    [
        (["examples"], "the program builds no image whose build context has a manage.py, so "),
        (["examples/bigfoot", "examples/notebook"], "the program builds 2 Django app images ("),
    ],
)
def test_images_that_are_no_single_django_app_are_not_checked(
    stack_plan: Callable[[str], Plan], contexts: list[str], skipped: str
) -> None:
    recording = stack_plan("dev").recording
    [image] = [r for r in recording.resources if r.type == "docker:index/image:Image"]
    images = [
        dataclasses.replace(
            image,
            urn=f"{image.urn}{'-again' * number}",  # the first keeps the URN others depend on
            inputs={"build": {"context": context, "dockerfile": f"{context}/Dockerfile"}},
        )
        for number, context in enumerate(contexts)
    ]
    others = [r for r in recording.resources if r is not image]
    with pytest.raises(NoAppDeployed, match=re.escape(skipped)):
        program_app_config(dataclasses.replace(recording, resources=others + images), ROOT)


def test_a_program_that_runs_no_check_is_told_so(tmp_path: Path) -> None:
    app = {"context": str(ROOT / "examples" / "bigfoot")}
    plan = plan_stack(own_program(tmp_path, app, migrations={"check": False}), "dev")
    assert [step.step.key for step in plan.release_order()] == ["image", "migrate", "fleet"]
    assert (plan.migrations.result, plan.migrations.skipped) == (None, NO_CHECK)
    assert plan.ready


def test_the_cli_on_one_s_own_program(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["plan", "--cwd", str(PROGRAM), "--stack", "notebook"])
    done = capsys.readouterr()
    assert code == 0, done.err
    assert "Stack notebook (project shop, target program)" in done.out
    assert "  1. image built " in done.out and "  4. app fleet updated " in done.out
    assert "App readiness (notebook, " in done.out and "): ready\n" in done.out


def test_diff_against_judges_the_migrations_the_program_s_app_added(tmp_path: Path) -> None:
    repository = tmp_path / "repo"
    app_history("bigfoot", repository, subdirectory="app")
    project = own_program(repository / "program", {"context": "../app"})
    commit_all(repository, "the program")
    apply_variant("bigfoot", repository / "app", "v2-unsafe")
    diff = review_against(project, "dev", "main")
    assert not diff.added and not diff.removed
    assert diff.migrations is not None
    assert diff.migrations.added == ["sightings/migrations/0002_sighting_gdpr_accepted.py"]
    assert [(f["migration"], f["severity"]) for f in diff.migrations.findings] == [
        ("sightings.0002_sighting_gdpr_accepted", "unsafe")
    ]


def test_a_release_step_not_ordered_fails_the_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An AppService that does not wait for its MigrationJob: the plan prints in full, says
    NOT ORDERED, names the step and its fix on stderr's last line, and exits 1 for CI."""
    project = own_program(tmp_path / "program", {"context": str(ROOT / "examples" / "bigfoot")})
    program = project / "__main__.py"
    waits = "        after=[migrations],\n"
    assert program.read_text().count(waits) == 1
    program.write_text(program.read_text().replace(waits, ""))
    written = tmp_path / "plan.json"
    code = main(["plan", "--cwd", str(project), "--stack", "dev", "--json", str(written)])
    done = capsys.readouterr()
    assert code == 1, done.err
    assert "  4. app fleet updated " in done.out
    assert "(NOT ORDERED after step 3: it can run before it)\n" in done.out
    assert "App readiness (bigfoot, " in done.out and "): ready\n" in done.out
    last = done.err.splitlines()[-1]
    assert last.startswith(
        "pulumi-django plan: release step 4 (app fleet updated: shop-service) is not ordered "
        "after step 3 (migration job): "
    )
    assert "`AppServiceArgs.after=[migrations]`" in last
    steps = json.loads(written.read_text())["releaseOrder"]
    assert [(step["step"], step["ordered"]) for step in steps] == [
        ("image", None),
        ("check", True),
        ("migrate", True),
        ("fleet", False),
    ]


def test_the_plan_s_help_documents_its_exit_codes() -> None:
    done = subprocess.run([*CLI, "plan", "--help"], capture_output=True, text=True, check=True)
    codes = done.stdout.split("exit codes:\n")[1]
    assert [line.split()[0] for line in codes.splitlines() if line[:3].strip().isdigit()] == [
        "0",
        "1",
        "2",
        "130",
    ]
    assert "a release step is not ordered after the one before" in " ".join(codes.split())


def test_a_program_that_crashes_gives_no_plan_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 means a plan was printed; a program's own bug shows its traceback, exit 2."""
    project = own_program(tmp_path, {"context": str(ROOT / "examples" / "bigfoot")})
    (project / "__main__.py").write_text('raise KeyError("no such subnet")\n')
    code = main(["plan", "--cwd", str(project), "--stack", "dev"])
    done = capsys.readouterr()
    assert (code, done.out) == (2, "")
    assert done.err.splitlines()[-1] == "KeyError: 'no such subnet'"


IMAGE_BUILT_ELSEWHERE = """
import pulumi
from pulumi_django import AppService, AppServiceArgs

service = AppService(
    "shop",
    AppServiceArgs(
        cluster="arn:aws:ecs:eu-west-1:111122223333:cluster/platform",
        task_definition_arn="arn:aws:ecs:eu-west-1:111122223333:task-definition/shop:7",
        subnet_ids=["subnet-0a0000000000000a1"],
        security_group_ids=["sg-0a0000000000000a3"],
        target_group="arn:aws:elasticloadbalancing:eu-west-1:111122223333:targetgroup/shop/73e2",
        load_balancer_arn_suffix="app/platform/50dc6c495c0c9188",
    ),
)
pulumi.export("serviceName", service.service_name)
"""


def test_a_program_that_deploys_an_image_built_elsewhere_is_not_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No AppImage, so no Django app to check: the checks are skipped, with no error, and the
    release is the fleet's step alone."""
    project = own_program(tmp_path, {})
    (project / "__main__.py").write_text(IMAGE_BUILT_ELSEWHERE)
    code = main(["plan", "--cwd", str(project), "--stack", "dev", "--json", "-"])
    done = capsys.readouterr()
    assert code == 0, done.err
    document = json.loads(done.out)
    assert document["target"] == "program" and document["appReadiness"] is None
    assert document["migrationCheck"]["appDir"] is None
    skipped = "the program builds no app image, so no Django app to check"
    assert document["migrationCheck"]["skipped"] == skipped
    assert [step["step"] for step in document["releaseOrder"]] == ["fleet"]
    text = render_text(plan_stack(project, "dev"))
    assert f"\nApp readiness and migration safety check: skipped: {skipped}\n" in text
