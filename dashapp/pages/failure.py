"""A failure group's page (`/failure/<fingerprint>`): one failure line, its verdict and every occurrence.

The fingerprint (16 hex digits, `failures.fingerprint`) is the path; the selection Triage linked from
rides along in the query string (`?repo=&branch=&workflow=&window=`, no `window=` meaning all time), so
the link back to Triage returns to the same view.  `layout` checks the fingerprint and resolves the
selection into `fl-selection`; `dashapp.callbacks.failure` fills the header (all time) and the
occurrences (the selection's), again on every `live-version` bump.
"""
from urllib.parse import unquote

import dash
import dash_bootstrap_components as dbc
from dash import ctx, dcc, html

from dashapp import urlstate
from dashapp.callbacks import failure as callbacks
from dashapp.components import empty_state
from dashapp.failure_tables import FINGERPRINT
from dashapp.shell import services
from domain.text import as_text, clip
from store.queries import failures as fq

dash.register_page(__name__, path_template="/failure/<fingerprint>", name="Failure",
                   title="Failure · Build Monitor")
callbacks.register()

PREFIX = "/failure/"
CARRIED = ("repo", "branch", "workflow", "window")  # the Triage selection, kept for the way back


def _path_fingerprint(given):
    """The fingerprint of the path: Dash lets a query argument of the same name replace a path variable, so the
    page reads the path itself when it can (the routing callback's pathname)."""
    try:
        pathname = ctx.inputs.get("_pages_location.pathname")
    except Exception:  # no callback context (a test calling `layout` directly)
        pathname = None
    if isinstance(pathname, str) and pathname.startswith(PREFIX):
        return pathname[len(PREFIX):]
    return given


def resolve(conn, fingerprint, query: dict) -> dict:
    """The selection: the fingerprint checked (`valid`) and looked up (`known`), and the carried filters."""
    args = urlstate.clean_args(query)
    given = as_text(unquote(fingerprint)) if isinstance(fingerprint, str) else ""  # the browser's path is %-encoded
    text = given.strip().lower()
    valid = bool(FINGERPRINT.fullmatch(text))
    window = args.get("window")
    sel = {"fingerprint": text if valid else None, "valid": valid, "given": clip(given, 80), "known": False,
           "window": window if window in urlstate.WINDOW_VALUES else "all"}
    sel.update({k: args.get(k) for k in ("repo", "branch", "workflow")})
    if valid:
        sel["known"] = fq.known(conn, text)
    return sel


def _notice(sel: dict):
    if not sel["valid"]:
        return empty_state(f"“{sel['given']}” is not a failure fingerprint.",
                           hint="A failure's page is /failure/ and 16 hexadecimal digits: open one from Triage's "
                                "“Failures by cause”.", id="fl-notice")
    if not sel["known"]:
        return empty_state("No failure with this fingerprint.",
                           hint="No failed job's failure line has it (yet, or any more).", id="fl-notice")
    return None


def _controls(sel: dict) -> dbc.Row:
    windows = [{"label": label, "value": value} for value, label, _s in urlstate.WINDOWS]
    scope = " · ".join(clip(x, 120) for x in (sel["repo"], sel["branch"], sel["workflow"]) if x)
    return dbc.Row([
        dbc.Col([dbc.Label("Occurrences in", html_for="fl-window", className="small mb-0"),
                 dcc.Dropdown(id="fl-window", options=windows, value=sel["window"], clearable=False,
                              searchable=False)], md=2),
        dbc.Col(html.Div(f"of {scope}" if scope else "in every repository", className="small text-muted pb-2",
                         id="fl-scope"), md="auto"),
    ], className="filter-bar g-2 mb-3 align-items-end")


def layout(fingerprint=None, **query):
    with services().engine.connect() as conn:
        sel = resolve(conn, _path_fingerprint(fingerprint), query)
    args = urlstate.clean_args(query)
    back = urlstate.href("/triage", **{k: args.get(k) for k in CARRIED})
    body = [
        dcc.Store(id="fl-selection", data={k: v for k, v in sel.items() if k not in ("valid", "given")}),
        html.Div(dcc.Link("← Triage", href=back, id="fl-back"), className="small mb-1"),
        html.H1(["Failure ", html.Small(sel["fingerprint"] or "", className="text-muted fs-6 font-monospace",
                                        id="fl-heading-fingerprint")], className="h4 mb-2"),
    ]
    notice = _notice(sel)
    if notice is not None:
        return html.Div(body + [notice], id="failure-page")
    loading = {"type": "dot", "delay_show": 400}
    return html.Div(body + [
        dcc.Store(id="fl-occurrences-jobs"),  # the job ids drawn: a live bump redraws only when they change
        dbc.Card(dcc.Loading(html.Div(id="fl-header"), **loading), className="mb-3 section", id="fl-header-section"),
        _controls(sel),
        dbc.Card([dbc.CardHeader(html.Div([
            html.H2("Occurrences", className="h6 mb-0 me-2"),
            html.Span("failed jobs with this failure line, newest first; open a log excerpt under each",
                      className="small text-muted")], className="d-flex align-items-baseline flex-wrap")),
            dbc.CardBody(dcc.Loading(html.Div(id="fl-occurrences"), **loading), className="p-0 section-body")],
            className="mb-3 section", id="fl-occurrences-section"),
    ], id="failure-page")
