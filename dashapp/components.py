"""Layout pieces every view shares: metric cards, empty states, filter bar, CSV link.

Pure functions of their arguments (no queries), so each view composes them
and tests can render them without a server.
"""
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp import urlstate

DASH = "—"


def format_duration(seconds) -> str:
    """`seconds` as "8m 12s" ("45s", "2h 05m", "3d 4h"); None or NaN as "—"."""
    if seconds is None:
        return DASH
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        return DASH
    if seconds != seconds:  # NaN
        return DASH
    total = int(round(max(seconds, 0)))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_rate(value) -> str:
    """A rate in [0, 1] as "93.2 %"; None (no decisive runs) as "—", never 0 %."""
    if value is None or value != value:
        return DASH
    return f"{value * 100:.1f} %"


def metric_card(title: str, value: str, detail: str | None = None, *, card_id: str | None = None,
                tone: str | None = None) -> dbc.Card:
    """One card: a small title, a big value, an optional detail line."""
    body = [html.Div(title, className="metric-title"), html.Div(value, className="metric-value")]
    if detail:
        body.append(html.Div(detail, className="metric-detail"))
    kwargs = {"id": card_id} if card_id else {}
    return dbc.Card(dbc.CardBody(body), className=f"metric-card h-100 {f'metric-{tone}' if tone else ''}".strip(),
                    **kwargs)


def metric_cards_row(cards: dict, extra: list | None = None) -> dbc.Row:
    """The cards of `store.queries.cards.metric_cards` (plus `extra` cards) as one responsive row."""
    cards = cards or {}
    decisive = cards.get("decisive") or 0
    failed_tone = "bad" if (cards.get("failure_rate") or 0) > 0 else None
    stale = cards.get("stale") or 0
    items = [
        metric_card("Success rate", format_rate(cards.get("success_rate")),
                    f"{cards.get('success', 0)} of {decisive} decisive runs", card_id="card-success-rate",
                    tone="good" if cards.get("success_rate") is not None else None),
        metric_card("Failure rate", format_rate(cards.get("failure_rate")),
                    f"{cards.get('failed', 0)} failed, {cards.get('cancelled', 0)} cancelled",
                    card_id="card-failure-rate", tone=failed_tone),
        metric_card("Average build time", format_duration(cards.get("build_time_avg")),
                    f"p50 {format_duration(cards.get('build_time_p50'))} · "
                    f"p90 {format_duration(cards.get('build_time_p90'))}", card_id="card-build-time"),
        metric_card("Active builds", str(cards.get("active", 0)),
                    f"+ {stale} stale" if stale else "none stale", card_id="card-active"),
        metric_card("Queue time p50", format_duration(cards.get("queue_time_p50")),
                    f"p90 {format_duration(cards.get('queue_time_p90'))}", card_id="card-queue-time"),
    ]
    items += list(extra or [])
    return dbc.Row([dbc.Col(item, xs=6, md=4, xl=True, className="mb-3") for item in items],
                   className="metric-cards g-3")


def empty_state(message: str, *, hint: str | None = None, **kwargs) -> html.Div:
    """A clear, friendly "nothing to show" block (never an empty chart or a traceback)."""
    children = [html.Div("∅", className="empty-icon", **{"aria-hidden": "true"}),
                html.Div(message, className="empty-message")]
    if hint:
        children.append(html.Div(hint, className="empty-hint text-muted"))
    kwargs.setdefault("className", "empty-state")
    return html.Div(children, **kwargs)


def filter_bar(prefix: str, *, branches=(), workflows=(), branch=None, workflow=None, window=None,
               extra: list | None = None) -> dbc.Row:
    """Branch, workflow and time-window selectors with ids `<prefix>-branch`, `-workflow`, `-window`."""
    def options(values):
        return [{"label": v, "value": v} for v in values]

    window_options = [{"label": label, "value": value} for value, label, _s in urlstate.WINDOWS]
    cols = [
        dbc.Col([dbc.Label("Branch", html_for=f"{prefix}-branch", className="small mb-0"),
                 dcc.Dropdown(id=f"{prefix}-branch", options=options(branches), value=branch,
                              placeholder="Branch", clearable=False)], md=3),
        dbc.Col([dbc.Label("Workflow", html_for=f"{prefix}-workflow", className="small mb-0"),
                 dcc.Dropdown(id=f"{prefix}-workflow", options=options(workflows), value=workflow,
                              placeholder="All workflows", clearable=True)], md=3),
        dbc.Col([dbc.Label("Time window", html_for=f"{prefix}-window", className="small mb-0"),
                 dcc.Dropdown(id=f"{prefix}-window", options=window_options,
                              value=window or urlstate.DEFAULT_WINDOW, clearable=False)], md=2),
    ]
    cols += [dbc.Col(item, md="auto") for item in (extra or [])]
    return dbc.Row(cols, className="filter-bar g-2 mb-3 align-items-end")


def filters_query(filters) -> str:
    """`filters` (a `Filters` or a dict) as a query string, `since`/`until` included."""
    values = filters.as_dict() if hasattr(filters, "as_dict") else dict(filters or {})
    return urlencode({k: v for k, v in values.items() if v not in (None, "")})


def download_csv_link(filters) -> html.A:
    """A link to `/api/builds.csv` for the same selection."""
    query = filters_query(filters)
    return html.A("Download CSV", href=f"/api/builds.csv?{query}" if query else "/api/builds.csv",
                  id="download-csv", className="btn btn-outline-secondary btn-sm")
