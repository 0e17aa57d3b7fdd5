"""The migration safety check against a real PostgreSQL.

Every scenario migration in fixtures/migration_scenarios gets exactly its expected findings:
each rule fires on its case and stays quiet on the look-alike next to it. Then the CLI end
to end: what `migrate` would apply next vs --all, LABEL filters, acknowledgements, exit codes.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pulumi_django.cli import main
from pulumi_django.cli.rehearsal.servers import Postgres, free_port
from pulumi_django.migration_check import (
    RULES,
    CheckResult,
    analyzer_arguments,
    embedded_command,
    run_check,
)

pytestmark = pytest.mark.slow

SCENARIOS = Path(__file__).resolve().parent / "fixtures" / "migration_scenarios"
SETTINGS = "scenarios.settings"
NOT_NULL = "not-null-column-without-db-default"
INDEX = "index-created-non-concurrently"

# Every migration of the scenario project (Django's own apps are left out of --all).
EXPECTED: dict[str, set[str]] = {
    "acknowledged.0001_initial": set(),
    "acknowledged.0002_drop_with_marker": {"column-dropped"},
    "acknowledged.0003_drop_without_marker": {"column-dropped"},
    "addcolumn.0001_initial": set(),
    "addcolumn.0002_python_default": {NOT_NULL},
    "addcolumn.0003_db_default": set(),
    "addcolumn.0004_nullable": set(),
    "addcolumn.0005_one_off_default": {NOT_NULL},
    "addcolumn.0006_order": set(),
    "addcolumn.0007_not_null_foreign_key": {"not-null-foreign-key", INDEX},
    "addcolumn.0008_nullable_foreign_key": {INDEX},
    "addcolumn.0009_new_table_then_field": set(),
    "addcolumn.0010_generated_column": set(),
    "addcolumn.0011_unique_not_null": {"unique-constraint-added"},
    "addcolumn.0012_unique_nullable": {INDEX},
    "alter.0001_initial": set(),
    "alter.0002_widen_varchar": set(),
    "alter.0003_shrink_varchar": {"column-length-shrunk"},
    "alter.0004_varchar_to_text": set(),
    "alter.0005_integer_to_bigint": {"column-type-changed"},
    "alter.0006_make_not_null": {"column-made-not-null"},
    "alter.0007_make_nullable": set(),
    "alter.0008_change_db_default": set(),
    "alter.0009_drop_db_default": {"db-default-dropped"},
    "alter.0010_add_unique": {"unique-constraint-added"},
    "alter.0011_add_index": {INDEX},
    "alter.0012_positive": {"check-constraint-added"},
    "alter.0013_db_column": {"column-renamed"},
    "alter.0014_widen_numeric": set(),
    "alter.0015_shrink_numeric": {"column-length-shrunk"},
    "alter.0016_foreign_key_constraint": {"foreign-key-added"},
    "alter.0017_many_to_many_drop_null": set(),
    "alter.0018_rename_positive": {"column-renamed"},
    "alter.0019_foreign_key_nullable": {"foreign-key-added"},
    "alter.0020_foreign_key_on_delete": set(),
    "alter.0021_rename_many_to_many": {"table-renamed"},
    # makemigrations split the first release of authors for the cycle with books.
    "authors.0001_initial": set(),
    "authors.0002_initial": set(),
    "authors.0003_author_editor": {"not-null-foreign-key", INDEX},
    "books.0001_initial": set(),
    "constraints.0001_initial": set(),
    "constraints.0002_unique_together": {"unique-constraint-added"},
    "constraints.0003_unique_constraint": {"unique-constraint-added"},
    "constraints.0004_remove_unique": set(),
    "constraints.0005_check_constraint": {"check-constraint-added"},
    "constraints.0006_check_not_valid": set(),
    "constraints.0007_validate_constraint": set(),
    "constraints.0008_add_index": {INDEX},
    "constraints.0009_add_index_concurrently": set(),
    "constraints.0010_remove_index": {"index-dropped-non-concurrently"},
    "constraints.0011_remove_index_concurrently": set(),
    "constraints.0012_new_table": set(),
    # Unique already: the index is still built under lock, nothing else.
    "constraints.0013_together_implied": {INDEX},
    "constraints.0014_remove_constraint": set(),
    "constraints.0015_together_to_constraint": {INDEX},
    "constraints.0016_unique_on_more_columns": {INDEX},
    "constraints.0017_unique_on_fewer_columns": {"unique-constraint-added"},
    "drop.0001_initial": set(),
    "drop.0002_remove_field": {"column-dropped"},
    "drop.0003_state_only_remove": set(),
    "drop.0004_drop_column_sql": {"column-dropped"},
    "drop.0005_database_remove": {"column-dropped"},
    "drop.0006_remove_many_to_many": {"table-dropped"},
    "drop.0007_delete_model": {"table-dropped"},
    "drop.0008_state_only_delete": set(),
    "drop.0009_rename_field": {"column-renamed"},
    "drop.0010_rename_field_kept_column": set(),
    "drop.0011_rename_model": {"table-renamed"},
    "drop.0012_rename_model_kept_table": set(),
    "drop.0013_alter_model_table": {"table-renamed"},
    "rawsql.0001_initial": set(),
    "rawsql.0002_drop_column_sql": {"column-dropped"},
    "rawsql.0003_irreversible_sql": {"run-sql-irreversible"},
    "rawsql.0004_index_concurrently_sql": set(),
    "rawsql.0005_index_sql": {INDEX},
    "rawsql.0006_foreign_key_not_valid_sql": set(),
    "rawsql.0007_foreign_key_sql": {"foreign-key-added"},
    "rawsql.0008_new_table_sql": set(),
    "rawsql.0009_rename_column_sql": {"column-renamed"},
    "rawsql.0010_widen_sql": set(),
    "rawsql.0011_shrink_sql": {"column-length-shrunk"},
    "rawsql.0012_type_sql": {"column-type-changed"},
    "rawsql.0013_set_not_null_sql": {"column-made-not-null"},
    "rawsql.0014_add_columns_with_default_sql": set(),
    "rawsql.0015_add_column_drop_default_sql": {NOT_NULL},
    "rawsql.0016_run_python": {"run-python-irreversible"},
    "rawsql.0017_run_python_reversible": set(),
    "rawsql.0018_custom_drop_column": {"column-dropped"},
    "rawsql.0019_custom_add_nullable_column": set(),
    "rawsql.0020_custom_writes_directly": {"operation-not-analysed"},
}
# Custom operations: only the SQL the schema editor renders (needs the database) tells.
CUSTOM_OPERATIONS = {
    "rawsql.0018_custom_drop_column",
    "rawsql.0019_custom_add_nullable_column",
    "rawsql.0020_custom_writes_directly",
}


@pytest.fixture(scope="module", autouse=True)
def _reuse_bytecode(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Each check starts a new interpreter; let them share compiled Django, for speed only."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
        patch.setenv("PYTHONPYCACHEPREFIX", str(tmp_path_factory.mktemp("pycache")))
        yield


@pytest.fixture(scope="module")
def new_database(pg: Postgres) -> Callable[[], str]:
    counter = itertools.count()
    return lambda: pg.create_database(f"scenarios_{next(counter)}")


@pytest.fixture(scope="module")
def partly_migrated(new_database: Callable[[], str]) -> str:
    """A database where `migrate addcolumn 0001` ran: one migration of the project applied."""
    database_url = new_database()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "django",
            "migrate",
            "addcolumn",
            "0001",
            "--settings",
            SETTINGS,
            "--pythonpath",
            str(SCENARIOS),
        ],
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        capture_output=True,
    )
    return database_url


@pytest.fixture(scope="module")
def every_migration(partly_migrated: str) -> CheckResult:
    return run_check(
        SETTINGS, pythonpath=str(SCENARIOS), database_url=partly_migrated, check_all=True
    )


def rules_by_migration(result: CheckResult) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {name: set() for name in result.checked}
    for finding in result.findings:
        found[finding.migration].add(finding.rule)
    return found


def cli(*arguments: str) -> list[str]:
    return ["check-migrations", "--settings", SETTINGS, "--pythonpath", str(SCENARIOS), *arguments]


def test_all_checks_every_migration_but_djangos_own(every_migration: CheckResult) -> None:
    """Applied or not: addcolumn.0001_initial is applied on this database."""
    assert sorted(every_migration.checked) == sorted(EXPECTED)
    # In the order migrate applies them: each app's migrations in sequence.
    for app in {name.split(".")[0] for name in EXPECTED}:
        own = [name for name in every_migration.checked if name.startswith(f"{app}.")]
        assert own == sorted(own)


@pytest.mark.parametrize("migration", sorted(EXPECTED))
def test_scenario_gets_exactly_its_findings(every_migration: CheckResult, migration: str) -> None:
    assert rules_by_migration(every_migration)[migration] == EXPECTED[migration]


def test_scenarios_cover_every_rule() -> None:
    assert set().union(*EXPECTED.values()) == set(RULES)


def test_rendering_sql_never_changes_the_database(
    every_migration: CheckResult, partly_migrated: str
) -> None:
    """A custom operation writing on its own cursor meets a read-only, rolled-back transaction."""
    (finding,) = [f for f in every_migration.findings if f.migration.endswith("writes_directly")]
    assert "cannot execute CREATE TABLE in a read-only transaction" in finding.message
    with psycopg.connect(partly_migrated) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables").fetchall()
    assert ("rawsql_sneaky",) not in tables
    assert ("addcolumn_customer",) in tables


def test_findings_carry_severity_reason_and_suggestion(every_migration: CheckResult) -> None:
    (finding,) = [f for f in every_migration.findings if f.migration.endswith("python_default")]
    assert finding.severity == "unsafe"
    assert finding.operation == "Add field gdpr_accepted to customer"
    assert "addcolumn_customer.gdpr_accepted" in finding.message
    assert "db_default=" in finding.suggestion
    warning = next(f for f in every_migration.findings if f.rule == INDEX)
    assert warning.severity == "warning"


def test_marker_in_the_migration_file_acknowledges_it(every_migration: CheckResult) -> None:
    marked = [f for f in every_migration.findings if f.migration.startswith("acknowledged.")]
    assert [(f.migration, f.acknowledged, f.acknowledgement) for f in marked] == [
        ("acknowledged.0002_drop_with_marker", True, "legacy_code unread since release 41"),
        ("acknowledged.0003_drop_without_marker", False, None),
    ]
    assert "acknowledged.0002_drop_with_marker" not in every_migration.refused
    assert "acknowledged.0003_drop_without_marker" in every_migration.refused


def test_offline_embedded_analyzer_checks_all_but_custom_operations(
    every_migration: CheckResult,
) -> None:
    """`python -c` with the packed analyzer, as the migration job runs it; no database."""
    arguments = analyzer_arguments(
        SETTINGS, pythonpath=str(SCENARIOS), check_all=True, offline=True
    )
    unreachable = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    completed = subprocess.run(
        embedded_command(arguments, python=sys.executable),
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": unreachable},
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    offline = rules_by_migration(CheckResult.from_json(json.loads(completed.stdout)))
    online = rules_by_migration(every_migration)
    for migration in CUSTOM_OPERATIONS:
        assert offline.pop(migration) == {"operation-not-analysed"}
        online.pop(migration)
    assert offline == online


def test_a_new_database_is_a_first_deploy_where_nothing_is_judged(
    new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """No migration applied, none of the project's tables: no version runs to be broken."""
    database_url = new_database()
    assert main(cli("--database-url", database_url, "--json")) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "checked": document["checked"],
        "findings": [],
        "firstDeploy": True,
    }
    assert set(document["checked"]) == set(EXPECTED) | {
        "contenttypes.0001_initial",
        "contenttypes.0002_remove_content_type_name",
    }
    assert main(cli("--database-url", database_url)) == 0
    output = capsys.readouterr().out
    assert output.startswith(f"Checked {len(EXPECTED) + 2} migrations.\n")
    assert output.endswith("\nFirst deploy: nothing runs yet, every migration is safe.\n")
    assert "UNSAFE" not in output
    with psycopg.connect(database_url) as connection:
        tables = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert tables.fetchall() == []  # not even django_migrations


