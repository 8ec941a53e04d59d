"""Query parameters of the API: parsed and checked, or a 400 that says what is wrong."""
import base64
import binascii
import json
import math
import time
from datetime import datetime, timezone

from dashapp.urlstate import WINDOWS
from domain.state import STATUS_RANK
from store.queries.builds import ALL, LATEST
from store.queries.filters import Filters

TEXT_FILTERS = ("repo", "branch", "workflow", "author", "status", "conclusion", "event")
FILTER_PARAMS = TEXT_FILTERS + ("since", "until", "window")
CONCLUSIONS = ("success", "failure", "cancelled", "skipped", "timed_out", "neutral", "action_required", "stale",
               "startup_failure")
STATUSES = tuple(STATUS_RANK)
WINDOW_SECONDS = {value: seconds for value, _label, seconds in WINDOWS}
DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
MAX_TEXT = 500


class ApiError(Exception):
    """An error answered as JSON `{"error": message}` with `status`."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message = message
        self.status = status


def check_known(args, allowed) -> None:
    """Refuse unknown parameters: a misspelt filter must not silently select everything."""
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ApiError(f"unknown parameter(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _single(args, name: str) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise ApiError(f"{name}: give it once (got {len(values)} values)")
    value = values[0].strip() if values else ""
    if len(value) > MAX_TEXT:
        raise ApiError(f"{name}: longer than {MAX_TEXT} characters")
    return value or None


def parse_time(name: str, value: str) -> float:
    """Epoch seconds from epoch seconds or an ISO 8601 date/time (UTC when it has no offset)."""
    try:
        number = float(value)
    except ValueError:
        number = None
    if number is not None:
        if not math.isfinite(number):
            raise ApiError(f"{name}: not a finite number: {value!r}")
        return number
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise ApiError(f"{name}: expected ISO 8601 (e.g. 2024-05-01T12:00:00Z) or epoch seconds, got {value!r}")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def filters_from(args, *, now: float | None = None) -> Filters:
    """`Filters` from the query string: the text filters, `since`/`until` or `window`."""
    values = {name: _single(args, name) for name in TEXT_FILTERS}
    if values["status"] is not None and values["status"] not in STATUSES:
        raise ApiError(f"status: unknown value {values['status']!r}; one of {', '.join(STATUSES)}")
    if values["conclusion"] is not None and values["conclusion"] not in CONCLUSIONS:
        raise ApiError(f"conclusion: unknown value {values['conclusion']!r}; one of {', '.join(CONCLUSIONS)}")
    since, until, window = (_single(args, n) for n in ("since", "until", "window"))
    since = parse_time("since", since) if since else None
    until = parse_time("until", until) if until else None
    if window is not None:
        if window not in WINDOW_SECONDS:
            raise ApiError(f"window: unknown value {window!r}; one of {', '.join(WINDOW_SECONDS)}")
        if since is not None:
            raise ApiError("give either since or window, not both")
        seconds = WINDOW_SECONDS[window]
        since = None if seconds is None else (time.time() if now is None else now) - seconds
    if since is not None and until is not None and since >= until:
        raise ApiError("since must be before until")
    return Filters(**values, since=since, until=until)


def limit_from(args) -> int:
    value = _single(args, "limit")
    if value is None:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        raise ApiError(f"limit: expected an integer from 1 to {MAX_LIMIT}, got {value!r}")
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(f"limit: must be from 1 to {MAX_LIMIT}, got {limit}")
    return limit


def attempts_from(args) -> str:
    value = _single(args, "attempts") or LATEST
    if value not in (LATEST, ALL):
        raise ApiError(f"attempts: expected 'latest' or 'all', got {value!r}")
    return value


def encode_cursor(key: tuple, attempts: str) -> str:
    raw = json.dumps([attempts[0], *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str | None, attempts: str) -> tuple | None:
    """The keyset key in `token` (from a previous page's `next_cursor`), or None."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        kind, *key = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise ApiError("cursor: not a cursor returned by this API")
    size = 2 if attempts == LATEST else 3
    if kind != attempts[0]:
        raise ApiError(f"cursor: it was made for attempts={'all' if kind == 'a' else 'latest'}")
    if len(key) != size or not isinstance(key[0], (int, float)) \
            or not all(isinstance(k, int) and not isinstance(k, bool) for k in key[1:]):
        raise ApiError("cursor: not a cursor returned by this API")
    return tuple(key)
