"""The release rehearsal: its load generator, statistics and report (fast), its step handlers,
and whole rehearsals of every release variant on real servers (slow, loopback only)."""

from __future__ import annotations

import contextlib
import email.policy
import http.server
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from fixture_repos import app_history, apply_variant
from hypothesis import given
from hypothesis import strategies as st
from rehearsal_fakes import FakeSiteHandler, page, rehearsal_report

from pulumi_django.cli import main
from pulumi_django.cli.rehearsal import rehearse as rehearse_module
from pulumi_django.cli.rehearsal.load import (
    FAILURE_KINDS,
    REDIRECT_STATUSES,
    UPLOAD_TEXT,
    LoadGenerator,
    Pacer,
    Sample,
    Site,
    VirtualUser,
    classify,
    parse_page,
    percentile,
    summarize_body,
)
from pulumi_django.cli.rehearsal.rehearse import (
    STEP_HANDLERS,
    Rehearsal,
    RehearsalOptions,
    ReleaseStepError,
    StepOutcome,
    established_connections,
)
from pulumi_django.cli.rehearsal.releases import current_release
from pulumi_django.cli.rehearsal.report import (
    RECONNECT_WINDOW_SECONDS,
    HealthChecks,
    Outage,
    Replacement,
    StepReport,
    Timeline,
    WriteSummary,
    build_report,
    decide_result,
    render_markdown,
    render_report,
    report_json,
)
from pulumi_django.cli.rehearsal.servers import postgres, run_in_group
from pulumi_django.cli.rehearsal.sources import resolve_sides
from pulumi_django.cli.rehearsal.supervisor import (
    CheckSettings,
    FleetHealth,
    Supervisor,
    fleet_health,
)
from pulumi_django.cli.stackfile import load_stack_file
from pulumi_django.config import ConfigError, parse_stack_config
from pulumi_django.config.rehearsal import RehearsalForm
from pulumi_django.release import RELEASE_STEPS
from pulumi_django.release_steps import Step

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "examples" / "bigfoot"
CLI = Path(sys.executable).parent / "pulumi-django"
STEP_KEYS = [step.key for step in RELEASE_STEPS]
REHEARSAL_TIMEOUT = 240


def local_config() -> Any:
    return parse_stack_config(*load_stack_file(ROOT, "local").namespace("django"))


# ---------------------------------------------------------------- statistics and classification


@pytest.mark.parametrize(
    ("method", "path", "status", "expected", "error", "kind"),
    [
        ("GET", "/", 200, 200, None, None),
        ("POST", "/sightings/new/", 303, 303, None, None),
        ("POST", "/sightings/new/", 500, 303, None, "5xx"),
        ("GET", "/healthz", 503, 200, None, "5xx"),
        ("GET", "/static/app.0123456789ab.css", 404, 200, None, "static_404"),
        ("GET", "/missing/", 404, 200, None, "other"),
        ("POST", "/static/form", 404, 303, None, "other"),
        ("POST", "/sightings/new/", 403, 303, None, "other"),
        ("POST", "/entries/new/", 302, REDIRECT_STATUSES, None, None),
        ("POST", "/entries/new/", 200, REDIRECT_STATUSES, None, "other"),
        ("GET", "/", None, 200, ConnectionRefusedError(), "connection"),
        ("GET", "/", None, 200, ConnectionResetError(), "connection"),
        ("GET", "/", None, 200, TimeoutError("timed out"), "other"),
    ],
)
def test_each_request_is_classified_by_what_went_wrong(
    method: str,
    path: str,
    status: int | None,
    expected: int | frozenset[int],
    error: BaseException | None,
    kind: str | None,
) -> None:
    assert classify(method, path, status, expected, "/static/", error) == kind


def test_an_error_page_is_summed_up_by_its_title() -> None:
    page = "<!doctype html><html><head>\n<title>Server Error (500)</title></head><body>..."
    assert summarize_body(page) == "Server Error (500)"
    assert summarize_body("database unavailable:\n  OperationalError") == (
        "database unavailable: OperationalError"
    )
    assert len(summarize_body("x" * 5000)) == 200


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile(values, 1.0) == 100
    assert percentile([7.0], 0.99) == 7
    assert percentile([], 0.5) is None
    with pytest.raises(ValueError, match="fraction"):
        percentile(values, 0)


@given(st.lists(st.floats(0, 1e6), min_size=1), st.floats(0.01, 1), st.floats(0.01, 1))
def test_a_percentile_is_a_value_and_grows_with_the_fraction(
    values: list[float], first: float, second: float
) -> None:
    low, high = sorted((first, second))
    assert percentile(values, low) in values
    assert percentile(values, low) <= percentile(values, high)  # type: ignore[operator]


def test_the_pacer_spaces_sends_evenly_and_drops_a_long_backlog() -> None:
    now = [100.0]
    pacer = Pacer(10, clock=lambda: now[0])
    assert [pacer.next_slot() for _ in range(3)] == pytest.approx([100.0, 100.1, 100.2])
    now[0] = 105.0  # the site stalled for 5 s: at most 1 s of sends is made up
    assert pacer.next_slot() == pytest.approx(104.0)
    assert pacer.next_slot() == pytest.approx(104.1)


def test_a_page_yields_its_assets_and_its_form_fields() -> None:
    page = parse_page(
        '<link rel="stylesheet" href="/static/a.1234567890ab.css"><link rel="icon" href="/i.ico">'
        '<script src="/static/a.js" defer></script><script>inline()</script>'
        '<form><input type="hidden" name="csrfmiddlewaretoken" value="tok">'
        '<input type="checkbox" name="gdpr_accepted"><input type="text" name="location"></form>'
    )
    assert page.assets == ["/static/a.1234567890ab.css", "/static/a.js"]
    assert page.fields == {"csrfmiddlewaretoken": "tok", "gdpr_accepted": "on"}


def test_a_select_keeps_its_selected_option_or_takes_the_first_real_one() -> None:
    page = parse_page(
        '<img src="/static/logo.svg"><select name="notebook"><option value="">---------</option>'
        '<option value="7">Inbox</option><option value="9">Travel</option></select>'
        '<select name="size"><option value="s">S</option><option value="m" selected>M</option>'
        '</select><option value="x">outside any select</option>'
    )
    assert page.assets == ["/static/logo.svg"]
    assert page.fields == {"notebook": "7", "size": "m"}


# ---------------------------------------------------------------- the load against a fake site


