"""The Admin page (`/admin`): how to point a repository's webhook here, each repository's webhook health, the
dead letters with replay, backfills, the archives, and for admins the API tokens (issued and revoked here) and the
audit log.

Maintainers and admins see it; a viewer gets a notice and no action (the API routes behind the actions
answer them 403 too).  `dashapp.callbacks.admin` fills the sections, again on every `live-version` bump.
"""
import dash
import flask
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashapp.callbacks import admin as callbacks
from dashapp.components import empty_state, section
from dashapp.roles import ADMIN, MAINTAINER, ROLES, VIEWER, allows
from dashapp.security import identity
from dashapp.shell import services

dash.register_page(__name__, path="/admin", name="Admin", title="Admin · Build Monitor", order=9)
callbacks.register()

EVENTS = "Workflow runs, Workflow jobs, Pushes, Branch or tag creation, Branch or tag deletion"




def _setup() -> html.Div:
    url = (flask.request.url_root if flask.has_request_context() else "https://your-host/").rstrip("/") + "/webhook"
    secret = "set (GITHUB_WEBHOOK_SECRET): paste the same value" if services().config.webhook_secret else \
        "not set: deliveries are refused (set GITHUB_WEBHOOK_SECRET, then paste it here)"
    rows = [("Payload URL", html.Span([html.Code(url, id="ad-webhook-url"),
                                       dcc.Clipboard(target_id="ad-webhook-url", className="ms-2 d-inline-block",
                                                     title="Copy")])),
            ("Content type", html.Code("application/json")), ("Secret", secret),
            ("Events", html.Span([html.I("Let me select: "), EVENTS], id="ad-webhook-events"))]
    return html.Div([html.P(["In the repository's (or organisation's) ", html.I("Settings → Webhooks → Add webhook"),
                             ":"], className="mb-2"),
                     html.Dl([part for label, value in rows for part in (html.Dt(label, className="col-sm-2"),
                                                                         html.Dd(value, className="col-sm-10"))],
                             className="row mb-0")], className="p-3", id="ad-setup")


def _backfill_form() -> html.Div:
    token = services().config.github_token
    return html.Div([
        dcc.Input(id="ad-backfill-repo", type="text", placeholder="owner/name", debounce=False,
                  className="form-control form-control-sm me-2", style={"maxWidth": "18rem"}),
        dcc.Input(id="ad-backfill-days", type="number", min=1, max=3650, placeholder="days (optional)",
                  className="form-control form-control-sm me-2", style={"maxWidth": "14rem"}),
        dbc.Button("Backfill", id="ad-backfill-start", size="sm", color="primary", disabled=not token,
                   title=None if token else "needs GITHUB_TOKEN"),
        dbc.Button("Reconcile stale runs", id="ad-reconcile-start", size="sm", color="secondary", outline=True,
                   className="ms-2", disabled=not token,
                   title="re-fetch the runs stored as active for over STALE_HOURS (of the repository given, else "
                         "of all)" if token else "needs GITHUB_TOKEN"),
        html.Div(id="ad-backfill-note", className="small ms-3"),
    ], className="d-flex align-items-center p-2 border-bottom")


def _token_form() -> html.Div:
    """Issue a token (admins): what it is for, its role, its lifetime; the token is shown once, below."""
    return html.Div([
        html.Div([
            dcc.Input(id="ad-token-name", type="text", placeholder="what it is for, e.g. ci-export", debounce=False,
                      maxLength=200, className="form-control form-control-sm me-2", style={"maxWidth": "18rem"}),
            dbc.Select(id="ad-token-role", options=[{"label": r, "value": r} for r in ROLES], value=VIEWER,
                       size="sm", className="me-2", style={"maxWidth": "9rem"}),
            dcc.Input(id="ad-token-days", type="number", min=1, max=3650, placeholder="days (blank: no expiry)",
                      className="form-control form-control-sm me-2", style={"maxWidth": "14rem"}),
            dbc.Button("Issue token", id="ad-token-issue", size="sm", color="primary"),
        ], className="d-flex align-items-center"),
        html.Div(id="ad-token-note", className="small mt-1"),
    ], className="p-2 border-bottom")


def layout(**_query):
    who = identity()
    if not allows(who.role, MAINTAINER):
        return html.Div([html.H1("Admin", className="h4 mb-2"),
                         empty_state("The Admin page is for maintainers and admins.",
                                     hint=f"You are signed in as {who.actor}, a {who.role}." if who.via != "anonymous"
                                     else "Sign in as a maintainer, or open it on the server's own host.",
                                     id="ad-notice", className="empty-state mb-3 bg-body border rounded")],
                        id="admin-page")
    loading = {"type": "dot", "delay_show": 400}
    return html.Div([
        dcc.Store(id="ad-replay-request"),  # {guid, at}: a replay button clicked (a clientside callback writes it)
        dcc.Interval(id="ad-poll", interval=1000, disabled=True),  # on while a backfill runs: its progress
        html.H1(["Admin ", html.Small(f"{who.actor} · {who.role}", className="text-muted fs-6")], className="h4 mb-2"),
        section("Webhook set-up", _setup(), hint="what a repository's webhook needs", section_id="ad-setup-section"),
        section("Repositories", dcc.Loading(html.Div(id="ad-health"), **loading),
                 hint="each repository's deliveries: newest, by outcome over 24 h, failures, processing lag",
                 section_id="ad-health-section"),
        section("Dead letters", dcc.Loading(html.Div(id="ad-dead"), **loading),
                 hint="deliveries that failed to apply, newest first; a replay hands them back to the processor",
                 section_id="ad-dead-section"),
        section("Backfill and reconcile", [_backfill_form(), html.Div(id="ad-jobs")],
                hint="load a repository's history, or re-fetch runs GitHub never said finished, from its REST API "
                     "(GITHUB_TOKEN); in the background",
                section_id="ad-jobs-section"),
        section("Archives", dcc.Loading(html.Div(id="ad-archives"), **loading),
                hint="runs, jobs, steps and deliveries past ARCHIVE_AFTER_DAYS, moved into monthly Parquet files; "
                     "the charts and cards keep counting them", section_id="ad-archives-section"),
        section("API tokens", [_token_form() if allows(who.role, ADMIN) else None,
                               dcc.Loading(html.Div(id="ad-tokens"), **loading)],
                hint="for scripts and CI: a role and a lifetime each (also POST /api/tokens, DELETE "
                     "/api/tokens/<id>)", section_id="ad-tokens-section"),
        section("Audit log", dcc.Loading(html.Div(id="ad-audit"), **loading),
                 hint="sign-ins, tokens, replays and test messages, newest first", section_id="ad-audit-section"),
    ], id="admin-page")
