"""The Admin page in headless Chromium: an admin replays a dead letter and its run arrives; a viewer sees no
admin action and the routes behind them answer 403."""
import json
import sqlite3
import time

import pytest
import requests
from dash.testing.wait import until
from sqlalchemy import select

from dashapp import create_app
from store import archive
from store.engine import make_engine
from store.schema import audit_log, deliveries, workflowruns
from tests.fakeoidc import FakeOIDC
from tests.helpers import click_in_view, copy_store, fixture_json
from tests.test_signin import ANN, CAROL, _config

pytestmark = pytest.mark.browser
RUN_ID = 990077


def _dead_letter(path: str) -> str:
    """A workflow_run delivery logged failed (as when its batch could not be committed), its run not stored."""
    payload = fixture_json("workflow_run/completed.payload.json")
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 120))
    payload["workflow_run"].update(id=RUN_ID, name="Replayed", created_at=now, updated_at=now)
    guid = "6a1e4d10-0000-4000-8000-00000000dead"
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO deliveries (guid, event, action, repo, received, outcome, error, body)"
                   " VALUES (?, 'workflow_run', 'completed', ?, ?, 'failed', ?, ?)",
                   (guid, payload["repository"]["full_name"], time.time() - 100,
                    "could not apply delivery: OperationalError: database is locked", json.dumps(payload).encode()))
    return guid




