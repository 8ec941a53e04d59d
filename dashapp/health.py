"""Is this server able to do its job: the checks behind `/healthz` and `/readyz`.

Ready means a delivery posted now would be stored and applied: the store answers, its and the
inbox's disks are writable with room to spare, the last writes did not fail, and the processor is
keeping up.  Each failed check is a reason, in words an operator can act on; any reason makes the
answer 503, so a load balancer or process manager stops sending work here (or restarts it) while
`/webhook` would only answer errors.  Liveness (`/livez`) is only "the process answers".
"""
import os
import time
from dataclasses import dataclass, field

from sqlalchemy import func, select, text

from store.engine import is_sqlite
from store.schema import deliveries

MB = 1024 * 1024


@dataclass
class Health:
    reasons: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def report(self) -> dict:
        return {"status": "ok" if self.ok else "error", "reasons": self.reasons, **self.details}


def check(services, now: float | None = None) -> Health:
    config = services.config
    now = time.time() if now is None else now
    health = Health()
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            last = conn.execute(select(func.max(deliveries.c.received))).scalar()
            dead = conn.execute(select(func.count()).where(deliveries.c.outcome == "failed")).scalar()
        pending, oldest = services.inbox.pending()
    except Exception as exc:  # the point of a health check: say so, don't raise
        health.details["database"] = f"unreachable: {type(exc).__name__}"
        health.reasons.append(f"the store cannot be read ({type(exc).__name__}: {str(exc)[:200]})")
        return health
    health.details["database"] = "ok"
    last = max(x for x in (last, oldest, 0.0) if x is not None) or None
    lag = 0.0 if oldest is None else max(0.0, now - oldest)
    health.details.update(last_delivery=last, last_delivery_age_s=None if last is None else round(now - last, 1),
                          inbox={"pending": pending, "lag_s": round(lag, 3)}, failed_deliveries=dead)
    for label, path in _files(services):
        health.reasons += disk_reasons(label, path, config.health_min_free_mb)
    for label, failure in (("the inbox", services.inbox.write_failure),
                           ("the store", getattr(services.processor, "write_failure", None))):
        if failure is not None:
            at, error = failure
            health.reasons.append(f"writes to {label} are failing ({error}, {round(now - at)} s ago)")
    if lag > config.health_max_lag:
        health.reasons.append(f"processing is {lag:.0f} s behind (over HEALTH_MAX_LAG={config.health_max_lag:g} s): "
                              f"{pending} deliveries waiting")
    return health


def _files(services) -> list[tuple[str, str]]:
    found = []
    for label, engine in (("store", services.engine), ("inbox", services.inbox.engine)):
        if is_sqlite(engine) and engine.url.database and engine.url.database != ":memory:":
            path = os.path.abspath(engine.url.database)
            if path not in (known for _label, known in found):
                found.append((label, path))
    return found


def disk_reasons(label: str, path: str, min_free_mb: float) -> list[str]:
    """Why the SQLite file `path` (with its -wal and -journal beside it) cannot be written, if it can't."""
    folder = os.path.dirname(path) or "."
    try:
        fs = os.statvfs(folder)
    except OSError as exc:
        return [f"the {label}'s folder {folder} cannot be examined ({exc.strerror})"]
    if fs.f_flag & os.ST_RDONLY:
        return [f"the {label} is on a read-only filesystem ({folder})"]
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        return [f"the {label} ({path}) is not writable by this process"]
    free_mb = fs.f_bavail * fs.f_frsize / MB
    if free_mb < min_free_mb:
        return [f"the {label}'s disk is nearly full: {free_mb:.0f} MB free at {folder} "
                f"(under HEALTH_MIN_FREE_MB={min_free_mb:g})"]
    return []
