"""`/api/builds.csv`: the build history as CSV, streamed in constant memory.

Rows come from `store.queries.builds.iter_rows` in keyset batches and leave
as soon as each batch is formatted; times are ISO 8601 UTC, quoting is the
csv module's, and text cells that a spreadsheet would run as a formula are
defused with a leading apostrophe (OWASP's CSV injection advice).
"""
import csv
import io
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from store.queries.builds import FIELDS

TIME_FIELDS = ("createtime", "starttime", "endtime", "updatetime")
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
    """The header, then the rows, as UTF-8 chunks of about `CHUNK_ROWS` rows."""
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


def filename(now: float) -> str:
    return "builds-" + datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y%m%dT%H%M%SZ") + ".csv"
