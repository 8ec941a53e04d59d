"""Tables built from query frames: the commit grid (HTML) and the build stream's columns (AG Grid); and the
site's commit and pull-request pages' hrefs, which every table's shas and numbers link to.

The commit grid is a plain HTML table (one escaped string): every cell is a link to the run on
GitHub with its glyph, a colour class and a hover title; each commit's sha links to its page here.  The build
stream's rows stay raw `RUN_COLUMNS` dicts; every format is a JS function
in `assets/dashAgGridFunctions.js`, so rows pushed live look the same.
"""
import re
import time
from urllib.parse import quote

import dash_ag_grid as dag
from dash import dcc, html

from dashapp import urlstate
from dashapp.components import format_duration
from dashapp.rawhtml import RawHtml
from domain.text import as_text, clip, html_text, is_relative_link, link_url, one_line
from store.queries.waterfall import GLYPHS


ROW_LABELS = {"red": "red", "flaky": "flaky", "pending": "pending", "green": "green"}
SHA = re.compile(r"[0-9A-Za-z]{1,64}")  # what a commit page's path may hold: a sha or its prefix (hex, or a test's)


def commit_href(repo, sha) -> str | None:
    """This site's page of a commit (`/commit/<sha>?repo=owner/name`); None when `sha` is not 1 to 64 letters
    and digits (nothing else may go into the path).  `repo` rides along so a sha in two repositories (a fork)
    opens the right one; without it the page searches every repository.  `wfCommitHref`
    (`assets/dashAgGridFunctions.js`) writes the same href for the grids' rows."""
    if not isinstance(sha, str) or not SHA.fullmatch(sha):
        return None
    return urlstate.href(f"/commit/{quote(sha, safe='')}", repo=repo if isinstance(repo, str) else None)


def pull_href(repo, number) -> str | None:
    """This site's page of a pull request (`/pull/<n>?repo=owner/name`); None unless `number` is a positive int."""
    if isinstance(number, bool) or not isinstance(number, int) or not 0 < number < 2 ** 31:
        return None
    return urlstate.href(f"/pull/{number}", repo=repo if isinstance(repo, str) else None)


def short_sha_link(repo, sha, **kwargs):
    """The first 7 characters of `sha` linking to its commit page (text alone when it cannot be linked); the whole
    sha is the hover unless `title` says otherwise."""
    text = as_text(sha).strip()
    href = commit_href(repo, text)
    kwargs.setdefault("className", "font-monospace")
    kwargs.setdefault("title", text)
    return dcc.Link(text[:7], href=href, **kwargs) if href else html.Span(text[:7], **kwargs)


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


HOVER_JOBS = 3  # failed jobs named in a cell's hover
HOVER_LINE = 160  # characters of a failure line in a hover (the whole line is on the run's page)
HOVER_NAME = 60  # characters of a job name in a hover
VERDICT_WORDS = {"NEW": "new", "BROKEN TRUNK": "broken trunk", "FLAKY": "flaky", "INFRA": "infra",
                 "KNOWN": "known"}
FAILED_GLYPHS = frozenset({"X", "T"})  # cells whose run's failed jobs the hover names
TOKEN_NOTICE = "Failure lines need a GitHub token (set GITHUB_TOKEN)."


def failure_hover_lines(jobs, *, shown: int = HOVER_JOBS, width: int = HOVER_LINE) -> list[str]:
    """The hover lines naming a failed run's jobs (`store.queries.failures.run_failures` dicts), jobs with a
    failure line first: "test (ubuntu) — FAILED tests/test_api.py::test_export - AssertionError (new)".

    A job whose line is not captured yet (no token, still queued, no log) is named alone; more than
    `shown` jobs end with "+N more failed jobs".  Plain text: the caller escapes it.
    """
    jobs = sorted(jobs or [], key=lambda job: not job.get("lines"))  # stable: the query's order within each
    out = []
    for job in jobs[:shown]:
        name = clip(one_line(job.get("name")) or "(unnamed job)", HOVER_NAME)
        lines = job.get("lines") or []
        if not lines:
            out.append(f"{name} — {_clean(job.get('conclusion')) or 'failed'}")
            continue
        primary = min(lines, key=lambda line: line.get("ordinal") or 0)
        verdict = VERDICT_WORDS.get((job.get("verdict") or {}).get("kind"))
        out.append(f"{name} — {clip(one_line(primary.get('text')), width)}" + (f" ({verdict})" if verdict else ""))
    if len(jobs) > shown:
        more = len(jobs) - shown
        out.append(f"+{more} more failed job{'s' if more != 1 else ''}")
    return out


