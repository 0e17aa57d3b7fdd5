"""Reading Pulumi.yaml and a stack file as the Pulumi CLI would, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from pulumi_django.errors import UsageError
from pulumi_django.stackfile import load_stack_file


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    return tmp_path


def stack_error(project: Path, text: str) -> str:
    (project / "Pulumi.dev.yaml").write_text(text)
    with pytest.raises(UsageError) as raised:
        load_stack_file(project, "dev")
    message = str(raised.value)
    assert "\n" not in message
    return message


def test_config_values_are_read_under_their_namespace(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text(
        "config:\n  django:target: aws\n  django:fleet:\n    desiredCount: 2\n"
    )
    values, secrets = load_stack_file(project, "dev").namespace("django")
    assert values == {"target": "aws", "fleet": '{"desiredCount": 2}'}
    assert secrets == set()


def test_a_key_written_twice_is_refused_not_dropped(project: Path) -> None:
    message = stack_error(
        project,
        "config:\n"
        "  django:fleet:\n    cpu: 256\n    memory: 512\n"
        "  django:target: aws\n"
        "  django:fleet:\n    desiredCount: 2\n",
    )
    assert message == (
        f"{project / 'Pulumi.dev.yaml'} is not valid YAML: line 6: 'django:fleet' appears twice "
        "(first on line 2); keep one and merge the two"
    )


def test_a_nested_key_written_twice_is_refused(project: Path) -> None:
    message = stack_error(project, "config:\n  django:fleet:\n    cpu: 256\n    cpu: 512\n")
    assert "line 4: 'cpu' appears twice (first on line 3)" in message


def test_broken_yaml_is_one_line_with_its_line_number(project: Path) -> None:
    message = stack_error(project, "config:\n  django:target: aws\n  django:fleet: {cpu: 256\n")
    assert "is not valid YAML: line " in message


def test_config_must_be_a_mapping(project: Path) -> None:
    assert stack_error(project, "config: []\n").endswith(
        "`config` must be a mapping of keys to values"
    )
