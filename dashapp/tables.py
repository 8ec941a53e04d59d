"""Tables built from query frames: the commit grid (HTML) and the build stream's columns (AG Grid).

The commit grid is a plain HTML table (one escaped string): every cell is a link to the run on
GitHub with its glyph, a colour class and a hover title.  The build
stream's rows stay raw `RUN_COLUMNS` dicts; every format is a JS function
in `assets/dashAgGridFunctions.js`, so rows pushed live look the same.
"""
import time
from urllib.parse import quote

import dash_ag_grid as dag
from dash import html
from dash.development.base_component import Component

from dashapp.components import format_duration
from domain.text import html_text, link_url
from store.queries.waterfall import GLYPHS



class RawHtml(Component):
    """A `<div>` holding `html` as markup (`assets/rawhtml.js`), for the app's own escaped tables.

    Unlike dcc.Markdown it needs no lazily loaded Markdown parser: the live page draws the
    commit grid as soon as its layout arrives.  Never give it text that `_esc` has not escaped.
    """
    _namespace = "buildmon_components"
    _type = "RawHtml"
    _prop_names = ["id", "html", "className"]
    _valid_wildcard_attributes = []
    available_properties = ["id", "html", "className"]
    available_wildcard_properties = []
    _base_nodes = []
    _children_props = []

    def __init__(self, html=None, id=None, className=None, **kwargs):  # noqa: A002 (Dash's prop names)
        given = {"html": html, "id": id, "className": className}
        super().__init__(**{k: v for k, v in given.items() if v is not None}, **kwargs)


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


def _esc(text) -> str:
    """Escaped, cleaned HTML text (`domain.text.html_text`) with no raw line break (a blank line would end
    Markdown's HTML block)."""
    text = html_text(text)
    if "\n" in text or "\r" in text:
        text = text.replace("\r", "&#13;").replace("\n", "&#10;")
    return text


def _attrs(**attrs) -> str:
    """HTML attributes, every value escaped (names use `_` for `-`; None leaves one out)."""
    return "".join(f' {name.rstrip("_").replace("_", "-")}="{_esc(value)}"'
                   for name, value in attrs.items() if value is not None)


def _link(text: str, url, **attrs) -> str:
    """A link that opens on GitHub; text only unless the URL is an absolute http(s) one (`link_url`)."""
    url = link_url(url)
    if url:
        return f'<a{_attrs(href=url, target="_blank", rel="noopener", **attrs)}>{_esc(text)}</a>'
    return f"<span{_attrs(**attrs)}>{_esc(text)}</span>"


def _glyph_cell(workflow: str, cell: dict | None, _esc_workflow: str | None = None) -> str:
    esc_workflow = _esc(workflow) if _esc_workflow is None else _esc_workflow
    if cell is None:
        return (f'<td class="wf-cell wf-none" title="{esc_workflow}: not run" data-workflow="{esc_workflow}">'
                f'</td>')
    glyph = cell["glyph"] or ""
    label = _esc(cell_title(workflow, cell))
    css, esc_glyph = _GLYPH_MARKUP.get(glyph) or _glyph_markup(glyph)
    url = link_url(_clean(cell.get("url")))
    if url:
        content = (f'<a href="{_esc(url)}" target="_blank" rel="noopener" class="{css}" title="{label}" '
                   f'aria-label="{label}">{esc_glyph}</a>')
    else:
        content = f'<span class="{css}" title="{label}" aria-label="{label}">{esc_glyph}</span>'
    return f'<td class="wf-cell" data-workflow="{esc_workflow}" data-glyph="{esc_glyph}">{content}</td>'


def _glyph_markup(glyph: str) -> tuple[str, str]:
    """A glyph's CSS classes and text, escaped."""
    return _esc("wf-glyph glyph-" + {"?": "R"}.get(glyph, glyph)), _esc(glyph)


_GLYPH_MARKUP = {g: _glyph_markup(g) for g in GLYPHS}


def commit_url(repo: str, sha: str, repo_url: str | None = None) -> str:
    """The commit's page: under the repository's own URL when that is an http(s) one, else on github.com
    (names and sha are data: quoted as path segments, they cannot leave the repository's page)."""
    base = (link_url(repo_url) or f"https://github.com/{quote(str(repo), safe='/')}").rstrip("/")
    return f"{base}/commit/{quote(str(sha), safe='')}"


def _records(rows) -> list[dict]:
    """Rows given as a frame or as a list of dicts."""
    return rows.to_dict("records") if hasattr(rows, "to_dict") else rows


def commit_grid_table(grid: dict, repo: str, *, now: float | None = None, repo_url: str | None = None):
    """The HUD table: one row per commit, one glyph column per workflow.

    Built as one escaped HTML string in a single component: as ~1,000 Dash
    components (50 rows × cells × links) the page's renderer blocked the
    browser for seconds.  Every text and attribute goes through `_esc`.
    """
    workflows = grid["workflows"]
    escaped = [(name, _esc(name)) for name in workflows]
    cells = {(c["commitid"], c["workflow"]): c for c in _records(grid["cells"])}
    head = ('<th class="wf-state-col"></th><th class="wf-commit-col">Commit</th>'
            '<th class="wf-author-col">Author</th><th class="wf-time-col">Time</th>'
            + "".join(f'<th{_attrs(title=name, class_="wf-col")}><div class="wf-col-name">{_esc(name)}</div></th>'
                      for name in workflows))
    rows = []
    for commit in _records(grid["commits"]):
        state = commit["state"]
        message = _clean(commit.get("message")) or ""
        title = message.splitlines()[0] if message else "(no message)"
        sha = commit["sha"]
        rows.append(
            f'<tr{_attrs(class_=f"wf-row commit-{state}", data_sha=sha, data_state=state)}>'
            f'<td class="wf-state-col"><span class="row-badge row-badge-{_esc(state)}">'
            f'{_esc(ROW_LABELS[state])}</span></td>'
            f'<td class="wf-commit-col">'
            f'{_link(sha[:7], commit_url(repo, sha, repo_url), class_="wf-sha font-monospace", title=sha)}'
            f'<span{_attrs(class_="wf-title", title=message)}>{_esc(title)}</span></td>'
            f'<td class="wf-author-col">{_esc(_clean(commit.get("author")) or "")}</td>'
            f'<td{_attrs(class_="wf-time-col", title=utc(commit.get("time")))}>{_esc(ago(commit.get("time"), now))}'
            f'</td>'
            + "".join(_glyph_cell(name, cells.get((commit["commitid"], name)), esc) for name, esc in escaped)
            + "</tr>")
    table = (f'<table id="commit-grid-table" class="table table-sm commit-grid mb-0"><thead><tr>{head}</tr></thead>'
             f'<tbody>{"".join(rows)}</tbody></table>')
    return RawHtml(html=table, className="commit-grid-html")


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
