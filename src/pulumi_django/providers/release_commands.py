"""The commands a release runs in the new image, and what their output means.

Pure functions shared by the AWS (ECS task) and local (Docker container) migration steps, so
both targets run the same command lines and read the same things from the same output.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

LOG_TAIL_LINES = 50
# Exit status of the release runner when the commands outlive their time limit (as coreutils'
# `timeout`), so both targets report a timeout the same way.
TIMEOUT_EXIT_CODE = 124

# Runs each release command in turn inside the image's Python (no shell needed), prints each
# command line before it, stops at the first failure with that command's exit status, and kills a
# command that outlives the release's time limit.
_RUNNER = f"""\
import json, subprocess, sys, time
limit = float(sys.argv[1])
deadline = time.monotonic() + limit
for command in json.loads(sys.argv[2]):
    print("+ " + " ".join(command), flush=True)
    try:
        code = subprocess.run(command, timeout=max(deadline - time.monotonic(), 1)).returncode
    except subprocess.TimeoutExpired:
        print("pulumi-django: release commands timed out after %d s" % limit, flush=True)
        sys.exit({TIMEOUT_EXIT_CODE})
    if code:
        sys.exit(code if code > 0 else 128 - code)
"""

_APPLIED = re.compile(r"Applying (?P<migration>[\w-]+\.\w+)\.\.\.\s*OK\b")
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# Docker's multiplexed log stream prefixes every chunk with 8 bytes: stream (1 stdout, 2 stderr),
# three zero bytes, a 4-byte length. pulumi-docker's `container_logs` keeps them.
_DOCKER_FRAME_HEADER = re.compile(r"[\x00-\x02]\x00\x00\x00[\s\S]{4}")


def release_commands(command: Sequence[str], then: Sequence[Sequence[str]]) -> list[list[str]]:
    """The migration command, then the further release commands, in order."""
    return [list(command), *(list(step) for step in then)]


def release_command(commands: Sequence[Sequence[str]], timeout_seconds: int) -> list[str]:
    """One container command that runs `commands` in order within `timeout_seconds`."""
    return [
        "python",
        "-c",
        _RUNNER,
        str(timeout_seconds),
        json.dumps([list(command) for command in commands]),
    ]


def describe_commands(commands: Sequence[Sequence[str]]) -> str:
    return " && ".join(" ".join(command) for command in commands)


def what_failed(commands: Sequence[Sequence[str]], exit_code: int, timeout_seconds: int) -> str:
    """How the release commands ended, in words: an exit status or the runner's timeout."""
    if exit_code == TIMEOUT_EXIT_CODE:
        return (
            f"`{describe_commands(commands)}` did not finish within {timeout_seconds} s "
            "(migrations.timeoutSeconds) and was killed"
        )
    return f"`{describe_commands(commands)}` exited with {exit_code}"


def applied_migrations(lines: Sequence[str]) -> list[str]:
    """`app.0002_name` for every `Applying app.0002_name... OK` line of `migrate`'s output."""
    return [match["migration"] for line in lines for match in _APPLIED.finditer(line)]


def container_log_lines(text: str | None) -> list[str]:
    """pulumi-docker's `container_logs` as plain lines: frame headers and colours removed."""
    if not text:
        return []
    plain = _ANSI_ESCAPE.sub("", _DOCKER_FRAME_HEADER.sub("", text))
    return [line.rstrip("\r") for line in plain.splitlines()]


def log_tail_section(source: str, lines: Sequence[str]) -> str:
    """The last LOG_TAIL_LINES lines of `source`, indented under a heading, for an error."""
    if not lines:
        return f"\nNo output in {source}."
    shown = lines[-LOG_TAIL_LINES:]
    body = "\n".join(f"    {line}" for line in shown)
    return f"\nLast {len(shown)} lines of {source}:\n{body}"


def find_json_object(lines: Sequence[str], keys: Sequence[str]) -> dict[str, Any] | None:
    """The last top-level JSON object with all of `keys` printed in `lines`: on one line,
    pretty-printed over several (nested objects are indented), or cut into several lines by the
    log driver (long lines)."""
    for start in range(len(lines) - 1, -1, -1):
        if not lines[start].startswith("{"):
            continue
        rest = lines[start:]
        for text in _readings(lines[start], rest):
            try:
                found, _end = json.JSONDecoder().raw_decode(text)
            except ValueError:
                continue
            if isinstance(found, dict) and all(key in found for key in keys):
                return found
    return None


def _readings(line: str, rest: Sequence[str]) -> Iterator[str]:
    """The text from a line starting with `{`: the line alone (cheap, and most JSON logs are
    one object a line), then the following lines rejoined as printed, then as cut."""
    yield line
    yield "\n".join(rest)
    yield "".join(rest)
