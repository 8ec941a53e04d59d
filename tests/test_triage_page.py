"""The Triage page in headless Chromium (`dash_duo`), on the demo history and on empty stores."""
import time

import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By
from sqlalchemy import text

from dashapp import create_app
from dashapp.config import Config
from dashapp.tables import commit_href
from ingest.demo import FLAKY_EXAMPLE, RED_STREAK, demo_facts
from store.engine import make_engine

pytestmark = pytest.mark.browser
SECTIONS = ("#tr-broken-table", "#tr-failures-grid", "#tr-analysis-grid", "#tr-flaky-grid")
SECTION_IDS = ("tr-causes", "tr-broken", "tr-failures", "tr-analysis", "tr-flaky")


@pytest.fixture(scope="module")
def demo_db(demo_store):
    engine = make_engine(demo_store)
    facts = demo_facts(engine)
    engine.dispose()
    return demo_store, facts


def _start(dash_duo, database_path, query=""):
    app = create_app(Config.from_env({}, database_path=database_path, webhook_secret="s"))
    dash_duo.start_server(app)
    _open(dash_duo, query)
    return app


def _open(dash_duo, query=""):
    dash_duo.driver.get(dash_duo.server_url + "/triage" + query)
    dash_duo.wait_for_element("#triage-page", timeout=20)
    for section in SECTION_IDS:
        dash_duo.wait_for_element(f"#{section} > *", timeout=30)


def _select(dash_duo, dropdown_id, label):
    """Pick `label` in a dcc.Dropdown (Dash 4: a button opening a list of role=option labels)."""
    dash_duo.find_element(f"#{dropdown_id}").click()
    until(lambda: any(o.text == label for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]")),
          timeout=10)
    next(o for o in dash_duo.driver.find_elements(By.CSS_SELECTOR, "[role=option]") if o.text == label).click()


def _select_until(dash_duo, dropdown_id, label, done, tries=3):
    """`_select`, again if the page was re-rendered under the click, until `done()`."""
    for attempt in range(tries):
        try:
            _select(dash_duo, dropdown_id, label)
            until(done, timeout=10)
            return
        except Exception:
            if attempt == tries - 1:
                raise
            _open_same(dash_duo)


def _rows(dash_duo, table_id):
    """The rows of a grid (AG Grid's) or of a sortable markup table (`dashapp.sorttable`)."""
    return dash_duo.driver.find_elements(
        By.CSS_SELECTOR, f"#{table_id} .ag-center-cols-container .ag-row, table#{table_id} > tbody > tr")


def _broken_row(dash_duo, repo, workflow):
    return dash_duo.find_element(f"tr.tr-broken-row[data-repo='{repo}'][data-workflow='{workflow}']")


def test_tr001_every_section_filled_and_red_streak_in_broken_main(dash_duo, demo_db):
    path, _facts = demo_db
    _start(dash_duo, path)
    for section in SECTIONS:
        dash_duo.wait_for_element(section, timeout=20)
    for grid in ("tr-failures-grid", "tr-analysis-grid", "tr-flaky-grid"):
        until(lambda: _rows(dash_duo, grid), timeout=20)
    row = _broken_row(dash_duo, RED_STREAK["repo"], RED_STREAK["workflow"])
    assert f"{RED_STREAK['length']} red" in row.text
    sha = row.find_element(By.CSS_SELECTOR, ".tr-first-bad-sha")
    assert sha.text == RED_STREAK["first_bad_sha"][:7]
    assert sha.get_attribute("href") == \
        dash_duo.server_url + commit_href(RED_STREAK["repo"], RED_STREAK["first_bad_sha"])
    assert RED_STREAK["first_bad_title"] in row.find_element(By.CSS_SELECTOR, ".tr-first-bad-title").text
    assert row.find_element(By.CSS_SELECTOR, ".tr-first-bad-author").text == RED_STREAK["first_bad_author"]
    # The streak's failures are one group: same workflow, job and step.
    failures = dash_duo.find_element("#tr-failures-grid").text
    assert RED_STREAK["job"] in failures and RED_STREAK["step"] in failures
    assert dash_duo.get_logs() == []


