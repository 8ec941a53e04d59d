"""The Admin page's callbacks: the sections drawn from the store (again on every `live-version` bump, and each
second while a backfill runs), the replay buttons, the backfill and reconcile buttons, the archives, and the
token form and Revoke buttons.

A replay, a backfill or a token asks the same of this request's identity as its API route does (a maintainer;
an admin for tokens): the page is no way around the API's rule.
"""
import time

from dash import ALL, Input, Output, State, callback, clientside_callback, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashapp import backfills, inputs
from dashapp.admin_tables import (archives_table, audit_table, dead_letters_table, health_table, jobs_table,
                                  tokens_table)
from dashapp.api import access, deliveries
from dashapp.components import empty_state
from dashapp.rawhtml import compact
from dashapp.roles import ADMIN, MAINTAINER, allows
from dashapp.security import identity
from dashapp.shell import services
from store import accounts, adminjobs, archive
from store.queries import deliveries as dq

DEAD_SHOWN = 100
ALL_GUIDS = "*"  # the "Replay all" button's id (a delivery's GUID is a UUID: never this)
AUDIT_SHOWN = 50


def sections(note=None):
    """(repositories, dead letters, backfills, tokens, audit log, whether to stop polling) for this request's
    identity; nothing for a viewer.  While a backfill runs the page polls each second for its progress."""
    who = identity()
    if not allows(who.role, MAINTAINER):
        raise PreventUpdate
    now = time.time()
    with services().engine.connect() as conn:
        health = dq.health(conn, now=now)
        dead, total = dq.dead_letters(conn, limit=DEAD_SHOWN)
        jobs = adminjobs.jobs(conn, now=now)
        admin = allows(who.role, ADMIN)
        tokens = accounts.tokens(conn, now=now) if admin else []
        log = accounts.audit_entries(conn, limit=AUDIT_SHOWN) if admin else []
    repos = health_table(health, now=now) if health else empty_state(
        "No deliveries yet.", hint="Point a repository's webhook at the URL above; GitHub's ping shows here.",
        id="ad-health-empty", className="empty-state empty-compact")
    if dead:
        more = f"The newest {DEAD_SHOWN} of {total:,}." if total > DEAD_SHOWN else f"{total:,} in all."
        letters = [html.Div([html.Span(more, className="me-3"),
                             html.Button("Replay all", id={"type": "ad-replay", "guid": ALL_GUIDS},
                                         className="btn btn-sm btn-primary", **{"data-replay": "all"})],
                            className="d-flex align-items-center p-2 border-bottom small"),
                   dead_letters_table(dead, now=now, can_replay=True)]
    else:
        letters = [empty_state("No dead letters: every delivery was applied.", id="ad-dead-empty",
                               className="empty-state empty-compact")]
    if note:
        letters.insert(0, html.Div(note, id="ad-replay-note", className="small px-2 py-1 border-bottom"))
    job_part = jobs_table(jobs, now=now) if jobs else empty_state(
        "No backfills yet.", id="ad-jobs-empty", className="empty-state empty-compact")
    idle = not any(j["state"] == "running" for j in jobs)
    if not admin:
        return compact(repos), letters, compact(job_part), _admins_only("ad-tokens"), _admins_only("ad-audit"), idle
    token_part = _tokens_part(tokens, now)
    audit_part = audit_table(log, now=now) if log else empty_state("Nothing done yet.", id="ad-audit-empty",
                                                                   className="empty-state empty-compact")
    return compact(repos), letters, compact(job_part), compact(token_part), compact(audit_part), idle


def archives_section():
    """The archive policy, the store's horizon and the archived months (store/archive.py)."""
    if not allows(identity().role, MAINTAINER):
        raise PreventUpdate
    svc = services()
    days = svc.config.archive_after_days
    root = archive.location(svc.config.database_path, svc.config.archive_dir)
    with svc.engine.connect() as conn:
        months, cutoff = archive.months(conn), archive.cutoff(conn)
    policy = (f"Keeps {days:g} days: older runs, jobs, steps and deliveries move to {root}, in the background."
              if days > 0 else "Keeps everything (ARCHIVE_AFTER_DAYS is 0).")
    if cutoff is not None:
        policy += (f" Archived: what was created before {time.strftime('%Y-%m-%d', time.gmtime(cutoff))} (UTC); "
                   "late reports of it are not applied.")
    note = html.Div([policy, " Put a month back with ", html.Code("python -m store.archive restore YYYY-MM"), "."],
                    className="small p-2 border-bottom", id="ad-archives-policy")
    if not months:
        return [note, empty_state("Nothing archived.", id="ad-archives-empty", className="empty-state empty-compact")]
    return [note, compact(archives_table(months))]


def _tokens_part(tokens: list[dict], now: float):
    return tokens_table(tokens, now=now) if tokens else empty_state(
        "No tokens issued.", hint="Issue one above (or with POST /api/tokens).", id="ad-tokens-empty",
        className="empty-state empty-compact")


def token_action(issue_args=None, revoke_id=None):
    """Issue (name, role, days) or revoke a token if this request may (an admin); (what came of it, the tokens
    table again).  The same functions as the API's routes, so the page is no way around their rules."""
    if not allows(identity().role, ADMIN):
        raise PreventUpdate
    svc = services()
    if issue_args is not None:
        try:
            issued = access.issue(svc, *issue_args)
        except access.Refused as exc:
            note = html.Span(f"Not issued: {exc}.", className="text-danger-emphasis", id="ad-token-error")
        else:
            note = html.Div([html.Span(f"Token {issued['id']} ({issued['name']}, {issued['role']}): copy it now, "
                                       "it is not shown again. ", className="me-1"),
                             html.Code(issued["token"], id="ad-token-value"),
                             dcc.Clipboard(target_id="ad-token-value", className="ms-2 d-inline-block",
                                           title="Copy")], id="ad-token-issued")
    else:
        done = access.revoke(svc, revoke_id)
        note = html.Span(f"Token {revoke_id} revoked: it opens nothing from now on." if done else
                         f"Token {revoke_id} was not live.", id="ad-token-revoked")
    now = time.time()
    with svc.engine.connect() as conn:
        return note, compact(_tokens_part(accounts.tokens(conn, now=now), now))


