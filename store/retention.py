"""How long raw delivery bodies are kept.

A delivery's body is needed until it is applied (and for `init_db.py --replay` while it is a dead
letter); after that the store holds what it meant, and the body is only disk.  Bodies of deliveries
processed more than `days` ago are emptied, in small transactions so the processor's batches are
never held up long; the row (GUID, event, action, repository, times, outcome) stays, so duplicates
are still recognised and the delivery log still counts them.  Dead letters keep their bodies.
SQLite reuses the freed pages for new rows; the file itself only shrinks with VACUUM.
"""
import time

from sqlalchemy import and_, or_, select, update

from store.schema import deliveries

CHUNK = 1000  # bodies emptied per transaction


def drop_old_bodies(engine, days: float, *, now: float | None = None, options: dict | None = None) -> int:
    """Empty the bodies of deliveries processed over `days` ago; how many were emptied (0 when days <= 0)."""
    if days <= 0:
        return 0
    cutoff = (time.time() if now is None else now) - days * 86400
    done = 0
    while True:
        with engine.connect().execution_options(**(options or {})) as conn, conn.begin():
            # `received` is indexed and precedes `processed` (NULL in rows applied before it was logged).
            ids = conn.execute(
                select(deliveries.c.id).where(and_(
                    deliveries.c.received < cutoff,
                    or_(deliveries.c.processed < cutoff, deliveries.c.processed.is_(None)),
                    deliveries.c.outcome != "failed", deliveries.c.body != b""))
                .order_by(deliveries.c.received).limit(CHUNK)).scalars().all()
            if ids:
                conn.execute(update(deliveries).where(deliveries.c.id.in_(ids)).values(body=b""))
        done += len(ids)
        if len(ids) < CHUNK:
            return done
