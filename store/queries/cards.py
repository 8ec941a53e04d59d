"""The metric cards (success rate, build and queue times, active builds...) for a selection."""
import time
from dataclasses import dataclass, replace

from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from domain.state import ACTIVE_STATUSES, FAILED
from store import metrics
from store.prepared import literals
from store.queries import person, rollup
from store.queries.filters import Filters
from store.schema import rollup_days, runattempts, workflowruns

w = workflowruns.c


def _sum(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


# Up to this many runs in a selection, percentiles are exact (read from the runs); above it
# they come from the rollups' histograms (within 0.5 %, see store.metrics.bucket).
EXACT_LIMIT = 2_000


def metric_cards(conn: Connection, filters: Filters, *, now: float | None = None, stale_hours: float = 24,
                 exact_limit: int = EXACT_LIMIT) -> dict:
    """Every card of metrics.md for the runs `filters` selects."""
    now = time.time() if now is None else now
    if person.served(filters):
        return person.cards(conn, filters, now - stale_hours * 3600)
    if filters.author is not None:
        return _person_cards(conn, filters, now - stale_hours * 3600)
    active, stale = _active_and_stale(conn, filters, now - stale_hours * 3600)
    plan = rollup.scope(conn, filters)
    if plan is not None and plan.branch_ids is not None:
        raw = None if plan.raw is None else _ByBranchIds(plan.raw, plan.branch_ids)
        counts = _rollup_counts(conn, plan, raw)
        if counts["runs"] > exact_limit:
            build, queue, tts = (plan.histogram(conn, kind) for kind in ("build", "queue", "tts"))
            if raw is not None:
                rollup.add_buckets(build, _build_times(conn, raw))
                rollup.add_buckets(queue, _queue_times(conn, raw))
                rollup.add_buckets(tts, time_to_signal(conn, raw))
            return metrics.cards(**counts, build_times=dict(build), queue_times=dict(queue), tts=dict(tts),
                                 active=active, stale=stale)
        exact = _ByBranchIds(filters, plan.branch_ids)
        return metrics.cards(**counts, build_times=_build_times(conn, exact),
                             queue_times=_queue_times(conn, exact), tts=time_to_signal(conn, exact),
                             active=active, stale=stale)
    counts, _n, _total = _run_counts(conn, filters)
    return metrics.cards(**counts, build_times=_build_times(conn, filters), queue_times=_queue_times(conn, filters),
                         tts=time_to_signal(conn, filters), active=active, stale=stale)


def _person_cards(conn: Connection, filters: Filters, cutoff: float) -> dict:
    """The cards of one person's runs, from one read of all their runs (whatever the window) and attempts.

    A person's runs are few (an author filter is an id list SQLite would re-read for every
    query of the general path) and the window needs them all anyway: active builds and
    time to signal look beyond it.  Same numbers as the general path (a test compares them).
    """
    ra = runattempts.c
    rows = conn.execute(
        select(w.id, w.commitid, w.branch, w.createtime, w.updatetime, w.status, w.conclusion, w.runtime,
               ra.attempt, ra.createtime, ra.endtime, ra.status, ra.queuetime)
        .select_from(workflowruns.outerjoin(runattempts, ra.run == w.id))
        .where(*filters.without_window().conditions())
    ).all()

    def in_window(t) -> bool:
        return t is not None and (filters.since is None or t >= filters.since) and \
            (filters.until is None or t < filters.until)

    runs, queue_times, groups = {}, [], {}
    for (run_id, commit, branch, created, updated, status, conclusion, runtime,
         attempt, a_created, a_end, a_status, a_queue) in rows:
        runs[run_id] = (created, updated, status, conclusion, runtime)
        if attempt is not None and in_window(created) and a_queue is not None:
            queue_times.append(a_queue)
        if attempt == 1:
            groups.setdefault((commit, branch), []).append((a_created, a_end, a_status))
    success = failed = cancelled = window_runs = active = stale = 0
    build_times = []
    for created, updated, status, conclusion, runtime in runs.values():
        last_seen = updated if updated is not None else created
        if status in ACTIVE_STATUSES and last_seen is not None:  # as the SQL: no time, neither
            active += last_seen >= cutoff
            stale += last_seen < cutoff
        if not in_window(created):
            continue
        window_runs += 1
        if status == "completed":
            success += conclusion == "success"
            failed += conclusion in FAILED
            cancelled += conclusion == "cancelled"
            if conclusion in ("success",) + FAILED and runtime is not None:
                build_times.append(runtime)
    tts = []
    for firsts in groups.values():
        created = [c for c, _e, _s in firsts if c is not None]
        ended = [e for _c, e, _s in firsts if e is not None]
        if created and ended and all(st == "completed" for _c, _e, st in firsts) and in_window(min(created)):
            tts.append(max(ended) - min(created))
    return metrics.cards(runs=window_runs, success=success, failed=failed, cancelled=cancelled,
                         build_times=build_times, queue_times=queue_times, tts=tts, active=active, stale=stale)


def _run_counts(conn: Connection, filters: Filters) -> tuple[dict, int, float]:
    """Run counts and the build-time mean; with the number and sum of build times."""
    completed = w.status == "completed"
    build = and_(completed, w.conclusion.in_(("success",) + FAILED), w.runtime.is_not(None))
    row = conn.execute(
        select(
            func.count(),
            _sum(and_(completed, w.conclusion == "success")),
            _sum(and_(completed, w.conclusion.in_(FAILED))),
            _sum(and_(completed, w.conclusion == "cancelled")),
            _sum(build),
            func.coalesce(func.sum(case((build, w.runtime), else_=0.0)), 0.0),
        ).where(*filters.conditions())
    ).one()
    return ({"runs": row[0], "success": row[1], "failed": row[2], "cancelled": row[3],
             "build_time_avg": row[5] / row[4] if row[4] else None}, row[4], row[5])


@dataclass(frozen=True)
class _ByBranchIds:
    """`filters` with its branch given as the ids the rollup scope resolved.  With the branch's name
    (an id subquery) SQLite read the runs through another index, e.g. every completed run of every
    repository for one branch's build times (`EXPLAIN QUERY PLAN`: idx_workflowruns_status); with
    the ids it reads the branch's runs through (branch, createtime)."""
    filters: Filters
    branch_ids: tuple

    author = None  # the person's cards never come here

    @property
    def since(self):
        return self.filters.since

    @property
    def until(self):
        return self.filters.until

    def conditions(self, *, window: bool = True) -> list:
        # The ids are of the repository's branches (the scope resolved them with it) and a run's branch
        # is its repository's (the writer resolves it by repository and name): the repository condition
        # would only offer SQLite its (repo, createtime) index, which reads every branch of the window.
        return [w.branch.in_(self.branch_ids), *replace(self.filters, branch=None, repo=None).conditions(window=window)]

    def without_window(self) -> "_ByBranchIds":
        return _ByBranchIds(self.filters.without_window(), self.branch_ids)


def _rollup_counts(conn: Connection, plan: rollup.Scope, raw=None) -> dict:
    """The counts of the whole days from the rollups, plus the partial day's (`raw`) from the runs."""
    d = rollup_days.c
    row = conn.execute(select(*(func.coalesce(func.sum(c), 0) for c in
                                (d.runs, d.success, d.failed, d.cancelled, d.build_n, d.build_sum)))
                       .where(*plan.conditions())).one()
    runs, success, failed, cancelled, build_n, build_sum = row
    if raw is not None:
        raw, raw_n, raw_sum = _run_counts(conn, raw)
        runs, success, failed, cancelled = (runs + raw["runs"], success + raw["success"], failed + raw["failed"],
                                            cancelled + raw["cancelled"])
        build_n, build_sum = build_n + raw_n, build_sum + raw_sum
    return {"runs": runs, "success": success, "failed": failed, "cancelled": cancelled,
            "build_time_avg": build_sum / build_n if build_n else None}


_BUILD = (w.status == "completed", w.conclusion.in_(("success",) + FAILED), w.runtime.is_not(None))


def _build_times(conn: Connection, filters: Filters) -> list[float]:
    """Build times (metrics.md): completed success/failed latest attempts with a runtime."""
    return conn.execute(select(w.runtime).where(*filters.conditions(), *_BUILD)).scalars().all()


def _queue_times(conn: Connection, filters: Filters) -> list[float]:
    """Queue times of every attempt of the selected runs."""
    return conn.execute(
        select(runattempts.c.queuetime)
        .join(workflowruns, workflowruns.c.id == runattempts.c.run)
        .where(*filters.conditions(), runattempts.c.queuetime.is_not(None))
    ).scalars().all()


def _active_and_stale(conn: Connection, filters: Filters, cutoff: float) -> tuple[int, int]:
    """Unfinished runs, whatever the time window: updated since `cutoff` or not."""
    updated = func.coalesce(w.updatetime, w.createtime)
    # First the few unfinished runs' ids, from the partial index idx_workflowruns_active (SQLite
    # sees it applies only with literal values); then the filters over those rows by id.  As one
    # query, SQLite without statistics preferred scanning a repository's whole history.
    ids = conn.execute(select(w.id).where(w.status.in_(literals(ACTIVE_STATUSES)))).scalars().all()
    active = stale = 0
    for i in range(0, len(ids), 500):
        row = conn.execute(
            select(_sum(updated >= cutoff), _sum(updated < cutoff)).where(
                w.id.in_(ids[i:i + 500]), *filters.without_window().conditions(), w.status.in_(ACTIVE_STATUSES))
        ).one()
        active, stale = active + row[0], stale + row[1]
    return active, stale


def time_to_signal(conn: Connection, filters: Filters) -> list[float]:
    """Per commit and branch: last end minus first creation over first attempts, once all completed.

    A commit counts in the window its first run was created in (as the rollups count it):
    its group is every run the other filters select, and the window picks the groups by
    their first creation.
    """
    ra = runattempts.c
    scope = filters.without_window().conditions()
    first = func.min(ra.createtime)
    if filters.author is not None:
        # A person's runs are few: group all of them (the author filter is an id list, which
        # SQLite re-read per joined row when driven from the window's pairs).
        source, key = workflowruns.join(runattempts, ra.run == w.id), (w.commitid, w.branch)
    else:
        # Driven from the window's (commit, branch) pairs, each group read through its index:
        # a branch's whole history is large.
        pairs = select(w.commitid, w.branch).where(*filters.conditions()).distinct().subquery("in_window")
        source = (pairs.join(workflowruns, and_(w.commitid == pairs.c.commitid, w.branch == pairs.c.branch))
                  .join(runattempts, ra.run == w.id))
        key = (pairs.c.commitid, pairs.c.branch)
    query = (
        select(func.max(ra.endtime) - first)
        .select_from(source)
        .where(*scope, ra.attempt == 1)
        .group_by(*key)
        .having(_sum(ra.status != "completed") == 0)
    )
    if filters.since is not None:
        query = query.having(first >= filters.since)
    if filters.until is not None:
        query = query.having(first < filters.until)
    return [v for v in conn.execute(query).scalars().all() if v is not None]
