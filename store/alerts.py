"""Alert breaks and the outbox, as the decisions write them (`alerts/decide.py`).

Every function runs on a connection inside a transaction the caller owns: the
one that wrote the runs the decision is about, so a break and its messages
are committed with the state that caused them, or not at all.  The sender's
side of the outbox is `store/outbox.py`; the page's reads `store/queries/alerts.py`.
"""
import json

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.engine import Connection

from store.schema import alert_breaks, alert_messages, commits, deliveries, workflowruns
from store.sqlfunctions import insert

b, m = alert_breaks.c, alert_messages.c
OPEN, CLOSED = "open", "closed"
PENDING, QUIET = "pending", "quiet"
BREAK_KEYS = ("id", "kind", "state", "first_bad", "last_bad", "last_green", "red_count", "red_since", "quiet",
              "fixed_by", "first_pos", "last_pos")
_first, _last = commits.alias("first_bad_commit"), commits.alias("last_bad_commit")


def breaks_of(conn: Connection, rule: str, subject: str, limit: int = 20) -> list[dict]:
    """The newest breaks of (rule, subject), open first, each with its first and last bad commits'
    positions along the branch ((time, sha): the order decisions walk commits in)."""
    rows = conn.execute(
        select(b.id, b.kind, b.state, b.first_bad, b.last_bad, b.last_green, b.red_count, b.red_since, b.quiet,
               b.fixed_by, _first.c.time, _first.c.hash, _last.c.time, _last.c.hash)
        .select_from(alert_breaks.outerjoin(_first, _first.c.id == b.first_bad).outerjoin(_last, _last.c.id == b.last_bad))
        .where(b.rule == rule, b.subject == subject)
        .order_by((b.state == OPEN).desc(), b.opened.desc()).limit(limit)).all()
    out = []
    for row in rows:
        found = dict(zip(BREAK_KEYS[:10], row[:10]))
        found["first_pos"] = (row[10], row[11]) if row[10] is not None else None
        found["last_pos"] = (row[12], row[13]) if row[12] is not None else None
        out.append(found)
    return out


def open_breaks(conn: Connection, kinds=None) -> list[dict]:
    """Every open break: id, rule, kind, subject, workflow, branch, red_since, quiet."""
    query = select(b.id, b.rule, b.kind, b.subject, b.workflow, b.branch, b.red_since, b.quiet).where(b.state == OPEN)
    if kinds:
        query = query.where(b.kind.in_(list(kinds)))
    return [dict(row._mapping) for row in conn.execute(query)]


def rule_subjects(conn: Connection, rule: str) -> set[str]:
    """The subjects a rule has decided anything about."""
    return set(conn.execute(select(b.subject).where(b.rule == rule).distinct()).scalars())


def open_break(conn: Connection, *, rule: str, kind: str, subject: str, now: float, quiet: bool, **values) -> int:
    """A new open break; its id."""
    row = {"rule": rule, "kind": kind, "subject": subject, "state": OPEN, "opened": now, "quiet": int(quiet),
           **values}
    if isinstance(row.get("detail"), dict):
        row["detail"] = json.dumps(row["detail"], sort_keys=True)
    return conn.execute(insert(conn, alert_breaks).values(**row).returning(b.id)).scalar_one()


def update_break(conn: Connection, break_id: int, **values) -> None:
    if values:
        conn.execute(update(alert_breaks).where(b.id == break_id).values(**values))


def close_break(conn: Connection, break_id: int, *, when: float, fixed_by: int | None = None) -> None:
    """Close an open break: fixed at `when` (the fixing run's start, or when the figure fell back)."""
    conn.execute(update(alert_breaks).where(b.id == break_id, b.state == OPEN)
                 .values(state=CLOSED, closed=when, fixed_by=fixed_by))


def queue(conn: Connection, *, break_id: int | None, rule: str, channels, kind: str, body: dict, now: float,
          quiet: bool) -> int:
    """One message per channel, unless that (break, channel, kind) was decided before; how many were new."""
    rows = [{"break_id": break_id, "rule": rule, "channel": channel, "kind": kind, "created": now,
             "body": json.dumps(body, sort_keys=True), "state": QUIET if quiet else PENDING, "tries": 0,
             "next_try": now} for channel in channels]
    if not rows:
        return 0
    # Counted from RETURNING: an executemany's rowcount is not the rows inserted on every driver (psycopg's
    # is the last statement's).
    return len(conn.execute(insert(conn, alert_messages).on_conflict_do_nothing(
        index_elements=[m.break_id, m.channel, m.kind]).returning(m.id), rows).all())


def refresh_unsent(conn: Connection, break_id: int, kind: str, body: dict) -> None:
    """Rewrite a break's messages of `kind` that no send has tried yet (what they say became truer)."""
    conn.execute(update(alert_messages).where(m.break_id == break_id, m.kind == kind, m.tries == 0,
                                              m.state.in_([PENDING, QUIET]))
                 .values(body=json.dumps(body, sort_keys=True)))


def decided(conn: Connection, break_id: int, kind: str) -> bool:
    """True when a message of `kind` was decided for the break (on any channel)."""
    return conn.execute(select(m.id).where(m.break_id == break_id, m.kind == kind).limit(1)).first() is not None


def failed_deliveries(conn: Connection) -> int:
    """Deliveries logged failed (the dead letters `init_db.py --replay` re-applies)."""
    return conn.execute(select(func.count()).select_from(deliveries).where(deliveries.c.outcome == "failed")).scalar()


def commits_between(conn: Connection, repo: str, branch: int, after: float | None, upto: float, limit: int):
    """Commits of `repo` with a run on `branch`, after `after` (exclusive) up to `upto` (inclusive) in time,
    oldest first, at most `limit`, and how many there are in all."""
    w = workflowruns.c
    on_branch = exists().where(w.commitid == commits.c.id, w.branch == branch)  # idx_workflowruns_branch_commit
    where = and_(commits.c.repo == repo, on_branch, commits.c.time <= upto,
                 *([commits.c.time > after] if after is not None else []))
    total = conn.execute(select(func.count()).select_from(commits).where(where)).scalar()
    rows = conn.execute(select(commits.c.id, commits.c.hash, commits.c.message, commits.c.author, commits.c.time)
                        .where(where).order_by(commits.c.time.desc(), commits.c.hash.desc()).limit(limit)).all()
    return list(reversed(rows)), total
