"""The Runners view (`/runners`): where jobs wait for runners, when, and where the minutes go.

Everything it shows is read from the URL (`?repo=&branch=&workflow=&window=`): `layout` resolves the
selection once into `rn-selection`; the callbacks in `dashapp.callbacks.runners` fill the sections from it.
No `repo=` means every repository; no `branch=` every branch.  Definitions: metrics.md "Runners and cost",
`store.queries.runners` and `domain.billing`.
"""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp import urlstate
from dashapp.callbacks import runners as callbacks
from dashapp.components import empty_state, filter_bar
from dashapp.shell import services
from domain.text import clip
from store.queries import selection as names

dash.register_page(__name__, path="/runners", name="Runners", title="Runners · Build Monitor", order=4)
callbacks.register()

ALL = callbacks.ALL


def resolve(conn, query: dict) -> dict:
    """The selection the URL asks for, checked against the store."""
    args = urlstate.clean_args(query)  # junk values fall back to the defaults
    known = names.repo_names(conn)
    repo = args.get("repo")
    sel = {"repo": repo, "known": repo is None or repo in known, "empty": not known,
           "branch": args.get("branch"), "workflow": args.get("workflow"),
           "window": urlstate.window(args.get("window"))}
    branches = names.branch_names(conn, repo) if repo and sel["known"] else []
    workflows = names.workflow_names(conn, repo) if sel["known"] and not sel["empty"] else []
    for key, options in (("branch", branches), ("workflow", workflows)):
        if sel[key] and sel[key] not in options:
            options.insert(0, sel[key])
    sel["branches"], sel["workflows"] = branches, workflows
    return sel


def _notice(sel: dict):
    if sel["empty"]:
        return empty_state("No builds yet.", hint="Point a GitHub webhook (workflow_job events) at POST /webhook or "
                           "run init_db.py; runner queues and minutes appear here as jobs arrive.", id="rn-notice",
                           className="empty-state mb-3")
    if not sel["known"]:
        return empty_state(f"Unknown repository “{sel['repo']}”.", hint="Pick one from the repository selector.",
                           id="rn-notice", className="empty-state mb-3")
    return html.Div(id="rn-notice")


def _section(title: str, body, *, hint: str = "", section_id: str, extra=None) -> dbc.Card:
    header = dbc.CardHeader(html.Div([html.H2(title, className="h6 mb-0 me-2"),
                                      html.Span(hint, className="small text-muted me-auto"), *(extra or [])],
                                     className="d-flex align-items-baseline flex-wrap gap-1"))
    return dbc.Card([header, dbc.CardBody(body, className="p-0 section-body")], className="mb-3 section",
                    id=section_id)


def _filters(sel: dict):
    bar = filter_bar("rn", branches=sel["branches"], workflows=sel["workflows"], branch=sel["branch"] or ALL,
                     workflow=sel["workflow"], window=sel["window"])
    # Every branch unless one is picked: offer "All branches" first.
    branch_dropdown = bar.children[0].children[1]
    branch_dropdown.options = [{"label": "All branches", "value": ALL}] + list(branch_dropdown.options)
    branch_dropdown.placeholder = "All branches"
    return bar


def layout(**query):
    with services().engine.connect() as conn:
        sel = resolve(conn, query)
    scope = " · ".join(clip(x, 120) for x in (sel["repo"] or "All repositories", sel["branch"]) if x)
    loading = {"type": "dot", "delay_show": 400}
    return html.Div([
        dcc.Store(id="rn-selection", data=sel),
        html.H1(["Runners and cost ", html.Small(scope, className="text-muted fs-6", id="rn-heading-scope")],
                className="h4 mb-2"),
        _notice(sel),
        _filters(sel),
        _section("Queue time by runner labels", dcc.Loading(html.Div(id="rn-labels"), **loading),
                 hint="started_at − created_at of the selected runs' jobs, by their sorted runs-on labels; "
                      "chart: p90 per label set over time", section_id="rn-labels-section"),
        dbc.Row([
            dbc.Col(_section("Waiting for a runner now", html.Div(id="rn-waiting"),
                             hint="queued jobs of active runs, whatever the window",
                             extra=[html.Span(id="rn-waiting-oldest", className="small fw-semibold")],
                             section_id="rn-waiting-section"), xl=6),
            dbc.Col(_section("Queue time by runner group", dcc.Loading(html.Div(id="rn-groups"), **loading),
                             hint="GitHub's runner group of each job", section_id="rn-groups-section"), xl=6),
        ], className="g-3"),
        _section("Busiest hours", dcc.Loading(html.Div(id="rn-hours"), **loading),
                 hint="jobs started per weekday and hour, UTC", section_id="rn-hours-section"),
        _section("Billable minutes", dcc.Loading(html.Div(id="rn-billing"), **loading),
                 hint="each job's duration rounded up to the minute, × its runner OS multiplier; self-hosted "
                      "runners counted apart, not billed; a hosted job of unknown OS is billed at the unknown "
                      "multiplier (1 by default)", section_id="rn-billing-section"),
    ], id="runners-page")
