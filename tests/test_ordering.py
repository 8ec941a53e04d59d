"""Any arrival order of a run's and its jobs' events ends in the same state.

A hypothesis property over permutations and duplications of a real event
sequence (GitHub's example payloads, moved through a run's life: requested,
in_progress, completed, re-run; jobs queued, in_progress, completed).
"""
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.delivery import decode, record
from store.engine import make_engine, writer_options
from tests.helpers import fixture_json, snapshot


def _run(status, conclusion=None, attempt=1, updated="2020-10-05T16:33:49Z", started="2020-10-05T16:33:30Z"):
    payload = copy.deepcopy(fixture_json("workflow_run/completed.payload.json"))
    payload["action"] = {"queued": "requested"}.get(status, status)
    payload["workflow_run"].update(status=status, conclusion=conclusion, run_attempt=attempt,
                                   updated_at=updated, run_started_at=started)
    return "workflow_run", payload


def _job(job_id, status, conclusion=None, attempt=1, name="test"):
    source = {"queued": "queued.payload.json", "in_progress": "in_progress.payload.json"}.get(
        status, "completed.failure.with-organization.payload.json")
    payload = copy.deepcopy(fixture_json(f"workflow_job/{source}"))
    payload["workflow_job"].update(id=job_id, run_id=289782451, run_attempt=attempt, name=name,
                                   status=status, conclusion=conclusion)
    payload["repository"] = fixture_json("workflow_run/completed.payload.json")["repository"]
    return "workflow_job", payload


SEQUENCE = [
    _run("queued", updated="2020-10-05T16:33:24Z"),
    _job(1, "queued"), _job(2, "queued", name="lint"),
    _run("in_progress", updated="2020-10-05T16:33:40Z"),
    _job(1, "in_progress"), _job(1, "completed", "failure"),
    _job(2, "in_progress", name="lint"), _job(2, "completed", "success", name="lint"),
    _run("completed", "failure", updated="2020-10-05T16:40:00Z"),
    # Re-run of the failed job: attempt 2 succeeds.
    _run("queued", attempt=2, updated="2020-10-05T17:00:00Z", started="2020-10-05T17:00:00Z"),
    _job(3, "queued", attempt=2), _job(3, "completed", "success", attempt=2),
    _run("completed", "success", attempt=2, updated="2020-10-05T17:10:00Z", started="2020-10-05T17:00:00Z"),
]
BODIES = [(event, json.dumps(payload).encode()) for event, payload in SEQUENCE]


pytestmark = pytest.mark.both_stores


def _final_state(stores, order, name):
    location = stores.new_migrated(name)
    engine = make_engine(location)
    with engine.connect().execution_options(**writer_options()) as conn:
        with conn.begin():
            for n, (index, redeliver) in enumerate(order):
                event, body = BODIES[index]
                guid = f"g{index}" if redeliver else f"g{index}-{n}"
                outcome = record(conn, guid, event, body, decode(event, body), received=1_600_000_000 + n)
                assert outcome.status == 200, outcome.reason
    state = snapshot(engine)
    engine.dispose()
    stores.discard(location)
    return state


@pytest.fixture(scope="module")
def in_order(module_stores):
    return _final_state(module_stores, [(i, True) for i in range(len(BODIES))], "o")


def test_in_order_state_is_the_expected_one(in_order):
    (run,) = in_order["workflowruns"]
    assert "completed" in run and "success" in run and 2 in run  # latest attempt: 2, success
    assert [(a[1], a[3]) for a in in_order["runattempts"]] == [(1, "completed"), (2, "completed")]
    assert sorted((j[0], j[9]) for j in in_order["jobs"]) == [(1, "failure"), (2, "success"), (3, "success")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_duplicates_give_the_same_state(module_stores, in_order, data):
    indexes = list(range(len(BODIES)))
    extra = data.draw(st.lists(st.sampled_from(indexes), max_size=len(BODIES)), label="duplicates")
    order = data.draw(st.permutations(indexes + extra), label="order")
    redeliver = data.draw(st.lists(st.booleans(), min_size=len(order), max_size=len(order)), label="same guid")
    state = _final_state(module_stores, list(zip(order, redeliver)), "s")
    assert state == in_order
