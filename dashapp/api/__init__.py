"""The REST API: build history, metric cards, one run, CSV export, failure groups, flaky jobs, alerts, OpenAPI
description.

Every route reads `Filters` from the query string the same way (see
`dashapp.api.params`), so `/api/metrics` with the filters of `/api/builds`
describes exactly the runs listed there, and both equal the pages' cards.
"""
import time
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, jsonify, request, stream_with_context
from werkzeug.exceptions import HTTPException

from dashapp.api import csvexport
from dashapp.api.openapi import ROUTE_PARAMS, openapi
from dashapp.api.params import (
    MAX_MIN_RUNS,
    ApiError,
    attempts_from,
    check_known,
    cursor_from,
    encode_cursor,
    filters_from,
    fingerprint_from,
    flag_from,
    fraction_from,
    int_from,
    json_object,
    limit_from,
)
from dashapp.inputs import SQLITE_MAX, parse_int
from dashapp.jsonerrors import error_response, json_routes
from dashapp.roles import MAINTAINER, allows
from dashapp.security import audit, identity, requires
from store.engine import writing
from store.queries import alerts as alert_queries
from store.queries import builds, failures, flakes
from store.queries.cards import metric_cards

bp = Blueprint("api", __name__, url_prefix="/api")


def _services():
    return current_app.extensions["buildmon"]


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return jsonify(error=exc.message), exc.status


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException):
    return error_response(exc)


# Errors that reach no view of the blueprint (405 from routing, 413 from the body) are JSON too.
bp.record_once(lambda state: json_routes(state.app, bp.url_prefix + "/"))


@bp.get("/builds")
def list_builds():
    """A page of build history, newest first, with the total and the next page's cursor."""
    check_known(request.args, ROUTE_PARAMS["/api/builds"])
    filters = filters_from(request.args)
    attempts = attempts_from(request.args)
    limit = limit_from(request.args)
    after = cursor_from(request.args, attempts)
    with _services().engine.connect() as conn:
        rows = builds.page(conn, filters, attempts=attempts, limit=limit + 1, after=after)
        total = builds.count(conn, filters, attempts=attempts)
    more = len(rows) > limit
    rows = rows[:limit]
    cursor = encode_cursor(builds.row_key(rows[-1], attempts), attempts) if more else None
    next_url = None
    if cursor:
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "cursor"] + [("cursor", cursor)]
        next_url = f"{request.script_root}{request.path}?{urlencode(args)}"
    return jsonify(items=rows, count=len(rows), total=total, limit=limit, attempts=attempts,
                   filters=filters.as_dict(), next_cursor=cursor, next=next_url)


