"""The Waterfall page in headless Chromium (`dash_duo`), on the demo history and on empty stores."""
from urllib.parse import unquote

import pytest
from dash.testing.wait import until
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By

from dashapp import create_app
from dashapp.config import Config
from dashapp.tables import commit_href
from domain import records as r
from failures import Extraction, FailureLine
from ingest.demo import FLAKY_EXAMPLE, RED_STREAK
from store import joblogs
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def demo_db(demo_store):
    return demo_store


def _start(dash_duo, database_path, query=""):
    app = create_app(Config.from_env({}, database_path=database_path, webhook_secret="s"))
    dash_duo.start_server(app)
    dash_duo.driver.set_window_size(1400, 1000)
    if query:
        _open(dash_duo, query)
    else:
        _wait_loaded(dash_duo)
    return app


def _open(dash_duo, query):
    dash_duo.driver.get(dash_duo.server_url + "/" + query)
    _wait_loaded(dash_duo)


def _wait_loaded(dash_duo):
    dash_duo.wait_for_element("#waterfall-page", timeout=20)
    dash_duo.wait_for_element("#commit-grid-table, #wf-grid-empty", timeout=20)


def _url(dash_duo):
    return dash_duo.driver.current_url


def _select(dash_duo, dropdown_id, label):
    """Pick `label` in a dcc.Dropdown (Dash 4: a button opening a list of role=option labels)."""
    dash_duo.find_element(f"#{dropdown_id}").click()
    until(lambda: any(o.text == label for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")),
          timeout=10)
    next(o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == label).click()


def _click(dash_duo, css):
    """Click `css` as a user would: scrolled into the middle of the window first (at once: Bootstrap
    makes scrolling smooth, and a click during the animation lands elsewhere)."""
    def attempt():
        element = dash_duo.find_element(css)
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", element)
        try:
            element.click()
            return True
        except WebDriverException:  # re-rendered or covered meanwhile: find it again
            return False

    until(attempt, timeout=10)


def _cell(dash_duo, sha, workflow):
    return dash_duo.find_element(f"tr[data-sha='{sha}'] td[data-workflow='{workflow}']")


def _grid_shas(dash_duo):
    # In one script, so a re-render between two element lookups cannot break it.
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#commit-grid-table tbody tr')).map(r => r.dataset.sha);")


def test_wf001_page_renders_every_section(dash_duo, demo_db):
    _start(dash_duo, demo_db)
    dash_duo.wait_for_contains_text("#wf-heading-scope", "acme/webapp · main", timeout=10)
    dash_duo.wait_for_contains_text("#wf-notice", "most recent activity")
    assert "%" in dash_duo.find_element("#card-success-rate .metric-value").text
    assert "p50" in dash_duo.find_element("#card-build-time").text
    assert len(_grid_shas(dash_duo)) >= RED_STREAK["length"]
    header = [th.text for th in dash_duo.find_elements("#commit-grid-table thead th")]
    assert "CI" in header
    dash_duo.wait_for_element("#wf-chart-graph .main-svg", timeout=20)
    until(lambda: len(dash_duo.find_elements("#stream-grid .ag-row")) > 5, timeout=20)
    assert "acme/" in dash_duo.find_element("#wf-stream-scope").text or "all repositories" in \
        dash_duo.find_element("#wf-stream-scope").text
    assert dash_duo.find_element("#nav-waterfall").get_attribute("class").count("active") == 1
    assert "active" not in dash_duo.find_element("#nav-triage").get_attribute("class")
    assert dash_duo.get_logs() == []


def test_wf002_red_streak_shows_x_and_flaky_run_shows_f(dash_duo, demo_db):
    _start(dash_duo, demo_db, "?repo=acme/webapp")
    first_bad = RED_STREAK["first_bad_sha"]
    cell = _cell(dash_duo, first_bad, "CI")
    assert cell.text == "X" and cell.get_attribute("data-glyph") == "X"
    link = cell.find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").startswith("https://github.com/acme/webapp/actions/runs/")
    assert "2 attempts" in link.get_attribute("title") and "duration" in link.get_attribute("title")
    row = dash_duo.find_element(f"tr[data-sha='{first_bad}']")
    assert "commit-red" in row.get_attribute("class") and row.get_attribute("data-state") == "red"
    # The streak: CI is X on the newest RED_STREAK["length"] commits, green on the last good one.
    shas = _grid_shas(dash_duo)
    assert [_cell(dash_duo, s, "CI").text for s in shas[:RED_STREAK["length"]]] == ["X"] * RED_STREAK["length"]
    assert _cell(dash_duo, RED_STREAK["last_green_sha"], "CI").text == "O"

    _open(dash_duo, f"?repo={FLAKY_EXAMPLE['repo']}&branch={FLAKY_EXAMPLE['branch']}")
    flaky = _cell(dash_duo, FLAKY_EXAMPLE["sha"], FLAKY_EXAMPLE["workflow"])
    assert flaky.text == "F" and "earlier attempt failed" in flaky.find_element(By.TAG_NAME, "a").get_attribute("title")


def test_wf003_repository_selector_changes_grid_and_url(dash_duo, demo_db):
    _start(dash_duo, demo_db, "?window=30d")
    before = _grid_shas(dash_duo)
    _select(dash_duo, "repo-select", "acme/mobile")
    until(lambda: "repo=acme%2Fmobile" in _url(dash_duo), timeout=10)
    assert "window=30d" in _url(dash_duo)  # the other arguments are kept
    dash_duo.wait_for_contains_text("#wf-heading-scope", "acme/mobile · master", timeout=10)
    until(lambda: _grid_shas(dash_duo) and _grid_shas(dash_duo) != before, timeout=10)
    assert "Nightly" not in dash_duo.find_element("#wf-notice").text
    # The view links carry the selection.
    assert "repo=acme%2Fmobile" in dash_duo.find_element("#nav-triage").get_attribute("href")
    # Back to where we were with the browser's back button.
    dash_duo.driver.back()
    dash_duo.wait_for_contains_text("#wf-heading-scope", "acme/webapp · main", timeout=10)
    dash_duo.wait_for_text_to_equal("#repo-select-value", "All repositories", timeout=10)
    until(lambda: _grid_shas(dash_duo) == before, timeout=10)


def test_wf004_filters_update_the_url(dash_duo, demo_db):
    _start(dash_duo, demo_db, "?repo=acme/webapp")
    _select(dash_duo, "wf-window", "Last 24 hours")
    until(lambda: "window=24h" in _url(dash_duo), timeout=10)
    assert "repo=acme%2Fwebapp" in _url(dash_duo)
    dash_duo.wait_for_text_to_equal("#wf-window .dash-dropdown-value", "Last 24 hours", timeout=10)
    _select(dash_duo, "wf-workflow", "CI")
    until(lambda: "workflow=CI" in _url(dash_duo), timeout=10)
    # Read in one script: the grid may be redrawn between finding a header cell and reading it.
    until(lambda: dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#commit-grid-table thead th.wf-col'))"
        ".map(th => th.textContent.trim());") == ["CI"], timeout=10)


