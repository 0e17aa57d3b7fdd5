"""The crawl that finds the pages the rehearsal's load views, against a small site on loopback."""

from __future__ import annotations

import contextlib
import http.server
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pydantic
import pytest
from rehearsal_fakes import FakeSiteHandler

from pulumi_django.cli.rehearsal.crawl import CrawlResult, discover_pages
from pulumi_django.cli.rehearsal.load import parse_page
from pulumi_django.config.rehearsal import RehearsalConfig

SKIP = ("/static/", "/media/", "/healthz")


def links(*hrefs: str) -> str:
    return "".join(f'<a href="{href}">{href}</a>' for href in hrefs)


class FakeSite(FakeSiteHandler):
    """A site of pages that link to each other, and everything a crawl must leave alone.
    Every request is noted (path, client port)."""

    requests: list[tuple[str, int]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.client_address[1]))
        port = self.headers["Host"].rsplit(":", 1)[1]
        pages = {
            "/": links(
                "/a/",
                "about/",  # relative to /
                "#top",  # this page again
                "/a/#comments",  # /a/ again
                f"http://127.0.0.1:{port}/absolute/",
                "http://example.com/elsewhere/",
                "//example.com/protocol-relative/",
                "mailto:team@example.com",
                "javascript:void(0)",
                "/static/app.css",
                "/media/upload.png",
                "/healthz",
                "/accounts/logout/",
                "/items/3/delete/",
                "/search/?q=bigfoot",
                "/with space/",
                "/old/",
                "/away/",
                "/loop/",
                "/to-static/",
                "/missing/",
                "/broken/",
                "/report.pdf",
            )
            + '<a href="/hidden/" rel="nofollow noopener">x</a><a href="/file/" download>x</a>',
            "/a/": links("/a/b/", "/"),
            "/a/b/": links("/a/b/c/"),
            "/a/b/c/": "<p>deep</p>",
            "/about/": "<p>about</p>",
            "/absolute/": "<p>absolute</p>",
            "/search/?q=bigfoot": "<p>results</p>",
            "/with%20space/": "<p>space</p>",
            "/new/": links("/"),
        }
        redirects = {
            "/old/": "/new/",
            "/away/": "http://example.com/",
            "/loop/": "/loop/",
            "/to-static/": "/static/x.css",
        }
        if self.path in pages:
            self.answer(200, pages[self.path], content_type="text/html; charset=utf-8")
        elif self.path in redirects:
            self.answer(301, "", {"Location": redirects[self.path]}, content_type="text/html")
        elif self.path == "/broken/":
            self.answer(500, "<title>Server Error</title>", content_type="text/html")
        elif self.path == "/report.pdf":
            self.answer(200, "%PDF-1.4", content_type="application/pdf")
        else:
            self.answer(404, "<title>Not Found</title>", content_type="text/html")


class LoginRequiredSite(FakeSiteHandler):
    """An app whose every page needs a login (Django's LoginRequiredMiddleware): anything but
    the login pages redirects to the login page, with the page asked for as `next`."""

    requests: list[tuple[str, int]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.client_address[1]))
        path = urllib.parse.urlsplit(self.path).path
        if path == "/accounts/login/":
            body = links("/accounts/password_reset/", "/", "/private/")
            self.answer(200, body, content_type="text/html")
        elif path == "/accounts/password_reset/":
            self.answer(200, "<p>reset</p>", content_type="text/html")
        else:
            login = f"/accounts/login/?next={urllib.parse.quote(self.path)}"
            self.answer(302, "", {"Location": login}, content_type="text/html")


class LanguagePrefixSite(FakeSiteHandler):
    """An app with `i18n_patterns`: `/` redirects to the default language's `/en/`."""

    requests: list[tuple[str, int]] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.client_address[1]))
        pages = {"/en/": links("/en/about/", "/fr/"), "/en/about/": "about", "/fr/": "accueil"}
        if self.path in pages:
            self.answer(200, pages[self.path], content_type="text/html")
        elif self.path == "/":
            self.answer(302, "", {"Location": "/en/"}, content_type="text/html")
        else:
            self.answer(404, "<title>Not Found</title>", content_type="text/html")


DOWNLOAD_BYTES = 5 * 1024 * 1024
DOWNLOAD_FIRST_PART = 64 * 1024


class DownloadSite(FakeSiteHandler):
    """`/` links to a 5 MB download and to a page. The download sends its first 64 KB, then
    waits for its client to close the connection (noted in `unread`); only a client that
    waits on for the rest gets it."""

    requests: list[tuple[str, int]] = []
    unread: list[int] = []

    def do_GET(self) -> None:
        self.requests.append((self.path, self.client_address[1]))
        if self.path == "/":
            self.answer(200, links("/export.zip", "/after/"), content_type="text/html")
        elif self.path == "/after/":
            self.answer(200, "<p>after</p>", content_type="text/html")
        else:
            self.send_response(200)
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(DOWNLOAD_BYTES))
            self.end_headers()
            self.wfile.write(bytes(DOWNLOAD_FIRST_PART))
            self.connection.settimeout(2)
            try:
                closed = self.connection.recv(1) == b""
            except ConnectionResetError:
                closed = True
            except TimeoutError:
                closed = False
            if closed:
                self.unread.append(DOWNLOAD_BYTES - DOWNLOAD_FIRST_PART)
                self.close_connection = True
                return
            self.connection.settimeout(None)
            self.wfile.write(bytes(DOWNLOAD_BYTES - DOWNLOAD_FIRST_PART))


