"""The Alerts page in headless Chromium: open breaks, the messages with their tries and last errors, the history,
the channels and their test button (to a real HTTP receiver), who may press it, and the live refresh.

The store is `tests.test_queries_alerts`'s story, the configuration `tests.test_api_alerts`'s (a secret in
every channel that has one); the server is a real one, WebSocket included (`tests.helpers.LiveServer`).
"""
import time

import pytest
from dash.testing.wait import until
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By

from dashapp.alerts_tables import shown_state
from live import ws as live_ws
from store.queries import alerts as aq
from store.schema import alert_messages
from tests.helpers import LiveServer
from tests.receivers import HTTPReceiver
from tests.test_api_alerts import SECRETS, alert_config, serve
from tests.test_queries_alerts import GAVE_UP, HOSTILE, RETRY_ERROR, alert_history

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver():
    with HTTPReceiver() as found:
        yield found


@pytest.fixture
def start(db_path):
    """start(alerts config, **Config overrides) -> the running LiveServer; stopped (WebSockets too) after."""
    started = []

    def _start(alerts, **config):
        app = serve(db_path, alerts, **config)
        live = LiveServer(app).__enter__()
        started.append((app, live))
        return live

    yield _start
    for app, live in started:
        live_ws.close(app.server)  # open WebSockets outlive the listening socket: end them
        live.__exit__(None, None, None)
        app.server.extensions["buildmon"].close()


def _open(dash_duo, live, path="/alerts"):
    dash_duo.driver.set_window_size(1500, 1200)
    dash_duo.driver.get(live.url + path)
    return dash_duo.wait_for_element("#alerts-page", timeout=30)


def _rows(dash_duo, selector):
    return dash_duo.driver.find_elements(By.CSS_SELECTOR, selector)


def _text(element, selector=None) -> str:
    found = element.find_element(By.CSS_SELECTOR, selector) if selector else element
    return found.get_attribute("textContent")


def _now_text(dash_duo, selector) -> str:
    """The text of `selector` as the page has it now ("" when it has none): read in one go, so a redraw between
    finding the element and reading it cannot go stale."""
    return dash_duo.driver.execute_script(
        "var e = document.querySelector(arguments[0]); return e ? e.textContent : '';", selector)


def _settled(read, tries: int = 20):
    """`read()`, again when a redraw (a live bump) replaced what it was reading."""
    for _ in range(tries - 1):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.2)
    return read()


def _severe(dash_duo) -> list:
    return [e for e in dash_duo.get_logs() if e.get("level") == "SEVERE"]