def _admins_only(section: str):
    return empty_state("Admins only.", id=f"{section}-admins-only", className="empty-state empty-compact")


def replay(guid: str | None):
    """Replay one dead letter (`guid`) or all (None) if this request may, then the sections again."""
    who = identity()
    if not allows(who.role, MAINTAINER):
        raise PreventUpdate
    queued = deliveries.replay(services(), None if guid is None else [guid], origin="page")
    note = (f"Queued {queued} deliver{'y' if queued == 1 else 'ies'} for the processor: the list follows as they "
            "are applied." if queued else "Nothing queued: already applied or queued.")
    return sections(note)


REPLAY_REQUEST = {"guid": inputs.checker(inputs.text, max_len=100), "at": inputs.checker(inputs.integer, lo=0)}

# A click on a replay button -> {guid, at} ("*": all); nothing for the buttons appearing (n_clicks empty).
_CLICKED = """function (_clicks) {
    var dc = window.dash_clientside, hit = (dc.callback_context.triggered || [])[0];
    if (!hit || !hit.value) { return dc.no_update; }
    var id = JSON.parse(hit.prop_id.slice(0, hit.prop_id.lastIndexOf('.')));
    return {guid: id.guid, at: Date.now()};
}"""
OUTPUTS = ("ad-health", "ad-dead", "ad-jobs", "ad-tokens", "ad-audit")


def start_job(kind: str, repo, days):
    """Start a backfill or a reconcile (of every repository when no repository is given) if this request may
    (a maintainer); what came of it, for the note beside the buttons."""
    who = identity()
    if not allows(who.role, MAINTAINER):
        raise PreventUpdate
    repo = (inputs.text(repo, "ad-backfill-repo.value", max_len=200) or "").strip()
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))):
        days = None
    svc = services()
    target = repo or (None if kind == "reconcile" else "")
    try:
        job_id = backfills.start(svc, target, days=days if kind == "backfill" else None, kind=kind, origin="page")
    except backfills.Refused as exc:
        return html.Span(f"Not started: {exc}.", className="text-danger-emphasis", id="ad-backfill-note-text")
    return html.Span(f"{kind.capitalize()} of {repo or backfills.EVERY_REPO} started (job {job_id}): its progress "
                     "is below.", id="ad-backfill-note-text")


def register() -> None:
    @callback(*[Output(o, "children") for o in OUTPUTS], Output("ad-poll", "disabled"),
              Input("live-version", "data"), Input("ad-poll", "n_intervals"), Input("ad-backfill-note", "children"))
    def _sections(_version, _ticks, _note):
        return sections()

    @callback(Output("ad-token-note", "children"), Output("ad-tokens", "children", allow_duplicate=True),
              Input("ad-token-issue", "n_clicks"), State("ad-token-name", "value"), State("ad-token-role", "value"),
              State("ad-token-days", "value"), prevent_initial_call=True)
    def _issue(clicks, name, role, days):
        if not clicks:
            raise PreventUpdate
        name = inputs.text(name, "ad-token-name.value", max_len=400) or ""
        role = inputs.text(role, "ad-token-role.value", max_len=20)
        if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))):
            days = -1  # refused by the check, with its message
        return token_action(issue_args=(name, role, days))

    @callback(Output("ad-token-note", "children", allow_duplicate=True),
              Output("ad-tokens", "children", allow_duplicate=True),
              Input({"type": "ad-revoke", "id": ALL}, "n_clicks"), prevent_initial_call=True)
    def _revoke(clicks):
        hit = ctx.triggered_id
        if not isinstance(hit, dict) or not inputs.clicked(clicks):
            raise PreventUpdate
        return token_action(revoke_id=inputs.integer(hit.get("id"), "ad-revoke.id", lo=1))

    @callback(Output("ad-archives", "children"), Input("live-version", "data"))
    def _archives(_version):
        return archives_section()

    @callback(Output("ad-backfill-note", "children"), Input("ad-backfill-start", "n_clicks"),
              Input("ad-reconcile-start", "n_clicks"), State("ad-backfill-repo", "value"),
              State("ad-backfill-days", "value"), prevent_initial_call=True)
    def _start(backfill_clicks, reconcile_clicks, repo, days):
        kind = {"ad-backfill-start": "backfill", "ad-reconcile-start": "reconcile"}.get(ctx.triggered_id)
        if kind is None or not (backfill_clicks or reconcile_clicks):
            raise PreventUpdate
        return start_job(kind, repo, days)

    clientside_callback(_CLICKED, Output("ad-replay-request", "data"),
                        Input({"type": "ad-replay", "guid": ALL}, "n_clicks"), prevent_initial_call=True)

    @callback(*[Output(o, "children", allow_duplicate=True) for o in OUTPUTS],
              Output("ad-poll", "disabled", allow_duplicate=True), Input("ad-replay-request", "data"),
              prevent_initial_call=True)
    def _replay(request):
        request = inputs.record(request, "ad-replay-request.data", REPLAY_REQUEST)
        if not request["guid"]:
            raise PreventUpdate
        return replay(None if request["guid"] == ALL_GUIDS else request["guid"])
