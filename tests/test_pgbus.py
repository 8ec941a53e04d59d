"""Live updates across processes on a PostgreSQL store (live/pgbus.py, store/livechannel.py).

Buses of one database, each with an engine of its own as a process would have, on the test
cluster; then two real gunicorn servers on one PostgreSQL store, as on two hosts.
"""
import json
import threading
import time

import pytest
from sqlalchemy import select

from dashapp.config import Config
from dashapp.services import Services
from live.bus import LocalBus
from live.pgbus import PgBus
from store import livechannel
from store.engine import make_engine
from store.livechannel import live_messages
from tests.helpers import SECRET

pytestmark = pytest.mark.both_stores
on_postgresql = pytest.mark.postgresql_only


class Received:
    """What a bus's handlers were given, in order: ("live", messages) and ("inbox", None)."""

    def __init__(self):
        self.items = []
        self._cond = threading.Condition()

    def handlers(self) -> dict:
        return {"live": lambda body: self._add(("live", json.loads(body))), "inbox": lambda _b: self._add(("inbox", None))}

    def _add(self, item) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.items) >= count, timeout), self.items
            return list(self.items)


@pytest.fixture
def buses(new_store):
    """buses() -> (bus, what it received), each on an engine of its own, all on one database."""
    url = new_store("bus")
    made = []

    def make():
        engine = make_engine(url)
        got = Received()
        bus = PgBus(engine, got.handlers())
        made.append((bus, engine))
        return bus, got

    yield make
    for bus, engine in made:
        bus.close()
        engine.dispose()


def _batch(n: int, start: int = 0, pad: int = 0) -> list:
    return [{"type": "run", "row": {"id": start + i, "note": "x" * pad}} for i in range(n)]


@on_postgresql
def test_live_batches_reach_the_other_bus_whole_and_in_order_but_not_their_sender(buses):
    a, got_a = buses()
    b, got_b = buses()
    batches = [_batch(3, 0), _batch(1, 10), _batch(300, 100, pad=60)]
    assert len(json.dumps(batches[2])) > 3 * 8000  # past a NOTIFY payload's limit
    for batch in batches:
        a.send("live", batch)
    assert got_b.wait_for(3) == [("live", batch) for batch in batches]
    # A skipped its own batches: B's, sent after them, is the first thing A hears.
    b.send("live", _batch(1, 999))
    assert got_a.wait_for(1) == [("live", _batch(1, 999))]
    time.sleep(0.2)
    assert len(got_b.items) == 3 and len(got_a.items) == 1


@on_postgresql
def test_batches_of_several_senders_arrive_in_commit_order(buses):
    senders = [buses()[0] for _ in range(3)]
    _listener, got = buses()
    threads = [threading.Thread(target=lambda s=s, k=k: [s.send("live", _batch(1, 1000 * k + i)) for i in range(20)])
               for k, s in enumerate(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    received = [batch[0]["row"]["id"] for _kind, batch in got.wait_for(60)]
    with senders[0].engine.connect() as conn:
        bodies = conn.execute(select(live_messages.c.body).order_by(live_messages.c.id)).scalars().all()
    stored = [json.loads(body)[0]["row"]["id"] for body in bodies]
    assert received == stored
    for k in range(3):  # each sender's own order kept
        assert [i for i in received if i // 1000 == k] == [1000 * k + i for i in range(20)]


@on_postgresql
def test_inbox_wakes_the_other_side_without_a_row(buses):
    a, got_a = buses()
    b, got_b = buses()
    a.send("inbox")
    assert got_b.wait_for(1) == [("inbox", None)]
    b.send("inbox")
    assert got_a.wait_for(1) == [("inbox", None)]  # not its own first
    with a.engine.connect() as conn:
        assert conn.execute(live_messages.select()).all() == []


@on_postgresql
def test_old_rows_are_pruned_by_a_sender(buses, monkeypatch):
    a, _got = buses()
    a.send("live", _batch(1))
    with a.engine.begin() as conn:  # as if written long ago
        conn.execute(live_messages.update().values(created=time.time() - livechannel.KEEP - 1))
    a.send("live", _batch(1, 1))  # within PRUNE_EVERY of the first: not pruned yet
    with a.engine.connect() as conn:
        assert len(conn.execute(live_messages.select()).all()) == 2
    monkeypatch.setattr(livechannel, "PRUNE_EVERY", 0.0)
    a.send("live", _batch(1, 2))
    with a.engine.connect() as conn:
        assert [json.loads(r.body)[0]["row"]["id"] for r in conn.execute(live_messages.select())] == [1, 2]


@on_postgresql
def test_a_database_restart_loses_nothing_sent_meanwhile(buses, pg_cluster, monkeypatch):
    a, _got_a = buses()
    b, got_b = buses()
    a.send("live", _batch(1, 1))
    assert got_b.wait_for(1) == [("live", _batch(1, 1))]

    # B may not listen again until the gate opens, so what A sends meanwhile can only reach it by the catch-up.
    gate, attempts = threading.Event(), []

    class Gated(livechannel.Listener):
        def __init__(self, *args, **kwargs):
            attempts.append(time.monotonic())
            if not gate.is_set():
                raise ConnectionError("gate closed")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(livechannel, "Listener", Gated)
    pg_cluster.restart()  # ends every connection: B's listener, both engines' pools
    deadline = time.monotonic() + 10
    while not attempts and time.monotonic() < deadline:
        time.sleep(0.02)
    assert attempts, "B did not notice the lost connection"
    a.send("live", _batch(1, 2))  # B is not listening
    time.sleep(0.3)
    assert len(got_b.items) == 1
    gate.set()
    assert got_b.wait_for(2)[1] == ("live", _batch(1, 2))  # caught up from the table
    a.send("live", _batch(1, 3))
    assert got_b.wait_for(3)[2] == ("live", _batch(1, 3))  # and listening again
    assert len(attempts) >= 2  # it retried while the gate was closed


@on_postgresql
def test_close_ends_the_listener_promptly(new_store):
    engine = make_engine(new_store("bus"))
    bus = PgBus(engine, Received().handlers())
    started = time.monotonic()
    bus.close()
    assert time.monotonic() - started < 1 and not bus._thread.is_alive()
    engine.dispose()


def test_the_bus_follows_the_store(new_store, store_kind):
    services = Services.start(Config.from_env({}, database_path=new_store("builds"), webhook_secret=SECRET),
                              processor=False)
    try:
        assert isinstance(services.bus, PgBus if store_kind == "postgresql" else LocalBus)
    finally:
        services.close()


@on_postgresql
def test_a_worker_without_pages_hears_new_deliveries_and_no_live_batches(new_store):
    """`python -m dashapp worker` has no pages: it listens for wake-ups only, not reading the store after
    every other processor's batch."""
    url = new_store("builds")
    worker = Services.start(Config.from_env({}, database_path=url, webhook_secret=SECRET), processor=False,
                            pages=False)
    web = Services.start(Config.from_env({}, database_path=url, webhook_secret=SECRET), processor=False)
    woken = threading.Event()
    worker.bus.handlers["inbox"] = lambda _body: woken.set()
    try:
        assert set(worker.bus._listener.channels.values()) == {"inbox"}
        assert set(web.bus._listener.channels.values()) == {"inbox", "live"}
        web.bus.send("inbox")
        assert woken.wait(10)
    finally:
        web.close()
        worker.close()
