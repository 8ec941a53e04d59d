"""The page shell: navbar with the view selector, repository selector and theme switch.

The URL is the state: the repository selector writes `?repo=` into the
query string (keeping the other arguments), the views re-render from the
URL, and the selector follows the URL back (browser back button, links).
"""
from urllib.parse import parse_qsl, urlencode

import dash
import dash_bootstrap_components as dbc
import flask
from dash import Input, Output, State, ctx, dcc, html, no_update

from dashapp import components, inputs, live_ui, views_menu
from store import savedviews

ALL_REPOS = "__all__"
VIEWS = (("nav-waterfall", "Waterfall", "/"), ("nav-triage", "Triage", "/triage"),
         ("nav-developer", "Developer", "/developer"), ("nav-runners", "Runners", "/runners"),
         ("nav-alerts", "Alerts", "/alerts"))
# Query arguments that belong to one view's position, not to the selection.
VIEW_ONLY_ARGS = ("offset", "expand")  # the Waterfall's expanded workflows are its own
# Arguments that only make sense within one repository.
REPO_SCOPED_ARGS = ("branch", "workflow", "offset", "expand")


def services():
    """The running app's `Services` (engine, config...)."""
    server = flask.current_app if flask.has_app_context() else dash.get_app().server
    return server.extensions["buildmon"]


def _repo_options() -> list[dict]:
    """Every repository, this person's pinned ones first (starred)."""
    from store.queries.selection import repo_names

    try:
        with services().engine.connect() as conn:
            names = repo_names(conn)
            pinned = set(views_menu.pins_of(conn)["repos"])
    except Exception:  # the shell must render even when the store is unreadable
        names, pinned = [], set()
    options = components.name_options(savedviews.pinned_first(names, pinned))
    for option in options:
        if option["value"] in pinned:
            option["label"] = "★ " + option["label"]
    return [{"label": "All repositories", "value": ALL_REPOS}] + options


def navbar(pathname: str | None = None, search: str | None = None) -> dbc.Navbar:
    """The navigation bar; `pathname`/`search` (when known) set the links and the repository shown."""
    hrefs, active = nav_state(pathname, search) if pathname else ([p for _i, _l, p in VIEWS], [False] * len(VIEWS))
    items = [dbc.NavItem(dbc.NavLink(label, href=href, id=nav_id, active=on))
             for (nav_id, label, _p), href, on in zip(VIEWS, hrefs, active)]
    if _may_administer():
        items.append(dbc.NavItem(dbc.NavLink("Admin", href="/admin", id="nav-admin", active=pathname == "/admin")))
    nav = dbc.Nav(items, navbar=True, className="me-3 view-nav")
    tools = html.Div(
        [
            dcc.Dropdown(id="repo-select", options=_repo_options(),
                         value=components.option_value(query_args(search).get("repo") or ALL_REPOS),
                         clearable=False, searchable=True, className="repo-select", placeholder="Repository"),
            dbc.Switch(id="theme-switch", label="Dark", value=False, persistence=True,
                       persistence_type="local", className="theme-switch mb-0 ms-3"),
            *live_ui.components(),
            *views_menu.components(),
            *_signed_in(),
        ],
        className="d-flex align-items-center ms-auto navbar-tools",
    )
    return dbc.Navbar(
        dbc.Container([dbc.NavbarBrand("Build Monitor", href="/", className="me-4"), nav, tools], fluid=True),
        color="dark", dark=True, className="app-navbar mb-3",
    )


def _may_administer() -> bool:
    """Does this request's identity see the Admin page (a maintainer or an admin)?"""
    from dashapp.roles import MAINTAINER, allows
    from dashapp.security import identity

    return flask.has_request_context() and allows(identity().role, MAINTAINER)


