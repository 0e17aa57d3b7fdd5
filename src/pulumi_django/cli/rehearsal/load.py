"""A steady, browser-like load on the site during a rehearsal, and the statistics of what it saw.

Virtual users, each with its own keep-alive connection and cookie jar, run scenarios picked at
random: a page view (`/` or one of the app's `rehearsal.paths`, then every stylesheet, script and
image it references), a form (one of `rehearsal.forms`: the page, then a POST with its CSRF
token, as a browser does) and a health check. A shared pacer hands out send times at a steady
rate, so the rate stays the same however fast the site answers.

Every request is kept as a `Sample`; `classify` says which kind of failure it was, if any.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import http.cookies
import math
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser

from pulumi_django.config.rehearsal import RehearsalForm

# How an HTTP request fails; and `orm`, the model write probe's database errors (orm_probe.py).
REQUEST_FAILURE_KINDS = ("5xx", "static_404", "connection", "other")
FAILURE_KINDS = (*REQUEST_FAILURE_KINDS, "orm")
REQUEST_TIMEOUT_SECONDS = 30.0
# A slow site delays requests at most this long; beyond, the pacer drops the backlog instead of
# bursting it all at once.
MAX_BACKLOG_SECONDS = 1.0
# Virtual users per request/s: enough users that a slow second does not lower the rate.
USERS_PER_RPS = 0.2
MIN_USERS = 4
# Pages whose parse is kept (by their HTML): enough for every page a site's load views.
PARSED_PAGES_KEPT = 64
# Scenario weights: mostly page views, some form posts, the odd health check.
PAGE_WEIGHT, FORM_WEIGHT, HEALTH_WEIGHT = 12, 5, 3
DETAIL_LENGTH = 200
_TITLE = re.compile(r"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)
# What a successful form POST answers unless the form says otherwise: Django's views redirect.
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# The content of every file a form uploads.
UPLOAD_TEXT = "A file uploaded by the release rehearsal's load.\n"


class Stopped(Exception):
    """The load stopped in the middle of a scenario."""


@dataclass(frozen=True)
class Sample:
    """One request: when it started (monotonic seconds), how long its answer took, and how it
    failed, if it did (one of FAILURE_KINDS; `detail` says more). A write probe's operation is
    one too: `method` is the operation, `path` the model. `version` is the version that
    answered, where that is known."""

    started: float
    method: str
    path: str
    status: int | None
    latency_ms: float | None
    failure: str | None = None
    detail: str = ""
    version: str = ""

    @property
    def answered(self) -> float:
        """When its answer came (monotonic seconds); when none came, when it started."""
        return self.started + (self.latency_ms or 0.0) / 1000


def classify(
    method: str,
    path: str,
    status: int | None,
    expected: int | frozenset[int],
    static_prefix: str,
    error: BaseException | None = None,
) -> str | None:
    """The kind of failure of one request, or None when it got the answer it expected (one
    status, or any of a set)."""
    if status is None:
        if isinstance(error, ConnectionError | http.client.HTTPException):
            return "connection"
        return "other"
    if status >= 500:
        return "5xx"
    if status == 404 and method == "GET" and path.startswith(static_prefix):
        return "static_404"
    if status not in ({expected} if isinstance(expected, int) else expected):
        return "other"
    return None


def is_missing_page(sample: Sample) -> bool:
    """A page GET answered 404: the app has no such page (static files that 404 are
    `static_404`, never a missing page)."""
    return sample.method == "GET" and sample.status == 404 and sample.failure == "other"


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile (`fraction` 0.5 for p50, 0.99 for p99); None without values."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} is not in (0, 1]")
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@dataclass(frozen=True)
class LatencySummary:
    requests: int
    p50: float | None
    p99: float | None


def latency_summary(samples: Sequence[Sample]) -> LatencySummary:
    """p50 and p99 of the requests that got an answer, any answer, in milliseconds."""
    answered = [s.latency_ms for s in samples if s.latency_ms is not None]
    return LatencySummary(len(samples), percentile(answered, 0.5), percentile(answered, 0.99))


def failure_counts(samples: Sequence[Sample]) -> dict[str, int]:
    counts = dict.fromkeys(FAILURE_KINDS, 0)
    for sample in samples:
        if sample.failure is not None:
            counts[sample.failure] += 1
    return counts


class Pacer:
    """Hands out send times `1/rate` apart to any number of threads."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("the rate must be positive")
        self.interval = 1.0 / rate
        self.clock = clock
        self.next = clock()
        self.lock = threading.Lock()

    def next_slot(self) -> float:
        with self.lock:
            slot = max(self.next, self.clock() - MAX_BACKLOG_SECONDS)
            self.next = slot + self.interval
            return slot

    def wait(self, stop: threading.Event) -> None:
        """Blocks until this caller's send time; Stopped when the load ends first."""
        delay = self.next_slot() - self.clock()
        if stop.wait(delay) if delay > 0 else stop.is_set():
            raise Stopped


