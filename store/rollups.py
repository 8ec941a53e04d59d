"""Rollups: the numbers of long windows, pre-aggregated and kept current by every write.

The seed's "metric aggregation jobs", done inside the write itself: every
write of a run marks what it touches (its workflow's day on its branch, and
its commit), and before the transaction commits those are recomputed from
the runs (`refresh`), so a rollup is never behind the runs it sums.  Readers
add up rollup rows for the whole days of a window and read runs only for its
partial first day (`store/queries/rollup.py`).

- `rollup_days`: per branch × workflow × UTC day, the counts of the metric
  cards and the analysis grid (runs, decisive, success, failed, cancelled,
  flaky, successful, build-time sum) and that day's exact p50/p90 for the
  performance chart.
- `rollup_hist`: duration histograms per day and per calendar month ×
  branch × workflow (0 = all workflows) × kind: `build` (build time of
  completed success/failed runs), `queue` (every attempt's queue time),
  `tts` (time to signal of the commits whose first run was created that
  day).  Buckets are `store.metrics.bucket`: whole seconds below 100 s, 1 %
  wide above.
- `rollup_signals`: each commit's time to signal on a branch (per workflow
  and over all), so a refresh can move the `tts` counts by the difference.

A refresh re-reads one workflow's day on one branch (its chart percentiles
need every run) and moves the all-workflows and monthly histograms by
differences (written by `store/rollup_counts.py`).  `rebuild` recomputes everything in one ordered pass
(migrations, the bench generator); a test checks that upkeep in any
delivery order equals a rebuild.  The failing job and step of each
failed run are kept beside them (`store/failure_causes.py`).
"""
import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.engine import Connection

from ingest.state import DECISIVE, FAILED
from store import failure_causes, metrics, rollup_counts, rollup_people, rollup_streaks
from store.prepared import execute_prepared, literals
from store.schema import (ROLLUP_COUNTS as COUNTS, commits, rollup_days, rollup_hist, rollup_pairs, rollup_signals,
                          rollup_workflow_days, runattempts, workflowruns)

DAY = 86400
ALL_WORKFLOWS = 0
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

