"""`pulumi-django plan --diff-against GITREF`: two versions of a stack and of the example app
in a temporary git repository, compared offline."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pulumi_django.cli import git_plan, main
from pulumi_django.cli.git_plan import (
    find_repository,
    is_pulumi_django_checkout,
    review_against,
    review_migrations,
)
from pulumi_django.cli.plan_diff import (
    COMMENT_LIMIT,
    MARKER,
    PlanDiff,
    Side,
    diff_json,
    diff_plans,
    mermaid_diagram,
    render_markdown,
    render_text,
)
from pulumi_django.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "review_project"
BIGFOOT = ROOT / "examples" / "bigfoot"
UNSAFE_MIGRATION = (
    BIGFOOT
    / "releases"
    / "v2-unsafe"
    / "sightings"
    / "migrations"
    / "0002_sighting_gdpr_accepted.py"
)
SAFE_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("sightings", "0002_sighting_gdpr_accepted")]

    operations = [
        migrations.AddField(
            model_name="sighting", name="notes", field=models.TextField(null=True, blank=True)
        ),
    ]
"""
# Version 2 of the stack: a queue added, the log group and the bucket removed, the web port,
# the fleet size and a secret-looking tag changed, and the database renamed (replaced).
V2_CONFIG = {
    "django:fleet": {"desiredCount": 2, "minCount": 1},
    "review:dbName": "sightings",
    "review:deployToken": "plain-token-two",
    "review:apiToken": "token-value-two",
    "review:webPort": 8080,
    "review:uploads": False,
    "review:logs": False,
    "review:queue": True,
}
SECRET_VALUES = ("plain-token-one", "plain-token-two", "token-value-one", "token-value-two")
DB = "urn:pulumi:review::review::review:index:Data$aws:rds/instance:Instance::review-db"


