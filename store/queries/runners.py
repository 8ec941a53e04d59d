"""Runners and cost: queue time per runner label set and group, jobs waiting now, busiest hours, minutes.

Every number is over the jobs of the runs `filters` selects (repository, branch, workflow, author, and the
window on the run's createtime, as everywhere: metrics.md), every attempt's jobs included (a re-run queues
and bills again); "waiting now" ignores the window, as the Active builds card does.

- **Queue time** of a job: `started_at − created_at`, known only once it really started (the writer keeps it
  in `jobs.queuetime`, NULL before).  `jobs` counts every selected job, `started` those with a queue time:
  the sample of p50/p90/p99 (linear interpolation, `store.metrics.percentile`).
- **Label set**: the job's `runs-on` labels sorted and joined (`domain.billing.label_set`).
- **Runner group**: `jobs.runner_group` (GitHub's runner_group_name, migration 0013); NULL (not recorded: jobs
  stored before, or events without it) is its own row.
- **Busiest hours**: jobs that started, by the UTC weekday and hour of their `starttime`.
- **Minutes**: `domain.billing`; each job rounded up in SQL (`store.sqlfunctions.minutes_up`, the same arithmetic as
  `billing.minutes`: a test checks them equal), summed per repository, workflow and label set.

Cost: a window's whole days are read from `rollup_runner_days` (a few rows per workflow and day; queue times
there are whole seconds, which GitHub's are), its partial first day from the runs (createtime index) joined
to their jobs (`idx_jobs_run`); a branch or author filter reads every job from the runs.
"""
from __future__ import annotations

import json
import time

from sqlalchemy import Float, and_, cast, func, select
from sqlalchemy.engine import Connection

from domain import billing
from domain.state import ACTIVE_STATUSES, QUEUED_STATUSES
from store.derived.rollups import DAY
from store.derived.runner_days import NO_GROUP
from store.lazymodules import numpy as np
from store.prepared import literals
from store.queries import rollup
from store.queries.filters import Filters
from store.schema import jobs, rollup_runner_days, workflowruns, workflows
from store.sqlfunctions import floor_div, minutes_up

w = workflowruns.c
j = jobs.c
# Until migration 0013 is in the schema, runner groups are not known: the page says so.
RUNNER_GROUP = j.runner_group if "runner_group" in j else None
PERCENTILES = (50, 90, 99)
SERIES_LABEL_SETS = 8  # the chart draws the label sets with the most started jobs; the table has them all


def _window_jobs(filters: Filters, *columns):
    """SELECT `columns` of the jobs of the runs `filters` selects (every attempt)."""
    return select(*columns).select_from(workflowruns.join(jobs, j.run_gitid == w.gitid)).where(*filters.conditions())


