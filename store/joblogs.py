"""The capture queue of failed jobs' logs (`job_logs`) and their failure lines (`failure_lines`).

The writer queues a job when it completes failed (`store/writer.py`); the
fetcher (`ingest/joblogs.py`) takes due jobs, newest first, and records what
it found with `save`, or `retry` / `give_up`; the demo saves its own logs.
Every function runs on a connection inside a transaction the caller owns.
"""
import zlib

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from store.schema import failure_lines, job_logs

PENDING, DONE, FAILED, GONE = "pending", "done", "failed", "gone"
j = job_logs.c


def _insert(conn: Connection):
    return (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(job_logs)


def queue(conn: Connection, jobs, now: float) -> None:
    """Queue (job gitid, repo) pairs not queued before, due now."""
    rows = [{"job": job, "repo": repo, "state": PENDING, "tries": 0, "queued": now, "next_try": now, "truncated": 0}
            for job, repo in jobs]
    if rows:
        conn.execute(_insert(conn).on_conflict_do_nothing(index_elements=[j.job]), rows)


def due(conn: Connection, now: float, limit: int) -> list[tuple[int, str, int]]:
    """(job gitid, repo, tries) of pending jobs due by `now`, newest job first (the one a reader waits for)."""
    return [tuple(row) for row in conn.execute(
        select(j.job, j.repo, j.tries).where(j.state == PENDING, j.next_try <= now)
        .order_by(j.job.desc()).limit(limit))]


def save(conn: Connection, job: int, repo: str, extraction, *, source: str, now: float) -> None:
    """Record a job's extraction (`failures.Extraction`): its failure lines replace any earlier ones."""
    conn.execute(delete(failure_lines).where(failure_lines.c.job == job))
    if extraction.lines:
        conn.execute(failure_lines.insert(), [
            {"job": job, "ordinal": i, "rule": line.rule, "class": line.klass, "text": line.text,
             "fingerprint": line.fingerprint, "source": line.source, "path": line.path, "line": line.line,
             "fallback": int(line.fallback)}
            for i, line in enumerate(extraction.lines)])
    values = {"state": DONE, "fetched": now, "error": None, "source": source, "log_bytes": extraction.log_bytes,
              "truncated": int(extraction.truncated),
              "excerpt": zlib.compress(extraction.excerpt.encode("utf-8"), 6) if extraction.excerpt else None}
    ins = _insert(conn)
    conn.execute(ins.values(job=job, repo=repo, tries=0, queued=now, next_try=now, **values)
                 .on_conflict_do_update(index_elements=[j.job], set_=values))


def retry(conn: Connection, job: int, error: str, next_try: float) -> None:
    """A fetch failed for a reason that may pass: try again from `next_try`."""
    conn.execute(update(job_logs).where(j.job == job)
                 .values(tries=j.tries + 1, next_try=next_try, error=error[:500]))


def give_up(conn: Connection, job: int, state: str, error: str, now: float) -> None:
    """No more tries: `failed` (kept failing) or `gone` (GitHub has no such log, or no longer)."""
    conn.execute(update(job_logs).where(j.job == job)
                 .values(state=state, tries=j.tries + 1, fetched=now, error=error[:500]))


def pause(conn: Connection, until: float, error: str) -> int:
    """GitHub rate-limited the fetcher: every pending row due before `until` waits until then, `error` saying
    why, so that any process can show the pause from the store.  The number of rows moved."""
    return conn.execute(update(job_logs).where(j.state == PENDING, j.next_try < until)
                        .values(next_try=until, error=error[:500])).rowcount


def excerpt(conn: Connection, job: int) -> str | None:
    """The kept lines of a job's log, or None."""
    blob = conn.execute(select(j.excerpt).where(j.job == job)).scalar()
    return zlib.decompress(blob).decode("utf-8", "replace") if blob else None


def counts(conn: Connection) -> dict[str, int]:
    """How many jobs are in each state."""
    return {state: n for state, n in conn.execute(select(j.state, func.count()).group_by(j.state))}
