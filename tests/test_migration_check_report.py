"""The migration check's pure parts: result JSON, acknowledgements, text report, the docs'
rules table, the marker, and that the analyzer needs nothing but the stdlib and Django."""

from __future__ import annotations

import ast
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.migration_check import (
    RULES,
    CheckResult,
    Finding,
    acknowledgement_reasons,
    analyzer_arguments,
    analyzer_source,
    embedded_command,
    format_report,
    parse_acknowledgements,
)
from pulumi_django.migration_check.analyzer import (
    ProjectError,
    _ignored_database_url,
    _marker_reason,
)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "migration-check.md"


def finding(migration: str, rule: str, severity: str = "unsafe") -> Finding:
    return Finding(
        migration=migration,
        operation="Remove field price from product",
        rule=rule,
        severity=severity,
        message="drops column shop_product.price",
        suggestion=RULES[rule].suggestion,
    )


RESULT = CheckResult(
    checked=["shop.0002_index", "shop.0003_drop_price", "shop.0004_noop"],
    findings=[
        finding("shop.0002_index", "index-created-non-concurrently", "warning"),
        finding("shop.0003_drop_price", "column-dropped"),
    ],
)


def test_result_round_trips_through_json() -> None:
    document = RESULT.to_json()
    assert set(document) == {"checked", "findings", "firstDeploy"}
    assert document["firstDeploy"] is False
    assert set(document["findings"][1]) == {
        "migration",
        "operation",
        "rule",
        "severity",
        "message",
        "suggestion",
        "acknowledged",
        "acknowledgement",
    }
    assert CheckResult.from_json(document) == RESULT
    document["findings"][0]["added_by_a_newer_version"] = 1
    assert CheckResult.from_json(document) == RESULT
    # An older analyzer's report (in an older image) has no firstDeploy.
    del document["firstDeploy"]
    assert CheckResult.from_json(document) == RESULT
    noted = CheckResult(["shop.0001_initial"], [], ["nope.*"], True, ["the settings ignore it"])
    assert noted.to_json() == {
        "checked": ["shop.0001_initial"],
        "findings": [],
        "firstDeploy": True,
        "unknownAcknowledgements": ["nope.*"],
        "warnings": ["the settings ignore it"],
    }
    assert CheckResult.from_json(noted.to_json()) == noted


def test_only_unacknowledged_unsafe_findings_refuse() -> None:
    assert (RESULT.refused, RESULT.exit_code) == (["shop.0003_drop_price"], 1)
    allowed = RESULT.acknowledge({"shop.0003_drop_price": "price unread since release 41"})
    assert (allowed.refused, allowed.exit_code) == ([], 0)
    assert [f.acknowledgement for f in allowed.findings] == [None, "price unread since release 41"]
    warnings_only = CheckResult(RESULT.checked, RESULT.findings[:1])
    assert warnings_only.exit_code == 0


def test_a_whole_app_acknowledges_each_of_its_migrations_but_its_own_come_first() -> None:
    result = CheckResult(
        checked=["shop.0003_drop_price", "shopping.0002_drop", "wagtailusers.0012_x"],
        findings=[
            finding("shop.0003_drop_price", "column-dropped"),
            finding("shopping.0002_drop", "column-dropped"),
            finding("wagtailusers.0012_x", "column-dropped"),
        ],
    )
    allowed = result.acknowledge(
        {"shop.*": "the shop app is retired", "wagtailusers.0012_x": "reviewed on its own"}
    )
    assert [f.acknowledgement for f in allowed.findings] == [
        "the shop app is retired",
        None,  # shopping is another app
        "reviewed on its own",
    ]
    assert allowed.refused == ["shopping.0002_drop"]


def test_stack_config_takes_a_whole_app_in_either_spelling() -> None:
    def acknowledged(*entries: tuple[str, str]) -> dict[str, str]:
        listed = [{"migration": name, "reason": reason} for name, reason in entries]
        return {"target": "aws", "migrations": json.dumps({"acknowledged": listed})}

    config = parse_stack_config(
        acknowledged(
            ("wagtailusers", "upgrade to 7.1 reviewed"),
            ("taggit.*", "upgrade to 6.0 reviewed"),
            ("shop.0007_drop_price", "price unread since 41"),
        ),
        set(),
    )
    assert acknowledgement_reasons(config.migrations.acknowledged) == {
        "wagtailusers.*": "upgrade to 7.1 reviewed",
        "taggit.*": "upgrade to 6.0 reviewed",
        "shop.0007_drop_price": "price unread since 41",
    }
    with pytest.raises(ConfigError, match=r"or app_label\.\* for every migration of an app"):
        parse_stack_config(acknowledged(("shop.0007", "a reason long enough")), set())


