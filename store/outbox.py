"""The sender's side of the alert outbox (`alert_messages`): what is due, and each delivery's outcome.

The decision side (`store/alerts.py`) inserts messages `pending` in the transaction that decided
them; the sender (`alerts/sender.py`) takes the due ones in id order, claims each (`sending`, one
more try) in its own short transaction, sends it outside any transaction, then records `delivered`,
`retry` (pending again, later), `give_up` (failed) or `skip`.  A crash mid-send leaves a `sending`
row, which `reset_sending` makes pending again: delivery is at least once, and the receivers get
ids to drop a repeat.  Every function runs on a connection inside a transaction the caller owns.
"""
import json

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.engine import Connection

from store.schema import alert_messages

PENDING, SENDING, DELIVERED, FAILED, QUIET, SKIPPED = "pending", "sending", "delivered", "failed", "quiet", "skipped"
MAX_ERROR = 500
m = alert_messages.c


def due(conn: Connection, now: float, limit: int) -> list[dict]:
    """Pending messages due by `now`, in id order, each only when no earlier message of its (break, channel) is
    still pending or sending: a recovery waits for its break message, however long that one is retried."""
    earlier = alert_messages.alias("earlier")
    blocked = exists().where(earlier.c.break_id == m.break_id, earlier.c.channel == m.channel,
                             earlier.c.id < m.id, earlier.c.state.in_((PENDING, SENDING)))
    rows = conn.execute(
        select(alert_messages)
        .where(m.state == PENDING, or_(m.next_try.is_(None), m.next_try <= now),
               or_(m.break_id.is_(None), ~blocked))
        .order_by(m.id).limit(limit)).mappings().all()
    return [dict(row, body=json.loads(row["body"])) for row in rows]


def get(conn: Connection, message_id: int) -> dict | None:
    row = conn.execute(select(alert_messages).where(m.id == message_id)).mappings().first()
    return None if row is None else dict(row, body=json.loads(row["body"]))


def claim(conn: Connection, message_id: int) -> bool:
    """Take a pending message for sending (one more try); False when it is no longer pending."""
    return conn.execute(update(alert_messages).where(m.id == message_id, m.state == PENDING)
                        .values(state=SENDING, tries=m.tries + 1)).rowcount == 1


def delivered(conn: Connection, message_id: int, now: float, ref: str | None) -> None:
    """Sent.  `last_error` stays: the page shows what the retries met."""
    conn.execute(update(alert_messages).where(m.id == message_id)
                 .values(state=DELIVERED, sent=now, ref=ref, next_try=None))


def retry(conn: Connection, message_id: int, error: str, next_try: float) -> None:
    """Not sent, for a reason that may pass: pending again, due from `next_try`."""
    conn.execute(update(alert_messages).where(m.id == message_id)
                 .values(state=PENDING, next_try=next_try, last_error=error[:MAX_ERROR]))


def give_up(conn: Connection, message_id: int, error: str) -> None:
    """Not sent and never will be: failed (a dead letter the operator can be told about)."""
    conn.execute(update(alert_messages).where(m.id == message_id)
                 .values(state=FAILED, next_try=None, last_error=error[:MAX_ERROR]))


def skip(conn: Connection, message_id: int, reason: str) -> None:
    """Nothing to send (a recovery whose break message was never delivered on this channel)."""
    conn.execute(update(alert_messages).where(m.id == message_id)
                 .values(state=SKIPPED, next_try=None, last_error=reason[:MAX_ERROR]))


def reset_sending(conn: Connection) -> int:
    """Messages left `sending` by a sender that stopped mid-send: pending again.  How many."""
    return conn.execute(update(alert_messages).where(m.state == SENDING).values(state=PENDING)).rowcount


def insert_test(conn: Connection, channel: str, body: dict, now: float) -> int:
    """A test message, already claimed (`sending`, try 1): it is sent at once by whoever asked, not by the
    sender's loop.  Its id."""
    return conn.execute(alert_messages.insert().values(
        break_id=None, rule=None, channel=channel, kind="test", body=json.dumps(body), created=now,
        state=SENDING, tries=1, next_try=None)).inserted_primary_key[0]


def break_message(conn: Connection, break_id: int, channel: str) -> dict | None:
    """{"id", "state", "ref"} of the break's first message on `channel` (kind `break`), or None."""
    row = conn.execute(select(m.id, m.state, m.ref).where(m.break_id == break_id, m.channel == channel,
                                                          m.kind == "break")).mappings().first()
    return dict(row) if row else None


def counts(conn: Connection) -> dict[str, int]:
    """How many messages are in each state."""
    return {state: n for state, n in conn.execute(select(m.state, func.count()).group_by(m.state))}

