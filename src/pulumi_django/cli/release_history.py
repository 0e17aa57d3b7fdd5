"""What `releases` and `rollback` share: a stack's release history read from its outputs
(`releases`, written by `providers.release_history` as `release_records` defines them, and
`releaseId`, the release running now),
how a release is named on the command line, and whether rolling back to one is safe.

A release is named by its index in `pulumi-django releases` (1 = newest), `previous` (the one
before the running release), its digest or a unique prefix of it (7+ hex digits, with or
without `sha256:` or `r-`), or its image reference.

Imports no Pulumi SDK (the records come from the pure `release_records`), so `releases` and
`rollback` start without loading it for them.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pulumi_django.errors import UsageError
from pulumi_django.release_records import (
    ACKNOWLEDGED_UNSAFE,
    NOT_CHECKED,
    ReleaseRecord,
)

if TYPE_CHECKING:
    import argparse

    from pulumi_django.cli.stack_state import DeployedStack

SHORT = 12
MIN_PREFIX = 7
PREVIOUS = "previous"
IMAGE_KEY = "django:app.image"
_DIGEST = re.compile(r"sha256:([0-9a-f]{64})")
_HEX_PREFIX = re.compile(r"^(?:sha256:|r-)?([0-9a-f]+)$")
NAMES_SHOWN = 3


def digest_of(release: str) -> str:
    """The 64 hex digits of a release id's digest (`repo@sha256:...`, `sha256:...`); ids
    without one are their own digest."""
    found = _DIGEST.search(release)
    return found[1] if found else release


def short_id(release: str) -> str:
    return digest_of(release)[:SHORT]


@dataclass(frozen=True)
class StackReleases:
    """A deployed stack's history, newest first, and the release running now."""

    stack: str
    target: str
    records: tuple[ReleaseRecord, ...]
    running: str | None
    keep: int
    pinned: str | None

    @classmethod
    def deployed(cls, args: argparse.Namespace) -> StackReleases:
        """The history of the stack a command's `--stack`, `--cwd` and `--outputs` name."""
        from pulumi_django.cli.stack_state import load_deployed_stack

        return cls.of(load_deployed_stack(args))

    @classmethod
    def of(cls, stack: DeployedStack) -> StackReleases:
        history = stack.outputs.get("releases")
        if not history:  # missing, null (no release rolled out yet) or empty
            raise UsageError(
                f"stack {stack.name} has no release history yet (output 'releases' is empty): it "
                "is recorded by each `pulumi up` that rolls a release out with pulumi-django "
                f"0.2+; run `pulumi up --stack {stack.name}` to record the next one"
            )
        if not isinstance(history, list) or not all(isinstance(item, dict) for item in history):
            raise UsageError(f"stack {stack.name}: output 'releases' is not a list of releases")
        try:
            records = tuple(ReleaseRecord.from_json(item) for item in history)
        except KeyError as error:
            raise UsageError(
                f"stack {stack.name}: a record of output 'releases' has no {error}"
            ) from None
        running = stack.outputs.get("releaseId")
        return cls(
            stack=stack.name,
            target=stack.target,
            records=records,
            running=str(running) if running else None,
            keep=stack.config.static.keep_releases,
            pinned=stack.config.app.image,
        )

    def label(self, index: int) -> str:
        """`2 (0a1b2c3d4e5f)`: a record as `releases` numbers it (from 1)."""
        return f"{index + 1} ({short_id(self.records[index].release)})"

    def listing(self) -> str:
        """`1 = 0a1b2c3d4e5f, 2 = 8e38a1ea5c68`: no parentheses, so it reads inside some."""
        return ", ".join(
            f"{index + 1} = {short_id(record.release)}" for index, record in enumerate(self.records)
        )

    def kept_text(self) -> str:
        """`2 releases: 1 = 0a1b2c3d4e5f, 2 = 8e38a1ea5c68`."""
        count = len(self.records)
        return f"{count} release{'s' if count != 1 else ''}: {self.listing()}"

    def name_for(self, index: int) -> str:
        """What `--to` names the release at `index` by, whatever the history does next: the
        shortest prefix of its digest (12+ hex) no other kept release shares, else its id."""
        release = self.records[index].release
        digest = digest_of(release)
        if digest == release and not _HEX_PREFIX.match(release):
            return release
        others = [digest_of(r.release) for i, r in enumerate(self.records) if i != index]
        for length in range(SHORT, len(digest)):
            if not any(other.startswith(digest[:length]) for other in others):
                return digest[:length]
        return digest

    @property
    def running_index(self) -> int | None:
        return next(
            (i for i, record in enumerate(self.records) if record.release == self.running), None
        )

    def resolve(self, text: str) -> int:
        """The index of the release `text` names; a one-line UsageError when none (or several)."""
        wanted = text.strip()
        count = len(self.records)
        if wanted == PREVIOUS:
            running = self.running_index
            previous = (running if running is not None else 0) + 1
            if previous >= count:
                raise UsageError(
                    f"stack {self.stack} has no release before the running one: it keeps "
                    f"{self.kept_text()}"
                )
            return previous
        if wanted.isdigit() and len(wanted) < MIN_PREFIX:
            number = int(wanted)
            if not 1 <= number <= count:
                raise UsageError(
                    f"no release {wanted} on stack {self.stack}: it keeps {self.kept_text()}; "
                    f"see `pulumi-django releases --stack {self.stack}`"
                )
            return number - 1
        hex_prefix = _HEX_PREFIX.match(wanted)
        if hex_prefix:
            prefix = hex_prefix[1]
            if len(prefix) < MIN_PREFIX:
                raise UsageError(
                    f"release {wanted!r}: give at least {MIN_PREFIX} hex digits of its digest, "
                    f"or its number in `pulumi-django releases --stack {self.stack}`"
                )
            matches = [
                i
                for i, record in enumerate(self.records)
                if digest_of(record.release).startswith(prefix)
            ]
            if len(matches) > 1:
                raise UsageError(
                    f"release {wanted!r} is ambiguous on stack {self.stack}: it starts "
                    f"{', '.join(self.label(i) for i in matches)}; give more digits"
                )
        else:
            matches = [
                i
                for i, record in enumerate(self.records)
                if wanted in (record.release, record.image)
            ]
        if not matches:
            if hex_prefix or _DIGEST.search(wanted) or "/" in wanted or ":" in wanted:
                raise UsageError(
                    f"release {wanted} is not among the releases stack {self.stack} keeps "
                    f"({self.kept_text()}): its static files are no longer kept "
                    f"(static.keepReleases: {self.keep}), or it was never released there"
                )
            raise UsageError(
                f"no release {wanted!r} on stack {self.stack}: name one by its number, "
                f"`{PREVIOUS}`, its digest or its image (it keeps {self.kept_text()})"
            )
        return matches[0]


