"""Run jobs: each run's jobs (of every attempt) as one string, the flake statistics' input.

`store.queries.flakes` needs, for every run of a window, the name, attempt and conclusion of each of its
jobs.  Read from `jobs`, a 7-day window at 1M runs joined ~100k jobs and concatenated them per run in
SQL (~100 ms of the Triage page's ~150 ms flake table); `rollup_run_jobs` keeps that string per run, so
the window reads one short row per run.

A run's **signature** lists its jobs, sorted, `SEP` between them: a job that passed on the run's first
attempt (nearly all) as its name alone, any other as MARK "attempt:conclusion:name" (conclusion empty while
it has none).  Sorted, so the same jobs give the same string whatever order they were written in: runs of a
workflow share a few hundred signatures at most, and `parse` runs once per distinct one.

Kept current from ``("job_run", run gitid)``: a job written marks its run (and the run it moved from); a
refresh rewrites those runs' rows, and deletes the row of a run left with no jobs.
"""
from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Connection

from store.derived.part import Part
from store.schema import jobs, rollup_run_jobs

j = jobs.c
SEP = "\x1f"  # between a run's jobs: control characters never reach a stored name (domain.text.clean)
MARK = "\x1e"  # before a job that is not "passed on the first attempt"
_COLUMNS = (j.run_gitid, j.name, j.run_attempt, j.conclusion)
CHUNK = 500  # runs per refresh query


def element(name: str, attempt, conclusion: str | None) -> str:
    if conclusion == "success" and attempt == 1:
        return name
    return f"{MARK}{int(attempt)}:{conclusion or ''}:{name}"


def signature(rows) -> str:
    """The signature of one run's jobs, from their (name, attempt, conclusion) rows."""
    return SEP.join(sorted(element(name, attempt, conclusion) for name, attempt, conclusion in rows))


def parse(value: str) -> list[tuple[str, int, str | None]]:
    """The (name, attempt, conclusion) rows a signature lists (conclusion None when the job had none)."""
    rows = []
    for item in value.split(SEP):
        if item.startswith(MARK):
            attempt, conclusion, name = item[1:].split(":", 2)
            rows.append((name, int(attempt), conclusion or None))
        else:
            rows.append((item, 1, "success"))
    return rows


def _signatures(rows) -> list[dict]:
    """`rollup_run_jobs` rows from `_COLUMNS` rows, grouped by run (in any order)."""
    by_run: dict[int, list] = {}
    for run, name, attempt, conclusion in rows:
        by_run.setdefault(run, []).append((name, attempt, conclusion))
    return [{"run": run, "signature": signature(found)} for run, found in by_run.items()]


def refresh(conn: Connection, keys) -> None:
    runs = sorted({key[1] for key in keys if key[0] == "job_run"})
    for i in range(0, len(runs), CHUNK):
        chunk = runs[i:i + CHUNK]
        found = _signatures(conn.execute(select(*_COLUMNS).where(j.run_gitid.in_(chunk))).all())
        conn.execute(delete(rollup_run_jobs).where(rollup_run_jobs.c.run.in_(chunk)))
        if found:
            conn.execute(insert(rollup_run_jobs), found)


def rebuild(conn: Connection) -> None:
    """Every run's row, from one pass over the jobs in their run order (`idx_jobs_run`)."""
    conn.execute(delete(rollup_run_jobs))
    current, found = None, []
    batch: list[dict] = []
    for partition in conn.execute(select(*_COLUMNS).order_by(j.run_gitid)).yield_per(50_000).partitions():
        for run, name, attempt, conclusion in partition:
            if run != current:
                if found:
                    batch.append({"run": current, "signature": signature(found)})
                current, found = run, []
            found.append((name, attempt, conclusion))
        if len(batch) >= 10_000:
            conn.execute(insert(rollup_run_jobs), batch)
            batch = []
    if found:
        batch.append({"run": current, "signature": signature(found)})
    if batch:
        conn.execute(insert(rollup_run_jobs), batch)


PART = Part(name="run_jobs", tables=(rollup_run_jobs,), columns=(), kinds=("job_run",),
            refresh=refresh, rebuild=rebuild)
