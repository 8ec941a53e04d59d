"""The Triage view (`/triage`): what is failing, since when, and what is flaky.

Everything it shows is read from the URL (`?repo=&branch=&workflow=&window=`, and `groups=all` for every
failure group instead of the newest 50):
`layout` resolves the selection once into `tr-selection`; the callbacks in
`dashapp.callbacks.triage` fill the five sections from it (and again on every
`live-version` bump).  No `repo=` means every repository; no `branch=` every branch.
"""
import dash
from dash import dcc, html

from dashapp import urlstate
from dashapp.callbacks import triage as callbacks
from dashapp.components import empty_state, section, filter_bar
from dashapp.shell import services
from domain.text import clip
from store.queries import selection as names

dash.register_page(__name__, path="/triage", name="Triage", title="Triage · Build Monitor", order=1)
callbacks.register()

ALL = callbacks.ALL


def resolve(conn, query: dict) -> dict:
    """The selection the URL asks for, checked against the store."""
    args = urlstate.clean_args(query)  # junk values fall back to the defaults
    known = names.repo_names(conn)
    repo = args.get("repo")
    window = urlstate.window(args.get("window"))
    sel = {"repo": repo, "known": repo is None or repo in known, "empty": not known,
           "branch": args.get("branch"), "workflow": args.get("workflow"), "window": window,
           "groups": "all" if args.get("groups") == "all" else None}
    branches = names.branch_names(conn, repo) if repo and sel["known"] else []
    workflows = names.workflow_names(conn, repo) if sel["known"] and not sel["empty"] else []
    for key, options in (("branch", branches), ("workflow", workflows)):
        if sel[key] and sel[key] not in options:
            options.insert(0, sel[key])
    sel["branches"], sel["workflows"] = branches, workflows
    return sel


def _notice(sel: dict):
    if sel["empty"]:
        return empty_state("No builds yet.", hint="Point a GitHub webhook at POST /webhook or run init_db.py; "
                           "failures and flaky runs appear here as they arrive.", id="tr-notice",
                           className="empty-state mb-3")
    if not sel["known"]:
        return empty_state(f"Unknown repository “{sel['repo']}”.", hint="Pick one from the repository selector.",
                           id="tr-notice", className="empty-state mb-3")
    return html.Div(id="tr-notice")




def _filters(sel: dict):
    bar = filter_bar("tr", branches=sel["branches"], workflows=sel["workflows"], branch=sel["branch"] or ALL,
                     workflow=sel["workflow"], window=sel["window"])
    # Triage looks at every branch unless one is picked: offer "All branches" first.
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
        dcc.Store(id="tr-selection", data=sel),
        html.H1(["Triage ", html.Small(scope, className="text-muted fs-6", id="tr-heading-scope")],
                className="h4 mb-2"),
        _notice(sel),
        _filters(sel),
        section("Failures by cause", dcc.Loading(html.Div(id="tr-causes"), **loading),
                 hint="failed jobs grouped by the line their log failed on; open a line for its occurrences",
                 section_id="tr-causes-section"),
        section("Broken default branches", dcc.Loading(html.Div(id="tr-broken"), **loading),
                 hint="workflows red on the newest commits of main/master, whatever the window",
                 section_id="tr-broken-section"),
        section("Failed builds by job and step", dcc.Loading(html.Div(id="tr-failures"), **loading),
                 hint="every failed run, with or without a failure line: workflow / failing job / failing step",
                 section_id="tr-failures-section"),
        section("Build analysis", dcc.Loading(html.Div(id="tr-analysis"), **loading),
                 hint="workflows × branches in the window; streak = current run of red commits",
                 section_id="tr-analysis-section"),
        section("Flaky jobs and runs", dcc.Loading(html.Div(id="tr-flaky"), **loading),
                 hint="a job failed, then passed on a re-run or nearby; a run's attempt failed, a later one passed",
                 section_id="tr-flaky-section"),
    ], id="triage-page")
