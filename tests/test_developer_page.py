"""The Developer page in headless Chromium (`dash_duo`), on the demo history and on an empty store."""
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By

from dashapp import create_app
from dashapp.config import Config
from dashapp.tables import commit_href
from domain import records as r
from failures import Extraction, FailureLine
from ingest.demo import FLAKY_EXAMPLE, RED_STREAK
from store import joblogs
from store.engine import make_engine
from store.queries.developer import history, unfixed_failures
from store.queries.filters import Filters
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.browser
AUTHOR = RED_STREAK["first_bad_author"]  # mona-lisa


@pytest.fixture(scope="module")
def demo_db(demo_store):
    path = demo_store
    engine = make_engine(path)
    with engine.connect() as conn:
        expected = {"runs": history(conn, Filters(author=AUTHOR), end=1)[1],
                    "unfixed": len(unfixed_failures(conn, Filters(author=AUTHOR)))}
    engine.dispose()
    return path, expected


def _start(dash_duo, database_path, query="", **settings):
    app = create_app(Config.from_env({}, database_path=database_path, webhook_secret="s", **settings))
    dash_duo.start_server(app)
    _open(dash_duo, query)
    return app


def _open(dash_duo, query=""):
    dash_duo.driver.get(dash_duo.server_url + "/developer" + query)
    dash_duo.wait_for_element("#developer-page", timeout=20)


