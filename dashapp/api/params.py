"""Query parameters of the API: parsed and checked, or a 400 that says what is wrong."""
import base64
import binascii
import json
import math
import re
import time
from datetime import datetime, timezone

from flask import request

from dashapp.inputs import SQLITE_MAX, SQLITE_MIN, is_decimal, parse_decimal, parse_int
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
# Times the API takes: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z, as epoch seconds.
MIN_TIME, MAX_TIME = -62135596800, 253402300799
MAX_TIME_TEXT = 64
MAX_CURSOR = 200
# What a time and a cursor may look like (the OpenAPI description publishes both patterns).
TIME_PATTERN = r"[-+0-9.,:TWZtz ]+"  # the characters of every time the API takes (ASCII)
CURSOR_PATTERN = r"[A-Za-z0-9_-]+={0,2}"  # URL-safe base64, as encode_cursor writes it
_TIME_TEXT, _CURSOR = re.compile(TIME_PATTERN), re.compile(CURSOR_PATTERN)


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


def _single(args, name: str, *, free_text: bool = False) -> str | None:
    """The parameter's value, or None when it is not given.

    A free-text filter (`repo`, `branch`...) is stripped, and empty means "any"; every other
    parameter (a number, a time, a choice, a cursor) is taken exactly as written: empty or
    padded is a 400, as the OpenAPI description says.
    """
    values = args.getlist(name)
    if len(values) > 1:
        raise ApiError(f"{name}: give it once (got {len(values)} values)")
    if not values:
        return None
    value = values[0]
    if len(value) > MAX_TEXT:
        raise ApiError(f"{name}: longer than {MAX_TEXT} characters")
    if free_text:
        return value.strip() or None
    if not value:
        raise ApiError(f"{name}: empty (leave the parameter out for the default)")
    return value


def parse_time(name: str, value: str) -> float:
    """Epoch seconds from epoch seconds or an ISO 8601 date/time (UTC when it has no offset).

    ASCII only (Python's `float` reads other scripts' digits), years 1 to 9999.
    """
    expected = f"{name}: expected ISO 8601 (e.g. 2024-05-01T12:00:00Z) or epoch seconds, got {value!r}"
    if len(value) > MAX_TIME_TEXT:
        raise ApiError(f"{name}: longer than {MAX_TIME_TEXT} characters")
    if not _TIME_TEXT.fullmatch(value):
        raise ApiError(expected)
    if is_decimal(value):  # epoch seconds
        return parse_decimal(value, name, lo=MIN_TIME, hi=MAX_TIME)
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = parsed.timestamp()
    except (ValueError, OverflowError):
        raise ApiError(expected)
    if not MIN_TIME <= seconds <= MAX_TIME:
        raise ApiError(f"{name}: outside the years 1 to 9999 (UTC): {value!r}")
    return seconds


def filters_from(args, *, now: float | None = None, default_window: str | None = None) -> Filters:
    """`Filters` from the query string: the text filters, `since`/`until` or `window` (`default_window`
    when neither `since` nor `window` is given)."""
    values = {name: _single(args, name, free_text=name not in ("status", "conclusion")) for name in TEXT_FILTERS}
    if values["status"] is not None and values["status"] not in STATUSES:
        raise ApiError(f"status: unknown value {values['status']!r}; one of {', '.join(STATUSES)}")
    if values["conclusion"] is not None and values["conclusion"] not in CONCLUSIONS:
        raise ApiError(f"conclusion: unknown value {values['conclusion']!r}; one of {', '.join(CONCLUSIONS)}")
    since, until, window = (_single(args, n) for n in ("since", "until", "window"))
    if window is None and since is None:
        window = default_window
    since = None if since is None else parse_time("since", since)
    until = None if until is None else parse_time("until", until)
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
    return parse_int(value, "limit", lo=1, hi=MAX_LIMIT)


def attempts_from(args) -> str:
    value = _single(args, "attempts") or LATEST
    if value not in (LATEST, ALL):
        raise ApiError(f"attempts: expected 'latest' or 'all', got {value!r}")
    return value


