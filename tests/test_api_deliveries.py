"""Dead letters over the API: listed, read with their payload, replayed one or all through the processor."""
import json
import time

import pytest
import requests
from sqlalchemy import select

from dashapp import create_app
from dashapp.config import Config
from store.schema import audit_log, deliveries, workflowruns
from tests.helpers import SECRET, LiveServer, fixture_json

pytestmark = pytest.mark.both_stores
JSON = {"Content-Type": "application/json"}


def _dead(engine, guid: str, run_id: int, *, body: bytes | None = None, received: float | None = None):
    payload = fixture_json("workflow_run/completed.payload.json")
    payload["workflow_run"].update(id=run_id, name=f"Run {run_id}")
    with engine.begin() as conn:
        conn.execute(deliveries.insert().values(
            guid=guid, event="workflow_run", action="completed", repo=payload["repository"]["full_name"],
            received=received or time.time(), outcome="failed", error="could not apply delivery: boom",
            body=body if body is not None else json.dumps(payload).encode()))


@pytest.fixture
def server(db_path):
    app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET))
    try:
        with LiveServer(app) as live:
            yield live
    finally:
        app.server.extensions["buildmon"].close()


def test_dead_letters_are_listed_read_and_replayed(server):
    engine = server.services.engine
    now = time.time()
    _dead(engine, "g-1", 910001, received=now - 30)
    _dead(engine, "g-2", 910002, received=now - 20)
    _dead(engine, "g-3", 910003, received=now - 10, body=b"payload=%7B%22broken")  # a form body that fails again
    listed = requests.get(server.url + "/api/deliveries", timeout=10).json()
    assert [d["guid"] for d in listed["items"]] == ["g-3", "g-2", "g-1"] and listed["total"] == 3
    assert listed["items"][0]["error"] == "could not apply delivery: boom" and "body" not in listed["items"][0]
    one = requests.get(server.url + "/api/deliveries/g-1", timeout=10).json()
    assert json.loads(one["payload"])["workflow_run"]["id"] == 910001 and one["payload_cut"] is False
    assert one["payload"].startswith("{\n  ")  # pretty
    assert requests.get(server.url + "/api/deliveries/nope", timeout=10).status_code == 404

    # One: 202, applied by the processor, then no longer a dead letter (a second replay is a 404).
    assert requests.post(server.url + "/api/deliveries/g-1/replay", headers=JSON, timeout=10).status_code == 202
    server.services.settle()
    with engine.connect() as conn:
        assert conn.execute(select(workflowruns.c.id).where(workflowruns.c.gitid == 910001)).first() is not None
    assert requests.post(server.url + "/api/deliveries/g-1/replay", headers=JSON, timeout=10).status_code == 404
    # A form post cannot replay (a page elsewhere could send one).
    assert requests.post(server.url + "/api/deliveries/g-2/replay", data={"x": 1}, timeout=10).status_code == 415

    # All: the rest go; the broken one fails again and stays a dead letter, with its new error.
    answer = requests.post(server.url + "/api/deliveries/replay", headers=JSON, timeout=10)
    assert answer.status_code == 202 and answer.json()["queued"] == 2
    server.services.settle()
    left = requests.get(server.url + "/api/deliveries", timeout=10).json()["items"]
    assert [d["guid"] for d in left] == ["g-3"] and left[0]["error"] != "could not apply delivery: boom"
    with engine.connect() as conn:
        assert conn.execute(select(workflowruns.c.id).where(workflowruns.c.gitid == 910002)).first() is not None
        actions = conn.execute(select(audit_log.c.action, audit_log.c.actor).order_by(audit_log.c.id)).all()
    assert [tuple(a) for a in actions] == [("delivery.replay", "local"), ("delivery.replay_all", "local")]


def test_a_backfill_runs_in_the_background_and_reports_its_progress(db_path):
    from tests.fakegithub import FakeGitHub

    with FakeGitHub(runs=8) as fake:
        app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET, github_token="T",
                                         github_api_url=fake.url))
        try:
            with LiveServer(app) as live:
                bad = requests.post(live.url + "/api/backfills", json={"repo": "not a repo"}, timeout=10)
                assert bad.status_code == 400 and "owner/name" in bad.json()["error"]
                started = requests.post(live.url + "/api/backfills", json={"repo": fake.repo}, timeout=10)
                assert started.status_code == 202, started.text
                job_id = started.json()["id"]

                def job():
                    return next(j for j in requests.get(live.url + "/api/backfills", timeout=10).json()["items"]
                                if j["id"] == job_id)

                deadline = time.time() + 60
                while job()["state"] == "running" and time.time() < deadline:
                    time.sleep(0.2)
                done = job()
                assert done["state"] == "done" and done["progress"]["runs"] == 8 and done["finished"], done
                with live.services.engine.connect() as conn:
                    stored = conn.execute(select(workflowruns.c.id).where(workflowruns.c.repo == fake.repo)).all()
                    actions = conn.execute(select(audit_log.c.action, audit_log.c.target)).all()
                assert len(stored) == 8
                assert [tuple(a) for a in actions] == [("backfill.start", f"repo:{fake.repo}")]
                assert requests.post(live.url + "/api/reconcile", json={"repo": "x"}, timeout=10).status_code == 400
                assert fake.auth == {"token T"}  # the server's GITHUB_TOKEN

                # A run GitHub never said finished (stored in progress, not updated for days): a reconcile
                # of every repository re-fetches it.
                with live.services.engine.begin() as conn:
                    # (its state key as an in-progress report's: the lowest rank, so GitHub's completed one wins)
                    conn.execute(workflowruns.update().where(workflowruns.c.id == stored[0].id).values(
                        status="in_progress", conclusion=None, updatetime=time.time() - 5 * 86400,
                        statekey="0000|00|000000000000|0"))
                started = requests.post(live.url + "/api/reconcile", json={}, timeout=10)
                assert started.status_code == 202, started.text
                job_id = started.json()["id"]
                deadline = time.time() + 60
                while job()["state"] == "running" and time.time() < deadline:
                    time.sleep(0.2)
                done = job()
                assert (done["kind"], done["target"], done["state"]) == ("reconcile", "all repositories", "done")
                assert done["progress"]["runs"] == 1
                with live.services.engine.connect() as conn:
                    assert conn.execute(select(workflowruns.c.status).where(
                        workflowruns.c.id == stored[0].id)).scalar() == "completed"
        finally:
            app.server.extensions["buildmon"].close()


def test_a_backfill_needs_a_token(server):
    answer = requests.post(server.url + "/api/backfills", json={"repo": "o/r"}, timeout=10)
    assert answer.status_code == 409 and "GITHUB_TOKEN" in answer.json()["error"]
