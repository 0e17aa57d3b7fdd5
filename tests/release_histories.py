"""A stack's `ReleaseHistory` moved through releases as `pulumi up` moves it: the real provider's
diff, create and update, with the static release step's kept list alongside and a clock that
ticks a minute per release."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from pulumi_django.providers.release_history import ReleaseHistoryProvider


class Deployments:
    """Releases rolled out one after the other; `history` is the stack's `releases` output."""

    def __init__(self, keep: int = 5) -> None:
        self.ticks: Iterator[int] = itertools.count(1)
        self.provider = ReleaseHistoryProvider(clock=self.clock)
        self.keep = keep
        self.state: dict[str, Any] | None = None
        self.published: list[str] = []

    def clock(self) -> str:
        minutes = next(self.ticks)
        return f"2025-01-01T{minutes // 60:02d}:{minutes % 60:02d}:00Z"

    def props(self, release: str, /, **changes: Any) -> dict[str, Any]:
        """The inputs the site gives for `release`, its static files just published (newest
        first, `keep` of them, as the static release step keeps them)."""
        published = [release, *(r for r in self.published if r != release)][: self.keep]
        return {
            "release": release,
            "image": release,
            "applied_migrations": [],
            "unsafe_acknowledged": [],
            "migrations_checked": True,
            "kept_static_releases": published,
            "keep": self.keep,
            "history": None,
            **changes,
        }

    def up(self, release: str, /, **changes: Any) -> list[dict[str, Any]]:
        """`pulumi up` rolling out `release`: diff, then create or update; the new history."""
        news = self.props(release, **changes)
        if self.state is None:
            self.state = dict(self.provider.create(news).outs or {})
        else:
            assert self.provider.diff("release-history", self.state, news).changes
            self.state = dict(self.provider.update("release-history", self.state, news).outs or {})
        self.published = list(news["kept_static_releases"])
        return self.history

    @property
    def history(self) -> list[dict[str, Any]]:
        assert self.state is not None
        return list(self.state["history"])

    def releases(self) -> list[str]:
        return [record["release"] for record in self.history]
