"""What bad data can draw: hostile text and URLs in every field of signed deliveries stay text everywhere.

Names, messages, titles, logins, branches, job and step names, labels and URLs from a hostile alphabet
(markup, quotes, NUL and other control characters, bidi controls, formula prefixes full-width included,
`javascript:`/`data:` URLs, huge lengths) go through `POST /webhook` into the store, then out through the
API, the CSV export, live messages and every page in headless Chromium: no element, attribute or link
that the data did not legitimately make appears (a link to a commit's or pull request's page here names one
the store holds), and every CSV row is whole and defused.
"""
import csv
import io
import itertools
import json
import socket
import sqlite3
from urllib.parse import urlencode

import pytest
import requests
from dash.testing import wait
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from dashapp import create_app
from dashapp.api.csvexport import cells, generate
from dashapp.commit_tables import github_pull_url
from dashapp.config import Config
from dashapp.tables import commit_href, commit_url, pull_href
from domain.text import FORMULA_START, clean, clip, csv_text, link_url
from ingest.parse import MAX_TEXT
from live import messages
from store.queries import builds
from store.queries.builds import FIELDS
from store.queries.filters import Filters
from store.schema import jobs, run_pulls, workflowruns
from tests import builders as b
from tests.helpers import SECRET, LiveServer, post
from tests.hostile import (DAY, HOSTILE_TEXT, HOSTILE_URL, REMOVED, SHORT_TEXT, START, URL_FIELDS, deliveries, sha,
                           values)

pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")  # huge reprs
NUMBERS = itertools.count(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stored(text: str) -> str:
    """What the store keeps of a delivered text."""
    return clean(text[:MAX_TEXT])


def strings(value):
    """Every string in a JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def check_csv(text: str) -> list[dict]:
    """The export parses back: every row as wide as the header, no cell a live formula, no control character."""
    assert not set(text) & REMOVED
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == FIELDS
    for row in rows[1:]:
        assert len(row) == len(FIELDS), row
        for cell in row:
            assert not cell or cell[0] not in FORMULA_START, (cell[:40], row[0])
    return [dict(zip(FIELDS, row)) for row in rows[1:]]


# --- API, export and live messages: many examples, no browser ------------------------------------------------

@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "hostile.db"
    app = create_app(Config.from_env({}, database_path=str(path), webhook_secret=SECRET,
                                     api_rate_limit="100000/minute"))
    with LiveServer(app) as live:
        yield live
    app.server.extensions["buildmon"].close()


@given(v=values(), repo_name=SHORT_TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_hostile_deliveries_come_out_of_the_api_and_export_as_text(api_server, v, repo_name):
    n = next(NUMBERS)
    repo = f"{repo_name}/{n}"
    base, start = 7_000_000 + n * 10, START + n * 3 * DAY  # each example its own days: exported alone
    window = {"since": start, "until": start + 3 * DAY}
    for event, body in deliveries(repo, v, base, start):
        answer = post(api_server.url, event, body)
        assert answer.status_code == 202, answer.text
    api_server.services.settle()

    # /api/runs/<id>: the run, its attempts, jobs, steps and labels, as cleaned text.
    for run_id in (base + 1, base + 2):
        detail = requests.get(f"{api_server.url}/api/runs/{run_id}", timeout=30)
        assert detail.status_code == 200, detail.text
        body = detail.json()
        assert not {c for s in strings(body) for c in s} & REMOVED
        assert body["repo"] == stored(repo)
        assert (body["message"] or "") == stored(v["message"])
        assert (body["title"] or "") == stored(v["title"])
        assert (body["author"] or "") == stored(v["login"])
        assert (body["commit_author"] or "") == stored(v["author"])
        assert (body["url"] or "") == stored(v["run_url"])
        assert body["branch"] == (stored(v["branch"]) or "(detached)")
        assert body["workflow"] == (stored(v["workflow"]) or "test")  # else the workflow file's name
    job = body["attempts"][0]["jobs"][0]
    assert job["name"] == stored(v["job"]) and (job["runner_name"] or "") == stored(v["runner"])
    assert clean(v["label"]) in job["labels"] and (job["url"] or "") == stored(v["job_url"])  # labels: not cut
    assert stored(v["step"]) in [s["name"] for s in job["steps"]]

    # /api/builds lists them; the export says the same, cell for cell, whole and defused.
    listed = requests.get(f"{api_server.url}/api/builds", params={**window, "limit": 1000}, timeout=30)
    assert listed.status_code == 200, listed.text
    items = {item["id"]: item for item in listed.json()["items"]}
    assert set(items) == {base + 1, base + 2}
    assert not {c for s in strings(listed.json()) for c in s} & REMOVED
    export = requests.get(f"{api_server.url}/api/builds.csv", params=window, timeout=60)
    assert export.status_code == 200
    rows = {row["id"]: row for row in check_csv(export.content.decode("utf-8"))}
    assert set(rows) == {str(base + 1), str(base + 2)}
    for run_id in (base + 1, base + 2):
        item = items[run_id]
        expected = ["" if value is None else str(value) for value in cells(tuple(item[f] for f in FIELDS))]
        assert [rows[str(run_id)][f] for f in FIELDS] == expected
        assert rows[str(run_id)]["message"] == csv_text(stored(v["message"]))


@given(row=st.fixed_dictionaries({name: HOSTILE_TEXT for name in messages.RUN_FIELDS if name != "url"}),
       url=HOSTILE_URL)
@settings(max_examples=300, deadline=None)
def test_live_messages_carry_text_and_only_http_links(row, url):
    out = json.loads(messages.outgoing({"type": "run", "seq": 1, "row": {**row, "url": url}}))
    assert not {c for s in strings(out) for c in s} & REMOVED
    assert out["row"]["url"] == link_url(clean(url[:messages.MAX_TEXT]))
    assert out["row"]["url"] is None or link_url(out["row"]["url"]) == out["row"]["url"]
    assert out["row"]["message"] == clean(row["message"][:messages.MAX_TEXT])


def test_sql_and_python_say_the_same_of_rows_stored_before_cleaning(tmp_path):
    """Rows already stored with NUL, control and bidi characters (written before records were cleaned): the
    lines SQLite keeps are NULL for them, and the export (from stored lines or computed) is whole and clean."""
    db = tmp_path / "old.db"
    engine = b.store_with(db, [b.commit("c1"), b.run(1, sha="c1"), b.commit("c2"), b.run(2, sha="c2")])
    columns = ("archivedworkflowname", "archivedbranchname", "title", "author", "event", "url", "repo")

    @given(text=st.lists(HOSTILE_TEXT, min_size=len(columns) + 2, max_size=len(columns) + 2))
    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
    def check(text):
        con = sqlite3.connect(db)
        with con:
            con.execute(f"UPDATE workflowruns SET {', '.join(c + ' = ?' for c in columns)} WHERE gitid = 1",
                        text[:len(columns)])
            con.execute("UPDATE commits SET message = ?, author = ? WHERE hash = 'c1'", text[len(columns):])
        con.close()
        from_lines = b"".join(generate(builds.iter_rows(engine, Filters())))
        computed = b"".join(generate(iter(list(builds.iter_rows(engine, Filters())))))
        assert from_lines == computed
        rows = check_csv(from_lines.decode("utf-8"))
        assert len(rows) == 2
        row = next(r for r in rows if r["id"] == "1")
        assert row["workflow"] == csv_text(text[0]) and row["message"] == csv_text(text[len(columns)])

    check()
    engine.dispose()


# --- every page in headless Chromium: a few examples -----------------------------------------------------------

RECORD_DIALOGS = """window.__dialogs = [];
['alert', 'confirm', 'prompt', 'print'].forEach(function (n) {
  window[n] = function (m) { window.__dialogs.push(n + ':' + m); };
});"""

# Elements, attributes and links in the page body, as the test judges them.
INSPECT = """
var out = {bad: [], links: [], dialogs: window.__dialogs || null};
var body = document.body;
body.querySelectorAll('*').forEach(function (el) {
  for (var i = 0; i < el.attributes.length; i++) {
    var name = el.attributes[i].name;
    if (/^on/i.test(name)) { out.bad.push('on* attribute: ' + el.tagName + ' ' + name); }
    if (/^(href|src|action|formaction|xlink:href|srcdoc|data)$/i.test(name)) {
      out.links.push([el.tagName.toLowerCase(), name, el.attributes[i].value]);
    }
  }
});
body.querySelectorAll('img, iframe, frame, object, embed, video, audio, form, input[type=image], base, meta')
  .forEach(function (el) { out.bad.push('element: ' + el.tagName); });
body.querySelectorAll('script').forEach(function (el) {
  if (el.closest('#react-entry-point, #prerender') || /alert\\(/.test(el.textContent)) {
    out.bad.push('script: ' + el.outerHTML.slice(0, 80));
  }
});
document.querySelectorAll('svg a, svg [style*="font-size:90"], svg foreignObject').forEach(function (el) {
  out.bad.push('svg markup: ' + el.outerHTML.slice(0, 80));
});
return out;
"""


def browser_values():
    """Hostile values for pages: branch and login wrapped in letters (the URL's `?author=` is stripped, and an
    empty default branch shows no grid), the rest as drawn."""
    return values(text=st.one_of(SHORT_TEXT, SHORT_TEXT, SHORT_TEXT, SHORT_TEXT.map(lambda s: s * 300))).map(
        lambda v: {**v, "branch": f"b{v['branch'][:300]}z", "login": f"u{v['login'][:200]}z"})


NASTY = {
    "workflow": "<a href='javascript:alert(1)'>CI</a> <b>bold</b><br>%{y} $x$ \u202eevil\u202c\x00 " * 40,
    "branch": "b=HYPERLINK(\"http://evil.example\")\u2066<img src=x onerror=alert(1)>z",
    "message": "<script>alert(1)</script> [evil](https://evil.example) **x**\x00\n\nsecond\x1b[31m line",
    "title": "\uff1dcmd|' /C calc'!A0 <svg onload=alert(1)>", "login": "u<i>\u202eeve</i>\x07z",
    "author": "\"><img src=x onerror=alert(1)>", "job": "<b>job</b>\x00", "step": "](https://evil.example) ＠x",
    "label": "<br>", "runner": "\x85runner", "event": "@push",
    "run_url": "javascript:alert(document.domain)", "job_url": "java\tscript:alert(1)",
    "repo_url": "data:text/html,<script>alert(1)</script>", "workflow_url": "https:evil.example",
}


GOOD_URL = "https://github.com/o/r/actions/runs/1?q=<b>&x=\"'"
LINKED = {**NASTY, "workflow": "Build & <Test>", "message": "fix: <b>" + "long line " * 500, "run_url": GOOD_URL,
          "repo_url": "HTTPS://GITHUB.COM/o/r", "branch": "b\u202emainz", "login": "u" + "x" * 150 + "z"}


def _allowed_links(server_url: str, repo: str, v: dict, shas, pull: int) -> set:
    """Every href the data may legitimately make: its http(s) URLs, and its commits' and pull request's pages on
    GitHub (the commit and pull-request pages link them)."""
    urls = {link_url(stored(v[f])) for f in URL_FIELDS} - {None}
    urls |= {commit_url(stored(repo), sha, stored(v["repo_url"])) for sha in shas}
    urls |= {github_pull_url(stored(repo), pull, stored(v["repo_url"]))} - {None}
    return urls


def _site_pages(engine) -> set:
    """The commit and pull-request pages here that the store's data may make: each run's commit in its repository,
    and alone (a verdict's evidence names no repository), and each pull request a run names."""
    with engine.connect() as conn:
        commits = conn.execute(select(workflowruns.c.repo, workflowruns.c.archivedcommithash)).all()
        pulls = conn.execute(select(run_pulls.c.repo, run_pulls.c.number)).all()
    return ({commit_href(repo, sha) for repo, sha in commits} | {commit_href(None, sha) for _repo, sha in commits}
            | {pull_href(repo, number) for repo, number in pulls}) - {None}


def _with_pull(event: str, body: bytes, number: int) -> bytes:
    """A delivery whose run names pull request `number` (for the pull request's page)."""
    if event != "workflow_run":
        return body
    payload = json.loads(body)
    payload["workflow_run"]["pull_requests"] = [{"number": number}]
    return json.dumps(payload).encode()


def _inspect(dash_duo, server_url: str, allowed: set, where: str, pages: set) -> None:
    found = dash_duo.driver.execute_script(INSPECT)
    assert found["dialogs"] == [], where
    assert found["bad"] == [], where
    for tag, name, value in found["links"]:
        same_site = value.startswith("/") and not value.startswith(("//", "/\\"))
        if tag in ("script", "link") or name == "src" and same_site:
            continue
        if tag == "image" and value.startswith("data:image/png;base64,"):  # Plotly draws a heatmap as a PNG
            continue
        assert name == "href" and (same_site or value in allowed or value.startswith(server_url + "/")), \
            (where, tag, name, value[:200])
        if same_site and value.startswith(("/commit/", "/pull/")):
            assert value in pages, (where, value[:200])


def _hrefs(dash_duo, selector: str) -> list[str]:
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0])).map(a => a.getAttribute('href'));", selector)


