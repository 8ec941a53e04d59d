"""Failure intelligence on the pages: Triage's "Failures by cause" and a failure group's page (`dash_duo`).

The store is a copy of the demo's with failure lines saved by the test itself (`store.joblogs.save`, as
the fetcher saves them), so the lines, excerpts and fingerprints are known here: one cause shared by the
red streak's failed jobs, and one hostile line (markup, quotes, bidi controls) on a lint job (or another).  A few
failed jobs are queued again, pending: with no GITHUB_TOKEN configured, Triage must say what they wait for.
"""
import hashlib
import sqlite3
import time
from urllib.parse import urlsplit

import pytest
from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from sqlalchemy import text

from dashapp import create_app
from dashapp.config import Config
from dashapp.failure_tables import NEWEST_SHOWN, capture_note, excerpt_block, failure_href
from dashapp.tables import commit_href
from domain.text import clean
from failures import Extraction, FailureLine
from ingest.demo import RED_STREAK
from store import joblogs
from store.engine import make_engine
from store.queries import failures as fq
from store.queries.filters import Filters
from store.schema import failure_lines, job_logs
from tests.helpers import click_in_view

CAUSE = "FAILED tests/test_session.py::test_refresh_token - AssertionError: token expired at 12:00:03"
HOSTILE = ("<img src=x onerror=alert(1)><script>alert('fi')</script> \u202eevil\u202c & \"q\" 'q' "
           "[x](javascript:alert(2)) " + "very long failure text " * 40)
WINDOW = 30 * 86400


def _fp(line: str) -> str:
    return hashlib.sha256(line.encode()).hexdigest()[:16]


def _excerpt(line: str, n: int) -> str:
    return "\n".join(["##[group]Run pytest -q", "collected 212 items", *(f"tests/test_{i}.py ....." for i in range(n)),
                      line, "=== 1 failed, 211 passed in 41.20s ===",
                      "##[error]Process completed with exit code 1."])


def _latest_failed_jobs(conn, repo: str, name: str, since: float) -> list[int]:
    """Failed jobs of the latest attempts of `repo`'s failed runs since `since` named `name` (what Triage groups:
    not the failed jobs of a cancelled run, which the demo has on some days)."""
    return list(conn.execute(text(
        "SELECT j.gitid FROM jobs j JOIN workflowruns w ON w.gitid = j.run_gitid AND w.run_attempt = j.run_attempt"
        " WHERE j.repo = :repo AND j.name = :name AND j.conclusion IN ('failure', 'timed_out')"
        " AND w.conclusion IN ('failure', 'timed_out') AND w.createtime >= :since ORDER BY j.gitid"), {"repo": repo, "name": name, "since": since}).scalars())


def _save(conn, job: int, repo: str, line: str, klass: str, excerpt: str) -> None:
    extraction = Extraction(lines=[FailureLine(rule="pytest-failed", klass=klass, text=line, fingerprint=_fp(line),
                                               line=3, source="log")],
                            excerpt=excerpt, log_bytes=len(excerpt), truncated=False)
    joblogs.save(conn, job, repo, extraction, source="log", now=time.time())


@pytest.fixture(scope="module")
def fi_store(demo_store, tmp_path_factory):
    """A copy of the demo store with the test's failure lines; (path, cause jobs, hostile job)."""
    path = str(tmp_path_factory.mktemp("fi") / "fi.db")
    with sqlite3.connect(demo_store) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    engine = make_engine(path)
    since = time.time() - WINDOW + 86400  # a day inside the window the tests open, whenever they run
    with engine.begin() as conn:
        cause_jobs = _latest_failed_jobs(conn, RED_STREAK["repo"], RED_STREAK["job"], since)
        # The hostile line goes on a lint job, or on another failed job of the repository when no lint job
        # failed in the window: which jobs failed follows the clock, as the demo's times do (on 5 Dec at 03:45
        # no lint job had).
        names = ["lint", *conn.execute(text("SELECT DISTINCT name FROM jobs WHERE repo = 'acme/webapp' "
                                            "AND name NOT IN ('lint', :cause) ORDER BY 1"),
                                       {"cause": RED_STREAK["job"]}).scalars()]
        lint_jobs = next((found for name in names if (found := _latest_failed_jobs(conn, "acme/webapp", name, since))),
                         [])
        assert len(cause_jobs) >= 2 and lint_jobs, "the demo has failed test jobs and others in the last 30 days"
        for i, job in enumerate(cause_jobs):
            _save(conn, job, RED_STREAK["repo"], CAUSE, "test", _excerpt(CAUSE, 3 + i))
        hostile_excerpt = "<b>bold</b> \x1b[31mred\x1b[0m <script>alert(3)</script>\n" + HOSTILE + "\nafter"
        _save(conn, lint_jobs[-1], "acme/webapp", HOSTILE, "lint", hostile_excerpt)
        # acme/mobile's failed jobs wait for their logs, as with no token (the demo saves lines for all of them).
        # (Any job name: which of its jobs failed follows the clock, as the demo's times do; on 4 Dec at 18:40
        # neither lint nor build (ios) had.)
        names = conn.execute(text("SELECT DISTINCT name FROM jobs WHERE repo = 'acme/mobile' ORDER BY 1")).scalars()
        waiting = [job for name in names for job in _latest_failed_jobs(conn, "acme/mobile", name, 0)]
        assert waiting, "the demo has failed jobs of acme/mobile"
        conn.execute(failure_lines.delete().where(failure_lines.c.job.in_(waiting)))
        conn.execute(job_logs.delete().where(job_logs.c.job.in_(waiting)))
        joblogs.queue(conn, [(job, "acme/mobile") for job in waiting], time.time())
    engine.dispose()
    return path, cause_jobs, lint_jobs[-1]


