"""Build history for `/api/builds` and the CSV export: filtered, newest first, keyset-paged.

A page is ordered by `(createtime DESC, id DESC)` (plus `attempt DESC` when
every attempt is listed) and the next page starts strictly after the last
row's key, so a walk sees every run exactly once however deep it goes, and
each page is an index range scan (`idx_workflowruns_createtime_gitid`,
`idx_runattempts_createtime_gitid`), not an OFFSET.
"""
import json
from collections.abc import Iterator
from dataclasses import replace

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine

from store.queries.filters import Filters
from store.rows import RUN_COLUMNS, run_rows
from store.schema import commits, jobs, runattempts, steps, workflowruns

LATEST, ALL = "latest", "all"
w = workflowruns.c
ra = runattempts.c
# Columns of a row that belong to one attempt: with attempts=all they come from `runattempts`.
ATTEMPT_COLUMNS = {
    "author": ra.author, "status": ra.status, "conclusion": ra.conclusion, "attempt": ra.attempt,
    "createtime": ra.createtime, "starttime": ra.starttime, "endtime": ra.endtime, "updatetime": ra.updatetime,
    "runtime": ra.runtime, "queuetime": ra.queuetime, "url": ra.url,
}
FIELDS = tuple(c.name for c in RUN_COLUMNS)


def _key_columns(attempts: str):
    return (w.createtime, w.gitid) if attempts == LATEST else (ra.createtime, ra.gitid, ra.attempt)


def _base(filters: Filters, attempts: str, columns):
    """SELECT `columns` over the rows `filters` selects (no order, no paging)."""
    if attempts == LATEST:
        return select(*columns).select_from(workflowruns.join(commits, commits.c.id == w.commitid)) \
            .where(*filters.conditions())
    # Run-level filters on the run; status, conclusion and the window on each attempt.
    run_level = replace(filters, status=None, conclusion=None, since=None, until=None)
    cond = run_level.conditions()
    if filters.status is not None:
        cond.append(ra.status == filters.status)
    if filters.conclusion is not None:
        cond.append(ra.conclusion == filters.conclusion)
    if filters.since is not None:
        cond.append(ra.createtime >= filters.since)
    if filters.until is not None:
        cond.append(ra.createtime < filters.until)
    joined = runattempts.join(workflowruns, w.id == ra.run).join(commits, commits.c.id == w.commitid)
    return select(*columns).select_from(joined).where(*cond)


def _row_columns(attempts: str):
    if attempts == LATEST:
        return RUN_COLUMNS
    return tuple(ATTEMPT_COLUMNS[c.name].label(c.name) if c.name in ATTEMPT_COLUMNS else c for c in RUN_COLUMNS)


def _after(key_columns, key):
    """Rows strictly after `key` in newest-first order (a sargable keyset condition)."""
    first, rest = key_columns[0], key_columns[1:]
    if not rest:
        return first < key[0]
    return and_(first <= key[0], or_(first < key[0], _after(rest, key[1:])))


def _page_query(filters: Filters, attempts: str, limit: int, after: tuple | None):
    keys = _key_columns(attempts)
    query = _base(filters, attempts, _row_columns(attempts))
    if after is not None:
        query = query.where(_after(keys, after))
    return query.order_by(*(k.desc() for k in keys)).limit(limit)


def page(conn: Connection, filters: Filters, *, attempts: str = LATEST, limit: int = 100,
         after: tuple | None = None) -> list[dict]:
    """Up to `limit` rows, newest first, strictly after the key `after` (see `row_key`)."""
    return [dict(row) for row in conn.execute(_page_query(filters, attempts, limit, after)).mappings()]


def row_key(row: dict, attempts: str = LATEST) -> tuple:
    """The keyset key of a row returned by `page`."""
    return (row["createtime"], row["id"]) if attempts == LATEST else (row["createtime"], row["id"], row["attempt"])


def count(conn: Connection, filters: Filters, *, attempts: str = LATEST) -> int:
    return conn.execute(_base(filters, attempts, (func.count(),))).scalar_one()


_ID, _CREATETIME, _ATTEMPT = FIELDS.index("id"), FIELDS.index("createtime"), FIELDS.index("attempt")


def iter_rows(engine: Engine, filters: Filters, *, attempts: str = LATEST, batch: int = 2000,
              after: tuple | None = None) -> Iterator[tuple]:
    """Every selected row as a tuple in `FIELDS` order, newest first, fetched in keyset batches.

    Each batch uses its own short read transaction, so a long export neither
    holds memory for the whole result nor pins the SQLite WAL.
    """
    while True:
        with engine.connect() as conn:
            rows = conn.execute(_page_query(filters, attempts, batch, after)).all()
        yield from rows
        if len(rows) < batch:
            return
        last = rows[-1]
        after = (last[_CREATETIME], last[_ID]) if attempts == LATEST else \
            (last[_CREATETIME], last[_ID], last[_ATTEMPT])


def run_detail(conn: Connection, gitid: int) -> dict | None:
    """One run (GitHub run id): its latest row, every attempt, and each attempt's jobs with steps."""
    found = run_rows(conn, [gitid])
    if not found:
        return None
    run = found[0]
    attempts = conn.execute(
        select(ra.attempt, ra.author, ra.status, ra.conclusion, ra.createtime, ra.starttime, ra.endtime,
               ra.updatetime, ra.runtime, ra.queuetime, ra.url)
        .where(ra.gitid == gitid).order_by(ra.attempt)
    ).mappings().all()
    j = jobs.c
    job_rows = conn.execute(
        select(j.id, j.gitid, j.run_attempt.label("attempt"), j.name, j.workflow_name, j.head_branch, j.head_sha,
               j.status, j.conclusion, j.createtime, j.starttime, j.endtime, j.queuetime, j.runtime,
               j.runner_name, j.runner_id, j.labels, j.url)
        .where(j.run_gitid == gitid).order_by(j.run_attempt, j.createtime, j.gitid)
    ).mappings().all()
    step_rows = conn.execute(
        select(steps.c.job, steps.c.number, steps.c.name, steps.c.status, steps.c.conclusion,
               steps.c.starttime, steps.c.endtime)
        .where(steps.c.job.in_([row["id"] for row in job_rows]) if job_rows else False)
        .order_by(steps.c.job, steps.c.number)
    ).mappings().all()
    by_job: dict[int, list] = {}
    for s in step_rows:
        by_job.setdefault(s["job"], []).append({k: v for k, v in s.items() if k != "job"})
    job_list = []
    for row in job_rows:
        item = {k: v for k, v in row.items() if k not in ("id", "labels")}
        item["id"] = row["gitid"]
        del item["gitid"]
        item["labels"] = _labels(row["labels"])
        item["steps"] = by_job.get(row["id"], [])
        job_list.append(item)
    by_attempt: dict[int, list] = {}
    for job in job_list:
        by_attempt.setdefault(job["attempt"], []).append(job)
    return {
        **run,
        "attempts": [{**dict(a), "jobs": by_attempt.pop(a["attempt"], [])} for a in attempts],
        # Jobs whose attempt has no workflow_run event yet (they can arrive first).
        "unmatched_jobs": [job for rest in by_attempt.values() for job in rest],
    }


def _labels(text: str | None) -> list[str]:
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []
