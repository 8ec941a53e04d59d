"""Rollups: the numbers of long windows, pre-aggregated and kept current by every write.

The seed's "metric aggregation jobs", done inside the write itself: every
write of a run marks the (branch, UTC day) it touches, and before the
transaction commits those days are recomputed from the runs (`refresh`), so
a rollup is never behind the runs it sums.  Readers add up rollup rows for
the whole days of a window and read runs only for its partial first day.

- `rollup_days`: per day × branch × workflow, the counts of the metric cards
  and the analysis grid (runs, decisive, success, failed, cancelled, flaky,
  successful, build-time sum) and that day's exact p50/p90 for the chart.
- `rollup_hist`: duration histograms per day and per calendar month ×
  branch × workflow (0 = all workflows) × kind: `build` (build time of
  completed success/failed runs), `queue` (every attempt's queue time),
  `tts` (time to signal of the commits whose first run was created that
  day).  Buckets are `store.metrics.bucket`: whole seconds below 100 s, 1 %
  wide above.

`rebuild` recomputes everything in one ordered pass (migrations, the bench
generator); `refresh` the marked days (the writer).  Both use `summarize`.
"""
import datetime as dt
from collections import Counter, defaultdict
from functools import lru_cache

from sqlalchemy import and_, bindparam, case, delete, insert, select
from sqlalchemy.engine import Connection

from ingest.state import DECISIVE, FAILED
from store import metrics
from store.schema import jobs, rollup_days, rollup_hist, runattempts, steps, workflowruns

DAY = 86400
ALL_WORKFLOWS = 0
KINDS = ("build", "queue", "tts")
FAILED_JOB = ("failure", "timed_out")
w = workflowruns.c
ra = runattempts.c

# One row per attempt of each run (a run with no attempt stored yields one row of None attempt fields).
_ROW = (w.id, w.workflow, w.repo, w.commitid, w.createtime, w.status, w.conclusion, w.runtime, w.starttime,
        w.queuetime, w.run_attempt, ra.attempt, ra.createtime, ra.endtime, ra.status, ra.conclusion, ra.queuetime)
(ID, WORKFLOW, REPO, COMMIT, CREATED, STATUS, CONCLUSION, RUNTIME, STARTED, QUEUE, LATEST,
 A_NUM, A_CREATED, A_END, A_STATUS, A_CONCLUSION, A_QUEUE) = range(len(_ROW))


