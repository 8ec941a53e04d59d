"""The webhook's deliveries as the Admin page and `/api/deliveries` read them: each repository's health, the
dead letters (deliveries logged failed) and one delivery's payload."""
import json

from sqlalchemy import case, func, select
from sqlalchemy.engine import Connection

from store.schema import deliveries

d = deliveries.c
PAYLOAD_SHOWN = 256 * 1024  # bytes of a payload drawn or answered; the rest is cut (the stored body stays whole)


def health(conn: Connection, *, now: float, hours: float = 24) -> list[dict]:
    """Per repository (None: deliveries that named none, such as pings): the newest delivery, deliveries by
    outcome in the last `hours`, and the newest failure; the most recently heard from first."""
    since = now - hours * 3600
    recent = d.received >= since
    rows = conn.execute(
        select(d.repo, func.max(d.received).label("last"),
               func.sum(case((recent & (d.outcome == "processed"), 1), else_=0)).label("processed"),
               func.sum(case((recent & (d.outcome == "ignored"), 1), else_=0)).label("ignored"),
               func.sum(case((recent & (d.outcome == "failed"), 1), else_=0)).label("failed"),
               func.max(case((d.outcome == "failed", d.received), else_=None)).label("last_failed"),
               func.avg(case((recent & d.processed.is_not(None), d.processed - d.received), else_=None))
               .label("lag"))
        .group_by(d.repo).order_by(func.max(d.received).desc())).mappings().all()
    return [{k: (int(v) if k in ("processed", "ignored", "failed") else v) for k, v in r.items()} for r in rows]


def dead_letters(conn: Connection, *, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    """Deliveries logged failed, newest first (without their bodies), and how many there are."""
    failed = d.outcome == "failed"
    total = conn.execute(select(func.count()).select_from(deliveries).where(failed)).scalar()
    rows = conn.execute(select(d.guid, d.event, d.action, d.repo, d.received, d.error, func.length(d.body)
                               .label("size")).where(failed).order_by(d.received.desc(), d.id.desc())
                        .limit(limit).offset(offset)).mappings().all()
    return [dict(r) for r in rows], total


def delivery(conn: Connection, guid: str) -> dict | None:
    """One delivery with its payload: pretty JSON when it is JSON (a form-encoded body shown as sent), cut at
    PAYLOAD_SHOWN bytes.  GitHub's payloads carry no secret of this server: the signature is not stored."""
    row = conn.execute(select(deliveries).where(d.guid == guid)).mappings().first()
    if row is None:
        return None
    body = bytes(row["body"])
    try:
        text = json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        text = body.decode("utf-8", errors="replace")
    cut = len(text.encode()) > PAYLOAD_SHOWN
    return {**{k: row[k] for k in ("guid", "event", "action", "repo", "received", "outcome", "error", "processed")},
            "size": len(body), "payload": text.encode()[:PAYLOAD_SHOWN].decode("utf-8", errors="ignore"),
            "payload_cut": cut}


def failed_bodies(conn: Connection, guids: list[str] | None = None, *, limit: int = 1000) -> list:
    """(guid, event, received, body) of dead letters to replay, oldest first: `guids`, or every one."""
    query = select(d.guid, d.event, d.received, d.body).where(d.outcome == "failed")
    if guids is not None:
        query = query.where(d.guid.in_(guids))
    return conn.execute(query.order_by(d.received, d.id).limit(limit)).all()