def _start(dash_duo, path, url, **config):
    app = create_app(Config.from_env({}, database_path=path, webhook_secret="s", **config))
    dash_duo.start_server(app)
    dash_duo.driver.set_window_size(1400, 1000)
    dash_duo.driver.get(dash_duo.server_url + url)
    return app


def _query(path, function, *args, **kwargs):
    engine = make_engine(path)
    with engine.connect() as conn:
        out = function(conn, *args, **kwargs)
    engine.dispose()
    return out


def _row(dash_duo, fingerprint):
    return dash_duo.wait_for_element(f"#tr-causes-table tr.fi-group-row[data-fingerprint='{fingerprint}']",
                                     timeout=30)


def _stale(element) -> bool:
    try:
        element.is_displayed()
        return False
    except StaleElementReferenceException:
        return True


def _no_markup(dash_duo, root: str) -> None:
    """Nothing in `root` the hostile text could have made: no element of its markup, no handler attribute."""
    found = dash_duo.driver.execute_script("""
        var root = document.querySelector(arguments[0]), bad = [];
        root.querySelectorAll('img, script, iframe, object, embed, svg a, foreignObject, b').forEach(function (el) {
            bad.push(el.tagName); });
        root.querySelectorAll('*').forEach(function (el) {
            for (var i = 0; i < el.attributes.length; i++) {
                if (/^on/i.test(el.attributes[i].name)) bad.push(el.attributes[i].name);
                if (/^javascript:/i.test(el.getAttribute('href') || '')) bad.push('javascript: href');
            }
        });
        return bad;""", root)
    assert found == []