class FakeBigfoot(FakeSiteHandler):
    """The example app's pages and behaviour, in miniature. `broken_static` answers 404 for
    the script."""

    broken_static = False
    posts: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:
        if self.path == "/":
            self.answer(
                200,
                '<link rel="stylesheet" href="/static/b.0123456789ab.css">'
                '<script src="/static/b.js"></script>',
            )
        elif self.path == "/static/b.0123456789ab.css":
            self.answer(200, "body{}")
        elif self.path == "/static/b.js":
            self.answer(404 if self.broken_static else 200, "x()")
        elif self.path == "/sightings/new/":
            self.answer(
                200,
                '<input type="hidden" name="csrfmiddlewaretoken" value="t0k">'
                '<input type="checkbox" name="gdpr_accepted">',
                {"Set-Cookie": "csrftoken=c00kie; Path=/; SameSite=Lax"},
            )
        elif self.path == "/healthz":
            self.answer(200, "ok")
        elif self.path == "/about/":  # a page with no stylesheet, script or image
            self.answer(200, "<p>Bigfoot sightings since 1958.</p>")
        else:
            self.answer(404, "not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        fields = urllib.parse.parse_qs(body)
        self.posts.append(fields)
        good = fields.get("csrfmiddlewaretoken") == ["t0k"] and "csrftoken=c00kie" in (
            self.headers.get("Cookie") or ""
        )
        self.answer(303 if good else 403, "", {"Location": "/"})


@contextlib.contextmanager
def fake_site(**behaviour: bool) -> Iterator[Site]:
    handler = type("Handler", (FakeBigfoot,), {**behaviour, "posts": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(
            host="127.0.0.1",
            port=server.server_address[1],
            static_prefix="/static/",
            forms=(RehearsalForm(path="/sightings/new/", fields={"location": "Bluff Creek"}),),
        )
    finally:
        server.shutdown()
        server.server_close()


def run_load(site: Site, seconds: float, rate: float = 200) -> list[Sample]:
    generator = LoadGenerator(site, rate)
    generator.start()
    time.sleep(seconds)
    return generator.stop()


def test_the_load_browses_reports_and_checks_health_like_browsers_do() -> None:
    with fake_site() as site:
        samples = run_load(site, 1.0)
    assert len(samples) > 100
    assert all(sample.failure is None for sample in samples), samples[:3]
    requests = {(sample.method, sample.path) for sample in samples}
    assert requests == {
        ("GET", "/"),
        ("GET", "/static/b.0123456789ab.css"),
        ("GET", "/static/b.js"),
        ("GET", "/sightings/new/"),
        ("POST", "/sightings/new/"),
        ("GET", "/healthz"),
    }
    assert sorted(s.started for s in samples) == [s.started for s in samples]


def test_a_page_without_static_files_is_fine_but_a_file_a_page_references_must_load() -> None:
    with fake_site(broken_static=True) as site:
        samples = run_load(replace(site, page_paths=("/", "/about/")), 0.5)
    failed = [sample for sample in samples if sample.failure]
    assert failed
    assert {(s.failure, s.path, s.status) for s in failed} == {("static_404", "/static/b.js", 404)}
    about = [(s.status, s.failure) for s in samples if s.path == "/about/"]
    assert about
    assert set(about) == {(200, None)}
    assert "/static/b.0123456789ab.css" in {s.path for s in samples}  # "/" still fetches it


def test_a_closed_keep_alive_connection_is_resent_once_like_a_browser_does() -> None:
    with fake_site(drop_after_each=True) as site:
        samples = run_load(site, 0.5)
    assert len(samples) > 50
    assert [s for s in samples if s.failure] == []


class FakeNotebook(FakeBigfoot):
    """Another app's shape: two pages (one with images, one of them on another host), and an
    entry form with a select and a file input, posted as multipart/form-data."""

    posts: list[dict[str, tuple[str | None, str]]] = []  # type: ignore[assignment]
    PAGES = {
        "/": '<link rel="stylesheet" href="/static/n.css"><img src="/static/logo.svg">'
        '<img src="https://cdn.example.test/banner.png">',
        "/notebooks/": '<script src="/static/n.js"></script>',
        "/static/n.css": "body{}",
        "/static/n.js": "x()",
        "/static/logo.svg": "<svg/>",
        "/healthz": "ok",
    }

    def do_GET(self) -> None:
        if self.path == "/entries/new/":
            self.answer(
                200,
                '<form enctype="multipart/form-data"><input type="hidden" '
                'name="csrfmiddlewaretoken" value="t0k"><select name="notebook">'
                '<option value="" selected>---------</option><option value="7">Inbox</option>'
                '<option value="9">Travel</option></select><input type="file" name="attachment">',
                {"Set-Cookie": "csrftoken=c00kie; Path=/"},
            )
        elif self.path in self.PAGES:
            self.answer(200, self.PAGES[self.path])
        else:
            self.answer(404, "not found")

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        message = BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body
        )
        parts = {
            part.get_param("name", header="content-disposition"): (
                part.get_filename(),
                part.get_content(),
            )
            for part in message.iter_parts()
        }
        self.posts.append(parts)
        self.answer(302 if parts["csrfmiddlewaretoken"] == (None, "t0k") else 403, "")


def test_the_load_views_the_configured_pages_and_uploads_files_with_the_form() -> None:
    handler = type("Handler", (FakeNotebook,), {"posts": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    entry_form = RehearsalForm(
        path="/entries/new/", fields={"title": "Trip"}, files={"attachment": "plan.txt"}
    )
    site = Site(
        "127.0.0.1",
        server.server_address[1],
        "/static/",
        page_paths=("/", "/notebooks/"),
        forms=(entry_form,),
    )
    try:
        samples = run_load(site, 1.0)
    finally:
        server.shutdown()
        server.server_close()
    assert [s for s in samples if s.failure] == []
    assert {(s.method, s.path) for s in samples} == {
        ("GET", "/"),
        ("GET", "/static/n.css"),
        ("GET", "/static/logo.svg"),
        ("GET", "/notebooks/"),
        ("GET", "/static/n.js"),
        ("GET", "/entries/new/"),
        ("POST", "/entries/new/"),
        ("GET", "/healthz"),
    }
    assert handler.posts
    assert all(
        post
        == {
            "csrfmiddlewaretoken": (None, "t0k"),
            "notebook": (None, "7"),
            "title": (None, "Trip"),
            "attachment": ("plan.txt", UPLOAD_TEXT),
        }
        for post in handler.posts
    ), handler.posts[0]


def test_without_forms_the_load_only_reads() -> None:
    with fake_site() as site:
        samples = run_load(replace(site, forms=()), 0.5)
    assert samples
    assert {s.method for s in samples} == {"GET"}
    assert "/sightings/new/" not in {s.path for s in samples}


def test_without_a_page_to_view_the_load_checks_health_and_posts_forms() -> None:
    """Every seed answered no page (a 403 at `/`): nothing to view, the rest goes on."""
    with fake_site() as site:
        samples = run_load(replace(site, page_paths=()), 1.0)
    assert len(samples) > 100  # at 200 requests/s: every virtual user kept going
    assert {s.path for s in samples} <= {"/healthz", "/sightings/new/"}
    assert not [s for s in samples if s.failure]


@pytest.mark.parametrize(
    ("rehearsal", "message"),
    [
        ({"paths": ["notebooks/"]}, "'notebooks/' is not a path on the site"),
        ({"forms": [{"path": "/new/", "files": {"attachment": "../x"}}]}, "not a file name"),
        (
            {"forms": [{"path": "/new/", "fields": {"a": "1"}, "files": {"a": "a.txt"}}]},
            "a: in both fields and files",
        ),
        ({"forms": [{"path": "/new/", "status": 500}]}, "django:rehearsal.forms[0].status"),
    ],
)
def test_the_rehearsal_config_refuses_what_the_load_could_not_do(
    rehearsal: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_stack_config({"target": "local", "rehearsal": json.dumps(rehearsal)}, set())


def test_a_connection_closed_without_an_answer_is_a_connection_failure() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        def hang_up() -> None:
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                connection.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        recorded: list[Sample] = []
        user = VirtualUser(
            Site("127.0.0.1", port, "/static/"), Pacer(1000), recorded.append, threading.Event(), 0
        )
        assert user.request("GET", "/static/x.css") is None
        thread.join(5)
    assert [(s.failure, s.status) for s in recorded] == [("connection", None)]
    assert "on a new connection" in recorded[0].detail


# ---------------------------------------------------------------- report


def sample(started: float, failure: str | None = None, latency: float = 10.0) -> Sample:
    status = 500 if failure == "5xx" else 200
    return Sample(started, "GET", "/", status, latency, failure, "boom" if failure else "")


def test_the_report_splits_latency_by_phase_and_counts_failures_by_kind() -> None:
    samples = [
        sample(1.0, latency=1),
        sample(1.5, latency=3),
        sample(2.0, latency=50),  # the release starts at 2.0
        sample(2.5, "5xx", latency=70),
        sample(4.0, latency=2),  # and ends at 4.0
    ]
    steps = [StepReport(key, key, "ok", 1.0, "") for key in STEP_KEYS]
    report = build_report(
        release="v2",
        previous="v1",
        proxy="nginx",
        server="gunicorn",
        replicas=3,
        rate=50,
        steps=steps,
        samples=samples,
        timeline=Timeline(0.5, 2.0, 4.0, 5.0),
    )
    document = report_json(report)
    assert document["release"] == "v2"
    assert document["requests"] == 5
    assert document["failures"] == {
        "5xx": 1,
        "static_404": 0,
        "connection": 0,
        "other": 0,
        "orm": 0,
    }
    assert document["latency_ms"] == {
        "before": {"p50": 1.0, "p99": 3.0},
        "during": {"p50": 50.0, "p99": 70.0},
        "after": {"p50": 2.0, "p99": 2.0},
    }
    assert document["rollout_seconds"] == 2.0
    assert document["result"] == "failed"
    assert report.exit_code == 1
    assert document["failure_examples"] == [
        {"kind": "5xx", "what": "GET / -> 500: boom", "count": 1, "phases": ["during"]}
    ]
    text = render_report(report)
    assert "failed: 1 (5xx 1, static 404 0, connection error 0, other 0)" in text
    assert "    1 x 5xx: GET / -> 500: boom [during the release]" in text
    assert "| 1 | 5xx | GET / -\\> 500: boom | during the release |" in render_markdown(document)
    assert "Result: FAILED" in text


def steps_ending(*statuses: str) -> list[StepReport]:
    return [StepReport(k, k, s, 0.0, "") for k, s in zip(STEP_KEYS, statuses, strict=False)]  # type: ignore[arg-type]


def test_a_failed_request_outweighs_a_halt_but_never_a_refusal() -> None:
    assert decide_result(0, steps_ending("ok", "ok", "ok", "ok", "ok", "ok")) == "ok"
    assert decide_result(0, steps_ending("ok", "ok", "skipped", "ok", "ok", "ok")) == "ok"
    assert decide_result(0, steps_ending("ok", "ok", "refused")) == "refused"
    assert decide_result(0, steps_ending("ok", "ok", "ok", "ok", "halted")) == "halted"
    assert decide_result(3, steps_ending("ok", "ok", "ok", "ok", "halted")) == "failed"
    assert decide_result(3, steps_ending("ok", "ok", "ok", "ok", "ok", "ok")) == "failed"
    # Nothing changed before the refusal: whatever failed, failed on the old version alone.
    assert decide_result(3, steps_ending("ok", "ok", "refused")) == "refused"
    assert set(FAILURE_KINDS) == {"5xx", "static_404", "connection", "other", "orm"}


def test_pages_that_404_before_the_release_are_listed_and_not_counted() -> None:
    samples = [
        page(0.5, "/", 404),  # a stock project has no `/`
        page(0.6, "/admin/login/", 200),
        page(0.7, "/static/gone.css", 404),  # a static file always counts
        page(1.0, "/", 404),
        page(2.5, "/", 404),  # still missing during the release: not counted either
        page(2.6, "/", 500),  # but a server error on that path counts
        page(3.0, "/shop/", 404),  # a page that 404s only once the release started counts
        page(4.5, "/", 404, method="POST"),  # a form posted to it is no missing page
    ]
    report = rehearsal_report(samples, steps_ending("ok", "ok", "ok", "ok", "ok", "ok"))
    assert report.excluded_paths == ("/",)
    assert report.requests == len(samples)
    assert report.failures == {"5xx": 1, "static_404": 1, "connection": 0, "other": 2, "orm": 0}
    assert {(what.split(":")[0], phases) for _, what, _, phases in report.failure_examples} == {
        ("GET / -> 500", ("during",)),
        ("GET /static/gone.css -> 404", ("before",)),
        ("GET /shop/ -> 404", ("during",)),
        ("POST / -> 404", ("after",)),
    }
    assert (report.result, report.exit_code) == ("failed", 1)
    document = report_json(report)
    assert document["excluded_paths"] == ["/"]
    assert list(document)[:6] == [
        "release", "requests", "failures", "latency_ms", "rollout_seconds", "result"
    ]  # fmt: skip
    assert "Pages that 404 before the release (not counted): /\n" in render_report(report)


def test_a_stock_project_without_a_home_page_rehearses_ok() -> None:
    samples = [page(t / 10, "/", 404) for t in range(50)]
    samples += [page(t / 10 + 0.05, "/admin/login/", 200) for t in range(50)]
    report = rehearsal_report(samples, steps_ending("ok", "ok", "ok", "ok", "ok", "ok"))
    assert (report.result, report.failed_requests, report.excluded_paths) == ("ok", 0, ("/",))
    assert report_json(report)["failure_examples"] == []
    clean = rehearsal_report(samples[50:], steps_ending("ok", "ok", "ok", "ok", "ok", "ok"))
    assert clean.excluded_paths == ()
    assert report_json(clean)["excluded_paths"] == []
    assert "not counted" not in render_report(clean)


def test_writes_the_probe_could_not_cover_make_an_ok_say_so() -> None:
    """0 orm failures proves nothing when no model was written: the verdict says why, in the
    text, the JSON and the comment."""
    unprobed = WriteSummary(
        {"v1": 0, "v2": 0},
        (),
        {"home.HomePage": "create raised DoesNotExist: Page matching query does not exist."},
        problems=(
            "the write probe of v1 could write no model",
            "the write probe of v2 exited with 1:\nTraceback (most recent call last):",
        ),
    )
    samples = [page(t / 10, "/", 200) for t in range(50)]
    report = rehearsal_report(
        samples, steps_ending("ok", "ok", "ok", "ok", "ok", "ok"), write_summary=unprobed
    )
    assert (report.result, report.exit_code) == ("ok", 0)
    text = render_report(report)
    assert (
        "Result: OK: no request failed while the old and the new version ran side by side; "
        "but the model writes were not all probed (see Model writes)."
    ) in text
    assert "  the write probe of v1 could write no model" in text
    assert "  not probed: home.HomePage: create raised DoesNotExist" in text
    assert "  the write probe of v2 exited with 1:\n" in text  # a line each, the log in JSON
    assert report_json(report)["writes"]["problems"] == list(unprobed.problems)
    markdown = render_markdown(report_json(report))
    assert "but the model writes were not all probed (see Model writes).**" in markdown
    assert "\n- the write probe of v2 exited with 1:\n" in markdown

    probed = replace(unprobed, models=("home.HomePage",), skipped={}, problems=())
    report = rehearsal_report(samples, steps_ending(*["ok"] * 6), write_summary=probed)
    assert render_report(report).endswith(
        "Result: OK: no request failed while the old and the new version ran side by side.\n"
    )


def test_a_refused_release_is_refused_and_still_shows_what_failed_before_it() -> None:
    samples = [page(0.5, "/", 404), page(1.0, "/shop/", 500), page(2.1, "/", 200)]
    report = rehearsal_report(samples, steps_ending("ok", "ok", "refused"))
    assert (report.result, report.exit_code) == ("refused", 3)
    assert report.failures["5xx"] == 1
    assert report_json(report)["result"] == "refused"
    text = render_report(report)
    assert "failed: 1 (5xx 1, static 404 0, connection error 0, other 0)" in text
    assert "1 x 5xx: GET /shop/ -> 500" in text
    assert "Result: REFUSED: " in text
    assert "the 1 failure above came from it alone." in text


# ---------------------------------------------------------------- release steps


def test_every_release_step_has_a_rehearsal_handler() -> None:
    """Keyed by the registry's steps, in its order: a step added to `Step` fails here until
    the rehearsal can carry it out."""
    assert list(STEP_HANDLERS) == list(Step) == STEP_KEYS


def test_the_release_runs_the_handlers_in_release_order_until_one_stops_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ran: list[str] = []

    def handler(key: str, outcome: StepOutcome | Exception) -> Callable[[Rehearsal], StepOutcome]:
        def run(_rehearsal: Rehearsal) -> StepOutcome:
            ran.append(key)
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

        return run

    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), local_config(), "nginx")
    with contextlib.ExitStack() as resources:
        rehearsal = Rehearsal(options, resources, tmp_path, progress=lambda _line: None)
        for key in STEP_KEYS:
            monkeypatch.setitem(STEP_HANDLERS, key, handler(key, StepOutcome("ok", key)))
        assert [report.key for report in rehearsal.release()] == STEP_KEYS
        assert ran == STEP_KEYS

        ran.clear()
        monkeypatch.setitem(STEP_HANDLERS, "check", handler("check", StepOutcome("refused", "no")))
        reports = rehearsal.release()
        assert ran == STEP_KEYS[: STEP_KEYS.index("check") + 1]
        assert [r.status for r in reports][-1] == "refused"

        ran.clear()
        failing = ReleaseStepError("the migration job exited with 1\nlast lines...")
        monkeypatch.setitem(STEP_HANDLERS, "check", handler("check", StepOutcome("ok", "")))
        monkeypatch.setitem(STEP_HANDLERS, "migrate", handler("migrate", failing))
        last = rehearsal.release()[-1]
        assert (last.key, last.status, last.detail) == (
            "migrate",
            "halted",
            "the migration job exited with 1",
        )


def test_the_proxy_switch_checks_every_page_the_load_views_and_a_404_is_no_halt(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A stock project has no `/`: its 404 is a page a new replica rendered, not a halt. The
    pages that reference static files must reference only the new version's."""
    config = parse_stack_config(
        {"target": "local", "rehearsal": json.dumps({"paths": ["/shop/"]})}, set()
    )
    static_root = tmp_path / "v2" / "staticfiles"
    static_root.mkdir(parents=True)
    manifest = {"paths": {"shop.css": "shop.0123456789ab.css"}}
    (static_root / rehearse_module.STATIC_MANIFEST).write_text(json.dumps(manifest))
    answers: dict[str, tuple[int, str]] = {"/healthz": (200, "ok")}
    asked: list[str] = []

    def fetch(_port: int, path: str) -> tuple[int, str]:
        asked.append(path)
        return answers[path]

    monkeypatch.setattr(rehearse_module, "fetch", fetch)
    monkeypatch.setattr(Rehearsal, "set_upstreams", lambda _self, _replicas: None)
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), config, "nginx")
    with contextlib.ExitStack() as resources:
        rehearsal = Rehearsal(options, resources, tmp_path, progress=lambda _line: None)
        rehearsal.new = rehearse_module.Version("v2", "v2", tmp_path / "v2", static_root)
        rehearsal.proxy = object()  # type: ignore[assignment]
        rehearsal.serving = [object(), object()]  # type: ignore[list-item]

        answers["/"] = (404, "<title>Not Found</title>")
        answers["/shop/"] = (200, '<link rel="stylesheet" href="/static/shop.0123456789ab.css">')
        outcome = rehearsal.step_proxy()
        assert (outcome.status, outcome.detail) == (
            "ok",
            "6 pages through the proxy all came from v2's replicas",
        )
        assert sorted(set(asked)) == ["/", "/healthz", "/shop/"]

        answers["/shop/"] = (200, "<p>No static files on this page.</p>")
        assert "none references a static file" in rehearsal.step_proxy().detail

        answers["/shop/"] = (200, '<link rel="stylesheet" href="/static/shop.ba9876543210.css">')
        with pytest.raises(ReleaseStepError, match="pages of another version"):
            rehearsal.step_proxy()

        answers["/"] = (502, "Bad Gateway")
        with pytest.raises(ReleaseStepError, match="the page / through the proxy answered"):
            rehearsal.step_proxy()


def test_a_step_without_a_handler_fails_before_any_server_starts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(STEP_HANDLERS, "fleet")
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), local_config(), "nginx")
    started = time.monotonic()
    with pytest.raises(NotImplementedError, match="fleet"):
        rehearse_module.rehearse(options, progress=lambda _line: None)
    assert time.monotonic() - started < 1


