"""The metric cards (success rate, build and queue times, active builds...) for a selection."""
import time

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from ingest.state import ACTIVE_STATUSES, FAILED
from store import metrics
from store.queries.filters import Filters
from store.schema import runattempts, workflowruns

w = workflowruns.c


def _sum(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def metric_cards(conn: Connection, filters: Filters, *, now: float | None = None, stale_hours: float = 24) -> dict:
    """Every card of metrics.md for the runs `filters` selects."""
    now = time.time() if now is None else now
    cond = filters.conditions()
    completed = w.status == "completed"
    row = conn.execute(
        select(
            func.count(),
            _sum(and_(completed, w.conclusion == "success")),
            _sum(and_(completed, w.conclusion.in_(FAILED))),
            _sum(and_(completed, w.conclusion == "cancelled")),
        ).where(*cond)
    ).one()
    build_times = conn.execute(
        select(w.runtime).where(*cond, completed, w.conclusion.in_(("success",) + FAILED), w.runtime.is_not(None))
    ).scalars().all()
    queue_times = conn.execute(
        select(runattempts.c.queuetime)
        .join(workflowruns, workflowruns.c.id == runattempts.c.run)
        .where(*cond, runattempts.c.queuetime.is_not(None))
    ).scalars().all()
    active, stale = _active_and_stale(conn, filters, now - stale_hours * 3600)
    return metrics.cards(
        runs=row[0], success=row[1], failed=row[2], cancelled=row[3],
        build_times=build_times, queue_times=queue_times, tts=time_to_signal(conn, filters),
        active=active, stale=stale,
    )


def _active_and_stale(conn: Connection, filters: Filters, cutoff: float) -> tuple[int, int]:
    """Unfinished runs, whatever the time window: updated since `cutoff` or not."""
    updated = func.coalesce(w.updatetime, w.createtime)
    row = conn.execute(
        select(_sum(updated >= cutoff), _sum(updated < cutoff)).where(
            *filters.without_window().conditions(), w.status.in_(ACTIVE_STATUSES)
        )
    ).one()
    return row[0], row[1]


def time_to_signal(conn: Connection, filters: Filters) -> list[float]:
    """Per commit and branch: last end minus first creation over first attempts, once all completed."""
    ra = runattempts.c
    query = (
        select(func.max(ra.endtime) - func.min(ra.createtime))
        .join(workflowruns, workflowruns.c.id == ra.run)
        .where(*filters.conditions(), ra.attempt == 1)
        .group_by(w.commitid, w.branch)
        .having(_sum(ra.status != "completed") == 0)
    )
    return [v for v in conn.execute(query).scalars().all() if v is not None]