def _plain_rows(conn: Connection, statement) -> list[tuple]:
    """`statement`'s rows as plain tuples from the driver's cursor: building SQLAlchemy rows cost a third of
    the read for a window's 100,000s of jobs (as `store.queries.failures._stream`)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    bound = compiled.construct_params(_check=False)
    args = tuple(bound[k] for k in compiled.positiontup) if compiled.positiontup is not None else bound
    cursor = conn.connection.cursor()
    try:
        cursor.execute(compiled.string, args)
        return cursor.fetchall()
    finally:
        cursor.close()


def _split(conn: Connection, filters: Filters, *columns) -> tuple[list, Filters | None]:
    """(`columns` of the `rollup_runner_days` rows of the window's whole days, the filters of what is left to
    read from the jobs: its partial first day, or everything, or None: nothing).

    The rollup serves repository, workflow and window (`store.queries.rollup.scope`), not a branch or author."""
    found = rollup.scope(conn, filters)
    if found is None or found.branch_ids is not None:
        return [], filters
    rows = conn.execute(select(*columns).where(*found.conditions(rollup_runner_days))).all()
    return rows, found.raw


def _stats(parts: list) -> dict:
    """p50/p90/p99 of queue times given as (values, counts) list pairs: `store.metrics.percentile_counts`'s
    arithmetic (linear interpolation between order statistics), over arrays: a long window's are 100,000s."""
    values = np.fromiter((v for vs, _ns in parts for v in vs), dtype=float)
    counts = np.fromiter((n for _vs, ns in parts for n in ns), dtype=np.int64)
    total = int(counts.sum())
    if not total:
        return {f"p{q}": None for q in PERCENTILES}
    order = np.argsort(values, kind="stable")
    values, ends = values[order], np.cumsum(counts[order])

    def at(rank: int) -> float:
        return float(values[np.searchsorted(ends, rank, side="right")])

    out = {}
    for q in PERCENTILES:
        pos = (total - 1) * q / 100.0
        low = int(pos // 1)
        low_value, high_value = at(low), at(min(low + 1, total - 1))
        out[f"p{q}"] = float(low_value + (high_value - low_value) * (pos - low))
    return out


def queue_times(conn: Connection, filters: Filters, *, bucket: int = DAY) -> dict:
    """Queue time per label set, per runner group, and the p90 per label set per `bucket` seconds.

    {"labels": [{label_set, jobs, started, p50, p90, p99}], "groups": the same with `runner_group` instead
    (None when the schema has no runner groups), "series": [{label_set, bucket (epoch s), started, p90}],
    "shown_sets", "all_sets"}: rows by jobs, most first; a job's series bucket is its run's `createtime`
    floored to `bucket`; the series has the `SERIES_LABEL_SETS` busiest label sets.  Whole days come from
    `rollup_runner_days` when `bucket` is a day (queue times there are whole seconds, as GitHub's are).
    """
    # Cells of (stored labels, group, bucket number): [jobs, queue values, how many of each].
    cells: dict[tuple, list] = {}
    days, rest = _split(conn, filters, rollup_runner_days.c.labels, rollup_runner_days.c.runner_group,
                        rollup_runner_days.c.day, rollup_runner_days.c.jobs, rollup_runner_days.c.queue) \
        if bucket == DAY else ([], filters)
    for labels, runner_group, day, n, queue in days:
        cell = cells.setdefault((labels or None, runner_group if runner_group != NO_GROUP else None, day),
                                [0, [], []])
        cell[0] += n
        for value, count in json.loads(queue):
            cell[1].append(value)
            cell[2].append(count)
    if rest is not None:
        group = RUNNER_GROUP if RUNNER_GROUP is not None else func.null()
        # One dict operation per job (the window's jobs are 100,000s).
        for labels, runner_group, number, queue in _plain_rows(conn, _window_jobs(
                rest, j.labels, group, floor_div(w.createtime, bucket), j.queuetime)):
            cell = cells.get((labels, runner_group, number))
            if cell is None:
                cell = cells[(labels, runner_group, number)] = [0, [], []]
            cell[0] += 1
            if queue is not None:
                cell[1].append(queue)
                cell[2].append(1)
    names = {stored: billing.label_set(billing.parse_labels(stored)) for stored in {k[0] for k in cells}}
    by_set: dict[str, list] = {}
    by_group: dict = {}
    series: dict = {}
    for (stored, runner_group, number), cell in cells.items():
        name = names[stored]
        by_set.setdefault(name, []).append(cell)
        by_group.setdefault(runner_group, []).append(cell)
        series.setdefault((name, None if number is None else int(number) * bucket), []).append(cell)

    def row(parts: list) -> dict:
        return {"jobs": sum(p[0] for p in parts), "started": sum(sum(p[2]) for p in parts),
                **_stats([(p[1], p[2]) for p in parts])}

    labels_out = [{"label_set": name, **row(parts)} for name, parts in by_set.items()]
    busiest = sorted(labels_out, key=lambda r: (-r["started"], r["label_set"]))
    top = {r["label_set"] for r in busiest[:SERIES_LABEL_SETS]}
    series_out = []
    for (name, start), parts in sorted(series.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        if name in top and start is not None:
            stats = row(parts)
            if stats["started"]:
                series_out.append({"label_set": name, "bucket": start, "started": stats["started"],
                                   "p90": stats["p90"]})
    groups_out = None if RUNNER_GROUP is None else sorted(
        ({"runner_group": g, **row(parts)} for g, parts in by_group.items()),
        key=lambda r: (-r["jobs"], r["runner_group"] is None, r["runner_group"] or ""))
    return {"labels": sorted(labels_out, key=lambda r: (-r["jobs"], r["label_set"])), "groups": groups_out,
            "series": series_out, "shown_sets": len(top), "all_sets": len(labels_out)}


def waiting_now(conn: Connection, filters: Filters, *, stale_hours: float, now: float | None = None) -> list[dict]:
    """Jobs queued now (status requested, pending, queued or waiting) of unfinished runs, per label set.

    Whatever the window (the other filters apply).  A job counts as waiting when its run's latest attempt is
    unfinished and was updated within `stale_hours`; otherwise it is `stale` (counted apart).
    [{label_set, waiting, oldest (its createtime, epoch s), oldest_wait (s), stale}], most waiting first.
    """
    now = time.time() if now is None else now
    cutoff = now - stale_hours * 3600
    # The few unfinished runs first, from the partial index idx_workflowruns_active (literal statuses), as
    # the Active builds card reads them; then their latest attempt's queued jobs.
    ids = conn.execute(select(w.id).where(w.status.in_(literals(ACTIVE_STATUSES)))).scalars().all()
    updated = func.coalesce(w.updatetime, w.createtime)
    found = []
    for i in range(0, len(ids), 500):
        found += conn.execute(
            select(j.labels, j.createtime, updated >= cutoff)
            .select_from(workflowruns.join(jobs, and_(j.run_gitid == w.gitid, j.run_attempt == w.run_attempt)))
            .where(w.id.in_(ids[i:i + 500]), *filters.without_window().conditions(),
                   j.status.in_(QUEUED_STATUSES))).all()
    out: dict[str, dict] = {}
    for labels, created, fresh in found:
        row = out.setdefault(billing.label_set(billing.parse_labels(labels)),
                             {"waiting": 0, "oldest": None, "stale": 0})
        if not fresh:
            row["stale"] += 1
            continue
        row["waiting"] += 1
        if created is not None and (row["oldest"] is None or created < row["oldest"]):
            row["oldest"] = created
    rows = [{"label_set": name, **r, "oldest_wait": None if r["oldest"] is None else max(0.0, now - r["oldest"])}
            for name, r in out.items()]
    return sorted(rows, key=lambda r: (-r["waiting"], -r["stale"], r["label_set"]))


def busiest_hours(conn: Connection, filters: Filters) -> list[list[int]]:
    """Jobs started per UTC weekday (rows, Monday first) and hour of day (columns): a 7 × 24 matrix."""
    grid = [[0] * 24 for _ in range(7)]
    days, rest = _split(conn, filters, rollup_runner_days.c.hours)
    for (hours,) in days:
        for hour, n in json.loads(hours):  # of the week, Monday 00:00 UTC = 0
            grid[hour // 24][hour % 24] += n
    if rest is None:
        return grid
    hour = floor_div(j.starttime, 3600)
    # No condition on the jobs in WHERE: with one, SQLite (no statistics) scanned every job instead of reading
    # the window's runs first; jobs that never started fall in the NULL hour, left out here.
    for number, n in conn.execute(_window_jobs(rest, hour, func.count()).group_by(hour)).all():
        if number is None:
            continue
        day, hour_of_day = divmod(int(number), 24)
        grid[(day + 3) % 7][hour_of_day] += n  # 1970-01-01, day 0, was a Thursday (Monday = 0)
    return grid


def minutes_by_labels(conn: Connection, filters: Filters) -> list[dict]:
    """Per repository, workflow and stored labels: finished jobs, their seconds and their per-job rounded minutes.

    [{repo, workflow, labels (JSON text), jobs, seconds, minutes}]: only jobs with a duration (started and
    ended) count; `minutes` = Σ `billing.minutes(runtime)`.
    """
    r = rollup_runner_days.c
    days, rest = _split(conn, filters, r.repo, r.workflow, r.labels, r.finished, r.seconds, r.minutes)
    names = dict(conn.execute(select(workflows.c.id, workflows.c.name).where(
        workflows.c.id.in_({wf for _repo, wf, *_rest in days}))).all()) if days else {}
    out: dict[tuple, list] = {}

    def add(repo, workflow, labels, n, seconds, minutes):
        cell = out.setdefault((repo, workflow, labels or None), [0, 0.0, 0])
        cell[0] += n
        cell[1] += float(seconds or 0)
        cell[2] += int(minutes or 0)

    for repo, wf, labels, n, seconds, minutes in days:
        add(repo, names.get(wf), labels, n, seconds, minutes)
    if rest is not None:
        runtime = cast(j.runtime, Float)
        # Jobs without a duration are left out by the aggregates, not by WHERE (see `busiest_hours`).
        for row in conn.execute(_window_jobs(rest, w.repo, w.archivedworkflowname, j.labels, func.count(j.runtime),
                                             func.sum(runtime), func.sum(minutes_up(runtime)))
                                .group_by(w.repo, w.archivedworkflowname, j.labels)).all():
            add(*row)
    return [{"repo": repo, "workflow": workflow, "labels": labels, "jobs": n, "seconds": seconds, "minutes": minutes}
            for (repo, workflow, labels), (n, seconds, minutes) in out.items() if n]


def billing_rows(rows: list[dict], multipliers: dict[str, float]) -> list[dict]:
    """`minutes_by_labels` rows as charges per repository, workflow, runner OS and hosting, largest first.

    [{repo, workflow, os, self_hosted, jobs, seconds, minutes, multiplier, billable}]: `minutes` rounded per job,
    `billable` = minutes × the OS multiplier for GitHub-hosted jobs, 0 for self-hosted ones.
    """
    out: dict[tuple, dict] = {}
    for r in rows:
        labels = billing.parse_labels(r["labels"])
        c = billing.charge(labels, r["minutes"], r["jobs"], multipliers)
        row = out.setdefault((r["repo"], r["workflow"], c.os, c.self_hosted), {
            "repo": r["repo"], "workflow": r["workflow"], "os": c.os, "self_hosted": c.self_hosted, "jobs": 0,
            "seconds": 0.0, "minutes": 0, "multiplier": c.multiplier, "billable": 0.0})
        row["jobs"] += c.jobs
        row["seconds"] += r["seconds"]
        row["minutes"] += c.minutes
        row["billable"] += c.billable
    return sorted(out.values(), key=lambda r: (-r["billable"], -r["minutes"], r["repo"], r["workflow"] or "", r["os"]))


def billing_totals(rows: list[dict]) -> dict:
    """Totals of `billing_rows`: billable minutes, hosted minutes per OS (rounded, before multipliers) and
    their billable minutes, self-hosted minutes."""
    totals = {"billable": 0.0, "self_hosted": 0, "self_hosted_jobs": 0, "jobs": 0,
              "by_os": {os: {"minutes": 0, "billable": 0.0, "jobs": 0} for os in billing.OS_NAMES}}
    for r in rows:
        totals["jobs"] += r["jobs"]
        if r["self_hosted"]:
            totals["self_hosted"] += r["minutes"]
            totals["self_hosted_jobs"] += r["jobs"]
            continue
        totals["billable"] += r["billable"]
        by_os = totals["by_os"][r["os"]]
        by_os["minutes"] += r["minutes"]
        by_os["billable"] += r["billable"]
        by_os["jobs"] += r["jobs"]
    return totals

