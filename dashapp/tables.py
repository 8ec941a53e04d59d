"""Tables built from query frames: the commit grid (HTML) and the build stream's columns (AG Grid).

The commit grid is a plain table: every cell is a link to the run on
GitHub with its glyph, a colour class and a hover title.  The build
stream's rows stay raw `RUN_COLUMNS` dicts; every format is a JS function
in `assets/dashAgGridFunctions.js`, so rows pushed live look the same.
"""
import time

import dash_ag_grid as dag
from dash import html

from dashapp.components import format_duration
from store.queries.waterfall import GLYPHS

ROW_LABELS = {"red": "red", "flaky": "flaky", "pending": "pending", "green": "green"}


def _clean(value):
    return None if value is None or value != value else value


def ago(epoch, now: float | None = None) -> str:
    """"5m ago", "3h ago", "2d ago" for an epoch time; "—" for none."""
    epoch = _clean(epoch)
    if epoch is None:
        return "—"
    delta = max((time.time() if now is None else now) - float(epoch), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if delta >= size:
            return f"{int(delta // size)}{unit} ago"
    return "just now"


def utc(epoch) -> str:
    epoch = _clean(epoch)
    return "" if epoch is None else time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(float(epoch)))


def cell_title(workflow: str, cell: dict) -> str:
    """The hover text of a grid cell: state, attempts, duration, queue time."""
    state = GLYPHS.get(cell["glyph"], cell["glyph"])
    conclusion = _clean(cell.get("conclusion")) or _clean(cell.get("status")) or ""
    attempts = int(cell.get("attempts") or 1)
    parts = [f"{workflow}: {state}" + (f" ({conclusion})" if conclusion and conclusion != state else ""),
             f"{attempts} attempt{'s' if attempts != 1 else ''}"]
    if cell.get("earlier_failed"):
        parts.append("an earlier attempt failed")
    if _clean(cell.get("duration")) is not None:
        parts.append(f"duration {format_duration(cell['duration'])}")
    if _clean(cell.get("queuetime")) is not None:
        parts.append(f"queued {format_duration(cell['queuetime'])}")
    return " · ".join(parts)


def _glyph_cell(workflow: str, cell: dict | None):
    if cell is None:
        return html.Td("", className="wf-cell wf-none", title=f"{workflow}: not run", **{"data-workflow": workflow})
    glyph = cell["glyph"]
    label = cell_title(workflow, cell)
    css = "wf-glyph glyph-" + {"?": "R"}.get(glyph, glyph)
    content = html.A(glyph, href=cell["url"], target="_blank", rel="noopener", className=css, title=label,
                     **{"aria-label": label}) if _clean(cell.get("url")) else html.Span(glyph, className=css, title=label)
    return html.Td(content, className="wf-cell", **{"data-workflow": workflow, "data-glyph": glyph})


def commit_url(repo: str, sha: str, repo_url: str | None = None) -> str:
    base = (repo_url or f"https://github.com/{repo}").rstrip("/")
    return f"{base}/commit/{sha}"


def commit_grid_table(grid: dict, repo: str, *, now: float | None = None, repo_url: str | None = None) -> html.Table:
    """The HUD table: one row per commit, one glyph column per workflow."""
    workflows = grid["workflows"]
    cells = {(c["commitid"], c["workflow"]): c for c in grid["cells"].to_dict("records")}
    header = html.Thead(html.Tr(
        [html.Th("", className="wf-state-col"), html.Th("Commit", className="wf-commit-col"),
         html.Th("Author", className="wf-author-col"), html.Th("Time", className="wf-time-col")]
        + [html.Th(html.Div(name, className="wf-col-name"), title=name, className="wf-col") for name in workflows]
    ))
    body = []
    for commit in grid["commits"].to_dict("records"):
        state = commit["state"]
        message = _clean(commit.get("message")) or ""
        title = message.splitlines()[0] if message else "(no message)"
        sha = commit["sha"]
        body.append(html.Tr(
            [
                html.Td(html.Span(ROW_LABELS[state], className=f"row-badge row-badge-{state}"),
                        className="wf-state-col"),
                html.Td([html.A(sha[:7], href=commit_url(repo, sha, repo_url), target="_blank", rel="noopener",
                                className="wf-sha font-monospace", title=sha),
                         html.Span(title, className="wf-title", title=message)], className="wf-commit-col"),
                html.Td(_clean(commit.get("author")) or "", className="wf-author-col"),
                html.Td(ago(commit.get("time"), now), title=utc(commit.get("time")), className="wf-time-col"),
            ]
            + [_glyph_cell(name, cells.get((commit["commitid"], name))) for name in workflows],
            className=f"wf-row commit-{state}", **{"data-sha": sha, "data-state": state},
        ))
    return html.Table([header, html.Tbody(body)], className="table table-sm commit-grid mb-0", id="commit-grid-table")


def glyph_legend() -> html.Div:
    """Glyph, colour and meaning side by side (colour alone is never the only signal)."""
    items = [html.Span([html.Span(g, className="wf-glyph glyph-" + {"?": "R"}.get(g, g)), f" {label}"],
                       className="legend-item") for g, label in GLYPHS.items() if g]
    return html.Div(items, className="glyph-legend small text-muted")


STREAM_COLUMNS = [
    {"headerName": "", "field": "conclusion", "colId": "state", "width": 56, "sortable": False,
     "cellRenderer": "RunGlyph", "tooltipValueGetter": {"function": "wfStateText(params.data)"}},
    {"headerName": "Workflow", "field": "workflow", "flex": 1, "minWidth": 90, "cellRenderer": "RunLink",
     "tooltipValueGetter": {"function": "'Open the run on GitHub'"}},
    {"headerName": "Branch", "field": "branch", "flex": 1, "minWidth": 90,
     "tooltipField": "branch"},
    {"headerName": "Commit", "field": "sha", "colId": "commit", "flex": 2.4, "minWidth": 180,
     "valueGetter": {"function": "wfCommitText(params.data)"}, "tooltipValueGetter": {"function":
                                                                                      "params.data && params.data.message"}},
    {"headerName": "Author", "field": "author", "width": 105},
    {"headerName": "Duration", "field": "runtime", "width": 100, "type": "rightAligned",
     "valueFormatter": {"function": "wfRunDuration(params.data)"}},
    {"headerName": "Queued", "field": "queuetime", "width": 85, "type": "rightAligned",
     "valueFormatter": {"function": "wfDuration(params.value)"}},
    {"headerName": "Created", "field": "createtime", "width": 105, "sort": "desc",
     "valueFormatter": {"function": "wfAgo(params.value)"},
     "tooltipValueGetter": {"function": "wfUtc(params.value)"}},
]


def stream_grid(rows: list[dict]) -> dag.AgGrid:
    """The build stream: raw run rows, formatted by column functions."""
    return dag.AgGrid(
        id="stream-grid",
        rowData=rows,
        columnDefs=STREAM_COLUMNS,
        getRowId="'' + params.data.id",  # a string: AG Grid warns on number ids (String() is not allowed here)
        defaultColDef={"resizable": True, "sortable": True},
        dashGridOptions={"rowHeight": 34, "tooltipShowDelay": 300, "animateRows": True},
        style={"height": "560px"},
        className="stream-grid",
    )
