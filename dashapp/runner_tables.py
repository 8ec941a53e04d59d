"""Tables, cards and figures of the Runners view, built from `store.queries.runners` results (no queries here).

Grid rows keep the numbers raw (seconds, minutes); `assets/dashAgGridFunctions.js` formats them
(`wfDuration`), and a cell's tooltip gives the exact value.  Figures follow `dashapp.figures`: plotly's
white or dark template, transparent backgrounds, names passed through `plot_text`.
"""
from datetime import datetime, timezone
from functools import lru_cache

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import plotly.io as pio
from dash import dcc, html

from dashapp.components import format_duration, metric_card
from dashapp.figures import PALETTE
from domain import billing
from domain.text import plot_text

GRID_OPTIONS = {"rowHeight": 34, "tooltipShowDelay": 300, "animateRows": False,
                "enableCellTextSelection": True, "ensureDomOrder": True}
NAME_LIMIT = 60  # characters of a label set in the chart's legend and hovers
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
GRAPH_CONFIG = {"displaylogo": False, "responsive": True}
_SECONDS = {"valueFormatter": {"function": "wfDuration(params.value)"}, "type": "numericColumn",
            "tooltipValueGetter": {"function": "params.value == null ? '' : params.value.toFixed(1) + ' s'"},
            "width": 112}
# Numbers sort, not filter: a filter's icon took the room of their headers.
_COUNT = {"type": "numericColumn", "width": 95,
          "valueFormatter": {"function": "params.value == null ? '—' : params.value.toLocaleString()"}}


def _grid(grid_id: str, rows: list[dict], columns: list[dict], *, tall: int = 12) -> dag.AgGrid:
    short = len(rows) <= tall
    return dag.AgGrid(id=grid_id, rowData=rows, columnDefs=columns, defaultColDef={"resizable": True, "sortable": True},
                      dashGridOptions={**GRID_OPTIONS, "domLayout": "autoHeight" if short else "normal"},
                      style={"height": None if short else "480px"}, className="tr-grid")


def _queue_columns(first: dict) -> list[dict]:
    return [first,
            {"headerName": "Jobs", "field": "jobs", **_COUNT, "sort": "desc",
             "headerTooltip": "jobs of the selected runs (every attempt)"},
            {"headerName": "Started", "field": "started", **_COUNT,
             "headerTooltip": "jobs that really started: the sample of the percentiles"},
            *({"headerName": f"Queue p{q}", "field": f"p{q}", **_SECONDS,
               "headerTooltip": f"p{q} of started_at − created_at over the started jobs"} for q in (50, 90, 99))]


LABEL_COLUMN = {"headerName": "Runner labels", "field": "label_set", "minWidth": 150, "flex": 2, "filter": True,
                "tooltipField": "label_set"}
GROUP_COLUMN = {"headerName": "Runner group", "field": "runner_group", "minWidth": 150, "flex": 2, "filter": True,
                "tooltipField": "runner_group"}
NOT_RECORDED = "(not recorded)"


def label_grid(rows: list[dict]) -> dag.AgGrid:
    """Queue time p50/p90/p99 and job counts per runner label set."""
    return _grid("rn-labels-grid", rows, _queue_columns(LABEL_COLUMN))


def group_grid(rows: list[dict]) -> dag.AgGrid:
    """The same per runner group; jobs whose group was not recorded have a row of their own."""
    shown = [{**r, "runner_group": r["runner_group"] if r["runner_group"] is not None else NOT_RECORDED}
             for r in rows]
    return _grid("rn-groups-grid", shown, _queue_columns(GROUP_COLUMN))


WAITING_COLUMNS = [
    LABEL_COLUMN,
    {"headerName": "Waiting", "field": "waiting", **_COUNT, "width": 110, "sort": "desc",
     "headerTooltip": "jobs queued now (requested, pending, queued, waiting) of active runs"},
    {"headerName": "Oldest wait", "field": "oldest_wait", **_SECONDS,
     "tooltipValueGetter": {"function": "params.data.oldest ? 'waiting since ' + wfUtc(params.data.oldest) : ''"},
     "headerTooltip": "now − created_at of the longest-waiting job"},
    {"headerName": "Stale", "field": "stale", **_COUNT,
     "headerTooltip": "queued jobs of runs not updated within STALE_HOURS: counted apart"},
]


def waiting_grid(rows: list[dict]) -> dag.AgGrid:
    return _grid("rn-waiting-grid", rows, WAITING_COLUMNS)


BILLING_COLUMNS = [
    {"headerName": "Repository", "field": "repo", "minWidth": 150, "flex": 1.2, "filter": True, "tooltipField": "repo"},
    {"headerName": "Workflow", "field": "workflow", "minWidth": 130, "flex": 1.2, "filter": True,
     "tooltipField": "workflow"},
    {"headerName": "Runner OS", "field": "os", "width": 120, "filter": True},
    {"headerName": "Runner", "field": "hosting", "width": 130, "filter": True},
    {"headerName": "Jobs", "field": "jobs", **_COUNT},
    {"headerName": "Run time", "field": "seconds", **_SECONDS, "headerTooltip": "Σ ended − started, unrounded"},
    {"headerName": "Minutes", "field": "minutes", **_COUNT,
     "headerTooltip": "Σ of each job's duration rounded up to the whole minute"},
    {"headerName": "×", "field": "multiplier", "width": 80, "type": "numericColumn",
     "valueFormatter": {"function": "params.data.self_hosted ? '—' : params.value"},
     "headerTooltip": "the runner OS multiplier (BILLING_MULTIPLIERS)"},
    {"headerName": "Billable minutes", "field": "billable", **_COUNT, "width": 165, "sort": "desc",
     "valueFormatter": {"function": "params.data.self_hosted ? 'not billed' : params.value.toLocaleString()"},
     "headerTooltip": "minutes × multiplier; self-hosted runners are not billed"},
]