def cell_title(workflow: str, cell: dict, jobs=None, *, no_token: bool = False) -> str:
    """The hover text of a grid cell: state, attempts, duration, queue time; then, for a failed cell, one line
    per failed job with its failure line (`failure_hover_lines` of `jobs`), and when a line is missing and
    the server has no GitHub token (`no_token`), that lines need one."""
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
    title = " · ".join(parts)
    if jobs:  # a line break in a title attribute is a line of its tooltip
        lines = failure_hover_lines(jobs)
        if no_token and not all(job.get("lines") for job in jobs):
            lines.append(TOKEN_NOTICE)
        title = "\n".join([title, *lines])
    return title


def failed_run_ids(cells) -> list[int]:
    """The run ids (GitHub's) of the failed cells of a grid page: whose failed jobs the hovers name."""
    return sorted({int(c["gitid"]) for c in _records(cells)
                   if c.get("glyph") in FAILED_GLYPHS and _clean(c.get("gitid")) is not None})


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


def _page_link(text: str, href, **attrs) -> str:
    """A link to a page of this site (`href` as `commit_href` makes it: a path, or None for text only), followed
    in place as a dcc.Link is (`data-dash-link`, `assets/rawhtml.js`)."""
    if is_relative_link(href):
        return f'<a{_attrs(href=href, data_dash_link="1", **attrs)}>{_esc(text)}</a>'
    return f"<span{_attrs(**attrs)}>{_esc(text)}</span>"


def _glyph_cell(workflow: str, cell: dict | None, _esc_workflow: str | None = None,
                failures: dict | None = None, no_token: bool = False) -> str:
    esc_workflow = _esc(workflow) if _esc_workflow is None else _esc_workflow
    if cell is None:
        return (f'<td class="wf-cell wf-none" title="{esc_workflow}: not run" data-workflow="{esc_workflow}">'
                f'</td>')
    glyph = cell["glyph"] or ""
    jobs = failures.get(cell.get("gitid")) if failures and glyph in FAILED_GLYPHS else None
    label = _esc(cell_title(workflow, cell, jobs, no_token=no_token))
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


