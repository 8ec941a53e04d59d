"""The commit and pull-request pages' content, and its redraw when the store changes.

The pages draw their content in their layout (one request: the first content arrives with the page);
a `live-version` bump redraws it, only when what it shows changed (a digest of the queried data,
kept in `cm-drawn` / `pl-drawn`): an earlier attempt or a message being read stays open.
`register_commit()` and `register_pull()` are called by the page modules, once per app.
"""
import hashlib
import json
import time

from dash import Input, Output, State, callback, html
from dash.exceptions import PreventUpdate

import dash_bootstrap_components as dbc

from dashapp import inputs
from dashapp.commit_tables import commit_header, neighbours_table, pull_header, pull_table, runs_section
from dashapp.components import empty_state
from dashapp.shell import services
from dashapp.rawhtml import compact
from store.queries import commit as cq

MAX_PULL = 2 ** 31 - 1  # GitHub's pull-request numbers are 32-bit


def path_value(given, prefix: str):
    """The path's variable: Dash lets a query argument of the same name replace a path variable, so the page
    reads the path itself when it can (the routing callback's pathname)."""
    from dash import ctx

    try:
        pathname = ctx.inputs.get("_pages_location.pathname")
    except Exception:  # no callback context (a test calling `layout` directly)
        pathname = None
    if isinstance(pathname, str) and pathname.startswith(prefix):
        return pathname[len(prefix):]
    return given


def _digest(*data) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _section(title: str, hint: str, body, section_id: str) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(html.Div([html.H2(title, className="h6 mb-0 me-2"),
                                              html.Span(hint, className="small text-muted")],
                                             className="d-flex align-items-baseline flex-wrap")),
                     dbc.CardBody(body, className="p-0 section-body")], className="mb-3 section", id=section_id)


def commit_content(commit_id: int, *, now: float | None = None):
    """The commit page's content (header, runs, neighbours on the default branch) and its data's digest;
    (None, None) when the commit is gone (retention)."""
    now = time.time() if now is None else now
    with services().engine.connect() as conn:
        commit = cq.commit_by_id(conn, commit_id)
        if commit is None:
            return None, None
        runs = cq.commit_runs(conn, commit_id)
        around = cq.neighbours(conn, commit, runs)
        url = cq.repo_url(conn, commit["repo"])
    branch = around.get("branch") or "the default branch"
    content = [
        dbc.Card(commit_header(commit, runs, repo_url=url, now=now), className="mb-3 section", id="cm-header"),
        _section(f"Around it on {branch}", f"each workflow's result on the {branch} commits whose runs came just "
                 "before and just after this commit's: did it fail the same way there?",
                 neighbours_table(around, commit["repo"], now=now), "cm-neighbours"),
        html.Div([html.H2("Runs", className="h6 mb-2"),
                  runs_section(runs, repo=commit["repo"])], id="cm-runs-section"),
    ]
    return compact(content), _digest(commit, runs, around, url)


def pull_content(repo: str, number: int, *, now: float | None = None):
    """The pull-request page's content and its data's digest; (None, None) when it has no runs."""
    now = time.time() if now is None else now
    with services().engine.connect() as conn:
        commits = cq.pull_commits(conn, repo, number)
        url = cq.repo_url(conn, repo)
    if not commits:
        return None, None
    content = [
        dbc.Card(pull_header(repo, number, commits, repo_url=url), className="mb-3 section", id="pl-header"),
        _section("Head commits", "pushed last first; each workflow's latest run on the commit (hover for its failed "
                 "jobs); a commit opens its own page", pull_table(repo, commits, now=now), "pl-commits-section"),
    ]
    return compact(content), _digest(commits, url)


GONE = empty_state("This commit is no longer in the store.", id="cm-gone")
COMMIT_SELECTION = {"commit": inputs.checker(inputs.integer, hi=inputs.SQLITE_MAX)}
PULL_SELECTION = {"repo": inputs.text, "number": inputs.checker(inputs.integer, lo=1, hi=MAX_PULL)}


def register_commit() -> None:
    @callback(Output("cm-content", "children"), Output("cm-drawn", "data"), Input("live-version", "data"),
              State("cm-selection", "data"), State("cm-drawn", "data"), prevent_initial_call=True)
    def _redraw(_version, sel, drawn):
        sel = inputs.record(sel, "cm-selection", COMMIT_SELECTION)
        drawn = inputs.text(drawn, "cm-drawn.data", max_len=64)
        if sel["commit"] is None:
            raise PreventUpdate
        content, digest = commit_content(sel["commit"])
        if content is None:
            return GONE, None
        if digest == drawn:
            raise PreventUpdate  # nothing it shows changed
        return content, digest


def register_pull() -> None:
    @callback(Output("pl-content", "children"), Output("pl-drawn", "data"), Input("live-version", "data"),
              State("pl-selection", "data"), State("pl-drawn", "data"), prevent_initial_call=True)
    def _redraw(_version, sel, drawn):
        sel = inputs.record(sel, "pl-selection", PULL_SELECTION)
        drawn = inputs.text(drawn, "pl-drawn.data", max_len=64)
        if sel["repo"] is None or sel["number"] is None:
            raise PreventUpdate
        content, digest = pull_content(sel["repo"], sel["number"])
        if content is None:
            raise PreventUpdate  # its runs went (retention): what was drawn stays
        if digest == drawn:
            raise PreventUpdate
        return content, digest
