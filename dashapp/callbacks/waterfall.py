"""The Waterfall view's callbacks: selection in, query, frame, figure or table out.

`register()` is called by the page module, which Dash executes once per app,
so each app (and each test's app) gets its own set.
"""
import time

from dash import Input, Output, State, callback, dcc, html, no_update

from dashapp import grid_jobs, inputs, urlstate, views_menu
from dashapp.inputs import checker
from dashapp.components import download_csv_link, empty_state, format_duration, format_rate, metric_cards_row
from dashapp.figures import performance_figure
from dashapp.shell import services, with_args
from dashapp.tables import commit_grid_table, failed_run_ids
from dashapp.rawhtml import compact
from store import savedviews
from store.queries import failures as failure_queries
from store.queries import kpis
from store.queries import selection as names
from store.queries import waterfall as q
from store.queries.waterfall_jobs import job_groups
from store.queries.cards import metric_cards
from store.queries.filters import Filters


def resolve_selection(conn, query: dict) -> dict:
    """The selection the URL asks for, with defaults filled in from the store."""
    args = urlstate.clean_args(query)  # junk values fall back to the defaults
    known = names.repo_names(conn)
    asked = args.get("repo")
    pins = views_menu.pins_of(conn)
    repo = asked or views_menu.default_repo(conn, pins, known)
    window = urlstate.window(args.get("window"))
    selection = {"repo": repo, "all": not asked, "known": bool(repo) and repo in known, "empty": not known,
                 "pinned": bool(repo) and repo in pins["repos"],
                 "branch": args.get("branch"), "workflow": args.get("workflow"), "window": window,
                 "offset": urlstate.offset(args.get("offset")), "branches": [], "workflows": []}
    if selection["known"]:
        selection["branch"] = selection["branch"] or names.default_branch(conn, repo)
        selection["branches"] = names.branch_names(conn, repo)
        selection["workflows"] = savedviews.pinned_first(names.workflow_names(conn, repo),
                                                          pins["workflows"].get(repo, ()))
    for key, options in (("branch", "branches"), ("workflow", "workflows")):
        if selection[key] and selection[key] not in selection[options]:
            selection[options] = [selection[key]] + selection[options]
    # Every value of a repeated `expand=` (clean_args keeps one value a key), each comma-joined.
    selection["expand"] = grid_jobs.expanded_names((query or {}).get("expand"), selection["workflows"])
    return selection


def selection_filters(sel: dict, *, now: float | None = None) -> Filters:
    """The `Filters` of the cards and the chart: repository, branch, workflow, time window."""
    seconds = urlstate.window_seconds(sel.get("window"))
    now = time.time() if now is None else now
    return Filters(repo=sel.get("repo"), branch=sel.get("branch"), workflow=sel.get("workflow"),
                   since=None if seconds is None else now - seconds)


def cards_section(sel: dict):
    if sel.get("empty") or not sel.get("known"):
        return metric_cards_row({})
    svc = services()
    with svc.engine.connect() as conn:
        cards = metric_cards(conn, selection_filters(sel), stale_hours=svc.config.stale_hours)
    return metric_cards_row(cards)


def kpi_section(sel: dict, *, now: float | None = None):
    """The trunk health strip (`store.queries.kpis.trunk_health`): the selected repository's default
    branch in the selected window (and workflow), whatever branch the grid shows."""
    if sel.get("empty") or not sel.get("known"):
        return None
    seconds = urlstate.window_seconds(sel.get("window"))
    longest = seconds is None or seconds > KPI_DAYS * 86400
    now = time.time() if now is None else now
    with services().engine.connect() as conn:
        k = kpis.trunk_health(conn, sel["repo"], since=now - (KPI_DAYS * 86400 if longest else seconds),
                              workflow=sel.get("workflow"), now=now)
    if not k["branch"]:
        return None
    label = (f"last {KPI_DAYS} days (the longest it reads)" if longest else
             next((lbl for value, lbl, _s in urlstate.WINDOWS if value == sel.get("window")), ""))
    scope = [html.Span("Trunk health", className="kpi-heading"),
             html.Span(f"{k['branch']} · {label.lower()}" + (f" · {sel['workflow']}" if sel.get("workflow") else ""),
                       className="kpi-scope")]
    red = f"{k['red']} of {k['settled']} settled commits"
    split = None
    if k["verdicts"] and k["flaky"] is not None:
        of = f"of the newest {k['judged']} red: " if k["judged"] < k["red"] else ""
        split = f"{of}{k['broken']} broken, {k['flaky']} flaky"
    items = [
        _kpi("Commits red", format_rate(k["red_share"]), [red, split], "kpi-red",
             "Red commits (any workflow X or T) ÷ settled commits (not pending) whose first run was created in "
             "the window; flaky: every failed job of every red workflow has the verdict FLAKY, else broken."),
        _kpi("Time to red signal", f"p50 {format_duration(k['signal_p50'])}",
             [f"p90 {format_duration(k['signal_p90'])}", f"{k['signals']} red commits"], "kpi-signal",
             "From a commit's first run on the branch being created to its first failed run's attempt completing."),
        _kpi("Time to recovery", f"p50 {format_duration(k['recovery_p50'])}",
             [f"{k['recoveries']} break{'s' if k['recoveries'] != 1 else ''} fixed",
              f"{k['open_breaks']} still red" if k["open_breaks"] else None], "kpi-recovery",
             f"A break: {kpis.BREAK_COMMITS} or more red commits of a workflow in a row; from its first red run "
             f"completing to the next green run of that workflow completing (green runs created in the window)."),
    ]
    return html.Div([html.Div(scope, className="kpi-title"), *items], className="kpi-strip", id="wf-kpi-strip")


