"""Failure lines in the Waterfall's hovers and the Developer view's "Your failures", without a browser.

Pure functions of cell dicts and `store.queries.failures` dicts (`run_failures`, `person_failures`,
`capture_status`); the markup is read back with the standard library's HTML parser, as a browser
would read it (entities decoded), so an escaping mistake shows as an extra element or attribute.
"""
from html.parser import HTMLParser

import pytest

from dashapp import tables
from dashapp.components import static_html

NOW = 1_700_000_000.0
HOSTILE = "<img src=x onerror=alert(1)> \"quoted\" 'single' & \u202eevil\u202c\x00\x1b[31m\nsecond line"


class Markup(HTMLParser):
    """Every start tag with its attributes (values decoded), in document order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _cell(**extra) -> dict:
    return {"commitid": 1, "workflow": "CI", "status": "completed", "conclusion": "failure",
            "url": "https://github.com/o/app/actions/runs/9", "attempts": 1, "earlier_failed": False,
            "queuetime": 12.0, "duration": 492.0, "glyph": "X", "gitid": 9, **extra}


def _job(name, text=None, kind=None, *, ordinal=0, conclusion="failure", more_lines=()):
    lines = [] if text is None else [{"ordinal": ordinal, "rule": "pytest", "klass": "test", "text": text,
                                      "fingerprint": "0123456789abcdef", "source": "log", "path": None,
                                      "line": 10, "fallback": False}, *more_lines]
    return {"job": hash(name) & 0xFFFF, "name": name, "url": "https://github.com/o/app/actions/runs/9/job/1",
            "conclusion": conclusion, "lines": lines,
            "verdict": {"kind": kind, "reason": "r", "evidence": []} if kind else None,
            "capture": "done" if lines else "pending"}


# --- the Waterfall hover ------------------------------------------------------------------------------------

def test_hover_names_each_failed_job_with_its_primary_line_and_verdict():
    jobs = [_job("test (ubuntu)", "FAILED tests/test_api.py::test_export - AssertionError", "NEW"),
            _job("lint", "src/app.py:3:1: F401 'os' imported but unused", "BROKEN TRUNK")]
    title = tables.cell_title("CI", _cell(), jobs)
    assert title.split("\n") == [
        "CI: failure · 1 attempt · duration 8m 12s · queued 12s",
        "test (ubuntu) — FAILED tests/test_api.py::test_export - AssertionError (new)",
        "lint — src/app.py:3:1: F401 'os' imported but unused (broken trunk)",
    ]


def test_hover_uses_the_primary_line_not_the_first_listed():
    secondary = {"ordinal": 1, "rule": "exit-code", "klass": "unknown", "text": "Process completed with exit code 1",
                 "fingerprint": "f" * 16, "source": "log", "path": None, "line": 99, "fallback": True}
    job = _job("build", "error[E0308]: mismatched types", "KNOWN")
    job["lines"] = [secondary, job["lines"][0]]
    assert tables.failure_hover_lines([job]) == ["build — error[E0308]: mismatched types (known)"]


def test_hover_without_lines_names_the_job_only_and_no_jobs_changes_nothing():
    plain = tables.cell_title("CI", _cell())
    assert tables.cell_title("CI", _cell(), []) == plain == tables.cell_title("CI", _cell(), None)
    assert "\n" not in plain
    title = tables.cell_title("CI", _cell(), [_job("test (macos)", conclusion="timed_out")])
    assert title.split("\n")[1:] == ["test (macos) — timed_out"]


def test_hover_says_lines_need_a_token_only_when_one_is_missing_and_there_is_none():
    missing = [_job("test", "E boom", "NEW"), _job("lint")]
    assert tables.cell_title("CI", _cell(), missing, no_token=True).split("\n")[1:] == [
        "test — E boom (new)", "lint — failure", tables.TOKEN_NOTICE]
    assert tables.TOKEN_NOTICE not in tables.cell_title("CI", _cell(), missing)  # a token: lines are on their way
    assert tables.TOKEN_NOTICE not in tables.cell_title("CI", _cell(), missing[:1], no_token=True)  # none missing
    assert tables.TOKEN_NOTICE not in tables.cell_title("CI", _cell(), [], no_token=True)  # no failed job


def test_hover_keeps_three_jobs_lines_first_and_counts_the_rest():
    jobs = [_job("a"), _job("b", "line b", "FLAKY"), _job("c"), _job("d", "line d", "INFRA"), _job("e")]
    assert tables.failure_hover_lines(jobs) == ["b — line b (flaky)", "d — line d (infra)", "a — failure",
                                                "+2 more failed jobs"]
    assert tables.failure_hover_lines(jobs[:4])[-1] == "+1 more failed job"


def test_hover_cuts_long_lines_and_names_and_makes_one_line_of_each():
    long_text = "AssertionError: " + "x" * 1000
    line = tables.failure_hover_lines([_job("n" * 500, long_text + "\n\tnext", "NEW")])[0]
    name, _sep, rest = line.partition(" — ")
    assert len(name) == tables.HOVER_NAME and name.endswith("…")
    assert rest.endswith("… (new)") and len(rest) == tables.HOVER_LINE + len(" (new)")
    assert "\n" not in line and "\t" not in line


def test_hover_unknown_verdict_kind_is_left_out():
    assert tables.failure_hover_lines([_job("j", "boom", "SOMETHING")]) == ["j — boom"]


def test_hostile_failure_line_stays_one_escaped_attribute():
    jobs = {9: [_job(HOSTILE, HOSTILE, "NEW")]}
    grid = {"workflows": ["CI"], "commits": [{"commitid": 1, "sha": "abcdef123", "message": "m", "author": "a",
                                                 "time": NOW, "state": "red"}],
            "cells": [_cell()]}
    markup = tables.commit_grid_table(grid, "o/app", now=NOW, failures=jobs).html
    assert "\n" not in markup and "<img" not in markup and "\x00" not in markup and "\u202e" not in markup
    tags = Markup(markup).tags
    assert [t for t, _a in tags if t in ("img", "script")] == []
    link = next(attrs for tag, attrs in tags if tag == "a" and "actions/runs/9" in attrs.get("href", ""))
    assert set(link) == {"href", "target", "rel", "class", "title", "aria-label"}
    title = link["title"]
    assert title == link["aria-label"]
    first, job_line = title.split("\n")  # the job's line: one line, whatever the log's text held
    assert first.startswith("CI: failure")
    assert job_line.startswith("<img src=x onerror=alert(1)> \"quoted\" 'single' & evil")
    assert job_line.endswith("(new)") and "\x00" not in job_line and "\x1b" not in job_line


def test_only_failed_cells_get_lines():
    grid = {"workflows": ["CI", "Lint"],
            "commits": [{"commitid": 1, "sha": "abc", "message": "m", "author": "a", "time": NOW, "state": "red"}],
            "cells": [_cell(), _cell(workflow="Lint", conclusion="success", glyph="O", gitid=10)]}
    jobs = {9: [_job("test", "E boom", "NEW")], 10: [_job("other", "must not show", "NEW")]}
    titles = [a["title"] for t, a in Markup(tables.commit_grid_table(grid, "o/app", now=NOW, failures=jobs).html).tags
              if t == "a" and "wf-glyph" in a.get("class", "")]
    assert any("test — E boom (new)" in t for t in titles)
    assert not any("must not show" in t for t in titles)
    assert tables.failed_run_ids(grid["cells"]) == [9]
    assert tables.failed_run_ids([_cell(glyph="T", gitid=3), _cell(glyph="X", gitid=None), _cell(gitid=3)]) == [3]


def test_cells_without_gitid_still_draw():
    cell = {k: v for k, v in _cell().items() if k != "gitid"}
    grid = {"workflows": ["CI"], "commits": [{"commitid": 1, "sha": "abc", "message": "m", "author": "a",
                                                 "time": NOW, "state": "red"}], "cells": [cell]}
    assert tables.failed_run_ids([cell]) == []
    assert "CI: failure" in tables.commit_grid_table(grid, "o/app", now=NOW, failures={9: [_job("x", "y")]}).html


# --- the Developer view -------------------------------------------------------------------------------------

def _evidence(branch="main", url="https://github.com/o/app/actions/runs/5", conclusion="failure"):
    return {"run": 5, "run_gitid": 5, "attempt": 1, "url": url, "branch": branch, "sha": "f" * 40,
            "conclusion": conclusion, "createtime": NOW - 600}


def _failure(whose, text="E boom", evidence=(), **extra):
    kind = {"yours": "NEW", "trunk": "BROKEN TRUNK", "flaky": "FLAKY", "infra": "INFRA", "known": "KNOWN"}.get(whose)
    return {"job": 1, "job_name": "test (ubuntu)", "job_url": "https://github.com/o/app/actions/runs/9/job/1",
            "run": 1, "run_gitid": 9, "attempt": 1, "run_url": "https://github.com/o/app/actions/runs/9",
            "repo": "o/app", "workflow": "CI", "branch": "feature", "sha": "a" * 40, "title": "t", "author": "mona",
            "createtime": NOW - 3600, "conclusion": "failure", "text": text if whose != "unknown" else None,
            "rule": "pytest", "klass": "test", "fingerprint": "0" * 16, "excerpt": None,
            "verdict": {"kind": kind, "reason": f"because {whose}", "evidence": list(evidence)} if kind else None,
            "whose": whose, **extra}


def test_summary_counts_whose_each_failure_is():
    rows = [_failure("yours"), _failure("yours"), _failure("yours"), _failure("trunk", evidence=[_evidence()]),
            _failure("flaky", evidence=[_evidence("feature", conclusion="success")])]
    assert tables.failures_summary(rows) == "3 of your 5 failures are yours to fix; 1 is broken on main; 1 is flaky."
    rows = [_failure("yours"), _failure("infra"), _failure("known"), _failure("known"), _failure("unknown"),
            _failure("trunk", evidence=[_evidence("main")]), _failure("trunk", evidence=[_evidence("master")])]
    assert tables.failures_summary(rows) == (
        "1 of your 7 failures is yours to fix; 2 are broken on the default branch; 1 is infrastructure; "
        "2 were seen before; 1 has no failure line yet.")
    assert tables.failures_summary([_failure("flaky")]) == "0 of your 1 failure are yours to fix; 1 is flaky."
    assert tables.failures_summary([]) == "No failed jobs in this window."
    assert tables.failures_summary([_failure("unknown")] * 3) == \
        "None of your 3 failures has a failure line yet: whose they are is not known."
    assert tables.failures_summary([_failure("unknown")]) == \
        "Your failure has no failure line yet: whose it is is not known."


def test_failures_table_shows_badges_lines_and_evidence_links():
    rows = [_failure("yours", "FAILED tests/test_api.py::test_export - AssertionError"),
            _failure("trunk", evidence=[_evidence()]),
            _failure("flaky", evidence=[_evidence("feature", url="https://github.com/o/app/actions/runs/7",
                                                  conclusion="success")]),
            _failure("infra", "The runner has received a shutdown signal."),
            _failure("known", evidence=[_evidence("other")]),
            _failure("unknown")]
    markup = static_html(tables.person_failures_table(rows, now=NOW, token=True), ids=True)
    tags = Markup(markup).tags
    whose = [a["data-whose"] for t, a in tags if t == "tr" and "data-whose" in a]
    assert whose == ["yours", "trunk", "flaky", "infra", "known", "unknown"]
    badges = [a["class"].split()[-1] for t, a in tags if t == "span" and "whose-badge" in a.get("class", "")]
    assert badges == ["whose-yours", "whose-trunk", "whose-flaky", "whose-infra", "whose-known", "whose-unknown"]
    assert ">yours<" in markup and ">trunk&#x27;s<" in markup and ">no line yet<" in markup
    evidence = [a["href"] for t, a in tags if t == "a" and "whose-evidence" in a.get("class", "")]
    assert evidence == ["https://github.com/o/app/actions/runs/5", "https://github.com/o/app/actions/runs/7",
                        "https://github.com/o/app/actions/runs/5"]
    assert ">trunk run ↗<" in markup and ">passing run ↗<" in markup
    assert "FAILED tests/test_api.py::test_export - AssertionError" in markup
    assert "not captured yet" in markup and "1h ago" in markup
    assert "3 of your 6" not in markup and "1 of your 6 failures is yours to fix" in markup


def test_failures_table_escapes_hostile_log_text_and_refuses_bad_links():
    rows = [_failure("trunk", HOSTILE, evidence=[_evidence(HOSTILE, url="javascript:alert(1)")],
                     job_name=HOSTILE, workflow=HOSTILE, branch=HOSTILE, repo=HOSTILE, run_url="data:text/html,x",
                     job_url="java\tscript:alert(1)")]
    markup = static_html(tables.person_failures_table(rows, now=NOW, token=True), ids=True)
    tags = Markup(markup).tags
    assert [t for t, _a in tags if t in ("img", "script")] == []
    assert not any(name.startswith("on") for _t, a in tags for name in a)
    assert not [a for t, a in tags if t == "a"]  # no URL was http(s): no link at all
    assert "\x00" not in markup and "\u202e" not in markup
    line = next(a["title"] for t, a in tags if t == "code")
    assert line.startswith("<img src=x onerror=alert(1)>") and "\n" not in line


def test_failures_table_lists_the_newest_and_counts_the_rest():
    rows = [_failure("yours") for _ in range(7)]
    markup = static_html(tables.person_failures_table(rows, now=NOW, token=True, shown=5), ids=True)
    assert sum(1 for t, a in Markup(markup).tags if t == "tr" and "data-whose" in a) == 5
    assert "… and 2 older failed jobs, not listed." in markup
    assert "7 of your 7 failures are yours to fix" in markup
    capped = static_html(tables.person_failures_table(rows, now=NOW, token=True, shown=5, capped=True), ids=True)
    assert "7 of your newest 7 failures are yours to fix" in capped


@pytest.mark.parametrize("status, rows, expected", [
    ({"token": False, "pending": 4}, [], tables.TOKEN_NOTICE),
    ({"token": False, "pending": 4}, [_failure("unknown")], tables.TOKEN_NOTICE),
    ({"token": False, "pending": 0}, [_failure("yours")], None),  # lines captured earlier (demo, backfill)
    ({"token": True, "pending": 0}, [_failure("yours")], None),
    ({"token": True, "pending": 3, "paused_until": None}, [_failure("unknown")],
     "Fetching failure lines: 3 failed jobs waiting."),
    ({"token": True, "pending": 3, "paused_until": NOW, "last_error": "rate limited by GitHub until 12:00:00 UTC"},
     [_failure("unknown")], "Fetching failure lines is paused: rate limited by GitHub until 12:00:00 UTC."),
])
def test_capture_notice_says_what_missing_lines_wait_for(status, rows, expected):
    notice = tables.capture_notice(status, rows)
    assert (notice.children if notice is not None else None) == expected


def test_no_token_rows_say_lines_need_a_token():
    markup = static_html(tables.person_failures_table([_failure("unknown")], now=NOW, token=False), ids=True)
    assert "needs a GitHub token" in markup


def test_failure_lines_link_to_their_group_page_when_given_one():
    rows = [_failure("yours", fingerprint="0123456789abcdef"), _failure("known", fingerprint="bad"),
            _failure("unknown")]
    pages = {"0123456789abcdef": "/failure/0123456789abcdef?window=all"}
    markup = static_html(tables.person_failures_table(rows, now=NOW, token=True, line_href=pages.get), ids=True)
    links = [a["href"] for t, a in Markup(markup).tags if t == "a" and "dev-failure-group" in a.get("class", "")]
    assert links == ["/failure/0123456789abcdef?window=all"]  # none for an unknown page, none without a line
