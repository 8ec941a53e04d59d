"""Rollups: the numbers of long windows, pre-aggregated and kept current by every write.

Every write of a run marks its workflow's day on its branch and its commit
(`store.derived`), and before the transaction commits those are recomputed
from the runs (`refresh`), so a rollup is never behind the runs it sums.
Readers add up rollup rows for the whole days of a window and read runs only
for its partial first day (`store/queries/rollup.py`).

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
- `rollup_pairs` and `rollup_workflow_days`: `rollup_days` summed over days
  (per pair) and over branches (per workflow and day); reading these is
  several times faster than summing `rollup_days` (the analysis grid's
  all-time ranking, the flaky counts of every branch), so they are kept.

A refresh has SQLite add up one workflow's day on one branch through a
covering index (its counts, and the (value, count) groups its chart
percentiles need: a loaded day is tens of thousands of runs, too many to
fetch into Python once a batch) and moves the all-workflows and monthly
histograms and the sums by differences (written by
`store/derived/rollup_counts.py`).
`rebuild` recomputes all five tables in one ordered pass (migrations, the
bench generator); a test checks that upkeep in any delivery order equals a
rebuild.
"""
import datetime as dt
from collections import Counter, defaultdict

from sqlalchemy import Integer, and_, bindparam, case, cast, delete, exists, func, insert, select, type_coerce
from sqlalchemy.engine import Connection

from domain.state import DECISIVE, FAILED
from store import metrics
from store.derived import rollup_counts
from store.derived.part import Part
from store.prepared import execute_prepared, literals
from store.schema import (ROLLUP_COUNTS as COUNTS, rollup_days, rollup_hist, rollup_pairs, rollup_signals,
                          rollup_workflow_days, runattempts, workflowruns)

DAY = 86400
ALL_WORKFLOWS = 0
TABLES = (rollup_days, rollup_hist, rollup_signals, rollup_pairs, rollup_workflow_days)
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

def refresh(conn: Connection, keys) -> None:
    """Recompute the rollups of the ("day", branch, workflow, day) keys and the time to signal of
    the ("commit", branch, commit) and ("commit_run", branch, commit, run) keys from the runs.

    A day is summed by SQLite (`_day_summary`: aggregates over an index, in C) rather than read
    into Python, so a write costs little more on a day of ten thousand runs than on one of ten;
    the all-workflows and monthly histograms, the sums and the time-to-signal counts move by
    differences.
    """
    groups: dict[tuple[int, int], set | None] = {}
    for key in keys:
        if key[0] == "day":
            _refresh_day(conn, *key[1:])
        elif key[0] == "commit":
            groups[(key[1], key[2])] = None  # every run of the commit
        elif key[0] == "commit_run" and groups.get((key[1], key[2]), ()) is not None:
            groups.setdefault((key[1], key[2]), set()).add(key[3])
    for (branch, commit), runs in sorted(groups.items(), key=lambda item: item[0]):
        _refresh_signals(conn, branch, commit, runs)


# --- a day of one workflow on one branch, summed by SQLite ------------------------------------------
#
# Each query reads the day's range of `idx_workflowruns_day_rollup`, which holds every column they
# test, so SQLite never visits the runs' rows; only re-runs (run_attempt > 1) look up their attempts.

def _flag(condition):
    return case((condition, 1), else_=0)


_IN_DAY = (w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime >= bindparam("lo"),
           w.createtime < bindparam("hi"))
_COMPLETED = w.status == "completed"
_BUILD = and_(_COMPLETED, w.conclusion.in_(literals(("success",) + FAILED)), w.runtime.is_not(None))
_failed_attempt, _later_success = runattempts.alias("failed_attempt"), runattempts.alias("later_success")
# `_is_flaky`: an attempt failed and a later one succeeded; only a re-run can be flaky.
# (EXISTS is a boolean on PostgreSQL: cast to the 0/1 SQLite gives, so both CASE branches are integers.)
_FLAKY = type_coerce(case((w.run_attempt > 1, cast(exists().where(
    _failed_attempt.c.run == w.id, _failed_attempt.c.conclusion.in_(literals(FAILED)),
    _later_success.c.run == w.id, _later_success.c.attempt > _failed_attempt.c.attempt,
    _later_success.c.conclusion == "success"), Integer)), else_=0), Integer)
