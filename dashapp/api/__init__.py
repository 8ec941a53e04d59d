"""The REST API: build history, metric cards, one run, CSV export, OpenAPI description.

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
    ApiError,
    attempts_from,
    check_known,
    cursor_from,
    encode_cursor,
    filters_from,
    limit_from,
)
from dashapp.inputs import SQLITE_MAX, parse_int
from dashapp.jsonerrors import error_response, json_routes
from store.queries import builds
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
    """One run by GitHub run id, with its attempts, their jobs (labels, runner, times) and steps."""
    check_known(request.args, ())
    gitid = parse_int(run_id, "run id", lo=1, hi=SQLITE_MAX)  # ASCII digits, within SQLite's integers
    with _services().engine.connect() as conn:
        detail = builds.run_detail(conn, gitid)
    if detail is None:
        raise ApiError(f"no run with id {run_id}", 404)
    return jsonify(detail)


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(openapi())


@bp.route("/<path:anything>")
def unknown(anything: str):
    # Without this, Dash's page catch-all would answer unknown /api/ paths with HTML.
    raise ApiError(f"no API route /api/{anything}; see /api/openapi.json", 404)