def test_the_current_version_is_the_release_without_an_overlay() -> None:
    assert current_release(APP) == "v1"


def test_accepted_connections_are_counted_until_they_close() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert established_connections(port) == 0
        client = socket.create_connection(("127.0.0.1", port))
        server_side, _ = listener.accept()
        assert established_connections(port) == 1
        client.close()
        server_side.close()
        assert established_connections(port) == 0


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--replicas", "0"], "--replicas 0: use 1 to 20"),
        (["--rate", "0"], "--rate 0"),
        (["--after", "-1"], "--after -1"),
        (["--database-outage", "-1"], "--database-outage -1: use 0 to 600 seconds"),
        (["--to", "v9"], "--to v9: no such commit, branch or tag"),
        (["--app", "docs"], "docs holds no manage.py"),
        (["--stack", "nope"], "no stack file Pulumi.nope.yaml"),
    ],
)
def test_bad_flags_are_refused_before_anything_starts(
    flags: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["rehearse", *flags]) == 2
    assert message in capsys.readouterr().err


def test_without_stack_the_projects_only_stack_is_rehearsed_else_the_stacks_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`init` writes `dev`: `pulumi-django rehearse` then needs no --stack (the error about
    the app dev names, a directory without manage.py, shows that dev's settings were read)."""
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "__main__.py").write_text("")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  django:target: local\n  django:app:\n    context: site\n"
    )
    (tmp_path / "site").mkdir()
    assert main(["rehearse", "--cwd", str(tmp_path)]) == 2
    assert "stack dev: django:app.settingsModule: no manage.py" in capsys.readouterr().err

    shutil.copy(tmp_path / "Pulumi.dev.yaml", tmp_path / "Pulumi.prod.yaml")
    assert main(["rehearse", "--cwd", str(tmp_path)]) == 2
    assert capsys.readouterr().err.strip() == (
        "pulumi-django rehearse: error: pass --stack NAME: the stack whose settings are "
        f"rehearsed (stacks: dev, prod in {tmp_path})"
    )


