"""A maintainer's repairs: the dead letters (`/api/deliveries`, one with its payload, replay one or all),
backfills (`/api/backfills`) and what retention archived (`/api/archives`).  Replaying hands the deliveries back to the inbox, where the processor applies
them as any other (`ingest.delivery.requeue`); a backfill runs in the background (`dashapp.backfills`).  Each
is written to the audit log."""
import time

from flask import jsonify, request

from dashapp import backfills as backfills_
from dashapp.api import _services, bp
from dashapp.api.openapi import ROUTE_PARAMS
from dashapp.api.params import ApiError, check_known, int_from, json_object, limit_from
from dashapp.inputs import SQLITE_MAX
from dashapp.roles import MAINTAINER
from dashapp.security import audit, requires
from ingest.delivery import requeue
from store import adminjobs, archive
from store.engine import writing
from store.queries import deliveries as dq

MAX_GUID = 100  # X-GitHub-Delivery is a UUID; the webhook refuses longer ones


def _guid(value: str) -> str:
    if not value or len(value) > MAX_GUID or not value.isprintable():
        raise ApiError(f"guid: a delivery's X-GitHub-Delivery (at most {MAX_GUID} characters)", 404)
    return value


def replay(services, guids: list[str] | None, *, origin: str) -> int:
    """Hand dead letters (`guids`, or every one) back to the inbox and write it to the audit log (when anything
    went, or all were asked for); how many went.  The API's routes and the Admin page's buttons both."""
    queued = requeue(services.engine, services.inbox, guids)
    if queued or guids is None:
        with writing(services.engine) as conn:
            audit(conn, "delivery.replay_all" if guids is None else "delivery.replay",
                  None if guids is None else f"delivery:{guids[0]}", {"queued": queued, "from": origin})
    return queued


@bp.get("/deliveries")
@requires(MAINTAINER)
def dead_letters():
    """Deliveries logged failed, newest first, with their errors (`limit`, `offset`)."""
    check_known(request.args, ROUTE_PARAMS["/api/deliveries"])
    limit = limit_from(request.args)
    offset = int_from(request.args, "offset", lo=0, hi=SQLITE_MAX, default=0)
    with _services().engine.connect() as conn:
        items, total = dq.dead_letters(conn, limit=limit, offset=offset)
    return jsonify(items=items, count=len(items), total=total, limit=limit, offset=offset)


@bp.get("/deliveries/<guid>")
@requires(MAINTAINER)
def one_delivery(guid: str):
    check_known(request.args, ())
    with _services().engine.connect() as conn:
        found = dq.delivery(conn, _guid(guid))
    if found is None:
        raise ApiError(f"no delivery {guid[:MAX_GUID]!r}", 404)
    return jsonify(found)


@bp.post("/deliveries/<guid>/replay")
@requires(MAINTAINER)
def replay_one(guid: str):
    """Replay one dead letter; 404 when it is not one (unknown, or applied since)."""
    check_known(request.args, ())
    json_object()
    services = _services()
    queued = replay(services, [_guid(guid)], origin="api")
    if not queued:
        raise ApiError(f"no dead letter {guid[:MAX_GUID]!r} to replay (unknown, applied, or queued already)", 404)
    return jsonify(queued=queued, at=time.time()), 202


@bp.post("/deliveries/replay")
@requires(MAINTAINER)
def replay_all():
    """Replay every dead letter (the oldest 1,000 at a time)."""
    check_known(request.args, ())
    json_object()
    services = _services()
    queued = replay(services, None, origin="api")
    return jsonify(queued=queued, at=time.time()), 202


@bp.get("/backfills")
@requires(MAINTAINER)
def backfills():
    """Backfills and reconciles started from the Admin page or this API, newest first, with their progress."""
    check_known(request.args, ROUTE_PARAMS["/api/backfills"])
    with _services().engine.connect() as conn:
        items = adminjobs.jobs(conn, limit=limit_from(request.args))
    return jsonify(items=items, count=len(items))


@bp.post("/backfills")
@requires(MAINTAINER)
def start_backfill():
    """Backfill a repository from GitHub's REST API in the background: `{"repo": "owner/name", "days": 30}`
    (no `days`: from where the store stops)."""
    check_known(request.args, ())
    body = json_object(shape='{"repo": "owner/name", "days": 30}')
    unknown = sorted(set(body) - {"repo", "days"})
    if unknown:
        raise ApiError(f"unknown field(s): {', '.join(unknown)}; allowed: repo, days")
    days = body.get("days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float))):
        raise ApiError("days: a number of days")
    services = _services()
    try:
        job_id = backfills_.start(services, body.get("repo"), days=None if days is None else float(days))
    except backfills_.Refused as exc:
        raise ApiError(str(exc), exc.status) from None
    return jsonify(id=job_id, repo=body["repo"]), 202


@bp.post("/reconcile")
@requires(MAINTAINER)
def start_reconcile():
    """Re-fetch, in the background, the runs stored as still active for over STALE_HOURS (GitHub's missed
    completions): `{"repo": "owner/name"}`, or `{}` for every repository."""
    check_known(request.args, ())
    body = json_object()
    if set(body) - {"repo"}:
        raise ApiError('the body must be {} or {"repo": "owner/name"}')
    services = _services()
    try:
        job_id = backfills_.start(services, body.get("repo"), kind="reconcile")
    except backfills_.Refused as exc:
        raise ApiError(str(exc), exc.status) from None
    return jsonify(id=job_id, repo=body.get("repo")), 202


@bp.get("/archives")
@requires(MAINTAINER)
def archives():
    """The archive policy (ARCHIVE_AFTER_DAYS), the store's horizon and each archived month's rows and size."""
    check_known(request.args, ())
    services = _services()
    with services.engine.connect() as conn:
        months, cutoff = archive.months(conn), archive.cutoff(conn)
    return jsonify(keep_days=services.config.archive_after_days or None, archived_before=cutoff, months=months)
