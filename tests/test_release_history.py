"""The release history a stack keeps (`providers.release_history`): its provider driven through
create, diff and update as the engine drives it, and its place in both sites' release order."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pulumi.runtime import rpc
from release_histories import Deployments

from pulumi_django import recorder
from pulumi_django.cli.plan import Plan, plan_stack
from pulumi_django.providers import release_history as provider
from pulumi_django.providers.release_history import ReleaseHistoryProvider
from pulumi_django.recorder import RecordedResource, Recording
from pulumi_django.release_records import (
    ACKNOWLEDGED_UNSAFE,
    NOT_CHECKED,
    unsafe_acknowledged,
    utc_now,
)

HISTORY = "pulumi-python:dynamic/releases:ReleaseHistory"
ROOT = Path(__file__).resolve().parent.parent


def release(n: int) -> str:
    return f"123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:{n:064x}"


class Stack(Deployments):
    """Deployments of releases numbered 1, 2...; `pulumi up` of `n` rolls out `release(n)`."""

    def props(self, n: int | str, /, **changes: Any) -> dict[str, Any]:
        return super().props(release(n) if isinstance(n, int) else n, **changes)

    def up(self, n: int | str, /, **changes: Any) -> list[dict[str, Any]]:
        return super().up(release(n) if isinstance(n, int) else n, **changes)


def test_the_provider_moves_the_history_with_the_pure_records_the_cli_reads() -> None:
    """One definition of a record, shared: the provider's names are `release_records`' own."""
    from pulumi_django import release_records

    for name in ("ReleaseRecord", "record_release", "kept", "utc_now"):
        assert getattr(provider, name) is getattr(release_records, name)


def test_create_starts_the_history_with_the_release_its_time_and_its_migrations() -> None:
    stack = Stack()
    created = stack.provider.create(
        stack.props(1, applied_migrations=["blog.0001_initial"], unsafe_acknowledged=[])
    )
    assert created.id == "release-history"
    assert created.outs is not None
    assert created.outs["history"] == [
        {
            "release": release(1),
            "image": release(1),
            "releasedAt": "2025-01-01T00:01:00Z",
            "firstReleasedAt": "2025-01-01T00:01:00Z",
            "migrations": ["blog.0001_initial"],
            "unsafeAcknowledged": [],
            "checked": True,
            "checkedAgainst": None,
            "unsafeSince": [],
        }
    ]
    # The inputs stay in the state: the next diff compares them.
    assert created.outs["release"] == release(1)


def test_a_new_release_is_prepended_checked_against_the_one_it_replaced() -> None:
    stack = Stack()
    stack.up(1)
    history = stack.up(2, applied_migrations=["blog.0002_tags", "blog.0003_slug"])
    assert stack.releases() == [release(2), release(1)]
    assert history[0]["migrations"] == ["blog.0002_tags", "blog.0003_slug"]
    assert history[0]["checkedAgainst"] == release(1)
    assert history[0]["releasedAt"] == "2025-01-01T00:02:00Z"
    assert history[1]["releasedAt"] == "2025-01-01T00:01:00Z"


def test_the_history_keeps_at_most_keep_releases() -> None:
    stack = Stack(keep=3)
    for n in range(1, 6):
        stack.up(n)
    assert stack.releases() == [release(5), release(4), release(3)]


def test_a_release_whose_static_files_are_no_longer_kept_is_dropped() -> None:
    stack = Stack(keep=5)
    for n in (1, 2, 3):
        stack.up(n)
    # A release whose rollout failed took a place in the static release's keep list (its files
    # were published before the fleet step), which pruned release 1's files.
    history = stack.up(4, kept_static_releases=[release(4), "failed", release(3), release(2)])
    assert [record["release"] for record in history] == [release(4), release(3), release(2)]


def test_a_rollback_moves_the_release_to_the_top_keeping_its_record() -> None:
    stack = Stack()
    stack.up(1, applied_migrations=["blog.0001_initial"])
    stack.up(2, applied_migrations=["blog.0002_tags"])
    stack.up(3, applied_migrations=["blog.0003_slug"])
    history = stack.up(1)  # the rollback applies nothing
    assert stack.releases() == [release(1), release(3), release(2)]
    rolled_back = history[0]
    assert rolled_back["releasedAt"] == "2025-01-01T00:04:00Z"
    assert rolled_back["firstReleasedAt"] == "2025-01-01T00:01:00Z"
    assert rolled_back["migrations"] == ["blog.0001_initial"]
    assert rolled_back["checkedAgainst"] is None


def test_diff_moves_on_a_new_release_reference_or_keep_only() -> None:
    stack = Stack()
    stack.up(1)
    state = stack.state
    assert state is not None
    provider = stack.provider
    same = stack.props(1, applied_migrations=["x.0001"], unsafe_acknowledged=["x.0001"])
    assert provider.diff("id", state, same).changes is False
    assert provider.diff("id", state, stack.props(2)).changes is True
    assert provider.diff("id", state, stack.props(1, release=rpc.UNKNOWN)).changes is True
    assert provider.diff("id", state, stack.props(1, image="app:v1")).changes is True
    assert provider.diff("id", state, stack.props(1, keep=3)).changes is True
    assert provider.diff("id", state, stack.props(1)).replaces == []


def test_the_same_release_with_a_smaller_keep_only_trims() -> None:
    stack = Stack(keep=4)
    for n in (1, 2, 3, 4):
        stack.up(n)
    before = stack.history
    stack.keep = 2
    after = stack.up(4, kept_static_releases=[release(4), release(3)])
    assert after == before[:2]


def test_unsafe_acknowledged_migrations_are_unknown_to_all_but_the_version_they_were_checked_for():
    stack = Stack()
    stack.up(1)
    stack.up(2)
    stack.up(3, applied_migrations=["blog.0004_drop_x"], unsafe_acknowledged=["blog.0004_drop_x"])
    since = {record["release"]: record["unsafeSince"] for record in stack.history}
    # Checked against release 2, running then: the team accepted it for that version only.
    assert since[release(2)] == []
    assert since[release(3)] == []
    assert since[release(1)] == [
        {"migration": "blog.0004_drop_x", "release": release(3), "why": ACKNOWLEDGED_UNSAFE}
    ]
    assert stack.history[0]["unsafeAcknowledged"] == ["blog.0004_drop_x"]


def test_after_a_rollback_a_new_release_is_checked_against_the_rolled_back_one() -> None:
    stack = Stack()
    stack.up(1)
    stack.up(2)
    stack.up(1)  # back to 1, which runs now
    stack.up(3, applied_migrations=["blog.0005_x"], unsafe_acknowledged=["blog.0005_x"])
    since = {record["release"]: record["unsafeSince"] for record in stack.history}
    assert stack.history[0]["checkedAgainst"] == release(1)
    assert since[release(1)] == []
    assert [item["migration"] for item in since[release(2)]] == ["blog.0005_x"]


def test_unchecked_migrations_are_unknown_to_every_earlier_release() -> None:
    stack = Stack()
    stack.up(1)
    stack.up(2, applied_migrations=["blog.0002_a"], migrations_checked=False)
    top, earlier = stack.history
    assert top["checked"] is False
    assert earlier["unsafeSince"] == [
        {"migration": "blog.0002_a", "release": release(2), "why": NOT_CHECKED}
    ]
    # A release without migrations had nothing to check.
    assert stack.up(3, migrations_checked=False)[0]["checked"] is True


def test_unsafe_acknowledged_reads_the_checks_findings() -> None:
    findings = [
        {"migration": "a.0002", "severity": "unsafe", "acknowledged": True},
        {"migration": "a.0002", "severity": "unsafe", "acknowledged": True},
        {"migration": "a.0003", "severity": "unsafe", "acknowledged": False},
        {"migration": "a.0004", "severity": "warning", "acknowledged": True},
        {"migration": "b.0001", "severity": "unsafe", "acknowledged": True},
    ]
    assert unsafe_acknowledged(findings) == ["a.0002", "b.0001"]
    assert unsafe_acknowledged(None) == []


def test_utc_now_is_iso_8601_utc_to_the_second() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", utc_now())


# ---------------------------------------------------------------- in the sites


def history_of(recording: Recording) -> RecordedResource:
    return recording.one(HISTORY)


@pytest.mark.parametrize(
    ("stack", "fleet_step"),
    [
        ("dev", "pulumi-python:dynamic/fleet:RolloutVerification"),
        ("prod", "pulumi-python:dynamic/fleet:RolloutVerification"),
        ("local", "pulumi-python:dynamic/proxy:LocalSwitchVerdict"),
    ],
)
def test_the_history_is_recorded_after_the_fleet_step(
    stack_plan: Callable[[str], Plan], stack: str, fleet_step: str
) -> None:
    recording = stack_plan(stack).recording
    history = history_of(recording)
    for step in recording.find(fleet_step):
        assert recording.depends_on(history.urn, step.urn), step.name
    # Nothing of the release waits for it: recording it never holds a release up.
    assert not any(
        history.urn in recording.direct_dependencies(resource.urn)
        for resource in recording.resources
    )


# What the release steps report once they ran, as the real providers would (the recorder's
# mocks echo inputs, leaving these None): the static release's kept list, the migration job's
# applied migrations, the check's findings; and the history as its own provider computes it.
STEP_OUTPUTS = {
    "pulumi-python:dynamic/static:StaticRelease": "kept_releases",
    "pulumi-python:dynamic/static:LocalStaticVerdict": "kept_releases",
    "pulumi-python:dynamic/migrations:MigrationJob": "applied_migrations",
    "pulumi-python:dynamic/migrations:LocalJobVerdict": "applied_migrations",
    "pulumi-python:dynamic/migrations:MigrationCheck": "findings",
    "pulumi-python:dynamic/migrations:LocalCheckVerdict": "findings",
}
OLDER = "an-older-release"
FINDINGS = [
    {"migration": "sightings.0003_drop_notes", "severity": "unsafe", "acknowledged": True},
    {"migration": "sightings.0004_index", "severity": "warning", "acknowledged": False},
]


def step_outputs(inputs: Any) -> dict[str, Any]:
    return {
        "kept_releases": [inputs.get("release_id"), OLDER],
        "applied_migrations": ["sightings.0003_drop_notes", "sightings.0004_index"],
        "findings": FINDINGS,
    }


@pytest.mark.parametrize("stack", ["dev", "local"])
def test_the_stacks_releases_output_is_the_history_of_what_its_steps_reported(
    monkeypatch: pytest.MonkeyPatch, stack: str
) -> None:
    provider = ReleaseHistoryProvider(clock=lambda: "2025-02-03T04:05:06Z")
    for type_, key in STEP_OUTPUTS.items():
        monkeypatch.setitem(
            recorder.MOCK_OUTPUTS,
            type_,
            lambda _name, inputs, _region, key=key: {key: step_outputs(inputs)[key]},
        )
    monkeypatch.setitem(
        recorder.MOCK_OUTPUTS,
        HISTORY,
        lambda _name, inputs, _region: dict(provider.create(dict(inputs)).outs or {}),
    )
    outputs = plan_stack(ROOT, stack).recording.outputs
    [record] = outputs["releases"]
    assert record["release"] == outputs["releaseId"]
    # What `app.image` is set to to deploy it again: the digest reference; locally the tag the
    # engine built it under.
    image = (
        r"bigfoot-local-app-image:[0-9a-f]+" if stack == "local" else re.escape(record["release"])
    )
    assert re.fullmatch(image, record["image"])
    assert record["releasedAt"] == "2025-02-03T04:05:06Z"
    assert record["migrations"] == ["sightings.0003_drop_notes", "sightings.0004_index"]
    assert record["unsafeAcknowledged"] == ["sightings.0003_drop_notes"]
    assert record["checked"] is True


def test_locally_a_built_release_is_redeployed_by_its_built_tag(
    stack_plan: Callable[[str], Plan],
) -> None:
    recording = stack_plan("local").recording
    build = recording.one("docker:index/image:Image")
    assert history_of(recording).inputs["image"] == build.inputs["imageName"]


def test_the_second_example_records_its_releases_too(stack_plan: Callable[..., Plan]) -> None:
    recording = stack_plan("local", project=ROOT / "examples" / "notebook").recording
    history = history_of(recording)
    assert history.inputs["release"] == recording.outputs["releaseId"]
    for step in recording.find("pulumi-python:dynamic/proxy:LocalSwitchVerdict"):
        assert recording.depends_on(history.urn, step.urn)
