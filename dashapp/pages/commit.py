"""A commit's page (`/commit/<sha>`, `?repo=owner/name` when the sha is in several repositories).

The path holds a full sha or a prefix of 7 or more hex digits (`store.queries.commit.find_commits`); an
unknown one draws "No such commit", an ambiguous one the commits it names.  The content (the commit, its
neighbours on the default branch, every run with every attempt and its jobs) is drawn in the layout;
`dashapp.callbacks.commit` redraws it when a `live-version` bump changed what it shows.
"""
from urllib.parse import unquote

import dash
from dash import dcc, html

from dashapp import urlstate
from dashapp.callbacks import commit as callbacks
from dashapp.commit_tables import SHA, choices
from dashapp.components import empty_state
from dashapp.shell import services
from domain.text import as_text, clip
from store.queries import commit as cq

dash.register_page(__name__, path_template="/commit/<sha>", name="Commit", title="Commit · Build Monitor")
callbacks.register_commit()

PREFIX = "/commit/"


def resolve(conn, sha, query: dict) -> dict:
    """The selection: the path's sha checked (`valid`), the commits it names in `?repo=` (or anywhere), and
    the commit (`commit`: its id) when it names exactly one."""
    args = urlstate.clean_args(query)
    given = as_text(unquote(sha)).strip() if isinstance(sha, str) else ""  # the browser's path is %-encoded
    repo = args.get("repo")
    sel = {"given": clip(given, 80), "valid": bool(SHA.fullmatch(given)), "repo": repo, "commit": None,
           "matches": [], "elsewhere": False}
    if not sel["valid"]:
        return sel
    found = cq.find_commits(conn, given, repo)
    if not found and repo:  # a stale or mistyped ?repo=: the commits of that sha elsewhere, to pick from
        found = cq.find_commits(conn, given)
        sel["elsewhere"] = bool(found)
    if len(found) == 1 and not sel["elsewhere"]:
        sel["commit"] = found[0]["id"]
    sel["matches"] = found
    return sel


def _notice(sel: dict):
    if not sel["valid"]:
        return empty_state(f"“{sel['given']}” is not a commit sha.",
                           hint="A commit's page is /commit/ and its sha, or the sha's first 7 or more hex digits.",
                           id="cm-notice")
    if not sel["matches"]:
        where = f" in {clip(sel['repo'], 120)}" if sel["repo"] else ""
        return empty_state(f"No such commit{where}.", hint="No run of this monitor was built from a commit with "
                           "this sha (yet, or any more).", id="cm-notice")
    if sel["elsewhere"]:
        return html.Div([empty_state(f"No such commit in {clip(sel['repo'], 120)}.", id="cm-notice",
                                     className="empty-state empty-compact"), choices(sel["matches"], sel["given"])])
    if sel["commit"] is None:
        return choices(sel["matches"], sel["given"])
    return None


def layout(sha=None, **query):
    with services().engine.connect() as conn:
        sel = resolve(conn, callbacks.path_value(sha, PREFIX), query)
    commit = next((c for c in sel["matches"] if c["id"] == sel["commit"]), None)
    repo = commit["repo"] if commit else sel["repo"]
    heading = (commit or {}).get("sha") or sel["given"]
    body = [
        dcc.Store(id="cm-selection", data={"commit": sel["commit"]}),
        html.Div(dcc.Link("← Waterfall", href=urlstate.href("/", repo=repo), id="cm-back"), className="small mb-1"),
        html.H1(["Commit ", html.Small(heading[:12], title=heading, className="text-muted fs-6 font-monospace",
                                       id="cm-heading-sha")], className="h4 mb-2"),
    ]
    notice = _notice(sel)
    if notice is not None:
        return html.Div(body + [notice], id="commit-page")
    content, digest = callbacks.commit_content(sel["commit"])
    return html.Div(body + [dcc.Store(id="cm-drawn", data=digest),
                            html.Div(content or callbacks.GONE, id="cm-content")], id="commit-page")
