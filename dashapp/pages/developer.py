"""The Developer view (`/developer?author=login`): one person's builds.

Read from the URL (`?author=&repo=&window=`): `layout` resolves the selection
into `dev-selection`; `dashapp.callbacks.developer` fills the metric cards, their
failed jobs (each with its failure line and whose it is), the unfixed failures
and the build history (AG Grid's infinite row model: every page is sorted,
filtered and limited in SQL).
"""
import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp import urlstate
from dashapp.callbacks import developer as callbacks
from dashapp.components import empty_state, name_options, option_value
from dashapp.shell import services
from domain.text import clip
from dashapp.triage_tables import history_grid
from store.queries import developer as q
from store.queries import selection as names

dash.register_page(__name__, path="/developer", name="Developer", title="Developer · Build Monitor", order=2)
callbacks.register()


def resolve(conn, query: dict) -> dict:
    args = urlstate.clean_args(query)  # junk values fall back to the defaults
    repo, author = args.get("repo"), args.get("author")
    window = urlstate.window(args.get("window"))
    repos = names.repo_names(conn)
    known_repo = repo is None or repo in repos
    authors = names.authors(conn, repo if known_repo else None)
    return {"author": author, "repo": repo, "window": window, "empty": not repos, "known_repo": known_repo,
            "known": bool(author) and q.is_author(conn, author), "authors": authors}


def _notice(sel: dict):
    if sel["empty"]:
        return empty_state("No builds yet.", hint="Runs appear here as GitHub webhooks arrive.", id="dev-notice")
    if not sel["known_repo"]:
        return empty_state(f"Unknown repository “{sel['repo']}”.", hint="Pick one from the repository selector.",
                           id="dev-notice")
    if not sel["author"]:
        return empty_state("Pick a developer.", hint="Search by GitHub login above; the link then shows their "
                           "builds to anyone you send it to.", id="dev-notice")
    if not sel["known"]:
        return empty_state(f"Unknown author “{sel['author']}”.", hint="No run was triggered by this login and no "
                           "commit was written by it.", id="dev-notice")
    return None


def _controls(sel: dict) -> dbc.Row:
    shown = sel["authors"] if not sel["author"] or sel["author"] in sel["authors"] else [sel["author"]] + sel["authors"]
    options = name_options(shown)
    windows = [{"label": label, "value": value} for value, label, _s in urlstate.WINDOWS]
    return dbc.Row([
        dbc.Col([dbc.Label("Developer", html_for="dev-author", className="small mb-0"),
                 dcc.Dropdown(id="dev-author", options=options, value=option_value(sel["author"]), searchable=True,
                              clearable=True, placeholder="Search a GitHub login…")], md=4),
        dbc.Col([dbc.Label("Time window", html_for="dev-window", className="small mb-0"),
                 dcc.Dropdown(id="dev-window", options=windows, value=sel["window"], clearable=False)], md=2),
    ], className="filter-bar g-2 mb-3 align-items-end")


def layout(**query):
    with services().engine.connect() as conn:
        sel = resolve(conn, query)
    notice = _notice(sel)
    scope = " · ".join(clip(x, 120) for x in (sel["author"], sel["repo"] or "all repositories") if x)
    body = [
        dcc.Store(id="dev-selection", data={k: v for k, v in sel.items() if k != "authors"}),
        html.H1(["Developer ", html.Small(scope, className="text-muted fs-6", id="dev-heading-scope")],
                className="h4 mb-2"),
        _controls(sel),
    ]
    if notice is not None:
        return html.Div(body + [notice], id="developer-page")
    loading = {"type": "dot", "delay_show": 400}
    return html.Div(body + [
        dcc.Loading(html.Div(id="dev-cards"), **loading),
        dbc.Card([dbc.CardHeader(html.Div([
            html.H2("Your failures", className="h6 mb-0 me-2"),
            html.Span("failed jobs in the window, and whose each is: yours (new on your branch), trunk's (already "
                      "failing on the default branch) or flaky", className="small text-muted")],
            className="d-flex align-items-baseline flex-wrap")),
            dbc.CardBody(dcc.Loading(html.Div(id="dev-failures"), **loading), className="p-0 section-body")],
            className="mb-3 section", id="dev-failures-section"),
        dbc.Card([dbc.CardHeader(html.Div([
            html.H2("Failures still unfixed", className="h6 mb-0 me-2"),
            html.Span("their failed runs that are still the newest result of that workflow on that branch "
                      "(whatever the window)", className="small text-muted")],
            className="d-flex align-items-baseline flex-wrap")),
            dbc.CardBody(dcc.Loading(html.Div(id="dev-unfixed"), **loading), className="p-0 section-body")],
            className="mb-3 section", id="dev-unfixed-section"),
        dbc.Card([dbc.CardHeader(html.Div([
            html.H2("Build history", className="h6 mb-0 me-2"),
            html.Span(id="dev-history-count", className="small text-muted")],
            className="d-flex align-items-baseline flex-wrap")),
            dbc.CardBody(history_grid(q.HISTORY_PAGE), className="p-0 section-body")],
            className="mb-3 section", id="dev-history-section"),
    ], id="developer-page")