def test_wf005_reload_from_the_url_gives_the_same_page(dash_duo, demo_db):
    query = "?repo=acme/api&branch=main&window=30d&offset=5"
    _start(dash_duo, demo_db, query)
    shas = _grid_shas(dash_duo)
    cards = dash_duo.find_element("#wf-cards").text
    dash_duo.wait_for_text_to_equal("#repo-select-value", "acme/api", timeout=10)
    assert shas and dash_duo.find_element("#wf-page-span").text.startswith("Commits 6–")
    dash_duo.driver.refresh()
    _wait_loaded(dash_duo)
    until(lambda: _grid_shas(dash_duo) == shas, timeout=10)
    until(lambda: dash_duo.find_element("#wf-cards").text == cards, timeout=10)
    dash_duo.wait_for_text_to_equal("#wf-window .dash-dropdown-value", "Last 30 days", timeout=10)
    dash_duo.wait_for_text_to_equal("#repo-select-value", "acme/api", timeout=10)


def test_wf006_paging_to_older_commits(dash_duo, tmp_path):
    records = [commit(f"{i:040x}", time=T0 + i) for i in range(120)]
    records += [run(i + 1, sha=f"{i:040x}", created=T0 + i) for i in range(120)]
    store_with(tmp_path / "paging.db", records).dispose()
    _start(dash_duo, str(tmp_path / "paging.db"), "?repo=o/app&window=all")
    first_page = _grid_shas(dash_duo)
    assert len(first_page) == 50 and first_page[0] == f"{119:040x}"
    assert "disabled" in dash_duo.find_element("#wf-newer").get_attribute("class")
    _click(dash_duo, "#wf-older")
    until(lambda: "offset=50" in _url(dash_duo), timeout=10)
    assert "window=all" in _url(dash_duo)
    until(lambda: _grid_shas(dash_duo)[:1] == [f"{69:040x}"], timeout=10)
    dash_duo.wait_for_text_to_equal("#wf-page-span", "Commits 51–100", timeout=10)
    _click(dash_duo, "#wf-older")
    until(lambda: len(_grid_shas(dash_duo)) == 20, timeout=10)
    assert "disabled" in dash_duo.find_element("#wf-older").get_attribute("class")
    dash_duo.driver.back()
    until(lambda: _grid_shas(dash_duo)[:1] == [f"{69:040x}"], timeout=10)
    _click(dash_duo, "#wf-newer")
    until(lambda: _grid_shas(dash_duo) == first_page, timeout=10)
    assert "offset" not in _url(dash_duo)