@dataclass
class Served:
    port: int
    requests: list[tuple[str, int]]

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]

    def crawl(self, *seeds: str, depth: int = 1, max_pages: int = 30) -> CrawlResult:
        return discover_pages(
            "127.0.0.1",
            self.port,
            seeds or ("/",),
            depth=depth,
            max_pages=max_pages,
            skip_prefixes=SKIP,
            timeout=5,
        )


@contextlib.contextmanager
def fake_site(site: type[FakeSiteHandler] = FakeSite, **attributes: Any) -> Iterator[Served]:
    """`site` served on loopback, with its own list of requests and the class `attributes`."""
    requests: list[tuple[str, int]] = []
    handler = type("Handler", (site,), {"requests": requests, **attributes})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Served(server.server_address[1], requests)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


FOUND_FROM_HOME = ("/", "/a/", "/about/", "/absolute/", "/search/?q=bigfoot", "/with%20space/")


def test_a_page_yields_the_links_a_crawler_may_follow() -> None:
    page = parse_page(
        '<a href="/a/">a</a><a>no href</a><a href="">empty</a>'
        '<a href="/b/" rel="nofollow">b</a><a href="/c/" rel="noopener NOFOLLOW">c</a>'
        '<a href="/d.zip" download>d</a><a href="/e/" rel="noopener">e</a>'
        '<link rel="stylesheet" href="/static/s.css">'
    )
    assert page.links == ["/a/", "/e/"]
    assert page.assets == ["/static/s.css"]


def test_the_crawl_keeps_the_same_site_pages_the_seeds_link_to() -> None:
    with fake_site() as site:
        result = site.crawl(depth=1)
    # Breadth-first, in the order found: the redirect's target (/old/ -> /new/) comes last.
    assert result.pages == (*FOUND_FROM_HOME, "/new/")
    # What the crawl must never request: other sites, static files, media, the health path,
    # actions, links marked nofollow or download.
    for path in result.pages:
        assert not path.startswith(SKIP)
    never = {"/accounts/logout/", "/items/3/delete/", "/hidden/", "/file/", "/healthz"}
    assert never.isdisjoint(site.paths)
    assert not [path for path in site.paths if path.startswith(("/static/", "/media/"))]
    assert not [path for path in site.paths if "example.com" in path or "elsewhere" in path]
    # Each page once (the fragment and the second link to / and /a/ are the same pages); only
    # the redirect loop repeats.
    once = [path for path in site.paths if path != "/loop/"]
    assert len(once) == len(set(once))
    skipped = dict(result.skipped)
    assert skipped["/static/app.css"] == "under /static/"
    assert skipped["/media/upload.png"] == "under /media/"
    assert skipped["/healthz"] == "under /healthz"
    assert skipped["/accounts/logout/"].startswith("looks like an action")
    assert skipped["/items/3/delete/"].startswith("looks like an action")


def test_one_keep_alive_connection_carries_the_whole_crawl() -> None:
    with fake_site() as site:
        site.crawl(depth=2)
    assert len({client_port for _, client_port in site.requests}) == 1


def test_a_keep_alive_connection_closed_while_idle_is_opened_again() -> None:
    with fake_site(drop_after_each=True) as site:
        result = site.crawl(depth=1)
    assert result.pages == (*FOUND_FROM_HOME, "/new/")
    assert result.errors == (
        ("/loop/", "more than 3 redirects"),
        ("/missing/", "answered 404"),
        ("/broken/", "answered 500"),
    )


def test_pages_that_fail_or_are_no_html_are_not_kept() -> None:
    with fake_site() as site:
        result = site.crawl(depth=1)
    assert {"/missing/", "/broken/", "/report.pdf"}.isdisjoint(result.pages)
    assert ("/missing/", "answered 404") in result.errors
    assert ("/broken/", "answered 500") in result.errors
    assert ("/report.pdf", "not a page: application/pdf") in result.skipped


def test_redirects_are_followed_on_the_site_only_and_a_few_times() -> None:
    with fake_site() as site:
        result = site.crawl(depth=1)
    assert "/new/" in result.pages and "/old/" not in result.pages
    skipped, errors = dict(result.skipped), dict(result.errors)
    assert skipped["/away/"] == "redirects to another site: http://example.com/"
    assert skipped["/to-static/"] == "redirects to /static/x.css, under /static/"
    assert errors["/loop/"] == "more than 3 redirects"
    assert site.paths.count("/loop/") == 4  # the link, then 3 redirects
    assert "/static/x.css" not in site.paths