def _kpi(title: str, value: str, details: list, kpi_id: str, meaning: str):
    return html.Div([html.Div(title, className="kpi-name"), html.Div(value, className="kpi-value"),
                     html.Div(" · ".join(d for d in details if d), className="kpi-detail")],
                    className="kpi", id=kpi_id, title=meaning)


# The trunk health strip reads every run of the default branch's commits in its window, ~1 s for all time at
# 1M runs (100k runs on one branch) and ~0.3 s for 90 days: a longer window shows the last 90 days, and says so.
KPI_DAYS = 90


def cell_failures(conn, grid: dict) -> dict:
    """The failed jobs (and failure lines) of the page's failed cells' runs, for their hovers: one query for
    the page, none when no cell failed."""
    runs = failed_run_ids(grid["cells"])
    return failure_queries.run_failures(conn, runs) if runs else {}


def grid_section(sel: dict, search: str | None):
    if sel.get("empty"):
        return empty_state("No commits yet.", id="wf-grid-empty")
    if not sel.get("known"):
        return empty_state(f"No commits: unknown repository “{sel.get('repo')}”.", id="wf-grid-empty")
    if not sel.get("branch"):
        return empty_state(f"No branch of {sel['repo']} has runs yet.", id="wf-grid-empty")
    with services().engine.connect() as conn:
        grid = q.grid_records(conn, sel["repo"], sel["branch"], workflow=sel.get("workflow"),
                              offset=sel.get("offset", 0))
        grid["workflows"] = savedviews.pinned_first(grid["workflows"],
                                                    views_menu.pins_of(conn)["workflows"].get(sel["repo"], ()))
        failures = cell_failures(conn, grid)
        expanded = [name for name in sel.get("expand") or [] if name in grid["workflows"]]
        jobs = job_groups(conn, grid["cells"], expanded) if expanded else {}
    pager = _pager(grid, search)
    if not grid["commits"]:
        what = f" of workflow “{sel['workflow']}”" if sel.get("workflow") else ""
        older = " on this page (try Newer)" if grid["offset"] else ""
        return [empty_state(f"No runs{what} on branch “{sel['branch']}”{older}.", id="wf-grid-empty"), pager]
    open_now = [name for name in sel.get("expand") or []]
    toggles = {name: grid_jobs.toggle_href(search, open_now, name) for name in grid["workflows"]}
    table = commit_grid_table(grid, sel["repo"], failures=failures,
                              no_token=not services().config.github_token, toggles=toggles, jobs=jobs)
    return [html.Div(table, className="table-responsive"), pager]


def _pager(grid: dict, search: str | None):
    offset, shown = grid["offset"], len(grid["commits"])
    newer = max(offset - q.PAGE_SIZE, 0)
    first, last = offset + 1, offset + shown
    span = f"Commits {first}–{last}" if shown else "No commits"
    return html.Div([
        dcc.Link("← Newer", href=f"/{with_args(search, offset=newer or None)}", id="wf-newer",
                 className=f"btn btn-sm btn-outline-secondary {'disabled' if not offset else ''}"),
        html.Span(span, className="small text-muted mx-2", id="wf-page-span"),
        dcc.Link("Older →", href=f"/{with_args(search, offset=offset + q.PAGE_SIZE)}", id="wf-older",
                 className=f"btn btn-sm btn-outline-secondary {'' if grid['has_older'] else 'disabled'}"),
        html.Span("Newest commits of the branch, 50 a page; not limited by the time window.",
                  className="small text-muted ms-auto"),
    ], className="d-flex align-items-center p-2 border-top wf-pager")