def migrations_text(names: Sequence[str], *, full: bool = False) -> str:
    """`2: app.0002_a, app.0003_b` (the first few unless `full`); callers say "no migrations"
    themselves when there are none."""
    shown = list(names) if full else list(names[:NAMES_SHOWN])
    more = len(names) - len(shown)
    return f"{len(names)}: {', '.join(shown)}" + (f", and {more} more" if more else "")


def releases_table(releases: StackReleases) -> list[str]:
    """What `pulumi-django releases` prints."""
    lines = [
        f"Releases of stack {releases.stack}, newest first (static.keepReleases: "
        f"{releases.keep}; * runs now):"
    ]
    for index, record in enumerate(releases.records):
        marker = "*" if record.release == releases.running else " "
        applied = (
            f"migrations {migrations_text(record.migrations)}"
            if record.migrations
            else "no migrations"
        )
        lines.append(
            f"{marker} {index + 1:>2}  {short_id(record.release)}  released {record.released_at}"
            f"  {applied}"
        )
        lines.append(f"      image: {record.image}")
        if record.unsafe_acknowledged:
            lines.append(f"      unsafe acknowledged: {', '.join(record.unsafe_acknowledged)}")
        if not record.checked:
            lines.append("      migrations not checked (migrations.check was off)")
    if releases.running_index is None:
        lines.append(
            f"The running release ({releases.running or 'unknown'}) is not in the history."
        )
    return lines


def releases_json(releases: StackReleases) -> dict[str, Any]:
    return {
        "stack": releases.stack,
        "target": releases.target,
        "running": releases.running,
        "keepReleases": releases.keep,
        "releases": [
            {
                "index": index + 1,
                "digest": short_id(record.release),
                "running": record.release == releases.running,
                **record.to_json(),
            }
            for index, record in enumerate(releases.records)
        ],
    }


def pin_command(stack: str, image: str) -> list[str]:
    """`pulumi config set` of `django:app.image`: the stack releases `image`, nothing built."""
    return ["pulumi", "config", "set", "--stack", stack, "--path", IMAGE_KEY, image]


@dataclass(frozen=True)
class Rollback:
    """A rollback that may go ahead: to which release, why it is safe, and how."""

    releases: StackReleases
    index: int
    reasons: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def target(self) -> ReleaseRecord:
        return self.releases.records[self.index]

    def commands(self) -> list[list[str]]:
        """The two commands that pin the target and deploy it."""
        stack = self.releases.stack
        return [pin_command(stack, self.target.image), ["pulumi", "up", "--stack", stack]]

    def explanation(self) -> list[str]:
        releases = self.releases
        stack = releases.stack
        fleet = (
            "the app containers, then the proxy switch"
            if releases.target == "local"
            else "the fleet (rolling update, circuit breaker, rollout verification)"
        )
        lines = [
            f"Rolling back stack {stack} to release {releases.label(self.index)}, released "
            f"{self.target.released_at}:",
            *(f"  {reason}" for reason in self.reasons),
            *(f"  warning: {warning}" for warning in self.warnings),
            f"It goes through the normal release order: its static files are already "
            "published, the migration check and job run from its image (nothing left to "
            f"apply), then {fleet}.",
            "Pin it and deploy:",
            *(f"  {shlex.join(command)}" for command in self.commands()),
        ]
        running = releases.running_index
        if releases.pinned and running is not None:
            lines.append(f"To return to {releases.label(running)} later:")
            lines.append(f"  {shlex.join(pin_command(stack, releases.records[running].image))}")
        lines.append("To build the app from its source again (the next `pulumi up` releases it):")
        lines.append(
            f"  {shlex.join(['pulumi', 'config', 'rm', '--stack', stack, '--path', IMAGE_KEY])}"
        )
        return lines


