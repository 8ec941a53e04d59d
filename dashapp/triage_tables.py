"""Tables of the Triage and Developer views, built from their query frames.

Pure functions of frames (no queries).  Run rows in AG Grids stay raw
`RUN_COLUMNS` dicts, formatted by the shared functions of
`assets/dashAgGridFunctions.js` (`wfAgo`, `wfDuration`, `RunGlyph`, `RunLink`, `CommitLink`).  Every sha links to
its commit's page here (`commit_href`).
"""
from __future__ import annotations  # `pd.DataFrame` annotations stay unevaluated: pandas loads on first use

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import html

from dashapp.components import format_duration
from dashapp.tables import ago, short_sha_link, utc
from domain.text import as_text, clip, link_url
from store.lazymodules import pandas as pd

SHOWN = 120  # characters of a name or message line drawn in a list or table (the whole text is its title)
GRID_OPTIONS = {"rowHeight": 34, "tooltipShowDelay": 300, "animateRows": False,
                "enableCellTextSelection": True, "ensureDomOrder": True}


def _clean(value):
    return None if value is None or (isinstance(value, float) and value != value) else value


def _records(frame: pd.DataFrame):
    """The rows of `frame` as dicts of plain values (`to_dict("records")` boxed each value through
    pandas: most of a grid's build time for a few hundred rows)."""
    columns = list(frame.columns)
    return [dict(zip(columns, row)) for row in zip(*(frame[c].tolist() for c in columns))]


def _link(text, url, **kwargs):
    """`text` linking to `url` in a new tab when that is an http(s) URL (`domain.text.link_url`), else text alone."""
    url = link_url(url)
    return html.A(text, href=url, target="_blank", rel="noopener", **kwargs) if url else html.Span(text, **kwargs)


def _first_line(message) -> str:
    return clip((str(_clean(message) or "").strip().splitlines() or [""])[0], 2 * SHOWN)


def _short(text) -> str:
    return clip(as_text(text), SHOWN)


# -- Failed builds, grouped by the same failure --------------------------------------------

FAILURE_COLUMNS = [
    {"headerName": "Workflow", "field": "workflow", "minWidth": 150, "flex": 1.2, "filter": True,
     "tooltipField": "workflow"},
    {"headerName": "Failing job", "field": "job", "minWidth": 150, "flex": 1.4, "filter": True,
     "tooltipField": "job"},
    {"headerName": "Failing step", "field": "step", "minWidth": 140, "flex": 1.3, "filter": True,
     "tooltipField": "step"},
    {"headerName": "Failures", "field": "count", "width": 100, "type": "numericColumn", "filter": "agNumberColumnFilter"},
    {"headerName": "First seen", "field": "first_seen", "width": 115,
     "valueFormatter": {"function": "wfAgo(params.value)"}, "tooltipValueGetter": {"function": "wfUtc(params.value)"}},
    {"headerName": "Last seen", "field": "last_seen", "width": 115, "sort": "desc",
     "valueFormatter": {"function": "wfAgo(params.value)"}, "tooltipValueGetter": {"function": "wfUtc(params.value)"}},
    {"headerName": "Commits", "field": "commits", "width": 100, "type": "numericColumn"},
    {"headerName": "Authors", "field": "authors_text", "minWidth": 130, "flex": 1.2, "filter": True,
     "tooltipField": "authors_text"},
    # The runs' commits, linked to their pages by `CommitLinks` (assets/dashAgGridFunctions.js) from their shas:
    # no data goes through Markdown, so no text can make a link of its own.
    {"headerName": "Runs (newest first)", "field": "runs", "minWidth": 260, "flex": 2.5,
     "cellRenderer": "CommitLinks", "cellDataType": False, "sortable": False, "autoHeight": True, "wrapText": True,
     "cellClass": "tr-run-links"},
]