def git(repo: Path, *args: str) -> str:
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    completed = subprocess.run(
        ["git", "-C", str(repo), *identity, "-c", "commit.gpgsign=false", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def copy_tree(source: Path, destination: Path) -> None:
    ignore = shutil.ignore_patterns(
        "__pycache__", ".mypy_cache", "tests", "releases", "staticfiles", "*.sqlite3"
    )
    shutil.copytree(source, destination, ignore=ignore)


def set_config(project: Path, values: dict[str, Any]) -> None:
    stack_file = project / "Pulumi.review.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"].update(values)
    stack_file.write_text(yaml.safe_dump(document))


@pytest.fixture(scope="module")
def review_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """empty (no stack yet) -> v1 (the fixture stack, the example app) -> a commit with the v2
    config and the v2-unsafe migration -> a new, safe migration left uncommitted."""
    repo = tmp_path_factory.mktemp("review-repo")
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("a project\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "empty")
    git(repo, "tag", "empty")
    for path in FIXTURE.iterdir():
        if path.is_file():
            shutil.copy(path, repo / path.name)
    copy_tree(BIGFOOT, repo / "site")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    git(repo, "tag", "v1")
    set_config(repo, V2_CONFIG)
    shutil.copy(UNSAFE_MIGRATION, repo / "site" / "sightings" / "migrations")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v2")
    (repo / "site" / "sightings" / "migrations" / "0003_sighting_notes.py").write_text(
        SAFE_MIGRATION
    )
    return repo


@dataclass
class CliReview:
    """One `pulumi-django plan --diff-against v1 --format json` in the review repository: what
    it printed and exited with, and the review it printed (reviews are slow: the module's tests
    read this one)."""

    exit_code: int
    stdout: str
    stderr: str
    review: PlanDiff


@pytest.fixture(scope="module")
def cli_review(review_repo: Path) -> CliReview:
    reviews: list[PlanDiff] = []

    def recorded(*args: Any, **kwargs: Any) -> PlanDiff:
        reviews.append(review_against(*args, **kwargs))
        return reviews[-1]

    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(review_repo)
        patch.setattr(git_plan, "review_against", recorded)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["plan", "--stack", "review", "--diff-against", "v1", "--format", "json"])
    [review] = reviews
    return CliReview(code, stdout.getvalue(), stderr.getvalue(), review)


@pytest.fixture(scope="module")
def review(cli_review: CliReview) -> PlanDiff:
    return cli_review.review


def names(resources: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(resource["type"], resource["name"]) for resource in resources}


def test_reports_exactly_the_added_removed_and_changed_resources(review: PlanDiff) -> None:
    assert names(review.added) == {("aws:sqs/queue:Queue", "jobs")}
    assert names(review.removed) == {
        ("aws:cloudwatch/logGroup:LogGroup", "app-logs"),
        ("aws:s3/bucket:Bucket", "review-uploads"),
    }
    changed = {
        change.name: {item.path: (item.before, item.after) for item in change.inputs}
        for change in review.changed
    }
    assert changed == {
        "web": {
            "ingress[0].fromPort": (80, 8080),
            "ingress[0].toPort": (80, 8080),
            "tags.deployToken": ("[secret]", "[secret]"),
        },
        "app": {"desiredCount": (1, 2)},
        "review-db": {"dbName": ("bigfoot", "sightings")},
    }
    assert all(not change.options for change in review.changed)
    # The stack, the component, the secret parameter and the image did not change.
    assert review.unchanged == 4


def test_a_change_that_replaces_the_database_is_flagged(review: PlanDiff) -> None:
    database = next(change for change in review.changed if change.name == "review-db")
    assert database.replaced and database.stateful == "database"
    assert [change.name for change in review.replaced] == ["review-db"]
    risks = {(risk.name, risk.action, risk.kind, tuple(risk.inputs)) for risk in review.risks}
    assert risks == {
        ("review-db", "replace", "database", ("dbName",)),
        ("review-uploads", "delete", "bucket", ()),
    }


def test_migrations_added_since_the_ref_are_checked(review: PlanDiff) -> None:
    migrations = review.migrations
    assert migrations is not None and migrations.error is None
    assert migrations.added == [
        "sightings/migrations/0002_sighting_gdpr_accepted.py",  # committed since v1
        "sightings/migrations/0003_sighting_notes.py",  # not committed yet
    ]
    assert migrations.checked == [
        "sightings.0002_sighting_gdpr_accepted",
        "sightings.0003_sighting_notes",
    ]
    assert [(f["migration"], f["severity"]) for f in migrations.findings] == [
        ("sightings.0002_sighting_gdpr_accepted", "unsafe")
    ]


def test_markdown_is_a_pull_request_comment(review: PlanDiff) -> None:
    markdown = render_markdown(review)
    assert markdown.splitlines()[0] == MARKER.format(stack="review")
    assert "> [!CAUTION]" in markdown
    caution = markdown.split("> [!CAUTION]")[1].split("\n\n")[0]
    assert "`review-db`" in caution and "`dbName`" in caution and "`review-uploads`" in caution
    assert "> [!WARNING]" in markdown and "sightings.0002_sighting_gdpr_accepted" in markdown
    assert '| `dbName` (forces replacement) | `"bigfoot"` | `"sightings"` |' in markdown
    assert "| `ingress[0].fromPort` | `80` | `8080` |" in markdown
    assert "1. image built: `app-image`\n2. app fleet updated: `app`" in markdown
    assert "`sightings/migrations/0003_sighting_notes.py`" in markdown
    mermaid = markdown.split("```mermaid\n")[1].split("\n```")[0]
    assert mermaid == review.mermaid
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    assert any(line.strip().endswith('["rds.Instance<br/>review-db"]:::replaced') for line in lines)
    assert any(
        line.strip().endswith('["s3.Bucket<br/>review-uploads"]:::removed') for line in lines
    )
    assert any(line.strip().endswith('["sqs.Queue<br/>jobs"]:::added') for line in lines)
    assert any(line.strip().endswith('["ssm.Parameter<br/>api-token"]') for line in lines)
    assert any(line.strip().startswith("subgraph") and "review.Data" in line for line in lines)


def test_text_output(review: PlanDiff) -> None:
    text = render_text(review)
    assert "1 to add, 3 to change (1 replaced), 2 to delete, 4 unchanged" in text
    assert "!!   aws:rds/instance:Instance  review-db (database): replaced" in text
    assert '      dbName: "bigfoot" -> "sightings"  (forces replacement)' in text
    assert "  + aws:sqs/queue:Queue  jobs" in text
    assert "  - aws:s3/bucket:Bucket  review-uploads" in text
    assert "UNSAFE sightings.0002_sighting_gdpr_accepted" in text


def test_secrets_stay_masked(review: PlanDiff) -> None:
    for rendered in (render_text(review), render_markdown(review), json.dumps(diff_json(review))):
        assert "tags.deployToken" in rendered
        for value in SECRET_VALUES:
            assert value not in rendered


@pytest.mark.slow
def test_cli_json_format(cli_review: CliReview) -> None:
    assert cli_review.exit_code == 0, cli_review.stderr
    document = json.loads(cli_review.stdout)
    assert document["summary"] == {
        "added": 1,
        "removed": 2,
        "changed": 3,
        "replaced": 1,
        "unchanged": 4,
        "statefulAtRisk": 2,
        "upgrades": 0,
    }
    assert document["base"]["ref"] == "v1" and document["base"]["found"] is True
    assert document["head"]["dirty"] is True  # the uncommitted migration
    database = next(c for c in document["changed"] if c["urn"] == DB)
    assert database["inputs"] == [
        {
            "path": "dbName",
            "change": "changed",
            "before": "bigfoot",
            "after": "sightings",
            "replaces": True,
        }
    ]
    assert document["releaseOrder"]["changed"] is False
    assert [step["step"] for step in document["releaseOrder"]["after"]] == ["image", "fleet"]
    assert document["migrations"]["checked"] == [
        "sightings.0002_sighting_gdpr_accepted",
        "sightings.0003_sighting_notes",
    ]
    assert document["mermaid"].startswith("flowchart LR\n")
    for value in SECRET_VALUES:
        assert value not in cli_review.stdout


def test_a_stack_missing_at_the_ref_is_all_new(review_repo: Path) -> None:
    review = review_against(review_repo, "review", "empty")
    assert review.base.found is False and not review.removed and not review.changed
    assert {r["name"] for r in review.added} == {
        *("review-review", "review", "review-db", "web", "api-token", "app-image", "app", "jobs")
    }
    assert "does not exist at empty" in render_markdown(review)


def test_an_app_without_migrations_at_the_ref_is_a_first_deploy(review_repo: Path) -> None:
    """At `empty` the app has no migration yet: all of them are new, none is judged, and the
    review counts them instead of listing each."""
    commit = git(review_repo, "rev-parse", "empty").strip()
    found = review_migrations(find_repository(review_repo), commit, review_repo, "review")
    assert found is not None and found.first_deploy and not found.findings
    assert "sightings/migrations/0002_sighting_gdpr_accepted.py" in found.added
    diff = diff_plans(
        {}, {}, stack="review", base_side=Side("empty", commit), head_side=Side("HEAD", None)
    )
    diff.migrations = found
    assert diff_json(diff)["migrations"]["firstDeploy"] is True
    section = render_text(diff).split("Migrations added since empty:\n")[1].split("\n\n")[0]
    assert section == (
        f"  {len(found.added)} migrations, the app's first: first deploy: nothing runs yet, "
        "every migration is safe"
    )


def test_a_migration_check_that_cannot_run_is_reported(tmp_path: Path) -> None:
    for path in FIXTURE.iterdir():
        shutil.copy(path, tmp_path / path.name)
    copy_tree(BIGFOOT, tmp_path / "site")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "v1")
    shutil.copy(UNSAFE_MIGRATION, tmp_path / "site" / "sightings" / "migrations")
    set_config(tmp_path, {"django:app": {"context": "site", "settingsModule": "nosuch.settings"}})
    repository = find_repository(tmp_path)
    commit = git(tmp_path, "rev-parse", "HEAD").strip()

    found = review_migrations(repository, commit, tmp_path, "review")

    assert found is not None and not found.checked
    assert found.added == ["sightings/migrations/0002_sighting_gdpr_accepted.py"]
    assert found.error is not None and "nosuch.settings" in found.error