def summarize(branch: int, rows) -> tuple[list[dict], Counter]:
    """The `rollup_days` rows and build/queue day histograms ({(workflow, kind, day, bucket): n}) of `rows`.

    `rows` are `_ROW` tuples of one branch, every attempt of each run.  Histograms are
    per workflow here; the all-workflows rows are their sums (`_with_all`).
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
    for run in runs.values():
        row = run["row"]
        if row[CREATED] is None:
            continue
        attempts = sorted(run["attempts"], key=lambda a: a[A_NUM])
        day = day_of(row[CREATED])
        key = (day, row[WORKFLOW])
        out = per_day.get(key)
        if out is None:
            out = per_day[key] = {"branch": branch, "workflow": row[WORKFLOW], "day": day, "repo": row[REPO],
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
            hist[(row[WORKFLOW], "build", day, metrics.bucket(row[RUNTIME]))] += 1
        if row[STARTED] is not None and row[QUEUE] is not None:
            queues.append(row[QUEUE])
        for a in attempts:
            if a[A_QUEUE] is not None:
                hist[(row[WORKFLOW], "queue", day, metrics.bucket(a[A_QUEUE]))] += 1
    for key, out in per_day.items():
        builds, queues = samples[key]
        out["build_p50"], out["build_p90"] = metrics.percentile(builds, 50), metrics.percentile(builds, 90)
        out["queue_p50"], out["queue_p90"] = metrics.percentile(queues, 50), metrics.percentile(queues, 90)
    return list(per_day.values()), hist


def signals(rows) -> dict[tuple[int, int], tuple[int, float]]:
    """{(workflow or 0, commit): (day, time to signal)} of the commits in `rows` whose first attempts all completed.

    `rows` must hold every run of each commit they name (first attempts suffice).
    """
    groups: dict[tuple, list] = defaultdict(list)
    for row in rows:
        if row[A_NUM] == 1:
            groups[(row[WORKFLOW], row[COMMIT])].append(row)
            groups[(ALL_WORKFLOWS, row[COMMIT])].append(row)
    out = {}
    for key, firsts in groups.items():
        signal = time_to_signal(firsts)
        if signal is not None:
            out[key] = signal
    return out


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


def _with_all(hist: Counter) -> Counter:
    """Per-workflow build/queue counts plus their all-workflows sums."""
    out = Counter(hist)
    for (wf, kind, day, b), n in hist.items():
        if wf != ALL_WORKFLOWS:
            out[(ALL_WORKFLOWS, kind, day, b)] += n
    return out


def _periods(counts: Counter) -> Counter:
    """{(workflow, kind, day, bucket): n} as `rollup_hist` rows: each count on its day and on its month."""
    out = Counter()
    for (wf, kind, day, b), n in counts.items():
        if b is not None:
            out[("day", wf, kind, day, b)] += n
            out[("month", wf, kind, month_of(day), b)] += n
    return out


def _signal_counts(found: dict) -> Counter:
    out = Counter()
    for (wf, _commit), (day, value) in found.items():
        out[(wf, "tts", day, metrics.bucket(value))] += 1
    return out


# --- I/O: reading runs, writing rollup rows -------------------------------------------------------

def mark(conn: Connection, keys) -> None:
    """Note what a write touched, to refresh before this connection's transaction commits:
    ("day", branch, workflow, day), ("commit", branch, commit) and ("commit_row", repo, sha) keys."""
    conn.info.setdefault("rollups_dirty", set()).update(keys)


def flush(conn: Connection) -> None:
    """Refresh what `mark` noted on this connection."""
    dirty = conn.info.pop("rollups_dirty", None)
    if dirty:
        refresh(conn, dirty)


def refresh(conn: Connection, keys) -> None:
    """Recompute the rollups of the marked (branch, workflow, day)s and commits' signals from the runs.

    A day of one workflow on one branch is read whole (its chart percentiles need every run);
    the all-workflows and monthly histograms and the time-to-signal counts move by differences,
    so a write costs the runs of its own workflow's day, not its branch's.
    """
    keys = sorted(k for k in keys if None not in k)
    pairs = {(key[2], key[1]) for key in keys if key[0] == "day"}
    groups = {(key[1], key[2]) for key in keys if key[0] == "commit"}
    for key in keys:
        if key[0] == "commit_row":  # a commit's author or time: its people and the order of its cells
            commit_id = conn.execute(select(commits.c.id).where(commits.c.repo == key[1],
                                                                commits.c.hash == key[2])).scalar()
            if commit_id is not None:
                failure_causes.update_commit(conn, commit_id)
                commit_pairs = rollup_streaks.pairs_of_commit(conn, commit_id)
                pairs.update(commit_pairs)
                groups.update((br, commit_id) for _wf, br in commit_pairs)  # its branches, from the same read
    for key in keys:
        if key[0] == "day":
            _refresh_day(conn, *key[1:])
    commits_by_branch: dict[int, list] = defaultdict(list)
    for key in keys:
        if key[0] == "commit":
            commits_by_branch[key[1]].append(key[2])
    for branch, commit_ids in commits_by_branch.items():
        _refresh_signals(conn, branch, commit_ids)
    rollup_streaks.refresh(conn, pairs)
    rollup_people.refresh(conn, groups)


_DAY_RUNS = (select(*_ROW).select_from(workflowruns.outerjoin(runattempts, ra.run == w.id))
             .where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime >= bindparam("lo"),
                    w.createtime < bindparam("hi"))
             .order_by(w.createtime, w.id, ra.attempt))
_DAY_KEY = (rollup_days.c.branch == bindparam("br"), rollup_days.c.workflow == bindparam("wf"),
            rollup_days.c.day == bindparam("dd"))
_DAY_ROW = select(rollup_days).where(*_DAY_KEY)
_DAY_DELETE = delete(rollup_days).where(*_DAY_KEY)
_DAY_INSERT = insert(rollup_days)
_DAY_HIST = select(rollup_hist.c.kind, rollup_hist.c.bucket, rollup_hist.c.n).where(
    rollup_hist.c.span == "day", rollup_hist.c.branch == bindparam("br"), rollup_hist.c.workflow == bindparam("wf"),
    rollup_hist.c.kind.in_(literals(("build", "queue"))), rollup_hist.c.period == bindparam("dd"))
_SIGNAL_RUNS = (select(*_ROW).select_from(workflowruns.outerjoin(runattempts, ra.run == w.id))
                .where(w.branch == bindparam("br"), w.commitid == bindparam("c"), ra.attempt == 1))
_SIGNALS = select(rollup_signals.c.workflow, rollup_signals.c.commitid, rollup_signals.c.day, rollup_signals.c.tts) \
    .where(rollup_signals.c.branch == bindparam("br"), rollup_signals.c.commitid == bindparam("c"))
_SIGNAL_DELETE = delete(rollup_signals).where(rollup_signals.c.branch == bindparam("br"),
                                              rollup_signals.c.workflow == bindparam("wf"),
                                              rollup_signals.c.commitid == bindparam("c"))


def _refresh_day(conn: Connection, branch: int, workflow: int, day: int) -> None:
    # Statements compiled once (store/prepared.py): SQLAlchemy's per-call set-up of these small
    # reads and writes cost more than SQLite's work, on every write's commit path.
    key = {"br": branch, "wf": workflow, "dd": day}
    rows = [tuple(r) for r in execute_prepared(conn, "rollup_day_runs", _DAY_RUNS,
                                               {"wf": workflow, "br": branch, "lo": day * DAY,
                                                "hi": (day + 1) * DAY}).all()]
    day_rows, new = summarize(branch, rows)
    found = execute_prepared(conn, "rollup_day_row", _DAY_ROW, key).first()
    old_row = dict(zip((c.name for c in rollup_days.c), found)) if found else None
    new_row = day_rows[0] if day_rows else None
    if old_row != new_row:
        if old_row:
            execute_prepared(conn, "rollup_day_delete", _DAY_DELETE, key)
        if new_row:
            execute_prepared(conn, "rollup_day_insert", _DAY_INSERT, new_row)
        rollup_counts.add_counts(conn, branch, workflow, day, old_row, new_row)
    old = Counter({(workflow, kind, day, b): n for kind, b, n in
                   execute_prepared(conn, "rollup_day_hist", _DAY_HIST, key).all()})
    delta = {k: new.get(k, 0) - old.get(k, 0) for k in set(old) | set(new)}
    _add(conn, branch, _with_all(Counter({k: n for k, n in delta.items() if n})))


def _refresh_signals(conn: Connection, branch: int, commit_ids: list) -> None:
    rows, old = [], {}
    for c in commit_ids:
        rows += [tuple(r) for r in execute_prepared(conn, "rollup_signal_runs", _SIGNAL_RUNS,
                                                    {"br": branch, "c": c}).all()]
        old.update({(wf, c_): (day, value) for wf, c_, day, value in
                    execute_prepared(conn, "rollup_signals", _SIGNALS, {"br": branch, "c": c}).all()})
    new = signals(rows)
    changed = [k for k in set(old) | set(new) if old.get(k) != new.get(k)]
    if not changed:
        return
    gone = [k for k in changed if k in old]
    if gone:
        execute_prepared(conn, "rollup_signal_delete", _SIGNAL_DELETE,
                         [{"br": branch, "wf": wf, "c": c} for wf, c in gone])
    added = [k for k in changed if k in new]
    if added:
        execute_prepared(conn, "rollup_signal_insert", _SIGNAL_INSERT,
                         [{"branch": branch, "workflow": wf, "commitid": c, "day": new[(wf, c)][0],
                           "tts": new[(wf, c)][1]} for wf, c in added])
    delta = _signal_counts({k: new[k] for k in changed if k in new})
    delta.subtract(_signal_counts({k: old[k] for k in changed if k in old}))
    _add(conn, branch, Counter({k: n for k, n in delta.items() if n}))


_SIGNAL_INSERT = insert(rollup_signals)


def _add(conn: Connection, branch: int, delta: Counter) -> None:
    """Add {(workflow, kind, day, bucket): n} to the day rows and their months' rows of `branch`."""
    rollup_counts.add_hist(conn, branch, {k: n for k, n in _periods(delta).items() if n})