def failure_rows(groups: pd.DataFrame, *, show_repo: bool = False) -> list[dict]:
    rows = []
    for g in _records(groups):
        step = _clean(g["step"])
        number = _clean(g["step_number"])
        runs = [as_text(x.get("sha")) for x in g["runs"]]
        more = g["count"] - len(g["runs"])
        rows.append({
            "workflow": (f"{g['repo']} · " if show_repo else "") + str(g["workflow"]),
            "job": _clean(g["job"]) or "(no job data)",
            "step": f"#{int(number)} {step}" if step and number is not None else (step or "—"),
            "count": int(g["count"]), "commits": int(g["commits"]),
            "first_seen": g["first_seen"], "last_seen": g["last_seen"], "authors_text": ", ".join(g["authors"]),
            "repo": g["repo"], "runs": runs, "more": max(more, 0),
        })
    return rows


def failure_grid(groups: pd.DataFrame, *, show_repo: bool = False) -> dag.AgGrid:
    """One row per same failure, with links to its newest runs' commits."""
    return dag.AgGrid(
        id="tr-failures-grid", rowData=failure_rows(groups, show_repo=show_repo),
        columnDefs=FAILURE_COLUMNS, defaultColDef={"resizable": True, "sortable": True},
        dashGridOptions={**GRID_OPTIONS, "domLayout": "autoHeight" if len(groups) <= 12 else "normal"},
        style={"height": None if len(groups) <= 12 else "520px"}, className="tr-grid",
    )


# -- Build analysis ------------------------------------------------------------------------

def _rate_style(bad: bool) -> dict:
    """A cellStyle function: background from transparent to red (or amber) as the rate grows."""
    rgb = "180,35,24" if bad else "154,103,0"
    return {"function": f"params.value == null ? {{}} : {{backgroundColor: 'rgba({rgb},' + "
                        f"(0.08 + 0.6 * Math.min(params.value, 1)) + ')', fontWeight: params.value > 0.3 ? 600 : 400}}"}


ANALYSIS_COLUMNS = [
    {"headerName": "Workflow", "field": "workflow", "minWidth": 120, "flex": 1, "filter": True, "pinned": "left"},
    {"headerName": "Branch", "field": "branch", "minWidth": 140, "flex": 1.4, "filter": True, "tooltipField": "branch"},
    {"headerName": "Runs", "field": "runs", "width": 90, "type": "numericColumn", "filter": "agNumberColumnFilter"},
    {"headerName": "Failures", "field": "failed", "width": 115, "type": "numericColumn",
     "filter": "agNumberColumnFilter", "sort": "desc"},
    {"headerName": "Failure rate", "field": "failure_rate", "width": 120, "type": "numericColumn",
     "valueFormatter": {"function": "params.value == null ? '—' : (100 * params.value).toFixed(1) + ' %'"},
     "cellStyle": _rate_style(True)},
    {"headerName": "Flake rate", "field": "flake_rate", "width": 115, "type": "numericColumn",
     "valueFormatter": {"function": "params.value == null ? '—' : (100 * params.value).toFixed(1) + ' %'"},
     "cellStyle": _rate_style(False),
     "headerTooltip": "flaky runs ÷ (successful + flaky runs)"},
    {"headerName": "Current streak", "field": "streak", "width": 130, "type": "numericColumn",
     "valueFormatter": {"function": "params.value ? params.value + ' red' : '—'"},
     "cellStyle": {"function": "params.value ? {backgroundColor: 'rgba(180,35,24,' + "
                               "Math.min(0.15 + 0.1 * params.value, 0.7) + ')', fontWeight: 600} : {}"},
     "headerTooltip": "consecutive newest commits whose cell is X or T"},
    {"headerName": "Last run", "field": "last_run", "width": 110,
     "valueFormatter": {"function": "wfAgo(params.value)"}, "tooltipValueGetter": {"function": "wfUtc(params.value)"}},
]


def analysis_grid(frame: pd.DataFrame, *, show_repo: bool = False) -> dag.AgGrid:
    """Workflows × branches, rates colour-scaled (the number is always written in the cell too)."""
    rows = []
    for r in _records(frame):
        rows.append({**{k: _clean(v) for k, v in r.items()},
                     "workflow": (f"{r['repo']} · " if show_repo else "") + str(r["workflow"])})
    return dag.AgGrid(
        id="tr-analysis-grid", rowData=rows, columnDefs=ANALYSIS_COLUMNS,
        defaultColDef={"resizable": True, "sortable": True},
        dashGridOptions={**GRID_OPTIONS, "domLayout": "autoHeight" if len(rows) <= 15 else "normal"},
        style={"height": None if len(rows) <= 15 else "520px"}, className="tr-grid",
    )


