"""The Runners page in headless Chromium (`dash_duo`): a small hand-made store, the demo, an empty store."""
import os
from pathlib import Path

import pytest
from dash.testing import wait
from selenium.webdriver.common.by import By

from dashapp import create_app
from dashapp.config import Config
from tests.builders import store_with
from tests.test_queries_runners import history

pytestmark = pytest.mark.browser
SECTIONS = ("rn-labels", "rn-groups", "rn-waiting", "rn-hours", "rn-billing")
SHOTS = Path(os.environ.get("RUNNERS_SHOTS", "/work/notes/shots"))


def _start(dash_duo, database_path, query=""):
    app = create_app(Config.from_env({}, database_path=database_path, webhook_secret="s"))
    dash_duo.start_server(app)
    dash_duo.driver.get(dash_duo.server_url + "/runners" + query)
    dash_duo.wait_for_element("#runners-page", timeout=20)
    for section in SECTIONS:
        dash_duo.wait_for_element(f"#{section} > *", timeout=30)
    return app


def _cells(dash_duo, grid_id) -> dict:
    """{first column's text: [the row's cell texts]} of a grid as drawn."""
    out = {}
    for row in dash_duo.driver.find_elements(By.CSS_SELECTOR, f"#{grid_id} .ag-center-cols-container .ag-row"):
        cells = [c.text for c in row.find_elements(By.CSS_SELECTOR, ".ag-cell")]
        out[cells[0]] = cells
    return out


def test_rn001_per_label_queue_times_equal_the_hand_computation(dash_duo, tmp_path):
    store_with(tmp_path / "runners.db", history()).dispose()
    app = _start(dash_duo, str(tmp_path / "runners.db"), "?repo=o/app&window=all")
    dash_duo.wait_for_element("#rn-labels-grid .ag-row", timeout=20)
    wait.until(lambda: len(_cells(dash_duo, "rn-labels-grid")) == 3, timeout=10)
    rows = _cells(dash_duo, "rn-labels-grid")
    # Columns: labels, jobs, started, p50, p90, p99.  ubuntu-latest's started jobs queued 10, 20, 30, 40 and
    # 100 s: p50 30 s, p90 40 + 0.6 × 60 = 76 s, p99 40 + 0.96 × 60 = 97.6 s (drawn to the second).
    assert rows["ubuntu-latest"] == ["ubuntu-latest", "6", "5", "30s", "1m 16s", "1m 38s"]
    # 5 and 15 s: p50 10, p90 14, p99 14.9 s; 5 jobs, 3 of them never started (queued now, one of a stale run).
    assert rows["linux, self-hosted, x64"] == ["linux, self-hosted, x64", "5", "2", "10s", "14s", "15s"]
    assert rows["windows-latest"] == ["windows-latest", "1", "1", "1m 00s", "1m 00s", "1m 00s"]
    # The exact values behind the cells.
    exact = dash_duo.driver.execute_script(
        "var out = {}; dash_ag_grid.getApi('rn-labels-grid').forEachNode(function (n) {"
        " out[n.data.label_set] = [n.data.p50, n.data.p90, n.data.p99]; }); return out;")
    assert exact["ubuntu-latest"] == pytest.approx([30.0, 76.0, 97.6])
    assert exact["linux, self-hosted, x64"] == pytest.approx([10.0, 14.0, 14.9])
    # Per runner group, and the minutes (CI: 61 s + 59 s + 120 s = 2 + 1 + 2; Lint 0.5 s + 3600 s = 1 + 60).
    groups = _cells(dash_duo, "rn-groups-grid")
    assert groups["GitHub Actions"][1:4] == ["5", "5", "30s"] and groups["(not recorded)"][1:3] == ["5", "1"]
    assert dash_duo.find_element("#rn-card-billable .metric-value").text == "70"  # 5 + 61 + 90 s × 2 on Windows
    assert dash_duo.find_element("#rn-card-self-hosted .metric-value").text == "11"  # 300 s + 301 s: 5 + 6
    app.server.extensions["buildmon"].close()


def test_rn002_the_demo_page_light_and_dark(dash_duo, demo_store):
    dash_duo.driver.set_window_size(1400, 2400)  # before the page draws: its figures size to the window
    app = _start(dash_duo, demo_store, "?window=30d")
    for element in ("#rn-labels-grid", "#rn-queue-graph", "#rn-groups-grid", "#rn-hours-graph", "#rn-billing-grid",
                    "#rn-card-macos"):
        dash_duo.wait_for_element(element, timeout=20)
    labels = _cells(dash_duo, "rn-labels-grid")
    assert "ubuntu-latest" in labels and "macos-14" in labels
    assert "linux, perf, self-hosted, x64" in labels
    hosting = dash_duo.driver.execute_script(
        "var out = []; dash_ag_grid.getApi('rn-billing-grid').forEachNode(function (n) {"
        " out.push([n.data.hosting, n.data.os, n.data.billable]); }); return out;")
    assert ["self-hosted", "Linux", 0] in hosting and any(h == "GitHub-hosted" and b > 0 for h, _os, b in hosting)
    SHOTS.mkdir(parents=True, exist_ok=True)
    dash_duo.driver.save_screenshot(str(SHOTS / "runners-light.png"))
    dash_duo.find_element("#theme-switch").click()
    wait.until(lambda: dash_duo.driver.execute_script(
        "return document.documentElement.getAttribute('data-bs-theme')") == "dark", timeout=10)
    # The figures are redrawn with plotly's dark template (its font colour) before the shot.
    wait.until(lambda: dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll("
        "'#rn-hours-graph .js-plotly-plot, #rn-queue-graph .js-plotly-plot'))"
        ".every(function (g) { return g._fullLayout && g._fullLayout.font.color === '#f2f5fa'; })"), timeout=20)
    dash_duo.driver.save_screenshot(str(SHOTS / "runners-dark.png"))
    app.server.extensions["buildmon"].close()


def test_rn003_empty_store_and_unknown_repository(dash_duo, tmp_path):
    store_with(tmp_path / "empty.db", []).dispose()
    app = _start(dash_duo, str(tmp_path / "empty.db"))
    assert "No builds yet." in dash_duo.find_element("#rn-notice").text
    for element in ("#rn-queue-empty", "#rn-groups-empty", "#rn-waiting-empty", "#rn-hours-empty",
                    "#rn-billing-empty"):
        dash_duo.wait_for_element(element, timeout=10)
    app.server.extensions["buildmon"].close()


def test_rn004_unknown_repository_and_a_quiet_window(dash_duo, tmp_path):
    store_with(tmp_path / "runners.db", history()).dispose()
    app = _start(dash_duo, str(tmp_path / "runners.db"), "?repo=nobody/nothing")
    assert "Unknown repository" in dash_duo.find_element("#rn-notice").text
    dash_duo.wait_for_element("#rn-queue-empty", timeout=10)
    dash_duo.driver.get(dash_duo.server_url + "/runners?repo=o/app&window=24h")  # the history is from 2023
    dash_duo.wait_for_element("#runners-page", timeout=20)
    dash_duo.wait_for_text_to_equal("#rn-queue-empty .empty-message", "No jobs in the last 24 hours.", timeout=20)
    dash_duo.wait_for_element("#rn-billing-empty", timeout=10)
    app.server.extensions["buildmon"].close()
