"""Tables of the Triage and Developer views, built from their query frames.

Pure functions of frames (no queries).  Run rows in AG Grids stay raw
`RUN_COLUMNS` dicts, formatted by the shared functions of
`assets/dashAgGridFunctions.js` (`wfAgo`, `wfDuration`, `RunGlyph`, `RunLink`, `CommitLink`).  Every sha links to
its commit's page here (`commit_href`).
"""
from __future__ import annotations  # `pd.DataFrame` annotations stay unevaluated: pandas loads on first use

import time

import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import html

from dashapp import sorttable as st
from dashapp.components import format_duration
from dashapp.tables import ago, commit_href, short_sha_link, utc
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
# Both tables are markup (`dashapp.sorttable`): a few hundred rows at most, and AG Grids here cost ~0.3 s of
# each Triage load at 1M runs.

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


FAILURE_HEADERS = [
    st.Header("Workflow"), st.Header("Failing job"), st.Header("Failing step"), st.Header("Failures", numeric=True),
    st.Header("First seen"), st.Header("Last seen"), st.Header("Commits", numeric=True), st.Header("Authors"),
    st.Header("Runs (newest first)", title="the commits of the group's newest failed runs", sortable=False),
]
FAILURES_SORTED_BY = (5, st.DESCENDING)  # last seen: the newest failure first


def _text_cell(value, *, clip_to_line: bool = False) -> str:
    """A name, wrapped in its column (or cut to one line with an ellipsis); the whole text is its hover when
    it is cut."""
    text = as_text(value)
    return st.cell(_short(text), title=text if clip_to_line or len(text) > SHOWN else None,
                   css="st-clip" if clip_to_line else "st-text")


def _when_cell(epoch, now: float) -> str:
    epoch = _clean(epoch)
    return st.cell(ago(epoch, now), sort="" if epoch is None else f"{float(epoch):.0f}", title=utc(epoch) or None)


def _runs_cell(row: dict) -> str:
    links = [st.link(sha[:7], commit_href(row["repo"], sha), class_="font-monospace commit-link", title=sha)
             for sha in row["runs"] if sha]
    more = f" … +{row['more']} more" if row["more"] else ""
    return st.cell(markup=" ".join(links) + more, css="tr-run-links")


def failure_table(groups: pd.DataFrame, *, show_repo: bool = False, now: float | None = None):
    """One row per same failure (workflow, job, step), newest first, with links to its newest runs' commits."""
    now = time.time() if now is None else now
    rows = [[_text_cell(r["workflow"]), _text_cell(r["job"]), _text_cell(r["step"]),
             st.cell(f"{r['count']:,}", sort=r["count"], numeric=True),
             _when_cell(r["first_seen"], now), _when_cell(r["last_seen"], now),
             st.cell(f"{r['commits']:,}", sort=r["commits"], numeric=True), _text_cell(r["authors_text"], clip_to_line=True),
             _runs_cell(r)]
            for r in sorted(failure_rows(groups, show_repo=show_repo), key=lambda r: -(r["last_seen"] or 0))]
    return st.table("tr-failures-grid", FAILURE_HEADERS, rows, sort=FAILURES_SORTED_BY, max_height="520px")


# -- Build analysis ------------------------------------------------------------------------

def _shade(rate, rgb: str) -> str | None:
    """A cell's background from transparent to `rgb` as `rate` (0 to 1) grows; the number is in the cell too."""
    return None if rate is None else f"background-color: rgba({rgb}, {0.08 + 0.6 * min(rate, 1):.2f})"


def _rate_cell(rate, rgb: str) -> str:
    rate = _clean(rate)
    if rate is None:
        return st.cell("—", sort="", numeric=True)
    strong = "fw-semibold" if rate > 0.3 else None
    return st.cell(f"{100 * rate:.1f} %", sort=f"{rate:.6f}", numeric=True, css=strong, style=_shade(rate, rgb))


def _streak_cell(streak) -> str:
    streak = int(_clean(streak) or 0)
    if not streak:
        return st.cell("—", sort=0, numeric=True)
    return st.cell(f"{streak} red", sort=streak, numeric=True, css="fw-semibold",
                   style=f"background-color: rgba({RED}, {min(0.15 + 0.1 * streak, 0.7):.2f})")


RED, AMBER = "180,35,24", "154,103,0"
ANALYSIS_HEADERS = [
    st.Header("Workflow"), st.Header("Branch"), st.Header("Runs", numeric=True), st.Header("Failures", numeric=True),
    st.Header("Failure rate", numeric=True, title="failed runs ÷ decisive completed runs"),
    st.Header("Flake rate", numeric=True, title="flaky runs ÷ (successful + flaky runs)"),
    st.Header("Current streak", numeric=True, title="consecutive newest commits whose cell is X or T"),
    st.Header("Last run"),
]
ANALYSIS_SORTED_BY = (3, st.DESCENDING)  # most failures first


def analysis_table(frame: pd.DataFrame, *, show_repo: bool = False, now: float | None = None):
    """Workflows × branches, most failures first; rates and red streaks shaded (the number is written too)."""
    now = time.time() if now is None else now
    records = sorted(_records(frame), key=lambda r: (-int(r["failed"] or 0), -(_clean(r["last_run"]) or 0)))
    rows = [[_text_cell((f"{r['repo']} · " if show_repo else "") + str(r["workflow"])), _text_cell(r["branch"]),
             st.cell(f"{int(r['runs']):,}", sort=int(r["runs"]), numeric=True),
             st.cell(f"{int(r['failed']):,}", sort=int(r["failed"]), numeric=True),
             _rate_cell(r["failure_rate"], RED), _rate_cell(r["flake_rate"], AMBER), _streak_cell(r["streak"]),
             _when_cell(r["last_run"], now)]
            for r in records]
    return st.table("tr-analysis-grid", ANALYSIS_HEADERS, rows, sort=ANALYSIS_SORTED_BY, max_height="520px")


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