# ---------------------------------------------------------------- whole rehearsals (real servers)


@pytest.fixture
def scratch() -> Iterator[Path]:
    """The rehearsal's TMPDIR: it must be empty afterwards, and no process may use it."""
    directory = Path(tempfile.mkdtemp(prefix="pd-test-rehearse-"))
    directory.chmod(0o755)  # PostgreSQL runs as another user and must reach its data directory
    try:
        yield directory
        assert list(directory.iterdir()) == [], "the rehearsal left files behind"
        assert processes_using(directory) == [], "the rehearsal left processes behind"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def processes_using(directory: Path) -> list[str]:
    """Processes whose working directory or command line is under `directory`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            cwd = str((proc / "cwd").readlink())
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if cwd.startswith(str(directory)) or str(directory) in cmdline:
                found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_a_one_off_command_that_times_out_is_stopped_with_the_processes_it_started(
    tmp_path: Path,
) -> None:
    """As the release runner starts `manage.py migrate`: killing the runner alone would leave
    its command running (a Ctrl-C in the middle of the migration job did, once)."""
    started = tmp_path / "grandchild.pid"
    runner = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen(['sleep', '60']); "
        f"open({str(started)!r}, 'w').write(str(child.pid)); time.sleep(60)"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        run_in_group([sys.executable, "-c", runner], cwd=tmp_path, env=dict(os.environ), timeout=1)
    grandchild = int(started.read_text())
    deadline = time.monotonic() + 5
    while Path(f"/proc/{grandchild}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # killed, then reaped by init once its parent is gone
    assert not Path(f"/proc/{grandchild}").exists()

    done = run_in_group(
        [sys.executable, "-c", "print('out'); import sys; sys.exit(3)"],
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=30,
    )
    assert (done.returncode, done.stdout, done.stderr) == (3, "out\n", "")


def rehearse_cli(scratch: Path, *flags: str) -> tuple[int, dict[str, Any], str]:
    """`pulumi-django rehearse --json FLAGS`: exit status, the JSON report, the progress."""
    started = time.monotonic()
    done = subprocess.run(
        [str(CLI), "rehearse", "--json", *flags],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=REHEARSAL_TIMEOUT,
        check=False,
    )
    wall = time.monotonic() - started
    assert done.stdout, f"no report (exit {done.returncode}):\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    print(f"{' '.join(flags)}: {wall:.0f} s\n{done.stdout}")
    return done.returncode, report, done.stderr


def assert_no_failures(report: dict[str, Any], stderr: str) -> None:
    assert report["failures"] == dict.fromkeys(FAILURE_KINDS, 0), (
        f"{report['failure_examples']}\n{stderr[-3000:]}"
    )


def writes_by_version(report: dict[str, Any]) -> dict[str, int]:
    writes = report["writes"]
    assert writes is not None and writes["not_run"] is None, writes
    return dict(writes["operations_by_version"])


def failures_from(report: dict[str, Any], kind: str) -> set[str]:
    """The examples of one kind of failure, up to the detail: `METHOD path -> status (from
    version)` or, for `orm`, `operation model (from version)`."""
    return {
        example["what"].split(": ")[0]
        for example in report["failure_examples"]
        if example["kind"] == kind
    }


# Two replicas replaced under a busier load, at least 1,000 requests, short quiet phases: the
# rollout, not the waiting around it, is what a release rehearsal proves.
SHORT_AND_BUSY = (
    *("--replicas", "2", "--rate", "100", "--min-requests", "1000"),
    *("--before", "2", "--after", "2"),
)


@pytest.fixture
def bigfoot_history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """examples/bigfoot in a git repository of its own: `main` as it is, and a branch per
    release variant."""
    app = tmp_path / "bigfoot"
    return app, app_history("bigfoot", app, ["v2", "v2-unsafe"])


@pytest.mark.slow
def test_a_safe_change_between_two_commits_rolls_out_without_a_single_failed_request(
    scratch: Path, bigfoot_history: tuple[Path, dict[str, str]]
) -> None:
    """A new column with a database default and a new stylesheet, released from one commit
    over another: no request fails, and neither version's writes to the migrated model do."""
    app, commits = bigfoot_history
    code, report, stderr = rehearse_cli(
        scratch,
        *("--app", str(app), "--from", "main", "--to", "v2"),
        *SHORT_AND_BUSY,
    )
    assert_no_failures(report, stderr)
    old, new = f"main@{commits['main'][:8]}", f"v2@{commits['v2'][:8]}"
    assert (code, report["result"], report["previous"], report["release"]) == (0, "ok", old, new)
    assert report["requests"] >= 1000
    assert [step["key"] for step in report["steps"]] == STEP_KEYS
    assert {step["status"] for step in report["steps"]} == {"ok"}
    assert all(report["requests_by_phase"][phase] > 0 for phase in ("before", "during", "after"))
    for phase in ("before", "during", "after"):
        latency = report["latency_ms"][phase]
        assert 0 < latency["p50"] <= latency["p99"]
    assert report["rollout_seconds"] > 0
    # Both releases' static files stayed published side by side.
    published = f"releases published: {commits['v2'][:8]}, {commits['main'][:8]}"
    assert published in report["steps"][1]["detail"]
    # The write probe wrote the migrated app's model from both versions, and none failed.
    assert report["writes"]["models"] == ["sightings.Sighting"]
    assert set(writes_by_version(report)) == {old, new}
    assert min(writes_by_version(report).values()) > 0