def day_of(t: float) -> int:
    return int(t // DAY)


def month_of(day: int) -> int:
    """The first day (UTC day number) of the calendar month holding `day`."""
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return (date.replace(day=1) - dt.date(1970, 1, 1)).days


def next_month(month: int) -> int:
    return month_of(month + 32)


# --- pure: rows of one branch -> rollup rows ------------------------------------------------------

def summarize(branch: int, rows, days: set[int] | None = None) -> tuple[list[dict], Counter]:
    """The `rollup_days` rows and day histograms ({(workflow, kind, day, bucket): n}) of `rows`.

    `rows` are `_ROW` tuples of one branch, every attempt of each run; for time to signal
    they must hold every run of each commit they name (a commit's runs may span days).
    Only `days` are summarized (all when None).
    """
    runs: dict[int, dict] = {}
    for row in rows:
        run = runs.get(row[ID])
        if run is None:
            run = runs[row[ID]] = {"row": row, "attempts": []}
        if row[A_NUM] is not None:
            run["attempts"].append(row)
    per_day: dict[tuple[int, int], dict] = {}
    hist: Counter = Counter()
    samples: dict[tuple[int, int], tuple[list, list]] = defaultdict(lambda: ([], []))
    groups: dict[tuple, list] = defaultdict(list)  # (commit, workflow or 0) -> first attempts
    for run in runs.values():
        row = run["row"]
        attempts = sorted(run["attempts"], key=lambda a: a[A_NUM])
        for a in attempts:
            if a[A_NUM] == 1:
                groups[(row[COMMIT], row[WORKFLOW])].append(a)
                groups[(row[COMMIT], ALL_WORKFLOWS)].append(a)
        if row[CREATED] is None:
            continue
        day = day_of(row[CREATED])
        if days is not None and day not in days:
            continue
        key = (day, row[WORKFLOW])
        out = per_day.get(key)
        if out is None:
            out = per_day[key] = {"day": day, "branch": branch, "workflow": row[WORKFLOW], "repo": row[REPO],
                                  "runs": 0, "decisive": 0, "success": 0, "failed": 0, "cancelled": 0, "flaky": 0,
                                  "successful": 0, "build_n": 0, "build_sum": 0.0, "last_run": row[CREATED]}
        completed = row[STATUS] == "completed"
        conclusion = row[CONCLUSION]
        flaky = _is_flaky(row, attempts)
        out["runs"] += 1
        out["decisive"] += completed and conclusion in DECISIVE
        out["success"] += completed and conclusion == "success"
        out["failed"] += completed and conclusion in FAILED
        out["cancelled"] += completed and conclusion == "cancelled"
        out["flaky"] += flaky
        out["successful"] += completed and conclusion == "success" and not flaky
        out["last_run"] = max(out["last_run"], row[CREATED])
        builds, queues = samples[key]
        if completed and conclusion in ("success",) + FAILED and row[RUNTIME] is not None:
            out["build_n"] += 1
            out["build_sum"] += row[RUNTIME]
            builds.append(row[RUNTIME])
            for wf in (row[WORKFLOW], ALL_WORKFLOWS):
                hist[(wf, "build", day, metrics.bucket(row[RUNTIME]))] += 1
        if row[STARTED] is not None and row[QUEUE] is not None:
            queues.append(row[QUEUE])
        for a in attempts:
            if a[A_QUEUE] is not None:
                for wf in (row[WORKFLOW], ALL_WORKFLOWS):
                    hist[(wf, "queue", day, metrics.bucket(a[A_QUEUE]))] += 1
    for key, out in per_day.items():
        builds, queues = samples[key]
        out["build_p50"], out["build_p90"] = metrics.percentile(builds, 50), metrics.percentile(builds, 90)
        out["queue_p50"], out["queue_p90"] = metrics.percentile(queues, 50), metrics.percentile(queues, 90)
    for (_commit, wf), firsts in groups.items():
        signal = time_to_signal(firsts)
        if signal is None:
            continue
        day, value = signal
        if days is None or day in days:
            hist[(wf, "tts", day, metrics.bucket(value))] += 1
    return list(per_day.values()), hist


def time_to_signal(first_attempts) -> tuple[int, float] | None:
    """(day of the first creation, max end − min creation) of a commit's first attempts, once all completed."""
    if not first_attempts or any(a[A_STATUS] != "completed" for a in first_attempts):
        return None
    created = [a[A_CREATED] for a in first_attempts if a[A_CREATED] is not None]
    ended = [a[A_END] for a in first_attempts if a[A_END] is not None]
    if not created or not ended:
        return None
    return day_of(min(created)), max(ended) - min(created)


def _is_flaky(row, attempts) -> bool:
    """An attempt failed and a later attempt succeeded (metrics.md's flaky run)."""
    if (row[LATEST] or 1) <= 1:
        return False
    failed_seen = False
    for a in attempts:
        if failed_seen and a[A_CONCLUSION] == "success":
            return True
        failed_seen = failed_seen or a[A_CONCLUSION] in FAILED
    return False


# --- I/O: reading runs, writing rollup rows -------------------------------------------------------

def _attempt_rows(conn: Connection, *conditions):
    query = (select(*_ROW).select_from(workflowruns.outerjoin(runattempts, ra.run == w.id))
             .where(*conditions).order_by(w.createtime, w.id, ra.attempt))
    return [tuple(r) for r in conn.execute(query).all()]


def mark(conn: Connection, branch_days) -> None:
    """Note (branch id, day) pairs to refresh before this connection's transaction commits."""
    conn.info.setdefault("rollups_dirty", set()).update(branch_days)


def flush(conn: Connection) -> None:
    """Refresh the days `mark` noted on this connection."""
    dirty = conn.info.pop("rollups_dirty", None)
    if dirty:
        refresh(conn, dirty)


def refresh(conn: Connection, branch_days) -> None:
    """Recompute the rollups of each (branch id, UTC day) in `branch_days` from the runs."""
    by_branch: dict[int, set[int]] = defaultdict(set)
    for branch, day in branch_days:
        if branch is not None and day is not None:
            by_branch[int(branch)].add(int(day))
    for branch, days in sorted(by_branch.items()):
        for day in sorted(days):
            rows = _attempt_rows(conn, w.branch == branch, w.createtime >= day * DAY, w.createtime < (day + 1) * DAY)
            # Time to signal needs each commit's runs on other days too (first attempts suffice).
            commits = sorted({r[COMMIT] for r in rows})
            for i in range(0, len(commits), 500):
                rows += _attempt_rows(conn, w.branch == branch, w.commitid.in_(commits[i:i + 500]),
                                      ~and_(w.createtime >= day * DAY, w.createtime < (day + 1) * DAY),
                                      ra.attempt == 1)
            day_rows, hist = summarize(branch, rows, {day})
            _write(conn, branch, {day}, day_rows, hist)


def _write(conn: Connection, branch: int, days: set[int], day_rows: list[dict], hist: Counter) -> None:
    """Make the rollups of `days` of `branch` these, and move their months' histograms by the difference.

    Only rows that differ are written: a refresh after one new run changes a few rows of a
    busy branch's day, not its hundreds.
    """
    h, d = rollup_hist.c, rollup_days.c
    day_list = sorted(days)
    old_hist, old_days = Counter(), {}
    for i in range(0, len(day_list), 500):
        chunk = day_list[i:i + 500]
        for wf, kind, period, b, n in conn.execute(
                select(h.workflow, h.kind, h.period, h.bucket, h.n)
                .where(h.span == "day", h.branch == branch, h.period.in_(chunk))).all():
            old_hist[(wf, kind, period, b)] += n
        for row in conn.execute(select(rollup_days).where(d.branch == branch, d.day.in_(chunk))).mappings():
            old_days[(row["workflow"], row["day"])] = dict(row)
    new_days = {(r["workflow"], r["day"]): r for r in day_rows}
    stale = [k for k, row in old_days.items() if new_days.get(k) != row]
    if stale:
        conn.execute(delete(rollup_days).where(d.branch == branch, d.workflow == bindparam("wf"),
                                               d.day == bindparam("dd")), [{"wf": wf, "dd": day} for wf, day in stale])
    fresh = [row for k, row in new_days.items() if old_days.get(k) != row]
    if fresh:
        conn.execute(insert(rollup_days), fresh)
    new_hist = Counter({k: n for k, n in hist.items() if k[3] is not None and n})
    changed = [k for k in set(old_hist) | set(new_hist) if old_hist.get(k) != new_hist.get(k)]
    gone = [k for k in changed if k in old_hist]
    if gone:
        conn.execute(delete(rollup_hist).where(h.span == "day", h.branch == branch, h.workflow == bindparam("wf"),
                                               h.kind == bindparam("k"), h.period == bindparam("p"),
                                               h.bucket == bindparam("b")),
                     [{"wf": wf, "k": kind, "p": period, "b": b} for wf, kind, period, b in gone])
    added = [k for k in changed if k in new_hist]
    if added:
        conn.execute(insert(rollup_hist), [
            {"span": "day", "branch": branch, "workflow": wf, "kind": kind, "period": period, "bucket": b,
             "n": new_hist[(wf, kind, period, b)]} for wf, kind, period, b in added])
    delta = Counter()
    for key in changed:
        wf, kind, period, b = key
        delta[(wf, kind, month_of(period), b)] += new_hist.get(key, 0) - old_hist.get(key, 0)
    delta = {k: n for k, n in delta.items() if n}
    if delta:
        _add_months(conn, branch, delta)


@lru_cache(maxsize=4)
def _month_statements(dialect_name: str):
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if dialect_name == "postgresql" else sqlite
    ins = dialect.insert(rollup_hist)
    add = ins.on_conflict_do_update(index_elements=[c for c in rollup_hist.primary_key.columns],
                                    set_={"n": rollup_hist.c.n + ins.excluded.n})
    empty = delete(rollup_hist).where(rollup_hist.c.span == "month", rollup_hist.c.n <= 0,
                                      rollup_hist.c.branch == bindparam("b"))
    return add, empty


def _add_months(conn: Connection, branch: int, delta: dict) -> None:
    add, empty = _month_statements(conn.dialect.name)
    conn.execute(add, [{"span": "month", "branch": branch, "workflow": wf, "kind": kind, "period": period,
                        "bucket": b, "n": n} for (wf, kind, period, b), n in delta.items()])
    if any(n < 0 for n in delta.values()):
        conn.execute(empty, {"b": branch})


def rebuild(conn: Connection) -> None:
    """Recompute every rollup (and every failed run's failing job and step) from the runs.

    One pass over the runs ordered by branch: a branch's rows are summarized at once.
    """
    conn.execute(delete(rollup_days))
    conn.execute(delete(rollup_hist))
    update_failure_causes(conn)
    result = conn.execute(
        select(*_ROW, w.branch).select_from(workflowruns.outerjoin(runattempts, ra.run == w.id))
        .order_by(w.branch, w.createtime, w.id, ra.attempt))
    current, rows = None, []
    while True:
        batch = result.fetchmany(20000)
        for row in batch:
            if row[-1] != current and rows:
                _rebuild_branch(conn, current, rows)
                rows = []
            current = row[-1]
            rows.append(tuple(row[:-1]))
        if not batch:
            break
    if rows:
        _rebuild_branch(conn, current, rows)


def _rebuild_branch(conn: Connection, branch: int, rows: list) -> None:
    day_rows, hist = summarize(branch, rows)
    _write(conn, branch, {r["day"] for r in day_rows} | {k[2] for k in hist}, day_rows, hist)


def update_failure_causes(conn: Connection, run_gitids=None) -> None:
    """Set `fail_job`, `fail_step`, `fail_step_number` of runs (all failed runs when None) from their jobs."""
    stmt = _cause_statement(conn.dialect.name, run_gitids is None)
    if run_gitids is None:
        conn.execute(stmt)
    elif run_gitids:
        conn.execute(stmt, [{"g": g} for g in sorted(set(run_gitids))])


@lru_cache(maxsize=8)
def _cause_statement(_dialect_name: str, every_failed: bool):
    failed = and_(w.status == "completed", w.conclusion.in_(FAILED))
    fj = jobs.alias("failing_job")  # an alias: the outer lookups of its name must not correlate to it
    failing_job = (
        select(fj.c.id)
        .where(fj.c.run_gitid == w.gitid, fj.c.run_attempt == w.run_attempt, fj.c.conclusion.in_(FAILED_JOB))
        .order_by(fj.c.endtime.is_(None), fj.c.endtime, fj.c.name, fj.c.gitid)
        .limit(1).correlate(workflowruns).scalar_subquery()  # the updated run, two levels up
    )
    first_step = (select(steps.c.number, steps.c.name)
                  .where(steps.c.job == failing_job, steps.c.conclusion == "failure")
                  .order_by(steps.c.number).limit(1))
    values = {
        "fail_job": case((failed, select(jobs.c.name).where(jobs.c.id == failing_job).scalar_subquery()),
                         else_=None),
        "fail_step": case((failed, first_step.with_only_columns(steps.c.name).scalar_subquery()), else_=None),
        "fail_step_number": case((failed, first_step.with_only_columns(steps.c.number).scalar_subquery()),
                                 else_=None),
    }
    stmt = workflowruns.update().values(**values)
    return stmt.where(failed) if every_failed else stmt.where(w.gitid == bindparam("g"))