def encode_cursor(key: tuple, attempts: str) -> str:
    raw = json.dumps([attempts[0], *key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_from(args, attempts: str) -> tuple | None:
    """The keyset key of the `cursor` parameter (given once), or None."""
    return decode_cursor(_single(args, "cursor"), attempts)


def decode_cursor(token: str | None, attempts: str) -> tuple | None:
    """The keyset key in `token` (from a previous page's `next_cursor`), or None.

    Decoded and checked: `[kind, createtime, id(, attempt)]`, a finite time within the years
    the API takes and integers within SQLite's; anything else is a 400, never a query.
    """
    if not token:
        return None
    bad = ApiError("cursor: not a cursor returned by this API")
    if len(token) > MAX_CURSOR or not _CURSOR.fullmatch(token):
        raise bad
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        decoded = json.loads(raw, parse_constant=_no_constant)
    except (binascii.Error, ValueError, RecursionError):
        raise bad
    if not isinstance(decoded, list) or not decoded or decoded[0] not in ("l", "a"):
        raise bad
    kind, *key = decoded
    if kind != attempts[0]:
        raise ApiError(f"cursor: it was made for attempts={'all' if kind == 'a' else 'latest'}")
    size = 2 if attempts == LATEST else 3
    if len(key) != size or isinstance(key[0], bool) or not isinstance(key[0], (int, float)) \
            or not (math.isfinite(key[0]) and MIN_TIME <= key[0] <= MAX_TIME) \
            or not all(isinstance(k, int) and not isinstance(k, bool) and SQLITE_MIN <= k <= SQLITE_MAX
                       for k in key[1:]):
        raise bad
    return tuple(key)


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number")  # JSON's NaN and Infinity extensions


# -- failure intelligence (/api/failures, /api/flaky) --------------------------------------------------

FINGERPRINT_PATTERN = r"[0-9a-f]{16}"  # failures.fingerprint: 16 lowercase hex digits
FLAGS = {"1": True, "true": True, "0": False, "false": False}
MAX_MIN_RUNS = 1_000_000
_FINGERPRINT = re.compile(FINGERPRINT_PATTERN)


def fingerprint_from(text: str) -> str:
    """A failure fingerprint from the path, as `failures.fingerprint` writes them; else a 400."""
    if not _FINGERPRINT.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "…"
        raise ApiError(f"fingerprint: expected 16 lowercase hex digits, got {shown!r}")
    return text


def path_id(value: str, name: str, what: str) -> int:
    """A row's id given in a route's path (ASCII digits, 1 to SQLite's largest integer); else a 404."""
    if not value.isascii() or not value.isdigit() or not 0 < int(value) <= SQLITE_MAX:
        raise ApiError(f"{name}: {what}'s id (ASCII digits)", 404)
    return int(value)


def int_from(args, name: str, *, lo: int, hi: int, default: int) -> int:
    value = _single(args, name)
    return default if value is None else parse_int(value, name, lo=lo, hi=hi)


def fraction_from(args, name: str, *, default: float) -> float:
    """A number from 0 up to (not including) 1, written in ASCII decimals."""
    value = _single(args, name)
    if value is None:
        return default
    number = parse_decimal(value, name, lo=0, hi=1)
    if number >= 1:
        raise ApiError(f"{name}: must be below 1, got {value}")
    return number


def flag_from(args, name: str) -> bool:
    """`1`/`true` or `0`/`false`; absent is false."""
    value = _single(args, name)
    if value is None:
        return False
    if value not in FLAGS:
        raise ApiError(f"{name}: expected one of {', '.join(FLAGS)}, got {value!r}")
    return FLAGS[value]


def json_object(*, shape: str | None = None) -> dict:
    """The request's body as a JSON object.  JSON only: a cross-site form cannot send it, so a page elsewhere
    cannot make a browser post it.  With `shape` (the object expected, for the message) the body must be one;
    without, it may also be empty ({}); a body of whitespace is no JSON."""
    if request.mimetype != "application/json":
        raise ApiError("send Content-Type: application/json" + ("" if shape else " (the body may be empty or {})"), 415)
    body = request.get_json(silent=True)
    if shape is not None and not isinstance(body, dict):
        raise ApiError(f"the body must be a JSON object: {shape}")
    if request.get_data(cache=True) and not isinstance(body, dict):
        raise ApiError("the body must be a JSON object (or empty)")
    return body or {}
