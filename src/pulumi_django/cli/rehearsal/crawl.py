"""The pages the rehearsal's load views: the seeds (`/` and `rehearsal.paths`) and the same-site
pages they link to, found once, on the version that runs now, before the load starts.

A seed is viewed as the page it leads to: an app whose `/` redirects (to its login page when
every page needs one, to `/en/` with `i18n_patterns`) is viewed at that page, which answers
200, not at `/`, whose redirect every request would count as a failure. A seed that leads to
no page on the version that runs now (403, 500, another site) is not viewed at all; one that
404s is, and the report lists it as a page the app does not have.

The list is fixed before the release, so both versions get the same pages: a page the new
version drops then fails during the rollout, as it does for the users who follow the old
pages' links to it.

The load requests these pages at random, over and over, so the crawl keeps only pages a GET
may repeat: it never follows a link that looks like an action (a `logout`, `signout` or
`delete` path segment: apps do log out or delete on a plain GET, and a load that logs its
users out or deletes what it reads measures itself, not the release), a link marked
`rel="nofollow"` or `download`, a path under the skip prefixes (static files and media,
which the load fetches as the pages reference them; the health path, which it probes on its
own), another site or another scheme (`mailto:`, `javascript:`).
"""

from __future__ import annotations

import collections
import http.client
import urllib.parse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http import HTTPStatus

from pulumi_django.cli.rehearsal.load import (
    REDIRECT_STATUSES,
    REQUEST_TIMEOUT_SECONDS,
    describe_error,
    parse_page,
)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
ACTION_SEGMENTS = frozenset({"logout", "log-out", "signout", "sign-out", "delete"})
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Redirects followed from one link (a login page, a trailing slash, a language prefix).
MAX_REDIRECTS = 3
# Requests the crawl may spend per page it can keep: a site full of dead links, redirects or
# downloads cannot make it run long.
REQUESTS_PER_PAGE = 4
# What stays as it is when a path is made fit for a request line: the characters RFC 3986
# allows in a path or query, and `%` (already escaped). Spaces and non-ASCII get escaped.
URL_SAFE = "/%:@!$&'()*+,;=-._~?"
# An answer the crawl has no use for (a redirect, an error page, a file) is read to its end when
# it is at most this long, so that its connection carries the next request; a longer one (a
# download) is left unread and its connection closed.
UNUSED_BODY_BYTES = 64 * 1024


@dataclass(frozen=True)
class CrawlResult:
    """`pages`: the seeds, in order, then every page found (a same-site link that answered 200
    with HTML), in the order found; each seed and page as the path it ended at after same-site
    redirects, except a seed that answered 404, kept as given (and a seed that answered no
    page otherwise, left out). `skipped`:
    links not followed, with why; `errors`: links that answered otherwise, with what they
    answered. Both as (path, reason), for the progress line."""

    pages: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    errors: tuple[tuple[str, str], ...] = ()