def test_fi001_triage_groups_by_cause_and_opens_the_group_page(dash_duo, fi_store):
    path, cause_jobs, _hostile_job = fi_store
    fp = _fp(CAUSE)
    query = "?repo=acme%2Fwebapp&window=30d"
    _start(dash_duo, path, "/triage" + query)
    row = _row(dash_duo, fp)
    # The group as the query gives it: its line first, class, verdict, counts.
    expected = next(g for g in _query(path, fq.groups, Filters(repo="acme/webapp", since=time.time() - WINDOW))
                    if g["fingerprint"] == fp)
    line = row.find_element(By.CSS_SELECTOR, ".fi-line")
    assert line.get_attribute("textContent") == CAUSE and line.get_attribute("title") == CAUSE
    assert row.find_element(By.CSS_SELECTOR, ".fi-class").text == "test"
    assert row.find_element(By.CSS_SELECTOR, ".fi-verdict").text == expected["verdict"]["kind"]
    assert row.find_element(By.CSS_SELECTOR, ".fi-jobs").text == str(expected["jobs"]) == str(len(cause_jobs))
    assert RED_STREAK["job"] in row.find_element(By.CSS_SELECTOR, ".fi-line-where").get_attribute("textContent")
    runs = row.find_elements(By.CSS_SELECTOR, ".fi-runs-cell a")  # each run's commit, on its page here
    assert [a.get_attribute("href") for a in runs] == [dash_duo.server_url + commit_href(o["repo"], o["sha"])
                                                       for o in expected["newest"][:NEWEST_SHOWN]]
    # No token, and the demo's other failed jobs wait: the section says so, with how many.
    pending = _query(path, fq.capture_status, token=False)["pending"]
    assert pending > 0
    note = dash_duo.find_element("#tr-capture-note").text
    assert "Failure lines need a GitHub token: set GITHUB_TOKEN" in note and _waiting(pending) in note
    # The "by job and step" section is still there, below.
    dash_duo.wait_for_element("#tr-failures-grid", timeout=30)

    # The line links to the group's page, carrying the selection.
    line.click()
    dash_duo.wait_for_element("#failure-page #fl-summary", timeout=30)
    url = urlsplit(dash_duo.driver.current_url)
    assert url.path == f"/failure/{fp}" and "?" + url.query == query
    assert dash_duo.find_element("#fl-line").text == CAUSE
    assert dash_duo.find_element("#fl-rule").text == "rule pytest-failed"
    assert dash_duo.find_element("#fl-jobs").text.endswith(str(len(cause_jobs)))
    newest = _query(path, fq.occurrences, fp, limit=1, excerpts=False)[0]
    assert dash_duo.find_element("#fl-verdict").text == newest["verdict"]["kind"]
    assert dash_duo.find_element("#fl-reason").text == newest["verdict"]["reason"]
    # Occurrences, newest first, each with its job link and its excerpt, collapsed until opened.
    until(lambda: len(dash_duo.driver.find_elements(By.CSS_SELECTOR, "tr.fi-occ-row")) == len(cause_jobs), timeout=30)
    occurrences = _query(path, fq.occurrences, fp, Filters(repo="acme/webapp", since=time.time() - WINDOW))
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, "tr.fi-occ-row")
    assert [int(r.get_attribute("data-job")) for r in rows] == [o["job"] for o in occurrences]
    assert rows[0].find_element(By.CSS_SELECTOR, ".fi-job-link").get_attribute("href") == occurrences[0]["job_url"]
    assert rows[0].find_element(By.CSS_SELECTOR, ".fi-commit a").get_attribute("href") == \
        dash_duo.server_url + commit_href(occurrences[0]["repo"], occurrences[0]["sha"])
    excerpt = dash_duo.find_element("#fl-excerpt-0 pre")
    assert not excerpt.is_displayed()
    click_in_view(dash_duo, "#fl-excerpt-0 summary")
    until(excerpt.is_displayed, timeout=10)
    assert excerpt.get_attribute("textContent") == occurrences[0]["excerpt"]
    assert excerpt.find_element(By.CSS_SELECTOR, "mark").text == CAUSE
    # A live bump redraws the header, and leaves the occurrences (the same jobs) alone: the excerpt stays open.
    header = dash_duo.find_element("#fl-summary")
    dash_duo.driver.execute_script("window.dash_clientside.set_props('live-version', {data: 4242});")
    until(lambda: _stale(header), timeout=30)
    assert excerpt.is_displayed()
    # Back to Triage, same selection.
    assert urlsplit(dash_duo.find_element("#fl-back").get_attribute("href")).query == query[1:]
    dash_duo.driver.back()
    _row(dash_duo, fp)
    assert dash_duo.driver.current_url.endswith("/triage" + query)
    assert [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"] == []


def test_fi002_hostile_failure_text_is_shown_as_text(dash_duo, fi_store):
    path, _cause_jobs, _hostile_job = fi_store
    fp = _fp(HOSTILE)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "window.__dialogs = []; window.alert = function (m) { window.__dialogs.push(m); };"})
    _start(dash_duo, path, "/triage?window=30d")
    line = _row(dash_duo, fp).find_element(By.CSS_SELECTOR, ".fi-line")
    shown = clean(" ".join(HOSTILE.split()))
    assert line.get_attribute("title") == clean(HOSTILE).strip()
    assert line.get_attribute("textContent") == shown[:299] + "…"  # cut at LINE_SHOWN, whole on hover
    _no_markup(dash_duo, "#tr-causes")
    line.click()
    dash_duo.wait_for_element("#fl-summary", timeout=30)
    assert dash_duo.find_element("#fl-line").get_attribute("textContent") == clean(HOSTILE).strip()
    click_in_view(dash_duo, "#fl-excerpt-0 summary")
    excerpt = dash_duo.find_element("#fl-excerpt-0 pre").get_attribute("textContent")
    assert excerpt.startswith("<b>bold</b> red <script>alert(3)</script>\n")  # ANSI colours gone, markup as text
    assert dash_duo.find_element("#fl-excerpt-0 mark").get_attribute("textContent").strip() == clean(HOSTILE).strip()
    _no_markup(dash_duo, "#failure-page")
    assert dash_duo.driver.execute_script("return window.__dialogs") == []