@pytest.mark.parametrize(
    ("settings", "ignored"),
    [
        ({"NAME": "shop", "USER": "web", "HOST": "", "PORT": ""}, False),  # local, default port
        ({"NAME": "shop", "USER": "web", "HOST": "127.0.0.1", "PORT": 5432}, False),
        ({"NAME": "db.sqlite3", "HOST": "", "PORT": ""}, True),
        ({"NAME": "shop", "USER": "web", "HOST": "db.internal", "PORT": ""}, True),
        ({"NAME": "shop", "USER": "web", "HOST": "localhost", "PORT": "6432"}, True),
    ],
)
def test_settings_that_name_another_database_than_database_url_are_told(
    monkeypatch: pytest.MonkeyPatch, settings: dict[str, object], ignored: bool
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://web:hunter2@localhost:5432/shop")
    warnings = _ignored_database_url(settings, offline=False)
    assert bool(warnings) == ignored
    for warning in warnings:
        assert warning.startswith("the settings ignore DATABASE_URL (postgres://web@localhost:")
        assert "hunter2" not in warning
    monkeypatch.delenv("DATABASE_URL")
    assert _ignored_database_url(settings, offline=False) == []


def test_first_deploy_report_says_so_instead_of_refusing() -> None:
    result = CheckResult(
        checked=["shop.0001_initial", "shop.0002_drop_price"],
        findings=[],
        unknown_acknowledgements=["nope.*"],
        first_deploy=True,
        warnings=["the settings ignore DATABASE_URL"],
    )
    assert format_report(result) == (
        "Checked 2 migrations.\n"
        "warning: the settings ignore DATABASE_URL\n"
        "\n"
        "Acknowledged, but the project has no such migration or app (check the spelling): "
        "nope.*.\n"
        "First deploy: nothing runs yet, every migration is safe."
    )


def test_text_report_groups_by_migration_with_suggestions() -> None:
    text = format_report(RESULT)
    assert text.startswith("Checked 3 migrations.\n\nshop.0002_index\n  warning [index-created")
    assert (
        "shop.0003_drop_price\n"
        "  UNSAFE [column-dropped] Remove field price from product\n"
        "    drops column shop_product.price\n"
        f"    safe: {RULES['column-dropped'].suggestion}\n"
    ) in text
    assert "shop.0004_noop" not in text.split("Refused")[0]
    assert "Refused 1 of 3 migrations: shop.0003_drop_price." in text
    allowed = format_report(RESULT.acknowledge({"shop.0003_drop_price": "unread since 41"}))
    assert "  acknowledged: unread since 41\n  UNSAFE (acknowledged) [column-dropped]" in allowed
    assert allowed.endswith("Nothing unsafe (1 warning).")


def test_acknowledge_flag_needs_a_migration_or_app_name_and_a_reason() -> None:
    assert parse_acknowledgements(
        [
            "shop.0007_drop_price=price unread since 41",
            "wagtailusers=upgrade to 7.1 reviewed",
            "taggit.*=upgrade to 6.0 reviewed",
        ]
    ) == {
        "shop.0007_drop_price": "price unread since 41",
        "wagtailusers.*": "upgrade to 7.1 reviewed",
        "taggit.*": "upgrade to 6.0 reviewed",
    }
    for wrong in ("0007_drop_price", "shop.0007", "shop.*_x", "Shop", "shop.0007_x.*"):
        with pytest.raises(ValueError, match=r"use app_label\.migration_name=REASON, .* or app"):
            parse_acknowledgements([f"{wrong}=price unread since 41"])
    with pytest.raises(ValueError, match="reason of at least 10 characters"):
        parse_acknowledgements(["shop.0007_drop_price=ok"])


def test_docs_list_every_rule_with_its_severity_and_texts() -> None:
    section = DOCS.read_text().split("\n## Rules\n")[1].split("\n## ")[0]
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| `")]
    documented = {row[0].strip("| `"): (row[1], row[2], row[3].rstrip(" |")) for row in rows}
    assert documented == {
        rule.id: (rule.severity, rule.what, rule.suggestion) for rule in RULES.values()
    }


def test_analyzer_imports_only_the_stdlib_and_django() -> None:
    tree = ast.parse(analyzer_source())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"django"}


def test_embedded_command_runs_the_packed_analyzer() -> None:
    arguments = analyzer_arguments(
        "shop.settings",
        labels=["shop"],
        offline=True,
        one_release=True,
        acknowledged={"shop.0002_x": "why not ok", "taggit": "upgrade reviewed"},
    )
    assert arguments == [
        "--settings",
        "shop.settings",
        "--offline",
        "--one-release",
        "--acknowledge",
        "shop.0002_x=why not ok",
        "--acknowledge",
        "taggit.*=upgrade reviewed",
        "--json",
        "shop",
    ]
    assert "--first-deploy" in analyzer_arguments("shop.settings", first_deploy=True)
    command = embedded_command(["--help"], python=sys.executable)
    assert command[:2] == [sys.executable, "-c"]
    assert len(command[2]) < len(analyzer_source()) / 2
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "--settings SETTINGS" in completed.stdout


def migration_in_file(path: Path, text: str) -> object:
    """An instance of a class defined in a module at `path`, as Django's loader makes them."""
    path.write_text(text + "\n\nclass Migration:\n    pass\n")
    spec = importlib.util.spec_from_file_location(f"fake_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module.Migration()


def test_marker_reads_the_reason_and_refuses_a_missing_one(tmp_path: Path) -> None:
    marked = tmp_path / "m0002.py"
    assert (
        _marker_reason(
            migration_in_file(
                marked, "#  pulumi-django: acknowledge-unsafe  unread since release 41"
            )
        )
        == "unread since release 41"
    )
    assert (
        _marker_reason(migration_in_file(tmp_path / "m0003.py", "# pulumi-django: other")) is None
    )
    short = tmp_path / "m0004.py"
    with pytest.raises(ProjectError, match=rf"{short}:2: .* needs a reason of at least 10"):
        _marker_reason(migration_in_file(short, "\n# pulumi-django: acknowledge-unsafe"))
