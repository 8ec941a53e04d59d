"""Every sha the tables draw links to its commit's page here (`/commit/<sha>?repo=owner/name`), without a browser.

The Dash tables are read back as the static first screen draws them (`static_html`: a dcc.Link is an
`a[data-dash-link]`) with the standard library's HTML parser; the AG Grids' columns and rows are checked as
data (their links are drawn by `assets/dashAgGridFunctions.js`, checked in a browser by test_waterfall_page
and test_hostile).
"""
from html.parser import HTMLParser

import pandas as pd

from dashapp import tables
from dashapp.alerts_tables import commit_cell
from dashapp.components import static_html
from dashapp.failure_tables import evidence_links, groups_table, occurrences_table
from dashapp.tables import commit_href
from dashapp.triage_tables import HISTORY_COLUMNS, broken_main_table, failure_rows, flaky_grid

NOW = 1_700_000_000.0
SHA = "0123456789abcdef0123456789abcdef01234567"
RUN_URL = "https://github.com/o/app/actions/runs/9"


class Links(HTMLParser):
    """Every link: (href, its text, its attributes), in document order."""

    def __init__(self, markup: str):
        super().__init__(convert_charrefs=True)
        self.links: list[list] = []
        self._open = None
        self.feed(markup)

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._open = [dict(attrs).get("href"), "", dict(attrs)]
            self.links.append(self._open)

    def handle_data(self, data):
        if self._open is not None:
            self._open[1] += data

    def handle_endtag(self, tag):
        if tag == "a":
            self._open = None


def _links(component) -> list[tuple[str, str]]:
    return [(href, text) for href, text, _attrs in Links(static_html(component, ids=True)).links]


def test_commit_href_is_this_sites_page_and_refuses_what_is_not_a_sha():
    assert commit_href("o/app", SHA) == f"/commit/{SHA}?repo=o%2Fapp"
    assert commit_href("o/<b>r</b> &'", "abc") == "/commit/abc?repo=o%2F%3Cb%3Er%3C%2Fb%3E+%26%27"
    assert commit_href(None, "abc") == commit_href("", "abc") == "/commit/abc"
    for bad in ("", "a" * 65, "ab/c", "../x", "abc?x=1", "abc#x", "é", None, 7):
        assert commit_href("o/app", bad) is None


def test_short_sha_link_keeps_a_given_title_and_is_text_for_a_bad_sha():
    link = tables.short_sha_link("o/app", SHA, title="the run", className="x")
    assert (link.children, link.href, link.title, link.className) == (SHA[:7], commit_href("o/app", SHA), "the run",
                                                                      "x")
    text = tables.short_sha_link("o/app", "<b>x</b>")
    assert not hasattr(text, "href") and text.children == "<b>x</b>"[:7]


def test_grid_columns_draw_their_commits_as_links():
    """The build stream, a person's history and the flaky runs: `CommitLink` draws the sha as a link from the
    row's `sha` and `repo`.  A failure group's rows keep its newest runs' shas and `repo` (the markup table links
    them, tests/test_sorttable.py)."""
    for columns in (tables.STREAM_COLUMNS, HISTORY_COLUMNS):
        assert next(c for c in columns if c["headerName"] == "Commit")["cellRenderer"] == "CommitLink"
    flaky = flaky_grid(pd.DataFrame([{"id": 5, "repo": "o/app", "workflow": "CI", "branch": "main", "sha": SHA,
                                      "message": "fix: it\n\nbody", "author": "bob", "createtime": NOW,
                                      "url": RUN_URL, "history": ["failure", "success"]}]))
    assert next(c for c in flaky.columnDefs if c["headerName"] == "Commit")["cellRenderer"] == "CommitLink"
    row = flaky.rowData[0]
    assert (row["repo"], row["sha"], row["title"], row["commit"]) == ("o/app", SHA, "fix: it", f"{SHA[:7]} fix: it")
    groups = pd.DataFrame([{"repo": "o/app", "workflow": "CI", "job": "test", "step": "pytest", "step_number": 3,
                            "count": 4, "first_seen": NOW, "last_seen": NOW, "commits": 2, "authors": ["bob"],
                            "runs": [{"sha": SHA, "url": RUN_URL}, {"sha": "abc", "url": None}]}])
    row = failure_rows(groups)[0]
    assert (row["repo"], row["runs"], row["more"]) == ("o/app", [SHA, "abc"], 2)


