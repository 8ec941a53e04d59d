"""Runner days: the Runners page's numbers per workflow, UTC day, runner labels and runner group.

`rollup_runner_days` sums the jobs of every attempt of the runs a workflow created that day (the day of the
run's createtime, as every window is: metrics.md), per stored `runs-on` labels and runner group: how many,
their queue times (a histogram by whole second: GitHub's timestamps are whole seconds, so for its jobs the
percentiles read from it are exact), the UTC hours of the week they started in, and their durations and
per-job rounded minutes (`domain.billing.minutes`).  A window's whole days are read from here and its
partial first day from the jobs (`store/queries/runners.py`): at 1M runs a 90-day window's 1.3M jobs took
seconds to read, its rows here are a few thousand.

Kept current from two keys: ``("day", branch, workflow, day)`` (a run written: its day, and the day it
left) and ``("job_run", run gitid)`` (a job written: its run's day; a job moved from another run marks
that one too).  A refresh recomputes each (workflow, day) from its runs' jobs and rewrites its rows.
"""
import json
import math
from collections import Counter

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from domain.billing import minutes as billed_minutes
from store.derived.part import Part
from store.derived.rollups import DAY, day_of
from store.schema import jobs, rollup_runner_days, workflowruns

w = workflowruns.c
j = jobs.c
t = rollup_runner_days.c
NO_GROUP = ""  # the key of jobs whose runner group was not recorded (NULL in `jobs`)
_COLUMNS = (w.workflow, w.createtime, w.repo, j.labels, j.runner_group, j.queuetime, j.starttime, j.runtime)
_JOINED = workflowruns.join(jobs, j.run_gitid == w.gitid)  # every attempt's jobs, as the page counts them


def hour_of_week(starttime: float) -> int:
    """The UTC hour of the week of an epoch time, Monday 00:00 being 0 (1970-01-01 was a Thursday)."""
    hour = math.floor(starttime / 3600)
    return ((hour // 24 + 3) % 7) * 24 + hour % 24


def summarize(rows) -> dict:
    """{(workflow, day, labels, group): row of `rollup_runner_days`} from (`_COLUMNS`) rows."""
    out: dict[tuple, dict] = {}
    for workflow, created, repo, labels, group, queue, started, runtime in rows:
        if created is None:
            continue
        key = (workflow, day_of(created), labels or "", group or NO_GROUP)  # "": no labels stored, as "[]" reads
        cell = out.get(key)
        if cell is None:
            cell = out[key] = {"repo": repo, "jobs": 0, "finished": 0, "seconds": 0.0, "minutes": 0,
                               "queue": Counter(), "hours": Counter()}
        cell["jobs"] += 1
        if queue is not None:
            cell["queue"][int(round(queue))] += 1
        if started is not None:
            cell["hours"][hour_of_week(started)] += 1
        if runtime is not None:
            cell["finished"] += 1
            cell["seconds"] += float(runtime)
            cell["minutes"] += billed_minutes(runtime)
    return out


def _records(found: dict) -> list[dict]:
    return [{"workflow": wf, "day": day, "labels": labels, "runner_group": group, "repo": c["repo"],
             "jobs": c["jobs"], "finished": c["finished"], "seconds": c["seconds"], "minutes": c["minutes"],
             "queue": json.dumps(sorted(c["queue"].items())), "hours": json.dumps(sorted(c["hours"].items()))}
            for (wf, day, labels, group), c in sorted(found.items())]


def refresh(conn: Connection, keys) -> None:
    days = {(key[2], key[3]) for key in keys if key[0] == "day"}
    runs = sorted({key[1] for key in keys if key[0] == "job_run"})
    for i in range(0, len(runs), 500):
        for wf, created in conn.execute(select(w.workflow, w.createtime).where(w.gitid.in_(runs[i:i + 500]))).all():
            if created is not None:
                days.add((wf, day_of(created)))
    for wf, day in sorted(days):
        found = summarize(conn.execute(select(*_COLUMNS).select_from(_JOINED).where(
            w.workflow == wf, w.createtime >= day * DAY, w.createtime < (day + 1) * DAY)).all())
        conn.execute(delete(rollup_runner_days).where(t.workflow == wf, t.day == day))
        if found:
            conn.execute(insert(rollup_runner_days), _records(found))


def rebuild(conn: Connection) -> None:
    """Every workflow's days, from one pass over the runs by workflow and time and their jobs."""
    conn.execute(delete(rollup_runner_days))
    found: dict = {}

    def write(done_before: tuple | None) -> None:
        """Insert the finished (workflow, day) cells: those before `done_before` (None: all)."""
        ready = [k for k in found if done_before is None or k[:2] < done_before]
        if ready:
            conn.execute(insert(rollup_runner_days), _records({k: found.pop(k) for k in ready}))

    result = conn.execute(select(*_COLUMNS).select_from(_JOINED).order_by(w.workflow, w.createtime)).yield_per(20000)
    for rows in result.partitions():
        batch = list(rows)
        for key, cell in summarize(batch).items():
            _merge(found, key, cell)
        last = batch[-1]
        if last[1] is not None:
            write((last[0], day_of(last[1])))
    write(None)


def _merge(found: dict, key: tuple, cell: dict) -> None:
    have = found.get(key)
    if have is None:
        found[key] = cell
        return
    for name in ("jobs", "finished", "seconds", "minutes"):
        have[name] += cell[name]
    have["queue"].update(cell["queue"])
    have["hours"].update(cell["hours"])


PART = Part(name="runner_days", tables=(rollup_runner_days,), columns=(), kinds=("day", "job_run"),
            refresh=refresh, rebuild=rebuild)
