"""README promises that must stay true: the quick start and the generated config and component
references."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from pulumi_django.cli import component_reference as components
from pulumi_django.config.reference import README_END, README_START, reference_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_quick_start_is_exactly_two_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines()]
    assert [c for c in commands if c] == ["make demo", "make test"]


def test_config_reference_matches_the_models() -> None:
    generated = README.split(README_START, 1)[1].split(README_END, 1)[0]
    assert generated.strip() == reference_table().strip(), "run `make docs`"


def test_component_reference_matches_the_components() -> None:
    generated = README.split(components.README_START, 1)[1].split(components.README_END, 1)[0]
    assert generated.strip() == components.component_tables().strip(), "run `make docs`"


def test_config_reference_command_prints_the_same_table() -> None:
    cli = Path(sys.executable).parent / "pulumi-django"
    result = subprocess.run([cli, "config-reference"], capture_output=True, text=True, check=True)
    assert result.stdout == reference_table()


def test_ci_runs_the_readme_test_command() -> None:
    run = (ROOT / ".ci" / "run").read_text()
    assert "make test" in run
    assert "make test" in README


def test_no_file_names_a_package_registry_host() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # Spelled in pieces so that this file does not name them either.
    names = [("pypi", "org"), ("files", "pythonhosted"), ("registry", "npmjs"), ("deb", "debian")]
    hosts = re.compile("|".join(r"\.".join(parts) for parts in names))
    offenders = [
        name
        for name in tracked
        if (ROOT / name).is_file() and hosts.search((ROOT / name).read_text(errors="ignore"))
    ]
    assert offenders == []
    assert not (ROOT / "uv.lock").exists()
