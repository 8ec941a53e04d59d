"""The REST API: build history, metric cards, one run, CSV export, failure groups, flaky jobs, OpenAPI description.

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
    limit_from,
)
from dashapp.inputs import SQLITE_MAX, parse_int
from dashapp.jsonerrors import error_response, json_routes
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


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi())


@bp.route("/<path:anything>")
def unknown(anything: str):
    # Without this, Dash's page catch-all would answer unknown /api/ paths with HTML.
    raise ApiError(f"no API route /api/{anything}; see /api/openapi.json", 404)
