"""`/api/builds.csv`: the build history as CSV, streamed in constant memory.

Rows come from `store.queries.builds.iter_rows` in keyset batches and leave
as soon as each batch is formatted; times are ISO 8601 UTC, quoting is the
csv module's, and text cells that a spreadsheet would run as a formula are
defused with a leading apostrophe (OWASP's CSV injection advice).
"""
import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

from store.queries.builds import FIELDS

TIME_FIELDS = ("createtime", "starttime", "endtime", "updatetime")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CHUNK_ROWS = 500


def iso(epoch: float | None) -> str:
    if epoch is None:
        return ""
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    spec = "seconds" if moment.microsecond == 0 else "milliseconds"
    return moment.isoformat(timespec=spec).replace("+00:00", "Z")


def defuse(text: str) -> str:
    """Text a spreadsheet will show as text, never evaluate."""
    return "'" + text if text.startswith(FORMULA_START) else text


def cells(row: dict) -> list:
    out = []
    for name in FIELDS:
        value = row.get(name)
        if name in TIME_FIELDS:
            out.append(iso(value))
        elif value is None:
            out.append("")
        elif isinstance(value, str):
            out.append(defuse(value))
        else:
            out.append(value)
    return out


def generate(rows: Iterable[dict]) -> Iterator[bytes]:
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