def chart_section(sel: dict, theme: str | None):
    if sel.get("empty") or not sel.get("known"):
        return empty_state("No build times to chart.", id="wf-chart-empty")
    seconds = urlstate.window_seconds(sel.get("window"))
    hourly = seconds is not None and seconds <= 86400
    with services().engine.connect() as conn:
        series = q.performance_records(conn, selection_filters(sel), 3600 if hourly else 86400)
    if not series:
        return empty_state("No runs in this time window.", hint="Widen the window or pick another branch.",
                           id="wf-chart-empty")
    figure = performance_figure(series, dark=theme == "dark", per="hour" if hourly else "day")
    return dcc.Graph(figure=figure, id="wf-chart-graph", config={"displaylogo": False, "responsive": True})


def stream_section(sel: dict):
    repo = None if sel.get("all") or sel.get("empty") else sel.get("repo")
    with services().engine.connect() as conn:
        rows = q.stream_rows(conn, repo=repo, workflow=sel.get("workflow"))
    scope = f"latest {len(rows)} runs, all branches of {repo}" if repo else f"latest {len(rows)} runs, all repositories"
    empty = empty_state("No runs yet.", className="empty-state empty-compact") if not rows else None
    return rows, scope, empty


# `wf-selection` as `resolve_selection` writes it; a callback given anything else answers 400.
SELECTION = {
    "repo": inputs.text, "all": inputs.flag(), "known": inputs.flag(), "empty": inputs.flag(), "pinned": inputs.flag(),
    "branch": inputs.text, "workflow": inputs.text,
    "window": checker(inputs.choice, options=urlstate.WINDOW_VALUES, default=urlstate.DEFAULT_WINDOW),
    "offset": checker(inputs.integer, hi=urlstate.MAX_OFFSET, default=0),
    "branches": inputs.texts, "workflows": inputs.texts,
    "expand": checker(inputs.texts, max_items=grid_jobs.MAX_EXPANDED),
}


def selection(value) -> dict:
    return inputs.record(value, "wf-selection", SELECTION)


def register() -> None:
    @callback(Output("wf-cards", "children"), Input("wf-selection", "data"), Input("live-version", "data"))
    def _cards(sel, _version):
        return compact(cards_section(selection(sel)))

    @callback(Output("wf-kpis", "children"), Input("wf-selection", "data"), Input("live-version", "data"))
    def _kpis(sel, _version):
        return compact(kpi_section(selection(sel)))

    # Not at start: the page's layout draws the grid (see dashapp.pages.waterfall); live updates redraw it.
    @callback(Output("wf-grid", "children"), Input("wf-selection", "data"), Input("live-version", "data"),
              State("url", "search"), prevent_initial_call=True)
    def _grid(sel, _version, search):
        return grid_section(selection(sel), inputs.search(search, "url.search"))

    @callback(Output("wf-chart", "children"), Input("wf-selection", "data"), Input("theme", "data"))
    def _chart(sel, theme):
        return chart_section(selection(sel), inputs.choice(theme, "theme", ("light", "dark"), default="light"))

    @callback(Output("stream-grid", "rowData"), Output("wf-stream-scope", "children"),
              Output("wf-stream-empty", "children"),
              Input("wf-selection", "data"), Input("live-version", "data"))
    def _stream(sel, _version):
        return stream_section(selection(sel))

    @callback(Output("wf-csv", "children"), Input("wf-selection", "data"))
    def _csv(sel):
        sel = selection(sel)
        args = {k: sel.get(k) for k in ("branch", "workflow", "window")}
        if not sel.get("all"):
            args["repo"] = sel.get("repo")
        return download_csv_link({k: v for k, v in args.items() if v})

    @callback(Output("url", "search", allow_duplicate=True),
              Input("wf-branch", "value"), Input("wf-workflow", "value"), Input("wf-window", "value"),
              State("wf-selection", "data"), State("url", "search"), prevent_initial_call=True)
    def _filters_to_url(branch, workflow, window, sel, search):
        # A branch or workflow choice is within one repository: pin it in the URL.
        branch, workflow = inputs.text(branch, "wf-branch.value"), inputs.text(workflow, "wf-workflow.value")
        window = inputs.choice(window, "wf-window.value", urlstate.WINDOW_VALUES)
        sel, search = selection(sel), inputs.search(search, "url.search")
        if (branch, workflow, window) == (sel.get("branch"), sel.get("workflow"), sel.get("window")):
            return no_update
        pin = sel.get("repo") if sel.get("known") and (branch, workflow) != (sel.get("branch"), sel.get("workflow")) \
            else None
        changes = {"branch": branch, "workflow": workflow, "window": window, "offset": None}
        if pin:
            changes["repo"] = pin
        new = with_args(search, **changes)
        return new if new != (search or "") else no_update