def test_fi003_bad_and_unknown_fingerprints(dash_duo, fi_store):
    path, _cause_jobs, _hostile_job = fi_store
    _start(dash_duo, path, "/failure/<b>nope</b>")
    notice = dash_duo.wait_for_element("#fl-notice", timeout=30)
    assert "is not a failure fingerprint" in notice.text and "<b>nope</b>" in notice.text
    dash_duo.driver.get(dash_duo.server_url + "/failure/0123456789abcdef")
    until(lambda: "No failure with this fingerprint" in dash_duo.find_element("#fl-notice").text, timeout=30)
    # The path's fingerprint is the page's, whatever a query argument of the same name says.
    fp = _fp(CAUSE)
    dash_duo.driver.get(dash_duo.server_url + f"/failure/{fp}?fingerprint=0123456789abcdef&window=all")
    until(lambda: dash_duo.find_element("#fl-line").text == CAUSE, timeout=30)
    assert dash_duo.find_element("#fl-heading-fingerprint").text == fp
    # The window selector narrows the occurrences and writes the URL.
    assert dash_duo.find_element("#fl-window").text.startswith("All time")
    click_in_view(dash_duo, "#fl-window")
    until(lambda: any(o.text == "Last hour" for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")),
          timeout=10)
    click_in_view(dash_duo, next(o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")
                          if o.text == "Last hour"))
    until(lambda: "window=1h" in dash_duo.driver.current_url, timeout=10)
    expected = _query(path, fq.occurrences, fp, Filters(since=time.time() - 3600), excerpts=False)
    until(lambda: len(dash_duo.driver.find_elements(By.CSS_SELECTOR, "tr.fi-occ-row")) == len(expected), timeout=30)
    if not expected:
        assert "No occurrence in the last hour" in dash_duo.find_element("#fl-occurrences-empty").text
    assert [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"] == []


def test_fi004_capture_notes_from_the_store(fi_store, tmp_path):
    """What the section says of the capture, from a real store's `capture_status`: no token, a rate-limit pause,
    jobs still pending, nothing waiting."""
    path, _cause_jobs, _hostile_job = fi_store
    copy = str(tmp_path / "copy.db")
    with sqlite3.connect(path) as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    status = _query(copy, fq.capture_status, token=False)
    pending = status["pending"]
    note = capture_note(status, have_groups=True)
    assert note.id == "tr-capture-note" and "GITHUB_TOKEN" in str(note.children) and _waiting(pending) \
        in str(note.children)

    status = _query(copy, fq.capture_status, token=True)
    assert "still waiting for" in capture_note(status, have_groups=True).children

    until_ = time.time() + 3600
    engine = make_engine(copy)
    with engine.begin() as conn:
        joblogs.pause(conn, until_, "rate limited by GitHub until 12:00:00 UTC")
    engine.dispose()
    status = _query(copy, fq.capture_status, token=True)
    assert status["paused_until"] is not None
    note = capture_note(status, have_groups=True)
    assert "rate-limited" in note.children and time.strftime("%H:%M UTC", time.gmtime(status["paused_until"])) \
        in note.children and _waiting(pending) in note.children

    assert capture_note({"token": True, "pending": 0}, have_groups=False) is None
    # No token and nothing captured: say it even with no job waiting (a webhook-only setup).
    assert "GITHUB_TOKEN" in str(capture_note({"token": False, "pending": 0}, have_groups=False).children)


def test_fi005_links_and_excerpts_are_built_safely():
    assert failure_href("0123456789abcdef", {"repo": "o/r", "window": "7d", "known": True}) == \
        "/failure/0123456789abcdef?repo=o%2Fr&window=7d"
    for bad in ("0123456789ABCDEF", "../../x", "0123456789abcdef0", None, 5):
        assert failure_href(bad) is None
    block = excerpt_block("a\nFAILED x::y - boom\n  FAILED x::y -   boom  \nz", "FAILED x::y - boom")
    pre = block.children[1]
    marks = [c for c in pre.children if not isinstance(c, str)]
    assert [m.children for m in marks] == ["FAILED x::y - boom", "  FAILED x::y -   boom  "]
    assert "".join(c if isinstance(c, str) else c.children for c in pre.children) == \
        "a\nFAILED x::y - boom\n  FAILED x::y -   boom  \nz"


def _waiting(pending: int) -> str:
    """How the capture note counts the jobs waiting for their logs (the demo's count depends on the hour)."""
    return f"{pending:,} failed jobs wait for their logs" if pending != 1 else "1 failed job waits for its log"
