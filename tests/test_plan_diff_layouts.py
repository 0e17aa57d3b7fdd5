"""`pulumi-django plan --diff-against GITREF` when the app is not in the Pulumi project's
directory: beside it in the same repository, in a sibling repository (relative or absolute
`app.context`, `--app-ref`), or in a submodule. A small shop app, not the example, and the
ready-made stack's program as a user's project runs it (target local: the image build)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml
from test_plan_diff import git

from pulumi_django.cli import main
from pulumi_django.cli.git_plan import (
    extract_tree,
    find_repository,
    review_against,
    shipped_migrations,
)
from pulumi_django.cli.plan_diff import PlanDiff, diff_json, render_markdown, render_text
from pulumi_django.errors import UsageError

ROOT = Path(__file__).resolve().parent.parent
IMAGE = "docker:index/image:Image"
RELEASE_HISTORY = "pulumi-python:dynamic/releases:ReleaseHistory"
APP = {
    "manage.py": (
        "import os\nimport sys\n\n"
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")\n'
        "from django.core.management import execute_from_command_line\n\n"
        "execute_from_command_line(sys.argv)\n"
    ),
    "shop/__init__.py": "",
    "shop/settings.py": (
        "import os\n\nimport dj_database_url\n\n"
        'SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]\n'
        "USE_TZ = True\n"
        'DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"\n'
        'INSTALLED_APPS = ["orders"]\n'
        'DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"])}\n'
    ),
    "orders/__init__.py": "",
    "orders/models.py": (
        "from django.db import models\n\n\n"
        "class Order(models.Model):\n"
        "    number = models.CharField(max_length=20)\n"
    ),
    "orders/migrations/__init__.py": "",
    "orders/migrations/0001_initial.py": (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        "    initial = True\n"
        "    operations = [\n"
        "        migrations.CreateModel(\n"
        '            name="Order",\n'
        "            fields=[\n"
        '                ("id", models.BigAutoField(primary_key=True, serialize=False)),\n'
        '                ("number", models.CharField(max_length=20)),\n'
        "            ],\n"
        "        )\n"
        "    ]\n"
    ),
    "Dockerfile": "FROM python:3.12-slim\nCOPY . /app\nVOLUME /tmp\n",
    # A repository's top as the build context: its .git is not what the image is made of, nor
    # are the tests (their apps' migrations are not the app's).
    ".dockerignore": ".git\ntests\n",
}
NOTE = "orders/migrations/0002_order_note.py"
PAID = "orders/migrations/0003_order_paid.py"


def nullable_field(name: str, after: str) -> str:
    return (
        "from django.db import migrations, models\n\n\n"
        "class Migration(migrations.Migration):\n"
        f'    dependencies = [("orders", "{after}")]\n'
        "    operations = [\n"
        f'        migrations.AddField("order", "{name}", models.TextField(null=True)),\n'
        "    ]\n"
    )


MIGRATIONS = {
    NOTE: nullable_field("note", "0001_initial"),
    PAID: nullable_field("paid", "0002_order_note"),
}


def write_app(app: Path) -> None:
    for name, text in APP.items():
        (app / name).parent.mkdir(parents=True, exist_ok=True)
        (app / name).write_text(text)


def add_migration(app: Path, name: str) -> None:
    (app / name).write_text(MIGRATIONS[name])


def add_release_overlay(app: Path) -> None:
    """A rehearsal release overlay (`releases/v2/`) with a copy of 0002: not the app's."""
    overlay = app / "releases" / "v2"
    (overlay / NOTE).parent.mkdir(parents=True)
    (overlay / "release.toml").write_text('description = "the order note"\n')
    (overlay / NOTE).write_text(MIGRATIONS[NOTE])


def add_test_app_migration(app: Path) -> None:
    """A test app's migration in `tests/`, which `.dockerignore` leaves out of the image."""
    test_app = app / "tests" / "testapp" / "migrations" / "0001_initial.py"
    test_app.parent.mkdir(parents=True)
    test_app.write_text(APP["orders/migrations/0001_initial.py"])


def commit_a_virtualenv(project: Path) -> None:
    """Links `git archive` exports that point out of the tree: a virtualenv's python (absolute)
    and a relative link up past the repository's top; and one inside it."""
    bin_dir = project / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3").symlink_to("/usr/bin/python3")
    (bin_dir / "python").symlink_to("python3")
    (project / "outside").symlink_to(Path("..", "..", "elsewhere"))