@bp.get("/builds.csv")
def export_builds():
    """Every build the filters select, as a streamed CSV download."""
    check_known(request.args, ROUTE_PARAMS["/api/builds.csv"])
    filters = filters_from(request.args)
    attempts = attempts_from(request.args)
    rows = builds.iter_rows(_services().engine, filters, attempts=attempts)
    response = Response(stream_with_context(csvexport.generate(rows)), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{csvexport.filename(time.time())}"'
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/metrics")
def metrics():
    """The metric cards (metrics.md) for the filters: the same numbers the pages show."""
    check_known(request.args, ROUTE_PARAMS["/api/metrics"])
    now = time.time()
    filters = filters_from(request.args, now=now)
    services = _services()
    with services.engine.connect() as conn:
        cards = metric_cards(conn, filters, now=now, stale_hours=services.config.stale_hours)
    return jsonify(cards)


@bp.get("/runs/<run_id>")
def run(run_id: str):
    """One run by GitHub run id, with its attempts, their jobs (labels, runner, times) and steps; each failed
    job with its failure lines, fingerprint, rule, class, verdict and capture state."""
    check_known(request.args, ())
    gitid = parse_int(run_id, "run id", lo=1, hi=SQLITE_MAX)  # ASCII digits, within SQLite's integers
    with _services().engine.connect() as conn:
        detail = builds.run_detail(conn, gitid)
        if detail is None:
            raise ApiError(f"no run with id {run_id}", 404)
        jobs = [job for attempt in detail["attempts"] for job in attempt["jobs"]] + detail["unmatched_jobs"]
        failed = [job for job in jobs if job["conclusion"] in failures.FAILED_JOB]
        known = failures.job_failures(conn, [job["id"] for job in failed])
    for job in failed:
        job.update(known[job["id"]])
    return jsonify(detail)


@bp.get("/failures")
def failure_groups():
    """Failed jobs grouped by their failure line's fingerprint, with the filters of /api/builds."""
    check_known(request.args, ROUTE_PARAMS["/api/failures"])
    filters = filters_from(request.args)
    limit = limit_from(request.args)
    with _services().engine.connect() as conn:
        groups = failures.groups(conn, filters, limit=limit)
    return jsonify(items=groups, count=len(groups), limit=limit, filters=filters.as_dict())


@bp.get("/failures/<fingerprint>")
def failure_group(fingerprint: str):
    """One failure group: its totals over all time and its occurrences in the filters, newest first."""
    check_known(request.args, ROUTE_PARAMS["/api/failures/{fingerprint}"])
    fingerprint = fingerprint_from(fingerprint)
    filters = filters_from(request.args)
    limit = limit_from(request.args)
    excerpts = flag_from(request.args, "excerpts")
    with _services().engine.connect() as conn:
        summary = failures.summary(conn, fingerprint)
        if summary is None:
            raise ApiError(f"no failed job has the fingerprint {fingerprint}", 404)
        found = failures.occurrences(conn, fingerprint, filters, limit=limit, excerpts=excerpts)
    return jsonify(fingerprint=fingerprint, **summary, verdict=found[0]["verdict"] if found else None,
                   occurrences=found, count=len(found), limit=limit, filters=filters.as_dict())


FLAKY_WINDOW = "30d"  # /api/flaky without since or window


@bp.get("/flaky")
def flaky():
    """Jobs that flaked in the filters, those to quarantine first (for CI to consume)."""
    check_known(request.args, ROUTE_PARAMS["/api/flaky"])
    # Recent behaviour is what a quarantine list is about, and all of a big store's jobs take seconds to read.
    filters = filters_from(request.args, default_window=FLAKY_WINDOW)
    min_runs = int_from(request.args, "min_runs", lo=0, hi=MAX_MIN_RUNS, default=flakes.MIN_RUNS)
    threshold = fraction_from(request.args, "threshold", default=flakes.THRESHOLD)
    limit = limit_from(request.args)
    with _services().engine.connect() as conn:
        items = flakes.flaky_jobs(conn, filters, min_runs=min_runs, threshold=threshold, limit=limit)
    return jsonify(items=items, count=len(items), min_runs=min_runs, threshold=threshold, limit=limit,
                   filters=filters.as_dict())


# -- alerts (alerts/): their configuration, breaks and messages, and a test message per channel --------

MAX_CHANNEL_NAME = 200  # a channel's name in the path; a longer one names no channel


def alert_config():
    """The running server's `AlertConfig`, None when ALERTS_CONFIG is not set."""
    return getattr(_services(), "alerts", None)


def channel_data(channel) -> dict:
    """What the API and the page show of a channel: never its secrets (`Channel.describe` leaves them out)."""
    return {"name": channel.name, "type": channel.type, "description": channel.describe()}


def _rule_data(rule) -> dict:
    return {"name": rule.name, "repos": list(rule.repos), "workflows": list(rule.workflows),
            "branches": list(rule.branches), "consecutive": rule.consecutive,
            "ignore_verdicts": sorted(rule.ignore_verdicts), "channels": list(rule.channels),
            "red_hours": rule.red_hours, "stale": rule.stale}


def refusal_to_test(config) -> str | None:
    """Why this request may not send a test message, or None when it may: a maintainer's action.

    A protected server (sign-in, API_TOKENS, DASHBOARD_USERS) knows who asks (`dashapp.security`); an
    unprotected one takes it only from this host: else anyone who reaches the server could make it post to
    every channel.  The client is the one past TRUSTED_PROXIES, and a proxy on this host that nobody declared
    does not make its clients local.
    """
    who = identity()
    if allows(who.role, MAINTAINER):
        return None
    if not config.protected:
        return ("sending a test message needs a protected server (sign-in, API_TOKENS or DASHBOARD_USERS) "
                "or a client on the server's own host")
    return f"sending a test message needs the maintainer role; {who.actor} is a {who.role}"


@bp.get("/alerts")
def alerts():
    """The alert rules and channels (never their secrets), the open breaks, the closed ones (newest closed
    first, `limit` from `offset`) and the newest `limit` messages with their delivery state."""
    check_known(request.args, ROUTE_PARAMS["/api/alerts"])
    limit = limit_from(request.args)
    offset = int_from(request.args, "offset", lo=0, hi=SQLITE_MAX, default=0)
    config = alert_config()
    now = time.time()
    with _services().engine.connect() as conn:
        found = {"open": alert_queries.open_breaks(conn, now=now),
                 "history": alert_queries.history(conn, limit=limit, offset=offset),
                 "messages": alert_queries.messages(conn, limit=limit),
                 "counts": alert_queries.counts(conn)}
    return jsonify(
        configured=config is not None,
        channels=[channel_data(c) for c in config.channels.values()] if config else [],
        rules=[_rule_data(r) for r in config.rules] if config else [],
        operator=None if config is None or config.operator is None else {
            "channels": list(config.operator.channels), "max_lag_seconds": config.operator.max_lag_seconds,
            "max_failed_deliveries": config.operator.max_failed_deliveries},
        **found, limit=limit, offset=offset, now=now)


@bp.post("/alerts/channels/<name>/test")
@requires(MAINTAINER)
def test_channel(name: str):
    """Send a test message to one channel now, and say how it went (the message is in the outbox too)."""
    check_known(request.args, ())
    json_object()
    refusal = refusal_to_test(_services().config)
    if refusal:
        raise ApiError(refusal, 403)
    config = alert_config()
    if config is None:
        raise ApiError("alerts are not configured: set ALERTS_CONFIG (see the README, Alerts)", 409)
    if len(name) > MAX_CHANNEL_NAME or name not in config.channels:
        shown = name if len(name) <= 80 else name[:80] + "…"
        raise ApiError(f"no channel named {shown!r}; channels: {', '.join(config.channels) or 'none'}", 404)
    from alerts.sender import send_test  # the sender's module loads only when a test is asked for

    services = _services()
    outcome = send_test(services.engine, config, name, publish=services.broadcast)  # open Alerts pages redraw
    with writing(services.engine) as conn:
        audit(conn, "alert.test", f"channel:{name}", {"state": outcome.get("state")})
    return jsonify(channel=name, id=outcome.get("id"), state=outcome.get("state"), error=outcome.get("error"),
                   detail=outcome.get("detail"), delivered=outcome.get("state") == "delivered")


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi())


@bp.route("/<path:anything>")
def unknown(anything: str):
    # Without this, Dash's page catch-all would answer unknown /api/ paths with HTML.
    raise ApiError(f"no API route /api/{anything}; see /api/openapi.json", 404)


from dashapp.api import access, deliveries, views  # noqa: E402,F401  (their routes join the blueprint; they use `bp`)
