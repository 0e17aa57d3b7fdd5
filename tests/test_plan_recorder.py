"""The offline plan's recorder and JSON contract, on a small fixture program."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from pulumi_django.cli import APP_CHECKS_VARIABLE
from pulumi_django.cli.plan import (
    check_app_migrations,
    plan_stack,
    plan_stack_or_explain,
    render_text,
)
from pulumi_django.cli.stackfile import load_stack_file
from pulumi_django.config import ConfigError
from pulumi_django.errors import UsageError
from pulumi_django.recorder import record

TINY = Path(__file__).parent / "fixtures" / "tiny_project"
CLI = [str(Path(sys.executable).parent / "pulumi-django")]


@pytest.fixture(scope="module")
def tiny_plan():  # type: ignore[no-untyped-def]
    return plan_stack(TINY, "demo")


def test_urns_qualify_types_with_every_ancestor_but_the_stack(tiny_plan) -> None:  # type: ignore[no-untyped-def]
    recording = tiny_plan.recording
    assert (
        recording.one("tiny:index:Pair").urn == "urn:pulumi:demo::tiny::tiny:index:Pair::tiny-demo"
    )
    assert (
        recording.one(name="tiny-demo-vpc").urn
        == "urn:pulumi:demo::tiny::tiny:index:Pair$aws:ec2/vpc:Vpc::tiny-demo-vpc"
    )
    assert recording.one(name="tiny-demo-subnet").urn == (
        "urn:pulumi:demo::tiny::tiny:index:Pair$aws:ec2/vpc:Vpc$aws:ec2/subnet:Subnet"
        "::tiny-demo-subnet"
    )
    assert recording.one(type_="pulumi:pulumi:Stack").urn == (
        "urn:pulumi:demo::tiny::pulumi:pulumi:Stack::tiny-demo"
    )


def test_records_parents_dependencies_and_property_dependencies(tiny_plan) -> None:  # type: ignore[no-untyped-def]
    recording = tiny_plan.recording
    vpc = recording.one(name="tiny-demo-vpc")
    subnet = recording.one(name="tiny-demo-subnet")
    bucket = recording.one(name="files")
    assert subnet.parent == vpc.urn
    assert vpc.parent == recording.one("tiny:index:Pair").urn
    assert subnet.property_dependencies["vpcId"] == [vpc.urn]
    assert vpc.urn in subnet.dependencies
    # depends_on a component reaches its children; the bucket waits for the VPC.
    assert vpc.urn in bucket.dependencies
    assert recording.depends_on(bucket.urn, vpc.urn)
    assert not recording.depends_on(vpc.urn, bucket.urn)
    assert not recording.depends_on(vpc.urn, subnet.urn)


def test_inputs_are_camel_case_wire_values_with_secrets_masked(tiny_plan) -> None:  # type: ignore[no-untyped-def]
    subnet = tiny_plan.recording.one(name="tiny-demo-subnet")
    assert subnet.inputs["cidrBlock"] == "10.0.1.0/24"
    assert subnet.inputs["vpcId"] == "tiny-demo-vpc-id"
    assert subnet.inputs["tags"] == {"secret": "[secret]"}
    assert subnet.custom is True
    assert tiny_plan.recording.one("tiny:index:Pair").custom is False


def test_outputs_resolve_and_secrets_stay_masked(tiny_plan) -> None:  # type: ignore[no-untyped-def]
    outputs = tiny_plan.recording.outputs
    assert outputs["vpcId"] == "tiny-demo-vpc-id"
    assert outputs["desired"] == 1
    assert outputs["secretKey"] == "[secret]"
    assert outputs["greeting"] == "hello"  # a project-level config default


def test_json_contract(tiny_plan, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "plan.json"
    result = subprocess.run(
        [*CLI, "plan", "--stack", "demo", "--cwd", str(TINY), "--json", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(out.read_text())
    assert set(document) >= {"stack", "project", "target", "resources", "outputs"}
    assert (document["stack"], document["project"], document["target"]) == ("demo", "tiny", "aws")
    for resource in document["resources"]:
        assert set(resource) == {
            "urn",
            "type",
            "name",
            "custom",
            "parent",
            "dependencies",
            "propertyDependencies",
            "provider",
            "inputs",
            "options",
        }
    urns = [resource["urn"] for resource in document["resources"]]
    assert len(urns) == len(set(urns))
    # Parents come before their children.
    for index, resource in enumerate(document["resources"]):
        if resource["parent"]:
            assert urns.index(resource["parent"]) < index
    assert "hidden" not in out.read_text()
    assert "c2VjcmV0" not in out.read_text()
    assert "tiny-demo-subnet" in result.stdout


def test_text_shows_tree_and_outputs(tiny_plan) -> None:  # type: ignore[no-untyped-def]
    text = render_text(tiny_plan)
    assert "tiny:index:Pair  tiny-demo" in text
    assert "└─ aws:ec2/subnet:Subnet  tiny-demo-subnet" in text
    assert "Release order:" in text
    assert "secretKey  [secret]" in text


def test_plans_are_repeatable(tiny_plan) -> None:  # type: ignore[no-untyped-def]
    again = plan_stack(TINY, "demo")
    assert json.dumps(again.as_json()) == json.dumps(tiny_plan.as_json())


def test_the_json_plan_is_the_same_bytes_from_one_process_to_the_next(tmp_path: Path) -> None:
    """The SDK gathers a resource's dependencies in sets, ordered by string hashes that differ
    per process: two processes with other hash seeds still write the same JSON."""
    root = Path(__file__).resolve().parent.parent
    written = []
    for seed in ("1", "2"):
        target = tmp_path / f"plan-{seed}.json"
        done = subprocess.run(
            [*CLI, "plan", "--stack", "dev", "--cwd", str(root), "--json", str(target)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed, APP_CHECKS_VARIABLE: "skip"},
            check=False,
        )
        assert done.returncode == 0, done.stderr
        written.append(target.read_bytes())
    many = [r for r in json.loads(written[0])["resources"] if len(r["dependencies"]) > 1]
    assert many, "no resource with dependencies to order"
    assert written[0] == written[1]


def test_invalid_config_is_one_line_per_problem() -> None:
    with pytest.raises(ConfigError) as raised:
        plan_stack(TINY, "broken")
    problems = raised.value.problems
    assert "django:target = 'gcp': Input should be 'aws' or 'local'" in problems
    assert any(p.startswith("django:fleet.replicas: unknown key; allowed keys:") for p in problems)
    assert any(p.startswith("django:fleet.cpu = 300: not a Fargate size") for p in problems)


@pytest.mark.parametrize(
    ("stack", "message"),
    [
        ("nope", "no stack file Pulumi.nope.yaml"),
        ("../etc", "is not a stack name"),
        ("broken", "django:target = 'gcp'"),
    ],
)
def test_cli_errors_are_clear_and_untraced(stack: str, message: str) -> None:
    result = subprocess.run(
        [*CLI, "plan", "--stack", stack, "--cwd", str(TINY)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_what_the_program_refuses_is_one_line_without_traceback(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((root / name).read_text())
    (tmp_path / "Pulumi.typo.yaml").write_text(
        "config:\n  django:target: aws\n  django:app:\n    context: examples/bigfot\n"
    )
    result = subprocess.run(
        [*CLI, "plan", "--stack", "typo", "--cwd", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "pulumi-django plan: error: stack typo: django:app.context: "
        f"{tmp_path.resolve() / 'examples' / 'bigfot'} is not a directory\n"
    )


def test_json_into_a_directory_is_refused_before_planning(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "plan", "--stack", "demo", "--cwd", str(TINY), "--json", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert f"--json {tmp_path}: is a directory; give a file name" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_project_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no Pulumi\.yaml"):
        plan_stack(tmp_path, "dev")


@pytest.mark.slow
def test_plan_shows_the_migration_check_of_the_stacks_app(tmp_path: Path) -> None:
    from pulumi_django.cli.rehearsal.sources import build_variant

    bigfoot = Path(__file__).resolve().parent.parent / "examples" / "bigfoot"
    app = build_variant(bigfoot, "v2-unsafe", tmp_path / "app")
    # A build holds what the image's /app holds; the plan builds the image: its Dockerfile.
    shutil.copy(bigfoot / "Dockerfile", app / "Dockerfile")
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((TINY / name).read_text())
    (tmp_path / "Pulumi.unsafe.yaml").write_text(
        "config:\n  django:target: aws\n  django:name: tiny-demo\n"
        f"  django:app:\n    context: {app}\n"
    )
    plan = plan_stack(tmp_path, "unsafe")
    report = plan.as_json()["migrationCheck"]
    assert report["skipped"] is None
    # No deployed version to compare with: a first deploy, where nothing can break. The
    # migrations are counted, not listed (`--diff-against` judges the new ones).
    assert report["firstDeploy"] is True and report["findings"] == []
    assert "sightings.0002_sighting_gdpr_accepted" in report["checked"]
    text = render_text(plan)
    section = text.split("Migration safety check (app, offline):\n")[1].split("\n\n")[0]
    assert section == f"  Checked {len(report['checked'])} migrations."
    assert "  First deploy: nothing runs yet, every migration is safe.\n" in text
    assert "sightings.0002_sighting_gdpr_accepted" not in text


def test_a_misspelt_settings_module_is_named_in_the_plans_check(tmp_path: Path) -> None:
    app = Path(__file__).resolve().parent.parent / "examples" / "bigfoot"
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  django:target: aws\n  django:app:\n"
        f"    context: {app}\n    settingsModule: bigfoot.setings\n"
    )
    report = check_app_migrations(load_stack_file(tmp_path, "dev"))
    assert report.skipped == (f"django:app.settingsModule: no module 'bigfoot.setings' in {app}")


def test_a_misspelt_namespace_stops_the_program(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_text((TINY / name).read_text())
    (tmp_path / "Pulumi.typo.yaml").write_text(
        "config:\n  django:target: aws\n  djang:tags:\n    team: web\n"
    )
    with pytest.raises(UsageError) as raised:
        plan_stack_or_explain(tmp_path, "typo")
    assert "djang:tags: unknown namespace 'djang'; did you mean django:tags?" in str(raised.value)


def test_aliases_are_recorded_as_urns_whether_given_as_urns_or_specs() -> None:
    import pulumi_random as random

    def program() -> None:
        parent = pulumi.ComponentResource("acme:x:Box", "box")
        random.RandomPet(
            "pet",
            opts=pulumi.ResourceOptions(
                parent=parent,
                aliases=[
                    pulumi.Alias(name="old-pet"),
                    pulumi.Alias(parent=pulumi.ROOT_STACK_RESOURCE),
                ],
            ),
        )

    recording = record(program, project="p", stack="s", config={})
    pet = recording.one("random:index/randomPet:RandomPet")
    assert pet.options["aliases"] == [
        "urn:pulumi:s::p::acme:x:Box$random:index/randomPet:RandomPet::old-pet",
        "urn:pulumi:s::p::random:index/randomPet:RandomPet::pet",
    ]


def test_a_replacement_guard_turned_off_is_a_warning_of_the_plan(tmp_path: Path) -> None:
    """`django:allowReplacement: [database]` is accepted, and the plan says what it turns off."""
    shutil.copytree(TINY, tmp_path, dirs_exist_ok=True)
    demo = (TINY / "Pulumi.demo.yaml").read_text()
    (tmp_path / "Pulumi.guard.yaml").write_text(demo + "  django:allowReplacement: [database]\n")
    warning = (
        "django:allowReplacement: the replacement guard of the database is off: a change that "
        "replaces it (and loses its data) goes through at `pulumi up`; remove database from "
        "the list once that deployment is done"
    )
    plan = plan_stack(tmp_path, "guard")
    assert plan.as_json()["warnings"] == [warning]
    assert f"\nwarning: {warning}\n" in render_text(plan)
    assert plan_stack(tmp_path, "demo").as_json()["warnings"] == []


class _Echo(pulumi.dynamic.ResourceProvider):
    def __init__(self) -> None:
        super().__init__()
        self.defaults = {"region": "eu-west-1"}  # state to pickle, as real providers have

    def create(self, props: dict[str, object]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult("echo", props)


class _EchoResource(pulumi.dynamic.Resource, module="test", name="Echo"):
    def __init__(self, name: str) -> None:
        super().__init__(_Echo(), name, {"a": 1})


def test_many_recordings_in_one_process_never_nest_pickles_wrappers_past_the_limit() -> None:
    """Pulumi wraps pickle's `_batch_setitems` once per dynamic resource and never unwraps it;
    the suite and `plan --diff-against` record many programs in one process."""
    import pickle

    from pulumi.dynamic.dynamic import serialize_provider

    before = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]
    serialize_provider(_Echo())
    assert pickle._Pickler._batch_setitems is not before  # type: ignore[attr-defined]
    # What a few hundred plans' dynamic resources leave behind.
    for _wrap in range(sys.getrecursionlimit()):
        inner = pickle._Pickler._batch_setitems  # type: ignore[attr-defined]

        def wrapped(self: object, items: object, inner: object = inner) -> None:
            inner(self, items)  # type: ignore[operator]

        pickle._Pickler._batch_setitems = wrapped  # type: ignore[attr-defined]

    def program() -> None:
        _EchoResource("echo")

    recording = record(program, project="p", stack="s", config={})
    assert recording.one(name="echo")


def test_a_recording_walks_no_stack_per_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    """The source position the SDK finds by walking the stack at every registration is for the
    engine's diagnostics, never recorded: a recording skips the walk, and puts the SDK back."""
    from pulumi.runtime import resource as resource_runtime

    walks: list[int] = []
    original = resource_runtime._get_stack_trace

    def counted() -> object:
        walks.append(1)
        return original()

    monkeypatch.setattr(resource_runtime, "_get_stack_trace", counted)
    plan = plan_stack(TINY, "demo")
    assert len(plan.recording.resources) > 3
    assert walks == []
    assert resource_runtime._get_stack_trace is counted
