"""`POST /webhook` over real HTTP: signatures, the inbox, the delivery log, state rules.

A delivery is answered 202 once it is in the inbox; `deliver` also waits for
the processor, so the rows can be checked.
"""
import json
import random

import pytest
from sqlalchemy import func, select

from ingest.signature import sign
from store.schema import deliveries, jobs, runattempts, steps, workflowruns
from tests.helpers import SECRET, deliver, fixture_bytes, post, raw_request, snapshot, webhook_fixtures

RUN_AND_JOB = webhook_fixtures("workflow_run") + webhook_fixtures("workflow_job")


def _count(services, table):
    with services.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


@pytest.mark.parametrize("path", webhook_fixtures())
def test_every_fixture_is_accepted(server, services, path):
    event = path.split("/")[0]
    answer = deliver(server, event, fixture_bytes(path))
    assert answer.status_code == 202 and answer.json()["outcome"] == "accepted", answer.text
    with services.engine.connect() as conn:
        outcomes = conn.execute(select(deliveries.c.outcome)).scalars().all()
    assert outcomes in (["processed"], ["ignored"])


def test_wrong_signature_is_refused_and_stores_nothing(server, services):
    body = fixture_bytes("workflow_run/completed.payload.json")
    before = snapshot(services.engine)
    bad = post(server.url, "workflow_run", body, signature=sign("not the secret", body))
    assert bad.status_code == 401 and "signature" in bad.json()["reason"]
    unsigned = post(server.url, "workflow_run", body, secret=None)
    assert unsigned.status_code == 401
    assert snapshot(services.engine) == before and _count(services, deliveries) == 0


def test_redelivery_changes_nothing(server, services):
    body = fixture_bytes("workflow_run/completed.payload.json")
    first = deliver(server, "workflow_run", body, guid="guid-1")
    rows = snapshot(services.engine)
    again = deliver(server, "workflow_run", body, guid="guid-1")
    assert first.status_code == 202 and first.json()["outcome"] == "accepted"
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert snapshot(services.engine) == rows and _count(services, deliveries) == 1


def test_redelivery_while_still_in_the_inbox_is_a_duplicate(server, services):
    services.processor.stop()
    body = fixture_bytes("workflow_run/completed.payload.json")
    assert post(server.url, "workflow_run", body, guid="guid-2").status_code == 202
    again = post(server.url, "workflow_run", body, guid="guid-2")
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert services.inbox.pending()[0] == 1 and _count(services, deliveries) == 0


def test_completed_is_not_undone_by_a_late_requested(server, services):
    deliver(server, "workflow_run", fixture_bytes("workflow_run/completed.payload.json"))
    deliver(server, "workflow_run", fixture_bytes("workflow_run/requested.payload.json"))
    with services.engine.connect() as conn:
        status, conclusion = conn.execute(select(workflowruns.c.status, workflowruns.c.conclusion)).one()
    assert (status, conclusion) == ("completed", "success")


def test_rerun_keeps_the_failed_attempt(server, services):
    failed = json.loads(fixture_bytes("workflow_run/completed.payload.json"))
    failed["workflow_run"]["conclusion"] = "failure"
    rerun = json.loads(fixture_bytes("workflow_run/completed.payload.json"))
    rerun["workflow_run"].update(run_attempt=2, run_started_at="2020-10-05T16:40:00Z", updated_at="2020-10-05T16:45:00Z")
    for payload in (rerun, failed):  # the re-run's report arrives first
        assert deliver(server, "workflow_run", json.dumps(payload).encode()).status_code == 202
    with services.engine.connect() as conn:
        latest = conn.execute(select(workflowruns.c.run_attempt, workflowruns.c.conclusion, workflowruns.c.runtime)).one()
        attempts = conn.execute(
            select(runattempts.c.attempt, runattempts.c.conclusion).order_by(runattempts.c.attempt)
        ).all()
    assert tuple(latest) == (2, "success", 300.0)
    assert [tuple(a) for a in attempts] == [(1, "failure"), (2, "success")]


def _post_all(server, paths, guids):
    for path, guid in zip(paths, guids):
        answer = post(server.url, path.split("/")[0], fixture_bytes(path), guid=guid)
        assert answer.status_code in (200, 202), answer.text
    server.services.settle()