def test_broken_main_links_its_first_bad_commit_here():
    frame = pd.DataFrame([{"repo": "o/app", "workflow": "CI", "branch": "main", "streak": 3, "sha": SHA,
                           "message": "break it", "after": "success", "commit_author": "bob", "red_for": 600.0,
                           "red_since": NOW, "run_url": RUN_URL}])
    assert _links(broken_main_table(frame)) == [(commit_href("o/app", SHA), SHA[:7]), (RUN_URL, "run ↗")]


def _occurrence(**extra) -> dict:
    return {"job": 1, "job_name": "test", "job_url": RUN_URL + "/job/1", "run": 1, "run_gitid": 9, "attempt": 1,
            "run_url": RUN_URL, "repo": "o/app", "workflow": "CI", "branch": "main", "sha": SHA, "title": "fix",
            "author": "bob", "createtime": NOW, "text": "boom", "excerpt": None, "verdict": None, **extra}


def test_failure_groups_link_their_newest_runs_commits_here():
    group = {"fingerprint": "0123456789abcdef", "text": "boom", "klass": "test", "verdict": None, "jobs": 3,
             "runs": 3, "first_seen": NOW, "last_seen": NOW, "branches": ["main"], "authors": ["bob"],
             "repos": ["o/app"], "workflows": ["CI"], "job_names": ["test"],
             "newest": [_occurrence(), _occurrence(sha=None, run_gitid=8, run_url=RUN_URL + "8"),
                        _occurrence(sha="<b>", run_url="javascript:alert(1)")]}
    links = [link for link in _links(groups_table([group], {}, now=NOW)) if not link[0].startswith("/failure/")]
    # A sha that cannot be linked keeps the run's link on GitHub, as before (none for a URL that is not http(s)).
    assert links == [(commit_href("o/app", SHA), SHA[:7]), (RUN_URL + "8", "#8")]


def test_occurrences_link_their_commits_here_and_evidence_splits_commit_from_run():
    verdict = {"kind": "FLAKY", "reason": "r", "evidence": [
        {"run": 2, "run_gitid": 12, "attempt": 2, "url": RUN_URL + "2", "branch": "main", "sha": "abcdef1",
         "conclusion": "success", "createtime": NOW},
        {"run": 3, "run_gitid": 13, "attempt": 1, "url": RUN_URL + "3", "branch": "main", "sha": None,
         "conclusion": "failure", "createtime": NOW}]}
    links = _links(occurrences_table([_occurrence(verdict=verdict)], now=NOW))
    assert (commit_href("o/app", SHA), SHA[:7]) in links
    # Evidence names no repository: its commit page finds the sha; the word links the run on GitHub.
    assert links[-3:] == [("/commit/abcdef1", "abcdef1"), (RUN_URL + "2", "passed"), (RUN_URL + "3", "#13 failed")]
    assert [text for _href, text in _links(evidence_links(verdict))] == ["abcdef1", "passed", "#13 failed"]


def test_alerts_commit_cells_link_the_commit_here():
    cell = commit_cell("acme/web", {"sha": "w2", "title": "Bump", "author": "bob"})
    assert _links(cell) == [(commit_href("acme/web", "w2"), "w2")]
    assert _links(commit_cell(None, {"sha": "w2"})) == [("/commit/w2", "w2")]  # the page finds it anywhere
    assert _links(commit_cell("acme/web", {"sha": "<b>x</b>", "title": "t"})) == []
    assert static_html(commit_cell("acme/web", None)) == '<span class="text-muted">—</span>'