def _status(dash_duo, method: str, path: str) -> int:
    """The status the signed-in page's own fetch gets (its cookies, its CSRF token)."""
    return dash_duo.driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const csrf = (document.cookie.match(/_csrf_token=([^;]+)/) || [])[1] || '';
        fetch(arguments[1], {method: arguments[0], headers: {'Content-Type': 'application/json',
              'X-CSRFToken': csrf}, body: arguments[0] === 'POST' ? '{}' : undefined}).then(r => done(r.status));
    """, method, path)


def test_an_admin_replays_a_dead_letter_and_a_viewer_cannot(dash_duo, demo_store, tmp_path):
    path = copy_store(demo_store, tmp_path)  # this test writes: its own copy of the demo
    with FakeOIDC() as provider:
        provider.user = dict(ANN)
        app = create_app(_config(path, provider))
        guid = _dead_letter(path)
        engine = make_engine(path)
        archived = archive.archive(engine, archive.location(path), 20)  # the demo's oldest third
        dash_duo.start_server(app)
        dash_duo.driver.set_window_size(1500, 1100)
        dash_duo.driver.get(dash_duo.server_url + "/admin")
        row = dash_duo.wait_for_element(f"tr.ad-dead-row[data-guid='{guid}']", timeout=30)
        assert "database is locked" in row.text
        assert dash_duo.find_element("#ad-webhook-url").text == dash_duo.server_url + "/webhook"
        assert dash_duo.find_element("#nav-admin").is_displayed()
        months = {time.strftime("%Y-%m", time.gmtime(part.month * 86400)) for part in archived}
        shown = dash_duo.find_elements("#ad-archives-table tr.ad-archive-row")
        assert {tr.get_attribute("data-month") for tr in shown} == months
        assert "Keeps everything" in dash_duo.find_element("#ad-archives-policy").text
        assert "Archived: what was created before" in dash_duo.find_element("#ad-archives-policy").text
        with engine.connect() as conn:
            assert conn.execute(select(workflowruns.c.id).where(workflowruns.c.gitid == RUN_ID)).first() is None

        row.find_element("css selector", "button.ad-replay").click()
        # The processor applies it: the run is stored, the delivery is no longer a dead letter, and the list
        # (redrawn by the live bump) empties.
        until(lambda: dash_duo.find_elements("#ad-dead-empty"), timeout=30)
        with engine.connect() as conn:
            assert conn.execute(select(workflowruns.c.archivedworkflowname)
                                .where(workflowruns.c.gitid == RUN_ID)).scalar() == "Replayed"
            assert conn.execute(select(deliveries.c.outcome).where(deliveries.c.guid == guid)).scalar() == "processed"
            entry = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.target)
                                 .where(audit_log.c.action == "delivery.replay")).one()
        assert tuple(entry) == ("ann", "delivery.replay", f"delivery:{guid}")
        until(lambda: "delivery.replay" in dash_duo.find_element("#ad-audit").text, timeout=20)
        # A token issued from the page opens the API with its role until it is revoked from the page.
        click_in_view(dash_duo, "#ad-token-issue")  # no name yet
        until(lambda: "name: what the token is for" in dash_duo.find_element("#ad-token-note").text, timeout=20)
        dash_duo.find_element("#ad-token-name").send_keys("ci export")
        click_in_view(dash_duo, "#ad-token-issue")
        token = dash_duo.wait_for_element("#ad-token-value", timeout=20).text
        assert token.startswith("bm_") and "not shown again" in dash_duo.find_element("#ad-token-issued").text
        me = requests.get(dash_duo.server_url + "/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert me.status_code == 200 and me.json()["role"] == "viewer"
        token_id = me.json()["actor"].split(":")[1]
        click_in_view(dash_duo, f"tr.ad-token-row[data-id='{token_id}'] button.ad-revoke")
        until(lambda: dash_duo.find_elements(f"tr.ad-token-row[data-id='{token_id}'][data-state='revoked']"),
              timeout=20)
        assert requests.get(dash_duo.server_url + "/api/me", headers={"Authorization": f"Bearer {token}"},
                            timeout=10).status_code == 401
        with engine.connect() as conn:
            actions = conn.execute(select(audit_log.c.action).where(audit_log.c.target == f"token:{token_id}")
                                   .order_by(audit_log.c.id)).scalars().all()
        assert actions == ["token.issue", "token.revoke"]
        # The run is on the Waterfall's build stream too.
        dash_duo.driver.get(dash_duo.server_url + "/")
        dash_duo.wait_for_element(f'#stream-grid .ag-row[row-id="{RUN_ID}"]', timeout=30)

        # A viewer: no Admin link, a notice instead of the page, and 403 from the routes behind its actions.
        dash_duo.find_element("#sign-out").click()
        until(lambda: dash_duo.driver.current_url.endswith("/signed-out"), timeout=20)
        provider.user = dict(CAROL)
        dash_duo.driver.get(dash_duo.server_url + "/admin")
        notice = dash_duo.wait_for_element("#ad-notice", timeout=30)
        assert "maintainers and admins" in notice.text and "carol, a viewer" in notice.text
        assert not dash_duo.find_elements("#nav-admin") and not dash_duo.find_elements("button.ad-replay")
        assert _status(dash_duo, "GET", "/api/deliveries") == 403
        assert _status(dash_duo, "POST", f"/api/deliveries/{guid}/replay") == 403
        assert _status(dash_duo, "POST", "/api/deliveries/replay") == 403
        assert _status(dash_duo, "GET", "/api/audit") == 403
        assert _status(dash_duo, "GET", "/api/archives") == 403
        assert _status(dash_duo, "GET", "/api/builds") == 200
        engine.dispose()


def test_a_backfill_started_from_the_page_shows_its_progress_and_finishes(dash_duo, tmp_path):
    from dashapp.config import Config
    from tests.fakegithub import FakeGitHub
    from tests.helpers import SECRET

    with FakeGitHub(runs=8) as fake:
        app = create_app(Config.from_env({}, database_path=str(tmp_path / "b.db"), webhook_secret=SECRET,
                                         github_token="T", github_api_url=fake.url))
        dash_duo.start_server(app)  # no sign-in configured: this host's browser may do everything
        dash_duo.driver.set_window_size(1500, 1100)
        dash_duo.driver.get(dash_duo.server_url + "/admin")
        dash_duo.wait_for_element("#ad-jobs-empty", timeout=30)
        dash_duo.find_element("#ad-backfill-repo").send_keys("not a repo")
        dash_duo.find_element("#ad-backfill-start").click()
        until(lambda: "owner/name" in dash_duo.find_element("#ad-backfill-note").text, timeout=20)
        field = dash_duo.find_element("#ad-backfill-repo")
        dash_duo.clear_input(field)  # (a React input: Selenium's clear() leaves its value)
        field.send_keys(fake.repo)
        dash_duo.find_element("#ad-backfill-start").click()
        until(lambda: f"Backfill of {fake.repo} started" in dash_duo.find_element("#ad-backfill-note").text,
              timeout=20)
        row = "#ad-jobs-table tr.ad-job-row"
        dash_duo.wait_for_element(row, timeout=20)
        # Read in one go: the table is redrawn each second while the job runs.
        state = "var r = document.querySelector(arguments[0]); return r && [r.dataset.state, " \
                "r.querySelector('.ad-job-runs').textContent, r.dataset.kind]"
        until(lambda: (dash_duo.driver.execute_script(state, row) or [None])[0] == "done", timeout=60)
        assert dash_duo.driver.execute_script(state, row) == ["done", "8", "backfill"]
        # Reconcile, of the repository given: nothing is stale, so it finishes with nothing re-fetched.
        dash_duo.find_element("#ad-reconcile-start").click()
        until(lambda: f"Reconcile of {fake.repo} started" in dash_duo.find_element("#ad-backfill-note").text,
              timeout=20)
        until(lambda: dash_duo.driver.execute_script(state, row) == ["done", "0", "reconcile"], timeout=60)
        # The runs are the store's: the Waterfall draws the repository.
        dash_duo.driver.get(dash_duo.server_url + f"/?repo={fake.repo}")
        dash_duo.wait_for_element("#commit-grid-table", timeout=30)
