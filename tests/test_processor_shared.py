"""Several processors on one PostgreSQL inbox (store/inbox.py: `key_pending`, `pick`, `claim`) and the
repository key they share it by (ingest/delivery.py).

Real PostgreSQL databases and a real HTTP server; the deliveries come from `bench/deliveries.py`, taking
turns over a few repositories.
"""
import json

import pytest
from sqlalchemy import select

from bench.deliveries import synthetic_deliveries
from store.schema import deliveries
from tests.helpers import LiveServer, snapshot
from tests.receivers import wait_until
from tests.test_processor import _app, _log, _send

pytestmark = pytest.mark.both_stores


def _processors(services, n: int, batch: int) -> list:
    """`n` more processors on the services' inbox, as other processes would run them."""
    from prometheus_client import CollectorRegistry

    from ingest.processor import Processor, ProcessorStats

    return [Processor(services.engine, services.inbox, publish=lambda _m: None, batch=batch,
                      stats=ProcessorStats(CollectorRegistry())) for _ in range(n)]


def _applied_by(processor) -> float:
    return sum(sample.value for metric in processor.stats.outcomes.collect() for sample in metric.samples
               if sample.name.endswith("_total"))


def _applied_order(engine) -> dict:
    """Each repository's delivery GUIDs in the order they were applied."""
    with engine.connect() as conn:
        rows = conn.execute(select(deliveries.c.repo, deliveries.c.guid).order_by(deliveries.c.id)).all()
    out: dict = {}
    for repo, guid in rows:
        out.setdefault(repo, []).append(guid)
    return out


@pytest.mark.postgresql_only  # a SQLite inbox has one processor at a time
def test_processors_share_the_inbox_one_repository_each_in_arrival_order(new_store):
    items = synthetic_deliveries(240, seed=21, repos=6)
    app = _app(new_store("shared"), processor="off")
    services = app.server.extensions["buildmon"]
    workers = _processors(services, 2, batch=15)
    try:
        with LiveServer(app) as live:
            assert _send(live.url, items, concurrency=1) == [202] * len(items)  # one at a time: arrival order
        for worker in workers:
            worker.start()
        wait_until(lambda: services.inbox.pending()[0] == 0, timeout=60, what="the inbox emptied")
        for worker in workers:
            worker.stop()
        log = _log(services.engine)
        assert len(log) == len(items) and {outcome for _g, _e, outcome, _err in log} == {"processed"}
        assert all(_applied_by(worker) for worker in workers), [_applied_by(worker) for worker in workers]
        assert sum(_applied_by(worker) for worker in workers) == len(items)
        sent: dict = {}
        for _event, guid, body in items:
            sent.setdefault(json.loads(body)["repository"]["full_name"], []).append(guid)
        assert _applied_order(services.engine) == sent  # per repository, the order they arrived in
        single = _app(new_store("single"))
        try:
            with LiveServer(single) as live:
                assert _send(live.url, items, concurrency=1) == [202] * len(items)
                live.services.settle(timeout=60)
            assert snapshot(services.engine) == snapshot(single.server.extensions["buildmon"].engine)
        finally:
            single.server.extensions["buildmon"].close()
    finally:
        for worker in workers:
            worker.stop()
        services.close()


@pytest.mark.postgresql_only
def test_a_processor_killed_in_its_batch_leaves_it_to_the_others(new_store):
    """A processor whose session dies holding a batch (its process killed) leaves nothing half-done: the
    server rolls its transaction back, its rows and repository locks are free, and another applies them."""
    from ingest.delivery import repository_key

    items = synthetic_deliveries(120, seed=22, repos=3)
    app = _app(new_store("killed"), processor="off")
    services = app.server.extensions["buildmon"]
    box = services.inbox
    try:
        with LiveServer(app) as live:
            assert _send(live.url, items, concurrency=1) == [202] * len(items)
        box.key_pending(repository_key)
        # The "killed" processor: it has claimed the first repository's rows in its batch transaction.
        victim = services.engine.connect()
        victim.begin()
        rows, _held = box.pick(1000)
        first = rows[0].repo
        held = [row for row in rows if row.repo == first]
        assert box.claim(victim, held) == held
        pid = victim.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        [survivor] = _processors(services, 1, batch=50)
        while survivor.process_batch():
            pass
        # The others' rows are applied; the held repository's wait.
        assert len(_log(services.engine)) == 120 - len(held) and box.pending()[0] == len(held)
        with services.engine.connect() as conn:
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({pid})").scalar()
        victim.invalidate()
        wait_until(lambda: survivor.process_batch() == 0 and box.pending()[0] == 0, timeout=30,
                   what="the killed processor's rows taken over")
        log = _log(services.engine)
        assert len(log) == 120 and {outcome for _g, _e, outcome, _err in log} == {"processed"}
    finally:
        services.close()


