"""The Views dialog in headless Chromium: a signed-in person saves a page with its filters, another opens it by
its share link, and pinned repositories and workflows come first in the Waterfall."""
import pytest
from dash.testing.wait import until

from dashapp import create_app
from tests.fakeoidc import FakeOIDC
from tests.helpers import click_in_view, copy_store
from tests.test_signin import BOB, CAROL, _config

pytestmark = pytest.mark.browser
TRIAGE = "/triage?repo=acme/webapp&window=30d"
COLUMNS = "return Array.from(document.querySelectorAll('#commit-grid-table th .wf-col-name')).map(e => e.textContent)"




def test_a_view_saved_and_shared_and_pins_first(dash_duo, demo_store, tmp_path):
    path = copy_store(demo_store, tmp_path)
    with FakeOIDC() as provider:
        provider.user = dict(BOB)
        dash_duo.start_server(create_app(_config(path, provider)))
        dash_duo.driver.set_window_size(1500, 1100)
        dash_duo.driver.get(dash_duo.server_url + TRIAGE)  # through the sign-in, back to the page
        until(lambda: dash_duo.driver.current_url.endswith(TRIAGE), timeout=30)
        dash_duo.wait_for_element("#signed-in-as", timeout=30)

        click_in_view(dash_duo, "#views-open")
        dash_duo.wait_for_element("#views-empty", timeout=20)
        dash_duo.find_element("#views-name").send_keys("webapp, 30 days")
        click_in_view(dash_duo, "#views-save")
        row = dash_duo.wait_for_element("#views-table tr.views-row[data-name='webapp, 30 days']", timeout=20)
        link = row.find_element("css selector", "code[id^='views-link-']").text
        assert link.startswith(dash_duo.server_url + "/v/") and "Saved" in dash_duo.find_element("#views-saved").text
        assert row.find_element("css selector", "a.views-open-link").get_attribute("href").endswith(TRIAGE)
        dash_duo.find_element("#views-name").send_keys(" (draft)")
        click_in_view(dash_duo, "#views-save")  # a second view, then deleted from the list
        dash_duo.wait_for_element("#views-table tr.views-row[data-name='webapp, 30 days (draft)']", timeout=20)
        click_in_view(dash_duo, "#views-table tr.views-row[data-name='webapp, 30 days (draft)'] button")
        names = "return Array.from(document.querySelectorAll('#views-table tr.views-row')).map(r => r.dataset.name)"
        until(lambda: dash_duo.driver.execute_script(names) == ["webapp, 30 days"], timeout=20)  # (a redrawn list)

        # Pins: the repository shown (acme/webapp) and its workflow that sorts last come first in the Waterfall.
        dash_duo.driver.get(dash_duo.server_url + "/?repo=acme/webapp")
        dash_duo.wait_for_element("#commit-grid-table", timeout=30)
        columns = dash_duo.driver.execute_script(COLUMNS)
        assert columns == sorted(columns) and len(columns) >= 2
        click_in_view(dash_duo, "#views-open")
        dash_duo.wait_for_element("#views-pin-workflows", timeout=20)
        click_in_view(dash_duo, f"#views-pin-workflows input[value='{columns[-1]}']")
        until(lambda: "Saved" in dash_duo.find_element("#views-pin-note").text, timeout=20)
        click_in_view(dash_duo, "#views-pin-repo input")
        dash_duo.driver.get(dash_duo.server_url + "/")  # no repository asked: the pinned one
        until(lambda: dash_duo.driver.execute_script(COLUMNS)[:1] == [columns[-1]], timeout=30)
        assert sorted(dash_duo.driver.execute_script(COLUMNS)) == columns

        # Another person opens the share link: the same page, the same filters.
        dash_duo.find_element("#sign-out").click()
        until(lambda: dash_duo.driver.current_url.endswith("/signed-out"), timeout=20)
        provider.user = dict(CAROL)
        dash_duo.driver.get(link)
        until(lambda: dash_duo.driver.current_url.endswith(TRIAGE), timeout=30)
        dash_duo.wait_for_element("#signed-in-as", timeout=30)
        click_in_view(dash_duo, "#views-open")  # carol's own list is empty, her Waterfall unpinned
        dash_duo.wait_for_element("#views-empty", timeout=20)
