"""Signing in and out in headless Chromium: the pages work in a session (Dash's requests carry the CSRF
token), and sign-out ends it."""
import pytest
from dash.testing.wait import until

from dashapp import create_app
from tests.fakeoidc import FakeOIDC
from tests.helpers import copy_store
from tests.test_signin import ANN, CAROL, _config

pytestmark = pytest.mark.browser


def test_a_signed_in_browser_uses_the_pages_and_signs_out(dash_duo, demo_store, tmp_path):
    path = copy_store(demo_store, tmp_path)  # this test writes: its own copy of the demo
    with FakeOIDC() as provider:
        provider.user = dict(CAROL)
        app = create_app(_config(path, provider))
        dash_duo.start_server(app)
        dash_duo.driver.set_window_size(1500, 1000)  # the navbar's width: its tools end with the sign-out button
        # A page opened without a session goes to the provider and back to it.
        dash_duo.driver.get(dash_duo.server_url + "/triage?window=30d")
        dash_duo.wait_for_element("#triage-page", timeout=30)
        assert dash_duo.driver.current_url == dash_duo.server_url + "/triage?window=30d"
        who = dash_duo.wait_for_element("#signed-in-as", timeout=20)
        assert who.text.startswith("carol") and who.find_element("css selector", ".badge").text == "viewer"
        # Every section is drawn: the callbacks' POSTs carried the session's CSRF token.
        for section in ("tr-causes", "tr-broken", "tr-failures", "tr-analysis", "tr-flaky"):
            dash_duo.wait_for_element(f"#{section} > *", timeout=30)
        assert not [e for e in dash_duo.get_logs() if "403" in e.get("message", "")]
        # Another view, then sign out.
        dash_duo.driver.get(dash_duo.server_url + "/")
        dash_duo.wait_for_element("#commit-grid-table", timeout=30)
        dash_duo.find_element("#sign-out").click()
        until(lambda: dash_duo.driver.current_url.endswith("/signed-out"), timeout=20)
        assert "You are signed out" in dash_duo.driver.page_source
        # The session is gone: the next page asks the provider again (now as Ann, an admin).
        provider.user = dict(ANN)
        dash_duo.driver.get(dash_duo.server_url + "/alerts")
        until(lambda: "ann" in dash_duo.find_element("#signed-in-as").text, timeout=30)
        assert "admin" in dash_duo.find_element("#signed-in-as").text
