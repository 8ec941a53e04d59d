"""The Runners view's callbacks: selection in, query, rows, tables and figures out.

`register()` is called by the page module, once per app.  Queue times, busiest hours and minutes follow the
selection (and the theme, for figures); "waiting now" follows live updates too (the other sections read the
window's every job: re-reading them on each delivery would cost more than it tells).
"""
import time

import dash_bootstrap_components as dbc
from dash import Input, Output, callback

from dashapp import inputs, urlstate
from dashapp.callbacks.filters import ALL, filters_to_url  # noqa: F401 (ALL: the pages read it here)
from dashapp.components import empty_state
from dashapp.inputs import checker
from dashapp.runner_tables import (billing_cards, billing_grid, graph, group_grid, hours_figure, label_grid,
                                   oldest_text, queue_figure, queue_note, waiting_grid)
from dashapp.shell import services
from dashapp.rawhtml import compact
from domain import billing
from store.queries import runners as q
from store.queries.filters import Filters

THEMES = ("light", "dark")


def selection_filters(sel: dict, *, now: float | None = None) -> Filters:
    seconds = urlstate.window_seconds(sel.get("window"))
    now = time.time() if now is None else now
    return Filters(repo=sel.get("repo"), branch=sel.get("branch"), workflow=sel.get("workflow"),
                   since=None if seconds is None else now - seconds)


def hourly(sel: dict) -> bool:
    """Windows of a day or less chart per hour, longer ones per day."""
    seconds = urlstate.window_seconds(sel.get("window"))
    return seconds is not None and seconds <= 86400


def multipliers(config) -> tuple[dict, str | None]:
    """The OS multipliers the setting names, and the error when it cannot be read (GitHub's defaults then)."""
    text = getattr(config, "billing_multipliers", billing.DEFAULT_MULTIPLIERS)
    try:
        return billing.parse_multipliers(text), None
    except ValueError as error:
        return dict(billing.DEFAULTS), str(error)


def _blocked(sel: dict, element_id: str):
    if sel.get("empty"):
        return empty_state("No builds yet.", id=element_id)
    if not sel.get("known", True):
        return empty_state(f"Nothing to show: unknown repository “{sel.get('repo')}”.", id=element_id)
    return None


def _window_label(sel: dict) -> str:
    return {v: label for v, label, _s in urlstate.WINDOWS}.get(sel.get("window"), "this window").lower()


def _none(sel: dict, element_id: str, what: str):
    return empty_state(f"No {what} in the {_window_label(sel)}.", id=element_id, className="empty-state empty-compact")


def queue_sections(sel: dict, theme: str):
    """(per label set: table and chart, per runner group: table)."""
    blocked = _blocked(sel, "rn-queue-empty")
    if blocked:
        return blocked, _blocked(sel, "rn-groups-empty")
    per_hour = hourly(sel)
    with services().engine.connect() as conn:
        found = q.queue_times(conn, selection_filters(sel), bucket=3600 if per_hour else 86400)
    if not found["labels"]:
        return _none(sel, "rn-queue-empty", "jobs"), _none(sel, "rn-groups-empty", "jobs")
    chart = graph(queue_figure(found["series"], dark=theme == "dark", per="hour" if per_hour else "day"),
                  "rn-queue-graph") if found["series"] else None
    labels = [label_grid(found["labels"]), queue_note(found["shown_sets"], found["all_sets"]), chart]
    if found["groups"] is None:
        groups = empty_state("Runner groups are not recorded by this store's schema yet.",
                             hint="They come with migration 0013 (jobs.runner_group).", id="rn-groups-empty",
                             className="empty-state empty-compact")
    else:
        groups = group_grid(found["groups"])
    return labels, groups


def waiting_section(sel: dict, *, now: float | None = None):
    if sel.get("empty"):
        return empty_state("No builds yet.", id="rn-waiting-empty"), ""
    svc = services()
    with svc.engine.connect() as conn:
        rows = q.waiting_now(conn, selection_filters(sel), stale_hours=svc.config.stale_hours, now=now)
    if not rows:
        return empty_state("No job is waiting for a runner.", id="rn-waiting-empty",
                           className="empty-state empty-compact"), ""
    return waiting_grid(rows), oldest_text(rows)


def hours_section(sel: dict, theme: str):
    blocked = _blocked(sel, "rn-hours-empty")
    if blocked:
        return blocked
    with services().engine.connect() as conn:
        grid = q.busiest_hours(conn, selection_filters(sel))
    if not any(map(any, grid)):
        return _none(sel, "rn-hours-empty", "started jobs")
    return graph(hours_figure(grid, dark=theme == "dark"), "rn-hours-graph")


def billing_section(sel: dict):
    blocked = _blocked(sel, "rn-billing-empty")
    if blocked:
        return blocked
    svc = services()
    rates, error = multipliers(svc.config)
    with svc.engine.connect() as conn:
        rows = q.billing_rows(q.minutes_by_labels(conn, selection_filters(sel)), rates)
    warning = dbc.Alert(f"{error}; GitHub's multipliers are used instead.", color="warning", className="m-3 small",
                        id="rn-billing-setting") if error else None
    if not rows:
        return [warning, _none(sel, "rn-billing-empty", "finished jobs")]
    return [warning, billing_cards(q.billing_totals(rows), rates), billing_grid(rows)]


# `rn-selection` as the page's `resolve` writes it; a callback given anything else answers 400.
SELECTION = {
    "repo": inputs.text, "known": inputs.flag(True), "empty": inputs.flag(), "branch": inputs.text,
    "workflow": inputs.text,
    "window": checker(inputs.choice, options=urlstate.WINDOW_VALUES, default=urlstate.DEFAULT_WINDOW),
    "branches": inputs.texts, "workflows": inputs.texts,
}


def selection(value) -> dict:
    return inputs.record(value, "rn-selection", SELECTION)


def _theme(value) -> str:
    return inputs.choice(value, "theme", THEMES, default="light")


def register() -> None:
    @callback(Output("rn-labels", "children"), Output("rn-groups", "children"),
              Input("rn-selection", "data"), Input("theme", "data"))
    def _queue(sel, theme):
        return compact(queue_sections(selection(sel), _theme(theme)))

    @callback(Output("rn-waiting", "children"), Output("rn-waiting-oldest", "children"),
              Input("rn-selection", "data"), Input("live-version", "data"))
    def _waiting(sel, _version):
        return compact(waiting_section(selection(sel)))

    @callback(Output("rn-hours", "children"), Input("rn-selection", "data"), Input("theme", "data"))
    def _hours(sel, theme):
        return compact(hours_section(selection(sel), _theme(theme)))

    @callback(Output("rn-billing", "children"), Input("rn-selection", "data"))
    def _billing(sel):
        return compact(billing_section(selection(sel)))

    filters_to_url("rn", selection)