class _PageParser(HTMLParser):
    """The stylesheets, scripts and images a page references, the links a crawler may follow
    (crawl.py) and its form's prefilled fields."""

    def __init__(self) -> None:
        super().__init__()
        self.assets: list[str] = []
        self.links: list[str] = []
        self.fields: dict[str, str] = {}
        self.select: str | None = None  # the name of the select whose options come next

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "link" and attributes.get("rel") == "stylesheet" and attributes.get("href"):
            self.assets.append(attributes["href"])
        elif tag in ("script", "img") and attributes.get("src"):
            self.assets.append(attributes["src"])
        elif tag == "a" and attributes.get("href"):
            # Not a link its page asks crawlers to leave alone, nor a file to save.
            nofollow = "nofollow" in attributes.get("rel", "").lower().split()
            if not nofollow and "download" not in attributes:
                self.links.append(attributes["href"])
        elif tag == "input" and attributes.get("name"):
            kind = attributes.get("type", "text")
            if kind == "hidden":
                self.fields[attributes["name"]] = attributes.get("value", "")
            elif kind == "checkbox":  # a user ticks every box (e.g. a consent box)
                self.fields[attributes["name"]] = attributes.get("value") or "on"
        elif tag == "select" and attributes.get("name"):
            self.select = attributes["name"]
        elif tag == "option" and self.select is not None and attributes.get("value"):
            # A user keeps the selected option, else picks the first real one (not "-----").
            if "selected" in attributes:
                self.fields[self.select] = attributes["value"]
            else:
                self.fields.setdefault(self.select, attributes["value"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self.select = None


def parse_page(html: str) -> _PageParser:
    parser = _PageParser()
    parser.feed(html)
    return parser


@functools.lru_cache(maxsize=PARSED_PAGES_KEPT)
def _page_parts(html: str) -> tuple[tuple[str, ...], tuple[tuple[str, str], ...]]:
    """The page's assets and form fields, parsed once per distinct HTML: the views of a page
    mostly get the same HTML, a form's page is read twice (its token, then its fields), and
    parsing is most of the CPU the load generator itself uses."""
    page = parse_page(html)
    return tuple(page.assets), tuple(page.fields.items())


@dataclass(frozen=True)
class Site:
    """Where the load goes: the proxy's address, the pages it views, the forms it posts."""

    host: str
    port: int
    static_prefix: str
    page_paths: tuple[str, ...] = ("/",)
    forms: tuple[RehearsalForm, ...] = ()
    health_path: str = "/healthz"
    # The response header in which the proxy names the replica that answered (None: not sent).
    served_by_header: str | None = None

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"


@dataclass
class _Answer:
    status: int
    body: str
    served_by: str = ""  # the replica that answered, as the proxy names it


class VirtualUser:
    """One browser: a keep-alive connection, a cookie jar, scenarios one after another."""

    def __init__(
        self,
        site: Site,
        pacer: Pacer,
        record: Callable[[Sample], None],
        stop: threading.Event,
        seed: int,
    ) -> None:
        self.site = site
        self.pacer = pacer
        self.record = record
        self.stop = stop
        self.random = random.Random(seed)
        self.cookies: dict[str, str] = {}
        self.connection: http.client.HTTPConnection | None = None
        self.used = False  # whether the open connection already carried a request
        self.connection_history = ""  # how the last request was sent, for failure details

    def run(self) -> None:
        scenarios = [(self.check_health, HEALTH_WEIGHT)]
        if self.site.page_paths:  # none when every seed answered no page
            scenarios.append((self.view_page, PAGE_WEIGHT))
        if self.site.forms:
            scenarios.append((self.submit_form, FORM_WEIGHT))
        actions, weights = zip(*scenarios, strict=True)
        try:
            while not self.stop.is_set():
                self.random.choices(actions, weights)[0]()
        except Stopped:
            pass
        finally:
            self.close()

    def view_page(self) -> None:
        path = self.random.choice(self.site.page_paths)
        page = self.request("GET", path)
        if page is not None:  # a page without static files is fine; a file that fails is not
            for asset in self._local_assets(page.body):
                self.request("GET", asset)

    def submit_form(self) -> None:
        form = self.random.choice(self.site.forms)
        page = self.request("GET", form.path, validate=self._form_problem)
        if page is None:
            return
        fields = {**dict(_page_parts(page.body)[1]), **form.fields}
        if form.files:
            boundary = f"rehearsal-{self.random.getrandbits(64):016x}"
            body: str | bytes = multipart_body(fields, form.files, boundary)
            content_type = f"multipart/form-data; boundary={boundary}"
        else:
            body = urllib.parse.urlencode(fields)
            content_type = "application/x-www-form-urlencoded"
        self.request(
            "POST",
            form.path,
            body=body,
            headers={
                "Content-Type": content_type,
                "Origin": self.site.origin,
                "Referer": self.site.origin + form.path,
            },
            expected=REDIRECT_STATUSES if form.status is None else form.status,
        )

    def check_health(self) -> None:
        self.request("GET", self.site.health_path)

    @property
    def host_header(self) -> str:
        return f"{self.site.host}:{self.site.port}"

    def _local_assets(self, html: str) -> list[str]:
        """Paths of the page's stylesheets, scripts and images served by this site."""
        urls = [urllib.parse.urlsplit(url) for url in _page_parts(html)[0]]
        return [url.path for url in urls if url.netloc in ("", self.host_header)]

    def _form_problem(self, html: str) -> str | None:
        fields = dict(_page_parts(html)[1])
        if "csrfmiddlewaretoken" not in fields or "csrftoken" not in self.cookies:
            return "the form page set no CSRF cookie and token"
        return None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        expected: int | frozenset[int] = 200,
        validate: Callable[[str], str | None] | None = None,
    ) -> _Answer | None:
        """One request at the pacer's next send time. The answer when it was the expected one
        (and `validate` found no problem in its body), else None and a failed sample."""
        self.pacer.wait(self.stop)
        started = time.monotonic()
        all_headers = {"Host": self.host_header, **(headers or {})}
        if self.cookies:
            all_headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            answer = self._send(method, path, body, all_headers)
        except (OSError, http.client.HTTPException) as error:
            self.close()
            kind = classify(method, path, None, expected, self.site.static_prefix, error)
            detail = f"{describe_error(error)} ({self.connection_history})"
            self.record(Sample(started, method, path, None, None, kind, detail))
            return None
        latency = (time.monotonic() - started) * 1000
        kind = classify(method, path, answer.status, expected, self.site.static_prefix)
        detail = "" if kind is None else summarize_body(answer.body)
        if kind is None and validate is not None and (problem := validate(answer.body)):
            kind, detail = "other", problem
        self.record(
            Sample(started, method, path, answer.status, latency, kind, detail, answer.served_by)
        )
        return answer if kind is None else None

    def _send(
        self, method: str, path: str, body: str | bytes | None, headers: dict[str, str]
    ) -> _Answer:
        """Sends on the open connection. Like a browser, it resends once on a new connection
        when a reused keep-alive connection turns out closed before any answer came."""
        reused = self.connection is not None and self.used
        self.connection_history = "on a reused connection" if reused else "on a new connection"
        try:
            return self._send_once(method, path, body, headers)
        except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
            self.close()
            if not reused:
                raise
        self.connection_history = "sent again on a new connection after a closed keep-alive one"
        return self._send_once(method, path, body, headers)

    def _send_once(
        self, method: str, path: str, body: str | bytes | None, headers: dict[str, str]
    ) -> _Answer:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                self.site.host, self.site.port, timeout=REQUEST_TIMEOUT_SECONDS
            )
            self.used = False
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        self.used = True
        text = response.read().decode(errors="replace")
        self._keep_cookies(response.headers.get_all("Set-Cookie") or [])
        if response.will_close:
            self.close()
        served_by = response.headers.get(self.site.served_by_header or "", "")
        return _Answer(response.status, text, served_by)

    def _keep_cookies(self, headers: Sequence[str]) -> None:
        for header in headers:
            jar: http.cookies.SimpleCookie = http.cookies.SimpleCookie()
            with contextlib.suppress(http.cookies.CookieError):
                jar.load(header)
            self.cookies.update({name: morsel.value for name, morsel in jar.items()})

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


