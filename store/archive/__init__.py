"""Retention: old runs, jobs, steps and deliveries moved out of the store into monthly Parquet files.

A policy (`ARCHIVE_AFTER_DAYS`) sets the horizon, a UTC day: runs created before it (with their attempts,
pull requests, jobs, steps, and failed jobs' logs and failure lines) and deliveries received before it
(dead letters excepted: they wait for a replay) leave the store in bounded batches.  Each batch is one
write transaction: its rows are read, written as one Parquet file per table
(`ARCHIVE_DIR/YYYY-MM/<table>/part-<id>.parquet`, zstd; pandas, DuckDB and Spark read a month's table
directory as one dataset), the files made durable, then the rows deleted and the batch recorded in
`archive_parts`, so a file without its row is a batch that never committed (removed by `clean`).

The derived tables stay: the rollups already count the archived runs, and the charts and cards of long
windows read them, so nothing marks or refreshes those days.  To keep them final the writer refuses
runs and jobs created before the store's horizon (`cutoff`), and `store.derived.rebuild` refuses a store
with archives.  Pages that read the base rows (the commit grid, Triage's groups, a run's jobs) show
what is left; a window's partial first day, read from runs, is empty once archived.

`restore` puts a month back (the same ids, rows already present kept), one batch per transaction,
then deletes its files.  Archiving again later archives it again: raise or clear the policy first.
The files: `store/archive/files.py`; the command: `store/archive/__main__.py`.
"""
import calendar
import importlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from store.archive import files
from store.archive.files import month_name
from store.derived.rollups import DAY, day_of, month_of, next_month
from store.engine import checkpoint, reclaim, writer_options
from store.schema import (archive_parts, deliveries, failure_lines, job_logs, jobs, run_pulls, runattempts, steps,
                          workflowruns)
from store.sqlfunctions import insert as dialect_insert

RECLAIM_PAGES = 2048  # pages given back to the disk per transaction (8 MiB of 4 kB pages)
RUNS_PER_PART = 250  # runs per batch with their ~1,200 jobs: a batch holds the write lock ~0.1 s
DELIVERIES_PER_PART = 2000
IN_CHUNK = 5000  # values in one IN list (SQLite allows 32,766 variables)
# A batch's tables in the order they are restored (parents first) and deleted (reversed).
RUN_TABLES = (workflowruns, runattempts, run_pulls, jobs, steps, job_logs, failure_lines)
TABLES = RUN_TABLES + (deliveries,)
w = workflowruns.c


@dataclass(frozen=True)
class Part:
    id: int
    month: int  # first UTC day of its month
    counts: dict  # {table: rows}
    bytes: int


def location(database: str, configured: str = "") -> Path:
    """Where the archives go: `configured`, else an `archive` directory beside a SQLite store, else ./archive."""
    if configured:
        return Path(configured)
    if "://" in database and not database.startswith("sqlite"):
        return Path("archive")
    path = database.split(":///", 1)[1] if database.startswith("sqlite:///") else database
    return Path(path).resolve().parent / "archive"


def horizon_for(days: float, now: float | None = None) -> int:
    """The horizon of a policy keeping `days` days: the UTC day that began `days` days ago."""
    return day_of((time.time() if now is None else now) - days * DAY)


def horizon(conn: Connection) -> int | None:
    """The store's horizon (UTC day), None when nothing was archived."""
    return conn.execute(select(func.max(archive_parts.c.horizon))).scalar()


def cutoff(conn: Connection) -> float | None:
    """Epoch seconds before which the store holds no runs, jobs or deliveries of its own (they are archived)."""
    day = horizon(conn)
    return None if day is None else float(day * DAY)


def parse_month(text: str) -> int:
    """'2026-09' as the first UTC day of that month."""
    try:
        return day_of(calendar.timegm(time.strptime(text, "%Y-%m")))
    except ValueError:
        raise ValueError(f"not a month (YYYY-MM): {text!r}") from None


# --- archiving ----------------------------------------------------------------------------------------

def _chunks(values: list):
    for i in range(0, len(values), IN_CHUNK):
        yield values[i:i + IN_CHUNK]


def _rows_in(conn: Connection, table, column, values: list) -> list:
    key = list(table.primary_key.columns)
    out = []
    for chunk in _chunks(values):
        out += conn.execute(select(table).where(column.in_(chunk)).order_by(*key)).all()
    return out