def test_al001_breaks_messages_history_and_channels(dash_duo, engine, start, receiver):
    story = alert_history(engine)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
        "source": "window.__dialogs = []; window.alert = function (m) { window.__dialogs.push(m); };"})
    live = start(alert_config(receiver.url))
    _open(dash_duo, live)
    until(lambda: len(_rows(dash_duo, "tr.al-message-row")) == 10, timeout=30)
    assert dash_duo.find_element("#al-heading-scope").text == "1 rule · 4 channels"
    assert _text(dash_duo.find_element("#al-card-open"), ".metric-value") == "2"
    assert _text(dash_duo.find_element("#al-card-pending"), ".metric-value") == "2"  # one retrying, one sending
    assert _text(dash_duo.find_element("#al-card-failed"), ".metric-value") == "1"

    # Open breaks, newest first: the red one with its first bad commit linked and each channel's delivery.
    rows = _rows(dash_duo, "tr.al-open-row")
    assert [int(r.get_attribute("data-break")) for r in rows] == [story["stale"], story["web"]]
    web = rows[1]
    cells = [_text(td) for td in web.find_elements(By.TAG_NAME, "td")]
    assert cells[:4] == ["acme/web", "CI", "main", "2h 00m"] and cells[5] == "2"
    sha = web.find_element(By.CSS_SELECTOR, ".al-commit a")
    assert sha.text == "w2" and sha.get_attribute("href") == live.url + "/commit/w2?repo=acme%2Fweb"
    assert "Bump the session library" in cells[4] and "bob" in cells[4]
    chips = {c.get_attribute("data-channel"): _text(c, ".al-state") for c in web.find_elements(By.CSS_SELECTOR,
                                                                                               ".al-delivery")}
    assert chips == {"oncall-mail": "failed", "ops-hook": "retrying", "team-chat": "delivered"}
    # The stuck run: no workflow of its own, its message's title in its place, as text.
    assert _text(rows[0].find_elements(By.TAG_NAME, "td")[1]) == HOSTILE

    # Messages, newest first, each as the store has it: the retries and the last errors are there.
    with engine.connect() as conn:
        expected = aq.messages(conn, limit=50)
    shown = _rows(dash_duo, "tr.al-message-row")
    assert [int(r.get_attribute("data-message")) for r in shown] == [m["id"] for m in expected]
    for row, msg in zip(shown, expected):
        assert _text(row, ".al-state") == shown_state(msg["state"], msg["tries"])
        assert _text(row, ".al-tries") == str(msg["tries"]) and _text(row, ".al-channel") == msg["channel"]
        assert _text(row, ".al-error") == (msg["last_error"] or "—")
    retrying = next(r for r, m in zip(shown, expected) if m["channel"] == "ops-hook")
    assert _text(retrying, ".al-error") == RETRY_ERROR and _text(retrying, ".al-next").startswith("in ")
    failed = next(r for r, m in zip(shown, expected) if m["channel"] == "oncall-mail")
    assert (_text(failed, ".al-state"), _text(failed, ".al-tries"), _text(failed, ".al-error")) == ("failed", "9",
                                                                                                  GAVE_UP)
    assert _text(shown[1], ".al-subject") == HOSTILE and _text(shown[1], ".al-error") == HOSTILE

    # History: fixed breaks, newest fixed first, with the fixing commit.
    history = _rows(dash_duo, "tr.al-history-row")
    assert [int(r.get_attribute("data-break")) for r in history] == [story["api"], story["mobile"]]
    fix = history[0].find_element(By.CSS_SELECTOR, ".al-fixed-by a")
    assert fix.get_attribute("href") == live.url + "/commit/a4?repo=acme%2Fapi"
    assert "Revert: Break the API" in _text(history[0], ".al-fixed-by")

    # Channels: name, type and where, never a secret; every button usable from this (loopback) client.
    channels = _rows(dash_duo, "tr.al-channel-row")
    assert [c.get_attribute("data-channel") for c in channels] == ["team-chat", "ops-hook", "tracker", "oncall-mail"]
    assert "ops.example.net" in _text(channels[1], ".al-describe")
    assert all(b.is_enabled() for b in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#al-channels-table button"))
    assert "not tested yet" in _text(channels[1]) and "delivered" in _text(channels[0], ".al-test-outcome")
    page = dash_duo.driver.page_source
    assert not [s for s in SECRETS if s in page]

    # Hostile text stayed text: no element, handler or javascript: link came of it.
    bad = dash_duo.driver.execute_script("""
        var root = document.querySelector('#alerts-page'), bad = [];
        root.querySelectorAll('img, script, iframe, b, strong').forEach(function (el) { bad.push(el.tagName); });
        root.querySelectorAll('*').forEach(function (el) {
            for (var i = 0; i < el.attributes.length; i++) {
                if (/^on/i.test(el.attributes[i].name)) bad.push(el.attributes[i].name);
            }
            if (/^javascript:/i.test(el.getAttribute('href') || '')) bad.push('javascript: href');
        });
        return bad;""")
    assert bad == [] and dash_duo.driver.execute_script("return window.__dialogs") == []
    assert _severe(dash_duo) == []


def test_al002_the_test_button_sends_and_shows_the_outcome(dash_duo, engine, start, receiver):
    alert_history(engine)
    live = start(alert_config(receiver.url))
    _open(dash_duo, live)
    until(lambda: len(_rows(dash_duo, "tr.al-message-row")) == 10, timeout=30)
    button = dash_duo.wait_for_element("#al-channels-table tr[data-channel='team-chat'] button", timeout=30)
    assert button.text == "Send a test message"
    button.click()
    until(lambda: len(receiver.requests) == 1, timeout=30)
    assert receiver.requests[0].path.startswith("/services/") and "text" in receiver.requests[0].json()
    # The outcome next to the button, and the test message on top of the messages (with no live push needed).
    until(lambda: len(_rows(dash_duo, "tr.al-message-row")) == 11, timeout=30)
    newest = _settled(lambda: [_text(_rows(dash_duo, "tr.al-message-row")[0], f".al-{k}")
                               for k in ("kind", "channel", "state")])
    assert newest == ["test", "team-chat", "delivered"]
    outcome = _now_text(dash_duo, "#al-channels-table tr[data-channel='team-chat'] .al-test-outcome")
    assert outcome.startswith("delivered") and "just now" in outcome
    assert len(receiver.requests) == 1  # one click, one message
    assert _severe(dash_duo) == []


def test_al003_a_test_that_fails_shows_why(dash_duo, engine, start):
    with HTTPReceiver() as gone:
        url = gone.url  # nothing listens there once it has stopped
    live = start(alert_config(url))
    _open(dash_duo, live)
    dash_duo.wait_for_element("#al-channels-table tr[data-channel='team-chat'] button", timeout=30).click()
    outcome_cell = "#al-channels-table tr[data-channel='team-chat'] .al-test-outcome"
    until(lambda: "failed" in _now_text(dash_duo, outcome_cell), timeout=30)
    outcome = _now_text(dash_duo, outcome_cell)
    assert "127.0.0.1" in outcome and "services" not in outcome  # the host, never the webhook's secret path
    until(lambda: _rows(dash_duo, "tr.al-message-row[data-state='failed']"), timeout=30)


def test_al004_a_client_from_elsewhere_sees_why_it_may_not_test(dash_duo, engine, start, receiver):
    alert_history(engine)
    live = start(alert_config(receiver.url), trusted_proxies=1)
    # Every request of the browser as a declared proxy forwards it: the client is 203.0.113.9, not local.
    dash_duo.driver.execute_cdp_cmd("Network.enable", {})
    dash_duo.driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"X-Forwarded-For": "203.0.113.9"}})
    _open(dash_duo, live)
    note = dash_duo.wait_for_element("#al-test-refusal", timeout=30)
    assert "API_TOKENS or DASHBOARD_USERS" in note.text
    buttons = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#al-channels-table button")
    assert len(buttons) == 4 and not any(b.is_enabled() for b in buttons)
    assert "API_TOKENS" in buttons[0].get_attribute("title")
    # The page is no way around the rule: a request written by hand is refused and sends nothing.
    dash_duo.driver.execute_script("window.dash_clientside.set_props('al-test-request', "
                                   "{data: {channel: 'team-chat', at: 1}});")
    note = dash_duo.wait_for_element("#al-test-note", timeout=30)
    assert note.text.startswith("Not sent: sending a test message needs a protected server")
    assert receiver.requests == []


