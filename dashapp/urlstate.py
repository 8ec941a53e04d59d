"""Filters in the URL: every view reads its selection from the query string.

A link reproduces exactly what its sender saw (`/?repo=org/app&branch=main`,
`/developer?author=octocat`).  `read` turns query arguments into `Filters`
(plus the view's own keys), `href` writes them back.
"""
import time
from urllib.parse import urlencode

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
FILTER_KEYS = ("repo", "branch", "workflow", "author", "status", "conclusion", "event", "window")


def window_seconds(window: str | None) -> float | None:
    for value, _label, seconds in WINDOWS:
        if value == (window or DEFAULT_WINDOW):
            return seconds
    return dict((v, s) for v, _l, s in WINDOWS)[DEFAULT_WINDOW]


def read(args: dict, *, now: float | None = None) -> Filters:
    """`Filters` from query arguments; unknown keys and empty values are ignored."""
    now = time.time() if now is None else now
    clean = {k: (v[0] if isinstance(v, list) else v) for k, v in (args or {}).items()}
    clean = {k: v.strip() for k, v in clean.items() if isinstance(v, str) and v.strip() and k in FILTER_KEYS}
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