def _run_batch(conn: Connection, end: float, limit: int) -> tuple[int, dict] | None:
    """The oldest runs created before `end` (within one month) and everything that belongs to them."""
    first = conn.execute(select(func.min(w.createtime)).where(w.createtime < end)).scalar()
    if first is None:
        return None
    month = month_of(day_of(first))
    until = min(next_month(month) * DAY, end)
    runs = conn.execute(select(workflowruns).where(w.createtime >= first, w.createtime < until)
                        .order_by(w.createtime, w.id).limit(limit)).all()
    ids = [r.id for r in runs]
    gitids = [r.gitid for r in runs]
    rows = {"workflowruns": runs,
            "runattempts": _rows_in(conn, runattempts, runattempts.c.run, ids),
            "run_pulls": _rows_in(conn, run_pulls, run_pulls.c.run, gitids),
            "jobs": _rows_in(conn, jobs, jobs.c.run_gitid, gitids)}
    job_ids = [j.id for j in rows["jobs"]]
    job_gitids = [j.gitid for j in rows["jobs"]]
    rows["steps"] = _rows_in(conn, steps, steps.c.job, job_ids)
    rows["job_logs"] = _rows_in(conn, job_logs, job_logs.c.job, job_gitids)
    rows["failure_lines"] = _rows_in(conn, failure_lines, failure_lines.c.job, job_gitids)
    return month, rows


def _delivery_batch(conn: Connection, end: float, limit: int) -> tuple[int, dict] | None:
    """The oldest deliveries received before `end` (within one month) that are not dead letters."""
    d = deliveries.c
    kept = d.outcome != "failed"
    first = conn.execute(select(func.min(d.received)).where(d.received < end, kept)).scalar()
    if first is None:
        return None
    month = month_of(day_of(first))
    until = min(next_month(month) * DAY, end)
    rows = conn.execute(select(deliveries).where(d.received >= first, d.received < until, kept)
                        .order_by(d.received, d.id).limit(limit)).all()
    return month, {"deliveries": rows}


def _delete(conn: Connection, rows: dict) -> None:
    for table in reversed(TABLES):
        found = rows.get(table.name)
        if not found:
            continue
        key = list(table.primary_key.columns)
        if len(key) == 1:
            values = [getattr(r, key[0].name) for r in found]
            for chunk in _chunks(values):
                conn.execute(delete(table).where(key[0].in_(chunk)))
        else:  # run_pulls, failure_lines: every row of the batch's runs or jobs
            parent = {"run_pulls": run_pulls.c.run, "failure_lines": failure_lines.c.job}[table.name]
            values = sorted({getattr(r, parent.name) for r in found})
            for chunk in _chunks(values):
                conn.execute(delete(table).where(parent.in_(chunk)))


def archive_step(engine: Engine, root: Path, horizon_day: int, *, runs: int = RUNS_PER_PART,
                 deliveries_per_part: int = DELIVERIES_PER_PART, now: float | None = None) -> Part | None:
    """Archive one batch of what lies before `horizon_day` (runs first, then deliveries); None when nothing does."""
    end = float(horizon_day * DAY)
    written: list[Path] = []
    try:
        with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            batch = _run_batch(conn, end, runs) or _delivery_batch(conn, end, deliveries_per_part)
            if batch is None:
                return None
            month, rows = batch
            part_id = conn.execute(insert(archive_parts).values(
                month=month, horizon=horizon_day, created=time.time() if now is None else now, counts="{}",
                bytes=0)).inserted_primary_key[0]
            size = 0
            for name, found in rows.items():
                if found:
                    path = files.path(root, month, name, part_id)
                    written.append(path)
                    size += files.write(path, TABLES_BY_NAME[name], found)
            _delete(conn, rows)
            counts = {name: len(found) for name, found in rows.items() if found}
            conn.execute(update(archive_parts).where(archive_parts.c.id == part_id)
                         .values(counts=json.dumps(counts, sort_keys=True), bytes=size))
    except BaseException:
        for path in written:  # the batch did not commit: its rows are still in the store
            path.unlink(missing_ok=True)
        raise
    return Part(part_id, month, counts, size)


TABLES_BY_NAME = {table.name: table for table in TABLES}


def clean(engine: Engine, root: Path) -> int:
    """Remove files of batches that never committed (a crash between the write and the commit); how many."""
    if not root.is_dir():
        return 0
    with engine.connect() as conn:
        known = set(conn.execute(select(archive_parts.c.id)).scalars())
    removed = 0
    for path in root.glob("*/*/part-*.*"):
        number = path.name.split(".")[0].removeprefix("part-")
        if not number.isdigit():
            continue  # not one of ours
        if path.suffix == ".tmp" or int(number) not in known:
            path.unlink()
            removed += 1
    return removed