def test_tr002_known_flaky_run_listed(dash_duo, demo_db):
    path, facts = demo_db
    flaky = facts["flaky_example"]
    _start(dash_duo, path, f"?repo={FLAKY_EXAMPLE['repo']}&workflow={FLAKY_EXAMPLE['workflow']}&window=30d")
    row = dash_duo.wait_for_element(f"#tr-flaky-grid .ag-row[row-id='{flaky['run_gitid']}']", timeout=20)
    assert "failure → success" in row.text and FLAKY_EXAMPLE["sha"][:7] in row.text
    link = row.find_element(By.CSS_SELECTOR, "a")
    assert link.get_attribute("href") == flaky["run_url"]
    sha = row.find_element(By.CSS_SELECTOR, ".ag-cell[col-id='commit'] a.commit-link")
    assert sha.text == FLAKY_EXAMPLE["sha"][:7]
    assert sha.get_attribute("href") == dash_duo.server_url + commit_href(FLAKY_EXAMPLE["repo"], FLAKY_EXAMPLE["sha"])
    counts = dash_duo.find_element("#tr-flaky-counts")
    assert FLAKY_EXAMPLE["workflow"] in counts.text


def _failing_recently(path: str, repo: str) -> str:
    """A workflow of `repo` other than CI with a failed run in the last 30 days (the demo's times follow the
    clock: a fixed workflow over a 24-hour window failed this test at some times of day)."""
    engine = make_engine(path)
    with engine.connect() as conn:
        names = conn.execute(text(
            "SELECT DISTINCT archivedworkflowname FROM workflowruns WHERE repo = :repo AND status = 'completed'"
            " AND conclusion IN ('failure', 'timed_out', 'startup_failure') AND createtime >= :since"
            " AND archivedworkflowname != 'CI' ORDER BY 1"), {"repo": repo, "since": time.time() - 30 * 86400}
        ).scalars().all()
    engine.dispose()
    assert names, "the demo has failures beside CI's in the last 30 days"
    return names[0]


def test_tr003_filters_update_url_reload_and_back(dash_duo, demo_db):
    path, _facts = demo_db
    workflow = _failing_recently(path, "acme/webapp")
    _start(dash_duo, path, "?repo=acme/webapp")
    until(lambda: _rows(dash_duo, "tr-failures-grid"), timeout=20)
    before = _broken_summary(dash_duo)
    _select_until(dash_duo, "tr-window", "Last 30 days", lambda: "window=30d" in dash_duo.driver.current_url)
    assert "repo=acme%2Fwebapp" in dash_duo.driver.current_url  # the other arguments are kept
    until(lambda: _text(dash_duo, "#tr-window").startswith("Last 30 days"), timeout=20)  # re-rendered
    _open_same(dash_duo)
    _select_until(dash_duo, "tr-workflow", workflow, lambda: f"workflow={workflow}" in dash_duo.driver.current_url)
    until(lambda: _text(dash_duo, "#tr-broken") and "CI" not in _text(dash_duo, "#tr-broken"), timeout=20)
    _open_same(dash_duo)  # let the re-rendered sections settle
    url = dash_duo.driver.current_url
    until(lambda: _view(dash_duo)[2], timeout=20)
    shown = _view(dash_duo)
    # Reloading the URL gives the same view.
    dash_duo.driver.get(url)
    _open_same(dash_duo)
    # (40 s: the other test worker may hold a core while the grids draw again; 20 s once ran out in CI.)
    until(lambda: _view(dash_duo) == shown, timeout=40)
    assert dash_duo.find_element("#tr-window").text.startswith("Last 30 days")
    # Back to the first selection.
    dash_duo.driver.back()
    dash_duo.driver.back()
    until(lambda: "window=" not in dash_duo.driver.current_url, timeout=10)
    until(lambda: _text(dash_duo, "#tr-window").startswith("Last 7 days"), timeout=30)
    until(lambda: _broken_summary(dash_duo) == before, timeout=30)
    until(lambda: _rows(dash_duo, "tr-failures-grid"), timeout=20)


def _view(dash_duo):
    """What the selection shows, without the times that tick ("5m ago", "red for")."""
    return (_text(dash_duo, "#tr-heading-scope"), _broken_summary(dash_duo),
            _column(dash_duo, "tr-failures-grid", 2), _column(dash_duo, "tr-analysis-grid", 2))