@pytest.mark.parametrize(
    ("depth", "found"),
    [
        (0, ("/",)),
        (1, (*FOUND_FROM_HOME, "/new/")),
        (2, (*FOUND_FROM_HOME, "/new/", "/a/b/")),
        (3, (*FOUND_FROM_HOME, "/new/", "/a/b/", "/a/b/c/")),
    ],
)
def test_the_crawl_goes_as_deep_as_it_is_told(depth: int, found: tuple[str, ...]) -> None:
    with fake_site() as site:
        result = site.crawl(depth=depth)
    assert result.pages == found
    if depth == 0:
        assert site.paths == ["/"]  # only the seed, requested to see where it leads


def test_the_crawl_stops_at_max_pages_seeds_included() -> None:
    with fake_site() as site:
        assert site.crawl(depth=3, max_pages=3).pages == ("/", "/a/", "/about/")
        assert site.crawl(depth=3, max_pages=1).pages == ("/",)


def test_the_seeds_come_first_and_stay_even_when_they_fail() -> None:
    with fake_site() as site:
        result = site.crawl("/missing/", "/a/b/", "/", "/a/b/", depth=1)
        assert result.pages[:3] == ("/missing/", "/a/b/", "/")
        assert result.pages[3:5] == ("/a/b/c/", "/a/")
        assert ("/missing/", "answered 404") in result.errors
        # More seeds than max_pages: every seed is kept, and nothing more is looked for.
        before = len(site.paths)
        seeds = ("/", "/missing/", "/about/")
        assert site.crawl(*seeds, depth=2, max_pages=2).pages == seeds
        assert site.paths[before:] == list(seeds)


def test_a_seed_that_redirects_to_the_login_page_is_viewed_as_the_login_page() -> None:
    """Every request to `/` would answer 302: the load would count each one a failure."""
    with fake_site(LoginRequiredSite) as site:
        result = site.crawl("/", "/reports/", depth=1)
    assert result.pages == (
        "/accounts/login/?next=/",
        "/accounts/login/?next=/reports/",
        "/accounts/password_reset/",
        "/accounts/login/?next=/private/",
    )
    assert result.errors == ()


def test_a_seed_that_redirects_to_its_language_is_viewed_in_that_language() -> None:
    with fake_site(LanguagePrefixSite) as site:
        assert site.crawl("/", depth=1).pages == ("/en/", "/en/about/", "/fr/")
        # A seed and the seed it redirects to are one page.
        assert site.crawl("/", "/en/about/", "/en/", depth=0).pages == ("/en/", "/en/about/")


def test_a_redirecting_seed_is_followed_even_at_depth_0() -> None:
    with fake_site() as site:
        result = site.crawl("/old/", "/about/", depth=0)
    assert result.pages == ("/new/", "/about/")
    assert site.paths == ["/old/", "/new/", "/about/"]


def test_a_seed_that_leads_to_no_page_is_left_out_but_one_that_404s_is_kept() -> None:
    """Every view of a seed that answers no page would fail whatever the release does: it is
    not viewed, and why is said. One that 404s is viewed: the report lists it as a page the
    app does not have."""
    with fake_site() as site:
        seeds = ("/loop/", "/away/", "/to-static/", "/broken/", "/report.pdf", "/missing/")
        result = site.crawl(*seeds, depth=1)
    assert result.pages == ("/missing/",)
    assert result.errors == (
        ("/loop/", "more than 3 redirects"),
        ("/broken/", "answered 500"),
        ("/missing/", "answered 404"),
    )
    assert dict(result.skipped) == {
        "/away/": "redirects to another site: http://example.com/",
        "/to-static/": "redirects to /static/x.css, under /static/",
        "/report.pdf": "not a page: application/pdf",
    }


def test_a_download_is_not_read_and_the_crawl_goes_on() -> None:
    unread: list[int] = []
    with fake_site(DownloadSite, unread=unread) as site:
        result = site.crawl(depth=1)
    assert result.pages == ("/", "/after/")
    assert result.skipped == (("/export.zip", "not a page: application/zip"),)
    # The crawl closed the download's connection with most of it unread, and went on on a
    # new one.
    assert unread == [DOWNLOAD_BYTES - DOWNLOAD_FIRST_PART]
    ports = dict(site.requests)
    assert ports["/after/"] != ports["/export.zip"] == ports["/"]


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "0.0.0.0", "127.0.0.1.nip.io"])
def test_the_crawl_visits_this_machine_only(host: str) -> None:
    with pytest.raises(ValueError, match="this machine only"):
        discover_pages(host, 8000, ["/"], depth=1, max_pages=5, skip_prefixes=SKIP)


def test_the_stack_config_bounds_the_crawl() -> None:
    defaults = RehearsalConfig()
    assert (defaults.crawl_depth, defaults.max_pages) == (2, 30)
    assert RehearsalConfig.model_validate({"crawlDepth": 0, "maxPages": 200}).max_pages == 200
    for too_much in ({"crawlDepth": 6}, {"crawlDepth": -1}, {"maxPages": 0}, {"maxPages": 201}):
        with pytest.raises(pydantic.ValidationError):
            RehearsalConfig.model_validate(too_much)
