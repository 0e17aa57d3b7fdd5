"""The rehearsal's report as a pull-request comment: `render_markdown` of the `--json` document."""

from __future__ import annotations

import json
import re

import pytest
from rehearsal_fakes import page, rehearsal_report

from pulumi_django.cli.rehearsal.load import Sample
from pulumi_django.cli.rehearsal.report import (
    RehearsalReport,
    StepReport,
    StepStatus,
    WriteSummary,
    render_markdown,
    report_json,
)
from pulumi_django.release import RELEASE_STEPS

# A cell boundary: a pipe that no backslash escapes (GitHub's table rule).
CELL_BOUNDARY = re.compile(r"(?<!\\)\|")
DELIMITER_ROW = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


def steps(*statuses: StepStatus, detail: str = "") -> list[StepReport]:
    return [
        StepReport(step.key, step.title, status, 1.5, detail)
        for step, status in zip(RELEASE_STEPS, statuses, strict=False)
    ]


ALL_OK: tuple[StepStatus, ...] = tuple("ok" for _ in RELEASE_STEPS)


def report(samples: list[Sample], release_steps: list[StepReport]) -> RehearsalReport:
    return rehearsal_report(
        samples, release_steps, release="HEAD", previous="origin/main", replicas=3
    )


def table(markdown: str, header: str) -> list[list[str]]:
    """The rows of the table that starts with `header`, split as GitHub splits them, each cell
    unescaped; asserts it is a table: a delimiter row, and as many cells in every row."""
    lines = markdown.splitlines()
    start = lines.index(header)
    block = lines[start:][: next_blank(lines[start:])]
    assert DELIMITER_ROW.match(block[1]), block[1]
    rows = [cells(line) for line in block]
    assert {len(row) for row in rows} == {len(rows[0])}, block
    return [[unescape(cell) for cell in row] for row in rows[2:]]


def next_blank(lines: list[str]) -> int:
    return lines.index("") if "" in lines else len(lines)


def cells(line: str) -> list[str]:
    assert line.startswith("|") and line.endswith("|") and "\n" not in line, line
    return [cell.strip() for cell in CELL_BOUNDARY.split(line[1:-1])]


def unescape(text: str) -> str:
    return re.sub(r"\\([\\`*_{}\[\]<>|])", r"\1", text)


def test_a_clean_rehearsal_is_a_comment_with_its_steps_requests_and_latency() -> None:
    samples = [page(t / 10, "/", 200) for t in range(50)]
    markdown = render_markdown(report_json(report(samples, steps(*ALL_OK, detail="done"))))
    lines = markdown.splitlines()
    assert lines[0] == "<!-- pulumi-django-plan:rehearsal -->"
    assert lines[1] == "### pulumi-django rehearse: OK, `origin/main` -> `HEAD`"
    assert "**No request failed while the old and the new version ran side by side.**" in lines
    assert "3 gunicorn replicas behind nginx, 50 requests/s; rollout 2.0 s." in lines
    assert table(markdown, "| step | status | seconds | detail |") == [
        [step.title, "ok", "1.5", "done"] for step in RELEASE_STEPS
    ]
    assert "#### Requests: 50, failed: 0" in lines
    assert table(markdown, "| failure | requests |") == [
        ["5xx", "0"],
        ["static 404", "0"],
        ["connection error", "0"],
        ["other", "0"],
    ]
    assert "| requests | failure | example | when |" not in lines
    assert "not counted" not in markdown
    assert table(markdown, "| | requests | p50 | p99 |") == [
        ["before the release", "20", "5.0", "5.0"],
        ["during the release", "20", "5.0", "5.0"],
        ["after the release", "10", "5.0", "5.0"],
    ]