# -- Broken main ---------------------------------------------------------------------------

def broken_main_table(frame: pd.DataFrame) -> dbc.Table:
    """One row per workflow red on a default branch: streak, first bad commit, red for how long."""
    head = html.Thead(html.Tr([html.Th(h) for h in ("Workflow", "Branch", "Streak", "First bad commit", "Author",
                                                   "Red for", "Newest failure")]))
    body = []
    for r in _records(frame):
        after = {"success": None, None: "history starts with the streak",
                 "cancelled": "after a cancelled build"}.get(r["after"], f"after {r['after']}")
        body.append(html.Tr([
            html.Td([html.B(_short(r["workflow"]), title=r["workflow"]),
                     html.Div(_short(r["repo"]), className="small text-muted", title=r["repo"])]),
            html.Td(_short(r["branch"]), title=r["branch"]),
            html.Td(html.Span(f"{r['streak']} red", className="badge text-bg-danger")),
            html.Td([short_sha_link(r["repo"], r["sha"], className="font-monospace me-2 tr-first-bad-sha"),
                     html.Span(_first_line(r["message"]), className="tr-first-bad-title"),
                     html.Div(after, className="small text-muted") if after else None]),
            html.Td(_clean(r["commit_author"]) or "—", className="tr-first-bad-author"),
            html.Td(format_duration(r["red_for"]), title=f"red since {utc(r['red_since'])}"),
            html.Td(_link("run ↗", r["run_url"]) if link_url(r["run_url"]) else "—"),
        ], className="tr-broken-row", **{"data-workflow": r["workflow"], "data-repo": r["repo"]}))
    return dbc.Table([head, html.Tbody(body)], className="mb-0 align-middle", size="sm", hover=True,
                     id="tr-broken-table")


# -- Flaky runs ----------------------------------------------------------------------------

FLAKY_COLUMNS = [
    {"headerName": "Run", "field": "id", "colId": "run", "width": 130, "cellRenderer": "RunLink", "sortable": False,
     "valueGetter": {"function": "'#' + params.data.id"}},
    {"headerName": "Workflow", "field": "workflow", "minWidth": 110, "flex": 1, "filter": True},
    {"headerName": "Branch", "field": "branch", "minWidth": 110, "flex": 1, "filter": True},
    {"headerName": "Commit", "field": "commit", "minWidth": 220, "flex": 2.5, "cellRenderer": "CommitLink",
     "tooltipField": "commit"},
    {"headerName": "Author", "field": "author", "width": 120, "filter": True},
    {"headerName": "Attempts", "field": "history_text", "minWidth": 170, "flex": 1.4,
     "tooltipField": "history_text"},
    {"headerName": "Created", "field": "createtime", "width": 110, "sort": "desc",
     "valueFormatter": {"function": "wfAgo(params.value)"}, "tooltipValueGetter": {"function": "wfUtc(params.value)"}},
]


def flaky_counts_list(counts: pd.DataFrame, *, show_repo: bool = False) -> html.Div:
    items = [html.Span([f"{_short(r['repo'])} · " if show_repo else "", html.B(_short(r["workflow"])),
                        html.Span(str(r["flaky"]), className="badge rounded-pill text-bg-warning ms-1")],
                       className="me-3 tr-flaky-count", **{"data-workflow": r["workflow"]})
             for r in _records(counts)]
    return html.Div([html.Span("Flaky runs per workflow: ", className="text-muted me-2"), *items],
                    className="small p-2 d-flex flex-wrap align-items-center", id="tr-flaky-counts")


def flaky_grid(frame: pd.DataFrame) -> dag.AgGrid:
    rows = [{
        "id": r["id"], "url": link_url(r["url"]),
        "workflow": r["workflow"], "branch": r["branch"], "author": r["author"],
        "commit": f"{(r['sha'] or '')[:7]} {_first_line(r['message'])}", "createtime": r["createtime"],
        "repo": r["repo"], "sha": r["sha"], "title": _first_line(r["message"]),
        "history_text": " → ".join(str(h) for h in r["history"]),
    } for r in _records(frame)]
    return dag.AgGrid(
        id="tr-flaky-grid", rowData=rows, columnDefs=FLAKY_COLUMNS, getRowId="params.data.id",
        defaultColDef={"resizable": True, "sortable": True},
        dashGridOptions={**GRID_OPTIONS, "domLayout": "autoHeight" if len(rows) <= 12 else "normal"},
        style={"height": None if len(rows) <= 12 else "460px"}, className="tr-grid",
    )