def plan_rollback(releases: StackReleases, index: int) -> Rollback:
    """Whether rolling back to the release at `index` is safe: a Rollback saying why, or a
    one-line UsageError naming what refuses it."""
    records = releases.records
    target = records[index]
    stack = releases.stack
    if target.release == releases.running:
        raise UsageError(
            f"release {releases.label(index)} is already running on stack {stack}: nothing to "
            "roll back"
        )
    blocking = [u for u in target.unsafe_since if u.why == ACKNOWLEDGED_UNSAFE]
    if blocking:
        names = ", ".join(f"{u.migration} (applied by {short_id(u.release)})" for u in blocking)
        safe = [
            releases.label(i)
            for i, record in enumerate(records)
            if record.release != releases.running
            and not any(u.why == ACKNOWLEDGED_UNSAFE for u in record.unsafe_since)
        ]
        also = f"; releases safe to roll back to: {', '.join(safe)}" if safe else ""
        verb = "was" if len(blocking) == 1 else "were"
        raise UsageError(
            f"refusing to roll back stack {stack} to release {releases.label(index)}: {names} "
            f"{verb} acknowledged unsafe for the release running then, not for "
            f"{short_id(target.release)}; rolling back across them would run code that does "
            f"not know {', '.join(u.migration for u in blocking)}{also}"
        )
    warnings = tuple(
        f"{u.migration} (applied by {short_id(u.release)}) was never checked "
        f"(migrations.check was off): nothing says the code of {short_id(target.release)} "
        "works with it"
        for u in target.unsafe_since
        if u.why == NOT_CHECKED
    )
    return Rollback(releases, index, _reasons(releases, index), warnings)


SAFE_FOR = "checked safe, or acknowledged unsafe on purpose (migrations.acknowledged), for"


def _acknowledged(records: Sequence[ReleaseRecord], names: Sequence[str]) -> str:
    """` Acknowledged unsafe on purpose: app.0004_x.` for those of `names` the check found unsafe
    but `migrations.acknowledged` allowed; empty when none was."""
    flagged = {name for record in records for name in record.unsafe_acknowledged}
    acknowledged = [name for name in names if name in flagged]
    return f" Acknowledged unsafe on purpose: {', '.join(acknowledged)}." if acknowledged else ""


def _reasons(releases: StackReleases, index: int) -> tuple[str, ...]:
    records = releases.records
    target = records[index]
    target_id = short_id(target.release)
    running_index = releases.running_index
    running = records[running_index] if running_index is not None else None
    if (
        running is not None
        and index - 1 == running_index
        and running.checked
        and running.checked_against == target.release
    ):
        if not running.migrations:
            return (
                f"Rolling back one release needs no reverse migration: {short_id(running.release)}"
                f" applied no migrations, so the schema is the one {target_id} ran on.",
            )
        applied = migrations_text(running.migrations, full=True)
        return (
            "Rolling back one release needs no reverse migration: every migration of "
            f"{short_id(running.release)} ({applied}) was {SAFE_FOR} the version before it, "
            f"{target_id}, which ran on it during that rollout."
            + _acknowledged([running], running.migrations),
        )
    unchecked = {u.migration for u in target.unsafe_since if u.why == NOT_CHECKED}
    later = [
        record
        for record in sorted(records, key=lambda record: record.first_released_at)
        if record.first_released_at > target.first_released_at
    ]
    since = [name for record in later for name in record.migrations if name not in unchecked]
    unrecorded = (
        "Not in the history: migrations applied by a release whose rollout failed (the "
        "history moves only after a rollout succeeds). Check what the database has before "
        "crossing more than one release: "
        f"pulumi-django manage --stack {releases.stack} -- showmigrations"
    )
    if not since and unchecked:
        return (
            f"The migrations applied since release {target_id} were never checked (see the "
            "warnings): no reverse migration is run, and none is proven safe.",
            unrecorded,
        )
    if not since:
        return (
            "No reverse migration needed: no migration was recorded since release "
            f"{target_id} first rolled out, so its code knows the whole schema.",
            unrecorded,
        )
    return (
        "Rolling back across several releases needs no reverse migration: each migration "
        f"applied since {target_id} ({migrations_text(since, full=True)}) was {SAFE_FOR} the "
        f"version running before it, and none was acknowledged unsafe for a version other "
        f"than {target_id}." + _acknowledged(later, since),
        unrecorded,
    )
