"""The Waterfall in a browser follows webhooks live, survives a server restart, and batches bursts."""
import json
import socket
import threading
import time

import pytest
from dash.testing import wait
from werkzeug.serving import make_server

from dashapp import create_app
from live import ws as live_ws
from tests import builders as b
from tests.helpers import fixture_json, post

RUN = fixture_json("workflow_run/completed.payload.json")
ROW = '#stream-grid .ag-row[row-id="{}"]'


def run_payload(run_id: int) -> bytes:
    payload = json.loads(json.dumps(RUN))
    payload["workflow_run"].update(id=run_id, head_sha=f"{run_id:040x}", created_at="2030-01-01T00:00:00Z")
    payload["workflow_run"]["head_commit"]["id"] = f"{run_id:040x}"
    return json.dumps(payload).encode()


class Server:
    """The app on a fixed port of 127.0.0.1, so that a new one can take the old one's place."""

    def __init__(self, app, port: int):
        self.app, self.url = app, f"http://127.0.0.1:{port}"
        self._server = make_server("127.0.0.1", port, app.server, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        live_ws.close(self.app.server)  # open WebSockets outlive the listening socket: end them
        self._thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def servers():
    started = []
    yield started
    for server in started:  # before dash_duo's teardown, or its browser keeps them busy
        server.stop()


@pytest.mark.browser
def test_live_stream_follows_webhooks_and_reconnects_after_restart(dash_duo, config, db_path, servers):
    b.store_with(db_path, [b.commit("c1"), b.run(1, repo="octo-org/octo-repo", sha="c1")]).dispose()
    port = free_port()
    first = Server(create_app(config), port)
    servers.append(first)
    dash_duo.driver.get(first.url + "/")
    dash_duo.wait_for_element("#stream-grid", timeout=20)
    dash_duo.wait_for_text_to_equal("#live-badge", "live", timeout=20)
    dash_duo.driver.execute_script("window.__notReloaded = true;")

    assert post(first.url, "workflow_run", run_payload(555001)).status_code == 202
    dash_duo.wait_for_element(ROW.format(555001), timeout=10)

    first.stop()
    servers.remove(first)
    dash_duo.wait_for_text_to_equal("#live-badge", "reconnecting", timeout=10)
    # Recorded while the page was disconnected (as the webhook would have, through the store writer).
    b.store_with(db_path, [b.run(555002, repo="octo-org/octo-repo", sha="c9", created=1_900_000_000.0)]).dispose()
    second = Server(create_app(config), port)
    servers.append(second)
    dash_duo.wait_for_text_to_equal("#live-badge", "live", timeout=30)
    dash_duo.wait_for_element(ROW.format(555002), timeout=15)
    assert dash_duo.driver.execute_script("return window.__notReloaded === true;")
    assert dash_duo.driver.execute_script("return window.buildmonLive.stats.catchups") >= 1

    # A burst of 200 job events and 60 runs: a few redraws, not 260, and the stream keeps 50 rows at most.
    hub = second.app.server.extensions["buildmon"].hub
    before = dash_duo.driver.execute_script("return Object.assign({}, window.buildmonLive.stats)")
    for i in range(200):
        hub.publish({"type": "job", "row": {"gitid": i, "run_gitid": 555002, "attempt": 1, "repo": "octo-org/octo-repo"}})
    for i in range(60):
        hub.publish({"type": "run", "row": {"id": 600000 + i, "repo": "octo-org/octo-repo", "workflow": "CI",
                                            "createtime": 1_900_000_100.0 + i, "status": "queued"}})
    # (The pushed rows are not in the store: the stream's own re-query on the live-version bump drops them again.)
    wait.until(lambda: dash_duo.driver.execute_script("return window.buildmonLive.stats.messages")
               - before["messages"] >= 260, timeout=10)
    time.sleep(1.0)  # the last flush
    stats = dash_duo.driver.execute_script("return window.buildmonLive.stats")
    assert stats["messages"] - before["messages"] == 260
    assert stats["flushes"] - before["flushes"] <= 10 and stats["transactions"] - before["transactions"] <= 5
    assert stats["catchups"] == before["catchups"]  # no gap in seq: nothing was missed
    rows = dash_duo.driver.execute_script(
        "var n = 0; dash_ag_grid.getApi('stream-grid').forEachNode(function () { n++; }); return n;")
    assert rows <= 50


@pytest.mark.browser
def test_the_badge_says_how_far_behind_processing_is(dash_duo, config, db_path, servers, monkeypatch, tmp_path):
    from dashapp import services as services_module

    monkeypatch.setattr(services_module, "LAG_SHOWN", 1.0)
    monkeypatch.setattr(services_module, "LAG_CHECK", 0.2)
    b.store_with(db_path, [b.commit("c1"), b.run(1, repo="octo-org/octo-repo", sha="c1")]).dispose()
    app = create_app(config.__class__(**{**config.__dict__, "processor": "off"}))
    server = Server(app, free_port())
    servers.append(server)
    dash_duo.driver.get(server.url + "/")
    dash_duo.wait_for_text_to_equal("#live-badge", "live", timeout=20)
    assert post(server.url, "workflow_run", run_payload(555101)).status_code == 202
    dash_duo.wait_for_contains_text("#live-badge", "behind", timeout=15)
    badge = dash_duo.find_element("#live-badge")
    assert "bg-warning" in badge.get_attribute("class") and "to be processed" in badge.get_attribute("title")
    dash_duo.driver.set_window_size(1400, 700)
    dash_duo.driver.save_screenshot(str(tmp_path / "badge-behind.png"))
    dash_duo.find_element("#theme-switch").click()  # the dark theme: the badge must read there too
    wait.until(lambda: dash_duo.driver.execute_script(
        "return document.documentElement.getAttribute('data-bs-theme')") == "dark", timeout=10)
    dash_duo.driver.save_screenshot(str(tmp_path / "badge-behind-dark.png"))
    app.server.extensions["buildmon"].processor.start()  # it catches up: the row arrives, the badge clears
    dash_duo.wait_for_element(ROW.format(555101), timeout=15)
    dash_duo.wait_for_text_to_equal("#live-badge", "live", timeout=15)
    app.server.extensions["buildmon"].close()
