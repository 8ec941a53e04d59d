"""What a live message says: the JSON text `/ws` sends for a hub message (`live/ws.py`).

Allow-listed fields of plain JSON values only, text cleaned of control and bidi characters (even in
rows stored before `domain/text.py` cleaned them at parse time), links only to http(s) URLs.
"""
import json
import math

from domain.text import clean, link_url
from store.rows import RUN_COLUMNS

RUN_FIELDS = tuple(c.name for c in RUN_COLUMNS)
JOB_FIELDS = ("gitid", "run_gitid", "attempt", "repo")
MAX_TEXT = 2000  # a commit message longer than this is cut: the page shows its first line


def _value(value):
    """Plain JSON values only; anything else (bytes, dates, NaN) goes out as null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2 ** 53 else str(value)  # beyond 2**53 JavaScript loses digits
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return clean(value[:MAX_TEXT])  # no control or bidi characters, even in a row stored before cleaning
    return None


def outgoing(message: dict) -> str:
    """The JSON text sent for a hub message: allow-listed fields, plain values."""
    kind = message.get("type")
    out = {"type": kind if kind in ("run", "job", "lag") else "other", "seq": _value(message.get("seq"))}
    row = message.get("row") if isinstance(message.get("row"), dict) else {}
    if kind == "run":
        out["row"] = {name: _value(row.get(name)) for name in RUN_FIELDS}
        out["row"]["url"] = link_url(out["row"]["url"])  # only absolute http(s) URLs with a host
    elif kind == "job":
        out["row"] = {name: _value(row.get(name)) for name in JOB_FIELDS}
    elif kind == "lag":  # seconds the oldest accepted delivery has waited for the processor
        out["seconds"] = _value(message.get("seconds"))
    return json.dumps(out, separators=(",", ":"), allow_nan=False)
