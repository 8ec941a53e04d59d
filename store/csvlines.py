"""Each run's CSV export line, formatted by SQLite and kept by triggers: the export's SQLite-only code.

The build-history export (`/api/builds.csv`, `dashapp/api/csvexport.py`)
writes one line per run.  Formatting a line costs more than reading it
(quoting and defusing twelve text cells, four ISO times), so on SQLite each
run's line is kept, formatted, in `export_lines` (`run` = `workflowruns.id`)
and the export only reads and joins stored lines.

Triggers keep the table current on every write path (the webhook writer,
backfill, `bench.bulkdb`, a hand-made UPDATE): a run's line is rewritten when
a column it shows changes (its update, a re-run, a name), and all of a
commit's lines when the commit's message or author changes (a commit's
details can arrive after its runs).  A line is NULL when SQL cannot format
it exactly (a fractional time or duration, or text holding a character that
`domain.text.clean` removes: a row stored before text was cleaned); the
export formats such a row in Python.  The triggers' SQL is derived from `sqlite_line`, and `is_current`
compares what a store holds with what this code would install, so a change of
the CSV format never serves stale lines: the export computes lines until a
migration calls `install` again (which also refills the table).

Other databases have no triggers here: the export formats every row itself
(on PostgreSQL the natural equivalent is a trigger or
`COPY (SELECT ...) TO STDOUT WITH (FORMAT csv)`).
"""
from functools import cache

from sqlalchemy import Integer, LargeBinary, Text, and_, case, cast, delete, func, insert, literal, literal_column, \
    not_, or_, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from domain.text import CONTROL_RANGES, FORMULA_START
from store.queries.builds import export_columns
from store.schema import commits, export_lines, workflowruns

# What the CSV says, cell by cell (store/rows.py RUN_COLUMNS gives the fields and their order).
TIME_FIELDS = ("createtime", "starttime", "endtime", "updatetime")
TEXT_FIELDS = ("repo", "workflow", "branch", "sha", "message", "title", "author", "commit_author", "event", "status",
               "conclusion", "url")
FLOAT_FIELDS = ("runtime", "queuetime")
# A text cell starting with a character of FORMULA_START (domain.text) gets a leading apostrophe.

_MAX_EPOCH = 253402300800  # 10000-01-01: ISO years have four digits
_NEEDS_QUOTES = '*[,"\r\n]*'  # GLOB: the csv module's minimal quoting (delimiter, quote, line ends)
_FORMULA = "[" + FORMULA_START.replace("-", "") + "-]*"  # GLOB: starts with a character of FORMULA_START
assert set(_FORMULA[1:-2]) == set(FORMULA_START)
# GLOB: holds a character `domain.text.clean` removes (but NUL: GLOB stops at one; `_NUL` finds it).
# Spelled with char() so that the triggers' SQL stays printable; lone surrogates cannot be stored in UTF-8.
_CONTROL_CODES = [42, 91] + [code for a, b in CONTROL_RANGES if a < "\ud800"
                             for code in (max(ord(a), 1), 45, ord(b))] + [93, 42]


def sqlite_line(columns: dict):
    """A SQLite expression for a row's whole CSV line (`\r\n` included), NULL when it cannot say it exactly.

    `columns` maps each field, in CSV order, to its column
    (`store.queries.builds.export_columns`).  Exact for whole-second times
    from 1970 to 9999 and whole-number durations below 1e15 (what GitHub's
    second-precision times give), and text holding nothing `domain.text.clean`
    removes; any other row is NULL.  Text columns hold text or NULL (TEXT
    affinity stores numbers as text; nothing writes blobs), integer columns
    integers.  printf's %s writes NULL as "" (and stops at a NUL: the guard
    keeps such text away).
    """
    guards, cells = [], []
    for name, column in columns.items():
        if name in TEXT_FIELDS:  # text `clean` would change: the Python formatter's job
            holds_control = column.op("GLOB", is_comparison=True)(func.char(*_CONTROL_CODES))
            guards.append(or_(column.is_(None),
                              and_(not_(holds_control), func.instr(cast(column, LargeBinary), _NUL) == 0)))
        whole = cast(column, Integer)
        if name in TIME_FIELDS:
            guards.append(or_(column.is_(None), and_(column == whole, column >= 0, column < _MAX_EPOCH)))
            cells.append(func.strftime("%Y-%m-%dT%H:%M:%SZ", column, "unixepoch"))
        elif name in FLOAT_FIELDS:
            # repr() of a whole float below 1e16 is its digits and ".0"
            guards.append(or_(column.is_(None), and_(column == whole, func.abs(column) < 1e15)))
            cells.append(cast(whole, Text) + literal(".0", Text))
        elif name in TEXT_FIELDS:
            cells.append(_sqlite_text(column))
        else:
            cells.append(column)
    return case((and_(*guards), func.printf(",".join(["%s"] * len(cells)) + "\r\n", *cells)), else_=None)


