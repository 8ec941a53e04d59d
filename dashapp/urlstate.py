"""Filters in the URL: every view reads its selection from the query string.

A link reproduces exactly what its sender saw (`/?repo=org/app&branch=main`,
`/developer?author=octocat`).  `read` turns query arguments into `Filters`
(plus the view's own keys), `href` writes them back.

A URL is anyone's to write: `clean_args` keeps a query's usable values, and every
other reader here falls back to the default for junk (an unknown window, an
offset that is not a small ASCII number, a value too long to be a name), so
the page still draws.
"""
import re
import time
from urllib.parse import urlencode

from ingest.parse import MAX_TEXT as MAX_NAME
from store.queries.filters import Filters

# Time windows offered by the views, as (query value, label, seconds).
WINDOWS = (
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86400),
    ("7d", "Last 7 days", 7 * 86400),
    ("30d", "Last 30 days", 30 * 86400),
    ("90d", "Last 90 days", 90 * 86400),
    ("all", "All time", None),
)
DEFAULT_WINDOW = "7d"
WINDOW_VALUES = tuple(value for value, _label, _seconds in WINDOWS)
FILTER_KEYS = ("repo", "branch", "workflow", "author", "status", "conclusion", "event", "window")
MAX_VALUE = MAX_NAME  # longer than any name the store keeps
MAX_OFFSET = 10 ** 9  # a view's paging position: far past any history, and exact in JavaScript
_OFFSET = re.compile(r"[0-9]{1,10}")


def clean_args(query: dict | None) -> dict[str, str]:
    """The usable values of query arguments: one string per key (the first of a repeated one),
    stripped; empty, over-long or undecodable values are left out, as if not given."""
    out = {}
    for key, value in (query or {}).items():
        if isinstance(value, (list, tuple)):
            value = value[0] if value else None
        if not isinstance(key, str) or not isinstance(value, str):
            continue
        value = value.strip()
        if not value or len(value) > MAX_VALUE or not _encodable(value):
            continue
        out[key] = value
    return out


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return True


def window(value) -> str:
    """The time window `value` names, or the default."""
    return value if value in WINDOW_VALUES else DEFAULT_WINDOW


def offset(value) -> int:
    """A paging offset: ASCII digits up to `MAX_OFFSET`; anything else is 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= MAX_OFFSET else 0
    if not isinstance(value, str) or not _OFFSET.fullmatch(value.strip()):
        return 0
    number = int(value)
    return number if number <= MAX_OFFSET else 0


def window_seconds(name: str | None) -> float | None:
    return {v: s for v, _l, s in WINDOWS}[window(name)]


def read(args: dict, *, now: float | None = None) -> Filters:
    """`Filters` from query arguments; unknown keys and empty values are ignored."""
    now = time.time() if now is None else now
    clean = {k: v for k, v in clean_args(args).items() if k in FILTER_KEYS}
    seconds = window_seconds(clean.get("window"))
    return Filters(
        repo=clean.get("repo"),
        branch=clean.get("branch"),
        workflow=clean.get("workflow"),
        author=clean.get("author"),
        status=clean.get("status"),
        conclusion=clean.get("conclusion"),
        event=clean.get("event"),
        since=None if seconds is None else now - seconds,
    )


def href(path: str, **args) -> str:
    """`path` with the non-empty `args` as its query string, in a stable order."""
    query = {k: v for k, v in args.items() if v not in (None, "")}
    return f"{path}?{urlencode(query)}" if query else path
