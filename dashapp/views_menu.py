"""The navbar's Views button: save the page as it is (its filters are in its URL) under a name, open or share a
saved view, delete one, and pin the repository shown and its workflows (the Waterfall lists pinned ones first).

The same rules as `/api/views` and `/api/pins` (dashapp/api/views.py): they belong to whoever the request is,
and an anonymous reader has no button.
"""
import dash_bootstrap_components as dbc
import flask
from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate

from dashapp import inputs
from dashapp.api.views import check_view, owner
from dashapp.components import empty_state
from store import savedviews
from store.engine import writing
from store.queries import selection as names

PIN = "pin"


def components() -> list:
    """The button and its dialog; nothing for an anonymous reader."""
    if owner() is None:
        return []
    dialog = dbc.Modal([
        dbc.ModalHeader(dbc.ModalTitle("Views")),
        dbc.ModalBody([
            html.Div([dbc.Input(id="views-name", placeholder="Name this page as it is now", maxLength=100,
                                debounce=False),
                      dbc.Button("Save", id="views-save", color="primary")], className="d-flex gap-2 mb-2"),
            html.Div(id="views-note", className="small mb-2"),
            html.Div(id="views-list"),
            html.H6("Pinned", className="mt-4 mb-1"),
            html.Div(id="views-pins"),
        ]),
    ], id="views-modal", is_open=False, size="lg", scrollable=True)
    return [dbc.Button("Views", id="views-open", size="sm", color="light", outline=True, className="ms-3"), dialog]


def pins_of(conn) -> dict:
    """This request's person's pins ({"repos": [], "workflows": {}} for an anonymous reader)."""
    who = owner()
    return savedviews.pinned(conn, who) if who else {"repos": [], "workflows": {}}


def views_table(items: list[dict], host: str):
    if not items:
        return empty_state("No saved views yet.", hint="Name this page above to keep it, filters and all.",
                           id="views-empty", className="empty-state empty-compact")
    rows = []
    for item in items:
        link = f"{host}v/{item['slug']}"
        rows.append(html.Tr([
            html.Td(html.A(item["name"], href=item["path"] + item["search"], className="views-open-link")),
            html.Td(html.Code(item["path"] + item["search"], className="small text-break")),
            html.Td([html.Code(link, className="small me-1", id=f"views-link-{item['id']}"),
                     dcc.Clipboard(content=link, title="Copy the share link", className="d-inline-block")],
                    className="text-nowrap"),
            html.Td(dbc.Button("Delete", id={"type": "views-delete", "id": item["id"]}, size="sm", color="danger",
                               outline=True)),
        ], className="views-row", **{"data-name": item["name"]}))
    head = html.Thead(html.Tr([html.Th("Name"), html.Th("Page"), html.Th("Share link"), html.Th("")]))
    return dbc.Table([head, html.Tbody(rows)], size="sm", className="mb-0 align-middle", id="views-table")


def pins_section(conn, search: str | None):
    """The pins of the repository the page shows (the URL's, else the Waterfall's default)."""
    from dashapp.shell import query_args

    pins = pins_of(conn)
    repo = query_args(search).get("repo") or default_repo(conn, pins)
    if not repo:
        return html.Div("No repository yet.", className="small text-muted")
    workflows = names.workflow_names(conn, repo)
    return html.Div([
        dcc.Store(id="views-pin-target", data=repo),
        dcc.Checklist(id="views-pin-repo", options=[{"label": f" Pin {repo}", "value": PIN}],
                      value=[PIN] if repo in pins["repos"] else [], inputClassName="me-1"),
        html.Div("Its workflows, shown first in the Waterfall's grid:", className="small text-muted mt-2"),
        dcc.Checklist(id="views-pin-workflows", options=[{"label": f" {w}", "value": w} for w in workflows],
                      value=[w for w in pins["workflows"].get(repo, []) if w in workflows],
                      inline=True, inputClassName="me-1", labelClassName="me-3"),
        html.Div(id="views-pin-note", className="small text-muted mt-1"),
    ])


def default_repo(conn, pins: dict, known=None) -> str | None:
    """The Waterfall's repository when the URL names none: the first pinned one that has runs (`known`: the
    repositories, when the caller has them), else the one with the newest run."""
    known = set(names.repo_names(conn) if known is None else known)
    return next((r for r in pins["repos"] if r in known), None) or names.most_recent_repo(conn)


def _draw(search):
    from dashapp.shell import services

    who = owner()
    if who is None:
        raise PreventUpdate
    with services().engine.connect() as conn:
        return views_table(savedviews.views(conn, who), flask.request.host_url), pins_section(conn, search)


def register(app) -> None:
    @app.callback(Output("views-modal", "is_open"), Output("views-list", "children"),
                  Output("views-pins", "children"), Output("views-note", "children"),
                  Input("views-open", "n_clicks"), State("url", "search"), prevent_initial_call=True)
    def _open(clicks, search):
        if not clicks:
            raise PreventUpdate
        search = inputs.search(search, "url.search")
        return True, *_draw(search), ""

    @app.callback(Output("views-list", "children", allow_duplicate=True),
                  Output("views-note", "children", allow_duplicate=True),
                  Input("views-save", "n_clicks"), State("views-name", "value"), State("url", "pathname"),
                  State("url", "search"), prevent_initial_call=True)
    def _save(clicks, name, pathname, search):
        from dashapp.shell import services

        who = owner()
        if not clicks or who is None:
            raise PreventUpdate
        try:
            name, path, search = check_view(inputs.text(name, "views-name.value", max_len=200),
                                            inputs.search(pathname, "url.pathname"),
                                            inputs.search(search, "url.search"))
            with writing(services().engine) as conn:
                saved = savedviews.save(conn, who, name, path, search)
                items = savedviews.views(conn, who)
        except ValueError as exc:
            return no_update, html.Span(str(exc), className="text-danger-emphasis", id="views-error")
        return (views_table(items, flask.request.host_url),
                html.Span([f"Saved “{saved['name']}”. Anyone who may read the dashboard opens it with ",
                           html.Code(f"{flask.request.host_url}v/{saved['slug']}"), "."], id="views-saved"))

    @app.callback(Output("views-list", "children", allow_duplicate=True),
                  Input({"type": "views-delete", "id": ALL}, "n_clicks"), prevent_initial_call=True)
    def _delete(clicks):
        from dashapp.shell import services

        who = owner()
        hit = ctx.triggered_id
        if who is None or not isinstance(hit, dict) or not inputs.clicked(clicks):
            raise PreventUpdate
        view_id = inputs.integer(hit.get("id"), "views-delete.id", lo=1)
        with writing(services().engine) as conn:
            savedviews.remove(conn, who, view_id)
            items = savedviews.views(conn, who)
        return views_table(items, flask.request.host_url)

    @app.callback(Output("views-pin-note", "children"), Input("views-pin-repo", "value"),
                  Input("views-pin-workflows", "value"), State("views-pin-target", "data"),
                  prevent_initial_call=True)
    def _pin(repo_pin, workflows, repo):
        from dashapp.shell import services

        who = owner()
        repo = inputs.text(repo, "views-pin-target.data", max_len=200)
        if who is None or not repo:
            raise PreventUpdate
        pinned = PIN in inputs.texts(repo_pin, "views-pin-repo.value")
        chosen = inputs.texts(workflows, "views-pin-workflows.value")
        try:
            with writing(services().engine) as conn:
                savedviews.set_pins(conn, who, repo, pinned, chosen)
        except ValueError as exc:
            return str(exc)
        return "Saved: the Waterfall shows them first from its next load."
