"""What clients send, checked before it is used: a bad value is a 400 with a reason, never a 500.

Two kinds of input reach the server besides the webhook:

- text, from a query string or a URL path (the API's parameters): `parse_int` and friends take
  ASCII only (`int("٣")` and `float("١")` are 3 and 1 to Python) and keep every number within
  what SQLite stores (64-bit signed) and, where it goes back to a browser, what JavaScript holds
  exactly;
- JSON values, in the body of a Dash callback (`/_dash-update-component`): a page sends what the
  server put in it, but anyone can post anything.  The callbacks pass each value through the
  checkers here (`text`, `choice`, `flag`, `integer`, `record`, `grid_request`...), which return
  it cleaned or raise `BadInput` (a 400 answered as JSON, see `dashapp.jsonerrors`).

`install(app)` checks the envelope of every callback request before Dash reads it: a known
server-side callback, its outputs, inputs and state as the app declares them, and string values
for `dcc.Location`'s properties (which Dash's own page router reads).
"""
import json
import math
import re

from werkzeug.exceptions import BadRequest

from ingest.parse import MAX_TEXT as MAX_NAME  # the longest name the store keeps

SQLITE_MIN, SQLITE_MAX = -(2 ** 63), 2 ** 63 - 1
JS_SAFE_MAX = 2 ** 53 - 1  # Number.MAX_SAFE_INTEGER
MAX_TEXT = MAX_NAME  # a name in a callback's input: repository, branch, workflow, login...
MAX_SEARCH = 16 * MAX_NAME  # a URL's query string: room for a few of the longest names, percent-encoded
MAX_ITEMS = 10_000  # entries of a list of names (branches, options...)
MAX_ROW = JS_SAFE_MAX  # a grid row index
MAX_BLOCK = 1000  # rows one grid request may ask for
_DIGITS = re.compile(r"-?[0-9]+")  # [0-9] is ASCII only, unlike \d
_DECIMAL = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class BadInput(BadRequest):
    """A 400 whose description says which value is wrong and why."""

    def __init__(self, message: str):
        super().__init__(description=message)


