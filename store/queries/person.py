"""One person's metric cards, from the rows the writer keeps per person (`store/derived/people.py`).

The same numbers as `store.queries.cards` computes from the runs (a test compares
them), read from two index ranges: the person's runs in the window (and their
unfinished runs, whatever the window) and their times to signal by first creation.
"""
from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from domain.state import ACTIVE_STATUSES, FAILED
from store import metrics
from store.prepared import literals
from store.queries.filters import Filters
from store.schema import person_runs, person_signals

p = person_runs.c
ps = person_signals.c
_BUILD = ("success",) + FAILED


def served(filters: Filters) -> bool:
    """Whether the person rows can answer `filters`: a person, maybe one repository, any window."""
    return filters.author is not None and all(
        getattr(filters, name) is None for name in ("branch", "workflow", "status", "conclusion", "event"))


def _window(column, filters: Filters) -> list:
    out = []
    if filters.since is not None:
        out.append(column >= filters.since)
    if filters.until is not None:
        out.append(column < filters.until)
    return out


def conditions(filters: Filters) -> list:
    """Conditions on `person_runs` for `filters` (see `served`)."""
    repo = [p.repo == filters.repo] if filters.repo is not None else []
    return [p.person == filters.author, *repo, *_window(p.createtime, filters)]


def run_count(conn: Connection, filters: Filters) -> int:
    return conn.execute(select(func.count()).select_from(person_runs).where(*conditions(filters))).scalar_one()


def cards(conn: Connection, filters: Filters, cutoff: float) -> dict:
    """The cards of `filters` (see `served`); active and stale split at `cutoff` (last seen)."""
    repo = [p.repo == filters.repo] if filters.repo is not None else []
    runs = success = failed = cancelled = 0
    build_times, queues = [], []
    for status, conclusion, runtime, queue in conn.execute(
            select(p.status, p.conclusion, p.runtime, p.queues).where(*conditions(filters))):
        runs += 1
        if status == "completed":
            success += conclusion == "success"
            failed += conclusion in FAILED
            cancelled += conclusion == "cancelled"
            if runtime is not None and conclusion in _BUILD:
                build_times.append(runtime)
        if queue:
            queues.append(queue)
    queue_times = [float(q) for q in " ".join(queues).split()]
    active = stale = 0
    for created, updated in conn.execute(
            select(p.createtime, p.updatetime)
            .where(p.person == filters.author, *repo, p.status.in_(literals(ACTIVE_STATUSES)))):
        last_seen = updated if updated is not None else created
        active += last_seen >= cutoff
        stale += last_seen < cutoff
    repo_signals = [ps.repo == filters.repo] if filters.repo is not None else []
    tts = conn.execute(select(ps.tts).where(ps.person == filters.author, *repo_signals,
                                            *_window(ps.first, filters))).scalars().all()
    return metrics.cards(runs=runs, success=success, failed=failed, cancelled=cancelled, build_times=build_times,
                         queue_times=queue_times, tts=tts, active=active, stale=stale)