def _signed_in() -> list:
    """Who is signed in, with their role, and the sign-out button (a form posting the session's CSRF token);
    nothing without a sign-in session."""
    from dashapp.security import identity

    who = identity() if flask.has_request_context() else None
    if who is None or who.via != "session":
        return []
    return [html.Span([who.actor, html.Span(who.role, className="badge text-bg-secondary ms-1")],
                      className="navbar-text small ms-3 text-light", id="signed-in-as", title=who.email or who.actor),
            html.Form([dcc.Input(type="hidden", name="csrf_token", value=who.csrf),
                       html.Button("Sign out", type="submit", className="btn btn-sm btn-outline-light ms-2",
                                   id="sign-out")],
                      action="/signout", method="POST", className="mb-0")]


def layout(content=None, pathname: str | None = None, search: str | None = None):
    """The shell around `dash.page_container` (or, for a static first screen, around `content`)."""
    body = dash.page_container if content is None else content
    return html.Div(
        [dcc.Location(id="url", refresh="callback-nav"), dcc.Store(id="theme", data="light"),
         navbar(pathname, search), dbc.Container(body, fluid=True, className="page-body")],
        id="app-shell",
    )


def query_args(search: str | None) -> dict:
    return dict(parse_qsl((search or "").lstrip("?"), keep_blank_values=False))


def with_args(search: str | None, drop=(), **changes) -> str:
    """`search` with `changes` applied (None or "" removes a key) and `drop` keys removed."""
    args = {k: v for k, v in query_args(search).items() if k not in drop}
    for key, value in changes.items():
        if value in (None, ""):
            args.pop(key, None)
        else:
            args[key] = value
    return f"?{urlencode(args)}" if args else ""


def nav_state(pathname: str | None, search: str | None) -> tuple[list[str], list[bool]]:
    """Hrefs of the view links (carrying the selection, not a view's paging) and which is active."""
    carried = with_args(search, drop=VIEW_ONLY_ARGS)
    path = pathname or "/"
    return [p + carried for _i, _l, p in VIEWS], [path == p for _i, _l, p in VIEWS]


def register_callbacks(app: dash.Dash) -> None:
    """The shell's callbacks, on `app` (one set per app, so tests can build many)."""
    views_menu.register(app)

    @app.callback(
        Output("url", "search", allow_duplicate=True),
        Output("repo-select", "value"),
        Output("repo-select", "options"),
        Input("url", "search"),
        Input("repo-select", "value"),
        State("repo-select", "options"),
        prevent_initial_call="initial_duplicate",
    )
    def _sync_repo(search, selected, options):
        # One callback both ways: the URL drives the selector, the selector writes the URL.
        search = inputs.search(search, "url.search")
        selected = inputs.text(selected, "repo-select.value")
        options = inputs.options(options, "repo-select.options")
        current = query_args(search).get("repo") or ALL_REPOS
        if ctx.triggered_id != "repo-select":
            known = {o["value"] for o in options or []}
            if current in known:
                return no_update, current, no_update
            if components.option_value(current) is None:  # too long to be an option: the selector shows none
                return no_update, None, no_update
            # A repository the store does not know (yet): show it, rather than let the selector drop it.
            (unknown,) = components.name_options([current])
            return no_update, current, (options or []) + [{**unknown, "label": unknown["label"] + " (unknown)"}]
        if selected is None or selected == current:
            return no_update, no_update, no_update
        repo = None if selected == ALL_REPOS else selected
        return with_args(search, drop=REPO_SCOPED_ARGS, repo=repo), no_update, no_update

    @app.callback(
        *[Output(nav_id, "href") for nav_id, _l, _p in VIEWS],
        *[Output(nav_id, "active") for nav_id, _l, _p in VIEWS],
        Input("url", "pathname"),
        Input("url", "search"),
    )
    def _nav(pathname, search):
        pathname, search = inputs.search(pathname, "url.pathname"), inputs.search(search, "url.search")
        hrefs, active = nav_state(pathname, search)
        return *hrefs, *active

    app.clientside_callback(
        """function (dark) {
            const mode = dark ? 'dark' : 'light';
            document.documentElement.setAttribute('data-bs-theme', mode);
            document.body.setAttribute('data-ag-theme-mode', mode);
            return mode;
        }""",
        Output("theme", "data"),
        Input("theme-switch", "value"),
    )


__all__ = ["layout", "navbar", "register_callbacks", "with_args", "query_args", "nav_state", "services", "ALL_REPOS"]