def discover_pages(
    host: str,
    port: int,
    seeds: Sequence[str],
    *,
    depth: int,
    max_pages: int,
    skip_prefixes: Sequence[str],
    timeout: float = REQUEST_TIMEOUT_SECONDS,
) -> CrawlResult:
    """Breadth-first from `seeds` (depth 0) through same-site links, at most `depth` links
    away, until `max_pages` pages in all. The seeds are always requested, and kept, even
    those that answer 404 (the report lists a page missing before the release rather than
    counting its failures); a seed that answers no page otherwise (403, 500, a redirect off
    the site) is left out: every view of it would fail, whatever the release."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"{host}: the crawl visits this machine only: 127.0.0.1, ::1, localhost")
    if depth < 0 or max_pages < 1:
        raise ValueError(f"depth {depth}, max_pages {max_pages}: use depth >= 0, max_pages >= 1")
    crawler = _Crawler(host, port, tuple(skip_prefixes), timeout)
    try:
        return crawler.crawl(tuple(dict.fromkeys(seeds)), depth, max_pages)
    finally:
        crawler.close()


@dataclass(frozen=True)
class _Answer:
    """What the crawl keeps of an answer: its body only when it is a page."""

    status: int
    location: str | None
    media_type: str  # the Content-Type without its parameters, in lower case
    html: str | None  # the body of a 200 answer in HTML, else None (it was not read)


class _Crawler:
    """One keep-alive connection to the site, and what the crawl found on it."""

    def __init__(
        self, host: str, port: int, skip_prefixes: tuple[str, ...], timeout: float
    ) -> None:
        self.host = host
        self.port = port
        self.skip_prefixes = skip_prefixes
        self.timeout = timeout
        self.origin = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        self.connection: http.client.HTTPConnection | None = None
        self.requests = 0
        self.skipped: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def crawl(self, seeds: tuple[str, ...], depth: int, max_pages: int) -> CrawlResult:
        fetched = [(seed, self.fetch(seed)) for seed in seeds]
        # A seed that 404s stays: the report lists it as a page the app does not have. One that
        # answers no page otherwise (403, 500, another site) would fail every view whatever the
        # release does: it is left out, with why in `errors` or `skipped`.
        kept = [
            page[0] if page else seed
            for seed, page in fetched
            if page or self.errors.get(seed) == f"answered {HTTPStatus.NOT_FOUND}"
        ]
        pages = list(dict.fromkeys(kept))
        seen = {*seeds, *pages}  # every path kept or queued: each is fetched once
        parsed: set[str] = set()  # pages whose links were read (a redirect may lead to one)
        queue: collections.deque[tuple[str, int]] = collections.deque()

        def follow_links(page: str, html: str, level: int) -> None:
            if level == depth or page in parsed:
                return
            parsed.add(page)
            for link in self.links(page, html):
                if link not in seen:
                    seen.add(link)
                    queue.append((link, level + 1))

        for _, page in fetched:
            if page is not None:
                follow_links(*page, 0)
        budget = self.requests + REQUESTS_PER_PAGE * max_pages
        while queue and len(pages) < max_pages and self.requests < budget:
            path, level = queue.popleft()
            page = self.fetch(path)
            if page is None:
                continue
            final, html = page
            if final not in pages:
                pages.append(final)
            seen.add(final)
            follow_links(final, html, level)
        return CrawlResult(
            pages=tuple(pages),
            skipped=tuple(self.skipped.items()),
            errors=tuple(self.errors.items()),
        )

    def links(self, page: str, html: str) -> Iterator[str]:
        """The paths of the page's links that stay on the site and may be followed."""
        for href in parse_page(html).links:
            path = self.site_path(page, href)
            if path is None:
                continue
            reason = self.off_limits(path)
            if reason is None:
                yield path
            else:
                self.skipped.setdefault(path, reason)

    def site_path(self, page: str, href: str) -> str | None:
        """`href` as a request path (its query kept, its fragment dropped) when it leads to
        this site, else None."""
        try:
            url = urllib.parse.urlsplit(urllib.parse.urljoin(self.origin + page, href.strip()))
            same_site = url.scheme == "http" and (url.hostname, url.port or 80) == (
                self.host,
                self.port,
            )
        except ValueError:  # a malformed address, e.g. a port that is no number
            return None
        if not same_site:
            return None
        path = urllib.parse.quote(url.path or "/", safe=URL_SAFE)
        return f"{path}?{urllib.parse.quote(url.query, safe=URL_SAFE)}" if url.query else path

    def off_limits(self, path: str) -> str | None:
        """Why the load must not request `path`, if it must not."""
        for prefix in self.skip_prefixes:
            if path.startswith(prefix):
                return f"under {prefix}"
        segments = urllib.parse.urlsplit(path).path.lower().split("/")
        if ACTION_SEGMENTS.intersection(segments):
            return "looks like an action (logout, delete): a GET may do it"
        return None

    def fetch(self, path: str) -> tuple[str, str] | None:
        """The page at `path` after at most MAX_REDIRECTS same-site redirects, as (the path it
        ended at, its HTML); None, noted in `skipped` or `errors`, when it is no such page."""
        current = path
        for _ in range(MAX_REDIRECTS + 1):
            try:
                answer = self.get(current)
            except (OSError, http.client.HTTPException) as error:
                self.close()
                self.errors[path] = describe_error(error)
                return None
            if answer.status in REDIRECT_STATUSES and answer.location:
                target = self.site_path(current, answer.location)
                if target is None:
                    self.skipped[path] = f"redirects to another site: {answer.location}"
                    return None
                if reason := self.off_limits(target):
                    self.skipped[path] = f"redirects to {target}, {reason}"
                    return None
                current = target
                continue
            if answer.status != 200:
                self.errors[path] = f"answered {answer.status}"
                return None
            if answer.html is None:
                self.skipped[path] = f"not a page: {answer.media_type or 'no content type'}"
                return None
            return current, answer.html
        self.errors[path] = f"more than {MAX_REDIRECTS} redirects"
        return None

    def get(self, path: str) -> _Answer:
        """GET on the keep-alive connection; sent once more on a new connection when a reused
        one turns out closed before any answer came (the server closed it while idle)."""
        self.requests += 1
        reused = self.connection is not None
        try:
            return self._get_once(path)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            self.close()
            if not reused:
                raise
        return self._get_once(path)

    def _get_once(self, path: str) -> _Answer:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        self.connection.request("GET", path, headers={"Accept": "text/html"})
        response = self.connection.getresponse()
        media_type = response.getheader("Content-Type", "").split(";")[0].strip().lower()
        html = None
        if response.status == 200 and media_type in HTML_TYPES:
            html = response.read().decode(errors="replace")
        elif response.length is not None and response.length <= UNUSED_BODY_BYTES:
            response.read()
        else:
            self.close()
        if response.will_close:
            self.close()
        return _Answer(response.status, response.getheader("Location"), media_type, html)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None
