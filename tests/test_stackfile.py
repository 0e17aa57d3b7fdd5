"""Reading Pulumi.yaml and a stack file as the Pulumi CLI would, with one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pulumi_django.cli.stackfile import load_stack_file
from pulumi_django.errors import UsageError


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


def test_from_inside_a_project_the_error_names_the_project_to_run_from(project: Path) -> None:
    inside = project / "shop" / "templates"
    inside.mkdir(parents=True)
    with pytest.raises(UsageError) as raised:
        load_stack_file(inside, "dev")
    assert str(raised.value) == (
        f"no Pulumi.yaml in {inside}; the project is {project}: run from there or pass "
        f"--cwd {project}"
    )


def test_outside_any_project_the_error_says_to_run_from_one(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as raised:
        load_stack_file(tmp_path, "dev")
    assert str(raised.value) == (
        f"no Pulumi.yaml in {tmp_path}; run from the project or pass --cwd"
    )


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
        "(first on line 2); keep one"
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


def test_merge_keys_may_be_overridden(project: Path) -> None:
    (project / "Pulumi.dev.yaml").write_text(
        "sizes: &small\n  cpu: 256\n  memory: 512\n"
        "config:\n  django:fleet:\n    <<: *small\n    cpu: 512\n"
    )
    values, _ = load_stack_file(project, "dev").namespace("django")
    assert json.loads(values["fleet"]) == {"cpu": 512, "memory": 512}


def test_scalars_are_typed_as_pulumi_reads_them(project: Path) -> None:
    """YAML 1.2, as Go's yaml.v3: only true/false are booleans, and `1:30` is text."""
    (project / "Pulumi.dev.yaml").write_text(
        "config:\n  django:tags:\n"
        "    country: NO\n    switch: on\n    window: 1:30\n    flag: true\n    size: 12\n"
    )
    values, _ = load_stack_file(project, "dev").namespace("django")
    assert json.loads(values["tags"]) == {
        "country": "NO",
        "switch": "on",
        "window": "1:30",
        "flag": True,
        "size": 12,
    }


def test_an_app_given_by_flag_supplies_the_declared_defaults() -> None:
    """`rehearse --app DIR` with the repository's bigfoot stack: the settings module and the
    entry points are notebook's own, never bigfoot's names."""
    from pulumi_django.cli.stackfile import read_stack_config

    root = Path(__file__).resolve().parent.parent
    config = read_stack_config(root, "local", app_dir=root / "examples" / "notebook")
    assert config.app.context == str(root / "examples" / "notebook")
    assert config.app.settings_module == "notebook.settings.production"
    assert config.app.asgi_app == "notebook.asgi:application"
    unchanged = read_stack_config(root, "local", app_dir=root / "examples" / "bigfoot")
    assert unchanged.app.context == "examples/bigfoot"


def test_a_server_given_by_flag_resolves_the_entry_point_it_serves(tmp_path: Path) -> None:
    """`rehearse --server uvicorn` on a Gunicorn stack that names only its WSGI app: the ASGI
    app is the app's own, never the default's."""
    from pulumi_django.cli.stackfile import read_stack_config

    notebook = Path(__file__).resolve().parent.parent / "examples" / "notebook"
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.web.yaml").write_text(
        "config:\n"
        "  django:target: local\n"
        "  django:app:\n"
        f"    context: {notebook}\n"
        "    server: gunicorn\n"
        "    settingsModule: notebook.settings.production\n"
        "    wsgiApp: notebook.wsgi:application\n"
        "    staticRoot: /app/staticfiles\n"
    )
    served = read_stack_config(tmp_path, "web", server="uvicorn").app
    assert (served.server, served.asgi_app) == ("uvicorn", "notebook.asgi:application")
    assert read_stack_config(tmp_path, "web").app.server == "gunicorn"