def test_a_failed_rehearsal_shows_each_kind_and_examples_that_cannot_break_the_table() -> None:
    samples = [
        page(0.5, "/", 404),  # missing before the release: listed, not counted
        page(1.0, "/", 200),
        page(2.5, "/shop/", 500, detail="Server | Error `boom`\n<module>", version="HEAD"),
        page(2.6, "/shop/", 500, detail="Server | Error `boom`\n<module>", version="HEAD"),
        page(2.7, "/static/site.abc123.css", 404, version="origin/main"),
    ]
    writes = [
        Sample(3.0, "create", "journal.Entry", None, 2.0, "orm", 'null value in "mood_*"', "v1"),
        Sample(3.1, "read", "journal.Notebook", None, 1.0, None, "", "v2"),
    ]
    summary = WriteSummary(
        {"v1": 1, "v2": 1},
        ("journal.Entry", "journal.Notebook"),
        {"journal.Photo": "create raised ValueError: no | image `x`"},
    )
    rehearsal = rehearsal_report(
        samples,
        steps(*ALL_OK, detail="migrate:\n2 | applied"),
        release="HEAD",
        previous="origin/main",
        writes=writes,
        write_summary=summary,
        pages=("/", "/shop/"),
    )
    markdown = render_markdown(report_json(rehearsal))
    assert markdown.splitlines()[1].startswith("### pulumi-django rehearse: FAILED, ")
    assert "**Users saw errors during this release.**" in markdown
    assert {row[3] for row in table(markdown, "| step | status | seconds | detail |")} == {
        "migrate: 2 | applied"
    }
    # The write probe's operations are not requests: their failures have a section of their own.
    assert "#### Requests: 5, failed: 3" in markdown
    assert dict(table(markdown, "| failure | requests |")) == {
        "5xx": "2",
        "static 404": "1",
        "connection error": "0",
        "other": "0",
    }
    during = "during the release"
    assert table(markdown, "| requests | failure | example | when |") == [
        ["2", "5xx", "GET /shop/ -> 500 (from HEAD): Server | Error `boom` <module>", during],
        ["1", "static 404", "GET /static/site.abc123.css -> 404 (from origin/main)", during],
        ["1", "orm", 'create journal.Entry (from v1): null value in "mood_*"', during],
    ]
    assert "\nPages that 404 before the release (not counted): `/`\n" in markdown
    assert "\nPages viewed (2): `/`, `/shop/`\n" in markdown
    assert (
        "#### Model writes\n\n2 create/update/read/delete operations (1 by `v1`, 1 by `v2`) on "
        "`journal.Entry`, `journal.Notebook`; failed: 1.\n"
        "- not probed: `journal.Photo`: create raised ValueError: no \\| image \\`x\\`\n"
    ) in markdown


def test_a_refused_rehearsal_says_nothing_changed_and_where_its_failures_came_from() -> None:
    samples = [page(0.5, "/", 200), page(1.0, "/shop/", 500), page(2.1, "/", 200)]
    document = report_json(report(samples, steps("ok", "ok", "refused")))
    markdown = render_markdown(document)
    assert markdown.splitlines()[1] == (
        "### pulumi-django rehearse: REFUSED, `origin/main` -> `HEAD`"
    )
    assert (
        "**The migration check refused the release before anything changed; the old version "
        "kept serving; the 1 failure below came from it alone.**"
    ) in markdown
    assert [row[:2] for row in table(markdown, "| step | status | seconds | detail |")] == [
        [RELEASE_STEPS[0].title, "ok"],
        [RELEASE_STEPS[1].title, "ok"],
        [RELEASE_STEPS[2].title, "refused"],
    ]
    assert table(markdown, "| requests | failure | example | when |") == [
        ["1", "5xx", "GET /shop/ -> 500", "before the release"]
    ]


@pytest.mark.parametrize(
    ("statuses", "heading"),
    [
        (ALL_OK, "OK"),
        (("ok", "ok", "ok", "ok", "halted"), "HALTED"),
        (("ok", "ok", "refused"), "REFUSED"),
    ],
)
def test_the_heading_names_the_result(statuses: tuple[StepStatus, ...], heading: str) -> None:
    markdown = render_markdown(report_json(report([page(1.0, "/", 200)], steps(*statuses))))
    assert markdown.splitlines()[1].startswith(f"### pulumi-django rehearse: {heading}, ")


def test_the_comment_is_the_same_from_the_json_a_file_holds() -> None:
    samples = [page(0.5, "/", 200), page(2.5, "/x/", 500, detail="e"), page(4.5, "/", 200)]
    document = report_json(report(samples, steps(*ALL_OK)))
    assert render_markdown(json.loads(json.dumps(document))) == render_markdown(document)


def test_a_phase_without_answers_has_no_percentiles() -> None:
    samples = [page(1.0, "/", 200)]  # nothing during or after the release
    markdown = render_markdown(report_json(report(samples, steps(*ALL_OK))))
    assert table(markdown, "| | requests | p50 | p99 |")[1:] == [
        ["during the release", "0", "-", "-"],
        ["after the release", "0", "-", "-"],
    ]