def rebuild(conn: Connection, *, revision_0004: bool = False) -> None:
    """Recompute every rollup (and every failed run's failing job, step and author) from the runs.

    One pass over the runs ordered by branch: a branch's rows are summarized at once.  Then
    the streaks and person rows.  `revision_0004`: only what migration 0004 created (it runs
    before the later tables and columns exist).
    """
    for table in (rollup_days, rollup_hist, rollup_signals, rollup_pairs, rollup_workflow_days):
        conn.execute(delete(table))
    failure_causes.update(conn, authors=not revision_0004)
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
    if not revision_0004:
        rollup_streaks.rebuild(conn)
        rollup_people.rebuild(conn)
    d = rollup_days.c
    for table, keys in ((rollup_pairs, (d.branch, d.workflow)), (rollup_workflow_days, (d.workflow, d.day))):
        extra = [func.max(d.last_run).label("last_run")] if table is rollup_pairs else []
        conn.execute(insert(table).from_select(
            [k.name for k in keys] + ["repo", *COUNTS] + [e.name for e in extra],
            select(*keys, func.min(d.repo), *(func.sum(d[c]) for c in COUNTS), *extra).group_by(*keys)))


def _rebuild_branch(conn: Connection, branch: int, rows: list) -> None:
    day_rows, hist = summarize(branch, rows)
    if day_rows:
        conn.execute(insert(rollup_days), day_rows)
    found = signals(rows)
    if found:
        conn.execute(insert(rollup_signals), [{"branch": branch, "workflow": wf, "commitid": c, "day": day,
                                               "tts": value} for (wf, c), (day, value) in found.items()])
    out = _periods(_with_all(hist) + _signal_counts(found))
    if out:
        conn.execute(insert(rollup_hist), [{"span": s, "branch": branch, "workflow": wf, "kind": k, "period": p,
                                            "bucket": b, "n": n} for (s, wf, k, p, b), n in out.items()])