def _shot(dash_duo, path) -> None:
    dash_duo.driver.set_window_size(1400, 2200)
    dash_duo.driver.save_screenshot(str(path) + "-light.png")
    dash_duo.find_element("#theme-switch").click()
    wait.until(lambda: dash_duo.driver.execute_script(
        "return document.documentElement.getAttribute('data-bs-theme')") == "dark", timeout=10)
    dash_duo.driver.save_screenshot(str(path) + "-dark.png")
    dash_duo.find_element("#theme-switch").click()
    wait.until(lambda: dash_duo.driver.execute_script(
        "return document.documentElement.getAttribute('data-bs-theme')") == "light", timeout=10)
    dash_duo.driver.set_window_size(1400, 1000)


@pytest.mark.browser
def test_hostile_text_is_inert_on_every_page(dash_duo, db_path, tmp_path):
    app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET))
    dash_duo.start_server(app, port=free_port())  # not 8050: others may be testing on this machine
    services = app.server.extensions["buildmon"]
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_DIALOGS})
    dash_duo.driver.set_window_size(1400, 1000)
    url = dash_duo.server_url
    counter = itertools.count(1)

    @given(v=browser_values())
    @example(v=NASTY)
    @example(v=LINKED)
    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(v):
        n = next(counter)
        repo, base = f"o{n}/<b>r</b>&\"'{n}", 8_000_000 + n * 10
        for event, body in deliveries(repo, v, base):
            assert post(url, event, _with_pull(event, body, n)).status_code == 202  # pull request #n: its runs
        services.settle()
        shas = [sha(base + i) for i in (1, 2, 4)]
        allowed = _allowed_links(url, repo, v, shas, n)
        commit_pages = {commit_href(stored(repo), s) for s in shas}
        name = stored(v["workflow"]) or "test"
        shot = tmp_path / f"hostile-{n}" if n == 1 else None

        # Waterfall: commit grid, chart legend and hover, build stream (with a run pushed live).
        dash_duo.driver.get(f"{url}/?{urlencode({'repo': stored(repo), 'window': 'all'})}")
        dash_duo.wait_for_element("#commit-grid-table", timeout=30)
        dash_duo.wait_for_element("#wf-chart-graph .legendtext", timeout=30)
        dash_duo.wait_for_element(f"#stream-grid .ag-row[row-id='{base + 2}']", timeout=30)
        pushed = deliveries(repo, {**v, "message": v["message"] + "!"}, base + 2, START + DAY)[2][1]
        assert post(url, "workflow_run", pushed).status_code == 202  # run base + 4: arrives over the WebSocket
        dash_duo.wait_for_element(f"#stream-grid .ag-row[row-id='{base + 4}']", timeout=30)
        grid = dash_duo.driver.execute_script("""
            var t = document.getElementById('commit-grid-table');
            return {authors: Array.from(t.querySelectorAll('td.wf-author-col')).map(e => e.textContent),
                    titles: Array.from(t.querySelectorAll('.wf-title')).map(e => e.getAttribute('title')),
                    columns: Array.from(t.querySelectorAll('.wf-col-name')).map(e => e.textContent),
                    legend: Array.from(document.querySelectorAll('#wf-chart-graph .legendtext'))
                                 .map(e => e.textContent)};
        """)
        assert set(grid["authors"]) == {stored(v["author"])}
        assert stored(v["message"]) in grid["titles"] or stored(v["message"] + "!") in grid["titles"]
        assert grid["columns"] == [name]
        assert grid["legend"] == [clip(" ".join(name.splitlines()), 60)]
        hover = dash_duo.driver.execute_script("""
            var gd = document.getElementById('wf-chart-graph').querySelector('.js-plotly-plot');
            Plotly.Fx.hover(gd, [{curveNumber: 0, pointNumber: 0}], 'xy');
            var box = document.querySelector('.hoverlayer .hovertext');
            return box ? box.textContent : null;""")
        assert hover is not None and clip(" ".join(name.splitlines()), 60) in hover
        # Every sha links to its commit's page here, the grid's (Python) and the stream's (JavaScript) alike.
        assert len(set(_hrefs(dash_duo, "#commit-grid-table a.wf-sha")) & commit_pages) >= 2
        assert set(_hrefs(dash_duo, "#stream-grid a.commit-link")) == commit_pages
        _inspect(dash_duo, url, allowed, "waterfall", _site_pages(services.engine))
        if shot:
            _shot(dash_duo, str(shot) + "-waterfall")

        # Triage: broken default branch, failure groups, analysis, flaky runs.
        dash_duo.driver.get(f"{url}/triage?{urlencode({'repo': stored(repo), 'window': 'all'})}")
        for selector in ("#tr-broken-table", "#tr-failures-grid tbody tr", "#tr-analysis-grid tbody tr",
                         "#tr-flaky-grid .ag-row"):
            dash_duo.wait_for_element(selector, timeout=30)
        # Each failure group's newest failed runs: their commits' pages here, whatever the runs' URLs say.
        runs = _hrefs(dash_duo, "#tr-failures-grid .tr-run-links a")
        assert runs and set(runs) <= commit_pages
        assert set(_hrefs(dash_duo, "#tr-broken-table a.tr-first-bad-sha")) <= commit_pages
        assert _hrefs(dash_duo, "#tr-flaky-grid a.commit-link") == [commit_href(stored(repo), shas[0])]
        _inspect(dash_duo, url, allowed, "triage", _site_pages(services.engine))
        if shot:
            _shot(dash_duo, str(shot) + "-triage")

        # Developer: cards, unfixed failures, history.
        # A person's failures link the runs that justify each verdict, and "seen before" may be an earlier
        # example's run (the store is shared and lines repeat): any stored run or job URL the server passed.
        with services.engine.connect() as conn:
            allowed |= {link_url(u) for u in conn.execute(select(workflowruns.c.url).union(select(jobs.c.url)))
                        .scalars()} - {None}
        dash_duo.driver.get(f"{url}/developer?{urlencode({'author': stored(v['login']), 'window': 'all'})}")
        dash_duo.wait_for_element(".dev-unfixed-item", timeout=30)
        dash_duo.wait_for_element("#dev-history .ag-row", timeout=30)
        assert set(_hrefs(dash_duo, ".dev-unfixed-item a[href^='/commit/']")) & commit_pages
        assert set(_hrefs(dash_duo, "#dev-history a.commit-link")) & commit_pages
        _inspect(dash_duo, url, allowed, "developer", _site_pages(services.engine))
        if shot:
            _shot(dash_duo, str(shot) + "-developer")

        # The newest run's commit page: its runs, their jobs, failure lines and verdicts, its neighbours.
        dash_duo.driver.get(url + commit_href(stored(repo), shas[1]))
        dash_duo.wait_for_element("#cm-summary", timeout=30)
        dash_duo.wait_for_element("#cm-runs", timeout=30)
        assert dash_duo.find_element("#cm-sha").text == shas[1]
        _inspect(dash_duo, url, allowed, "commit", _site_pages(services.engine))
        if shot:
            _shot(dash_duo, str(shot) + "-commit")

        # The pull request's page: its two head commits, each linking to its page here.
        dash_duo.driver.get(url + pull_href(stored(repo), n))
        dash_duo.wait_for_element("#pl-commits-table", timeout=30)
        assert set(_hrefs(dash_duo, "#pl-commits-table a.pl-sha")) == {commit_href(stored(repo), s) for s in shas[:2]}
        _inspect(dash_duo, url, allowed, "pull", _site_pages(services.engine))

        # Runners: queue times by (hostile) label and runner group, busiest hours, billable minutes.
        dash_duo.driver.get(f"{url}/runners?{urlencode({'repo': stored(repo), 'window': 'all'})}")
        for section in ("rn-labels", "rn-groups", "rn-waiting", "rn-hours", "rn-billing"):
            dash_duo.wait_for_element(f"#{section} > *", timeout=30)
        _inspect(dash_duo, url, allowed, "runners", _site_pages(services.engine))
        assert [entry for entry in dash_duo.get_logs() if entry.get("level") == "SEVERE"] == []

    check()
    services.close()