def test_a_database_with_history_is_no_first_deploy(
    partly_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(cli("--database-url", partly_migrated, "--json")) == 1
    assert json.loads(capsys.readouterr().out)["firstDeploy"] is False


def test_default_checks_only_what_migrate_would_apply(
    partly_migrated: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(cli("--database-url", partly_migrated, "--json")) == 1
    document = json.loads(capsys.readouterr().out)
    assert "addcolumn.0001_initial" not in document["checked"]
    assert len(document["checked"]) == len(EXPECTED) + 2 - 1
    # One release: what it creates (every other app's tables) is new to the running version.
    assert not any(f["migration"].startswith("authors.") for f in document["findings"])
    finding_keys = {
        "migration",
        "operation",
        "rule",
        "severity",
        "message",
        "suggestion",
        "acknowledged",
    }
    assert all(finding_keys <= set(f) for f in document["findings"])
    unsafe = {f["migration"] for f in document["findings"] if f["severity"] == "unsafe"}
    # addcolumn_customer exists now; every other table is still new in this release.
    assert unsafe == {
        name
        for name, rules in EXPECTED.items()
        if name.startswith("addcolumn.") and rules - {INDEX}
    }


def test_labels_pick_apps_and_migrations(
    new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    """An app label takes all its migrations, Django's own apps too; text output by default."""
    assert main(cli("--database-url", new_database(), "drop.0009_rename", "contenttypes")) == 1
    output = capsys.readouterr().out
    assert output.startswith("Checked 3 migrations.\n")
    assert (
        "\ndrop.0009_rename_field\n"
        "  UNSAFE [column-renamed] Rename field name on thing to title\n"
        "    renames column drop_thing.name to title: the running version still uses the old name\n"
        "    safe: Keep the column name with `db_column=`;"
    ) in output
    assert "\ncontenttypes.0002_remove_content_type_name\n  UNSAFE [column-dropped]" in output
    assert "contenttypes.0001_initial\n" not in output  # nothing found there: not listed
    assert "Refused 2 of 3 migrations: contenttypes.0002_remove_content_type_name, " in output


def test_stack_config_and_flag_acknowledge_migrations(
    tmp_path: Path, new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "config:\n"
        "  django:target: local\n"
        "  django:migrations:\n"
        "    acknowledged:\n"
        "      - migration: acknowledged.0003_drop_without_marker\n"
        "        reason: number unread since release 12\n"
    )
    arguments = cli(
        "--database-url",
        new_database(),
        "--stack",
        "prod",
        "--cwd",
        str(tmp_path),
        "--acknowledge",
        "addcolumn.0002_python_default=backfilled by hand before release",
        "--json",
        "acknowledged",
        "addcolumn.0002",
    )
    assert main(arguments) == 0
    findings = json.loads(capsys.readouterr().out)["findings"]
    assert {(f["migration"], f["acknowledged"], f["acknowledgement"]) for f in findings} == {
        ("acknowledged.0002_drop_with_marker", True, "legacy_code unread since release 41"),
        ("acknowledged.0003_drop_without_marker", True, "number unread since release 12"),
        ("addcolumn.0002_python_default", True, "backfilled by hand before release"),
    }


def test_offline_needs_no_deployment_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The scenario settings read DATABASE_URL; offline, a placeholder stands in for it."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(cli("--offline", "--json", "drop.0009_rename_field")) == 1
    assert json.loads(capsys.readouterr().out)["checked"] == ["drop.0009_rename_field"]


def test_an_acknowledgement_naming_no_migration_or_app_is_pointed_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    typo = "acknowledged.0003_drop_withot_marker"
    arguments = cli(
        "--offline",
        "--acknowledge",
        f"{typo}=number unread since release 12",
        "--acknowledge",
        "wagtailusers=upgrade reviewed by hand",  # an app this project does not have
        "--acknowledge",
        "books.*=the app exists, so this is known",
    )
    assert main([*arguments, "--json", "acknowledged"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["unknownAcknowledgements"] == [typo, "wagtailusers.*"]
    assert main([*arguments, "acknowledged"]) == 1
    output = capsys.readouterr().out
    assert (
        f"the project has no such migration or app (check the spelling): {typo}, wagtailusers.*."
    ) in output
    assert "Refused 1 of 3 migrations: acknowledged.0003_drop_without_marker." in output


def test_a_whole_app_is_acknowledged_from_the_flag_and_the_stack_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A library's migrations cannot carry the marker: its app is allowed as a whole, in
    either spelling; a migration's own acknowledgement still comes first."""
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.prod.yaml").write_text(
        "config:\n"
        "  django:target: local\n"
        "  django:migrations:\n"
        "    acknowledged:\n"
        "      - migration: drop.*\n"
        "        reason: the drop app is retired, nothing reads it\n"
        "      - migration: drop.0009_rename_field\n"
        "        reason: title is read through db_column since 41\n"
    )
    arguments = cli(
        "--offline",
        "--stack",
        "prod",
        "--cwd",
        str(tmp_path),
        "--acknowledge",
        "alter=upgrade of the alter library reviewed",
        "--json",
        "drop",
        "alter",
    )
    assert main(arguments) == 0
    document = json.loads(capsys.readouterr().out)
    reasons = {(f["migration"], f["acknowledgement"]) for f in document["findings"]}
    assert ("drop.0002_remove_field", "the drop app is retired, nothing reads it") in reasons
    assert ("drop.0009_rename_field", "title is read through db_column since 41") in reasons
    assert ("alter.0003_shrink_varchar", "upgrade of the alter library reviewed") in reasons
    assert all(f["acknowledged"] for f in document["findings"])
    assert "unknownAcknowledgements" not in document


def test_labels_of_one_release_are_judged_together(capsys: pytest.CaptureFixture[str]) -> None:
    """drop.0002 drops a column of a table drop.0001 creates: shipped together, harmless."""
    labels = ["drop.0001_initial", "drop.0002_remove_field"]
    assert main(cli("--offline", "--json", *labels)) == 1
    assert json.loads(capsys.readouterr().out)["findings"][0]["rule"] == "column-dropped"
    assert main(cli("--offline", "--json", "--one-release", *labels)) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []


def test_messages_of_the_look_alike_rules(every_migration: CheckResult) -> None:
    def messages(migration: str) -> list[str]:
        return [f.message for f in every_migration.findings if f.migration == migration]

    assert messages("alter.0019_foreign_key_nullable") == [
        "re-creates the foreign key from alter_product.maker_id to alter_supplier: Django drops "
        "and re-adds it whenever it alters the column, validated at once under lock"
    ]
    assert messages("alter.0021_rename_many_to_many") == [
        "renames many-to-many table alter_product_resellers to alter_product_partners: the "
        "running version still uses the old name"
    ]
    (implied,) = [
        f for f in every_migration.findings if f.migration.endswith("together_to_constraint")
    ]
    assert implied.severity == "warning"
    assert implied.message.startswith(
        "adds UniqueConstraint membership_account_role to constraints_membership: the rows are "
        "unique on these columns already"
    )
    assert implied.suggestion == RULES["unique-constraint-added"].suggestion


def test_settings_that_ignore_database_url_are_warned_about(
    partly_migrated: str,
    new_database: Callable[[], str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The check reads the settings' own database, and says it is not the one asked for."""
    monkeypatch.setenv("SCENARIOS_OWN_DATABASE", partly_migrated)
    asked_for = new_database()
    arguments = ["check-migrations", "--settings", "scenarios.own_database"]
    arguments += ["--pythonpath", str(SCENARIOS), "--database-url", asked_for]
    assert main([*arguments, "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert "addcolumn.0001_initial" not in document["checked"]  # applied in partly_migrated
    (warning,) = document["warnings"]
    name = partly_migrated.rsplit("/", 1)[1]
    assert warning.startswith(
        f"the settings ignore DATABASE_URL ({asked_for}): the database checked is theirs, "
        f"'{name}' at 127.0.0.1:"
    )
    assert main(arguments) == 1
    assert "\nwarning: the settings ignore DATABASE_URL (" in capsys.readouterr().out
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["check-migrations", *arguments[1:5], "--offline", "--json", "drop.0002"]) == 1
    (warning,) = json.loads(capsys.readouterr().out)["warnings"]
    assert "deployed, the app would not use the database the stack gives it" in warning


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--settings", "scenarios.nope"], "no settings module 'scenarios.nope' under "),
        (["--all", "drop"], "--all and LABEL exclude each other"),
        (["drop.0099"], "drop.0099: There is no migration for 'drop' with the prefix '0099'"),
        (["drop", "--acknowledge", "drop.0002_x=short"], "give a reason of at least 10"),
        (
            ["drop", "--python", "/nonexistent/python"],
            "--python: interpreter /nonexistent/python: no such file",
        ),
        (["drop", "--pythonpath", "/nonexistent/dir"], "--pythonpath /nonexistent/dir: no such"),
        (["drop", "--stack", "prod", "--cwd", "/nonexistent"], "--cwd /nonexistent: no such"),
    ],
)
def test_usage_and_project_errors_exit_2_with_one_line(
    capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    full = [
        *cli("--database-url", "postgres://postgres@127.0.0.1:9/unused", "--offline"),
        *arguments,
    ]
    if "--settings" in arguments:
        full = ["check-migrations", "--pythonpath", str(SCENARIOS), *arguments]
    assert main(full) == 2
    error = capsys.readouterr().err
    assert error.startswith("pulumi-django check-migrations: error: ")
    assert message in error
    assert "Traceback" not in error


def test_unreachable_database_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    assert main(cli("--database-url", f"postgres://postgres@127.0.0.1:{port}/shop")) == 2
    error = capsys.readouterr().err
    assert f"cannot use the database 'shop' at 127.0.0.1:{port}: OperationalError" in error
    assert "Traceback" not in error