def billing_grid(rows: list[dict]) -> dag.AgGrid:
    shown = [{**r, "hosting": "self-hosted" if r["self_hosted"] else "GitHub-hosted",
              "workflow": r["workflow"] if r["workflow"] is not None else "(unknown)"} for r in rows]
    return _grid("rn-billing-grid", shown, BILLING_COLUMNS, tall=15)


def _number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def billing_cards(totals: dict, multipliers: dict) -> dbc.Row:
    """Billable minutes in all, per OS (minutes × multiplier), and the self-hosted minutes apart."""
    cards = [metric_card("Billable minutes", _number(totals["billable"]),
                         f"{totals['jobs'] - totals['self_hosted_jobs']:,} GitHub-hosted jobs",
                         card_id="rn-card-billable")]
    for os in billing.OS_NAMES:
        part = totals["by_os"][os]
        if os == billing.UNKNOWN and not part["jobs"]:
            continue  # a card for it only when some hosted job's OS is unknown
        cards.append(metric_card(f"{os if os != billing.UNKNOWN else 'Unknown OS'}", _number(part["billable"]),
                                 f"{part['minutes']:,} min × {_number(multipliers[os])} · {part['jobs']:,} jobs",
                                 card_id=f"rn-card-{os.lower()}"))
    cards.append(metric_card("Self-hosted minutes", f"{totals['self_hosted']:,}",
                             f"not billed · {totals['self_hosted_jobs']:,} jobs", card_id="rn-card-self-hosted"))
    return dbc.Row([dbc.Col(card, xs=6, md=4, xl=True, className="mb-3") for card in cards],
                   className="metric-cards g-3 px-3 pt-3")


@lru_cache(maxsize=2)
def _template(name: str) -> dict:
    """plotly's named template as the plain dict plotly.js reads (it knows no template names)."""
    return pio.templates[name].to_plotly_json()


def _layout(dark: bool, height: int) -> dict:
    return {"template": _template("plotly_dark" if dark else "plotly_white"), "height": height,
            "margin": {"l": 50, "r": 20, "t": 30, "b": 40}, "paper_bgcolor": "rgba(0,0,0,0)",
            "plot_bgcolor": "rgba(0,0,0,0)", "font": {"size": 12}}


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def queue_figure(series: list[dict], *, dark: bool = False, per: str = "day") -> dict:
    """Queue time p90 per label set per `per` (minutes), one line each, as a figure dict."""
    by_set: dict[str, list] = {}
    for r in series:
        by_set.setdefault(r["label_set"], []).append(r)
    data = []
    for i, name in enumerate(sorted(by_set)):
        rows = sorted(by_set[name], key=lambda r: r["bucket"])
        shown = plot_text(name, NAME_LIMIT)
        data.append({
            "type": "scatter", "mode": "lines+markers", "name": shown,
            "x": [_time(r["bucket"]) for r in rows], "y": [round(r["p90"] / 60, 2) for r in rows],
            "customdata": [r["started"] for r in rows], "line": {"color": PALETTE[i % len(PALETTE)], "width": 2},
            "marker": {"size": 5},
            "hovertemplate": f"<b>{shown}</b><br>%{{x}}<br>queue p90 %{{y:.2f}} min<br>%{{customdata}} started"
                             "<extra></extra>"})
    layout = {**_layout(dark, 340), "hovermode": "closest",
              "yaxis": {"title": {"text": f"queue p90 per {per} (min)"}, "rangemode": "tozero"},
              "legend": {"orientation": "h", "y": -0.2}}
    return {"data": data, "layout": layout}


def hours_figure(grid: list[list[int]], *, dark: bool = False) -> dict:
    """Jobs started per UTC weekday × hour of day, as a heatmap (the count is in each cell's hover)."""
    scale = [[0, "rgba(31,119,180,0.04)"], [1, "#1f77b4"]] if not dark else [[0, "rgba(23,190,207,0.05)"],
                                                                               [1, "#17becf"]]
    data = [{"type": "heatmap", "z": grid, "x": [f"{h:02d}" for h in range(24)], "y": list(WEEKDAYS),
             "colorscale": scale, "hovertemplate": "%{y} %{x}:00–%{x}:59 UTC<br>%{z} jobs started<extra></extra>",
             "xgap": 2, "ygap": 2, "colorbar": {"title": {"text": "jobs"}, "thickness": 12}}]
    layout = {**_layout(dark, 300), "xaxis": {"title": {"text": "hour of day (UTC)"}, "dtick": 1},
              "yaxis": {"autorange": "reversed"}}
    return {"data": data, "layout": layout}


def graph(figure: dict, graph_id: str) -> dcc.Graph:
    return dcc.Graph(figure=figure, id=graph_id, config=GRAPH_CONFIG)


def queue_note(shown: int, total: int) -> html.Div | None:
    if total <= shown:
        return None
    return html.Div(f"The chart draws the {shown} label sets with the most started jobs of {total}; the table has "
                    "them all.", className="small text-muted px-3 pt-2")


def oldest_text(rows: list[dict]) -> str:
    waits = [r["oldest_wait"] for r in rows if r.get("oldest_wait") is not None]
    return f"oldest waiting {format_duration(max(waits))}" if waits else ""
