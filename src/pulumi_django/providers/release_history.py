"""`ReleaseHistory`: the releases a stack has rolled out, newest first, kept in its own state.

Created after the fleet step (AWS: the web and worker services and their rollout checks;
local: the proxy switch and the workers), so a release whose rollout failed is never recorded.
Each record (`ReleaseRecord` of `pulumi_django.release_records`, which explains its fields)
says what a rollback to it needs to know (`pulumi-django releases` and `rollback` read it from
the stack's `releases` output).

A new release is prepended; a release already in the history (a rollback) moves to the top
with its new `releasedAt`, keeping its record. The history holds at most `keep`
(`static.keepReleases`) records, and only releases whose static files the static release step
still keeps (its `kept_releases`): a release dropped there can no longer be rolled back to.
Limitation: migrations applied by a release whose rollout then failed are not recorded (the
history only moves after a rollout succeeded).

No cloud call: its inputs are other steps' outputs, its state is the history. Deleting it does
nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi.dynamic

from ..release_records import ReleaseRecord, kept, record_release, utc_now
from .release_task import changed

# A new release records; a new keep count or kept list only trims; a new image reference of
# the same release (the same digest, pinned) replaces the top record's.
DIFF_KEYS = ("release", "image", "keep", "kept_static_releases")
HISTORY_ID = "release-history"


class ReleaseHistoryProvider(pulumi.dynamic.ResourceProvider):
    """Create starts the history; update records a new release (or trims on a new keep)."""

    def __init__(self, clock: Callable[[], str] = utc_now) -> None:
        super().__init__()
        self.clock = clock

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        return pulumi.dynamic.CreateResult(HISTORY_ID, self._history(props, []))

    def diff(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.DiffResult:
        return pulumi.dynamic.DiffResult(
            changes=changed(olds, news, DIFF_KEYS),
            replaces=[],
            stables=[],
            delete_before_replace=False,
        )

    def update(
        self, _id: str, olds: dict[str, Any], news: dict[str, Any]
    ) -> pulumi.dynamic.UpdateResult:
        history = [ReleaseRecord.from_json(item) for item in olds.get("history") or ()]
        if olds.get("release") == news["release"] and history:
            # The same release: nothing rolled out; a new reference to it, a new keep.
            top = dataclasses.replace(history[0], image=str(news["image"]))
            return pulumi.dynamic.UpdateResult(self._outputs(news, [top, *history[1:]]))
        return pulumi.dynamic.UpdateResult(self._history(news, history))

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: the history lives in the state."""

    def _history(self, props: Mapping[str, Any], history: list[ReleaseRecord]) -> dict[str, Any]:
        recorded = record_release(
            history,
            release=str(props["release"]),
            image=str(props["image"]),
            migrations=[str(name) for name in props.get("applied_migrations") or ()],
            unsafe=[str(name) for name in props.get("unsafe_acknowledged") or ()],
            checked=bool(props.get("migrations_checked", True)),
            at=self.clock(),
        )
        return self._outputs(props, recorded)

    @staticmethod
    def _outputs(props: Mapping[str, Any], history: Sequence[ReleaseRecord]) -> dict[str, Any]:
        trimmed = kept(history, int(props["keep"]), props.get("kept_static_releases"))
        return {
            **{name: value for name, value in props.items() if not name.startswith("__")},
            "history": [record.to_json() for record in trimmed],
        }


class ReleaseHistory(pulumi.dynamic.Resource, module="releases", name="ReleaseHistory"):
    """The stack's rolled-out releases, newest first (`history`); see the module docstring.
    Give it `depends_on` the fleet step, so only a release that rolled out is recorded."""

    history: pulumi.Output[list[dict[str, Any]]]

    def __init__(
        self,
        resource_name: str,
        *,
        release: pulumi.Input[str],
        image: pulumi.Input[str],
        applied_migrations: pulumi.Input[Sequence[str]] | None,
        unsafe_acknowledged: pulumi.Input[Sequence[str]] | None,
        migrations_checked: bool,
        kept_static_releases: pulumi.Input[Sequence[str]] | None,
        keep: int,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`release`: the release id (what the static release step publishes as); `image`:
        the reference that deploys it again as `django:app.image`; `applied_migrations` and
        `unsafe_acknowledged`: the migration job's and the check's (`unsafe_acknowledged()` of
        its findings); `migrations_checked`: `migrations.check`; `kept_static_releases`: the
        static release step's `kept_releases`; `keep`: `static.keepReleases`."""
        props: dict[str, Any] = {
            "release": release,
            "image": image,
            "applied_migrations": applied_migrations,
            "unsafe_acknowledged": unsafe_acknowledged,
            "migrations_checked": migrations_checked,
            "kept_static_releases": kept_static_releases,
            "keep": keep,
            "history": None,
        }
        super().__init__(ReleaseHistoryProvider(), resource_name, props, opts)