def test_any_order_with_duplicates_leaves_the_same_rows(tmp_path, config):
    """Must-show 3: run and job fixtures in any order, each twice == once in order."""
    from dashapp import create_app
    from tests.helpers import LiveServer

    def final_rows(paths, guids, name):
        app = create_app(config.__class__(**{**config.__dict__, "database_path": str(tmp_path / name)}))
        with LiveServer(app) as live:
            _post_all(live, paths, guids)
        rows = snapshot(app.server.extensions["buildmon"].engine)
        app.server.extensions["buildmon"].close()
        return rows

    in_order = final_rows(RUN_AND_JOB, RUN_AND_JOB, "ordered.db")
    assert in_order["workflowruns"] and in_order["jobs"] and in_order["steps"]
    rng = random.Random(7)
    for i in range(3):
        twice = RUN_AND_JOB * 2
        rng.shuffle(twice)
        # Half of the repeats are redeliveries (same GUID), half fresh deliveries.
        guids = [p if rng.random() < 0.5 else f"{p}-{n}" for n, p in enumerate(twice)]
        assert final_rows(twice, guids, f"shuffled{i}.db") == in_order


def test_job_steps_are_stored(server, services):
    deliver(server, "workflow_job", fixture_bytes("workflow_job/completed.failure.with-organization.payload.json"))
    with services.engine.connect() as conn:
        job = conn.execute(select(jobs.c.name, jobs.c.conclusion, jobs.c.queuetime, jobs.c.labels)).one()
        failing = conn.execute(select(steps.c.number, steps.c.name).where(steps.c.conclusion == "failure")).all()
    assert tuple(job) == ("linters", "failure", 60.0, '["ubuntu-latest"]')
    assert [tuple(f) for f in failing] == [(8, "Run yarn run format-check")]


@pytest.mark.parametrize(
    "body, headers, status, reason",
    [
        (b"not json", {}, 400, "not a JSON object"),
        (b"[1, 2]", {}, 400, "not a JSON object"),
        (b"{}", {"X-GitHub-Event": ""}, 400, "X-GitHub-Event"),
        (b"{}", {"X-GitHub-Delivery": ""}, 400, "X-GitHub-Delivery"),
        (b"{}", {"Content-Type": "application/x-www-form-urlencoded"}, 400, "no payload field"),
    ],
)
def test_bad_input_is_a_4xx_with_a_reason(server, services, body, headers, status, reason):
    import requests

    base = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": sign(SECRET, body)}
    answer = requests.post(f"{server.url}/webhook", data=body, headers={**base, **headers}, timeout=10)
    assert answer.status_code == status and reason in answer.json()["reason"]
    assert services.inbox.pending()[0] == 0 and _count(services, deliveries) == 0


@pytest.mark.parametrize(
    "body, reason",
    [
        (b"{not json", "not valid JSON"),
        (b"{\xff\xfe}", "UTF-8"),
        (b'{"workflow_run": 3, "repository": {"full_name": "o/r"}}', "workflow_run: expected an object"),
    ],
)
def test_a_signed_body_that_does_not_parse_is_kept_as_a_failed_delivery(server, services, body, reason):
    answer = deliver(server, "workflow_run", body, guid="broken-1")
    assert answer.status_code == 202  # accepted: only the processor parses
    with services.engine.connect() as conn:
        row = conn.execute(select(deliveries.c.outcome, deliveries.c.error, deliveries.c.body)).one()
    assert row.outcome == "failed" and reason in row.error and row.body == body
    assert _count(services, workflowruns) == 0
    assert requests_json(server, "/healthz")["failed_deliveries"] == 1


def requests_json(server, path):
    import requests

    return requests.get(server.url + path, timeout=10).json()


def test_a_failed_delivery_redelivered_is_processed_in_place(server, services):
    deliver(server, "workflow_run", b"{not json", guid="retry-1")
    with services.engine.connect() as conn:
        first_id = conn.execute(select(deliveries.c.id)).scalar()
    good = deliver(server, "workflow_run", fixture_bytes("workflow_run/completed.payload.json"), guid="retry-1")
    assert good.status_code == 202 and good.json()["outcome"] == "accepted"
    with services.engine.connect() as conn:
        row = conn.execute(select(deliveries.c.id, deliveries.c.guid, deliveries.c.outcome, deliveries.c.error)).one()
    assert tuple(row) == (first_id, "retry-1", "processed", None)  # the same log row, updated
    assert _count(services, workflowruns) == 1


def test_oversized_body_is_413(server, services):
    body = b"x" * (25 * 1024 * 1024 + 1)
    answer = post(server.url, "push", body)
    assert answer.status_code == 413
    assert services.inbox.pending()[0] == 0 and _count(services, deliveries) == 0