def test_wf007_empty_store_shows_empty_states(dash_duo, db_path):
    _start(dash_duo, db_path)
    dash_duo.wait_for_contains_text("#wf-notice", "No builds yet", timeout=10)
    dash_duo.wait_for_contains_text("#wf-grid-empty", "No commits yet", timeout=10)
    dash_duo.wait_for_contains_text("#wf-chart-empty", "No build times", timeout=10)
    dash_duo.wait_for_text_to_equal("#card-success-rate .metric-value", "—", timeout=10)
    assert "NaN" not in dash_duo.find_element("#waterfall-page").text
    assert dash_duo.get_logs() == []


def test_wf008_unknown_repository_and_empty_filter(dash_duo, demo_db):
    _start(dash_duo, demo_db, "?repo=nobody/nothing")
    dash_duo.wait_for_contains_text("#wf-notice", "Unknown repository", timeout=10)
    dash_duo.wait_for_contains_text("#wf-grid-empty", "unknown repository", timeout=10)
    dash_duo.wait_for_text_to_equal("#repo-select-value", "nobody/nothing (unknown)", timeout=10)
    assert "repo=nobody/nothing" in unquote(_url(dash_duo))
    dash_duo.wait_for_text_to_equal("#card-success-rate .metric-value", "—", timeout=10)
    _open(dash_duo, "?repo=acme/webapp&branch=no-such-branch")
    dash_duo.wait_for_contains_text("#wf-grid-empty", "No runs on branch", timeout=10)
    dash_duo.wait_for_element("#wf-chart-empty", timeout=10)
    assert "NaN" not in dash_duo.find_element("#waterfall-page").text


def _failed_job(run_id, gitid, name):
    return r.Job(repo="o/app", gitid=gitid, run_gitid=run_id, run_attempt=1, name=name, workflow_name="CI",
                 head_branch="main", head_sha="c2", status="completed", conclusion="failure", createtime=T0,
                 starttime=T0 + 5, endtime=T0 + 60, runner_name="r", runner_id=1)


