"""One webhook delivery, from raw body to committed rows.

`decode` is pure (bytes -> parsed records or an error); `record` runs in the
processor's transaction (`ingest/processor.py`): it logs the delivery,
applies its records in a savepoint and says what changed.  The delivery log
keeps the raw body of every signed delivery, whatever became of it, so
`replay` can re-apply the failed ones (the dead letters) after a fix.
"""
import json
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from ingest.parse import Parsed, PayloadError, parse
from store.prepared import execute_prepared, savepoint
from store.rows import run_select
from store.schema import deliveries, workflowruns
from store.writer import apply

_PREVIOUS = select(deliveries.c.outcome).where(deliveries.c.guid == bindparam("g"))
_INSERT = deliveries.insert()
_UPDATE = deliveries.update().where(deliveries.c.guid == bindparam("g"))
_RUN_ROW = run_select().where(workflowruns.c.gitid == bindparam("g"))
_RUN_ROW_KEYS = tuple(_RUN_ROW.selected_columns.keys())
_JOB_ROW_KEYS = ("gitid", "run_gitid", "attempt", "repo")


@dataclass
class Outcome:
    status: int  # the HTTP status it stands for: 200 applied or duplicate, 400 bad payload, 500 a bug
    outcome: str  # processed | ignored | duplicate | failed
    reason: str = ""
    changes: list = field(default_factory=list)  # what changed, for the live messages


def decode(event: str, body: bytes, content_type: str = "application/json") -> Parsed:
    """Parse a delivery body; raises PayloadError with a reason on bad input."""
    return parse(event, _payload(body, content_type))


def repository_key(row) -> int:
    """A shared inbox row's repository key (`store/inbox.py`): its `repository.full_name` hashed to a signed
    32-bit integer, the second key of an advisory lock; 0 when it has none or its body cannot be read (those
    rows change no repository's state).  Never raises: one unreadable body must not stop the keying of
    the rows behind it."""
    try:
        payload = _payload(bytes(row.body), row.content_type)
    except Exception:  # PayloadError, or anything else a hostile body finds: applying it says what
        return 0
    repo = payload.get("repository") if isinstance(payload, dict) else None
    name = repo.get("full_name") if isinstance(repo, dict) else None
    if not isinstance(name, str):
        return 0
    return zlib.crc32(name.encode("utf-8", "surrogatepass")) - 2 ** 31


def _payload(body: bytes, content_type: str):
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not valid UTF-8 (byte {exc.start})") from None
    if content_type.startswith("application/x-www-form-urlencoded"):
        form = parse_qs(text)
        if "payload" not in form:
            raise PayloadError("form body has no payload field")
        text = form["payload"][0]
    try:
        payload = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PayloadError(f"body is not valid JSON: {str(exc)[:100]}") from None
    return payload


def record(conn: Connection, guid: str, event: str, body: bytes, decoded, received: float | None = None) -> Outcome:
    """Log the delivery and apply it; `decoded` is a Parsed or the PayloadError."""
    received = time.time() if received is None else received
    previous = execute_prepared(conn, "delivery_outcome", _PREVIOUS, {"g": guid}).scalar()
    if previous in ("processed", "ignored"):
        return Outcome(200, "duplicate", f"delivery {guid} was already {previous}")
    if isinstance(decoded, Exception):
        _log(conn, guid, event, None, None, body, received, "failed", str(decoded), previous)
        return Outcome(400, "failed", str(decoded))
    try:
        with savepoint(conn, "apply"):
            changes = apply(conn, decoded.records, now=received)
    except Exception as exc:  # a bug, not bad input: keep the delivery for replay
        reason = f"could not apply delivery: {type(exc).__name__}: {str(exc)[:200]}"
        _log(conn, guid, event, decoded.action, decoded.repo, body, received, "failed", reason, previous)
        return Outcome(500, "failed", reason + " (stored; replay it after a fix)")
    outcome = "ignored" if decoded.ignored else "processed"
    _log(conn, guid, event, decoded.action, decoded.repo, body, received, outcome, decoded.ignored, previous)
    return Outcome(200, outcome, decoded.ignored or "", changes)


def log_failure(conn: Connection, guid: str, event: str, body: bytes, received: float, reason: str) -> None:
    """Log a delivery as failed without applying it (its batch could not be committed with it)."""
    previous = execute_prepared(conn, "delivery_outcome", _PREVIOUS, {"g": guid}).scalar()
    if previous not in ("processed", "ignored"):
        _log(conn, guid, event, None, None, body, received, "failed", reason, previous)


def live_messages(conn: Connection, changes: list[dict]) -> list[dict]:
    """The live messages for `changes`, read in the writer's transaction: a run as the pages show
    it (`store.rows`), a job by its ids.  Published after the commit, in commit order."""
    messages = []
    for change in changes:
        if change["type"] == "run" and change.get("latest"):
            row = execute_prepared(conn, "live_run_row", _RUN_ROW, {"g": change["gitid"]}).first()
            if row is not None:
                messages.append({"type": "run", "row": dict(zip(_RUN_ROW_KEYS, row))})
        elif change["type"] == "job":
            messages.append({"type": "job", "row": {k: change[k] for k in _JOB_ROW_KEYS}})
    return messages


def _log(conn, guid, event, action, repo, body, received, outcome, error, previous) -> None:
    values = dict(event=event, action=action, repo=repo, received=received, outcome=outcome, error=error, body=body,
                  processed=time.time())
    if previous is None:
        execute_prepared(conn, "delivery_insert", _INSERT, {"guid": guid, **values})
    else:
        execute_prepared(conn, "delivery_update", _UPDATE, {"g": guid, **values})


def replay(conn: Connection, *, only_failed: bool = True) -> dict:
    """Re-apply logged deliveries in arrival order; returns counts by outcome."""
    query = select(deliveries.c.guid, deliveries.c.event, deliveries.c.body, deliveries.c.received).order_by(
        deliveries.c.received, deliveries.c.id
    )
    if only_failed:
        query = query.where(deliveries.c.outcome == "failed")
    counts: dict = {}
    for guid, event, body, received in conn.execute(query).all():
        kind = "application/x-www-form-urlencoded" if body.startswith(b"payload=") else "application/json"
        try:
            decoded = decode(event, body, kind)
        except PayloadError as exc:
            decoded = exc
        # Force re-application: forget the previous outcome first.
        conn.execute(deliveries.update().where(deliveries.c.guid == guid).values(outcome="failed"))
        outcome = record(conn, guid, event, body, decoded, received)
        counts[outcome.outcome] = counts.get(outcome.outcome, 0) + 1
    return counts


def requeue(engine, inbox, guids: list[str] | None = None) -> int:
    """Hand dead letters (`guids`, or every one, oldest first) back to the inbox: the processor applies them
    as it applies any delivery, with their derived state, alerts and live updates.  Returns how many went."""
    from store.inbox import Accepted
    from store.queries.deliveries import failed_bodies

    with engine.connect() as conn:
        found = failed_bodies(conn, guids)
    queued = 0
    for guid, event, received, body in found:
        body = bytes(body)
        kind = "application/x-www-form-urlencoded" if body.startswith(b"payload=") else "application/json"
        queued += bool(inbox.append(Accepted(guid, event, kind, received, body)))
    return queued
