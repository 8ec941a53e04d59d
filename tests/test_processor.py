"""The ingest pipeline end to end: accept into the inbox, process in batches, dead letters, crashes.

Real SQLite files and a real HTTP server; deliveries are GitHub's examples
(`bench/deliveries.py` varies their ids as a push's runs and jobs would).
"""
import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from bench.deliveries import synthetic_deliveries
from dashapp import create_app
from dashapp.config import Config
from ingest.signature import sign
from store.engine import writing
from store.schema import deliveries, workflowruns
from tests.helpers import SECRET, LiveServer, fixture_bytes, post, snapshot
from tests.receivers import wait_until

pytestmark = pytest.mark.both_stores


def _app(path, **settings):
    return create_app(Config.from_env({}, database_path=str(path), webhook_secret=SECRET, **settings))


def _send(url, items, concurrency=16) -> list[int]:
    local = threading.local()

    def one(item):
        event, guid, body = item
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": guid, "Content-Type": "application/json",
                   "X-Hub-Signature-256": sign(SECRET, body)}
        return session.post(url + "/webhook", data=body, headers=headers, timeout=60).status_code

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, items))


def _count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


def _log(engine) -> list:
    with engine.connect() as conn:
        return sorted(conn.execute(select(deliveries.c.guid, deliveries.c.event, deliveries.c.outcome,
                                          deliveries.c.error)).all())


@pytest.mark.slow
def test_deliveries_accepted_while_the_processor_is_stopped_are_all_applied_when_it_starts(new_store, store_kind):
    """Must-show 3: 5,000 deliveries posted with no processor are answered 2xx, then applied as if it had run
    (1,000 on PostgreSQL: the same paths, a fifth of the minute the suite would spend there)."""
    count = 5000 if store_kind == "sqlite" else 1000
    items = synthetic_deliveries(count, seed=11)
    stopped = _app(new_store("stopped"), processor="off")
    with LiveServer(stopped) as live:
        codes = _send(live.url, items)
        services = live.services
        assert codes == [202] * len(items)
        assert services.inbox.pending()[0] == count
        assert _count(services.engine, deliveries) == 0 and _count(services.engine, workflowruns) == 0
        services.processor.start()
        services.settle(timeout=300)
    running = _app(new_store("running"))
    with LiveServer(running) as live:
        assert _send(live.url, items) == [202] * len(items)
        live.services.settle(timeout=300)
    try:
        assert _count(services.engine, deliveries, deliveries.c.outcome == "processed") == count
        assert snapshot(services.engine) == snapshot(live.services.engine)
        assert _log(services.engine) == _log(live.services.engine)
    finally:
        stopped.server.extensions["buildmon"].close()
        running.server.extensions["buildmon"].close()


def _items(n, seed=3):
    return synthetic_deliveries(n, seed=seed)


def test_a_batch_is_applied_in_one_transaction_and_each_delivery_logged(new_store):
    app = _app(new_store("b"), processor="off", processor_batch=500)
    services = app.server.extensions["buildmon"]
    try:
        with LiveServer(app) as live:
            assert set(_send(live.url, _items(120))) == {202}
        assert services.processor.process_batch() == 120  # one batch: all of them
        assert services.inbox.pending()[0] == 0
        with services.engine.connect() as conn:
            rows = conn.execute(select(deliveries.c.outcome, deliveries.c.received, deliveries.c.processed)).all()
        assert len(rows) == 120 and {r.outcome for r in rows} == {"processed"}
        assert all(r.processed >= r.received for r in rows)
    finally:
        services.close()