def test_wf009_failed_cell_hover_names_the_failure_line(dash_duo, tmp_path):
    path = tmp_path / "lines.db"
    line = "FAILED tests/test_api.py::test_export - AssertionError: <b>'csv'</b> != 'json'"
    records = [commit("c1", time=T0 - 120), run(1, sha="c1", created=T0 - 100),
               commit("c2", time=T0 - 60), run(2, sha="c2", conclusion="failure", created=T0),
               _failed_job(2, 21, "test (ubuntu)"), _failed_job(2, 22, "lint")]
    engine = store_with(path, records)
    with engine.begin() as conn:  # the first job's line was captured; the second's is still queued
        found = FailureLine(rule="pytest", klass="test", text=line, fingerprint="ab" * 8, line=40, source="log")
        joblogs.save(conn, 21, "o/app", Extraction([found], line, 100, False), source="log", now=T0 + 100)
    engine.dispose()
    _start(dash_duo, str(path), "?repo=o/app&window=all")
    title = _cell(dash_duo, "c2", "CI").find_element(By.TAG_NAME, "a").get_attribute("title")
    lines = title.split("\n")
    assert lines[0].startswith("CI: failure")
    assert lines[1] == f"test (ubuntu) — {line} (new)"  # log text stays text; NEW: never seen before
    assert lines[2] == "lint — failure"
    assert lines[3:] == ["Failure lines need a GitHub token (set GITHUB_TOKEN)."]  # this server has none
    assert "\n" not in _cell(dash_duo, "c1", "CI").find_element(By.TAG_NAME, "a").get_attribute("title")
    assert not dash_duo.find_elements("#commit-grid-table b")
    assert dash_duo.get_logs() == []


def _job_cell(dash_duo, sha, workflow, job):
    return dash_duo.find_element(f"tr[data-sha='{sha}'] td[data-workflow='{workflow}'][data-job='{job}']")


def _job_columns(dash_duo):
    return dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#commit-grid-table thead th.wf-job-col'))"
        ".map(th => th.textContent.trim());")


def test_wf010_a_workflow_expands_into_its_jobs_in_place_and_from_the_url(dash_duo, demo_db):
    import time

    from dashapp.components import format_rate
    from store.engine import make_engine
    from store.queries.kpis import trunk_health

    _start(dash_duo, demo_db, "?repo=acme/webapp")
    first_bad, job = RED_STREAK["first_bad_sha"], "test"  # RED_STREAK["job"] is the matrix leg "test (ubuntu-latest)"
    assert not _job_columns(dash_duo)
    dash_duo.driver.execute_script("window.stillThisPage = true;")
    _click(dash_duo, "#commit-grid-table a.wf-expand[data-workflow='CI']")
    until(lambda: "expand=CI" in _url(dash_duo), timeout=10)
    until(lambda: "test" in _job_columns(dash_duo), timeout=10)
    assert dash_duo.driver.execute_script("return window.stillThisPage === true;")  # no reload: in place
    assert _job_cell(dash_duo, first_bad, "CI", job).text == "X"
    assert _cell(dash_duo, first_bad, "CI").text == "X"  # the workflow's own column stays
    assert _job_cell(dash_duo, RED_STREAK["last_green_sha"], "CI", job).text == "O"
    title = _job_cell(dash_duo, first_bad, "CI", job).find_element(By.TAG_NAME, "a").get_attribute("title")
    lines = title.split("\n")
    assert lines[0] == "CI / test: failure · 2 jobs"
    assert lines[1].startswith(f"{RED_STREAK['job']} — failure")  # the failing leg first, with its line
    assert len(lines[1].split(" — ")) == 3 and lines[2].startswith("test (windows-latest) — success")
    assert "build" in _job_columns(dash_duo) and "Lint" not in _job_columns(dash_duo)

    # A reload, and the shared link, draw the same expansion (the first screen too).
    dash_duo.driver.refresh()
    _wait_loaded(dash_duo)
    until(lambda: _job_columns(dash_duo) and _job_cell(dash_duo, first_bad, "CI", job).text == "X", timeout=10)
    assert "expand=CI" in _url(dash_duo)

    # The trunk health strip: the default branch in the window, as the query computes it.
    engine = make_engine(demo_db)
    with engine.connect() as conn:
        expected = trunk_health(conn, "acme/webapp", since=time.time() - 7 * 86400)
    engine.dispose()
    dash_duo.wait_for_contains_text("#wf-kpi-strip", "Trunk health", timeout=10)
    assert dash_duo.find_element("#kpi-red .kpi-value").text == format_rate(expected["red_share"])
    assert "main · last 7 days" in dash_duo.find_element("#wf-kpi-strip .kpi-scope").text
    assert dash_duo.find_element("#kpi-signal .kpi-value").text.startswith("p50 ")

    # Collapsing again drops it from the URL.
    _click(dash_duo, "#commit-grid-table a.wf-expand[data-workflow='CI']")
    until(lambda: "expand" not in _url(dash_duo), timeout=10)
    until(lambda: not _job_columns(dash_duo), timeout=10)
    assert dash_duo.get_logs() == []


