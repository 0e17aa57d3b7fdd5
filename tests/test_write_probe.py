"""The model write probe: each version's own ORM writing the models a release migrates, on a real
throwaway PostgreSQL, with the example apps' release variants (slow, loopback only)."""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from pulumi_django.cli.rehearsal import orm_probe
from pulumi_django.cli.rehearsal.load import Sample
from pulumi_django.cli.rehearsal.servers import Postgres
from pulumi_django.cli.rehearsal.sources import build_variant
from pulumi_django.cli.rehearsal.write_probe import (
    WriteProbe,
    WriteProbeError,
    migrating_apps,
    running_write_probe,
)

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK, BIGFOOT = ROOT / "examples" / "notebook", ROOT / "examples" / "bigfoot"
# Operations the probe makes after the migration before a test stops it.
OPERATIONS_AFTER_MIGRATION = 20
WAIT_SECONDS = 20.0
# An app the probe cannot exercise: a column type model_bakery has no generator for, and a
# model whose save() needs a service the rehearsal does not have.
ODDITIES_MODELS = """from django.db import models


class PointField(models.Field):
    def db_type(self, connection):
        return "point"


class Landmark(models.Model):
    where = PointField()


class Invoice(models.Model):
    number = models.CharField(max_length=20)

    def save(self, *args, **kwargs):
        raise RuntimeError("the billing service is not configured")
"""


# A tree of categories as Wagtail keeps its pages: django-treebeard's materialized path, a
# root made by a data migration, a subclass in a table of its own, a type column.
CATALOG_MODELS = """from django.contrib.contenttypes.models import ContentType
from django.db import models
from treebeard.mp_tree import MP_Node


class Category(MP_Node):
    name = models.CharField(max_length=50)
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)

    def save(self, *args, **kwargs):
        # As Wagtail's pages do: a node below the root has a parent, and its type is its own.
        if self.depth > 1:
            self.get_parent()
        if self.content_type.model_class() is not type(self):
            raise TypeError(f"{self.content_type} is not the type of {type(self).__name__}")
        super().save(*args, **kwargs)


class Shelf(Category):
    label = models.CharField(max_length=50, blank=True)
"""
CATALOG_ROOT = """from django.db import migrations


def add_root(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Category = apps.get_model("catalog", "Category")
    kind, _ = ContentType.objects.get_or_create(app_label="catalog", model="category")
    Category.objects.create(name="Root", path="0001", depth=1, numchild=0, content_type=kind)


class Migration(migrations.Migration):
    dependencies = [("catalog", "0001_initial"), ("contenttypes", "0002_remove_content_type_name")]
    operations = [migrations.RunPython(add_root, migrations.RunPython.noop)]
"""
# An app's own model_bakery, which the probe must use rather than the one it lends.
OWN_BAKERY = """def make(*args, **kwargs):
    raise RuntimeError("the app's own model_bakery")


def prepare(*args, **kwargs):
    raise RuntimeError("the app's own model_bakery")
"""


def environment(database_url: str, settings_module: str) -> dict[str, str]:
    """What a replica of the version gets, as far as its models are concerned."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": settings_module,
        "DATABASE_URL": database_url,
        "DJANGO_SECRET_KEY": "write-probe-tests-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }


def manage(version: Path, env: dict[str, str], *arguments: str) -> None:
    subprocess.run(
        [sys.executable, "manage.py", *arguments, "-v0"],
        cwd=version,
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def wait_for_operations(probe: WriteProbe, since: float) -> list[Sample]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        after = [sample for sample in probe.samples() if sample.started > since]
        if len(after) >= OPERATIONS_AFTER_MIGRATION:
            return after
        time.sleep(0.1)
    raise AssertionError(f"the probe made {len(probe.samples())} operations in {WAIT_SECONDS} s")


def rows(database_url: str, *tables: str) -> dict[str, int]:
    """How many rows each table has: what the probe, whose writes are rolled back, never
    changes."""
    with psycopg.connect(database_url) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
            for table in tables
        }


def interpreter_without_bakery(directory: Path) -> str:
    """A virtualenv with this one's packages but neither model_bakery nor pulumi_django: the
    app's own interpreter, which has Django and the runtime kit only."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", directory], check=True)
    ours = Path(sysconfig.get_path("purelib"))
    theirs = next(directory.glob("lib/python*/site-packages"))
    for entry in ours.iterdir():
        if not entry.name.startswith(
            ("model_bakery", "pulumi_django-", "__editable__.pulumi_django-")
        ):
            (theirs / entry.name).symlink_to(entry)
    python = str(directory / "bin" / "python")
    for module, importable in (("django", True), ("model_bakery", False), ("pulumi_django", False)):
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode
        assert (found == 0) is importable, module
    return python