def write_project(project: Path, contexts: dict[str, str]) -> None:
    """A Pulumi project running the ready-made stack, one stack per `{stack: app.context}`."""
    project.mkdir(parents=True, exist_ok=True)
    (project / "Pulumi.yaml").write_text("name: shop-infra\nruntime: python\n")
    shutil.copy(ROOT / "__main__.py", project / "__main__.py")
    for stack, context in contexts.items():
        config = {
            "django:target": "local",
            "django:name": "shop",
            "django:app": {
                "context": context,
                "settingsModule": "shop.settings",
                "wsgiApp": "shop.wsgi:application",
                "asgiApp": "shop.asgi:application",
                "staticRoot": "/app/staticfiles",
            },
        }
        (project / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}))


def commit(repo: Path, message: str, tag: str | None = None) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    if tag:
        git(repo, "tag", tag)
    return git(repo, "rev-parse", "HEAD").strip()


def new_repository(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    return path


@pytest.fixture(scope="module")
def one_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """repo/infra (the project, with a committed virtualenv) and repo/app, one repository: v1,
    then a commit adding the 0002 migration, then 0003 left uncommitted. Stack `rel`:
    `../app`; `abs`: its absolute path."""
    repo = new_repository(tmp_path_factory.mktemp("one") / "repo")
    write_app(repo / "app")
    write_project(repo / "infra", {"rel": "../app", "abs": str(repo / "app")})
    commit_a_virtualenv(repo / "infra")
    commit(repo, "v1", tag="v1")
    add_migration(repo / "app", NOTE)
    commit(repo, "v2")
    add_migration(repo / "app", PAID)
    return repo / "infra"


@pytest.fixture(scope="module")
def two_repositories(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """work/app and work/infra, two repositories. The app: v1, a commit adding 0002 and a
    release overlay's copy of it, 0003 and a test app's migration left uncommitted. The
    project: stack `rel` (`../app`) and `abs` (its absolute path)."""
    work = tmp_path_factory.mktemp("two")
    app = new_repository(work / "app")
    write_app(app)
    commit(app, "v1", tag="v1")
    add_migration(app, NOTE)
    add_release_overlay(app)
    commit(app, "v2")
    add_migration(app, PAID)
    add_test_app_migration(app)
    infra = new_repository(work / "infra")
    write_project(infra, {"rel": "../app", "abs": str(app)})
    commit(infra, "v1")
    return infra


@pytest.fixture(scope="module")
def submodule_review(tmp_path_factory: pytest.TempPathFactory) -> tuple[PlanDiff, str]:
    """The app as a submodule of the project's repository (`app`), pinned to the app's v1 at
    the project's v1, then to its v2; the review of v1, and the app's v1 commit."""
    work = tmp_path_factory.mktemp("sub")
    app = new_repository(work / "app")
    write_app(app)
    app_v1 = commit(app, "v1")
    infra = new_repository(work / "infra")
    write_project(infra, {"dev": "app"})
    git(infra, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(app), "app")
    commit(infra, "v1", tag="v1")
    add_migration(app, NOTE)
    commit(app, "v2")
    git(infra / "app", "pull", "-q", "origin", "main")
    commit(infra, "the app's v2")
    return review_against(infra, "dev", "v1"), app_v1


def only_the_image_tag_changed(diff: PlanDiff) -> None:
    """The app's files changed, its place did not: a new image tag, the same `build.context`
    and `build.dockerfile`, nothing else."""
    assert [change.type for change in diff.changed] == [IMAGE, RELEASE_HISTORY]
    image, history = diff.changed
    assert [item.path for item in image.inputs] == ["imageName"]
    # The release it would record is the new image.
    assert [item.path for item in history.inputs] == ["image"]
    assert not diff.added and not diff.removed and not diff.risks


def added_and_checked(diff: PlanDiff) -> tuple[list[str], list[str]]:
    review = diff.migrations
    assert review is not None and review.error is None, review
    return review.added, review.checked


@pytest.mark.parametrize("stack", ["rel", "abs"])
def test_an_app_beside_the_project_in_its_repository(one_repository: Path, stack: str) -> None:
    diff = review_against(one_repository, stack, "v1")

    only_the_image_tag_changed(diff)
    assert added_and_checked(diff) == (
        [NOTE, PAID],  # committed since v1, and not committed yet
        ["orders.0002_order_note", "orders.0003_order_paid"],
    )
    assert diff.app is None  # one repository: v1 is the app's side too
    assert diff.head.dirty  # the project is clean; its app is not


def test_an_app_in_another_repository_at_app_ref(two_repositories: Path) -> None:
    # Absolute: the context is the working tree's app, yet the plan at HEAD reads v1's.
    diff = review_against(two_repositories, "abs", "HEAD", app_ref="v1")

    only_the_image_tag_changed(diff)
    assert added_and_checked(diff) == (
        [NOTE, PAID],
        ["orders.0002_order_note", "orders.0003_order_paid"],
    )
    app = diff_json(diff)["app"]
    v1 = git(two_repositories.parent / "app", "rev-parse", "v1").strip()
    assert app["repository"] == "../app"
    assert app["base"] == {"ref": "v1", "commit": v1}
    assert app["head"]["dirty"] is True
    assert not diff.head.dirty  # the project's own tree
    assert f"Migrations added since v1:\n  {NOTE}" in render_text(diff)
    assert "The app's own repository `../app`: the working tree" in render_markdown(diff)


def test_an_app_in_another_repository_is_compared_with_its_head(two_repositories: Path) -> None:
    # Relative (`../app`): the app's HEAD is extracted beside the project's tree.
    diff = review_against(two_repositories, "rel", "HEAD")

    only_the_image_tag_changed(diff)  # the uncommitted migration
    assert added_and_checked(diff) == ([PAID], ["orders.0003_order_paid"])
    assert diff.app is not None and diff.app.base.ref == "HEAD"
    assert "Migrations added since HEAD:" in render_text(diff)


def test_a_submodule_app_is_compared_with_the_commit_the_ref_pins(
    submodule_review: tuple[PlanDiff, str],
) -> None:
    diff, app_v1 = submodule_review

    only_the_image_tag_changed(diff)
    assert added_and_checked(diff) == ([NOTE], ["orders.0002_order_note"])
    assert diff.app is not None
    assert (diff.app.repository, diff.app.base.ref, diff.app.base.commit) == ("app", "v1", app_v1)


def test_the_migrations_are_those_the_image_ships(tmp_path: Path) -> None:
    add_release_overlay(tmp_path)
    (tmp_path / ".dockerignore").write_text("tests\n")
    overlay_copy = f"releases/v2/{NOTE}"
    app_named_releases = "releases/migrations/0001_initial.py"  # no release.toml beside it
    test_app = "tests/testapp/migrations/0001_initial.py"

    shipped = shipped_migrations([NOTE, overlay_copy, app_named_releases, test_app], tmp_path)

    assert shipped == {NOTE, app_named_releases}


def test_links_out_of_the_tree_are_left_out_of_its_copy(
    one_repository: Path, tmp_path: Path
) -> None:
    repository = find_repository(one_repository)
    extract_tree(repository, git(one_repository, "rev-parse", "v1").strip(), tmp_path)

    copy = tmp_path / "infra"
    assert (copy / "Pulumi.yaml").is_file()
    assert (copy / ".venv" / "bin" / "python").readlink() == Path("python3")  # inside: kept
    assert not os.path.lexists(copy / ".venv" / "bin" / "python3")  # -> /usr/bin/python3
    assert not os.path.lexists(copy / "outside")  # -> ../../elsewhere


def test_a_tree_that_cannot_be_extracted(one_repository: Path, tmp_path: Path) -> None:
    (tmp_path / "infra").write_text("a file where the commit has a directory")

    with pytest.raises(UsageError) as raised:
        extract_tree(find_repository(one_repository), "v1", tmp_path)

    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"--diff-against: could not extract v1 of {one_repository.parent}")


# --- what is refused, in one line ---------------------------------------------------------


def one_line_error(project: Path, stack: str, ref: str, app_ref: str | None = None) -> str:
    with pytest.raises(UsageError) as raised:
        review_against(project, stack, ref, app_ref)
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_an_unknown_app_ref(two_repositories: Path) -> None:
    message = one_line_error(two_repositories, "rel", "HEAD", "no-such-tag")
    assert message.startswith(
        f"--app-ref no-such-tag: no such commit, branch or tag in {two_repositories.parent / 'app'}"
    )


def test_app_ref_with_the_app_in_the_project_repository(one_repository: Path) -> None:
    message = one_line_error(one_repository, "rel", "v1", "v1")
    assert "is in the project's repository" in message and "leave out --app-ref" in message


def test_an_app_outside_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    write_app(tmp_path / "app")
    infra = new_repository(tmp_path / "infra")
    write_project(infra, {"rel": "../app"})
    commit(infra, "v1")

    message = one_line_error(infra, "rel", "HEAD")
    assert message.startswith(
        f"--diff-against: the app directory (django:app.context) {tmp_path / 'app'} is not in "
        "a git repository; commit it to one"
    )


def test_an_app_repository_without_a_commit(tmp_path: Path) -> None:
    write_app(new_repository(tmp_path / "app"))
    infra = new_repository(tmp_path / "infra")
    write_project(infra, {"rel": "../app"})
    commit(infra, "v1")

    assert "has no commit yet" in one_line_error(infra, "rel", "HEAD")


def test_app_ref_needs_diff_against(
    two_repositories: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--stack", "rel", "--cwd", str(two_repositories), "--app-ref", "v1"]
    assert main(["plan", *arguments]) == 2
    assert capsys.readouterr().err == (
        "pulumi-django plan: error: --app-ref needs --diff-against GITREF, the project's side "
        "(HEAD if only the app changed)\n"
    )
