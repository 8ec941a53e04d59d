"""Derived state: every table (and column) computed from the base tables, kept in one place.

The seed's "metric aggregation jobs", done inside the write itself.  Base
tables (repos, branches, commits, workflows, workflowruns, runattempts, jobs,
steps, deliveries) are what GitHub said; everything else is derived from them,
and each kind of derived state is one `Part` in `REGISTRY`, which names the
tables and columns it alone writes, the key kinds its refresh reads, and how
it is refreshed and rebuilt.  Nothing else writes derived state.

Keeping it current: a write `mark`s what it touched, and before the
transaction commits `flush` refreshes every marked key once, each part
recomputing its rows of those keys from the base tables and writing what
changed; so derived rows are never behind the rows they derive from.  A
write marks the keys its row counted under before as well as after it (a run
redelivered on another branch, commit, workflow, repository or day; a failed
job that passes or moves to another run): old keys left unmarked would keep
counting it.  `store.writer.apply` marks and, unless it runs inside `batch`,
flushes at its end; a caller applying many deliveries in one transaction runs
them inside `batch` and flushes once (every key touched by the batch is
refreshed once), and calls `discard` after a rollback.  `rebuild` recomputes
everything from the base tables in registry order (migrations,
`bench.generate`); tests check that upkeep in any delivery order equals a
rebuild (`tests/test_rollups.py`; random redeliveries that move runs, jobs
and commits: `tests/test_derived_drift.py`).

Keys (tuples; a key holding None is ignored):

- ``("day", branch, workflow, day)``: a workflow's UTC day on a branch
  (`day_of`), and so also its ``("pair", workflow, branch)``;
- ``("commit", branch, commit)``: all of a commit's runs on a branch;
- ``("commit_run", branch, commit, run)``: one run (workflowruns.id) of a commit on a branch
  was written: its person rows and the commit's times to signal are refreshed from what it
  changed (a run whose first attempt is open settles them without reading its siblings);
- ``("commit_row", repo, sha)``: a commit's own row (its author or time):
  expanded once, when flushed, to ``("commit_author", commit)`` and the
  ``"pair"`` and ``"commit"`` keys of its runs;
- ``("run", gitid)``: a run whose failing job and step may have changed;
- ``("job_run", gitid)``: a run one of whose jobs was written (its runner numbers, its jobs' signature);
- ``("pair", workflow, branch)``, ``("commit_author", commit)``.
"""
from contextlib import contextmanager

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from store.derived import export_lines, failure_causes, people, rollups, run_jobs, runner_days, streaks
from store.derived.part import Part
from store.derived.rollups import day_of
from store.schema import commits, workflowruns

__all__ = ["AFTER_FLUSH", "REGISTRY", "KINDS", "Part", "after_flush", "batch", "day_of", "discard", "flush",
           "in_batch", "mark", "per_batch", "rebuild"]

# Refreshed and rebuilt in this order.  Parts read only base tables, so the order matters only
# for speed and for reading the code; every derived table of `store.schema` is named once.
REGISTRY: tuple[Part, ...] = (
    failure_causes.PART,  # workflowruns.fail_job, fail_step, fail_step_number, fail_author
    rollups.PART,  # rollup_days, rollup_hist, rollup_signals, rollup_pairs, rollup_workflow_days
    streaks.PART,  # rollup_streaks
    people.PART,  # person_runs, person_signals
    runner_days.PART,  # rollup_runner_days
    run_jobs.PART,  # rollup_run_jobs
    export_lines.PART,  # export_lines (kept by SQLite triggers)
)
KINDS = frozenset({"commit_row"} | {kind for part in REGISTRY for kind in part.kinds})

_MARKS = "derived_marks"  # conn.info: the keys marked and not yet flushed
_BATCH = "derived_batch"  # conn.info: how many `batch` blocks are open
_PER_BATCH = "derived_per_batch"  # conn.info: values read once per batch (`per_batch`)
AFTER_FLUSH = "derived_after_flush"  # conn.info: callable(conn, keys) run after each flush (alerts/decide.py)


