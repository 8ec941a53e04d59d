"""Security headers (dashapp/headers.py): on every answer, and a policy under which every page works."""
import json
import re
import sqlite3
from pathlib import Path

import pytest
import requests
from dash.testing import wait

from dashapp import create_app
from dashapp.config import Config
from dashapp.headers import script_hash
from ingest.demo import RED_STREAK
from live import ws as live_ws
from tests.helpers import SECRET, LiveServer, fixture_json, post

HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}
PAGES = ("/", "/triage", "/developer?author=x")


def directives(policy: str) -> dict[str, list[str]]:
    return {name: sources for name, *sources in (part.split() for part in policy.split(";") if part.strip())}


def inline_scripts(html: str) -> list[str]:
    """The text of every inline script a browser runs (not JSON data, not inside comments)."""
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    return [body for attrs, body in re.findall(r"<script\b([^>]*)>(.*?)</script>", html, flags=re.S)
            if "src=" not in attrs and "application/json" not in attrs]


def assert_headers(answer, policy=None):
    for name, value in HEADERS.items():
        assert answer.headers.get(name) == value, (answer.url, name)
    if policy is not None:
        assert answer.headers.get("Content-Security-Policy") == policy, answer.url


def test_every_answer_carries_the_headers(server):
    page = requests.get(server.url + "/", timeout=30)
    policy = page.headers["Content-Security-Policy"]
    assert_headers(page, policy)
    bundle = re.search(r'<script defer src="([^"]+)"', page.text).group(1)  # a Dash component bundle
    for path in (*PAGES[1:], "/no-such-page", "/assets/live.js", "/assets/app.css", bundle, "/_dash-layout",
                 "/_dash-dependencies", "/api/builds", "/api/metrics", "/api/builds.csv", "/api/openapi.json",
                 "/api/runs/1", "/api/builds?window=nonsense", "/healthz", "/metrics"):
        answer = requests.get(server.url + path, timeout=30)
        assert_headers(answer, policy)
    callback = requests.post(server.url + "/_dash-update-component", json={}, timeout=30)  # a refused callback
    assert_headers(callback, policy)
    # The webhook answers in front of Flask: JSON, never sniffed.
    accepted = post(server.url, "ping", json.dumps({"zen": "hi"}).encode())
    refused = post(server.url, "ping", b"{}", secret="wrong")
    assert (accepted.status_code, refused.status_code) == (202, 401)
    for answer in (accepted, refused):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Content-Type"] == "application/json"


def test_refusals_of_a_protected_server_carry_the_headers(db_path):
    app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET, api_tokens="t0ken"))
    try:
        with LiveServer(app) as server:
            for path in ("/", "/api/builds", "/api/builds.csv", "/_dash-layout"):
                answer = requests.get(server.url + path, timeout=30)
                assert answer.status_code == 401
                assert_headers(answer)
                assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
            allowed = requests.get(server.url + "/api/builds", headers={"Authorization": "Bearer t0ken"}, timeout=30)
            assert allowed.status_code == 200
            assert_headers(allowed)
    finally:
        app.server.extensions["buildmon"].close()


def test_the_policy_is_strict_and_names_each_inline_script_of_each_page(server):
    policy = None
    for path in (*PAGES, "/?repo=acme/webapp"):
        page = requests.get(server.url + path, timeout=30)
        policy = directives(page.headers["Content-Security-Policy"])
        scripts = inline_scripts(page.text)
        assert len(scripts) >= 2  # the renderer and the clientside callbacks at least
        for body in scripts:
            assert script_hash(body) in policy["script-src"], (path, body[:80])
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"][0] == "'self'"
    assert all(source.startswith("'sha256-") for source in policy["script-src"][1:])  # no 'unsafe-*', no host
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["img-src"] == ["'self'", "data:", "blob:"]
    assert policy["connect-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'self'"] and policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]


# --- in Chromium -------------------------------------------------------------------------------------

RUN = fixture_json("workflow_run/completed.payload.json")
# Recorded by Chromium, outside the page's policy, before any of the page's own scripts run.
WATCH_VIOLATIONS = """window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', function (e) {
  window.__cspViolations.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
});"""


@pytest.fixture
def demo_copy(demo_store, tmp_path):
    """A copy of the demo history, for a server that also takes deliveries."""
    path = str(tmp_path / "demo.db")
    with sqlite3.connect(demo_store) as source, sqlite3.connect(path) as target:
        source.backup(target)
    return path


