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

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.engine import Connection, Engine

from store.queries.filters import Filters
from store.rows import RUN_COLUMNS, run_rows
from store.schema import commits, export_lines, jobs, runattempts, steps, workflowruns

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


def export_columns(attempts: str = LATEST) -> dict:
    """Each field of a row (`FIELDS` order) as a plain column expression, to build SQL cells on."""
    return {name: getattr(c, "element", c) for name, c in zip(FIELDS, _row_columns(attempts))}


def iter_batches(engine: Engine, filters: Filters, columns, *, attempts: str = LATEST, batch: int = 5000,
                 after: tuple | None = None) -> Iterator[list[tuple]]:
    """The selected rows, newest first, as lists of plain DBAPI tuples: `columns` then the keyset key.

    Keyset batches as in `iter_rows`; each batch is one SELECT on a pooled
    connection, read whole and released before it is yielded (no read
    transaction stays open while the client is slow).  The statement is
    compiled once and run on the raw DBAPI cursor: SQLAlchemy Row objects cost
    more than the rest of the export.
    """
    keys = _key_columns(attempts)
    labelled = tuple(k.label(f"_key{i}") for i, k in enumerate(keys))
    return _batches(engine, _base(filters, attempts, (*columns, *labelled)), keys, batch, after)


def iter_line_batches(engine: Engine, filters: Filters, line, *, batch: int = 5000,
                      after: tuple | None = None) -> Iterator[list[tuple]]:
    """As `iter_batches` (latest attempts), with the run's stored CSV line (`line`, an expression on
    `export_lines`) as the one column: NULL when the run has none.

    Reads `workflowruns` (filters, order) and `export_lines`, not `commits`:
    with no filter the keyset index alone gives each run's id and key.
    """
    keys = _key_columns(LATEST)
    labelled = tuple(k.label(f"_key{i}") for i, k in enumerate(keys))
    query = select(line, *labelled).select_from(workflowruns.outerjoin(export_lines, export_lines.c.run == w.id)) \
        .where(*filters.conditions())
    return _batches(engine, query, keys, batch, after)


def _batches(engine: Engine, query, keys, batch: int, after: tuple | None) -> Iterator[list[tuple]]:
    marks = tuple(bindparam(f"key{i}", None, type_=k.type) for i, k in enumerate(keys))
    first = query.order_by(*(k.desc() for k in keys)).limit(batch)
    statements = (first.compile(dialect=engine.dialect), first.where(_after(keys, marks)).compile(dialect=engine.dialect))
    width = len(keys)
    while True:
        compiled = statements[after is not None]
        state = compiled.construct_expanded_state(None if after is None else {m.key: v for m, v in zip(marks, after)})
        params = state.positional_parameters if compiled.positional else state.additional_parameters
        with engine.connect() as conn:
            cursor = conn.connection.cursor()
            try:
                cursor.execute(state.statement, params)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        if rows:
            yield rows
        if len(rows) < batch:
            return
        after = tuple(rows[-1][-width:])


def _iter_rows(engine: Engine, filters: Filters, attempts: str, batch: int, after: tuple | None):
    width = len(_key_columns(attempts))
    for rows in iter_batches(engine, filters, _row_columns(attempts), attempts=attempts, batch=batch, after=after):
        for row in rows:
            yield row[:-width]


class ExportRows:
    """What `iter_rows` returns: an iterator of row tuples that remembers its query.

    `dashapp.api.csvexport.generate` uses `engine`, `filters` and `attempts` to
    have the database format the CSV lines itself when it can.
    """

    def __init__(self, engine: Engine, filters: Filters, attempts: str, batch: int, after: tuple | None):
        self.engine, self.filters, self.attempts, self.batch, self.after = engine, filters, attempts, batch, after
        self._rows = None

    @property
    def started(self) -> bool:
        return self._rows is not None

    def __iter__(self):
        return self

    def __next__(self) -> tuple:
        if self._rows is None:
            self._rows = _iter_rows(self.engine, self.filters, self.attempts, self.batch, self.after)
        return next(self._rows)


def iter_rows(engine: Engine, filters: Filters, *, attempts: str = LATEST, batch: int = 5000,
              after: tuple | None = None) -> ExportRows:
    """Every selected row as a tuple in `FIELDS` order, newest first, fetched in keyset batches.

    Each batch is its own short read, so a long export neither holds memory
    for the whole result nor pins the SQLite WAL.
    """
    return ExportRows(engine, filters, attempts, batch, after)


def row_by_key(engine: Engine, filters: Filters, key: tuple, *, attempts: str = LATEST) -> tuple | None:
    """The row (a tuple in `FIELDS` order) with the keyset key `key`, if the filters select it."""
    query = _base(filters, attempts, _row_columns(attempts)).where(
        *(column.is_not_distinct_from(value) for column, value in zip(_key_columns(attempts), key)))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    return None if row is None else tuple(row)


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