_SUCCESS = and_(_COMPLETED, w.conclusion == "success")
_DAY_COUNTS = select(
    func.count(), func.sum(_flag(and_(_COMPLETED, w.conclusion.in_(literals(DECISIVE))))), func.sum(_flag(_SUCCESS)),
    func.sum(_flag(and_(_COMPLETED, w.conclusion.in_(literals(FAILED))))),
    func.sum(_flag(and_(_COMPLETED, w.conclusion == "cancelled"))), func.sum(_FLAKY),
    func.sum(case((_SUCCESS, 1 - _FLAKY), else_=0)), func.sum(_flag(_BUILD)),
    # Added in the index's order, (createtime, id), as `summarize` adds them: the same float.
    func.sum(case((_BUILD, w.runtime))), func.max(w.createtime),
).where(*_IN_DAY)
_DAY_REPO = select(w.repo).where(*_IN_DAY).order_by(w.createtime, w.id).limit(1)
# Durations as (value, how many): exact percentiles (`metrics.percentile_counts`) and the histograms
# from a few rows, however many runs the day holds.
_DAY_BUILDS = select(w.runtime, func.count()).where(*_IN_DAY, _BUILD).group_by(w.runtime)
_DAY_QUEUES = (select(w.queuetime, func.count())
               .where(*_IN_DAY, w.starttime.is_not(None), w.queuetime.is_not(None)).group_by(w.queuetime))
_DAY_ATTEMPT_QUEUES = (select(ra.queuetime, func.count()).select_from(workflowruns.join(runattempts, ra.run == w.id))
                       .where(*_IN_DAY, ra.queuetime.is_not(None)).group_by(ra.queuetime))
_COUNT_NAMES = ("runs", "decisive", "success", "failed", "cancelled", "flaky", "successful", "build_n", "build_sum",
                "last_run")


def _day_summary(conn: Connection, branch: int, workflow: int, day: int) -> tuple[dict | None, Counter]:
    """`summarize` of one workflow's day on one branch, aggregated by SQLite: (its `rollup_days`
    row or None, its build/queue day histogram)."""
    key = {"wf": workflow, "br": branch, "lo": day * DAY, "hi": (day + 1) * DAY}
    counts = execute_prepared(conn, "rollup_day_counts", _DAY_COUNTS, key).first()
    if not counts or not counts[0]:
        return None, Counter()
    row = {"branch": branch, "workflow": workflow, "day": day,
           "repo": execute_prepared(conn, "rollup_day_repo", _DAY_REPO, key).scalar(),
           **dict(zip(_COUNT_NAMES, counts))}
    if not row["build_n"]:
        row["build_sum"] = 0.0
    builds = execute_prepared(conn, "rollup_day_builds", _DAY_BUILDS, key).all()
    queues = execute_prepared(conn, "rollup_day_queues", _DAY_QUEUES, key).all()
    row["build_p50"], row["build_p90"] = metrics.percentile_counts(builds, 50), metrics.percentile_counts(builds, 90)
    row["queue_p50"], row["queue_p90"] = metrics.percentile_counts(queues, 50), metrics.percentile_counts(queues, 90)
    hist = Counter()
    for kind, pairs in (("build", builds),
                        ("queue", execute_prepared(conn, "rollup_day_attempt_queues", _DAY_ATTEMPT_QUEUES, key))):
        for value, n in pairs:
            hist[(workflow, kind, day, metrics.bucket(value))] += n
    return row, hist


_DAY_KEY = (rollup_days.c.branch == bindparam("br"), rollup_days.c.workflow == bindparam("wf"),
            rollup_days.c.day == bindparam("dd"))
_DAY_ROW = select(rollup_days).where(*_DAY_KEY)
_DAY_DELETE = delete(rollup_days).where(*_DAY_KEY)
_DAY_INSERT = insert(rollup_days)
_DAY_HIST = select(rollup_hist.c.kind, rollup_hist.c.bucket, rollup_hist.c.n).where(
    rollup_hist.c.span == "day", rollup_hist.c.branch == bindparam("br"), rollup_hist.c.workflow == bindparam("wf"),
    rollup_hist.c.kind.in_(literals(("build", "queue"))), rollup_hist.c.period == bindparam("dd"))


def _refresh_day(conn: Connection, branch: int, workflow: int, day: int) -> None:
    # Statements compiled once (store/prepared.py): SQLAlchemy's per-call set-up of these small
    # reads and writes cost more than SQLite's work, on every write's commit path.
    key = {"br": branch, "wf": workflow, "dd": day}
    new_row, new = _day_summary(conn, branch, workflow, day)
    found = execute_prepared(conn, "rollup_day_row", _DAY_ROW, key).first()
    old_row = dict(zip((c.name for c in rollup_days.c), found)) if found else None
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