def run_payload(run_id: int) -> bytes:
    payload = json.loads(json.dumps(RUN))
    payload["workflow_run"].update(id=run_id, head_sha=f"{run_id:040x}", created_at="2030-01-01T00:00:00Z")
    payload["workflow_run"]["head_commit"]["id"] = f"{run_id:040x}"
    return json.dumps(payload).encode()


class Browser:
    """dash_duo's Chromium, every console message and policy violation kept."""

    def __init__(self, dash_duo, base_url, shots):
        self.duo, self.driver, self.base_url, self.shots = dash_duo, dash_duo.driver, base_url, shots
        self.console, self.violations = [], []
        self.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH_VIOLATIONS})
        self.driver.set_window_size(1400, 1000)

    def open(self, path):
        self.collect()
        self.driver.get(self.base_url + path)
        self.duo.wait_for_text_to_equal("#live-badge", "live", timeout=30)  # the WebSocket is open

    def collect(self):
        self.console += self.driver.get_log("browser")
        found = self.driver.execute_script("return window.__cspViolations || []")
        self.violations += [v for v in found if v not in self.violations]

    def rows(self, grid):
        return len(self.driver.find_elements(
            "css selector", f"#{grid} .ag-center-cols-container .ag-row, table#{grid} > tbody > tr"))

    def shot(self, name):
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))


def _check_pages(browser, theme, server):
    duo = browser.duo
    browser.open("/?repo=" + RED_STREAK["repo"])
    duo.wait_for_element("#commit-grid-table tbody tr", timeout=30)
    duo.wait_for_element("#wf-chart-graph .scatterlayer .trace path.js-line", timeout=30)  # the chart is drawn
    wait.until(lambda: browser.rows("stream-grid") > 5, timeout=30)
    browser.shot(f"waterfall-{theme}")
    chart = duo.find_element("#wf-chart-graph")
    browser.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'});", chart)
    browser.shot(f"waterfall-chart-{theme}")
    if theme == "light":  # Plotly's "Download plot" draws the chart as a blob: image (once: Chrome allows one)
        duo.find_element('#wf-chart-graph .modebar-btn[data-title^="Download plot"]').click()
        wait.until(lambda: list(Path(duo.download_path).glob("*.png")), timeout=20)

    browser.open("/")  # all repositories: the build stream shows a run of any
    run_id = 777001 if theme == "light" else 777002
    assert post(server.url, "workflow_run", run_payload(run_id)).status_code == 202
    duo.wait_for_element(f'#stream-grid .ag-row[row-id="{run_id}"]', timeout=20)  # pushed over /ws

    browser.open("/triage")
    for grid in ("tr-failures-grid", "tr-analysis-grid", "tr-flaky-grid"):
        wait.until(lambda: browser.rows(grid) > 0, timeout=30)
    duo.wait_for_element("#tr-broken-table", timeout=30)
    browser.shot(f"triage-{theme}")

    browser.open(f"/developer?author={RED_STREAK['first_bad_author']}&window=all")
    duo.wait_for_contains_text("#card-success-rate", "%", timeout=30)
    wait.until(lambda: browser.rows("dev-history") > 0, timeout=30)
    browser.shot(f"developer-{theme}")

    browser.open("/no-such-page")
    duo.wait_for_element("#_pages_content > *", timeout=30)
    browser.shot(f"not-found-{theme}")
    browser.collect()


@pytest.mark.browser
def test_every_page_works_under_the_policy_with_no_violation(dash_duo, demo_copy, tmp_path):
    app = create_app(Config.from_env({}, database_path=demo_copy, webhook_secret=SECRET))
    try:
        with LiveServer(app) as server:
            browser = Browser(dash_duo, server.url, tmp_path)
            try:
                _check_pages(browser, "light", server)
                # The theme switch, then every page again in the persisted dark theme.
                browser.open("/")
                dash_duo.find_element("#theme-switch").click()
                wait.until(lambda: browser.driver.execute_script(
                    "return document.documentElement.getAttribute('data-bs-theme')") == "dark", timeout=10)
                _check_pages(browser, "dark", server)
                assert browser.driver.execute_script(
                    "return document.documentElement.getAttribute('data-bs-theme')") == "dark"
            finally:
                browser.driver.get("about:blank")  # closes the page's WebSocket
                live_ws.close(app.server)
    finally:
        app.server.extensions["buildmon"].close()
    refused = [e["message"] for e in browser.console
               if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]
    assert refused == [] and browser.violations == []
    # Nothing else went wrong either (the not-found page's own 404 aside).
    assert [e["message"] for e in browser.console if "/no-such-page" not in e["message"]] == []