def _poison(engine, repo: str) -> None:
    """A trigger that makes the derived refresh of `repo`'s runs fail (as a derived-table bug would)."""
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql(
                f"CREATE TRIGGER poison BEFORE INSERT ON rollup_days WHEN NEW.repo = '{repo}' "
                "BEGIN SELECT RAISE(ABORT, 'derived refresh broke'); END")
        else:
            conn.exec_driver_sql(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'derived refresh broke'; END $$")
            conn.exec_driver_sql(f"CREATE TRIGGER poison BEFORE INSERT ON rollup_days FOR EACH ROW "
                                 f"WHEN (NEW.repo = '{repo}') EXECUTE FUNCTION poison()")


def _cure(engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TRIGGER poison" + ("" if conn.dialect.name == "sqlite" else " ON rollup_days"))


def test_a_delivery_that_breaks_its_batch_is_dead_lettered_and_never_blocks_the_rest(new_store):
    app = _app(new_store("p"), processor="off")
    services = app.server.extensions["buildmon"]
    try:
        good = _items(60, seed=5)
        evil = json.loads(fixture_bytes("workflow_run/completed.payload.json"))
        evil["repository"]["full_name"] = "evil/repo"
        evil["workflow_run"]["id"] = 999_000_001
        with LiveServer(app) as live:
            assert set(_send(live.url, good[:30])) == {202}
            assert post(live.url, "workflow_run", json.dumps(evil).encode(), guid="evil-1").status_code == 202
            assert set(_send(live.url, good[30:])) == {202}
        # Its rollup row fails the whole batch's derived refresh, after every delivery's savepoint.
        _poison(services.engine, "evil/repo")
        services.processor.start()
        services.settle(timeout=60)
        log = {guid: (outcome, error) for guid, _event, outcome, error in _log(services.engine)}
        assert log["evil-1"][0] == "failed" and "derived refresh broke" in log["evil-1"][1]
        assert all(log[guid][0] == "processed" for _e, guid, _b in good)
        assert _count(services.engine, workflowruns, workflowruns.c.gitid == 999_000_001) == 0
        # After the fix, the dead letter is replayed like any failed delivery.
        _cure(services.engine)
        # As init_db.py --replay does: a writer's transaction, which waits its turn behind the running processor
        # (a deferred one that reads first fails at once when the processor's idle pass writes meanwhile).
        with writing(services.engine) as conn:
            from ingest.delivery import replay
            assert replay(conn) == {"processed": 1}
        assert _count(services.engine, workflowruns, workflowruns.c.gitid == 999_000_001) == 1
    finally:
        services.close()


@pytest.mark.sqlite_only  # on PostgreSQL the rows leave the inbox in their batch's own transaction
def test_a_crash_between_the_commit_and_the_inbox_removal_applies_nothing_twice(new_store):
    app = _app(new_store("c"), processor="off")
    services = app.server.extensions["buildmon"]
    try:
        with LiveServer(app) as live:
            assert set(_send(live.url, _items(40), concurrency=1)) == {202}
        rows = services.inbox.take(25)
        services.processor._apply(rows)  # committed in the store, still in the inbox: the crash window
        once = snapshot(services.engine)
        log_once = _log(services.engine)
        assert services.inbox.pending()[0] == 40
        while services.processor.process_batch():
            pass
        assert services.inbox.pending()[0] == 0
        log = _log(services.engine)
        assert len(log) == 40 and {outcome for _g, _e, outcome, _err in log} == {"processed"}
        assert [entry for entry in log if entry[0] in {r.guid for r in rows}] == log_once
        # The first 25 were not applied again: their rows are as the first application left them.
        again = _app(new_store("c2"), processor="off")
        try:
            with LiveServer(again) as live:
                items = _items(40)
                assert set(_send(live.url, items[:25], concurrency=1)) == {202}
            while again.server.extensions["buildmon"].processor.process_batch():
                pass
            assert snapshot(again.server.extensions["buildmon"].engine) == once
        finally:
            again.server.extensions["buildmon"].close()
    finally:
        services.close()


def test_the_inbox_group_commits_concurrent_deliveries_and_knows_duplicates(new_store):
    from store.inbox import Accepted

    app = _app(new_store("g"), processor="off")
    services = app.server.extensions["buildmon"]
    try:
        results = {}
        start = threading.Barrier(32)

        def client(i):
            start.wait()
            results[i] = services.inbox.append(Accepted(f"g-{i % 24}", "ping", "application/json", 1.0 + i, b"{}"))

        threads = [threading.Thread(target=client, args=(i,)) for i in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(results.values()) == 24  # each GUID once; the 8 repeats are duplicates
        assert services.inbox.pending()[0] == 24
        services.processor.process_batch()
        # Applied GUIDs stay known after they leave the inbox.
        assert services.inbox.append(Accepted("g-3", "ping", "application/json", 99.0, b"{}")) is False
        assert services.inbox.append(Accepted("g-new", "ping", "application/json", 99.0, b"{}")) is True
    finally:
        services.close()


def test_health_and_metrics_show_the_processing_lag(new_store):
    app = _app(new_store("h"), processor="off")
    services = app.server.extensions["buildmon"]
    try:
        with LiveServer(app) as live:
            assert set(_send(live.url, _items(10))) == {202}
            health = requests.get(live.url + "/healthz", timeout=10).json()
            assert health["inbox"]["pending"] == 10 and health["inbox"]["lag_s"] >= 0
            metrics = requests.get(live.url + "/metrics", timeout=10).text
            assert "buildmon_inbox_pending 10.0" in metrics
            services.processor.start()
            services.settle()
            health = requests.get(live.url + "/healthz", timeout=10).json()
            assert health["inbox"] == {"pending": 0, "lag_s": 0.0}
            metrics = requests.get(live.url + "/metrics", timeout=10).text
            assert "buildmon_inbox_pending 0.0" in metrics and "buildmon_processor_active 1.0" in metrics
            assert 'buildmon_deliveries_processed_total{event="workflow_run",outcome="processed"}' in metrics
    finally:
        services.close()


@pytest.mark.sqlite_only  # reads SQLite's query plan
def test_the_accept_time_duplicate_check_reads_the_guid_index_only(new_store):
    """It runs on every group commit: read through the outcome index it cost 14 ms at 14,000 deliveries."""
    from sqlalchemy import select as select_

    from store.inbox import Inbox

    app = _app(new_store("d"), processor="off")
    services = app.server.extensions["buildmon"]
    try:
        captured = []

        class Spy:
            def __init__(self, conn):
                self.conn = conn

            def execute(self, statement):
                captured.append(statement)
                return self.conn.execute(statement)

        with services.engine.connect() as conn:
            assert Inbox._applied(Spy(conn), [f"g-{i}" for i in range(12)]) == set()  # a group's worth
            compiled = captured[0].compile(conn, compile_kwargs={"literal_binds": True})
            plan = " ".join(row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}"))
        assert "sqlite_autoindex_deliveries_1" in plan and "outcome" not in plan, plan
        assert isinstance(captured[0], type(select_(deliveries.c.guid)))
    finally:
        services.close()


def test_a_processor_that_cannot_ask_for_its_lock_tries_again(new_store, monkeypatch):
    """A database still shutting down refuses the connection the lock is asked on: the processor waits
    and asks again rather than ending."""
    app = _app(new_store("lock"), processor="off")
    services = app.server.extensions["buildmon"]
    lock, asked = services.processor.lock, []
    acquire = lock.acquire

    def refused_once():
        asked.append(1)
        if len(asked) == 1:
            raise ConnectionError("the database system is shutting down")
        return acquire()

    monkeypatch.setattr(lock, "acquire", refused_once)
    try:
        with LiveServer(app) as live:
            services.processor.start()
            assert _send(live.url, _items(1, seed=5)) == [202]
            services.settle(timeout=30)
            # On PostgreSQL processing does not wait for the lock (it leads the periodic work): it asks again.
            wait_until(lambda: len(asked) >= 2, what="the lock asked for again")
        assert len(asked) >= 2 and [outcome for _g, _e, outcome, _err in _log(services.engine)] == ["processed"]
    finally:
        services.close()


@pytest.mark.postgresql_only  # a SQLite store has no server to restart
def test_a_database_restart_between_two_deliveries_loses_neither(db_path, pg_cluster):
    app = _app(db_path)
    services = app.server.extensions["buildmon"]
    first, second = _items(2, seed=9)
    try:
        with LiveServer(app) as live:
            assert _send(live.url, [first]) == [202]
            services.settle(timeout=30)
            pg_cluster.restart()  # every connection the server holds (pool, processor lock) is gone
            assert _send(live.url, [second]) == [202]
            services.settle(timeout=30)
        assert [(guid, outcome) for guid, _e, outcome, _err in _log(services.engine)] == sorted(
            [(first[1], "processed"), (second[1], "processed")])
        with services.engine.connect() as conn:  # the processor took its lock again, in a new session
            wait_until(lambda: conn.exec_driver_sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
                   .scalar() == 1)
    finally:
        services.close()