def add_app(version: Path, env: dict[str, str], label: str, models: str) -> None:
    """A new app in the version, installed and migrated."""
    (version / label).mkdir()
    (version / label / "__init__.py").write_text("")
    (version / label / "models.py").write_text(models)
    settings = version / "notebook" / "settings" / "production.py"
    settings.write_text(settings.read_text() + f"\nINSTALLED_APPS = [*INSTALLED_APPS, {label!r}]\n")
    manage(version, env, "makemigrations", label)


def v1_probe(
    v1: Path,
    env: dict[str, str],
    database: str,
    apps: list[str],
    tmp_path: Path,
    python: str = sys.executable,
) -> contextlib.AbstractContextManager[WriteProbe]:
    """The probe of the version `v1` (its code in `v1`), its log in `tmp_path`."""
    return running_write_probe(
        python=python,
        cwd=v1,
        env=env,
        version="v1",
        apps=apps,
        database_name=database,
        log=tmp_path / "probe.log",
    )


@pytest.fixture(scope="module")
def notebook_made(tmp_path_factory: pytest.TempPathFactory, pg: Postgres) -> tuple[Path, str]:
    """Notebook v1 with one more app, `oddities` (its migration made), and the database it was
    migrated into, made once for the module's tests: two Django processes each otherwise."""
    name = f"probe_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    v1 = build_variant(NOTEBOOK, "v1", tmp_path_factory.mktemp("notebook") / "v1")
    env = environment(url, "notebook.settings.production")
    add_app(v1, env, "oddities", ODDITIES_MODELS)
    manage(v1, env, "migrate")
    return v1, name


@pytest.fixture
def notebook(
    tmp_path: Path, pg: Postgres, notebook_made: tuple[Path, str]
) -> tuple[Path, dict[str, str], str]:
    """A copy of `notebook_made`'s app and of its database, the test's own."""
    made, template = notebook_made
    name = f"probe_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.url(), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    v1 = Path(shutil.copytree(made, tmp_path / "v1"))
    return v1, environment(pg.url(name), "notebook.settings.production"), name


def test_the_probe_is_a_script_for_any_interpreter_of_the_app() -> None:
    """It parses as Python 3.10 and imports nothing but the standard library, Django and
    model_bakery: the app's interpreter has no pulumi_django."""
    tree = ast.parse(Path(orm_probe.__file__).read_text(), feature_version=(3, 10))
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom) and node.level == 0
            else []
        )
    }
    assert imported - {"__future__"} <= set(sys.stdlib_module_names) | {"django", "model_bakery"}
    assert {"django", "model_bakery"} <= imported


@pytest.mark.slow
def test_plan_names_the_apps_whose_migrations_the_release_applies(
    tmp_path: Path, notebook: tuple[Path, dict[str, str], str]
) -> None:
    v1, env, database = notebook
    v2 = build_variant(NOTEBOOK, "v2", tmp_path / "v2")
    assert migrating_apps(sys.executable, v2, env, database, timeout=60) == ["journal"]
    assert migrating_apps(sys.executable, v1, env, database, timeout=60) == []
    with pytest.raises(WriteProbeError, match=r"failed \(exit 2\)"):
        migrating_apps(sys.executable, v2, env, "production", timeout=60)