# --- a commit's time to signal on a branch ----------------------------------------------------------

_FIRSTS = workflowruns.join(runattempts, and_(ra.run == w.id, ra.attempt == 1))
# `time_to_signal` per workflow, as SQLite aggregates: (workflow, first attempts, completed, min creation, max end).
_SIGNAL_PARTS = (select(w.workflow, func.count(), func.sum(_flag(ra.status == "completed")), func.min(ra.createtime),
                        func.max(ra.endtime))
                 .select_from(_FIRSTS).where(w.branch == bindparam("br"), w.commitid == bindparam("c"))
                 .group_by(w.workflow))
_SIGNAL_PART = (select(func.count(), func.sum(_flag(ra.status == "completed")), func.min(ra.createtime),
                       func.max(ra.endtime))
                .select_from(_FIRSTS).where(w.branch == bindparam("br"), w.commitid == bindparam("c"),
                                            w.workflow == bindparam("wf")))
_RUN_FIRST = select(w.workflow, ra.status).select_from(_FIRSTS).where(
    w.id == bindparam("run"), w.branch == bindparam("br"), w.commitid == bindparam("c"))
_SIGNALS = select(rollup_signals.c.workflow, rollup_signals.c.commitid, rollup_signals.c.day, rollup_signals.c.tts) \
    .where(rollup_signals.c.branch == bindparam("br"), rollup_signals.c.commitid == bindparam("c"))
_SIGNAL_DELETE = delete(rollup_signals).where(rollup_signals.c.branch == bindparam("br"),
                                              rollup_signals.c.workflow == bindparam("wf"),
                                              rollup_signals.c.commitid == bindparam("c"))


def signal_of(parts) -> tuple[int, float] | None:
    """`time_to_signal` from aggregates of first attempts: (count, completed, min creation, max end) tuples."""
    parts = list(parts)
    if not parts or any(n != done for n, done, _c, _e in parts):
        return None
    created = [c for _n, _d, c, _e in parts if c is not None]
    ended = [e for _n, _d, _c, e in parts if e is not None]
    if not created or not ended:
        return None
    return day_of(min(created)), max(ended) - min(created)


def _new_signals(conn: Connection, branch: int, commit: int, runs: set | None) -> dict:
    """{(workflow or 0, commit): signal or None} for what the written `runs` (all when None) can change.

    A written run whose first attempt has not completed settles its workflow and the commit (no
    signal) without reading the commit's other runs: a commit with thousands of runs being
    written costs what its new runs cost."""
    key = {"br": branch, "c": commit}
    if runs is not None:
        firsts = [execute_prepared(conn, "rollup_signal_run", _RUN_FIRST, {**key, "run": run}).first()
                  for run in sorted(runs)]
        firsts = [f for f in firsts if f is not None]
        open_ = {wf for wf, status in firsts if status != "completed"}
        out = {(wf, commit): None for wf in open_}
        if open_:
            out[(ALL_WORKFLOWS, commit)] = None
        parts = {wf: tuple(execute_prepared(conn, "rollup_signal_part", _SIGNAL_PART, {**key, "wf": wf}).first())
                 for wf in {wf for wf, _s in firsts} - open_}
        out.update({(wf, commit): signal_of([part]) for wf, part in parts.items()})
        if open_ or not parts:
            return out
    parts = {wf: tuple(part) for wf, *part in execute_prepared(conn, "rollup_signal_parts", _SIGNAL_PARTS, key).all()}
    out = {(wf, commit): signal_of([part]) for wf, part in parts.items()}
    out[(ALL_WORKFLOWS, commit)] = signal_of(parts.values())
    return out


def _refresh_signals(conn: Connection, branch: int, commit: int, runs: set | None) -> None:
    found = _new_signals(conn, branch, commit, runs)
    old = {(wf, c): (day, value) for wf, c, day, value in
           execute_prepared(conn, "rollup_signals", _SIGNALS, {"br": branch, "c": commit}).all()}
    if runs is None:
        found.update({k: None for k in old if k not in found})  # a workflow without runs any more
    new = {k: v for k, v in found.items() if v is not None}
    changed = [k for k in found if old.get(k) != new.get(k)]
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


def rebuild(conn: Connection) -> None:
    """Recompute every rollup from the runs: one pass over the runs ordered by branch (a branch's
    rows are summarized at once), then the sums of the day rows."""
    for table in TABLES:
        conn.execute(delete(table))
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


PART = Part(name="rollups", tables=TABLES, columns=(), kinds=("day", "commit", "commit_run"), refresh=refresh,
            rebuild=rebuild)