def multipart_body(fields: Mapping[str, str], files: Mapping[str, str], boundary: str) -> bytes:
    """A `multipart/form-data` body, as a browser posts a form with file inputs: each field,
    then each file (named as `files` says, holding UPLOAD_TEXT)."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"'
        f"\r\nContent-Type: text/plain\r\n\r\n{UPLOAD_TEXT}\r\n"
        for name, file_name in files.items()
    ]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


def summarize_body(body: str) -> str:
    """What an error page says, in a few words: its HTML title, else its first characters."""
    title = _TITLE.search(body)
    text = title.group(1) if title else body
    return " ".join(text.split())[:DETAIL_LENGTH]


def describe_error(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".rstrip(": ")


def users_for(rate: float) -> int:
    return max(MIN_USERS, math.ceil(rate * USERS_PER_RPS))


@dataclass
class LoadGenerator:
    """Runs virtual users against `site` at `rate` requests/s until stopped."""

    site: Site
    rate: float
    samples: list[Sample] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        pacer = Pacer(self.rate)
        for index in range(users_for(self.rate)):
            user = VirtualUser(self.site, pacer, self._record, self._stop, seed=index)
            thread = threading.Thread(target=user.run, name=f"load-user-{index}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> list[Sample]:
        """Stops sending, waits for the requests in flight, returns every sample by start time."""
        self._stop.set()
        for thread in self._threads:
            thread.join(REQUEST_TIMEOUT_SECONDS + 5)
        with self._lock:
            return sorted(self.samples, key=lambda sample: sample.started)

    def count(self) -> int:
        with self._lock:
            return len(self.samples)

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)


@contextlib.contextmanager
def running_load(site: Site, rate: float) -> Iterator[LoadGenerator]:
    """The load runs inside the block and always stops when it ends."""
    generator = LoadGenerator(site, rate)
    generator.start()
    try:
        yield generator
    finally:
        generator.stop()
