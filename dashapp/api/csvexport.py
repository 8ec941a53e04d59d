"""`/api/builds.csv`: the build history as CSV, streamed in constant memory.

Rows come from `store.queries.builds` in keyset batches and leave as soon as
each batch is formatted; times are ISO 8601 UTC, quoting is the csv module's
(minimal, `\r\n`), text cells lose NUL, control and bidi characters (rows
stored before records were cleaned; `domain.text.clean`), and text cells that a
spreadsheet would run as a formula are defused with a leading apostrophe
(OWASP's CSV injection advice; every prefix in `domain.text.FORMULA_START`).

Three sources say the same thing byte for byte (tests/test_csv.py compares
them): `cells` in Python, the reference; `store.csvlines.sqlite_line`, which
has SQLite build each whole line; and the lines SQLite keeps formatted in
`export_lines` (`store/csvlines.py`), which the export of the latest attempts
only reads and joins.  Any row whose values SQL cannot format exactly (a
fractional time or duration, a time outside years 1970-9999) is formatted in
Python, and so is every row on other databases.
"""
import csv
import io
import logging
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from domain.text import FORMULA_START, csv_text, defuse
from store import csvlines
from store.csvlines import TEXT_FIELDS, TIME_FIELDS, sqlite_line
from store.queries import builds
from store.queries.builds import FIELDS

CHUNK_ROWS = 500
STORED_BATCH = 2000  # stored lines a batch: 5,000 cost no less CPU and ~6 MB more peak memory (1M runs)
log = logging.getLogger(__name__)
__all__ = ["FORMULA_START", "TEXT_FIELDS", "TIME_FIELDS", "cells", "defuse", "generate", "iso", "sqlite_line"]


def iso(epoch: float | None) -> str:
    """ISO 8601 UTC (`2024-05-01T12:00:00Z`, with milliseconds when the time has a fraction)."""
    if epoch is None:
        return ""
    whole = int(epoch)
    if whole == epoch:
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % time.gmtime(whole)[:6]
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(value):
    return "" if value is None else csv_text(value) if isinstance(value, str) else value


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
    yield _header().encode()
    keeper = STORED_LINES.get(rows.engine.dialect.name)
    stored = rows.attempts == builds.LATEST and keeper is not None and _keeps_lines(rows.engine, keeper)
    if stored:  # UTF-8 bytes, joined as they are
        batches = builds.iter_line_batches(rows.engine, rows.filters, keeper.stored_line(),
                                           batch=min(rows.batch, STORED_BATCH), after=rows.after)
    else:
        line = SQL_LINES[rows.engine.dialect.name](builds.export_columns(rows.attempts))
        batches = builds.iter_batches(rows.engine, rows.filters, (line.label("line"),), attempts=rows.attempts,
                                      batch=rows.batch, after=rows.after)
    for batch in batches:
        lines = [row[0] for row in batch]
        if None in lines:  # a value SQL cannot format exactly: this row by the Python formatter
            for i, row in enumerate(batch):
                if row[0] is None:
                    row = builds.row_by_key(rows.engine, rows.filters, row[1:], attempts=rows.attempts)
                    text = "" if row is None else python_line(row)
                    lines[i] = text.encode() if stored else text
        yield b"".join(lines) if stored else "".join(lines).encode()


def _keeps_lines(engine, keeper) -> bool:
    with engine.connect() as conn:
        current = keeper.is_current(conn)
    if not current:
        log.warning("the store's export lines are not this version's (run the migrations): formatting every row")
    return current


SQL_LINES = {"sqlite": sqlite_line}  # dialect name -> line expression builder; others use Python
STORED_LINES = {"sqlite": csvlines}  # dialect name -> module keeping lines; see store/csvlines.py


def filename(now: float) -> str:
    return "builds-" + datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".csv"
