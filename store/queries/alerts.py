"""The alerts as the Alerts page and `/api/alerts` read them: open breaks, their history, the outbox.

A *break* is a row of `alert_breaks` (`store/alerts.py` writes them): a watched workflow red on a
branch, a stuck run, an operator's threshold crossed.  Each break has messages in `alert_messages`,
one per (channel, kind), which the sender delivers; a test message has no break.

Every read is an index search or a short index walk, whatever the history's size:
open breaks from the partial index of open rows, history from `idx_alert_breaks_closed`
(newest closed first), messages from `idx_alert_messages_created`, a break's messages from the
unique key (break_id, channel, kind), counts of messages by state from `idx_alert_messages_due`.
Names and commits are joined by primary key.  Plain SQL of SQLite and PostgreSQL alike; bodies
(JSON) are read here, only for the few rows shown.
"""
import json
import time

from sqlalchemy import case, func, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from store.schema import alert_breaks, alert_messages, branches, commits, repos, workflows

MESSAGE_STATES = ("pending", "sending", "delivered", "failed", "quiet", "skipped")
MESSAGE_KINDS = ("break", "recovery", "reminder", "test")
BREAK_KINDS = ("red", "stale", "lag", "failed_deliveries")
COMMIT_KEYS = ("sha", "title", "author", "time")
MESSAGE_KEYS = ("id", "break_id", "rule", "channel", "kind", "state", "tries", "created", "next_try", "sent",
                "last_error", "ref")
DELIVERY_KEYS = ("id", "channel", "kind", "state", "tries", "next_try", "sent", "last_error")
MAX_TITLE = 300  # characters of a message's title kept (a title is one line; a long one is cut)

b, m = alert_breaks.c, alert_messages.c
_ROLES = ("first_bad", "last_bad", "last_green", "fixed_by")
_COMMITS = {role: aliased(commits, name=f"c_{role}") for role in _ROLES}
# Literal, so that SQLite can read open rows from the partial index `uq_alert_breaks_open` (a bound value
# could be anything: the planner cannot use a partial index for it).
_OPEN = b.state == literal_column("'open'")


def _break_select():
    columns = [b.id, b.rule, b.kind, b.subject, b.state, b.repo, repos.c.url.label("repo_url"),
               workflows.c.name.label("workflow"), branches.c.name.label("branch"), b.opened, b.closed, b.red_since,
               b.red_count, b.quiet]
    joined = (alert_breaks.outerjoin(repos, repos.c.name == b.repo)
              .outerjoin(workflows, workflows.c.id == b.workflow)
              .outerjoin(branches, branches.c.id == b.branch))
    for role, c in _COMMITS.items():
        columns += [c.c.hash.label(f"{role}_sha"), c.c.message.label(f"{role}_message"),
                    c.c.author.label(f"{role}_author"), c.c.time.label(f"{role}_time")]
        joined = joined.outerjoin(c, c.c.id == b[role])
    return select(*columns).select_from(joined)


def _title(text) -> str:
    """A commit message's first line, or a body's title: one line of text."""
    if not isinstance(text, str):
        return ""
    lines = text.strip().splitlines()
    return lines[0].strip()[:MAX_TITLE] if lines else ""


def _break(row, now: float) -> dict:
    r = row._mapping
    out = {k: r[k] for k in ("id", "rule", "kind", "subject", "state", "repo", "repo_url", "workflow", "branch",
                             "opened", "closed", "red_since", "red_count")}
    out["quiet"] = bool(r["quiet"])
    # How long it was red: to now while open, to its closing once closed.
    end = r["closed"] if r["closed"] is not None else now
    out["red_for"] = max(end - r["red_since"], 0.0) if r["red_since"] is not None else None
    for role in _ROLES:
        sha = r[f"{role}_sha"]
        out[role] = None if sha is None else {"sha": sha, "title": _title(r[f"{role}_message"]),
                                              "author": r[f"{role}_author"], "time": r[f"{role}_time"]}
    out["title"] = ""
    out["deliveries"] = []
    return out