@pytest.mark.slow
def test_a_release_variant_rolls_out_behind_caddy_as_the_demo_shows(scratch: Path) -> None:
    """`make demo`'s rehearsal: the example app's variant v2 over v1 (folders, not commits)."""
    code, report, stderr = rehearse_cli(scratch, "--to", "v2", "--proxy", "caddy", *SHORT_AND_BUSY)
    assert_no_failures(report, stderr)
    assert (code, report["result"], report["previous"], report["release"]) == (0, "ok", "v1", "v2")
    assert report["requests"] >= 1000
    assert "releases published: v2, v1" in report["steps"][1]["detail"]
    assert set(writes_by_version(report)) == {"v1", "v2"}


@pytest.mark.slow(seconds=23)
def test_an_unsafe_change_is_refused_and_unchecked_the_old_versions_writes_fail(
    scratch: Path, bigfoot_history: tuple[Path, dict[str, str]]
) -> None:
    """A NOT NULL column with a Python-side default: the check refuses it before anything
    changes; without the check, the old version's inserts fail, through its form and through
    the write probe, and the report says which version made them."""
    app, commits = bigfoot_history
    unsafe = ("--app", str(app), "--from", "main", "--to", "v2-unsafe", "--replicas", "1")
    short = ("--before", "2", "--after", "2")
    code, report, stderr = rehearse_cli(scratch, *unsafe, *short)
    assert_no_failures(report, stderr)
    assert (code, report["result"]) == (3, "refused")
    assert [step["key"] for step in report["steps"]] == STEP_KEYS[: STEP_KEYS.index("check") + 1]
    assert report["steps"][-1]["status"] == "refused"
    assert "sightings.0002_sighting_gdpr_accepted" in report["steps"][-1]["detail"]
    assert "not-null-column-without-db-default" in stderr
    assert report["writes"]["not_run"] == "the release stopped before the migration job"

    code, report, _ = rehearse_cli(scratch, *unsafe, *short, "--skip-check")
    old = f"main@{commits['main'][:8]}"
    assert (code, report["result"]) == (1, "failed")
    assert report["failures"]["orm"] > 0
    assert failures_from(report, "orm") == {f"create sightings.Sighting (from {old})"}
    assert failures_from(report, "5xx") <= {f"POST /sightings/new/ -> 500 (from {old})"}
    assert report["failures"]["static_404"] == report["failures"]["connection"] == 0
    check = next(step for step in report["steps"] if step["key"] == "check")
    assert check["status"] == "skipped"
    assert report["steps"][-1]["key"] == STEP_KEYS[-1]


