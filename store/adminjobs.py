"""Jobs started from the Admin page (backfills): their state and progress, every query in one place."""
import json
import time

from sqlalchemy import select, update
from sqlalchemy.engine import Connection

from store.schema import admin_jobs

j = admin_jobs.c
INTERRUPTED_AFTER = 300  # seconds without an update after which a running job is shown as interrupted


def start(conn: Connection, *, kind: str, target: str, actor: str, now: float | None = None) -> int:
    now = time.time() if now is None else now
    return int(conn.execute(admin_jobs.insert().values(kind=kind, target=target, state="running", actor=actor,
                                                       started=now, updated=now).returning(j.id)).scalar_one())


def report(conn: Connection, job_id: int, progress: dict, *, state: str = "running", error: str | None = None,
           now: float | None = None) -> None:
    """Record `progress` (and the end, when `state` is done or failed)."""
    now = time.time() if now is None else now
    values = {"progress": json.dumps(progress, sort_keys=True), "updated": now, "state": state, "error": error}
    if state != "running":
        values["finished"] = now
    conn.execute(update(admin_jobs).where(j.id == job_id).values(**values))


def running(conn: Connection, kind: str, target: str, *, now: float | None = None) -> bool:
    """Is a job of `kind` on `target` running (and alive: updated lately)?"""
    now = time.time() if now is None else now
    return conn.execute(select(j.id).where(j.kind == kind, j.target == target, j.state == "running",
                                           j.updated > now - INTERRUPTED_AFTER).limit(1)).first() is not None


def jobs(conn: Connection, *, limit: int = 20, now: float | None = None) -> list[dict]:
    """The newest `limit` jobs; a running one not updated for INTERRUPTED_AFTER seconds says `interrupted`."""
    now = time.time() if now is None else now
    rows = conn.execute(select(admin_jobs).order_by(j.started.desc(), j.id.desc()).limit(limit)).mappings().all()
    out = []
    for r in rows:
        state = "interrupted" if r["state"] == "running" and r["updated"] < now - INTERRUPTED_AFTER else r["state"]
        out.append({**dict(r), "state": state, "progress": json.loads(r["progress"]) if r["progress"] else {}})
    return out