def _select(dash_duo, dropdown_id, label, typed=None):
    """Pick `label` in a dcc.Dropdown (Dash 4: a button opening a list of role=option labels)."""
    dash_duo.find_element(f"#{dropdown_id}").click()
    if typed:
        search = dash_duo.driver.switch_to.active_element
        search.send_keys(typed)
    until(lambda: any(o.text == label for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")),
          timeout=10)
    next(o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == label).click()


def _history_rows(dash_duo):
    return dash_duo.driver.find_elements(By.CSS_SELECTOR, "#dev-history .ag-center-cols-container .ag-row")


def test_dev001_metrics_unfixed_and_history(dash_duo, demo_db):
    path, expected = demo_db
    _start(dash_duo, path, f"?author={AUTHOR}&window=all")
    dash_duo.wait_for_element("#card-success-rate", timeout=20)
    assert "%" in dash_duo.find_element("#card-success-rate").text
    dash_duo.wait_for_contains_text("#card-unfixed", str(expected["unfixed"]), timeout=20)
    dash_duo.wait_for_element("#dev-unfixed-list, #dev-unfixed-empty", timeout=20)
    assert len(dash_duo.find_elements(".dev-unfixed-item")) == expected["unfixed"]
    until(lambda: _history_rows(dash_duo), timeout=20)
    dash_duo.wait_for_contains_text("#dev-history-count", f"{expected['runs']} runs", timeout=20)
    first = _history_rows(dash_duo)[0]
    assert first.find_element(By.CSS_SELECTOR, "a").get_attribute("href").startswith("https://github.com/")
    data = dash_duo.driver.execute_script("return dash_ag_grid.getApi('dev-history').getDisplayedRowAtIndex("
                                          "Number(arguments[0].getAttribute('row-index'))).data;", first)
    commit_link = first.find_element(By.CSS_SELECTOR, ".ag-cell[col-id='sha'] a.commit-link")
    # textContent: the column may be scrolled out of the grid's view, where selenium's .text is empty.
    assert commit_link.get_attribute("textContent") == data["sha"][:7]
    assert commit_link.get_attribute("href") == dash_duo.server_url + commit_href(data["repo"], data["sha"])
    assert dash_duo.get_logs() == []


def test_dev002_author_search_updates_url_and_reload(dash_duo, demo_db):
    path, _expected = demo_db
    _start(dash_duo, path, "?window=30d")
    assert "Pick a developer" in dash_duo.find_element("#dev-notice").text
    _select(dash_duo, "dev-author", FLAKY_EXAMPLE["author"], typed="priya")
    until(lambda: f"author={FLAKY_EXAMPLE['author']}" in dash_duo.driver.current_url, timeout=10)
    assert "window=30d" in dash_duo.driver.current_url  # the other arguments are kept
    dash_duo.wait_for_contains_text("#dev-heading-scope", FLAKY_EXAMPLE["author"], timeout=20)
    until(lambda: _history_rows(dash_duo), timeout=20)
    count = dash_duo.find_element("#dev-history-count").text
    cards = dash_duo.find_element("#card-success-rate").text
    dash_duo.driver.get(dash_duo.driver.current_url)  # reload from the URL: same view
    dash_duo.wait_for_contains_text("#dev-history-count", count.split(",")[0], timeout=20)
    dash_duo.wait_for_text_to_equal("#card-success-rate", cards, timeout=20)
    _select(dash_duo, "dev-window", "All time")
    until(lambda: "window=all" in dash_duo.driver.current_url, timeout=10)
    dash_duo.driver.back()
    until(lambda: "window=30d" in dash_duo.driver.current_url, timeout=10)
    dash_duo.wait_for_text_to_equal("#card-success-rate", cards, timeout=20)


def test_dev003_history_sorts_and_filters_in_sql(dash_duo, demo_db):
    path, expected = demo_db
    _start(dash_duo, path, f"?author={AUTHOR}&window=all")
    until(lambda: _history_rows(dash_duo), timeout=20)
    dash_duo.driver.execute_script(
        "dash_ag_grid.getApi('dev-history').setFilterModel("
        "{conclusion: {filterType: 'text', type: 'equals', filter: 'failure'}})")
    until(lambda: "matching" in dash_duo.find_element("#dev-history-count").text, timeout=20)
    shown = int(dash_duo.find_element("#dev-history-count").text.split()[0])
    assert 0 < shown < expected["runs"]
    # Into view, as a reader would scroll: AG Grid leaves the cells of a grid below the fold empty (it sits
    # under the failures table, past the first screen of the test's window).
    dash_duo.driver.execute_script(
        "document.getElementById('dev-history').scrollIntoView({block: 'center', behavior: 'instant'});")
    until(lambda: all(r.find_element(By.CSS_SELECTOR, "[col-id=conclusion]").text == "X"
                      for r in _history_rows(dash_duo)), timeout=20)


def test_dev004_unknown_author(dash_duo, demo_db):
    path, _expected = demo_db
    _start(dash_duo, path, "?author=no-such-login")
    dash_duo.wait_for_contains_text("#dev-notice", "Unknown author", timeout=20)
    assert not dash_duo.find_elements("#dev-history")


# Apart from dev004: a server stopped inside a test (dash_duo raises SystemExit in its threads) once hit a
# thread in its exception hook, which pytest reports as the test's failure.
def test_dev004_empty_store(dash_duo, tmp_path):
    _start(dash_duo, str(tmp_path / "empty.db"), f"?author={AUTHOR}")
    dash_duo.wait_for_contains_text("#dev-notice", "No builds yet", timeout=20)
    assert "Traceback" not in dash_duo.driver.page_source


# --- "Your failures": whose each failure is --------------------------------------------------------------------

# (run, workflow, branch, sha, author, job name, failure line or None, class, fingerprint, created); each run one
# job (so no neighbouring commit passes a job by accident).  alice's six failures are each of a different kind.
TRUNK_LINE = "FAILED tests/test_api.py::test_export - AssertionError: 'csv' != 'json'"
FAILURES = [
    (101, "CI", "main", "m1", "bob", "test (ubuntu)", TRUNK_LINE, "test", "aa00000000000001", T0),
    (102, "CI", "feature", "f1", "alice", "test (ubuntu)", TRUNK_LINE, "test", "aa00000000000001", T0 + 100),
    (103, "Lint", "feature", "f2", "alice", "ruff", "src/app.py:3:1: F401 <b>'os'</b> imported but unused", "lint",
     "aa00000000000002", T0 + 200),
    (104, "Unit", "feature", "f3", "alice", "unit", "FAILED tests/test_clock.py::test_tick - TimeoutError", "test",
     "aa00000000000003", T0 + 300),
    (106, "Deploy", "feature", "f4", "alice", "deploy", "The runner has received a shutdown signal.", "infra",
     "aa00000000000004", T0 + 400),
    (107, "Docs", "other", "b1", "bob", "docs", "error: broken link docs/index.md", "build", "aa00000000000005",
     T0 + 50),
    (108, "Docs", "feature", "f5", "alice", "docs", "error: broken link docs/index.md", "build", "aa00000000000005",
     T0 + 600),
    (109, "E2E", "feature", "f6", "alice", "e2e", None, None, None, T0 + 700),
]
PASSING = (105, "Unit", "feature", "f3", "alice", "unit", T0 + 350)  # the same job passes on the same commit: flaky


def _job(run_id, workflow, branch, sha, name, created, conclusion):
    return r.Job(repo="o/app", gitid=run_id * 10, run_gitid=run_id, run_attempt=1, name=name, workflow_name=workflow,
                 head_branch=branch, head_sha=sha, status="completed", conclusion=conclusion, createtime=created,
                 starttime=created + 5, endtime=created + 60, runner_name="r", runner_id=1,
                 url=f"https://github.com/o/app/actions/runs/{run_id}/job/{run_id * 10}")


def whose_store(path):
    """alice's failures on `feature`, one of each kind, and what makes each so (bob's trunk failure, the passing
    re-run, the earlier occurrence elsewhere)."""
    records = [r.Repo("o/app", default_branch="main")]
    for run_id, workflow, branch, sha, author, name, _line, _klass, _fp, created in FAILURES:
        records += [commit(sha, author=author, time=created - 60),
                    run(run_id, workflow=workflow, branch=branch, sha=sha, author=author, conclusion="failure",
                        created=created),
                    _job(run_id, workflow, branch, sha, name, created, "failure")]
    run_id, workflow, branch, sha, author, name, created = PASSING
    records += [run(run_id, workflow=workflow, branch=branch, sha=sha, author=author, created=created),
                _job(run_id, workflow, branch, sha, name, created, "success")]
    engine = store_with(path, records)
    with engine.begin() as conn:
        for run_id, _w, _b, _s, _a, _n, line, klass, fingerprint, created in FAILURES:
            if line is not None:
                found = FailureLine(rule="rule", klass=klass, text=line, fingerprint=fingerprint, line=12, source="log")
                joblogs.save(conn, run_id * 10, "o/app", Extraction([found], f"...\n{line}\n...", 1000, False),
                             source="log", now=created + 120)
    engine.dispose()
    return str(path)


def _whose(dash_duo):
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#dev-failures-table tr[data-whose]'))"
        ".map(tr => [tr.dataset.whose, tr.querySelector('.whose-badge').textContent,"
        " tr.querySelector('.dev-failure-line-cell').textContent]);")


