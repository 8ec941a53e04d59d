"""The Waterfall view (`/`): is the branch green, what broke, who broke it.

Everything it shows is read from the URL (`?repo=&branch=&workflow=&window=&offset=&expand=`):
`layout` resolves the selection once (the repository's default branch when
none is given) and puts it in `wf-selection`; the callbacks in
`dashapp.callbacks.waterfall` fill the sections from it, and again on every
`live-version` bump.

With "All repositories" (no `repo=`), the cards, grid and chart show the
repository with the most recent activity, said so on the page; the build
stream then covers every repository.
"""
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp import shell
from dashapp.callbacks import waterfall as callbacks
from dashapp.components import empty_state, filter_bar, static_html
from dashapp.shell import services
from domain.text import clip
from dashapp.tables import glyph_legend, stream_grid


def first_screen(query: dict) -> str:
    """The page for `query` as static HTML, sent inside the first response (drawn before any script runs).

    The same layout the app renders, shell included, with the commit grid already filled; the live
    page replaces it once it has drawn its own grid (`assets/prerender.js`).
    """
    page = layout(**query)
    search = _search(query)
    markup = static_html(shell.layout(content=page, pathname="/", search=search))
    # The live page owns the grid's id; the copy gets its own.
    return markup.replace('id="commit-grid-table"', 'id="commit-grid-snapshot"', 1)


dash.register_page(__name__, path="/", name="Waterfall", title="Waterfall · Build Monitor", order=0,
                   first_screen=first_screen)
callbacks.register()


def _search(query: dict) -> str:
    pairs = [(k, v) for k, values in (query or {}).items()
             for v in (values if isinstance(values, list) else [values]) if isinstance(v, str)]
    return f"?{urlencode(pairs)}" if pairs else ""


def _notice(sel: dict):
    if sel["empty"]:
        return empty_state("No builds yet.", hint="Point a GitHub webhook (workflow_run, workflow_job) at "
                           "POST /webhook, or backfill with init_db.py; runs appear here as they arrive.",
                           id="wf-notice", className="empty-state mb-3")
    if not sel["known"]:
        return empty_state(f"Unknown repository “{sel['repo']}”.", hint="Pick one from the repository selector.",
                           id="wf-notice", className="empty-state mb-3")
    if sel["all"]:
        why = ", your first pinned repository (Views)" if sel.get("pinned") else \
            ", the one with the most recent activity"
        return dbc.Alert(["All repositories: showing ", html.B(sel["repo"]),
                          f"{why}. Pick a repository to keep it in view; "
                          "the build stream below covers every repository."],
                         color="info", className="py-2 small", id="wf-notice")
    return html.Div(id="wf-notice")


def _section(title: str, body, *, extra=None, section_id=None) -> dbc.Card:
    header = dbc.CardHeader(html.Div([html.H2(title, className="h6 mb-0 me-auto"), *(extra or [])],
                                     className="d-flex align-items-center gap-2 flex-wrap"))
    return dbc.Card([header, dbc.CardBody(body, className="p-0 section-body")], className="mb-3 section",
                    id=section_id)


def layout(**query):
    with services().engine.connect() as conn:
        sel = callbacks.resolve_selection(conn, query)
    scope = f"{clip(sel['repo'], 120)} · {clip(sel['branch'] or '', 120)}" if sel["known"] else ""
    heading = html.Div([
        html.H1(["Waterfall ", html.Small(scope, className="text-muted fs-6", id="wf-heading-scope")],
                className="h4 mb-0 me-auto"),
    ], className="d-flex align-items-center mb-2")
    loading = {"type": "dot", "delay_show": 400}
    return html.Div([
        dcc.Store(id="wf-selection", data=sel),
        heading,
        _notice(sel),
        filter_bar("wf", branches=sel["branches"], workflows=sel["workflows"], branch=sel["branch"],
                   workflow=sel["workflow"], window=sel["window"], extra=[html.Div(id="wf-csv")]),
        # No spinner over the cards and the grid: live updates re-query them, and they must not flash.
        html.Div(id="wf-cards", className="wf-cards-slot"),
        html.Div(id="wf-kpis", className="wf-kpis-slot"),
        # The grid comes drawn with the page (no round-trip before the first paint); its callback
        # redraws it on live updates only.
        _section("Commits", html.Div(callbacks.grid_section(sel, _search(query)), id="wf-grid",
                                     className="commit-grid-wrap"),
                 extra=[glyph_legend()], section_id="wf-grid-section"),
        dbc.Row([
            dbc.Col(_section("Build and queue time", dcc.Loading(html.Div(id="wf-chart"), **loading),
                             section_id="wf-chart-section"), xl=5),
            dbc.Col(_section("Build stream", [html.Div(id="wf-stream-empty"), stream_grid([])],
                             extra=[html.Span(id="wf-stream-scope", className="small text-muted")],
                             section_id="wf-stream-section"), xl=7),
        ], className="g-3"),
    ], id="waterfall-page")
