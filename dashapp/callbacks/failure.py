"""The failure group page's callbacks: selection in, queries, header and occurrences out.

`register()` is called by the page module, once per app.
"""
import time

from dash import Input, Output, State, callback, ctx, html, no_update

from dashapp import inputs, urlstate
from dashapp.components import empty_state
from dashapp.failure_tables import FINGERPRINT, failure_header, occurrences_table
from dashapp.inputs import BadInput, checker
from dashapp.shell import services, with_args
from dashapp.rawhtml import compact
from store.queries import failures as fq
from store.queries.filters import Filters

SHOWN = 50  # occurrences drawn, each with its excerpt (a few KB): the newest are the ones read


def selection_filters(sel: dict, *, now: float | None = None) -> Filters:
    seconds = urlstate.window_seconds(sel.get("window"))
    now = time.time() if now is None else now
    return Filters(repo=sel.get("repo"), branch=sel.get("branch"), workflow=sel.get("workflow"),
                   since=None if seconds is None else now - seconds)


def _ready(sel: dict) -> bool:
    return bool(sel.get("fingerprint")) and sel.get("known", False)


def header_section(sel: dict, *, now: float | None = None):
    if not _ready(sel):
        return None
    with services().engine.connect() as conn:
        summary = fq.summary(conn, sel["fingerprint"])
        newest = fq.occurrences(conn, sel["fingerprint"], limit=1, excerpts=False)
    if summary is None:  # gone since the page was drawn (retention)
        return empty_state("No failure with this fingerprint any more.", id="fl-header-empty")
    return failure_header(summary, newest[0] if newest else None, now=now)


def occurrences_section(sel: dict, shown: list | None = None, *, now: float | None = None):
    """The occurrences and the job ids drawn; `no_update` for both when `shown` (the ids drawn before) is still
    what the selection lists: a live bump then leaves the table alone, and an excerpt being read stays open."""
    if not _ready(sel):
        return None, []
    now = time.time() if now is None else now
    filters = selection_filters(sel, now=now)
    with services().engine.connect() as conn:
        if shown is not None:
            ids = [o["job"] for o in fq.occurrences(conn, sel["fingerprint"], filters, limit=SHOWN + 1,
                                                    excerpts=False)]
            if ids == shown:
                return no_update, no_update
        rows = fq.occurrences(conn, sel["fingerprint"], filters, limit=SHOWN + 1, excerpts=True)
    ids = [o["job"] for o in rows]
    if not rows:
        window = {v: label for v, label, _s in urlstate.WINDOWS}.get(sel.get("window"), "this window").lower()
        scope = " of this selection" if sel.get("repo") or sel.get("branch") or sel.get("workflow") else ""
        return empty_state(f"No occurrence{scope} in the {window}.", hint="Pick a longer time window.",
                           id="fl-occurrences-empty", className="empty-state empty-compact"), ids
    table = occurrences_table(rows[:SHOWN], now=now, show_repo=not sel.get("repo"))
    if len(rows) <= SHOWN:
        return table, ids
    return [table, html.Div(f"Only the newest {SHOWN} occurrences are listed (the counts above are over all of them).",
                            className="small text-muted p-2", id="fl-occurrences-more")], ids


def job_ids(value, name: str) -> list | None:
    """The job ids a page drew (None: none drawn yet)."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > SHOWN + 1:
        raise BadInput(f"{name}: expected a list of at most {SHOWN + 1} job ids")
    return [inputs.integer(v, f"{name}[{i}]", hi=inputs.SQLITE_MAX) for i, v in enumerate(value)]


def fingerprint(value, name: str):
    """A fingerprint as the page writes it (16 lowercase hex digits), or None."""
    value = inputs.text(value, name, max_len=16)
    if value is not None and not FINGERPRINT.fullmatch(value):
        raise BadInput(f"{name}: expected 16 hexadecimal digits")
    return value


# `fl-selection` as the page's `resolve` writes it; a callback given anything else answers 400.
SELECTION = {
    "fingerprint": fingerprint, "known": inputs.flag(), "repo": inputs.text, "branch": inputs.text,
    "workflow": inputs.text,
    "window": checker(inputs.choice, options=urlstate.WINDOW_VALUES, default="all"),
}


def selection(value) -> dict:
    return inputs.record(value, "fl-selection", SELECTION)


def register() -> None:
    @callback(Output("fl-header", "children"), Input("fl-selection", "data"), Input("live-version", "data"))
    def _header(sel, _version):
        return compact(header_section(selection(sel)))

    @callback(Output("fl-occurrences", "children"), Output("fl-occurrences-jobs", "data"),
              Input("fl-selection", "data"), Input("live-version", "data"), State("fl-occurrences-jobs", "data"))
    def _occurrences(sel, _version, shown):
        sel, shown = selection(sel), job_ids(shown, "fl-occurrences-jobs.data")
        return compact(occurrences_section(sel, shown if ctx.triggered_id == "live-version" else None))

    @callback(Output("url", "search", allow_duplicate=True), Input("fl-window", "value"),
              State("fl-selection", "data"), State("url", "search"), prevent_initial_call=True)
    def _window_to_url(window, sel, search):
        window = inputs.choice(window, "fl-window.value", urlstate.WINDOW_VALUES)
        sel, search = selection(sel), inputs.search(search, "url.search")
        if window is None or window == sel.get("window"):
            return no_update
        new = with_args(search, window=window)
        return new if new != (search or "") else no_update