def _show(value, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


# -- text (query strings, paths) --------------------------------------------------------------

def parse_int(text: str, name: str, *, lo: int = SQLITE_MIN, hi: int = SQLITE_MAX) -> int:
    """An integer written in ASCII digits (optional leading `-`), from `lo` to `hi`."""
    if not isinstance(text, str) or len(text) > 40 or not _DIGITS.fullmatch(text):
        raise BadInput(f"{name}: expected an integer (ASCII digits), got {_show(text)}")
    value = int(text)
    if not lo <= value <= hi:
        raise BadInput(f"{name}: must be from {lo} to {hi}, got {text}")
    return value


def is_decimal(text: str) -> bool:
    """Whether `text` is written as `parse_decimal` reads it."""
    return bool(_DECIMAL.fullmatch(text))


def parse_decimal(text: str, name: str, *, lo: float, hi: float) -> float:
    """A decimal number in ASCII (`-12`, `1714521600.5`; no exponent, no `inf`/`nan`), from `lo` to `hi`."""
    if not isinstance(text, str) or len(text) > 40 or not _DECIMAL.fullmatch(text):
        raise BadInput(f"{name}: expected a number (ASCII digits), got {_show(text)}")
    value = float(text)
    if not lo <= value <= hi:
        raise BadInput(f"{name}: must be from {lo:g} to {hi:g}, got {text}")
    return value


# -- JSON values (callback inputs) ------------------------------------------------------------

def text(value, name: str, *, default=None, max_len: int = MAX_TEXT, strip: bool = False):
    """A string of at most `max_len` characters (stripped with `strip`); None or "" gives `default`.

    JSON can carry lone surrogates (`"\\ud800"`), which no database driver can encode: refused.
    """
    if value is None:
        return default
    if not isinstance(value, str):
        raise BadInput(f"{name}: expected a string, got {type(value).__name__}")
    if len(value) > max_len:
        raise BadInput(f"{name}: longer than {max_len} characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise BadInput(f"{name}: not valid Unicode (a lone surrogate)")
    value = value.strip() if strip else value
    return value or default


def search(value, name: str = "search"):
    """A part of a URL (its query string `?a=b`, its path...), or None."""
    return text(value, name, max_len=MAX_SEARCH, strip=False)


def choice(value, name: str, options, *, default=None):
    """One of `options`; None gives `default`."""
    if value is None:
        return default
    if not isinstance(value, str) or value not in options:
        raise BadInput(f"{name}: expected one of {', '.join(map(str, options))}, got {_show(value)}")
    return value


def flag(default: bool = False):
    """A checker for a true/false value (None gives `default`)."""
    def check(value, name):
        if value is None:
            return default
        if not isinstance(value, bool):
            raise BadInput(f"{name}: expected true or false, got {_show(value)}")
        return value
    return check


def integer(value, name: str, *, lo: int = 0, hi: int = JS_SAFE_MAX, default=None):
    """A whole number (a JSON integer or an integral float) from `lo` to `hi`; None gives `default`."""
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise BadInput(f"{name}: expected an integer, got {_show(value)}")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise BadInput(f"{name}: expected an integer, got {_show(value)}")
        value = int(value)
    if not lo <= value <= hi:
        raise BadInput(f"{name}: must be from {lo} to {hi}, got {value}")
    return value


def texts(value, name: str, *, max_items: int = MAX_ITEMS) -> list:
    """A list of strings (None gives [])."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadInput(f"{name}: expected a list, got {type(value).__name__}")
    if len(value) > max_items:
        raise BadInput(f"{name}: more than {max_items} entries")
    return [text(v, f"{name}[{i}]") for i, v in enumerate(value)]


def record(value, name: str, spec: dict) -> dict:
    """A JSON object checked key by key: `spec` maps each key to a checker `(value, name) -> value`.

    None gives the defaults; keys not in `spec` are dropped.
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadInput(f"{name}: expected an object, got {type(value).__name__}")
    return {key: check(value.get(key), f"{name}.{key}") for key, check in spec.items()}


def checker(function, **kwargs):
    """`function` (one of the checkers above) with its keyword arguments bound, for a `record` spec."""
    return lambda value, name: function(value, name, **kwargs)


def clicked(value) -> bool:
    """Did any of a pattern-matched set of buttons get clicked (their `n_clicks`, a list)?  False for buttons
    that just appeared (no clicks yet) and for anything that is not such a list."""
    return isinstance(value, list) and any(isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in value)


def options(value, name: str) -> list[dict]:
    """A dropdown's options: a list of `{"label": str, "value": str}`."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_ITEMS:
        raise BadInput(f"{name}: expected a list of at most {MAX_ITEMS} options")
    spec = {"label": checker(text, max_len=MAX_TEXT + 100), "value": checker(text, max_len=MAX_TEXT)}
    return [record(o, f"{name}[{i}]", spec) for i, o in enumerate(value)]


# -- AG Grid's row requests (infinite / server-side row model) --------------------------------

SORTS = ("asc", "desc")
TEXT_OPS = ("contains", "notContains", "equals", "notEqual", "startsWith", "endsWith", "blank", "notBlank")
NUMBER_OPS = ("equals", "notEqual", "greaterThan", "greaterThanOrEqual", "lessThan", "lessThanOrEqual",
              "inRange", "blank", "notBlank")
MAX_SORTS, MAX_FILTERS, MAX_CONDITIONS = 20, 50, 10


def _filter_value(value, name: str, kind: str):
    if kind == "text":
        return text(value, name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and not math.isfinite(value)):
        raise BadInput(f"{name}: expected a number, got {_show(value)}")
    if not -JS_SAFE_MAX <= value <= JS_SAFE_MAX:
        raise BadInput(f"{name}: out of range ({_show(value)})")
    return value


def _column_filter(model, name: str) -> dict:
    if not isinstance(model, dict):
        raise BadInput(f"{name}: expected an object")
    kind = choice(model.get("filterType"), f"{name}.filterType", ("text", "number"), default="text")
    out = {"filterType": kind}
    if "conditions" in model or "condition1" in model:
        parts = model.get("conditions")
        if parts is None:
            parts = [p for p in (model.get("condition1"), model.get("condition2")) if p is not None]
        if not isinstance(parts, list) or len(parts) > MAX_CONDITIONS:
            raise BadInput(f"{name}.conditions: expected a list of at most {MAX_CONDITIONS} conditions")
        out["operator"] = choice(model.get("operator"), f"{name}.operator", ("AND", "OR"), default="AND")
        out["conditions"] = [_column_filter({"filterType": kind, **p} if isinstance(p, dict) else p,
                                            f"{name}.conditions[{i}]") for i, p in enumerate(parts)]
        return out
    out["type"] = choice(model.get("type"), f"{name}.type", TEXT_OPS if kind == "text" else NUMBER_OPS,
                         default="contains" if kind == "text" else "equals")
    out["filter"] = _filter_value(model.get("filter"), f"{name}.filter", kind)
    if "filterTo" in model:
        out["filterTo"] = _filter_value(model.get("filterTo"), f"{name}.filterTo", kind)
    return out


def grid_request(value, name: str = "getRowsRequest", *, block: int = 100) -> dict:
    """AG Grid's `getRowsRequest` (`startRow`, `endRow`, `sortModel`, `filterModel`), bounded and typed.

    Returns `start`, `end` (at most `MAX_BLOCK` rows after `start`), `sort_model` (a list of
    `{"colId", "sort"}`) and `filter_model` (column id -> a text or number filter).
    """
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise BadInput(f"{name}: expected an object, got {type(value).__name__}")
    start = integer(value.get("startRow"), f"{name}.startRow", hi=MAX_ROW, default=0)
    end = integer(value.get("endRow"), f"{name}.endRow", hi=MAX_ROW, default=min(start + block, MAX_ROW))
    if end < start:
        raise BadInput(f"{name}: endRow ({end}) before startRow ({start})")
    sorts = value.get("sortModel")
    if sorts is None:
        sorts = []
    if not isinstance(sorts, list) or len(sorts) > MAX_SORTS:
        raise BadInput(f"{name}.sortModel: expected a list of at most {MAX_SORTS} sorts")
    sort_model = [record(s, f"{name}.sortModel[{i}]", {
        "colId": checker(text, max_len=200), "sort": checker(choice, options=SORTS, default="asc")})
        for i, s in enumerate(sorts)]
    filters = value.get("filterModel")
    if filters is None:
        filters = {}
    if not isinstance(filters, dict) or len(filters) > MAX_FILTERS:
        raise BadInput(f"{name}.filterModel: expected an object of at most {MAX_FILTERS} column filters")
    filter_model = {}
    for column, model in filters.items():
        if len(column) > 200:
            raise BadInput(f"{name}.filterModel: a column id longer than 200 characters")
        filter_model[column] = _column_filter(model, f"{name}.filterModel[{column!r}]")
    return {"start": start, "end": min(end, start + MAX_BLOCK), "sort_model": sort_model,
            "filter_model": filter_model}


# -- the envelope of a Dash callback request ---------------------------------------------------

LOCATION_PROPS = ("pathname", "search", "hash", "href")  # dcc.Location's, read by Dash's page router


def _entries(body, key: str, declared: list, name: str, prefix: str) -> None:
    if key not in body and not declared:  # the renderer leaves out an empty state; Dash reads it as []
        return
    given = body.get(key)
    if not isinstance(given, list) or len(given) != len(declared):
        raise BadInput(f"{name}: expected a list of {len(declared)} entries, as the callback declares")
    for i, (entry, want) in enumerate(zip(given, declared)):
        if _is_pattern(want["id"]):  # a pattern-matching dependency: a list of matches, or one
            matches = entry if isinstance(entry, list) else [entry]
            if not all(isinstance(m, dict) and "id" in m and m.get("property") == want["property"] for m in matches):
                raise BadInput(f"{name}[{i}]: not the callback's {want['property']} dependency")
            continue
        if not isinstance(entry, dict) or entry.get("id") != want["id"] or entry.get("property") != want["property"]:
            raise BadInput(f"{name}[{i}]: expected {want['id']}.{want['property']}")
        if want["property"] in LOCATION_PROPS and "value" in entry:
            where = f"{want['id']}.{want['property']}"
            value = search(entry["value"], where)
            if want["property"] == "pathname" and value is not None and not value.startswith(prefix):
                raise BadInput(f"{where}: a path starts with {prefix}")
        if want["id"] == "_pages_location" and want["property"] == "pathname" and \
                not isinstance(entry.get("value"), str):
            # Dash's router matches path templates (`/failure/<fingerprint>`) with fnmatch, which raises on None.
            raise BadInput(f"{want['id']}.pathname: expected the page's path")


def _split_output(output: str):
    if output.startswith(".."):
        return [_split_output(o) for o in output[2:-2].split("...")]
    id_, _, prop = output.rpartition(".")
    return {"id": id_, "property": prop}


def _same_output(given, want: dict) -> bool:
    if not isinstance(given, dict) or given.get("property") != want["property"]:
        return False
    return want["id"].startswith("{") or given.get("id") == want["id"]  # a pattern-matching id: any match


def _is_pattern(declared) -> bool:
    """Is a declared dependency's id pattern-matching?  The callback map holds those as JSON text."""
    return isinstance(declared, dict) or isinstance(declared, str) and declared.startswith("{")


def _pattern_prop_id(prop_id: str) -> bool:
    component, _, _prop = prop_id.rpartition(".")
    try:
        return component.startswith("{") and isinstance(json.loads(component), dict)
    except (ValueError, RecursionError):
        return False


def check_envelope(callback_map: dict, body, *, prefix: str = "/") -> None:
    """Raise `BadInput` unless `body` calls a server-side callback of `callback_map` the way the app declares it.

    `prefix` is the app's `requests_pathname_prefix`, which every page path starts with.
    """
    if not isinstance(body, dict):
        raise BadInput("a callback request is a JSON object")
    output = body.get("output")
    if not isinstance(output, str):
        raise BadInput("output: expected the callback's output id")
    spec = callback_map.get(output)
    if spec is None or spec.get("callback") is None:
        raise BadInput(f"output: no server-side callback {_show(output, 80)}")
    if not spec.get("no_output"):
        want, given = _split_output(output), body.get("outputs")
        if isinstance(want, list):
            same = isinstance(given, list) and len(given) == len(want) and all(map(_same_output, given, want))
        else:
            same = _same_output(given, want)
        if not same:
            raise BadInput("outputs: not the callback's outputs")
    _entries(body, "inputs", spec.get("inputs", []), "inputs", prefix)
    _entries(body, "state", spec.get("state", []), "state", prefix)
    # Each a prop id of one of the inputs: Dash parses a pattern-matching one (`{...}.prop`) as JSON.
    changed = body.get("changedPropIds", [])
    if not isinstance(changed, list) or len(changed) > len(spec.get("inputs", [])) + 100:
        raise BadInput("changedPropIds: expected a list of the callback's input prop ids")
    inputs = spec.get("inputs", [])
    plain = {f"{d['id']}.{d['property']}" for d in inputs if not _is_pattern(d["id"])}
    patterns = any(_is_pattern(d["id"]) for d in inputs)
    for prop_id in changed:
        if not (isinstance(prop_id, str) and (prop_id in plain or patterns and _pattern_prop_id(prop_id))):
            raise BadInput(f"changedPropIds: {_show(prop_id)} is not an input of the callback")


def install(app) -> None:
    """Check every callback request's envelope before Dash reads it (a 400 instead of Dash's KeyError)."""
    import flask

    path = app.config.routes_pathname_prefix + "_dash-update-component"

    def _check_callback_request():
        if flask.request.method != "POST" or flask.request.path != path:
            return None
        try:
            body = flask.request.get_json()
        except RecursionError:  # nested deeper than the JSON parser goes
            raise BadInput("the request body is nested too deeply")
        except BadRequest:  # not JSON (or a number of thousands of digits); a 413 or 415 goes as it is
            raise BadInput("the request body is not valid JSON")
        check_envelope(app.callback_map, body, prefix=app.config.requests_pathname_prefix)
        return None

    app.server.before_request(_check_callback_request)