@pytest.mark.slow
def test_old_code_fails_to_insert_once_an_unsafe_migration_ran(
    tmp_path: Path, notebook: tuple[Path, dict[str, str], str]
) -> None:
    """v2-unsafe adds a NOT NULL column whose default Django drops: v1's inserts of an entry
    fail, and only those; models baker cannot build are skipped, not failed; no row is left."""
    v1, env, database = notebook
    unsafe = build_variant(NOTEBOOK, "v2-unsafe", tmp_path / "v2-unsafe")
    tables = ("journal_entry", "journal_notebook")
    rows_before = rows(env["DATABASE_URL"], *tables)  # the Inbox notebook of a data migration
    with v1_probe(v1, env, database, ["journal", "oddities"], tmp_path) as probe:
        assert probe.models == ["journal.Entry", "journal.Notebook"]
        assert "not supported" in probe.skipped["oddities.Landmark"]
        assert probe.skipped["oddities.Invoice"] == (
            "create raised RuntimeError: the billing service is not configured"
        )
        wait_for_operations(probe, since=0.0)
        migrating = time.monotonic()
        manage(unsafe, env, "migrate")
        wait_for_operations(probe, since=time.monotonic())
        samples = probe.stop()
    assert probe.stop() == samples
    before = [sample for sample in samples if sample.started < migrating]
    assert [sample for sample in before if sample.failure] == []
    failures = [sample for sample in samples if sample.failure]
    assert failures
    assert {(s.failure, s.method, s.path, s.version) for s in failures} == {
        ("orm", "create", "journal.Entry", "v1")
    }
    assert failures[0].detail.startswith(
        'IntegrityError (NotNullViolation): null value in column "tags"'
    )
    notebooks = {s.method for s in samples if s.path == "journal.Notebook" and not s.failure}
    assert notebooks == {"create", "update", "read", "delete"}
    assert probe.exited_early is None
    assert rows(env["DATABASE_URL"], *tables) == rows_before


@pytest.mark.slow
def test_old_code_keeps_writing_after_a_safe_migration_in_an_interpreter_without_bakery(
    tmp_path: Path, notebook: tuple[Path, dict[str, str], str]
) -> None:
    """v2's column has a database default: v1 writes every model without a failure, from an
    interpreter that has neither model_bakery nor pulumi_django."""
    v1, env, database = notebook
    python = interpreter_without_bakery(tmp_path / "venv")
    v2 = build_variant(NOTEBOOK, "v2", tmp_path / "v2")
    with v1_probe(v1, env, database, ["journal"], tmp_path, python=python) as probe:
        manage(v2, env, "migrate")
        after = wait_for_operations(probe, since=time.monotonic())
    samples = probe.stop()
    assert {sample.path for sample in after} == {"journal.Entry", "journal.Notebook"}
    assert [sample for sample in samples if sample.failure] == []


@pytest.mark.slow
@pytest.mark.parametrize(
    ("database_url", "expected"),
    [
        ("postgres://postgres@127.0.0.1:5432/production", "'production', not"),
        ("postgres://postgres@db.example.com:5432/{name}", "'db.example.com' is not loopback"),
    ],
)
def test_the_probe_refuses_any_database_but_the_rehearsals(
    tmp_path: Path, database_url: str, expected: str
) -> None:
    """Checked before any connection: neither database exists."""
    v1 = build_variant(NOTEBOOK, "v1", tmp_path / "v1")
    env = environment(database_url.format(name="rehearsal"), "notebook.settings.production")
    with (
        pytest.raises(WriteProbeError, match="refused to run") as refused,
        v1_probe(v1, env, "rehearsal", ["journal"], tmp_path),
    ):
        pass
    assert expected in str(refused.value)


