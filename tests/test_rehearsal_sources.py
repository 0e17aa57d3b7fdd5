"""The two versions a rehearsal releases one over the other (`--from`, `--to`): git refs, the
working tree or a release variant, each exported as the image's build context holds it. Fast:
throwaway git repositories, no server."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixture_repos import ROOT, app_history, apply_variant, commit_all, git

from pulumi_django import build_context
from pulumi_django.cli import main
from pulumi_django.cli.git_plan import FETCH_HINT
from pulumi_django.cli.rehearsal import rehearse as rehearse_module
from pulumi_django.cli.rehearsal.releases import overlay_files
from pulumi_django.cli.rehearsal.sources import (
    WORKTREE,
    VersionSource,
    export_source,
    resolve_sides,
    resolve_source,
    same_code,
)
from pulumi_django.errors import UsageError

BIGFOOT = ROOT / "examples" / "bigfoot"
SUBDIRECTORY = "examples/bigfoot"


def files_of(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (links as `-> target`), by posix path."""
    found = {}
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory).as_posix()
        if path.is_symlink():
            found[relative] = f"-> {path.readlink()}".encode()
        elif path.is_file():
            found[relative] = path.read_bytes()
    return found


@pytest.fixture
def bigfoot_repository(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """examples/bigfoot in a repository of its own (at its top), with branch v2."""
    repository = tmp_path / "repository"
    return repository, app_history("bigfoot", repository, ["v2"])


# ---------------------------------------------------------------- which version each side names


def test_by_default_the_working_tree_is_released_over_head(
    bigfoot_repository: tuple[Path, dict[str, str]],
) -> None:
    app, commits = bigfoot_repository
    head = commits["main"]

    previous, release = resolve_sides(app, None, None)

    assert previous == VersionSource("HEAD", "ref", f"HEAD@{head[:8]}", head[:8], head)
    assert release == VersionSource(WORKTREE, "worktree", WORKTREE, "worktree")


def test_the_same_code_on_both_sides_is_told_apart_from_a_change(
    bigfoot_repository: tuple[Path, dict[str, str]],
) -> None:
    app, _ = bigfoot_repository
    assert same_code(app, *resolve_sides(app, None, None))  # a clean checkout: HEAD twice
    assert same_code(app, *resolve_sides(app, "main", "main"))
    assert not same_code(app, *resolve_sides(app, "main", "v2"))
    assert not same_code(BIGFOOT, *resolve_sides(BIGFOOT, None, "v2"))  # variants: never
    (app / "sightings" / "notes.txt").write_text("an untracked file is a change\n")
    assert not same_code(app, *resolve_sides(app, None, None))
    assert same_code(app, *resolve_sides(app, WORKTREE, WORKTREE))


def test_commits_that_change_only_what_is_beside_the_app_hold_the_same_app(
    tmp_path: Path,
) -> None:
    """A pull request that touches the docs, not the app: `--from origin/main --to HEAD`."""
    repository = tmp_path / "repository"
    app_history("bigfoot", repository, subdirectory=SUBDIRECTORY)
    app = repository / SUBDIRECTORY
    (repository / "README.md").write_text("docs only\n")
    commit_all(repository, "docs")
    assert same_code(app, *resolve_sides(app, "HEAD~1", "HEAD"))
    assert same_code(app, *resolve_sides(app, "HEAD~1", None))  # and a clean working tree
    (app / "manage.py").write_text("# changed\n")
    commit_all(repository, "the app")
    assert not same_code(app, *resolve_sides(app, "HEAD~1", "HEAD"))


def test_a_branch_a_tag_and_a_short_sha_are_refs(
    bigfoot_repository: tuple[Path, dict[str, str]],
) -> None:
    app, commits = bigfoot_repository
    git(app, "tag", "release-1", commits["v2"])
    short = commits["main"][:10]

    assert resolve_source(app, "v2", "--to").commit == commits["v2"]
    assert resolve_source(app, "release-1", "--to").label == f"release-1@{commits['v2'][:8]}"
    found = resolve_source(app, short, "--from")
    assert (found.kind, found.commit, found.release_name) == ("ref", commits["main"], short[:8])
    assert found.label == short[:8]  # a commit needs no name beside itself


def test_a_release_variant_is_released_over_the_current_variant() -> None:
    """`make demo` runs `rehearse --to v2`: v1 before, as it always was."""
    previous, release = resolve_sides(BIGFOOT, None, "v2")

    assert previous == VersionSource("v1", "variant", "v1", "v1")
    assert release == VersionSource("v2", "variant", "v2", "v2")
    assert resolve_sides(BIGFOOT, "HEAD", "v2-unsafe")[0].kind == "ref"


def test_a_variant_wins_over_a_ref_of_the_same_name(
    bigfoot_repository: tuple[Path, dict[str, str]],
) -> None:
    app, commits = bigfoot_repository
    assert resolve_source(app, "v2", "--to").kind == "ref"  # the branch

    shutil.copytree(BIGFOOT / "releases", app / "releases")

    assert resolve_source(app, "v2", "--to").kind == "variant"
    assert resolve_source(app, "v2^0", "--to").commit == commits["v2"]


def test_sides_with_the_same_name_stay_apart(
    bigfoot_repository: tuple[Path, dict[str, str]],
) -> None:
    """Their static files are published side by side, by release name."""
    app, commits = bigfoot_repository

    previous, release = resolve_sides(app, "HEAD", "main")
    assert (previous.commit, release.commit) == (commits["main"], commits["main"])
    assert (previous.release_name, release.release_name) == (
        commits["main"][:8],
        commits["main"][:8] + "-new",
    )
    names = [side.release_name for side in resolve_sides(app, WORKTREE, WORKTREE)]
    assert names == ["worktree", "worktree-new"]


# ---------------------------------------------------------------- refused in one line, at once


def refusal(
    arguments: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> str:
    """`pulumi-django rehearse ARGUMENTS` in this checkout (its local stack): exit 2 with one
    line, and no rehearsal started."""

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the rehearsal started")

    monkeypatch.setattr(rehearse_module, "rehearse", started)
    monkeypatch.chdir(ROOT)
    assert main(["rehearse", *arguments]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "Traceback" not in error, error
    return error.removeprefix("pulumi-django rehearse: error: ").strip()


def test_an_app_outside_git_needs_a_commit_or_worktree(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = tmp_path / "app"
    shutil.copytree(BIGFOOT, app, ignore=shutil.ignore_patterns("releases", "__pycache__"))

    assert refusal(["--app", str(app)], capsys, monkeypatch) == (
        f"--from HEAD: {app} is not in a git repository; commit the app "
        "(git init, git add, git commit) or pass --from WORKTREE"
    )


def test_an_unknown_ref_says_where_it_looked_and_how_to_fetch(
    bigfoot_repository: tuple[Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, _ = bigfoot_repository

    message = refusal(["--app", str(app), "--to", "origin/main"], capsys, monkeypatch)

    assert message == f"--to origin/main: no such commit, branch or tag in {app} ({FETCH_HINT})"


def test_an_unknown_name_lists_the_release_variants(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    message = refusal(["--from", "v0"], capsys, monkeypatch)

    assert message.startswith(f"--from v0: no such commit, branch or tag in {ROOT}")
    assert message.endswith(
        f"nor a release variant in {BIGFOOT / 'releases'} (v1, v2, "
        + ("v2-broken, v2-new-job, v2-unsafe)")
    )


def test_a_repository_without_a_commit_and_a_commit_without_the_app(
    tmp_path: Path, bigfoot_repository: tuple[Path, dict[str, str]]
) -> None:
    empty = tmp_path / "empty"
    git(tmp_path, "init", "--quiet", empty.name)
    with pytest.raises(UsageError, match=r"^--from HEAD: the repository .* has no commit yet"):
        resolve_source(empty, "HEAD", "--from")

    app, _ = bigfoot_repository
    git(app, "rm", "--quiet", "manage.py")
    commit_all(app, "no app any more")
    with pytest.raises(UsageError, match=r"^--to HEAD: commit \w{8} has no manage.py"):
        resolve_source(app, "HEAD", "--to")


# ---------------------------------------------------------------- each version's files


def test_a_ref_of_an_app_in_a_subdirectory_is_its_committed_build_context(
    tmp_path: Path,
) -> None:
    repository = tmp_path / "monorepo"
    app_history("bigfoot", repository, ["v2"], subdirectory=SUBDIRECTORY)
    app = repository / SUBDIRECTORY
    (app / "bigfoot" / "settings.py").write_text("# not committed\n")

    exported = files_of(export_source(app, resolve_source(app, "v2", "--to"), tmp_path / "v2"))

    assert (
        exported["sightings/models.py"]
        == (BIGFOOT / "releases" / "v2" / "sightings" / "models.py").read_bytes()
    )
    assert exported["bigfoot/settings.py"] == (BIGFOOT / "bigfoot" / "settings.py").read_bytes()
    assert "manage.py" in exported and "sightings/migrations/0002_sighting_gdpr_accepted.py" in (
        exported
    )
    # bigfoot's .dockerignore: no tests, no Dockerfile, no .dockerignore.
    assert not [path for path in exported if path.startswith(("tests/", "Dockerfile", "."))]


def test_a_ref_of_an_app_at_the_top_of_its_repository(
    bigfoot_repository: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    app, _ = bigfoot_repository

    head = files_of(export_source(app, resolve_source(app, "HEAD", "--from"), tmp_path / "head"))
    worktree = files_of(export_source(app, resolve_source(app, WORKTREE, "--to"), tmp_path / "wt"))

    assert head == worktree  # nothing uncommitted
    assert "manage.py" in head
    assert not [path for path in head if path.startswith((".git", "tests/"))]


def test_the_working_tree_has_uncommitted_and_untracked_files_the_ref_does_not(
    bigfoot_repository: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    app, _ = bigfoot_repository
    written = apply_variant("bigfoot", app, "v2")  # uncommitted
    (app / "sightings" / "signals.py").write_text("# untracked\n")

    worktree = files_of(export_source(app, resolve_source(app, WORKTREE, "--to"), tmp_path / "wt"))
    head = files_of(export_source(app, resolve_source(app, "HEAD", "--from"), tmp_path / "head"))

    changed = {path.as_posix() for path in written}
    assert {path for path in worktree if worktree[path] != head.get(path)} == {
        *changed,
        "sightings/signals.py",
    }
    assert worktree["sightings/signals.py"] == b"# untracked\n"


def test_a_variant_is_the_old_build_of_the_release_without_what_the_image_leaves_out(
    tmp_path: Path,
) -> None:
    """Before sources.py: the app copied without NOT_SHIPPED, then the overlays. Now the
    app's .dockerignore also leaves out the Dockerfile and itself."""
    old = tmp_path / "old"
    not_shipped = ("releases", "tests", "staticfiles", "__pycache__", "*.pyc", ".*_cache")
    shutil.copytree(BIGFOOT, old, ignore=shutil.ignore_patterns(*not_shipped))
    for relative, file in overlay_files(BIGFOOT, "v2").items():
        shutil.copy2(file, old / relative)

    previous, release = resolve_sides(BIGFOOT, None, "v2")
    new = files_of(export_source(BIGFOOT, release, tmp_path / "new"))

    expected = files_of(old)
    del expected["Dockerfile"], expected[".dockerignore"]
    assert new == expected
    assert (
        new["sightings/static/sightings/bigfoot.css"]
        == (BIGFOOT / "releases/v2/sightings/static/sightings/bigfoot.css").read_bytes()
    )
    v1 = files_of(export_source(BIGFOOT, previous, tmp_path / "v1"))
    assert v1["sightings/models.py"] == (BIGFOOT / "sightings" / "models.py").read_bytes()
    assert set(new) - set(v1) == {"sightings/migrations/0002_sighting_gdpr_accepted.py"}


# ---------------------------------------------------------------- the build context's rules


@pytest.fixture
def small_app(tmp_path: Path) -> Path:
    """An app in a repository of its own with tests, docs, a virtualenv and a link."""
    app = tmp_path / "small"
    for relative, text in {
        "manage.py": "# manage\n",
        "shop/models.py": "# models\n",
        "shop/__pycache__/models.cpython-311.pyc": "bytecode",
        "tests/test_shop.py": "# tests\n",
        "docs/keep.md": "kept by an exception\n",
        "docs/drop.md": "ignored\n",
        "node_modules/left-pad/index.js": "// ignored\n",
        ".venv/pyvenv.cfg": "home = /usr/bin\n",
        ".venv/lib/site.py": "# a virtualenv\n",
        "env/pyvenv.cfg": "home = /usr/bin\n",
        "env/bin/activate": "# another one, under any name\n",
    }.items():
        (app / relative).parent.mkdir(parents=True, exist_ok=True)
        (app / relative).write_text(text)
    (app / "shop" / "current.py").symlink_to("models.py")
    (app / ".dockerignore").write_text("tests/\ndocs/\n!docs/keep.md\nnode_modules\n")
    git(tmp_path, "init", "--quiet", app.name)
    commit_all(app, "the shop")
    return app


def test_the_dockerignore_of_each_version_decides_and_exceptions_bring_files_back(
    small_app: Path, tmp_path: Path
) -> None:
    head = files_of(
        export_source(small_app, resolve_source(small_app, "HEAD", "--from"), tmp_path / "h")
    )
    (small_app / ".dockerignore").write_text("docs/drop.md\n")  # uncommitted
    worktree = files_of(
        export_source(small_app, resolve_source(small_app, WORKTREE, "--to"), tmp_path / "w")
    )

    assert set(head) == {
        ".dockerignore",
        "manage.py",
        "shop/models.py",
        "shop/current.py",
        "shop/__pycache__/models.cpython-311.pyc",  # the .dockerignore does not say otherwise
        "docs/keep.md",
    }
    assert head["shop/current.py"] == b"-> models.py"
    # The working tree's own .dockerignore: tests and node_modules ship, virtualenvs never.
    assert set(worktree) - set(head) == {"tests/test_shop.py", "node_modules/left-pad/index.js"}


def test_without_a_dockerignore_only_git_virtualenvs_and_bytecode_stay_out(
    small_app: Path, tmp_path: Path
) -> None:
    (small_app / ".dockerignore").unlink()
    (small_app / "stale.pyc").write_text("bytecode")

    exported = files_of(
        export_source(small_app, resolve_source(small_app, WORKTREE, "--to"), tmp_path / "w")
    )

    assert set(exported) == {
        "manage.py",
        "shop/models.py",
        "shop/current.py",
        "tests/test_shop.py",
        "docs/keep.md",
        "docs/drop.md",
        "node_modules/left-pad/index.js",
    }


def test_a_variant_is_filtered_by_its_own_dockerignore(small_app: Path, tmp_path: Path) -> None:
    lean = small_app / "releases" / "lean"
    for relative, text in {
        "release.toml": 'description = "no docs in the image"\n',
        ".dockerignore": "docs/\ntests/\nnode_modules\n",
        "docs/new.md": "ignored by the variant\n",
        "shop/views.py": "# views\n",
    }.items():
        (lean / relative).parent.mkdir(parents=True, exist_ok=True)
        (lean / relative).write_text(text)

    exported = files_of(
        export_source(small_app, resolve_source(small_app, "lean", "--to"), tmp_path / "lean")
    )

    assert set(exported) == {
        ".dockerignore",
        "manage.py",
        "shop/models.py",
        "shop/views.py",
        "shop/current.py",
        "shop/__pycache__/models.cpython-311.pyc",
    }
    assert exported[".dockerignore"] == b"docs/\ntests/\nnode_modules\n"


def test_the_copy_never_walks_into_what_it_leaves_out_whole(
    small_app: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A virtualenv or node_modules can hold 100,000 files: the copy must not list them."""
    walked: list[str] = []
    real_walk = os.walk

    def recording_walk(top: Path) -> Iterator[tuple[str, list[str], list[str]]]:
        for entry in real_walk(top):
            walked.append(Path(entry[0]).relative_to(top).as_posix())
            yield entry

    monkeypatch.setattr(build_context.os, "walk", recording_walk)
    worktree = resolve_source(small_app, WORKTREE, "--to")
    (small_app / ".dockerignore").write_text("tests/\nnode_modules\n")
    export_source(small_app, worktree, tmp_path / "pruned")
    assert sorted(walked) == [".", "docs", "shop", "shop/__pycache__"]

    # With a `!` exception, an ignored directory may hold something it brings back.
    walked.clear()
    (small_app / ".dockerignore").write_text("tests/\nnode_modules\n!tests/fixtures.json\n")
    export_source(small_app, worktree, tmp_path / "conservative")
    assert sorted(walked) == [
        ".",
        "docs",
        "node_modules",
        "node_modules/left-pad",
        "shop",
        "shop/__pycache__",
        "tests",
    ]
