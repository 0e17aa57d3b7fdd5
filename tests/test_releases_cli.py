"""`pulumi-django releases` and `rollback` against the offline plan's stack outputs, with a
release history made by the history's own provider releasing one version after another, read
from `--outputs FILE` or from a stub `pulumi` on PATH (which also records what `--yes` runs)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from path_stubs import python_executable
from release_histories import Deployments

from pulumi_django.cli import main
from pulumi_django.cli.plan import Plan

CONFIG_SET = "pulumi config set --stack {stack} --path django:app.image {image}"
SAFE_FOR = "checked safe, or acknowledged unsafe on purpose (migrations.acknowledged), for"


def digest(name: str, prefix: str = "") -> str:
    """A digest for version `name`, starting with `prefix` when given."""
    value = hashlib.sha256(name.encode()).hexdigest()
    return (prefix + value)[:64]


# v1 and v3 share their first 8 hex digits, so a short prefix names both.
DIGESTS = {
    "v0": digest("v0"),
    "v1": digest("v1", "abcdef12"),
    "v2": digest("v2"),
    "v3": digest("v3", "abcdef12"),
    "v4": digest("v4"),
    "v5": digest("v5"),
}
# What each version's migration job applied, and which of them the check found unsafe but the
# stack acknowledged (the check judged them against the version running before).
MIGRATIONS = {
    "v0": ["sightings.0001_initial"],
    "v1": ["sightings.0002_tags"],
    "v2": ["sightings.0003_drop_notes"],
    "v3": [],
    "v4": ["sightings.0004_drop_legacy"],
    "v5": ["sightings.0005_slug"],
}
UNSAFE = {"v2": ["sightings.0003_drop_notes"], "v4": ["sightings.0004_drop_legacy"]}


@dataclass
class Deployed:
    """A stack of the plan whose history holds v1..v5 (v0's files are no longer kept)."""

    stack: str
    root: Path
    outputs: dict[str, Any]
    deployments: Deployments
    release_ids: dict[str, str]
    images: dict[str, str]
    file: Path

    def up(self, version: str) -> None:
        """`pulumi up` of `version` (a rollback applies nothing); the outputs follow."""
        self.deployments.up(self.release_ids[version], image=self.images[version])
        self.write(version)

    def write(self, running: str) -> None:
        self.outputs["releases"] = self.deployments.history
        self.outputs["releaseId"] = self.release_ids[running]
        self.file.write_text(json.dumps(self.outputs))

    def cli(self, command: str, *argv: str) -> list[str]:
        return [command, "--stack", self.stack, "--cwd", str(self.root), *argv]

    def short(self, version: str) -> str:
        return DIGESTS[version][:12]

    def history_of(self, version: str) -> dict[str, Any]:
        return next(
            r for r in self.outputs["releases"] if r["release"] == self.release_ids[version]
        )

    def restart(self, *versions: str) -> None:
        """A new history: `versions` rolled out in turn, the last running."""
        self.deployments = Deployments(keep=self.deployments.keep)
        for version in versions:
            self.deployments.up(
                self.release_ids[version],
                image=self.images[version],
                applied_migrations=MIGRATIONS[version],
                unsafe_acknowledged=UNSAFE.get(version, []),
            )
        self.write(versions[-1])


def deploy(plan: Plan, root: Path, tmp_path: Path) -> Deployed:
    """The plan's outputs after v0..v5 rolled out in turn, v5 running."""
    outputs = dict(plan.recording.outputs)
    stack = plan.stack_file.stack
    local = plan.target == "local"
    if local:
        release_ids = {version: f"sha256:{value}" for version, value in DIGESTS.items()}
        images = {version: f"{stack}-app-image:{version}build" for version in DIGESTS}
    else:
        repository = str(outputs["releaseId"]).partition("@")[0]
        release_ids = {
            version: f"{repository}@sha256:{value}" for version, value in DIGESTS.items()
        }
        images = dict(release_ids)
    assert plan.config is not None
    deployments = Deployments(keep=plan.config.static.keep_releases)
    for version in DIGESTS:
        deployments.up(
            release_ids[version],
            image=images[version],
            applied_migrations=MIGRATIONS[version],
            unsafe_acknowledged=UNSAFE.get(version, []),
        )
    deployed = Deployed(
        stack, root, outputs, deployments, release_ids, images, tmp_path / "outputs.json"
    )
    deployed.write("v5")
    return deployed


@pytest.fixture
def dev(stack_plan: Callable[[str], Plan], project_root: Path, tmp_path: Path) -> Deployed:
    return deploy(stack_plan("dev"), project_root, tmp_path)


@pytest.fixture
def local(stack_plan: Callable[[str], Plan], project_root: Path, tmp_path: Path) -> Deployed:
    return deploy(stack_plan("local"), project_root, tmp_path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(capsys: pytest.CaptureFixture[str], command: str, *argv: str) -> str:
    """The one-line error of a command that must fail with exit 2."""
    code, out, err = run(capsys, *argv)
    assert code == 2, out
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"pulumi-django {command}: error: "), err
    return lines[0]


def stub_pulumi(bin_dir: Path, deployed: Deployed, *, up_exit: int = 0) -> Path:
    """A `pulumi` that prints the stack's outputs and records every other call (cwd, argv),
    exiting `up_exit` from `pulumi up`."""
    calls = bin_dir.parent / "pulumi-calls.txt"
    script = f"""import os, sys
argv = sys.argv[1:]
if argv[:2] == ["stack", "output"]:
    print(open({str(deployed.file)!r}).read())
    sys.exit(0)
with open({str(calls)!r}, "a") as calls:
    calls.write(os.getcwd() + " " + " ".join(argv) + "\\n")
sys.exit({up_exit} if argv[:1] == ["up"] else 0)
"""
    python_executable(bin_dir, "pulumi", script)
    return calls


# ---------------------------------------------------------------- releases


def test_releases_lists_the_kept_releases_newest_first_marking_the_running_one(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *dev.cli("releases", "--outputs", str(dev.file)))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("Releases of stack dev, newest first (static.keepReleases: 5")
    rows = [line for line in lines if "released 2025-" in line]
    assert [row.split()[:3] for row in rows] == [
        ["*", "1", dev.short("v5")],
        ["2", dev.short("v4"), "released"],
        ["3", dev.short("v3"), "released"],
        ["4", dev.short("v2"), "released"],
        ["5", dev.short("v1"), "released"],
    ]
    assert rows[0].endswith("migrations 1: sightings.0005_slug")
    assert rows[2].endswith(f"released {dev.history_of('v3')['releasedAt']}  no migrations")
    assert f"      image: {dev.images['v4']}" in lines
    assert "      unsafe acknowledged: sightings.0004_drop_legacy" in lines
    assert dev.short("v0") not in out  # its static files are no longer kept


def test_releases_json_has_every_record_in_full(
    local: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *local.cli("releases", "--outputs", str(local.file), "--json"))
    assert code == 0
    document = json.loads(out)
    assert document["stack"] == "local"
    assert document["target"] == "local"
    assert document["running"] == local.release_ids["v5"]
    releases = document["releases"]
    assert [(r["index"], r["digest"], r["running"]) for r in releases] == [
        (1, local.short("v5"), True),
        (2, local.short("v4"), False),
        (3, local.short("v3"), False),
        (4, local.short("v2"), False),
        (5, local.short("v1"), False),
    ]
    assert releases[1]["image"] == local.images["v4"]
    assert releases[1]["migrations"] == ["sightings.0004_drop_legacy"]
    assert releases[1]["unsafeAcknowledged"] == ["sightings.0004_drop_legacy"]
    assert releases[0]["releasedAt"] > releases[1]["releasedAt"]


def test_releases_reads_the_outputs_from_the_pulumi_cli(
    dev: Deployed, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stub_pulumi(bin_dir, dev)
    code, out, _ = run(capsys, *dev.cli("releases"))
    assert code == 0
    assert f"*  1  {dev.short('v5')}" in out


@pytest.mark.parametrize("releases", ["missing", None, []])
def test_a_stack_without_a_release_history_says_what_records_it(
    stack_plan: Callable[[str], Plan],
    project_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    releases: Any,
) -> None:
    """Deployed before 0.2, or the offline plan (`releases: null`, no release rolled out)."""
    file = tmp_path / "outputs.json"
    outputs = {k: v for k, v in stack_plan("dev").recording.outputs.items() if k != "releases"}
    if releases != "missing":
        outputs["releases"] = releases
    file.write_text(json.dumps(outputs))
    for command in ("releases", "rollback"):
        extra = ["--to", "previous"] if command == "rollback" else []
        line = refused(
            capsys,
            command,
            command,
            *["--stack", "dev", "--cwd", str(project_root), "--outputs", str(file), *extra],
        )
        assert line.endswith(
            "stack dev has no release history yet (output 'releases' is empty): it is recorded "
            "by each `pulumi up` that rolls a release out with pulumi-django 0.2+; run "
            "`pulumi up --stack dev` to record the next one"
        )


def test_no_such_stack_is_one_line(project_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("releases", "rollback"):
        extra = ["--to", "2"] if command == "rollback" else []
        line = refused(
            capsys, command, command, "--stack", "staging", "--cwd", str(project_root), *extra
        )
        assert "no stack file Pulumi.staging.yaml" in line


# ---------------------------------------------------------------- rollback: allowed


def test_rolling_back_one_release_needs_no_reverse_migration(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", "previous"))
    assert code == 0
    assert f"Rolling back stack dev to release 2 ({dev.short('v4')})" in out
    assert (
        "Rolling back one release needs no reverse migration: every migration of "
        f"{dev.short('v5')} (1: sightings.0005_slug) was {SAFE_FOR} the version before "
        f"it, {dev.short('v4')}, which ran on it during that rollout.\n"
    ) in out
    assert "then the fleet" in out
    commands = [line.strip() for line in out.splitlines() if line.startswith("  pulumi ")]
    assert commands == [
        CONFIG_SET.format(stack="dev", image=dev.images["v4"]),
        "pulumi up --stack dev",
        "pulumi config rm --stack dev --path django:app.image",
    ]


def test_rolling_back_one_release_lists_what_was_acknowledged_unsafe_for_the_target(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    dev.restart("v3", "v4")
    code, out, _ = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", "previous"))
    assert code == 0, out
    assert (
        f"every migration of {dev.short('v4')} (1: sightings.0004_drop_legacy) was {SAFE_FOR} "
        f"the version before it, {dev.short('v3')}, which ran on it during that rollout. "
        "Acknowledged unsafe on purpose: sightings.0004_drop_legacy.\n"
    ) in out


def test_rolling_back_over_a_release_without_migrations_says_so(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    dev.restart("v2", "v3")  # v3 applied no migrations
    code, out, _ = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", "previous"))
    assert code == 0, out
    assert (
        f"Rolling back one release needs no reverse migration: {dev.short('v3')} applied no "
        f"migrations, so the schema is the one {dev.short('v2')} ran on.\n"
    ) in out
    assert "(none)" not in out and "Acknowledged" not in out


@pytest.mark.parametrize(
    "to",
    [
        "3",
        "abcdef12" + DIGESTS["v3"][8:14],  # a unique prefix
        "sha256:" + DIGESTS["v3"],
        "r-" + DIGESTS["v3"][:12],
        "image",  # its image reference
    ],
)
def test_rolling_back_across_releases_checked_for_their_predecessors(
    dev: Deployed, capsys: pytest.CaptureFixture[str], to: str
) -> None:
    target = dev.images["v3"] if to == "image" else to
    code, out, _ = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", target))
    assert code == 0, out
    assert f"to release 3 ({dev.short('v3')})" in out
    # v4's acknowledged unsafe migration was judged against v3 itself: safe to go back to it.
    assert (
        f"each migration applied since {dev.short('v3')} (2: sightings.0004_drop_legacy, "
        f"sightings.0005_slug) was {SAFE_FOR} the version running before it, and none was "
        f"acknowledged unsafe for a version other than {dev.short('v3')}. Acknowledged unsafe "
        "on purpose: sightings.0004_drop_legacy.\n"
    ) in out
    # The history's known gap, and how to check the database before crossing it.
    assert "Not in the history: migrations applied by a release whose rollout failed" in out
    assert "pulumi-django manage --stack dev -- showmigrations" in out
    assert CONFIG_SET.format(stack="dev", image=dev.images["v3"]) in out


def test_after_a_rollback_the_previous_release_is_the_one_rolled_back_from(
    local: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    local.up("v3")
    code, out, _ = run(capsys, *local.cli("releases", "--outputs", str(local.file)))
    assert f"*  1  {local.short('v3')}" in out
    assert f"   2  {local.short('v5')}" in out
    code, out, _ = run(
        capsys, *local.cli("rollback", "--outputs", str(local.file), "--to", "previous")
    )
    assert code == 0
    assert f"to release 2 ({local.short('v5')})" in out
    assert "no migration was recorded since release" in out
    assert "the app containers, then the proxy switch" in out
    assert CONFIG_SET.format(stack="local", image=local.images["v5"]) in out


# ---------------------------------------------------------------- rollback: refused


def test_rolling_back_across_an_acknowledged_unsafe_migration_is_refused(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    for to, label in (("4", f"4 ({dev.short('v2')})"), ("5", f"5 ({dev.short('v1')})")):
        line = refused(
            capsys, "rollback", *dev.cli("rollback", "--outputs", str(dev.file), "--to", to)
        )
        assert f"refusing to roll back stack dev to release {label}: " in line
        assert f"sightings.0004_drop_legacy (applied by {dev.short('v4')})" in line
        assert "rolling back across them would run code that does not know " in line
        assert line.endswith(
            f"releases safe to roll back to: 2 ({dev.short('v4')}), 3 ({dev.short('v3')})"
        )


def test_rolling_back_to_the_running_release_is_refused(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused(
        capsys, "rollback", *dev.cli("rollback", "--outputs", str(dev.file), "--to", "1")
    )
    assert line.endswith(
        f"release 1 ({dev.short('v5')}) is already running on stack dev: nothing to roll back"
    )


def test_a_release_whose_static_files_are_gone_is_refused(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    for to in (DIGESTS["v0"][:10], dev.release_ids["v0"]):
        line = refused(
            capsys, "rollback", *dev.cli("rollback", "--outputs", str(dev.file), "--to", to)
        )
        assert f"release {to} is not among the releases stack dev keeps (5 releases: 1 = " in line
        assert "its static files are no longer kept (static.keepReleases: 5)" in line


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        ("9", "no release 9 on stack dev: it keeps 5 releases: 1 = "),
        ("0", "no release 0 on stack dev"),
        ("abc12", "release 'abc12': give at least 7 hex digits of its digest"),
        ("abcdef12", "release 'abcdef12' is ambiguous on stack dev: it starts 3 ("),
        ("latest!", "no release 'latest!' on stack dev: name one by its number, `previous`"),
    ],
)
def test_no_such_release_is_one_line(
    dev: Deployed, capsys: pytest.CaptureFixture[str], to: str, expected: str
) -> None:
    line = refused(capsys, "rollback", *dev.cli("rollback", "--outputs", str(dev.file), "--to", to))
    assert expected in line
    assert not re.search(r"\([^)]*\(", line), f"nested parentheses: {line}"


def test_previous_of_a_single_release_is_refused(
    local: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    local.deployments = Deployments()
    local.up("v1")
    line = refused(
        capsys, "rollback", *local.cli("rollback", "--outputs", str(local.file), "--to", "previous")
    )
    assert line.endswith(
        "stack local has no release before the running one: it keeps 1 release: "
        f"1 = {local.short('v1')}"
    )


def test_never_checked_migrations_are_a_warning(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    dev.release_ids["v6"] = dev.release_ids["v5"].replace(DIGESTS["v5"], digest("v6"))
    dev.images["v6"] = dev.release_ids["v6"]
    dev.deployments.up(
        dev.release_ids["v6"],
        applied_migrations=["sightings.0006_raw_sql"],
        migrations_checked=False,
    )
    dev.write("v6")
    code, out, _ = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", "previous"))
    assert code == 0
    assert (
        f"warning: sightings.0006_raw_sql (applied by {digest('v6')[:12]}) was never checked "
        "(migrations.check was off)"
    ) in out
    assert "Rolling back one release needs no reverse migration" not in out


# ---------------------------------------------------------------- rollback --yes


@pytest.mark.parametrize("to", ["previous", "2"])
def test_the_hint_to_run_it_now_names_the_resolved_release_and_keeps_the_flags_given(
    dev: Deployed, bin_dir: Path, capsys: pytest.CaptureFixture[str], to: str
) -> None:
    argv = dev.cli("rollback", "--outputs", str(dev.file), "--to", to)
    code, out, _ = run(capsys, *argv)
    assert code == 0
    [hint] = [line for line in out.splitlines() if line.startswith("Or run them now: ")]
    again = shlex.split(hint.removeprefix("Or run them now: "))
    assert again == [
        "pulumi-django",
        *dev.cli("rollback", "--outputs", str(dev.file), "--to", dev.short("v4"), "--yes"),
    ]
    # Once the history moved (v3 rolled back to: `previous` and 2 now name v5), it still
    # rolls back to v4.
    dev.up("v3")
    calls = stub_pulumi(bin_dir, dev)
    assert run(capsys, *again[1:])[0] == 0
    assert calls.read_text().splitlines()[0].endswith(f"--path django:app.image {dev.images['v4']}")


def test_the_hint_without_cwd_or_outputs_adds_neither(
    dev: Deployed, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(dev.root)
    code, out, _ = run(
        capsys, "rollback", "--stack", "dev", "--outputs", str(dev.file), "--to", "3"
    )
    assert code == 0
    assert (
        f"Or run them now: pulumi-django rollback --stack dev --outputs {dev.file} "
        f"--to {dev.short('v3')} --yes"
    ) in out


def test_a_digest_prefix_shared_by_twelve_digits_is_lengthened_until_unique(
    dev: Deployed, capsys: pytest.CaptureFixture[str]
) -> None:
    twin = digest("twin", DIGESTS["v4"][:14])
    dev.release_ids["twin"] = dev.release_ids["v5"].replace(DIGESTS["v5"], twin)
    dev.images["twin"] = dev.release_ids["twin"]
    dev.deployments.up(dev.release_ids["twin"], image=dev.images["twin"])
    dev.write("twin")
    code, out, _ = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", "3"))
    assert code == 0
    assert f"--to {DIGESTS['v4'][:15]} --yes" in out


def test_the_commands_read_the_history_without_loading_the_pulumi_sdk() -> None:
    """`releases` and `rollback` read plain records: importing what they share (and the
    records themselves) loads neither the Pulumi SDK nor grpc."""
    script = (
        "import sys, pulumi_django.cli.release_history, pulumi_django.release_records;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi', 'grpc')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout


@pytest.mark.parametrize("up_exit", [0, 3])
def test_yes_pins_the_image_and_runs_pulumi_up_in_the_project(
    local: Deployed,
    bin_dir: Path,
    capsys: pytest.CaptureFixture[str],
    up_exit: int,
) -> None:
    calls = stub_pulumi(bin_dir, local, up_exit=up_exit)
    code, out, _ = run(capsys, *local.cli("rollback", "--to", "2", "--yes"))
    assert code == up_exit
    cwd = str(local.root)
    assert calls.read_text().splitlines() == [
        f"{cwd} config set --stack local --path django:app.image {local.images['v4']}",
        f"{cwd} up --stack local --yes",
    ]
    assert f"$ {shlex.join(['pulumi', 'up', '--stack', 'local', '--yes'])}" in out


def test_yes_without_the_pulumi_cli_is_one_line(
    dev: Deployed, bin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not any(Path(p, "pulumi").exists() for p in os.environ["PATH"].split(os.pathsep))
    line = refused(
        capsys, "rollback", *dev.cli("rollback", "--outputs", str(dev.file), "--to", "2", "--yes")
    )
    assert line.endswith("the Pulumi CLI is not on PATH: install it, or run the commands above")


def test_a_stack_that_pins_its_image_is_told_how_to_return_to_it(
    dev: Deployed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("Pulumi.yaml", "__main__.py"):
        (project / name).write_text((dev.root / name).read_text())
    stack_file = (dev.root / "Pulumi.dev.yaml").read_text()
    pinned = f"  django:app:\n    image: {dev.images['v5']}\n"
    (project / "Pulumi.dev.yaml").write_text(stack_file.replace("config:\n", f"config:\n{pinned}"))
    dev.root = project
    code, out, err = run(capsys, *dev.cli("rollback", "--outputs", str(dev.file), "--to", "2"))
    assert code == 0, err
    lines = out.splitlines()
    back = lines.index(f"To return to 1 ({dev.short('v5')}) later:")
    assert lines[back + 1] == "  " + CONFIG_SET.format(stack="dev", image=dev.images["v5"])
