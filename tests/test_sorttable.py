"""Sortable markup tables (`dashapp.sorttable`) and the two Triage tables drawn with them, without a browser
(tests/test_triage_page.py sorts them in Chromium)."""
from html.parser import HTMLParser

import pandas as pd

from dashapp import sorttable as st
from dashapp.tables import commit_href
from dashapp.triage_tables import analysis_table, failure_table

NOW = 1_700_000_000.0
SHA = "0123456789abcdef0123456789abcdef01234567"


class Table(HTMLParser):
    """A table's header cells and body rows, each cell as (its attributes, its text)."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.head, self.rows, self.table, self._cell, self._in_head = [], [], {}, None, False
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs
        elif tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self._in_head = False
        elif tag == "tr" and not self._in_head:
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = [attrs, ""]
            (self.head if tag == "th" else self.rows[-1]).append(self._cell)

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data


def test_table_escapes_text_and_marks_sorting():
    headers = [st.Header("Name"), st.Header("Count", numeric=True, title="how many"),
               st.Header("Links", sortable=False)]
    rows = [[st.cell("<script>alert(1)</script>"), st.cell("1,200", sort=1200, numeric=True),
             st.cell(markup=st.link("abc1234", "/commit/abc1234"))],
            [st.cell(None), st.cell("—", sort="", numeric=True), st.cell(markup="")]]
    box = st.table("t1", headers, rows, sort=(1, st.DESCENDING), max_height="100px")
    assert box.className == "sort-table-box" and box.style == {"maxHeight": "100px"}
    assert "<script>" not in box.html and "&lt;script&gt;" in box.html
    parsed = Table(box.html)
    assert parsed.table["id"] == "t1" and "sortable" in parsed.table["class"].split()
    (name, count, links) = parsed.head
    assert name[0].get("aria-sort") is None and name[0]["tabindex"] == "0"
    assert (count[0]["aria-sort"], count[0]["title"], count[0]["class"]) == ("descending", "how many", "text-end")
    assert links[0]["class"] == "no-sort" and "tabindex" not in links[0]
    first, second = parsed.rows
    assert first[0][1] == "<script>alert(1)</script>"  # drawn as text
    assert (first[1][0]["data-sort"], first[1][0]["class"], first[1][1]) == ("1200", "text-end", "1,200")
    assert second[0][1] == "—" and second[1][0]["data-sort"] == ""  # no value: sorted last (`n-last`)
    assert 'href="/commit/abc1234" data-dash-link="1"' in box.html


def _groups(*rows):
    base = {"repo": "o/app", "workflow": "CI", "job": "test", "step": "pytest", "step_number": 3, "count": 1,
            "first_seen": NOW - 7200, "last_seen": NOW - 3600, "commits": 1, "authors": ["bob"],
            "runs": [{"sha": SHA, "url": None}]}
    return pd.DataFrame([{**base, **r} for r in rows])


def test_failure_table_newest_first_with_commit_links_and_times_to_sort_by():
    groups = _groups({"job": "old", "last_seen": NOW - 86400, "count": 12},
                     {"job": "new", "last_seen": NOW - 60, "step": None, "step_number": None,
                      "runs": [{"sha": SHA}, {"sha": "<b>"}], "count": 5, "authors": ["a" * 300]})
    parsed = Table(failure_table(groups, now=NOW, show_repo=True).html)
    assert [h[1] for h in parsed.head][4:6] == ["First seen", "Last seen"]
    assert parsed.head[5][0]["aria-sort"] == "descending"
    new, old = parsed.rows
    assert (new[1][1], old[1][1]) == ("new", "old")
    assert new[0][1] == "o/app · CI" and new[2][1] == "—" and old[2][1] == "#3 pytest"
    assert (new[5][1], new[5][0]["data-sort"], new[5][0]["title"]) == ("1m ago", f"{NOW - 60:.0f}",
                                                                       "2023-11-14 22:12 UTC")
    assert new[3][0]["data-sort"] == "5" and old[3][1] == "12"
    # Authors stay on one line, whole in the hover; the runs' commits link to their pages, "<b>" as text.
    assert new[7][0]["class"] == "st-clip" and new[7][0]["title"] == "a" * 300
    markup = failure_table(groups, now=NOW).html
    assert markup.count(f'href="{commit_href("o/app", SHA)}"') == 2 and "&lt;b&gt;" in markup
    assert " … +3 more" in Table(markup).rows[0][8][1]  # five failures, two runs listed


def test_analysis_table_most_failures_first_with_shaded_rates():
    frame = pd.DataFrame([
        {"repo": "o/app", "workflow": "CI", "branch": "main", "runs": 40, "failed": 2, "failure_rate": 0.05,
         "flake_rate": None, "streak": 0, "last_run": NOW - 60},
        {"repo": "o/app", "workflow": "Lint", "branch": "dev", "runs": 10, "failed": 8, "failure_rate": 0.8,
         "flake_rate": 0.1, "streak": 3, "last_run": None},
    ])
    parsed = Table(analysis_table(frame, now=NOW).html)
    assert parsed.head[3][1] == "Failures" and parsed.head[3][0]["aria-sort"] == "descending"
    lint, ci = parsed.rows
    assert (lint[0][1], ci[0][1]) == ("Lint", "CI")
    assert (lint[4][1], lint[4][0]["data-sort"]) == ("80.0 %", "0.800000")
    assert "fw-semibold" in lint[4][0]["class"] and "rgba(180,35,24, 0.56)" in lint[4][0]["style"]
    assert "style" not in ci[5][0] and ci[5][1] == "—" and ci[5][0]["data-sort"] == ""
    assert (lint[6][1], lint[6][0]["data-sort"], ci[6][1]) == ("3 red", "3", "—")
    assert lint[7][1] == "—" and lint[7][0]["data-sort"] == ""