_NUL = literal_column("X'00'")


def _sqlite_text(column):
    """`defuse`, then quoted when the csv module would quote it (a quote, comma, CR or LF)."""
    formula = column.op("GLOB")(_FORMULA)
    return case(
        (column.op("GLOB")(_NEEDS_QUOTES),
         literal('"', Text) + case((formula, "'"), else_="") + func.replace(column, '"', '""') + '"'),
        (formula, literal("'", Text) + column),
        else_=column)


# --- Stored lines ---------------------------------------------------------------------------

def _fill(where) -> str:
    """DELETE then INSERT the lines of the runs `where` selects (plain statements: no conflict clause
    for an outer `INSERT OR ...` to override)."""
    w = workflowruns.c
    joined = workflowruns.join(commits, commits.c.id == w.commitid)
    rows = select(w.id, sqlite_line(export_columns())).select_from(joined)
    target = delete(export_lines)
    if where is not None:
        rows, target = rows.where(where), target.where(export_lines.c.run.in_(select(w.id).where(where)))
    statements = (target, insert(export_lines).from_select(["run", "line"], rows))
    return ";\n".join(_sql(s) for s in statements)


def _sql(statement) -> str:
    return str(statement.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))


def _changed(columns) -> str:
    return " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)


@cache
def trigger_ddl() -> dict[str, str]:
    """name -> CREATE TRIGGER statement, for every trigger that keeps `export_lines`."""
    shown = sorted({c.name for expr in export_columns().values() for c in expr.base_columns
                    if c.table is workflowruns} | {"commitid"})
    by_run = _fill(workflowruns.c.id == literal_column("NEW.id"))
    by_commit = _fill(workflowruns.c.commitid == literal_column("NEW.id"))
    return {
        "export_lines_run_insert":
            f"CREATE TRIGGER export_lines_run_insert AFTER INSERT ON workflowruns BEGIN\n{by_run};\nEND",
        "export_lines_run_update":
            f"CREATE TRIGGER export_lines_run_update AFTER UPDATE OF {', '.join(shown)} ON workflowruns\n"
            f"WHEN {_changed(shown)} BEGIN\n{by_run};\nEND",
        "export_lines_run_delete":
            "CREATE TRIGGER export_lines_run_delete AFTER DELETE ON workflowruns BEGIN\n"
            "DELETE FROM export_lines WHERE run = OLD.id;\nEND",
        "export_lines_commit_update":
            "CREATE TRIGGER export_lines_commit_update AFTER UPDATE OF message, author ON commits\n"
            f"WHEN {_changed(('message', 'author'))} BEGIN\n{by_commit};\nEND",
    }


def install(conn: Connection) -> None:
    """(Re)create the triggers and refill `export_lines` from the runs (SQLite; elsewhere nothing)."""
    if conn.dialect.name != "sqlite":
        return
    for name in _installed(conn):
        conn.exec_driver_sql(f"DROP TRIGGER {name}")
    for ddl in trigger_ddl().values():
        conn.exec_driver_sql(ddl)
    for statement in _fill(None).split(";\n"):
        conn.exec_driver_sql(statement)


def _installed(conn: Connection) -> dict[str, str]:
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'export\\_lines\\_%' ESCAPE '\\'")
    return dict(rows.all())


def is_current(conn: Connection) -> bool:
    """Does this store keep its lines with exactly the formatting of this code (and as UTF-8)?"""
    return (conn.dialect.name == "sqlite" and _installed(conn) == trigger_ddl()
            and conn.exec_driver_sql("PRAGMA encoding").scalar() == "UTF-8")


def stored_line():
    """The stored line as bytes (UTF-8, the store's encoding: no decoding and re-encoding per row)."""
    return cast(export_lines.c.line, LargeBinary)
