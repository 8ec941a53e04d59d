"""SQL that SQLite and PostgreSQL spell differently: each difference in one place.

Queries use the aggregates and the arithmetic (minutes_up, floor_div) as SQLAlchemy functions, and the
compiler picks each dialect's spelling;
`insert` gives the dialect's INSERT, for its ON CONFLICT clauses.
"""
from sqlalchemy import Integer, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class distinct_list(FunctionElement):
    """A group's distinct values as a JSON array (SQLite json_group_array, PostgreSQL json_agg)."""
    name = "distinct_list"
    inherit_cache = True


@compiles(distinct_list)
def _distinct_list_sqlite(element, compiler, **kw):
    return f"json_group_array(DISTINCT {compiler.process(element.clauses, **kw)})"


@compiles(distinct_list, "postgresql")
def _distinct_list_postgresql(element, compiler, **kw):
    return f"json_agg(DISTINCT {compiler.process(element.clauses, **kw)})"


def insert(conn: Connection, table: Table):
    """`table`'s INSERT for the connection's dialect (both offer `on_conflict_do_nothing`/`_do_update`)."""
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)


def searches_are_cheap(conn: Connection) -> bool:
    """Whether hundreds of small indexed searches cost less than one statement that reads more: on SQLite
    (in the process: a search is microseconds) yes; on PostgreSQL (each a round trip, and after five a
    generic plan that may not use the index as the values would) no."""
    return conn.dialect.name != "postgresql"


def pipelined(conn: Connection, statements) -> list[list]:
    """The rows of each (SQL, driver arguments) of `statements`, sent together in psycopg's pipeline mode on
    PostgreSQL: the server's answers are read after all were sent, not one round trip each."""
    raw = conn.connection.dbapi_connection
    cursors = []
    try:
        with raw.pipeline():
            for sql, args in statements:
                cursor = raw.cursor()
                cursors.append(cursor)
                cursor.execute(sql, args)
        return [cursor.fetchall() for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def byte_order(conn: Connection, column):
    """`column` as an ORDER BY term that sorts text by its UTF-8 bytes on every store: SQLite's BINARY
    collation does, a PostgreSQL database may have a locale's collation ("C" sorts by bytes)."""
    if conn.dialect.name == "postgresql" and column.type.python_type is str:
        return column.collate("C")
    return column


def reset_sequence(conn: Connection, table: Table) -> None:
    """After rows were inserted with explicit ids, make the ids the database gives `table` follow its highest id.

    A PostgreSQL sequence does not see explicit ids: it would hand out 1, 2... again.  SQLite needs nothing
    (a rowid is max + 1, and AUTOINCREMENT's counter follows explicit ids)."""
    if conn.dialect.name != "postgresql" or len(table.primary_key.columns) != 1:
        return
    column = next(iter(table.primary_key.columns))
    sequence = conn.exec_driver_sql("SELECT pg_get_serial_sequence(%(t)s, %(c)s)",
                                    {"t": table.name, "c": column.name}).scalar()
    if sequence:
        # setval(seq, n, false): the next value is n, so an empty table starts again at 1.
        conn.exec_driver_sql(f"SELECT setval(%(s)s, COALESCE((SELECT max({column.name}) FROM {table.name}), 0) + 1,"
                             f" false)", {"s": sequence})


class minutes_up(FunctionElement):
    """A duration in seconds rounded up to the whole minute, 0 when not positive (`billing.minutes`)."""
    name = "minutes_up"
    type = Integer()
    inherit_cache = True


@compiles(minutes_up)
def _minutes_up_sqlite(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    # SQLite's CAST truncates; a remainder adds the minute.
    return (f"(CASE WHEN {x} > 0 THEN CAST(({x}) / 60.0 AS INTEGER) + "
            f"(({x}) / 60.0 > CAST(({x}) / 60.0 AS INTEGER)) ELSE 0 END)")


@compiles(minutes_up, "postgresql")
def _minutes_up_postgresql(element, compiler, **kw):
    x = compiler.process(element.clauses, **kw)
    return f"(CASE WHEN {x} > 0 THEN CAST(CEIL(({x}) / 60.0) AS INTEGER) ELSE 0 END)"


class floor_div(FunctionElement):
    """floor(x / size) of a time x in epoch seconds and a whole number of seconds: its bucket's number."""
    name = "floor_div"
    type = Integer()
    inherit_cache = True


@compiles(floor_div)
def _floor_div_sqlite(element, compiler, **kw):
    x, size = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(({x}) / ({size}) AS INTEGER)"  # CAST truncates: floor for the positive times stored


@compiles(floor_div, "postgresql")
def _floor_div_postgresql(element, compiler, **kw):
    x, size = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(FLOOR(({x}) / ({size})) AS BIGINT)"