# -- Developer: unfixed failures and history -----------------------------------------------

UNFIXED_SHOWN = 100


def unfixed_list(frame: pd.DataFrame, *, now: float, shown: int = UNFIXED_SHOWN) -> html.Ul:
    """The newest `shown` unfixed failures (a person with hundreds, e.g. abandoned red branches, got a
    ~500 KB list that took ~0.3 s to build); a last line says how many more there are (the card counts all)."""
    items = [html.Li([
        _link(f"{_short(r['workflow'])} #{r['id']}", r["url"], className="me-2", title=r["workflow"]),
        html.Span(r["conclusion"], className="badge text-bg-danger me-2"),
        html.Span(f"{_short(r['repo'])} · {_short(r['branch'])} · ", className="text-muted"),
        short_sha_link(r["repo"], r["sha"], className="font-monospace me-1"),
        html.Span(_first_line(r["message"] or r["title"])),
        html.Span(f" · {ago(r['createtime'], now)}", className="text-muted", title=utc(r["createtime"])),
    ], className="list-group-item dev-unfixed-item") for r in _records(frame.head(shown))]
    if len(frame) > shown:
        items.append(html.Li(f"… and {len(frame) - shown:,} older unfixed failures, not listed.",
                             className="list-group-item text-muted dev-unfixed-more"))
    return html.Ul(items, className="list-group list-group-flush", id="dev-unfixed-list")


TEXT_FILTER = {"filter": "agTextColumnFilter",
               "filterParams": {"filterOptions": ["contains", "equals", "startsWith"], "maxNumConditions": 1,
                                "buttons": ["reset"]}}
HISTORY_COLUMNS = [
    {"headerName": "", "field": "conclusion", "colId": "conclusion", "width": 60, "cellRenderer": "RunGlyph",
     "tooltipValueGetter": {"function": "wfStateText(params.data)"}, **TEXT_FILTER},
    {"headerName": "Workflow", "field": "workflow", "minWidth": 110, "flex": 1, "cellRenderer": "RunLink",
     **TEXT_FILTER},
    {"headerName": "Repository", "field": "repo", "minWidth": 120, "flex": 1, **TEXT_FILTER},
    {"headerName": "Branch", "field": "branch", "minWidth": 120, "flex": 1.2, "tooltipField": "branch",
     **TEXT_FILTER},
    {"headerName": "Commit", "field": "sha", "minWidth": 200, "flex": 2.4, "cellRenderer": "CommitLink",
     "valueGetter": {"function": "params.data && wfCommitText(params.data)"},
     "tooltipValueGetter": {"function": "params.data && params.data.message"}, **TEXT_FILTER},
    {"headerName": "Event", "field": "event", "width": 100, **TEXT_FILTER},
    {"headerName": "Attempt", "field": "attempt", "width": 95, "type": "numericColumn"},
    {"headerName": "Duration", "field": "runtime", "width": 100, "type": "numericColumn",
     "valueFormatter": {"function": "params.data ? wfRunDuration(params.data) : ''"}},
    {"headerName": "Created", "field": "createtime", "width": 110, "sort": "desc",
     "valueFormatter": {"function": "wfAgo(params.value)"}, "tooltipValueGetter": {"function": "wfUtc(params.value)"}},
]


def history_grid(page_size: int) -> dag.AgGrid:
    """The personal build history: AG Grid's infinite row model, pages sorted and filtered in SQL."""
    return dag.AgGrid(
        id="dev-history", rowModelType="infinite", columnDefs=HISTORY_COLUMNS,
        defaultColDef={"resizable": True, "sortable": True},
        dashGridOptions={**GRID_OPTIONS, "cacheBlockSize": page_size, "maxBlocksInCache": 20,
                         "infiniteInitialRowCount": 1, "rowBuffer": 10},
        style={"height": "600px"}, className="tr-grid",
    )
