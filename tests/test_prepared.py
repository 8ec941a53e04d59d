"""Prepared statements and savepoints (store/prepared.py) on a real SQLite file."""
import pytest
from sqlalchemy import bindparam, exc, func, select
from sqlalchemy.dialects.sqlite import insert

from store.engine import writer_options
from store.prepared import execute_prepared, savepoint
from store.schema import repos

pytestmark = pytest.mark.both_stores

INSERT = insert(repos)
NAMED = select(repos.c.id).where(repos.c.name == bindparam("n"))


def _names(engine) -> list:
    with engine.connect() as conn:
        return sorted(conn.execute(select(repos.c.name)).scalars())


def test_prepared_statements_answer_as_sqlalchemy_does(engine):
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
        assert "unique" in str(raised.value).lower()  # SQLite: UNIQUE constraint failed


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