class Archiver:
    """The policy, one bounded step at a time: the processor calls `step` between its batches, so archiving
    takes turns with ingest instead of holding the store.  A pass starts at most every `every` seconds and
    goes on until nothing lies before the horizon, then gives the freed pages back to the disk."""

    def __init__(self, engine: Engine, root: Path, days: float, *, every: float = 3600.0, runs: int = RUNS_PER_PART,
                 now=None):
        self.engine, self.root, self.days, self.every, self.runs = engine, Path(root), days, every, runs
        self.now = now  # callable giving the time (tests); None: the clock
        self.parts: list[Part] = []  # archived in the current (or last) pass
        self.reclaimed = 0  # pages given back to the disk in the current (or last) pass
        self._phase: str | None = None  # None (waiting for the next pass) | starting | archive | reclaim
        self._started = 0.0  # time.monotonic() of the last pass
        self._day = 0

    def stop_pass(self) -> None:
        """Give up the current pass (after an error): the next starts `every` seconds after this one did."""
        self._phase = None

    def step(self) -> bool:
        """Do one bounded piece of work; True while the pass has more to do."""
        if self.days <= 0:
            return False
        if self._phase is None:
            if self._started and time.monotonic() - self._started < self.every:
                return False
            self._started, self._phase = time.monotonic(), "starting"
            importlib.import_module("pyarrow.parquet")  # ~0.4 s: here, not inside the first batch's transaction

            clean(self.engine, self.root)
            self._day = horizon_for(self.days, None if self.now is None else self.now())
            with self.engine.connect() as conn:
                self._day = max(self._day, horizon(conn) or self._day)  # the horizon never moves back
            self.parts, self.reclaimed, self._phase = [], 0, "archive"
        if self._phase == "archive":
            part = archive_step(self.engine, self.root, self._day, runs=self.runs,
                                now=None if self.now is None else self.now())
            if part is not None:
                self.parts.append(part)
                self.reclaimed += reclaim(self.engine, RECLAIM_PAGES) or 0
                return True
            self._phase = "reclaim"
        given = reclaim(self.engine, RECLAIM_PAGES)
        if given:
            self.reclaimed += given
            return True
        if self.parts:
            checkpoint(self.engine)  # the file shrinks now, not at the next automatic checkpoint
        self._phase = None
        return False


def archive(engine: Engine, root: Path, days: float, *, now: float | None = None, runs: int = RUNS_PER_PART,
            stop=None, pause: float = 0.0) -> list[Part]:
    """Archive everything older than `days` days, batch by batch (`pause` seconds between batches leave the
    store to other writers; `stop()` true ends early); the batches archived."""
    archiver = Archiver(engine, root, days, runs=runs, now=None if now is None else (lambda: now))
    while (stop is None or not stop()) and archiver.step():
        if pause:
            time.sleep(pause)
    return archiver.parts


# --- reading and restoring ------------------------------------------------------------------------------

def months(conn: Connection) -> list[dict]:
    """Each archived month: its batches, rows per table and bytes on disk, oldest first."""
    out: dict[int, dict] = {}
    for month, counts, size in conn.execute(select(archive_parts.c.month, archive_parts.c.counts,
                                                   archive_parts.c.bytes).order_by(archive_parts.c.id)):
        entry = out.setdefault(month, {"month": month_name(month), "parts": 0, "rows": {}, "bytes": 0})
        entry["parts"] += 1
        entry["bytes"] += size
        for name, n in json.loads(counts).items():
            entry["rows"][name] = entry["rows"].get(name, 0) + n
    return [out[m] for m in sorted(out)]


def restore(engine: Engine, root: Path, month: int) -> dict:
    """Put an archived month's rows back into the store, a batch per transaction, then delete its files; the
    rows restored per table.  Rows whose key is already stored are kept as they are."""
    with engine.connect() as conn:
        parts = conn.execute(select(archive_parts.c.id, archive_parts.c.counts).where(archive_parts.c.month == month)
                             .order_by(archive_parts.c.id)).all()
    if not parts:
        raise ValueError(f"no archive of {month_name(month)}")
    restored: dict[str, int] = {}
    for part, counts in parts:
        expected = json.loads(counts)
        with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            for table in TABLES:
                rows = files.read(root, month, part, table)
                if len(rows) != expected.get(table.name, 0):  # a file lost or replaced: keep the batch's record
                    raise ValueError(f"batch {part} of {month_name(month)}: {len(rows):,} {table.name} rows in "
                                     f"{root}, {expected.get(table.name, 0):,} archived; nothing of it restored")
                for i in range(0, len(rows), 1000):
                    conn.execute(dialect_insert(conn, table).on_conflict_do_nothing(), rows[i:i + 1000])
                if rows:
                    restored[table.name] = restored.get(table.name, 0) + len(rows)
            conn.execute(delete(archive_parts).where(archive_parts.c.id == part))
        for table in TABLES:
            files.path(root, month, table.name, part).unlink(missing_ok=True)
    for directory in sorted((root / month_name(month)).glob("*"), reverse=True) + [root / month_name(month)]:
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    return restored