def _column(dash_duo, table_id, number):
    """The texts of a markup table's column `number` (1 is the first), top to bottom."""
    return dash_duo.driver.execute_script(  # in one go: a redraw between reads leaves no stale cell
        "return Array.from(document.querySelectorAll(arguments[0]), td => td.innerText.trim())",
        f"table#{table_id} > tbody > tr > td:nth-child({number})")


def _broken_summary(dash_duo):
    """Workflow, streak and first bad commit of every Broken main row (not "red for", which ticks)."""
    try:
        return [(r.get_attribute("data-repo"), r.get_attribute("data-workflow"),
                 r.find_element(By.CSS_SELECTOR, ".badge").text, r.find_element(By.CSS_SELECTOR, ".tr-first-bad-sha").text)
                for r in dash_duo.driver.find_elements(By.CSS_SELECTOR, "tr.tr-broken-row")]
    except Exception:  # replaced while reading
        return None


def _text(dash_duo, selector):
    try:
        return dash_duo.find_element(selector).text
    except Exception:  # replaced while reading
        return ""


def _open_same(dash_duo):
    dash_duo.wait_for_element("#triage-page", timeout=20)
    for section in SECTION_IDS:
        dash_duo.wait_for_element(f"#{section} > *", timeout=30)


def test_tr004_unknown_repository_shows_empty_states(dash_duo, demo_db):
    path, _facts = demo_db
    _start(dash_duo, path, "?repo=nobody/none")
    assert "Unknown repository" in dash_duo.find_element("#tr-notice").text
    for section in SECTION_IDS:
        assert dash_duo.find_element(f"#{section}-empty").is_displayed()
    assert dash_duo.get_logs() == []


def test_tr005_empty_database(dash_duo, tmp_path):
    _start(dash_duo, str(tmp_path / "empty.db"))
    assert "No builds yet" in dash_duo.find_element("#tr-notice").text
    # A setup with no GITHUB_TOKEN says what failure lines need, before anything failed.
    assert "Failure lines need a GitHub token" in dash_duo.find_element("#tr-capture-note").text
    for section in SECTION_IDS:
        assert dash_duo.find_element(f"#{section}-empty").is_displayed()
    assert "Traceback" not in dash_duo.driver.page_source and "NaN" not in dash_duo.find_element("#triage-page").text


def test_tr006_quiet_window_shows_empty_sections(dash_duo, demo_db):
    path, _facts = demo_db
    _start(dash_duo, path, "?repo=acme/mobile&window=1h&workflow=Release")
    assert "No failed builds in the last hour" in dash_duo.find_element("#tr-failures").text
    assert dash_duo.find_element("#tr-flaky-empty").is_displayed()


def test_tr007_flaky_jobs_with_rate_bound_and_quarantine(dash_duo, demo_db):
    """The flaky section's per-job table says what `flaky_jobs` says for the selection (the demo's flaky run
    makes its job flaky), with the minimum sample and `/api/flaky` in its note."""
    from store.queries import flakes
    from store.queries.filters import Filters

    path, _facts = demo_db
    _start(dash_duo, path, f"?repo={FLAKY_EXAMPLE['repo']}&window=30d")
    engine = make_engine(path)
    with engine.connect() as conn:
        # A window past 7 days shows the last 7 days' flake rates (the table's cost grows with its jobs).
        expected = flakes.flaky_jobs(conn, Filters(repo=FLAKY_EXAMPLE["repo"], since=time.time() - 7 * 86400),
                                     limit=50)
    engine.dispose()
    assert any(r["job"] == FLAKY_EXAMPLE["job"].split(" (")[0] and r["workflow"] == FLAKY_EXAMPLE["workflow"]
               for r in expected)
    table = dash_duo.wait_for_element("#tr-flaky-jobs-table", timeout=30)
    rows = table.find_elements(By.CSS_SELECTOR, "tr.fi-flaky-row")
    assert [r.get_attribute("data-job") for r in rows] == [r["job"] for r in expected]
    for row, want in zip(rows, expected):
        cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, "td")]
        assert cells[0] == want["job"] and cells[1] == want["workflow"]  # one repository: no repository column
        assert cells[2].split()[0] == str(want["runs"]) and cells[3] == str(want["flaky"])
        assert cells[5] == f"{100 * want['rate']:.1f} %" and cells[6] == f"{100 * want['wilson_low']:.1f} %"
        assert (cells[7] == "quarantine") == want["quarantine"]
    note = dash_duo.find_element("#tr-flaky-jobs-note").text
    assert f"at least {flakes.MIN_RUNS} such runs" in note and "/api/flaky" in note and "last 7 days" in note