def _with_deliveries(conn: Connection, found: list[dict]) -> list[dict]:
    """Each break with its messages (`deliveries`, by channel then id) and the title its break message gives."""
    if not found:
        return found
    by_id = {x["id"]: x for x in found}
    body = case((m.kind == "break", m.body), else_=None)  # only the break message's body is read: its title
    rows = conn.execute(select(*(m[k] for k in DELIVERY_KEYS), m.break_id, body.label("body"))
                        .where(m.break_id.in_(list(by_id))).order_by(m.break_id, m.channel, m.id)).all()
    for row in rows:
        r = row._mapping
        x = by_id[r["break_id"]]
        x["deliveries"].append({k: r[k] for k in DELIVERY_KEYS})
        if r["body"] is not None and not x["title"]:
            x["title"] = body_title(r["body"])
    return found


def open_breaks(conn: Connection, *, now: float | None = None, limit: int = 200) -> list[dict]:
    """The open breaks, newest opened first: names, first bad commit, red for, red commits and deliveries.

    Keys: id, rule, kind, subject, state, repo, repo_url, workflow, branch (names, None when the break is not
    about one), opened, closed (None), red_since, red_for (seconds to `now`), red_count, quiet, first_bad,
    last_bad, last_green, fixed_by (COMMIT dicts {sha, title, author, time} or None), title (its break
    message's), deliveries (its messages: id, channel, kind, state, tries, next_try, sent, last_error)."""
    now = time.time() if now is None else now
    rows = conn.execute(_break_select().where(_OPEN).order_by(b.opened.desc(), b.id.desc()).limit(limit)).all()
    return _with_deliveries(conn, [_break(row, now) for row in rows])


def history(conn: Connection, *, limit: int = 50, offset: int = 0) -> list[dict]:
    """Closed breaks, newest closed first (`limit` from `offset`): the keys of `open_breaks`, red_for up to
    the closing and fixed_by the first green commit after the break."""
    rows = conn.execute(_break_select().where(b.closed.is_not(None))
                        .order_by(b.closed.desc(), b.id.desc()).limit(limit).offset(offset)).all()
    return _with_deliveries(conn, [_break(row, 0.0) for row in rows])


def body_title(body) -> str:
    """The title of a message body (JSON text, `alerts/message.py`), "" when it has none."""
    try:
        value = json.loads(body) if isinstance(body, (str, bytes)) else body
    except (ValueError, RecursionError):
        return ""
    return _title(value.get("title")) if isinstance(value, dict) else ""


def messages(conn: Connection, *, limit: int = 50, before: int | None = None) -> list[dict]:
    """The outbox, newest first (created, then id): id, break_id, rule, channel, kind, state, tries, created,
    next_try, sent, last_error, ref (what the receiver answered, a GitHub issue's number), and title and
    repo from the body.  `before`: only messages with a smaller id (the next page)."""
    query = select(*(m[k] for k in MESSAGE_KEYS), m.body).order_by(m.created.desc(), m.id.desc()).limit(limit)
    if before is not None:
        query = query.where(m.id < before)
    out = []
    for row in conn.execute(query).all():
        r = row._mapping
        item = {k: r[k] for k in MESSAGE_KEYS}
        try:
            body = json.loads(r["body"])
        except (TypeError, ValueError, RecursionError):
            body = None
        body = body if isinstance(body, dict) else {}
        item["title"] = _title(body.get("title"))
        item["alert"] = body.get("alert") if isinstance(body.get("alert"), str) else None
        item["repo"] = body.get("repo") if isinstance(body.get("repo"), str) else None
        out.append(item)
    return out


def counts(conn: Connection) -> dict:
    """{"open": open breaks, "closed": closed breaks, "messages": {state: messages}} (every state, zeros too)."""
    open_ = conn.execute(select(func.count()).select_from(alert_breaks).where(_OPEN)).scalar_one()
    closed = conn.execute(select(func.count()).select_from(alert_breaks).where(b.closed.is_not(None))).scalar_one()
    by_state = dict.fromkeys(MESSAGE_STATES, 0)
    for state, n in conn.execute(select(m.state, func.count()).group_by(m.state)).all():
        by_state[state] = n
    return {"open": open_, "closed": closed, "messages": by_state}


def last_tests(conn: Connection, channels) -> dict[str, dict]:
    """{channel: its newest test message (the keys of `messages`)} for the `channels` that have one."""
    out = {}
    for name in channels:
        row = conn.execute(select(*(m[k] for k in MESSAGE_KEYS)).where(m.break_id.is_(None), m.channel == name,
                                                                      m.kind == "test")
                           .order_by(m.created.desc(), m.id.desc()).limit(1)).first()
        if row is not None:
            out[name] = dict(row._mapping)
    return out
