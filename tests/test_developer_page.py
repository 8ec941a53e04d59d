"""The Developer page in headless Chromium (`dash_duo`), on the demo history and on an empty store."""
import pytest
from dash.testing.wait import until
from selenium.webdriver.common.by import By

from dashapp import create_app
from dashapp.config import Config
from ingest.demo import FLAKY_EXAMPLE, RED_STREAK
from store.engine import make_engine
from store.queries.developer import history, unfixed_failures
from store.queries.filters import Filters

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


def _start(dash_duo, database_path, query=""):
    app = create_app(Config.from_env({}, database_path=database_path, webhook_secret="s"))
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
    until(lambda: all(r.find_element(By.CSS_SELECTOR, "[col-id=conclusion]").text == "X"
                      for r in _history_rows(dash_duo)), timeout=20)


def test_dev004_unknown_author_and_empty_store(dash_duo, demo_db, tmp_path):
    path, _expected = demo_db
    _start(dash_duo, path, "?author=no-such-login")
    dash_duo.wait_for_contains_text("#dev-notice", "Unknown author", timeout=20)
    assert not dash_duo.find_elements("#dev-history")
    dash_duo.server.stop()
    _start(dash_duo, str(tmp_path / "empty.db"), f"?author={AUTHOR}")
    dash_duo.wait_for_contains_text("#dev-notice", "No builds yet", timeout=20)
    assert "Traceback" not in dash_duo.driver.page_source