# The second example app, from its own Pulumi project: Uvicorn, a settings package, a form with a
# file upload, pages of its own (`rehearsal.paths` and `rehearsal.forms` in its stack file).
NOTEBOOK_FLAGS = ("--stack", "local", "--workers", "1")
NOTEBOOK_SHORT = ("--before", "2", "--after", "2")


@pytest.fixture
def notebook_history(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """examples/notebook (a Pulumi project with the app beside it) in a git repository of its
    own: `main` as it is, and a branch per release variant."""
    project = tmp_path / "notebook"
    return project, app_history("notebook", project, ["v2-unsafe"])


@pytest.mark.slow
def test_another_app_rehearses_its_uncommitted_change_by_default(
    scratch: Path, notebook_history: tuple[Path, dict[str, str]]
) -> None:
    """`pulumi-django rehearse` in a project with uncommitted changes rehearses exactly those:
    HEAD, then the working tree."""
    project, commits = notebook_history
    apply_variant("notebook", project, "v2")
    code, report, stderr = rehearse_cli(
        scratch,
        *("--cwd", str(project), *NOTEBOOK_FLAGS, *NOTEBOOK_SHORT),
        *("--replicas", "2", "--rate", "100", "--min-requests", "1000"),
    )
    assert_no_failures(report, stderr)
    assert (code, report["result"], report["server"]) == (0, "ok", "uvicorn")
    assert (report["previous"], report["release"]) == (f"HEAD@{commits['main'][:8]}", "WORKTREE")
    assert report["requests"] >= 1000
    assert [step["key"] for step in report["steps"]] == STEP_KEYS
    migrate = next(step for step in report["steps"] if step["key"] == "migrate")
    assert migrate["detail"] == "applied journal.0003_entry_tags"
    assert {"journal.Entry", "journal.Notebook"} <= set(report["writes"]["models"])
    assert min(writes_by_version(report).values()) > 0


@pytest.mark.slow(seconds=23)
def test_another_apps_unsafe_change_is_refused_and_unchecked_breaks_its_writes(
    scratch: Path, notebook_history: tuple[Path, dict[str, str]]
) -> None:
    """The load also views a page the app does not have (as `/` of a stock project): its 404s
    on the old version before the release are listed, not counted, so the refusal is `refused`
    and, unchecked, the failures are the old version's writes alone."""
    project, commits = notebook_history
    stack_file = project / "Pulumi.local.yaml"
    stack = stack_file.read_text()
    assert "paths: [/notebooks/]" in stack
    stack_file.write_text(stack.replace("paths: [/notebooks/]", "paths: [/notebooks/, /nope/]"))
    unsafe = (
        *("--cwd", str(project), *NOTEBOOK_FLAGS, *NOTEBOOK_SHORT),
        *("--replicas", "1", "--from", "main", "--to", "v2-unsafe"),
    )
    code, report, stderr = rehearse_cli(scratch, *unsafe)
    assert_no_failures(report, stderr)
    assert (code, report["result"], report["excluded_paths"]) == (3, "refused", ["/nope/"])
    assert report["steps"][-1]["status"] == "refused"
    assert "journal.0003_entry_tags" in report["steps"][-1]["detail"]

    code, report, _ = rehearse_cli(scratch, *unsafe, "--skip-check")
    old = f"main@{commits['main'][:8]}"
    assert (code, report["result"]) == (1, "failed")
    assert report["failures"]["orm"] > 0
    assert failures_from(report, "orm") == {f"create journal.Entry (from {old})"}
    assert failures_from(report, "5xx") <= {f"POST /entries/new/ -> 500 (from {old})"}
    assert report["failures"]["other"] == report["failures"]["static_404"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("example", ["bigfoot", "notebook"])
def test_a_release_that_never_gets_healthy_halts_and_the_old_one_keeps_serving(
    scratch: Path, tmp_path: Path, example: str
) -> None:
    """A new version whose health check fails everywhere: the first new replica is never
    added, the release halts there, and the old replicas serve every request."""
    project = tmp_path / example
    commits = app_history(example, project, ["v2-broken"])
    # bigfoot's stack is this project's; notebook is a Pulumi project of its own.
    where = ("--app", str(project)) if example == "bigfoot" else ("--cwd", str(project))
    code, report, stderr = rehearse_cli(
        scratch,
        *where,
        *("--stack", "local", "--workers", "1", "--from", "main", "--to", "v2-broken"),
        *("--replicas", "2", "--before", "2", "--after", "2"),
    )
    assert_no_failures(report, stderr)
    assert (code, report["result"]) == (4, "halted")
    fleet = report["steps"][-1]
    assert (fleet["key"], fleet["status"]) == ("fleet", "halted")
    assert "new replica 1 of 2 never became healthy" in fleet["detail"]
    assert "503" in fleet["detail"]
    assert f"2 replicas of main@{commits['main'][:8]} kept serving" in fleet["detail"]
    assert report["requests_by_phase"]["after"] > 0
    # The new version never served, so it never wrote: only the old version's probe ran.
    assert set(writes_by_version(report)) == {f"main@{commits['main'][:8]}"}


@pytest.mark.slow
def test_ctrl_c_stops_every_server_and_removes_every_directory(scratch: Path) -> None:
    process = subprocess.Popen(
        [str(CLI), "rehearse", "--to", "v2", "--replicas", "1", "--before", "1", "--after", "30"],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    # In the middle of the rollout: the old version's write probe runs beside the replicas.
    seen = wait_for_line(process.stderr, "write probe of v1", timeout=120)
    assert "write probe of v1" in seen, seen
    assert processes_using(scratch), "the rehearsal should be running by now"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr


def wait_for_line(stream: Any, text: str, timeout: float) -> str:
    """What `stream` printed up to a line holding `text` (or until `timeout`). Reads the
    pipe itself: a buffered readline could hold the line back while select() waits."""
    seen = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(stream.fileno(), selectors.EVENT_READ)
        while time.monotonic() < deadline and text.encode() not in seen:
            if selector.select(timeout=1):
                chunk = os.read(stream.fileno(), 65536)
                if not chunk:
                    break
                seen += chunk
    return seen.decode(errors="replace")


# ---------------------------------------------------------------- uploaded media


def test_every_replica_stores_uploads_in_one_directory_the_proxy_serves(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """All replicas of both versions get the same MEDIA_ROOT (uploads outlive a release) and
    the proxy serves it under media.urlPath; the caller's own MEDIA_* settings never leak in."""
    monkeypatch.setenv("MEDIA_BUCKET", "someone-elses-bucket")
    config = parse_stack_config(
        {"target": "local", "media": json.dumps({"urlPath": "/uploads/"})}, set()
    )
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), config, "nginx")
    with contextlib.ExitStack() as resources:
        rehearsal = Rehearsal(options, resources, tmp_path, progress=lambda _line: None)
        versions = [
            rehearse_module.Version(name, name, tmp_path / name, tmp_path / name / "static")
            for name in ("v1", "v2")
        ]
        for version in versions:
            env = rehearsal.environment(version)
            assert (env["MEDIA_ROOT"], env["MEDIA_URL"]) == (str(tmp_path / "media"), "/uploads/")
            assert "MEDIA_BUCKET" not in env
            assert env["DJANGO_HEALTH_CHECK_PATH"] == config.app.health_check_path
        # The proxy's site for one replica on some port: media served from that directory.
        replica = rehearse_module.Replica(
            versions[0], 18001, subprocess.Popen(["true"]), tmp_path / "log", resources
        )
        replica.process.wait()
        media = rehearsal.site([replica]).media
        assert media is not None
        assert (media.url_prefix, media.directory) == ("/uploads/", str(tmp_path / "media"))

        off = parse_stack_config({"target": "local", "media": '{"enabled": false}'}, set())
        rehearsal = Rehearsal(replace(options, config=off), resources, tmp_path, lambda _: None)
        assert not [key for key in rehearsal.environment(versions[0]) if key.startswith("MEDIA_")]
        assert rehearsal.site([replica]).media is None


def test_a_failure_is_pinned_on_the_version_whose_replica_answered(tmp_path: Path) -> None:
    """The proxy names the replica; nginx names each one it tried when it passed a request
    on (`A, B`): the last one answered."""
    options = RehearsalOptions(APP, *resolve_sides(APP, None, "v2"), local_config(), "nginx")
    with contextlib.ExitStack() as resources:
        rehearsal = Rehearsal(options, resources, tmp_path, progress=lambda _line: None)
        for name, port in (("v1", 18001), ("v2", 18002)):
            version = rehearse_module.Version(name, name, tmp_path / name, tmp_path / "static")
            process = subprocess.Popen(["true"])
            process.wait()
            rehearsal.replicas.append(
                rehearse_module.Replica(version, port, process, tmp_path / "log", resources)
            )
        answers = ("127.0.0.1:18001", "127.0.0.1:18001, 127.0.0.1:18002", "", "x")
        samples = [replace(page(1.0, "/", 500), version=answered) for answered in answers]
        served = {
            answered: sample.version
            for answered, sample in zip(
                answers, rehearsal.with_serving_versions(samples), strict=True
            )
        }
    assert served == {
        "127.0.0.1:18001": "v1",
        "127.0.0.1:18001, 127.0.0.1:18002": "v2",
        "": "",  # no replica answered (the proxy itself did)
        "x": "x",
    }


# ---------------------------------------------------------------- health checks, a database outage


def test_the_supervisor_runs_the_health_checks_the_stack_deploys() -> None:
    """The app container's check with the values its task definition gets, the target
    group's check with the load balancer's, and the service's grace period."""
    from pulumi_django.components.aws.load_balancer import health_check_timeout
    from pulumi_django.rendering import container_definitions as task

    config = local_config()
    health = fleet_health(config)
    assert health.path == config.app.health_check_path == "/healthz"
    assert health.checks[0] == CheckSettings(
        "container health check",
        task.HEALTH_INTERVAL_SECONDS,
        task.HEALTH_TIMEOUT_SECONDS - 1,  # the probe's own timeout, inside the check's
        task.HEALTH_RETRIES,
        task.APP_HEALTH_START_PERIOD_SECONDS,
    )
    interval = config.load_balancer.health_check_interval_seconds
    assert health.checks[1] == CheckSettings(
        "load balancer health check",
        interval,
        health_check_timeout(interval),
        config.load_balancer.unhealthy_threshold,
    )
    assert health.grace_period_seconds == (
        config.fleet.rolling_update.health_check_grace_period_seconds
    )


@dataclass(eq=False)
class FakeReplica:
    port: int
    started: float = 0.0
    settled: bool = True


FLEET_HEALTH = FleetHealth(
    "/healthz",
    (
        CheckSettings("container health check", 10, 4, 3, 30),
        CheckSettings("load balancer health check", 10, 5, 3),
    ),
    grace_period_seconds=60,
)


def supervised(
    replicas: list[FakeReplica], answer: Callable[[float, int], bool], until: float
) -> list[tuple[float, int, str]]:
    """Drives a supervisor with a clock of its own, one tick a second: `answer(now, port)` is
    whether a check passes; returns (when, port, reason) of each replacement it asks for."""
    now = [0.0]
    replaced: list[tuple[float, int, str]] = []
    supervisor = Supervisor(
        FLEET_HEALTH,
        in_service=lambda: replicas,
        replace=lambda replica, reason: replaced.append((now[0], replica.port, reason)),
        clock=lambda: now[0],
        check=lambda port, _path, _timeout: (answer(now[0], port), "503 down"),
    )
    while now[0] <= until:
        supervisor.tick()
        now[0] += 1.0
    return replaced


def test_a_dependency_on_the_health_path_gets_a_settled_fleet_replaced_in_a_30_s_outage() -> None:
    """Checks every 10 s, unhealthy after 3 failures in a row: a 30 s outage (from 5 to 35 s)
    fails 3 checks in a row of every replica whose health path needs the database, and ECS
    replaces them all; a health path that does not need it fails none."""
    fleet = [FakeReplica(8001), FakeReplica(8002)]
    down = lambda now, _port: not 5 <= now < 35  # noqa: E731
    replaced = supervised(fleet, down, until=60)
    assert [(port, reason) for _, port, reason in replaced] == [
        (8001, "container health check failed 3 times in a row (503 down)"),
        (8002, "container health check failed 3 times in a row (503 down)"),
    ]
    assert all(5 < when <= 35 for when, _, _ in replaced)
    assert supervised(fleet, lambda _now, _port: True, until=60) == []
    # 20 s is too short for 3 failures 10 s apart: it takes 30 s to be sure.
    assert supervised(fleet, lambda now, _port: not 11 <= now < 31, until=60) == []


def test_a_new_replica_gets_its_start_period_and_the_services_grace_period() -> None:
    """A replica that started at 0 and never answers: its failures only count after the start
    period (30 s), and ECS acts only after the grace period (60 s). One that passed once in its
    start period counts its failures from then on, but still within the grace period."""
    never = supervised([FakeReplica(8003, settled=False)], lambda _n, _p: False, until=100)
    assert [(when, port) for when, port, _ in never] == [(60.0, 8003)]
    once = supervised([FakeReplica(8004, settled=False)], lambda now, _p: now < 12, until=100)
    assert [(when, port) for when, port, _ in once] == [(60.0, 8004)]


def outage_report(
    samples: list[Sample], replacements: tuple[Replacement, ...] = (), ready: float | None = 40.5
) -> Any:
    """A rehearsal whose database was down from 10 to 40 (asked: 30 s; back at 40.0, every
    replica ready at `ready`), then released from 50 to 60."""
    outage = Outage(30, 10.0, 10.1, 40.0, ready)
    return build_report(
        release="v2",
        previous="v1",
        proxy="nginx",
        server="gunicorn",
        replicas=2,
        rate=50,
        steps=steps_ending("ok", "ok", "ok", "ok", "ok", "ok"),
        samples=samples,
        timeline=Timeline(0.0, 50.0, 60.0, 65.0, outage),
        health_checks=HealthChecks("/healthz", ("container health check: ...",), 60, replacements),
    )


def test_an_outage_counts_its_own_5xx_apart_and_tells_what_was_served_and_what_failed() -> None:
    samples = [
        page(5.0, "/", 200),
        page(9.9, "/", 500, latency_ms=150.0),  # in flight when the stop ended its session
        page(10.5, "/", 500),  # needs the database
        page(12.0, "/", 500),
        page(13.0, "/sightings/new/", 200),  # does not
        page(13.1, "/static/b.0123456789ab.css", 200),
        page(14.0, "/healthz", 200),
        page(20.0, "/sightings/new/", 500, method="POST"),
        page(40.3, "/", 500),  # reconnecting: still the outage's
        page(41.0, "/", 200),
        page(55.0, "/", 200),
    ]
    report = outage_report(samples)
    document = report_json(report)
    assert document["failures"] == dict.fromkeys(FAILURE_KINDS, 0)
    assert (document["result"], document["replicas_replaced"]) == ("ok", 0)
    assert document["database_outage"] == {
        "seconds": 30,
        "down_seconds": 29.9,
        "requests": 9,
        "failures": 5,
        "served": {"GET /sightings/new/": 1, "GET /static/*": 1, "GET /healthz": 1},
        "failed": {"GET /": 3, "POST /sightings/new/": 1},
        "reconnect_window_seconds": RECONNECT_WINDOW_SECONDS,
        "last_failure_after_seconds": 0.3,
        "answered_again_after_seconds": 1.0,
        "ready_after_seconds": 0.5,
        "warning": None,
    }
    assert document["requests_by_phase"] == {"before": 1, "outage": 9, "during": 1, "after": 0}
    text = render_report(report)
    assert "Database outage: PostgreSQL stopped 30 s (29.9 s until it accepted" in text
    assert "  failed while it was down: GET / 3, POST /sightings/new/ 1" in text
    assert "replicas replaced: 0" in text
    assert "#### Database outage" in render_markdown(document)

    # A 5xx answered before the stop, or to a request started after the reconnect window, or
    # a failure of another kind during the outage, counts.
    early = outage_report([*samples, page(9.8, "/", 500, latency_ms=150.0)])
    assert (early.failures["5xx"], early.result) == (1, "failed")
    late = outage_report([*samples, page(40.0 + RECONNECT_WINDOW_SECONDS + 0.1, "/", 500)])
    assert (late.failures["5xx"], late.result) == (1, "failed")
    cut = outage_report([*samples, Sample(20.0, "GET", "/", None, None, "connection")])
    assert (cut.failures["connection"], cut.result) == (1, "failed")


def test_an_outage_no_page_felt_is_warned_of_as_proving_nothing_about_pages() -> None:
    """An app whose crawled pages never touch the database rehearses an outage as OK: the
    report says that this proved nothing about the pages that do."""
    samples = [
        page(5.0, "/", 200),
        page(13.0, "/about/", 200),
        page(14.0, "/static/b.0123456789ab.css", 200),
        page(41.0, "/", 200),
    ]
    report = outage_report(samples)
    assert report.result == "ok"
    warning = report_json(report)["database_outage"]["warning"]
    assert warning is not None and warning.startswith(
        "no request failed while the database was down or reconnecting: no page the load "
        "viewed needed it, so the outage proved nothing about pages that do"
    )
    assert f"\n  warning: {warning}\n" in render_report(report)
    assert warning in render_markdown(report_json(report))


def test_a_replaced_replica_or_a_fleet_never_ready_again_fails_the_rehearsal() -> None:
    samples = [page(5.0, "/", 200), page(55.0, "/", 200)]
    replaced = Replacement(8001, "v1", "container health check failed 3 times in a row", 30.0)
    replaced.attempts, replaced.replaced_by, replaced.in_service = 2, 8004, 42.5
    report = outage_report(samples, (replaced,))
    document = report_json(report)
    assert (report.result, report.exit_code, document["replicas_replaced"]) == ("failed", 1, 1)
    assert document["health_checks"]["replacements"] == [
        {
            "port": 8001,
            "version": "v1",
            "reason": "container health check failed 3 times in a row",
            "attempts": 2,
            "replaced_by": 8004,
            "seconds": 12.5,
        }
    ]
    assert "had replicas replaced, as ECS would replace tasks (1)" in render_report(report)
    assert "**1 replicas replaced**" in render_markdown(document)
    never = outage_report(samples, ready=None)
    assert never.result == "failed"
    assert "NOT every replica was ready again" in render_report(never)
    assert decide_result(0, steps_ending("ok", "ok", "ok", "ok", "ok", "ok"), 1) == "failed"


def test_a_throwaway_postgres_stops_fast_and_starts_again_with_its_data() -> None:
    import psycopg

    with postgres() as database:
        url = database.create_database("outage")
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute("CREATE TABLE kept (id int)")
            connection.execute("INSERT INTO kept VALUES (7)")
            database.stop()  # the open session is ended, as a failover ends it
            with pytest.raises(psycopg.OperationalError):
                connection.execute("SELECT 1")
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(url, connect_timeout=2)
        database.start()
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT id FROM kept").fetchall() == [(7,)]


# The failover: PostgreSQL down for 30 s under load. Health checks run every 10 s and
# call a replica unhealthy after 3 failures in a row, so 30 s is also the shortest outage that
# is sure to show the difference (a 20 s one fails at most 2 checks in a row, see above).
OUTAGE = ("--database-outage", "30", "--replicas", "2", "--workers", "1")
OUTAGE_SHORT = ("--to", "v2", "--before", "2", "--after", "2")


@pytest.mark.slow(seconds=50)
def test_a_database_outage_replaces_no_replica_and_the_site_recovers_by_itself(
    scratch: Path,
) -> None:
    """The health checks ECS and the load balancer run ask the liveness path, which needs no
    database: no replica is replaced. Pages that need the database fail while it is down,
    those that do not are served, and once it is back nothing fails; the release after it
    goes out without a failure."""
    code, report, stderr = rehearse_cli(scratch, *OUTAGE, *OUTAGE_SHORT)
    assert_no_failures(report, stderr)
    assert (code, report["result"], report["replicas_replaced"]) == (0, "ok", 0)
    assert report["health_checks"]["path"] == "/healthz"
    assert report["health_checks"]["replacements"] == []
    outage = report["database_outage"]
    assert outage["down_seconds"] >= 30
    assert outage["failed"]["GET /"] > 0  # the list of sightings needs the database
    assert set(outage["failed"]) <= {"GET /", "POST /sightings/new/"}
    for served in ("GET /sightings/new/", "GET /static/*", "GET /healthz"):  # these do not
        assert outage["served"][served] > 0, outage
    # Back by itself: what failed is answered again, no 5xx once the database accepted
    # connections again (the app reconnects on its next request) or only within the reconnect
    # window, and every replica answers its readiness path again.
    window = outage["reconnect_window_seconds"]
    assert 0 <= outage["answered_again_after_seconds"] < window
    last = outage["last_failure_after_seconds"]
    assert last is None or last < window
    assert outage["ready_after_seconds"] is not None
    assert {step["status"] for step in report["steps"]} == {"ok"}
    assert report["requests_by_phase"]["after"] > 0
