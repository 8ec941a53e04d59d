"""The store's write queue and prepared statements on a real SQLite file: batches, savepoints, on_commit."""
import threading

import pytest
from sqlalchemy import bindparam, exc, func, select
from sqlalchemy.dialects.sqlite import insert

from store.engine import make_engine, writer_options
from store.migrate import upgrade
from store.prepared import execute_prepared, savepoint
from store.schema import repos
from store.writequeue import WriteQueue

INSERT = insert(repos)
NAMED = select(repos.c.id).where(repos.c.name == bindparam("n"))


@pytest.fixture
def engine(tmp_path):
    engine = make_engine(str(tmp_path / "q.db"))
    upgrade(engine)
    yield engine
    engine.dispose()


def _names(engine) -> list:
    with engine.connect() as conn:
        return sorted(conn.execute(select(repos.c.name)).scalars())


def _add(name):
    def work(conn):
        execute_prepared(conn, "test_repo_insert", INSERT, {"name": name})
        return name
    return work


def _fail(conn):
    execute_prepared(conn, "test_repo_insert", INSERT, {"name": "half-written"})
    raise RuntimeError("a bug in the middle of a write")


def test_a_failing_write_loses_only_itself_and_the_rest_commit(engine):
    queue = WriteQueue(engine)
    results, errors = {}, []
    start = threading.Barrier(24)

    def client(i):
        start.wait()
        try:
            results[i] = queue.submit(_fail if i % 6 == 0 else _add(f"o/r{i}"))
        except RuntimeError as error:
            errors.append(str(error))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 4 and all("a bug" in e for e in errors)
    expected = sorted(f"o/r{i}" for i in range(24) if i % 6)
    assert sorted(results.values()) == expected
    assert _names(engine) == expected  # nothing of the failed writes, every other one committed


def test_on_commit_runs_after_the_commit_in_order_before_submit_returns(engine):
    queue = WriteQueue(engine)
    seen, order, lock = [], [], threading.Lock()

    def on_commit(name):
        seen.append((name, name in _names(engine)))  # another connection sees it: committed
        with lock:
            order.append(name)

    def client(i):
        assert queue.submit(_add(f"o/c{i}"), on_commit=on_commit) == f"o/c{i}"
        with lock:
            assert f"o/c{i}" in order  # published before the answer

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 16 and all(committed for _name, committed in seen)
    with engine.connect() as conn:  # ids follow the order of application: on_commit ran in that order
        ids = dict(conn.execute(select(repos.c.name, repos.c.id)).all())
    assert order == sorted(order, key=ids.get)


def test_on_commit_failing_does_not_fail_the_committed_write(engine):
    queue = WriteQueue(engine)

    def broken(_value):
        raise RuntimeError("publish failed")

    assert queue.submit(_add("o/x"), on_commit=broken) == "o/x"
    assert _names(engine) == ["o/x"]


def test_the_writer_recovers_after_a_batch_fails_to_commit(engine):
    queue = WriteQueue(engine)

    def poison(conn):  # ends the transaction under the queue: its commit must fail
        conn.connection.driver_connection.execute("ROLLBACK")
        return "gone"

    with pytest.raises(Exception):
        queue.submit(poison)
    assert queue.submit(_add("o/after")) == "o/after"
    assert _names(engine) == ["o/after"]


def test_prepared_statements_on_sqlite_answer_as_sqlalchemy_does(engine):
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        assert execute_prepared(conn, "test_repo_insert", INSERT, {"name": "o/a"}).rowcount == 1
        execute_prepared(conn, "test_repo_insert", INSERT, [{"name": "o/b"}, {"name": "o/c"}])
        assert execute_prepared(conn, "test_named", NAMED, {"n": "o/zzz"}).scalar() is None
        first = execute_prepared(conn, "test_named", NAMED, {"n": "o/a"}).scalar_one()
        assert execute_prepared(conn, "test_named", NAMED, {"n": "o/a"}).first() == (first,)
        assert [tuple(r) for r in execute_prepared(conn, "test_named", NAMED, {"n": "o/b"})] == [(first + 1,)]
        with pytest.raises(exc.NoResultFound):
            execute_prepared(conn, "test_named", NAMED, {"n": "o/zzz"}).scalar_one()
        with pytest.raises(exc.IntegrityError) as raised:  # wrapped as SQLAlchemy wraps it
            execute_prepared(conn, "test_repo_insert", INSERT, {"name": "o/a"})
        assert "UNIQUE" in str(raised.value)


def test_savepoint_rolls_back_only_its_block(engine):
    with engine.connect().execution_options(**writer_options()) as conn:
        with conn.begin():
            execute_prepared(conn, "test_repo_insert", INSERT, {"name": "o/kept"})
            with pytest.raises(RuntimeError):
                with savepoint(conn, "outer"):
                    execute_prepared(conn, "test_repo_insert", INSERT, {"name": "o/outer"})
                    with savepoint(conn, "inner"):
                        execute_prepared(conn, "test_repo_insert", INSERT, {"name": "o/inner"})
                    raise RuntimeError("undo both")
            with savepoint(conn, "outer"):
                execute_prepared(conn, "test_repo_insert", INSERT, {"name": "o/second"})
            assert conn.execute(select(func.count()).select_from(repos)).scalar() == 2
    assert _names(engine) == ["o/kept", "o/second"]
