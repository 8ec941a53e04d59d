"""The Developer view's callbacks: selection in, query, frame, cards or table out.

`register()` is called by the page module, once per app.
"""
import time

from dash import Input, Output, State, callback, no_update

from dashapp import inputs, urlstate
from dashapp.inputs import checker
from dashapp.components import empty_state, metric_card, metric_cards_row
from dashapp.failure_tables import failure_href
from dashapp.shell import services, with_args
from dashapp.tables import capture_notice, person_failures_table
from dashapp.triage_tables import unfixed_list
from dashapp.rawhtml import compact
from store.queries import developer as q
from store.queries import failures as failure_queries
from store.queries.cards import metric_cards
from store.queries.filters import Filters


def selection_filters(sel: dict, *, now: float | None = None) -> Filters:
    seconds = urlstate.window_seconds(sel.get("window"))
    now = time.time() if now is None else now
    return Filters(repo=sel.get("repo"), author=sel.get("author"), since=None if seconds is None else now - seconds)


def _ready(sel: dict) -> bool:
    return bool(sel.get("author")) and sel.get("known") and sel.get("known_repo", True) and not sel.get("empty")


def cards_section(sel: dict):
    if not _ready(sel):
        return None
    svc = services()
    filters = selection_filters(sel)
    with svc.engine.connect() as conn:
        cards = metric_cards(conn, filters, stale_hours=svc.config.stale_hours)
        unfixed = q.unfixed_failures(conn, filters)
    extra = metric_card("Unfixed failures", str(len(unfixed)), "still the newest result of their branch",
                        card_id="card-unfixed", tone="bad" if len(unfixed) else "good")
    return metric_cards_row(cards, extra=[extra])


def unfixed_section(sel: dict, *, now: float | None = None):
    if not _ready(sel):
        return None
    with services().engine.connect() as conn:
        frame = q.unfixed_failures(conn, selection_filters(sel))
    if frame.empty:
        return empty_state(f"Nothing unfixed: none of {sel['author']}'s failures is still the newest result.",
                           id="dev-unfixed-empty", className="empty-state empty-compact")
    return unfixed_list(frame, now=time.time() if now is None else now)


PERSON_FAILURES = 200  # failed jobs read for the summary (the table draws the newest 50)


def failures_section(sel: dict, *, now: float | None = None):
    """The person's failed jobs in the window, each with its failure line and whose it is, under a one-line
    summary; says what missing lines wait for (a token, GitHub's rate limit, the fetcher)."""
    if not _ready(sel):
        return None
    svc = services()
    with svc.engine.connect() as conn:
        rows = failure_queries.person_failures(conn, sel["author"], selection_filters(sel), limit=PERSON_FAILURES)
        status = failure_queries.capture_status(conn, token=bool(svc.config.github_token))
    notice = capture_notice(status, rows)
    if not rows:
        return [notice, empty_state(f"No failed jobs of {sel['author']} in this window.", id="dev-failures-empty",
                                    className="empty-state empty-compact")]
    scope = {"repo": sel.get("repo"), "window": sel.get("window")}
    return [notice, person_failures_table(rows, now=time.time() if now is None else now,
                                          token=bool(status.get("token")), capped=len(rows) >= PERSON_FAILURES,
                                          line_href=lambda fingerprint: failure_href(fingerprint, scope))]


def history_page(sel: dict, request: dict | None) -> dict:
    """One block of the infinite row model: `getRowsRequest` in, `getRowsResponse` out.

    The request is checked first (`inputs.grid_request`: row numbers, at most 1,000 rows, sort
    and filter models typed and bounded); a bad one is a 400.
    """
    request = inputs.grid_request(request, "dev-history.getRowsRequest", block=q.HISTORY_PAGE)
    if not _ready(sel):
        return {"rowData": [], "rowCount": 0}
    with services().engine.connect() as conn:
        rows, total = q.history(conn, selection_filters(sel), start=request["start"], end=request["end"],
                                sort_model=request["sort_model"], filter_model=request["filter_model"])
    return {"rowData": rows, "rowCount": total}


# `dev-selection` as the page's `resolve` writes it; a callback given anything else answers 400.
SELECTION = {
    "author": inputs.text, "repo": inputs.text, "empty": inputs.flag(), "known_repo": inputs.flag(True),
    "known": inputs.flag(),
    "window": checker(inputs.choice, options=urlstate.WINDOW_VALUES, default=urlstate.DEFAULT_WINDOW),
}


def selection(value) -> dict:
    return inputs.record(value, "dev-selection", SELECTION)


def register() -> None:
    @callback(Output("dev-cards", "children"), Input("dev-selection", "data"), Input("live-version", "data"))
    def _cards(sel, _version):
        return compact(cards_section(selection(sel)))

    @callback(Output("dev-unfixed", "children"), Input("dev-selection", "data"), Input("live-version", "data"))
    def _unfixed(sel, _version):
        return compact(unfixed_section(selection(sel)))

    @callback(Output("dev-failures", "children"), Input("dev-selection", "data"), Input("live-version", "data"))
    def _failures(sel, _version):
        return compact(failures_section(selection(sel)))

    @callback(Output("dev-history", "getRowsResponse"), Output("dev-history-count", "children"),
              Input("dev-history", "getRowsRequest"), State("dev-selection", "data"), prevent_initial_call=True)
    def _history(request, sel):
        page = history_page(selection(sel), request)
        filtered = " matching the column filters" if (request or {}).get("filterModel") else ""
        count = f"{page['rowCount']} runs{filtered}, newest first; sort and filter by column"
        return page, count

    @callback(Output("url", "search", allow_duplicate=True),
              Input("dev-author", "value"), Input("dev-window", "value"),
              State("dev-selection", "data"), State("url", "search"), prevent_initial_call=True)
    def _filters_to_url(author, window, sel, search):
        author = inputs.text(author, "dev-author.value")
        window = inputs.choice(window, "dev-window.value", urlstate.WINDOW_VALUES)
        sel, search = selection(sel), inputs.search(search, "url.search")
        if (author, window) == (sel.get("author"), sel.get("window")):
            return no_update
        new = with_args(search, author=author, window=window)
        return new if new != (search or "") else no_update