def test_unknown_ref_is_a_clear_error(
    review_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(review_repo)
    assert main(["plan", "--stack", "review", "--diff-against", "no-such-branch"]) == 2
    stderr = capsys.readouterr().err
    assert stderr.startswith(
        "pulumi-django plan: error: --diff-against no-such-branch: no such commit, branch or tag"
    )
    assert "Traceback" not in stderr


def test_outside_a_git_repository_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in FIXTURE.iterdir():
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    arguments = ["--stack", "review", "--cwd", str(tmp_path), "--diff-against", "main"]
    assert main(["plan", *arguments]) == 2
    stderr = capsys.readouterr().err
    assert "needs a git repository" in stderr and "Traceback" not in stderr


def test_markdown_needs_diff_against(capsys: pytest.CaptureFixture[str]) -> None:
    arguments = ["--stack", "review", "--cwd", str(FIXTURE), "--format", "markdown"]
    assert main(["plan", *arguments]) == 2
    assert "needs --diff-against" in capsys.readouterr().err


@pytest.mark.slow
def test_a_pulumi_django_checkout_is_planned_with_its_own_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for path in FIXTURE.iterdir():
        shutil.copy(path, repo / path.name)
    for tree in ("src/pulumi_django", "components", "config"):
        shutil.copytree(ROOT / tree, repo / tree, ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "src" / "pulumi_django" / "review_marker.py").write_text('CODE = "v1 checkout"\n')
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "v1")
    assert is_pulumi_django_checkout(repo)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))

    review = review_against(repo, "review", "HEAD")

    bucket = next(change for change in review.changed if change.name == "review-uploads")
    assert [(c.path, c.before, c.after) for c in bucket.inputs] == [
        ("tags.code", "v1 checkout", "installed")
    ]
    assert not review.added and not review.removed and not review.risks
    assert not any(scratch.iterdir())  # the checkout and its link tree are gone


