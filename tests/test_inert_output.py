"""Hostile text (HTML, JavaScript, spreadsheet formulas) is shown and exported as text."""
import csv
import io
import json

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By

from dashapp import create_app
from dashapp.config import Config
from tests.helpers import SECRET, fixture_json, post

XSS = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://evil.example","click")'
MESSAGE = f"{XSS} and more\n\nsecond paragraph"


def _hostile_run():
    payload = fixture_json("workflow_run/completed.payload.json")
    run = payload["workflow_run"]
    run.update(id=424242, head_sha="f" * 40, display_title=FORMULA, conclusion="failure")
    run["head_commit"].update(id="f" * 40, message=MESSAGE)
    run["actor"]["login"] = "<script>alert(2)</script>"
    return json.dumps(payload).encode()


def _no_alert(driver):
    try:
        driver.switch_to.alert
    except NoAlertPresentException:
        return True
    return False


@pytest.mark.browser
def test_hostile_commit_text_is_shown_as_text(dash_duo, db_path):
    app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET))
    dash_duo.start_server(app)
    assert post(dash_duo.server_url, "workflow_run", _hostile_run()).status_code == 202
    app.server.extensions["buildmon"].settle()
    dash_duo.driver.get(dash_duo.server_url + "/?repo=octo-org/octo-repo&window=all")
    dash_duo.wait_for_element("#commit-grid-table", timeout=20)
    dash_duo.wait_for_contains_text("#commit-grid-table", XSS, timeout=20)
    page = dash_duo.driver.find_element(By.TAG_NAME, "body").text
    assert XSS in page
    assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, "img[src='x']")
    assert not dash_duo.driver.find_elements(By.XPATH, "//script[contains(., 'alert(2)')]")
    assert _no_alert(dash_duo.driver)
    # The developer page shows the hostile login as text too.
    dash_duo.driver.get(dash_duo.server_url + "/developer?author=%3Cscript%3Ealert(2)%3C/script%3E&window=all")
    dash_duo.wait_for_contains_text("body", "<script>alert(2)</script>", timeout=20)
    assert _no_alert(dash_duo.driver)


def test_hostile_text_is_exported_defused(server):
    assert post(server.url, "workflow_run", _hostile_run()).status_code == 202
    server.services.settle()
    text = requests.get(server.url + "/api/builds.csv?window=all", timeout=30).text
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["title"] == "'" + FORMULA  # a spreadsheet shows it, never runs it
    assert row["message"] == MESSAGE  # quoted, newlines kept, starts with "<": harmless in a spreadsheet
    assert row["author"] == "<script>alert(2)</script>"
