"""Statements compiled once and sent straight to the driver, for hot paths (the writer, streak reads).

SQLAlchemy Core builds and caches each statement's SQL, but looking it up per call (cache
keys, parameter processing, result set-up) cost more than SQLite's own work for the small
statements the writer runs per delivery.  `execute_prepared` compiles a statement once per
dialect, name and set of parameter keys and hands the SQL string to the driver.
`literals` spells constant lists inline for the same reason, and for partial indexes.
"""
from sqlalchemy import literal_column
from sqlalchemy.engine import Connection

_COMPILED: dict = {}


def execute_prepared(conn: Connection, name: str, statement, params):
    """Run `statement` (known as `name`) with `params` (a dict, or a list of dicts for executemany).

    Compiled once per dialect, name and set of keys and sent straight to the driver:
    SQLAlchemy's per-call compile-cache lookups were most of the writer's time per delivery.
    The statement must be built once (the same object for the same name).
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

    if isinstance(params, list):
        return conn.exec_driver_sql(sql, [bind(p) for p in params])
    return conn.exec_driver_sql(sql, bind(params))


def literals(values) -> list:
    """Constant strings as SQL literals (ours, never user input): a statement with them compiles
    once for the driver, and SQLite sees that a partial index whose WHERE names them applies."""
    assert all(v.replace("_", "").isalnum() for v in values)
    return [literal_column(f"'{v}'") for v in values]