def test_a_failing_plan_at_the_ref_is_a_clear_error(tmp_path: Path) -> None:
    for path in FIXTURE.iterdir():
        shutil.copy(path, tmp_path / path.name)
    git(tmp_path, "init", "-q")
    set_config(tmp_path, {"django:target": "gcp"})
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "broken")
    set_config(tmp_path, {"django:target": "aws"})
    with pytest.raises(UsageError, match=r"the plan of stack review at HEAD \(\w{12}\) failed"):
        review_against(tmp_path, "review", "HEAD")
    assert find_repository(tmp_path).top == tmp_path.resolve()


# --- the pure rules, on plan documents written by hand -----------------------------------


def resource(urn_type: str, name: str, **fields: Any) -> dict[str, Any]:
    type_ = urn_type.split("$")[-1]
    return {
        "urn": f"urn:pulumi:s::p::{urn_type}::{name}",
        "type": type_,
        "name": name,
        "custom": True,
        "parent": None,
        "dependencies": [],
        "propertyDependencies": {},
        "inputs": {},
        "options": {},
        **fields,
    }


def diff(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> PlanDiff:
    return diff_plans(
        {"resources": before, "releaseOrder": []},
        {"resources": after, "releaseOrder": []},
        stack="s",
        base_side=Side("main", "0" * 40),
        head_side=Side("the working tree", "1" * 40),
    )


def test_a_renamed_or_moved_stateful_resource_is_flagged() -> None:
    renamed = diff(
        [resource("aws:s3/bucket:Bucket", "static")],
        [resource("aws:s3/bucket:Bucket", "static-files")],
    )
    moved = diff(
        [resource("aws:rds/instance:Instance", "db")],
        [resource("pulumi-django:database:Database$aws:rds/instance:Instance", "db")],
    )
    for found, new_name in ((renamed, "static-files"), (moved, "db")):
        [risk] = found.risks
        assert risk.action == "move" and "aliases" in risk.reason
        assert risk.new_urn is not None and risk.new_urn.endswith(f"::{new_name}")


def test_deleting_a_protected_stateful_resource_says_so() -> None:
    found = diff([resource("docker:index/volume:Volume", "pgdata", options={"protect": True})], [])
    [risk] = found.risks
    assert risk.action == "delete" and risk.kind == "volume" and "protect" in risk.reason


def test_replace_on_changes_and_non_replacing_inputs() -> None:
    before = resource("aws:ecs/service:Service", "app", inputs={"name": "a", "desiredCount": 1})
    after = dict(before, inputs={"name": "b", "desiredCount": 2})
    after["options"] = {"replaceOnChanges": ["name"]}
    found = diff([before], [after])
    [change] = found.changed
    assert {(c.path, c.replaces) for c in change.inputs} == {
        ("name", True),
        ("desiredCount", False),
    }
    assert [(o.path, o.change, o.after) for o in change.options] == [
        ("replaceOnChanges", "added", ["name"])
    ]
    assert not found.risks  # not a stateful type: shown as replaced, not flagged
    cache = "aws:elasticache/replicationGroup:ReplicationGroup"
    resized = diff(
        [resource(cache, "c", inputs={"nodeType": "cache.t4g.micro"})],
        [resource(cache, "c", inputs={"nodeType": "cache.t4g.small"})],
    )
    assert not resized.risks and not resized.replaced


def test_json_documents_in_strings_are_compared_inside_and_secret_entries_masked() -> None:
    def task(image: str, token: str) -> dict[str, Any]:
        containers = [
            {
                "image": image,
                "environment": [
                    {"name": "API_TOKEN", "value": token},
                    {"name": "MODE", "value": "web"},
                ],
            }
        ]
        inputs = {"containerDefinitions": json.dumps(containers)}
        return resource("aws:ecs/taskDefinition:TaskDefinition", "app", inputs=inputs)

    found = diff([task("app:1", "tok-one")], [task("app:2", "tok-two")])
    [change] = found.changed
    assert [(c.path, c.before, c.after) for c in change.inputs] == [
        ("containerDefinitions[0].environment[0].value", "[secret]", "[secret]"),
        ("containerDefinitions[0].image", "app:1", "app:2"),
    ]


def test_mermaid_escapes_labels_and_draws_dependencies_between_groups() -> None:
    component = resource("pulumi-django:site:Site", 'my "site"', custom=False)
    child = resource(
        "pulumi-django:site:Site$aws:s3/bucket:Bucket", "files", parent=component["urn"]
    )
    user = resource("aws:iam/role:Role", "reader", dependencies=[child["urn"]])
    diagram = mermaid_diagram({"resources": [component, child, user]}, [], {})
    assert 'subgraph n0["site.Site my #quot;site#quot;"]' in diagram
    assert "  n0 --> n2" in diagram.splitlines()


def test_a_long_diff_still_fits_a_comment() -> None:
    many = [
        resource("aws:ssm/parameter:Parameter", f"p{i}", inputs={"value": "x" * 100})
        for i in range(400)
    ]
    changed = [dict(r, inputs={"value": "y" * 100}) for r in many]
    markdown = render_markdown(diff(many, changed))
    assert len(markdown) <= COMMENT_LIMIT
    assert "left out to fit a comment" in markdown


def test_options_that_name_properties_are_not_masked() -> None:
    from pulumi_django.cli.plan_diff import mask

    assert mask("options.additionalSecretOutputs", ["conditions"]) == ["conditions"]
    assert mask("inputs.masterPassword", "hunter2") == "[secret]"
    assert mask("auth.clientSecret", {"value": "x"}) == {"value": "[secret]"}


def _resource(urn: str, type_: str, inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    name = urn.rsplit("::", 1)[-1]
    return {
        "urn": urn,
        "type": type_,
        "name": name,
        "custom": True,
        "parent": None,
        "inputs": inputs,
        **extra,
    }


def _two_sides(base: list[dict[str, Any]], head: list[dict[str, Any]]) -> PlanDiff:
    return diff_plans(
        {"resources": base},
        {"resources": head},
        stack="s",
        base_side=Side("main", "0" * 40),
        head_side=Side("the working tree", None),
    )


TAGS = {"app": "shop", "managed-by": "pulumi-django"}
BUCKET = "urn:pulumi:s::p::aws:s3/bucket:Bucket::static"
PROVIDER = "urn:pulumi:s::p::pulumi:providers:aws::shop-aws"


def test_tags_moved_to_the_providers_default_tags_are_no_change() -> None:
    head_provider = _resource(
        PROVIDER, "pulumi:providers:aws", {"defaultTags": json.dumps({"tags": TAGS})}
    )
    head_bucket = _resource(BUCKET, "aws:s3/bucket:Bucket", {}, provider=f"{PROVIDER}::id")
    review = _two_sides(
        [_resource(BUCKET, "aws:s3/bucket:Bucket", {"tags": TAGS})], [head_provider, head_bucket]
    )
    assert review.changed == []
    # Only a CLI that compares providers' settings keeps the bucket: the review says so.
    assert review.notes == [
        "1 resource moves to the provider shop-aws: a Pulumi CLI released after 10 February "
        "2025 (pulumi/pulumi#18509) updates them in place; an older one replaces them, "
        "databases included, so upgrade the CLI before `pulumi up`."
    ]
    # A tag the provider no longer sets is a change, as AWS would make it.
    head_provider["inputs"]["defaultTags"] = json.dumps({"tags": {"app": "shop"}})
    review = _two_sides(
        [_resource(BUCKET, "aws:s3/bucket:Bucket", {"tags": TAGS})], [head_provider, head_bucket]
    )
    assert [change.path for change in review.changed[0].inputs] == ['tags["managed-by"]']


def test_a_resource_aliased_to_its_old_urn_is_the_same_resource() -> None:
    moved = "urn:pulumi:s::p::pulumi-django:fleet:Cluster$aws:s3/bucket:Bucket::static"
    head = _resource(moved, "aws:s3/bucket:Bucket", {"bucket": "b"}, options={"aliases": [BUCKET]})
    review = _two_sides([_resource(BUCKET, "aws:s3/bucket:Bucket", {"bucket": "b"})], [head])
    assert (review.added, review.removed, review.changed) == ([], [], [])
    # Without the alias the stateful bucket would be deleted and created again.
    review = _two_sides(
        [_resource(BUCKET, "aws:s3/bucket:Bucket", {"bucket": "b"})], [{**head, "options": {}}]
    )
    assert [r["urn"] for r in review.removed] == [BUCKET]