def test_wf011_shas_open_their_commit_page_here_in_place(dash_duo, tmp_path):
    path = tmp_path / "shas.db"
    store_with(path, [commit("c1", time=T0 - 120), run(1, sha="c1", created=T0 - 100),
                      commit("c2", time=T0 - 60, message="fix: <b>it</b>"),
                      run(2, sha="c2", conclusion="failure", created=T0)]).dispose()
    _start(dash_duo, str(path), "?repo=o/app&window=all")
    # The grid's sha and the build stream's: this site's commit page, as `commit_href` writes it.
    sha = dash_duo.find_element("tr[data-sha='c2'] a.wf-sha")
    assert (sha.text, sha.get_attribute("href")) == ("c2", dash_duo.server_url + commit_href("o/app", "c2"))
    until(lambda: len(dash_duo.find_elements("#stream-grid .ag-row a.commit-link")) == 2, timeout=20)
    stream = dash_duo.find_element("#stream-grid .ag-row[row-id='2'] .ag-cell[col-id='commit']")
    assert stream.text == "c2 fix: <b>it</b>"
    assert stream.find_element(By.CSS_SELECTOR, "a").get_attribute("href") == \
        dash_duo.server_url + commit_href("o/app", "c2")

    # Followed in place, as a dcc.Link: the page's JavaScript stays (a reload would drop the marker).
    dash_duo.driver.execute_script("window.__same_page = true;")
    _click(dash_duo, "tr[data-sha='c2'] a.wf-sha")
    dash_duo.wait_for_element("#commit-page #cm-summary", timeout=20)
    assert _url(dash_duo) == dash_duo.server_url + commit_href("o/app", "c2")
    assert dash_duo.driver.execute_script("return window.__same_page === true;")
    dash_duo.driver.back()
    _wait_loaded(dash_duo)
    until(lambda: dash_duo.find_elements("#stream-grid .ag-row[row-id='1'] a.commit-link"), timeout=20)
    _click(dash_duo, "#stream-grid .ag-row[row-id='1'] a.commit-link")
    dash_duo.wait_for_element("#commit-page #cm-summary", timeout=20)
    assert _url(dash_duo) == dash_duo.server_url + commit_href("o/app", "c1")
    assert dash_duo.driver.execute_script("return window.__same_page === true;")

    # The grids' JavaScript writes every href as `commit_href` does (the repository quoted the same way).
    cases = [["o/app", "c2"], ["", "abc"], [None, "abc"], ["o/<b>r</b>&\"'!()*~ é+%20", "ABC123"],
             ["o/app", "a" * 64], ["o/app", "a" * 65], ["o/app", "ab-c"], ["o/app", ""], ["o/app", None]]
    drawn = dash_duo.driver.execute_script(
        "return arguments[0].map(c => window.dashAgGridFunctions.wfCommitHref(c[0], c[1]));", cases)
    assert drawn == [commit_href(repo, sha) for repo, sha in cases]
    assert dash_duo.get_logs() == []