def _click(dash_duo, element):
    """Click `element` scrolled to the middle of the window at once (Bootstrap scrolls smoothly: Selenium would
    click where the element was)."""
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", element)
    element.click()


def _numbers(dash_duo, table_id, number):
    return [int(t.replace(",", "").split()[0]) for t in _column(dash_duo, table_id, number)]


def test_tr008_markup_tables_sort_by_header_and_keep_it_when_redrawn(dash_duo, demo_store, tmp_path):
    """Build analysis and Failed builds are markup tables: a header click sorts the rows (numbers as numbers),
    a second click turns them around, and a redraw with new data (a delivery, then the live bump) keeps the
    reader's sort."""
    import json

    from tests.helpers import copy_store, fixture_json, post

    path = copy_store(demo_store, tmp_path)  # this test writes: its own copy of the demo
    app = _start(dash_duo, path)
    until(lambda: len(_rows(dash_duo, "tr-analysis-grid")) > 3, timeout=30)
    # As served: most failures first, and the header says so.
    failures = _numbers(dash_duo, "tr-analysis-grid", 4)
    assert failures == sorted(failures, reverse=True)
    header = dash_duo.find_element("#tr-analysis-grid th:nth-child(3)")
    assert header.text.startswith("Runs") and header.get_attribute("aria-sort") is None
    _click(dash_duo, header)
    until(lambda: _numbers(dash_duo, "tr-analysis-grid", 3) == sorted(_numbers(dash_duo, "tr-analysis-grid", 3),
                                                                       reverse=True), timeout=10)
    assert header.get_attribute("aria-sort") == "descending"
    assert dash_duo.find_element("#tr-analysis-grid th:nth-child(4)").get_attribute("aria-sort") is None
    _click(dash_duo, header)
    until(lambda: _numbers(dash_duo, "tr-analysis-grid", 3) == sorted(_numbers(dash_duo, "tr-analysis-grid", 3)),
          timeout=10)
    runs_before = _numbers(dash_duo, "tr-analysis-grid", 3)
    assert runs_before != sorted(runs_before, reverse=True)  # the demo's counts differ: the order did turn

    # A new workflow's run arrives: the table is drawn again from the server, in the server's order...
    payload = fixture_json("workflow_run/completed.payload.json")
    payload["workflow_run"].update(id=990001, name="Sort check", created_at=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60)), updated_at=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 30)))
    assert post(dash_duo.server_url, "workflow_run", json.dumps(payload).encode(), secret="s").status_code == 202
    app.server.extensions["buildmon"].settle()
    dash_duo.driver.execute_script("window.dash_clientside.set_props('live-version', {data: Date.now()})")
    until(lambda: any("Sort check" in t for t in _column(dash_duo, "tr-analysis-grid", 1)), timeout=30)
    # ... and sorted again as the reader left it: fewest runs first.
    until(lambda: _numbers(dash_duo, "tr-analysis-grid", 3) == sorted(_numbers(dash_duo, "tr-analysis-grid", 3)),
          timeout=10)
    assert dash_duo.find_element("#tr-analysis-grid th:nth-child(3)").get_attribute("aria-sort") == "ascending"

    # The keyboard sorts too: Enter on a focused header.
    from selenium.webdriver.common.keys import Keys
    first_seen = dash_duo.find_element("#tr-failures-grid th:nth-child(5)")
    assert first_seen.text.startswith("First seen")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", first_seen)
    first_seen.send_keys(Keys.ENTER)
    until(lambda: first_seen.get_attribute("aria-sort") == "descending", timeout=10)
    assert dash_duo.get_logs() == []