def mark(conn: Connection, keys) -> None:
    """Note what a write touched, to refresh (`flush`) before this connection's transaction commits."""
    keys = set(keys)
    unknown = {key[0] for key in keys} - KINDS
    if unknown:
        raise ValueError(f"unknown derived key kinds: {sorted(unknown)}")
    conn.info.setdefault(_MARKS, set()).update(keys)


@contextmanager
def batch(conn: Connection):
    """Inside: `store.writer.apply` marks but does not flush; call `flush` before the commit."""
    conn.info[_BATCH] = conn.info.get(_BATCH, 0) + 1
    try:
        yield conn
    finally:
        conn.info[_BATCH] -= 1
        if not conn.info[_BATCH]:
            del conn.info[_BATCH]
            conn.info.pop(_PER_BATCH, None)


def per_batch(conn: Connection, name: str, read):
    """`read(conn)`, read once for a whole `batch` (each delivery's write asks again: on PostgreSQL every
    read is a round trip), and every time outside one."""
    if not in_batch(conn):
        return read(conn)
    values = conn.info.setdefault(_PER_BATCH, {})
    if name not in values:
        values[name] = read(conn)
    return values[name]


@contextmanager
def after_flush(conn: Connection, hook):
    """Inside: every `flush` on `conn` ends with `hook(conn, keys)` (None: nothing).  The hook is kept in
    `conn.info`, which outlives a pooled connection's checkout: it is removed on the way out."""
    if hook is None:
        yield conn
        return
    conn.info[AFTER_FLUSH] = hook
    try:
        yield conn
    finally:
        conn.info.pop(AFTER_FLUSH, None)


def in_batch(conn: Connection) -> bool:
    return bool(conn.info.get(_BATCH))


def flush(conn: Connection) -> None:
    """Refresh everything marked on this connection, each key once, part by part in registry order;
    then the connection's `AFTER_FLUSH` hook sees the keys, in the same transaction (a writer that
    decides alerts sets it: they are decided with the state that causes them)."""
    marked = conn.info.pop(_MARKS, None)
    if not marked:
        return
    keys = _expand(conn, marked)
    for part in REGISTRY:
        if part.kinds:
            mine = sorted(key for key in keys if key[0] in part.kinds)
            if mine:
                part.refresh(conn, mine)
    hook = conn.info.get(AFTER_FLUSH)
    if hook is not None:
        hook(conn, keys)


def discard(conn: Connection) -> None:
    """Forget what was marked on this connection (its transaction rolled back)."""
    conn.info.pop(_MARKS, None)


def rebuild(conn: Connection, parts=None) -> None:
    """Recompute derived state from the base tables, in registry order: every part, or those
    named in `parts` (a migration rebuilds what it created)."""
    names = {part.name for part in REGISTRY}
    if parts is not None and set(parts) - names:
        raise ValueError(f"unknown derived parts: {sorted(set(parts) - names)}")
    if inspect(conn).has_table("archive_parts"):  # absent in the migrations before 0020
        from store.archive import horizon

        if horizon(conn) is not None:
            raise RuntimeError("the store has archived months (store/archive.py): their rows are in the rollups "
                               "but no longer in the base tables, so a rebuild would lose them; restore them "
                               "first (python -m store.archive restore YYYY-MM)")
    for part in REGISTRY:
        if parts is None or part.name in parts:
            part.rebuild(conn)


def _expand(conn: Connection, marked: set) -> set:
    """The marked keys, with each day's pair and each commit row's keys resolved (once for all parts)."""
    keys = {key for key in marked if None not in key and key[0] != "commit_row"}
    keys |= {("pair", key[2], key[1]) for key in keys if key[0] == "day"}
    for _kind, repo, sha in sorted(key for key in marked if key[0] == "commit_row" and None not in key):
        # A commit's author picks its runs' people and failure author; its time orders its runs' cells.
        commit_id = conn.execute(select(commits.c.id).where(commits.c.repo == repo, commits.c.hash == sha)).scalar()
        if commit_id is None:
            continue
        keys.add(("commit_author", commit_id))
        w = workflowruns.c
        for wf, br in conn.execute(select(w.workflow, w.branch).where(w.commitid == commit_id).distinct()).all():
            keys |= {("pair", wf, br), ("commit", br, commit_id)}  # its pairs and branches, from one read
    return keys