@pytest.mark.slow
def test_bigfoots_old_code_fails_to_insert_a_sighting_after_its_unsafe_migration(
    tmp_path: Path, pg: Postgres
) -> None:
    url = pg.create_database("probe_bigfoot")
    env = environment(url, "bigfoot.settings")
    v1 = build_variant(BIGFOOT, "v1", tmp_path / "v1")
    unsafe = build_variant(BIGFOOT, "v2-unsafe", tmp_path / "v2-unsafe")
    manage(v1, env, "migrate")
    assert migrating_apps(sys.executable, unsafe, env, "probe_bigfoot", timeout=60) == ["sightings"]
    with v1_probe(v1, env, "probe_bigfoot", ["sightings"], tmp_path) as probe:
        assert probe.models == ["sightings.Sighting"]
        manage(unsafe, env, "migrate")
        after = wait_for_operations(probe, since=time.monotonic())
    assert {(s.failure, s.method) for s in after} == {("orm", "create")}
    assert 'column "gdpr_accepted"' in after[0].detail
    assert rows(url, "sightings_sighting") == {"sightings_sighting": 0}


@pytest.mark.slow
def test_tree_nodes_are_added_under_the_root_and_their_old_code_fails_on_a_new_column(
    tmp_path: Path, pg: Postgres
) -> None:
    """Wagtail's pages in miniature: the probe adds each node under the tree's root (a node
    model-bakery makes alone has no parent), with its own type, and writes it like any model;
    once a NOT NULL column without a database default is added, the old code's inserts fail."""
    name = f"probe_{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    v1 = build_variant(NOTEBOOK, "v1", tmp_path / "v1")
    env = environment(url, "notebook.settings.production")
    add_app(v1, env, "catalog", CATALOG_MODELS)
    (v1 / "catalog" / "migrations" / "0002_root.py").write_text(CATALOG_ROOT)
    manage(v1, env, "migrate")
    with v1_probe(v1, env, name, ["catalog"], tmp_path) as probe:
        assert (probe.models, probe.skipped) == (["catalog.Category", "catalog.Shelf"], {})
        before = wait_for_operations(probe, since=time.monotonic())
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("ALTER TABLE catalog_shelf ADD COLUMN aisle text NOT NULL")
        after = wait_for_operations(probe, since=time.monotonic())
    assert [sample for sample in before if sample.failure] == []
    assert {(s.method, s.path) for s in before} >= {
        (op, model)
        for op in ("create", "update", "read", "delete")
        for model in ("catalog.Category", "catalog.Shelf")
    }
    failed = {(s.failure, s.method, s.path) for s in after if s.failure}
    assert failed == {("orm", "create", "catalog.Shelf")}
    assert rows(url, "catalog_category", "catalog_shelf") == {
        "catalog_category": 1,  # the root, and nothing the probe wrote
        "catalog_shelf": 0,
    }


@pytest.mark.slow
def test_the_apps_own_model_bakery_wins_over_the_one_the_probe_lends(
    tmp_path: Path, notebook: tuple[Path, dict[str, str], str]
) -> None:
    """An app's model_bakery fits its own Django: the probe uses it (here a stand-in whose
    every call fails, so each model is listed as not probed, with its words)."""
    v1, env, database = notebook
    own = tmp_path / "own"
    (own / "model_bakery").mkdir(parents=True)
    (own / "model_bakery" / "__init__.py").write_text("")
    (own / "model_bakery" / "baker.py").write_text(OWN_BAKERY)
    with v1_probe(v1, {**env, "PYTHONPATH": str(own)}, database, ["journal"], tmp_path) as probe:
        skipped = dict(probe.skipped)
    assert probe.models == []
    assert skipped == {
        "journal.Entry": "create raised RuntimeError: the app's own model_bakery",
        "journal.Notebook": "create raised RuntimeError: the app's own model_bakery",
    }