@pytest.mark.postgresql_only
def test_processors_live_messages_reach_other_processes_in_commit_order(new_store):
    """Each batch's live messages are committed with it (live/pgbus.py `send_in`): a listening process reads
    every run's reports in the order they were applied, whichever of two processors applied them."""
    from live.pgbus import PgBus

    items = synthetic_deliveries(200, seed=24, repos=2, jobs_per_run=1)
    app = _app(new_store("order"), processor="off")
    services = app.server.extensions["buildmon"]
    heard: list = []
    listener = PgBus(services.engine, {"live": lambda body: heard.extend(json.loads(body))})
    workers = _processors(services, 2, batch=4)
    for worker in workers:
        worker.publish, worker.publish_in = (lambda _messages, sent=False: None), services.bus.send_in
    try:
        with LiveServer(app) as live:
            assert _send(live.url, items, concurrency=1) == [202] * len(items)
        for worker in workers:
            worker.start()
        wait_until(lambda: services.inbox.pending()[0] == 0, timeout=60, what="the inbox emptied")
        runs = {json.loads(body)["workflow_run"]["id"] for event, _g, body in items if event == "workflow_run"}
        wait_until(lambda: {m["row"]["id"] for m in heard if m["type"] == "run"} >= runs, timeout=30,
                   what="every run's messages heard")
        assert all(_applied_by(worker) for worker in workers)
        rank = {"queued": 0, "in_progress": 1, "completed": 2}
        seen: dict = {}
        for message in heard:
            if message["type"] == "run":
                seen.setdefault(message["row"]["id"], []).append(rank[message["row"]["status"]])
        assert seen and all(statuses == sorted(statuses) for statuses in seen.values()), seen
    finally:
        for worker in workers:
            worker.stop()
        listener.close()
        services.close()


def test_the_repository_key_is_the_full_name_s_and_never_raises():
    """The shared inbox's key (ingest/delivery.py): the same for every delivery of one repository, in JSON or
    form encoding; 0 for what names none or cannot be read (such a row then waits for nothing)."""
    from types import SimpleNamespace
    from urllib.parse import quote

    from ingest.delivery import repository_key

    def key(body: bytes, content_type: str = "application/json") -> int:
        return repository_key(SimpleNamespace(body=body, content_type=content_type))

    first_run = synthetic_deliveries(12, repos=2)  # a run's 3 reports, then its 3 jobs' 9
    assert first_run[0][0] == "workflow_run" and first_run[3][0] == "workflow_job"
    run, job = json.loads(first_run[0][2]), json.loads(first_run[3][2])
    same = key(json.dumps(run).encode())
    assert same == key(json.dumps(job).encode()) != 0 and -2 ** 31 <= same < 2 ** 31
    form = "payload=" + quote(json.dumps(run))
    assert key(form.encode(), "application/x-www-form-urlencoded") == same
    other = json.loads(synthetic_deliveries(24, repos=2)[-1][2])
    assert key(json.dumps(other).encode()) not in (0, same)
    for junk in (b"\xff\xfe", b"[1, 2]", b'{"repository": 3}', b'{"repository": {"full_name": 7}}', b"{" * 100_000,
                 b'{"zen": "ping"}'):
        assert key(junk) == 0