def test_dev005_your_failures_say_whose_each_is(dash_duo, tmp_path):
    path = whose_store(tmp_path / "whose.db")
    # With a token, and no processor: nothing fetches (the store holds the lines already).
    _start(dash_duo, path, "?author=alice&window=all", github_token="t", processor="off",
           github_api_url="http://127.0.0.1:9")
    dash_duo.wait_for_element("#dev-failures-table", timeout=20)
    dash_duo.wait_for_text_to_equal(
        "#dev-failures-summary", "1 of your 6 failures is yours to fix; 1 is broken on main; 1 is flaky; "
        "1 is infrastructure; 1 was seen before; 1 has no failure line yet.", timeout=20)
    rows = _whose(dash_duo)
    assert rows == [  # newest first
        ["unknown", "no line yet", "not captured yet"],
        ["known", "known", "error: broken link docs/index.md"],
        ["infra", "infra", "The runner has received a shutdown signal."],
        ["flaky", "flaky", "FAILED tests/test_clock.py::test_tick - TimeoutError"],
        ["yours", "yours", "src/app.py:3:1: F401 <b>'os'</b> imported but unused"],  # log text stays text
        ["trunk", "trunk's", TRUNK_LINE],
    ]
    evidence = dash_duo.driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('#dev-failures-table tr[data-whose]'))"
        ".map(tr => [tr.dataset.whose, (tr.querySelector('.whose-evidence') || {}).href || null]));")
    # The job that shows it: bob's failure on main, the passing job, the earlier failure on bob's branch.
    assert evidence["trunk"] == "https://github.com/o/app/actions/runs/101/job/1010"
    assert evidence["flaky"] == "https://github.com/o/app/actions/runs/105/job/1050"
    assert evidence["known"] == "https://github.com/o/app/actions/runs/107/job/1070"
    assert evidence["yours"] is None
    assert not dash_duo.find_elements("#dev-failures-table b")
    assert not dash_duo.find_elements("#dev-failures-token")
    assert dash_duo.get_logs() == []


def test_dev006_without_a_token_the_section_says_lines_need_one(dash_duo, tmp_path):
    path = str(tmp_path / "webhook-only.db")
    records = [commit("c1", author="alice"), run(1, sha="c1", author="alice", conclusion="failure"),
               _job(1, "CI", "main", "c1", "test", T0, "failure")]
    store_with(path, records).dispose()  # webhook-only: the job is queued for its log, never fetched
    _start(dash_duo, path, "?author=alice&window=all", github_token="")
    dash_duo.wait_for_text_to_equal("#dev-failures-token", "Failure lines need a GitHub token (set GITHUB_TOKEN).",
                                    timeout=20)
    assert _whose(dash_duo) == [["unknown", "no line yet", "needs a GitHub token"]]
    assert dash_duo.find_element("#dev-failures-summary").text == \
        "Your failure has no failure line yet: whose it is is not known."
    dash_duo.wait_for_element(".dev-unfixed-item", timeout=20)  # the rest of the page works as before
    until(lambda: _history_rows(dash_duo), timeout=20)
    assert dash_duo.get_logs() == []