def commit_grid_table(grid: dict, repo: str, *, now: float | None = None, failures: dict | None = None,
                      no_token: bool = False, toggles: dict | None = None, jobs: dict | None = None):
    """The HUD table: one row per commit, one glyph column per workflow.

    `failures` (`store.queries.failures.run_failures` of `failed_run_ids`: run id -> failed jobs) adds
    each failed cell's failing jobs and failure lines to its hover; `no_token`: the server has no GitHub
    token, and a hover missing a line says that lines need one.  `toggles` ({workflow: href}) makes each
    workflow's header a link that expands or collapses it; `jobs` (`store.queries.waterfall_jobs.job_groups`
    of the expanded workflows) draws their job columns after them (`dashapp.grid_jobs`).

    Built as one escaped HTML string in a single component: as ~1,000 Dash
    components (50 rows × cells × links) the page's renderer blocked the
    browser for seconds.  Every text and attribute goes through `_esc`.
    """
    from dashapp import grid_jobs  # it draws with this module's helpers

    workflows = grid["workflows"]
    escaped = [(name, _esc(name)) for name in workflows]
    cells = {(c["commitid"], c["workflow"]): c for c in _records(grid["cells"])}
    jobs, toggles = jobs or {}, toggles or {}
    failed = grid_jobs.failed_jobs(failures) if jobs else {}
    head = ('<th class="wf-state-col"></th><th class="wf-commit-col">Commit</th>'
            '<th class="wf-author-col">Author</th><th class="wf-time-col">Time</th>'
            + "".join(grid_jobs.header(name, toggles.get(name), name in jobs)
                      + (grid_jobs.job_headers(name, jobs[name]) if name in jobs else "")
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
            f'{_page_link(sha[:7], commit_href(repo, sha), class_="wf-sha font-monospace", title=sha)}'
            f'<span{_attrs(class_="wf-title", title=message)}>{_esc(title)}</span></td>'
            f'<td class="wf-author-col">{_esc(_clean(commit.get("author")) or "")}</td>'
            f'<td{_attrs(class_="wf-time-col", title=utc(commit.get("time")))}>{_esc(ago(commit.get("time"), now))}'
            f'</td>'
            + "".join(_glyph_cell(name, cells.get((commit["commitid"], name)), esc, failures, no_token)
                      + (grid_jobs.job_cells(name, jobs[name]["groups"], jobs[name]["cells"], commit["commitid"],
                                             failed, no_token=no_token) if name in jobs else "")
                      for name, esc in escaped)
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
     "cellRenderer": "CommitLink", "valueGetter": {"function": "wfCommitText(params.data)"},
     "tooltipValueGetter": {"function": "params.data && params.data.message"}},
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


# --- the Developer view: whose each of a person's failures is ---------------------------------

FAILURES_SHOWN = 50  # rows drawn; the summary counts every failure the query gave
LINE_SHOWN = 200  # characters of a failure line drawn in the table (the whole line is its title)
# whose -> (badge text, Bootstrap colour classes, what the badge says on hover, evidence link's text)
WHOSE = {
    "yours": ("yours", "text-bg-danger", "new on this branch: the failure line was not seen in the 21 days "
              "before this run", None),
    "trunk": ("trunk's", "text-bg-warning", "already failing on the default branch", "trunk run ↗"),
    "flaky": ("flaky", "text-bg-info", "the same job passed on a re-run or on the neighbouring commits",
              "passing run ↗"),
    "infra": ("infra", "text-bg-secondary", "an infrastructure failure (runner, network, registry)", None),
    "known": ("known", "bg-secondary-subtle text-secondary-emphasis border border-secondary-subtle",
              "seen before, in the 21 days before this run", "seen before ↗"),
    "unknown": ("no line yet", "bg-body-tertiary text-body-secondary border", "its failure line is not captured yet",
                None),
}


def _is(n: int, one: str = "is", many: str = "are") -> str:
    return one if n == 1 else many


def failures_summary(rows, *, capped: bool = False) -> str:
    """One sentence over a person's failures (`person_failures` dicts): "3 of your 5 failures are yours to fix;
    1 is broken on main; 1 is flaky"; `capped`: the query stopped at its limit (only the newest were read)."""
    rows = list(rows)
    if not rows:
        return "No failed jobs in this window."
    count = {kind: sum(1 for r in rows if r.get("whose") == kind) for kind in WHOSE}
    total = len(rows)
    your = "your newest" if capped else "your"
    if count["unknown"] == total:  # "0 of your 26 are yours to fix" would claim what no line says
        if total == 1:
            return "Your failure has no failure line yet: whose it is is not known."
        return f"None of {your} {total} failures has a failure line yet: whose they are is not known."
    parts = [f"{count['yours']} of {your} {total} failure{'s' if total != 1 else ''} {_is(count['yours'])} "
             f"yours to fix"]
    if count["trunk"]:
        trunks = {(e.get("branch") or "") for r in rows if r.get("whose") == "trunk"
                  for e in ((r.get("verdict") or {}).get("evidence") or [])[:1]} - {""}
        where = as_text(next(iter(trunks))) if len(trunks) == 1 else "the default branch"
        parts.append(f"{count['trunk']} {_is(count['trunk'])} broken on {clip(where, 60)}")
    if count["flaky"]:
        parts.append(f"{count['flaky']} {_is(count['flaky'])} flaky")
    if count["infra"]:
        parts.append(f"{count['infra']} {_is(count['infra'])} infrastructure")
    if count["known"]:
        parts.append(f"{count['known']} {_is(count['known'], 'was', 'were')} seen before")
    if count["unknown"]:
        parts.append(f"{count['unknown']} {_is(count['unknown'], 'has', 'have')} no failure line yet")
    return "; ".join(parts) + "."


def _html_link(text, url, **kwargs):
    """`text` linking to `url` in a new tab when that is an http(s) URL, else text alone (a Dash component:
    React escapes the text)."""
    url = link_url(url)
    return html.A(text, href=url, target="_blank", rel="noopener", **kwargs) if url else html.Span(text, **kwargs)


def _whose_cell(row: dict):
    whose = row.get("whose") if row.get("whose") in WHOSE else "unknown"
    label, colours, meaning, evidence_text = WHOSE[whose]
    verdict = row.get("verdict") or {}
    reason = as_text(verdict.get("reason")) or meaning
    cell = [html.Span(label, className=f"badge {colours} whose-badge whose-{whose}", title=reason)]
    evidence = (verdict.get("evidence") or [None])[0]
    if evidence_text and evidence and link_url(evidence.get("url")):
        branch = as_text(evidence.get("branch"))
        cell.append(_html_link(evidence_text, evidence.get("url"), className="small ms-2 whose-evidence",
                               title=f"{branch} · {as_text(evidence.get('sha'))[:7]} · "
                                     f"{as_text(evidence.get('conclusion'))} · {utc(evidence.get('createtime'))}"))
    return cell


def _line_cell(row: dict, token: bool, line_href=None):
    text = one_line(row.get("text"))
    if text:
        shown = html.Code(clip(text, LINE_SHOWN), className="dev-failure-line", title=text)
        href = line_href(row.get("fingerprint")) if line_href else None
        # Body-coloured, underlined on hover: a column of underlined links read as noise.
        return dcc.Link(shown, href=href, title="every occurrence of this failure line",
                        className="dev-failure-group link-body-emphasis link-underline-opacity-0 "
                                  "link-underline-opacity-75-hover") if href else shown
    missing = "needs a GitHub token" if not token else "not captured yet"
    return html.Span(missing, className="text-muted small dev-failure-missing")


def person_failures_table(rows, *, now: float, token: bool, shown: int = FAILURES_SHOWN, capped: bool = False,
                          line_href=None) -> html.Div:
    """A person's failed jobs, newest first: time, repository, workflow (the run), job, branch, failure line
    and whose it is (a badge, with a link to the run that shows it for trunk's, flaky and known ones).

    `line_href(fingerprint)` is the page of a failure line's group (this site's path, or None: no link);
    `capped`: `rows` are the newest the query allowed, not all (the summary says so)."""
    rows = list(rows)
    head = html.Thead(html.Tr([html.Th(h) for h in ("When", "Repository", "Workflow", "Job", "Branch",
                                                   "Failure line", "Whose")]), className="sticky-top")
    body = []
    for r in rows[:shown]:
        workflow, job, repo, branch = (as_text(r.get(k)) for k in ("workflow", "job_name", "repo", "branch"))
        body.append(html.Tr([
            html.Td(ago(r.get("createtime"), now), title=utc(r.get("createtime")), className="text-nowrap"),
            html.Td(clip(repo, 60), title=repo),
            html.Td(_html_link(clip(workflow, 60), r.get("run_url"), title=workflow)),
            html.Td(_html_link(clip(job, 60), r.get("job_url"), title=job)),
            html.Td(clip(branch, 60), title=branch),
            html.Td(_line_cell(r, token, line_href), className="dev-failure-line-cell"),
            html.Td(_whose_cell(r), className="text-nowrap"),
        ], className="dev-failure-row", **{"data-whose": r.get("whose") or "unknown"}))
    children = [html.Div(failures_summary(rows, capped=capped), className="p-2 dev-failures-summary",
                         id="dev-failures-summary"),
                # At most ~12 rows high, the header kept in view: the unfixed failures and history follow.
                html.Div(html.Table([head, html.Tbody(body)], className="table table-sm align-middle mb-0",
                                    id="dev-failures-table"), className="table-responsive",
                         style={"maxHeight": "34rem", "overflowY": "auto"})]
    if len(rows) > shown:
        children.append(html.Div(f"… and {len(rows) - shown:,} older failed jobs, not listed.",
                                 className="p-2 small text-muted dev-failures-more"))
    return html.Div(children)


def capture_notice(status: dict, rows) -> html.Div | None:
    """What the failure lines are waiting for, when some are missing (`capture_status`): a GitHub token, GitHub's
    rate limit, or the fetcher's queue.  None when nothing is missing."""
    rows = list(rows)
    missing = any(not r.get("text") for r in rows)
    if not status.get("token"):
        if missing or not rows:
            return html.Div(TOKEN_NOTICE, className="alert alert-secondary small py-1 px-2 m-2",
                            id="dev-failures-token")
        return None
    if not missing:
        return None
    if status.get("paused_until"):
        reason = as_text(status.get("last_error")) or f"rate limited by GitHub until {utc(status['paused_until'])}"
        text = f"Fetching failure lines is paused: {clip(reason, 200)}."
    elif status.get("pending"):
        text = f"Fetching failure lines: {int(status['pending']):,} failed jobs waiting."
    else:
        return None
    return html.Div(text, className="alert alert-secondary small py-1 px-2 m-2", id="dev-failures-capture")