def test_form_encoded_deliveries_are_read(server, services):
    from urllib.parse import quote

    body = b"payload=" + quote(fixture_bytes("workflow_run/completed.payload.json")).encode()
    import requests

    answer = requests.post(
        f"{server.url}/webhook", data=body, timeout=10,
        headers={"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": "form-1",
                 "Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": sign(SECRET, body)})
    assert answer.status_code == 202, answer.text
    services.settle()
    assert _count(services, workflowruns) == 1


def test_live_messages_follow_the_commits_and_show_the_stored_row(server, services):
    from store.rows import run_rows

    sub = services.hub.subscribe()
    run = json.loads(fixture_bytes("workflow_run/completed.payload.json"))
    for action, status in (("requested", "queued"), ("in_progress", "in_progress"), ("completed", "completed")):
        run["action"] = action
        run["workflow_run"].update(status=status, conclusion="success" if status == "completed" else None)
        assert deliver(server, "workflow_run", json.dumps(run).encode()).status_code == 202
        message = sub.get(timeout=0)  # published before the processor is idle again
        assert message["type"] == "run" and message["row"]["status"] == status
    job = fixture_bytes("workflow_job/completed.success.with-organization.payload.json")
    assert deliver(server, "workflow_job", job).status_code == 202
    message = sub.get(timeout=0)
    assert message["type"] == "job" and set(message["row"]) == {"gitid", "run_gitid", "attempt", "repo"}
    assert sub.get(timeout=0) is None
    with services.engine.connect() as conn:
        stored = run_rows(conn, [run["workflow_run"]["id"]])
    sub = services.hub.subscribe()
    run["action"] = "completed"  # a redelivery under a new guid changes nothing: no message
    assert deliver(server, "workflow_run", json.dumps(run).encode()).status_code == 202
    assert sub.get(timeout=0) is None
    run["workflow_run"]["run_attempt"] = 2  # a re-run: its row as the REST API reads it
    assert deliver(server, "workflow_run", json.dumps(run).encode()).status_code == 202
    row = sub.get(timeout=0)["row"]
    with services.engine.connect() as conn:
        assert [row] == run_rows(conn, [run["workflow_run"]["id"]]) != stored


def _head(length=None, *, chunked=False, signature="sha256=" + "0" * 64, event="push"):
    lines = ["POST /webhook HTTP/1.1", "Host: 127.0.0.1", f"X-GitHub-Event: {event}",
             "X-GitHub-Delivery: raw-1", "Content-Type: application/json"]
    if signature:
        lines.append(f"X-Hub-Signature-256: {signature}")
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {length}")
    return "\n".join(lines)


def _chunks(total, size=1024 * 1024):
    sent = 0
    while sent < total:
        n = min(size, total - sent)
        yield f"{n:x}\r\n".encode() + b"x" * n + b"\r\n"
        sent += n
    yield b"0\r\n\r\n"


@pytest.mark.parametrize("head, reason", [
    (_head(10 * 1024 * 1024, signature=None), b"missing X-Hub-Signature-256"),
    (_head(10 * 1024 * 1024, signature="sha1=abc"), b"not of the form"),
    (_head(26 * 1024 * 1024), b"body over"),
    (_head(chunked=True, signature=None), b"missing X-Hub-Signature-256"),
])
def test_refused_before_the_body_is_read(server, services, head, reason):
    # Only the headers are sent: an answer at all shows the server did not wait for the body.
    status, answer = raw_request(server.url, head)
    assert status in (401, 413) and reason in answer
    assert services.inbox.pending()[0] == 0


def test_a_chunked_body_past_the_cap_is_413_with_its_reason(server, services):
    status, answer = raw_request(server.url, _head(chunked=True), _chunks(26 * 1024 * 1024), timeout=60)
    assert status == 413 and b"body over 26214400 bytes" in answer
    assert services.inbox.pending()[0] == 0


def test_a_chunked_delivery_is_accepted(server, services):
    body = fixture_bytes("workflow_run/completed.payload.json")
    head = _head(chunked=True, signature=sign(SECRET, body), event="workflow_run")
    status, answer = raw_request(server.url, head, [f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"])
    assert status == 202, answer
    services.settle()
    assert _count(services, workflowruns) == 1


def test_a_body_shorter_than_its_length_is_400(server, services):
    status, answer = raw_request(server.url, _head(1000), [b"{" * 10], hang_up=True)
    assert status == 400 and b"the body ended after 10 of 1000 bytes" in answer
    assert services.inbox.pending()[0] == 0
