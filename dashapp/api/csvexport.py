"""`/api/builds.csv`: the build history as CSV, streamed in constant memory.

Rows come from `store.queries.builds` in keyset batches and leave as soon as
each batch is formatted; times are ISO 8601 UTC, quoting is the csv module's
(minimal, `\r\n`), and text cells that a spreadsheet would run as a formula
are defused with a leading apostrophe (OWASP's CSV injection advice).

Two formatters say the same thing byte for byte (tests/test_csv.py compares
them): `cells` in Python, the reference, and `sqlite_line`, which has SQLite
build each whole CSV line (one string per row instead of twenty Python
objects, and the work runs outside the GIL).  The export uses the SQL one on
SQLite and falls back to Python for any row whose values it cannot format
exactly (a fractional time or duration, a time outside years 1970-9999), and
for other databases.
"""
import csv
import io
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from sqlalchemy import Integer, Text, and_, case, cast, func, literal, or_

from store.queries import builds
from store.queries.builds import FIELDS

TIME_FIELDS = ("createtime", "starttime", "endtime", "updatetime")
TEXT_FIELDS = ("repo", "workflow", "branch", "sha", "message", "title", "author", "commit_author", "event", "status",
               "conclusion", "url")
FORMULA_START = "=+-@\t\r"
CHUNK_ROWS = 500


def iso(epoch: float | None) -> str:
    """ISO 8601 UTC (`2024-05-01T12:00:00Z`, with milliseconds when the time has a fraction)."""
    if epoch is None:
        return ""
    whole = int(epoch)
    if whole == epoch:
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % time.gmtime(whole)[:6]
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def defuse(text: str) -> str:
    """Text a spreadsheet will show as text, never evaluate."""
    return "'" + text if text and text[0] in FORMULA_START else text


def _text(value):
    return "" if value is None else defuse(value) if isinstance(value, str) else value


_FORMAT = tuple(iso if name in TIME_FIELDS else _text for name in FIELDS)


def cells(row) -> list:
    """The CSV cells of one row (a tuple in `FIELDS` order)."""
    return [fmt(value) for fmt, value in zip(_FORMAT, row)]


def generate(rows: Iterable[tuple]) -> Iterator[bytes]:
    """The header, then the rows, as UTF-8 chunks.

    `rows` as `builds.iter_rows` returns them (formatted by the database when
    it can), or any iterable of tuples in `FIELDS` order (formatted here).
    """
    if isinstance(rows, builds.ExportRows) and not rows.started and rows.engine.dialect.name in SQL_LINES:
        return _generate_sql(rows)
    return _generate_python(rows)


def _header() -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(FIELDS)
    return buffer.getvalue()


def _generate_python(rows: Iterable[tuple]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(FIELDS)
    pending = 1
    for row in rows:
        writer.writerow(cells(row))
        pending += 1
        if pending >= CHUNK_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if pending:
        yield buffer.getvalue().encode()


def python_line(row) -> str:
    """One row as a CSV line, by the Python formatter."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(cells(row))
    return buffer.getvalue()


def _generate_sql(rows: "builds.ExportRows") -> Iterator[bytes]:
    line = SQL_LINES[rows.engine.dialect.name](builds.export_columns(rows.attempts))
    yield _header().encode()
    batches = builds.iter_batches(rows.engine, rows.filters, (line.label("line"),), attempts=rows.attempts,
                                  batch=rows.batch, after=rows.after)
    for batch in batches:
        lines = [row[0] for row in batch]
        if None in lines:  # a value SQL cannot format exactly: this row by the Python formatter
            for i, row in enumerate(batch):
                if row[0] is None:
                    stored = builds.row_by_key(rows.engine, rows.filters, row[1:], attempts=rows.attempts)
                    lines[i] = "" if stored is None else python_line(stored)
        yield "".join(lines).encode()


# --- The same formatting in SQL -------------------------------------------------------------
# The only dialect-specific code of the export.  SQLite: strftime for the times,
# GLOB for the quoting and formula tests, printf to join the cells.  Another database gets the
# Python formatter until it has its own `*_line` here (on PostgreSQL the natural
# one is COPY (SELECT <defused, ISO-formatted cells>) TO STDOUT WITH (FORMAT csv)).

_FLOAT_FIELDS = ("runtime", "queuetime")
_MAX_EPOCH = 253402300800  # 10000-01-01: ISO years have four digits
_NEEDS_QUOTES = '*[,"\r\n]*'  # GLOB: the csv module's minimal quoting (delimiter, quote, line ends)
_FORMULA = "[=+@\t\r-]*"  # GLOB: starts with a character of FORMULA_START
assert set(_FORMULA[1:-2]) == set(FORMULA_START)


def sqlite_line(columns: dict):
    """A SQLite expression for a row's whole CSV line (`\r\n` included), NULL when it cannot say it exactly.

    `columns` maps each field to its column (`builds.export_columns`).  Exact
    for whole-second times from 1970 to 9999 and whole-number durations below
    1e15 (what GitHub's second-precision times give); a row with any other
    time or duration is NULL, and the export formats it in Python.  Text
    columns hold text or NULL (TEXT affinity stores numbers as text; nothing
    writes blobs), integer columns integers.  printf's %s writes NULL as "".
    """
    guards, cells = [], []
    for name in FIELDS:
        column = columns[name]
        whole = cast(column, Integer)
        if name in TIME_FIELDS:
            guards.append(or_(column.is_(None), and_(column == whole, column >= 0, column < _MAX_EPOCH)))
            cells.append(func.strftime("%Y-%m-%dT%H:%M:%SZ", column, "unixepoch"))
        elif name in _FLOAT_FIELDS:
            # repr() of a whole float below 1e16 is its digits and ".0"
            guards.append(or_(column.is_(None), and_(column == whole, func.abs(column) < 1e15)))
            cells.append(cast(whole, Text) + literal(".0", Text))
        elif name in TEXT_FIELDS:
            cells.append(_sqlite_text(column))
        else:
            cells.append(column)
    return case((and_(*guards), func.printf(",".join(["%s"] * len(cells)) + "\r\n", *cells)), else_=None)


def _sqlite_text(column):
    """`defuse`, then quoted when the csv module would quote it (a quote, comma, CR or LF)."""
    formula = column.op("GLOB")(_FORMULA)
    return case(
        (column.op("GLOB")(_NEEDS_QUOTES),
         literal('"', Text) + case((formula, "'"), else_="") + func.replace(column, '"', '""') + '"'),
        (formula, literal("'", Text) + column),
        else_=column)


SQL_LINES = {"sqlite": sqlite_line}  # dialect name -> line expression builder; others use Python


def filename(now: float) -> str:
    return "builds-" + datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".csv"
