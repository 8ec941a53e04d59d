"""A pull request's page (`/pull/<n>?repo=owner/name`): its runs by head commit, newest first.

Runs name their pull requests in GitHub's `workflow_run.pull_requests` (table `run_pulls`).  Without
`?repo=`, the repository is the one with runs for that number, or the reader picks among several.  The
content is drawn in the layout; `dashapp.callbacks.commit` redraws it on a `live-version` bump that
changed it.
"""
from urllib.parse import unquote

import dash
from dash import dcc, html

from dashapp import inputs, urlstate
from dashapp.callbacks import commit as callbacks
from dashapp.commit_tables import pull_href
from dashapp.components import empty_state
from dashapp.shell import services
from domain.text import as_text, clip
from store.queries import commit as cq

dash.register_page(__name__, path_template="/pull/<number>", name="Pull request",
                   title="Pull request · Build Monitor")
callbacks.register_pull()

PREFIX = "/pull/"


def resolve(conn, number, query: dict) -> dict:
    """The selection: the path's number checked (`number`, None when it is not one), the repository (`?repo=`,
    else the only one with runs for it) and the repositories to pick from (`repos`) when several have."""
    args = urlstate.clean_args(query)
    given = as_text(unquote(number)).strip().lstrip("#") if isinstance(number, str) else ""
    try:
        n = inputs.parse_int(given, "number", lo=1, hi=callbacks.MAX_PULL)
    except inputs.BadInput:
        n = None
    sel = {"given": clip(given, 40), "number": n, "repo": args.get("repo"), "repos": []}
    if n is not None and sel["repo"] is None:
        sel["repos"] = cq.pull_repos(conn, n)
        if len(sel["repos"]) == 1:
            sel["repo"] = sel["repos"][0]
    return sel


def _choices(sel: dict) -> html.Div:
    items = [html.Li(dcc.Link(clip(r, 120), href=pull_href(r, sel["number"]))) for r in sel["repos"]]
    return html.Div([html.Div(f"Several repositories have a pull request #{sel['number']}: pick one.",
                              className="fw-semibold mb-2"), html.Ul(items, className="mb-0")],
                    className="p-3", id="pl-choices")


def layout(number=None, **query):
    with services().engine.connect() as conn:
        sel = resolve(conn, callbacks.path_value(number, PREFIX), query)
    repo, n = sel["repo"], sel["number"]
    scope = clip(repo, 120) if repo else ""
    body = [
        dcc.Store(id="pl-selection", data={"repo": repo, "number": n}),
        html.Div(dcc.Link("← Waterfall", href=urlstate.href("/", repo=repo), id="pl-back"), className="small mb-1"),
        html.H1([f"Pull request #{n}" if n else "Pull request", " ",
                 html.Small(scope, className="text-muted fs-6", id="pl-heading-repo")], className="h4 mb-2"),
    ]
    if n is None:
        notice = empty_state(f"“{sel['given']}” is not a pull-request number.",
                             hint="A pull request's page is /pull/ and its number, with ?repo=owner/name.",
                             id="pl-notice")
        return html.Div(body + [notice], id="pull-page")
    if repo is None:
        notice = _choices(sel) if sel["repos"] else empty_state(
            f"No runs for pull request #{n}.", hint="Runs name their pull requests as GitHub reports them; "
            "runs stored before this monitor kept them name none.", id="pl-notice")
        return html.Div(body + [notice], id="pull-page")
    content, digest = callbacks.pull_content(repo, n)
    if content is None:
        return html.Div(body + [empty_state(f"No runs for pull request #{n} in {scope}.",
                                            hint="Runs name their pull requests as GitHub reports them; runs stored "
                                                 "before this monitor kept them name none.", id="pl-notice")],
                        id="pull-page")
    return html.Div(body + [dcc.Store(id="pl-drawn", data=digest), html.Div(content, id="pl-content")],
                    id="pull-page")
