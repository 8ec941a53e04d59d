"""Statements compiled once and sent straight to the driver, for hot paths (the writer, streak reads).

SQLAlchemy Core builds and caches each statement's SQL, but looking it up per call (cache
keys, parameter processing, result set-up) cost more than SQLite's own work for the small
statements the writer runs per delivery.  `execute_prepared` compiles a statement once per
dialect, name and set of parameter keys and hands the SQL string to the driver.
`literals` spells constant lists inline for the same reason, and for partial indexes.

On SQLite inside a transaction the SQL goes to the sqlite3 connection itself: even
`exec_driver_sql` cost several times SQLite's own work per statement (execution context,
result set-up).  `savepoint` is the same shortcut for a savepoint: SQLAlchemy's
`begin_nested` compiled its SAVEPOINT and RELEASE afresh each time (~20 % of the writer's
CPU with two savepoints a delivery).
"""
import sqlite3
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc
from sqlalchemy import literal_column
from sqlalchemy.engine import Connection

_COMPILED: dict = {}


def execute_prepared(conn: Connection, name: str, statement, params):
    """Run `statement` (known as `name`) with `params` (a dict, or a list of dicts for executemany).

    Compiled once per dialect, name and set of keys and sent straight to the driver:
    SQLAlchemy's per-call compile-cache lookups were most of the writer's time per delivery.
    The statement must be built once (the same object for the same name).  Returns a result
    with SQLAlchemy's `rowcount`, `scalar()`, `scalar_one()`, `first()`, `all()` and iteration
    (rows as tuples).
    """
    first = params[0] if isinstance(params, list) else params
    key = (conn.dialect.name, name, tuple(first))
    prepared = _COMPILED.get(key)
    if prepared is None:
        # An INSERT or UPDATE sets only the columns given (an INSERT's others get their defaults; an
        # UPDATE keeps them); the other keys are the WHERE clause's parameters.
        dml = getattr(statement, "is_insert", False) or getattr(statement, "is_update", False)
        keys = {"column_keys": [k for k in first if k in statement.table.c]} if dml else {}
        compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True}, **keys)
        prepared = _COMPILED[key] = (compiled.string, compiled.positiontup, compiled.construct_params(_check=False))
    sql, order, defaults = prepared

    def bind(p):
        if order is not None:
            return tuple(p[k] if k in p else defaults[k] for k in order)
        return {**defaults, **p}

    many = isinstance(params, list)
    bound = [bind(p) for p in params] if many else bind(params)
    raw = _raw_sqlite(conn)
    if raw is None:
        return conn.exec_driver_sql(sql, bound)
    try:
        return _Result(raw.executemany(sql, bound) if many else raw.execute(sql, bound))
    except sqlite3.Error as error:  # the same exception SQLAlchemy would raise
        raise sa_exc.DBAPIError.instance(sql, bound, error, sqlite3.Error, dialect=conn.dialect,
                                         ismulti=many) from error


@contextmanager
def savepoint(conn: Connection, name: str):
    """A savepoint around a block of `conn`'s transaction: on an exception the block's writes are
    rolled back and the exception goes on (as `with conn.begin_nested():`).  `name` must differ
    from any savepoint open around it."""
    raw = _raw_sqlite(conn)
    if raw is None:
        with conn.begin_nested():
            yield
        return
    raw.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        raw.execute(f"ROLLBACK TO SAVEPOINT {name}")
        raw.execute(f"RELEASE SAVEPOINT {name}")
        raise
    raw.execute(f"RELEASE SAVEPOINT {name}")


def _raw_sqlite(conn: Connection):
    """The sqlite3 connection under `conn` when statements may go to it directly: SQLite through
    pysqlite, inside a transaction SQLAlchemy began (so that its BEGIN and COMMIT frame them)."""
    if conn.dialect.driver != "pysqlite" or not conn.in_transaction():
        return None
    return conn.connection.driver_connection


class _Result:
    """The part of SQLAlchemy's CursorResult the prepared statements' callers use, over a sqlite3 cursor."""
    __slots__ = ("_cursor",)

    def __init__(self, cursor):
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def __iter__(self):
        return iter(self._cursor)

    def all(self) -> list:
        return self._cursor.fetchall()

    def first(self):
        row = self._cursor.fetchone()
        self._cursor.close()
        return row

    def scalar(self):
        row = self.first()
        return None if row is None else row[0]

    def scalar_one(self):
        rows = self._cursor.fetchmany(2)
        self._cursor.close()
        if not rows:
            raise sa_exc.NoResultFound("No row was found when one was required")
        if len(rows) > 1:
            raise sa_exc.MultipleResultsFound("Multiple rows were found when exactly one was required")
        return rows[0][0]


def literals(values) -> list:
    """Constant strings as SQL literals (ours, never user input): a statement with them compiles
    once for the driver, and SQLite sees that a partial index whose WHERE names them applies."""
    assert all(v.replace("_", "").isalnum() for v in values)
    return [literal_column(f"'{v}'") for v in values]