def test_al005_not_configured_says_how(dash_duo, engine, start):
    live = start(None)
    _open(dash_duo, live)
    notice = dash_duo.wait_for_element("#al-notice", timeout=30)
    assert "Alerts are not configured." in notice.text and "ALERTS_CONFIG" in notice.text
    assert "“Alerts”" in notice.text
    assert dash_duo.find_element("#al-heading-scope").text == "not configured"
    dash_duo.wait_for_element("#al-open-empty", timeout=30)
    assert "Nothing is broken." in dash_duo.find_element("#al-open-empty").text
    assert "alerts are not configured" in dash_duo.find_element("#al-channels-empty").text
    assert dash_duo.find_element("#nav-alerts").get_attribute("class").split().count("active") == 1
    assert _severe(dash_duo) == []


def test_al006_the_page_follows_live_alerts_messages(dash_duo, engine, start, receiver):
    story = alert_history(engine)
    live = start(alert_config(receiver.url))
    _open(dash_duo, live)
    dash_duo.wait_for_text_to_equal("#live-badge", "live", timeout=30)
    until(lambda: len(_rows(dash_duo, "tr.al-message-row")) == 10, timeout=30)
    # The sender retries ops-hook's message and it goes through: the store changes, then {"type": "alerts"}.
    with engine.begin() as conn:
        conn.execute(alert_messages.update().where(alert_messages.c.channel == "ops-hook").values(
            state="delivered", tries=4, sent=time.time(), next_try=None))
    live.services.broadcast([{"type": "alerts"}])
    chip = f"tr.al-open-row[data-break='{story['web']}'] .al-delivery[data-channel='ops-hook'] .al-state"
    until(lambda: _now_text(dash_duo, chip) == "delivered", timeout=30)
    row = _settled(lambda: next((_text(r, ".al-state"), _text(r, ".al-tries")) for r in _rows(
        dash_duo, "tr.al-message-row") if _text(r, ".al-channel") == "ops-hook"))
    assert row == ("delivered", "4")
    assert _text(dash_duo.find_element("#al-card-pending"), ".metric-value") == "1"
