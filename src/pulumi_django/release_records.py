"""A stack's release history as plain records, and the rules that move it: what
`providers.release_history` keeps in its state and `pulumi-django releases` and `rollback` read
from the stack's `releases` output. Pure (no Pulumi, no cloud call), so the command line loads
it without the Pulumi SDK.

A record (`ReleaseRecord`, camelCase in the output):

- `release`: the release id (AWS: `repository@sha256:...`; local: the image ID), `image`: the
  reference `django:app.image` is set to in order to deploy it again, `releasedAt` (ISO 8601,
  UTC): when it last rolled out, `firstReleasedAt`: when it first did;
- `migrations`: the migrations its migration jobs applied (a rollback to it normally applies
  none, so these are the ones it brought), `unsafeAcknowledged`: those of them the migration
  check found unsafe but `migrations.acknowledged` allowed, `checked`: whether the check ran on
  them, `checkedAgainst`: the release running when they were applied, the one the check judged
  them against;
- `unsafeSince`: the migrations applied after this release first rolled out that nothing proved
  safe for it, each `{migration, release, why}`: acknowledged unsafe by a release whose check
  judged them against another version (`why: "acknowledged unsafe"`), or never checked
  (`"not checked"`: `migrations.check` was off). Code of this release does not know them;
  `rollback` refuses (or warns) on them. A migration acknowledged unsafe for this very release
  (the one running when it was applied) is not there: the team accepted it for this version.

`record_release` prepends a new release; a release already in the history (a rollback) moves to
the top with its new `releasedAt`, keeping its record. `kept` trims the history to `keep`
(`static.keepReleases`) records whose static files are still kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pulumi_django.migration_check import UNSAFE

ACKNOWLEDGED_UNSAFE = "acknowledged unsafe"
NOT_CHECKED = "not checked"


def utc_now() -> str:
    """Now, ISO 8601 in UTC to the second: `2025-01-31T12:00:00Z`."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class UnknownMigration:
    """A migration applied after a release, that its code was never proven to work with."""

    migration: str
    release: str
    why: str

    def to_json(self) -> dict[str, str]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> UnknownMigration:
        return cls(str(document["migration"]), str(document["release"]), str(document["why"]))


@dataclass(frozen=True)
class ReleaseRecord:
    """One release of the history (the module docstring explains each field)."""

    release: str
    image: str
    released_at: str
    first_released_at: str
    migrations: tuple[str, ...] = ()
    unsafe_acknowledged: tuple[str, ...] = ()
    checked: bool = True
    checked_against: str | None = None
    unsafe_since: tuple[UnknownMigration, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "release": self.release,
            "image": self.image,
            "releasedAt": self.released_at,
            "firstReleasedAt": self.first_released_at,
            "migrations": list(self.migrations),
            "unsafeAcknowledged": list(self.unsafe_acknowledged),
            "checked": self.checked,
            "checkedAgainst": self.checked_against,
            "unsafeSince": [unknown.to_json() for unknown in self.unsafe_since],
        }

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> ReleaseRecord:
        released_at = str(document.get("releasedAt") or "")
        return cls(
            release=str(document["release"]),
            image=str(document.get("image") or document["release"]),
            released_at=released_at,
            first_released_at=str(document.get("firstReleasedAt") or released_at),
            migrations=tuple(str(name) for name in document.get("migrations") or ()),
            unsafe_acknowledged=tuple(
                str(name) for name in document.get("unsafeAcknowledged") or ()
            ),
            checked=bool(document.get("checked", True)),
            checked_against=document.get("checkedAgainst") or None,
            unsafe_since=tuple(
                UnknownMigration.from_json(item) for item in document.get("unsafeSince") or ()
            ),
        )


def unsafe_acknowledged(findings: Iterable[Mapping[str, Any]] | None) -> list[str]:
    """The migrations of a check's `findings` with an unsafe finding that was acknowledged, in
    the order found (the check's `findings` output; None: no check ran)."""
    names = [
        str(finding["migration"])
        for finding in findings or ()
        if finding.get("severity") == UNSAFE and finding.get("acknowledged")
    ]
    return list(dict.fromkeys(names))


def _union(first: Sequence[str], then: Iterable[str]) -> tuple[str, ...]:
    return (*first, *(name for name in then if name not in first))


def record_release(
    history: Sequence[ReleaseRecord],
    *,
    release: str,
    image: str,
    migrations: Sequence[str],
    unsafe: Sequence[str],
    checked: bool,
    at: str,
) -> list[ReleaseRecord]:
    """`history` after `release` rolled out at `at`, having applied `migrations` (`unsafe` of
    them acknowledged unsafe; `checked`: whether the check ran)."""
    running = history[0].release if history else None
    known = {record.release: record for record in history}
    risky = [UnknownMigration(name, release, ACKNOWLEDGED_UNSAFE) for name in unsafe]
    unchecked = (
        [UnknownMigration(name, release, NOT_CHECKED) for name in migrations if name not in unsafe]
        if not checked
        else []
    )

    def learned(record: ReleaseRecord) -> ReleaseRecord:
        # The running release was what the check judged these against: it is not at risk.
        new = [*unchecked, *(risky if record.release != running else [])]
        return dataclasses.replace(record, unsafe_since=(*record.unsafe_since, *new))

    earlier = known.get(release)
    if earlier is None:
        top = ReleaseRecord(
            release=release,
            image=image,
            released_at=at,
            first_released_at=at,
            migrations=tuple(migrations),
            unsafe_acknowledged=tuple(unsafe),
            checked=checked or not migrations,
            checked_against=running,
        )
    else:  # a rollback (or roll-forward) to a release of the history: it moves to the top
        top = dataclasses.replace(
            earlier,
            image=image,
            released_at=at,
            migrations=_union(earlier.migrations, migrations),
            unsafe_acknowledged=_union(earlier.unsafe_acknowledged, unsafe),
            checked=earlier.checked and (checked or not migrations),
        )
    return [top, *(learned(record) for record in history if record.release != release)]


def kept(
    history: Sequence[ReleaseRecord], keep: int, kept_static: Sequence[str] | None
) -> list[ReleaseRecord]:
    """The newest `keep` records whose static files are still kept (the newest always is)."""
    still = set(kept_static or ())
    return [
        record
        for index, record in enumerate(history)
        if index == 0 or not still or record.release in still
    ][: max(int(keep), 1)]
