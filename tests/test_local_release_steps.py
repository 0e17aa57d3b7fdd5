"""The local static release and proxy switch steps beyond the plan: the publisher program run for
real (the host's Python standing in for the image's) on a directory standing in for the volume,
and the verdicts that turn a failed one-off container into a failed `pulumi up`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docker_logs import docker_frames

from pulumi_django import static_publish
from pulumi_django.components.local.static import ENGINE_MODULE, publisher_command
from pulumi_django.providers.local_release import (
    RERUN_KEYS,
    LocalReleaseError,
    judge_proxy_switch,
    judge_static_release,
)
from pulumi_django.providers.local_verdict import LocalVerdictProvider
from pulumi_django.static_publish import parse_index

CONTAINER_URN = (
    "urn:pulumi:local::pulumi-django::pulumi-django:local:StaticRelease"
    "$docker:index/container:Container::bigfoot-local-static-publish"
)


def framed(text: str) -> str:
    """`text` as pulumi-docker's `container_logs` keeps a container's output: each line a write
    to stdout."""
    return docker_frames(*((1, line) for line in text.splitlines(keepends=True)))


def props(exit_code: int, output: str) -> dict[str, Any]:
    return {
        "container_id": "c0ffee",
        "container_name": "bigfoot-local-static-publish-1a2b3c4",
        "container_urn": CONTAINER_URN,
        "exit_code": exit_code,
        "container_logs": framed(output),
    }


class Publisher:
    """The publish container's command, with `engine/` standing in for the upload and
    `volume/` for the static-files volume."""

    def __init__(self, root: Path) -> None:
        self.engine = root / "engine" / f"{ENGINE_MODULE}.py"
        self.engine.parent.mkdir()
        shutil.copyfile(static_publish.__file__, self.engine)
        self.volume = root / "volume"
        self.volume.mkdir()
        self.root = root

    def release(self, name: str, files: dict[str, str], keep: int = 2) -> tuple[int, str]:
        source = self.root / f"build-{name}"
        for relative, content in files.items():
            (source / relative).parent.mkdir(parents=True, exist_ok=True)
            (source / relative).write_text(content)
        command = publisher_command(
            engine_file=str(self.engine),
            source=str(source),
            target=str(self.volume),
            release_id=f"sha256:{name}",
            prefix="static/",
            keep=keep,
        )
        done = subprocess.run(
            [sys.executable, *map(str, command)],
            capture_output=True,
            text=True,
            cwd=self.root,
            timeout=60,
        )
        return done.returncode, done.stdout + done.stderr

    def published(self) -> set[str]:
        base = self.volume / "static"
        return {path.relative_to(base).as_posix() for path in base.rglob("*") if path.is_file()}


def test_the_publisher_keeps_the_last_releases_files(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path)
    code, output = publisher.release("one", {"app.111111111111.css": "a", "staticfiles.json": "1"})
    assert code == 0, output
    first = judge_static_release(props(code, output))
    assert first == {"uploaded": 2, "skipped": 0, "deleted": 0, "kept_releases": ["sha256:one"]}

    publisher.release("two", {"app.222222222222.css": "b", "staticfiles.json": "2"})
    assert publisher.published() == {
        "app.111111111111.css",  # old replicas still ask for it
        "app.222222222222.css",
        "staticfiles.json",
    }
    code, output = publisher.release(
        "three", {"app.333333333333.css": "c", "staticfiles.json": "3"}
    )
    third = judge_static_release(props(code, output))
    assert third["deleted"] == 1
    assert third["kept_releases"] == ["sha256:three", "sha256:two"]
    assert publisher.published() == {
        "app.222222222222.css",
        "app.333333333333.css",
        "staticfiles.json",
    }
    # Nothing but the files themselves is served: the releases index lives outside the prefix.
    index = publisher.volume / "_releases" / "static" / "index.json"
    assert list(index.parent.iterdir()) == [index]
    records = parse_index(index.read_bytes(), str(index)).records
    assert [record.release for record in records] == ["sha256:three", "sha256:two"]


def test_a_failed_publish_fails_the_release_with_the_reason(tmp_path: Path) -> None:
    publisher = Publisher(tmp_path)
    source_missing = publisher_command(
        engine_file=str(publisher.engine),
        source=str(tmp_path / "no-such-dir"),
        target=str(publisher.volume),
        release_id="sha256:one",
        prefix="static/",
        keep=2,
    )
    done = subprocess.run(
        [sys.executable, *map(str, source_missing)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith("static release: ")

    with pytest.raises(LocalReleaseError) as failure:
        judge_static_release(props(done.returncode, done.stderr))
    message = str(failure.value)
    assert message.startswith(
        "static release failed: the publisher exited with 1 in container "
        "bigfoot-local-static-publish-1a2b3c4"
    )
    assert "no-such-dir" in message
    assert "The migrations did not run and the app containers were not changed" in message
    assert f"pulumi up --replace '{CONTAINER_URN}'" in message


def test_a_publisher_that_printed_no_result_fails_too() -> None:
    with pytest.raises(LocalReleaseError, match="the publisher printed no result"):
        judge_static_release(props(0, "3 files, 3 to upload\n"))


def test_publisher_arguments_are_checked_before_anything_runs() -> None:
    with pytest.raises(static_publish.PublishError, match="keep must be at least 2"):
        publisher_command(
            engine_file="/tmp/e.py",
            source="/s",
            target="/t",
            release_id="r",
            prefix="static/",
            keep=1,
        )


def test_the_switch_verdict_passes_a_zero_exit_and_fails_any_other() -> None:
    verdict = LocalVerdictProvider(judge_proxy_switch, RERUN_KEYS)
    passed = verdict.create(props(0, "pulumi-django proxy switch: http://proxy:8080/healthz ok\n"))
    assert (passed.outs or {})["switch_log"].endswith("/healthz ok")

    refused = (
        "pulumi-django proxy switch: error: the proxy refused config 1f2e: unknown directive\n"
    )
    with pytest.raises(LocalReleaseError) as failure:
        verdict.create(props(1, refused))
    message = str(failure.value)
    assert message.startswith("proxy switch failed: container bigfoot-local-static-publish")
    assert "the proxy refused config 1f2e: unknown directive" in message
    assert "The proxy still sends requests to the previous app containers" in message


def test_a_verdict_judges_a_run_once() -> None:
    verdict = LocalVerdictProvider(judge_static_release, RERUN_KEYS)
    output = json.dumps(
        {"release": "r", "uploaded": 1, "skipped": 0, "deleted": 0, "keptReleases": ["r"]}
    )
    old = {**props(0, output + "\n"), "uploaded": 1}
    assert not verdict.diff("c0ffee", old, {**old, "container_logs": "later"}).changes
    assert verdict.diff("c0ffee", old, {**old, "container_id": "d00d"}).changes
