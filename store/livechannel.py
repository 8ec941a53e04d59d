"""The live channel of a PostgreSQL store: its SQL, behind `live/pgbus.py`.

Processes on any host that share a PostgreSQL store pass each other messages through it.  A batch of
live messages is a row of `live_messages` followed by a NOTIFY of its id on the `live` channel (a NOTIFY
payload holds at most 8,000 bytes; a batch can be far larger); a listener reads every row after the
last id it saw, in id order.  The appending transaction takes a transaction-level advisory lock first,
so rows are numbered and committed one at a time: a row with a lower id never becomes visible after a
higher one, which a reader that has moved past it would skip.  Other kinds (wake-ups) are a NOTIFY
alone, whose payload names the sender.  Rows older than `KEEP` seconds are deleted by the senders, at
most every `PRUNE_EVERY` seconds each, inside the same lock: a listener disconnected for longer than
`KEEP` does not get what was published before that.
"""
import select as _select

from sqlalchemy import Column, Float, MetaData, Table, Text, delete, func, select, text
from sqlalchemy.engine import Engine

from store.schema import ID

# Not a table of the build store (`store.schema`): a few minutes of messages in transit, on PostgreSQL
# stores only (migration 0017).  SQLite stores' processes share one machine and pass them over local
# sockets (live/bus.py).
metadata = MetaData()
live_messages = Table(
    "live_messages",
    metadata,
    Column("id", ID, primary_key=True),
    Column("created", Float, nullable=False),  # when it was sent (epoch seconds): pruned KEEP after
    Column("origin", Text, nullable=False),  # the sending bus's name: a reader skips its own
    Column("body", Text, nullable=False),  # JSON: the list of hub messages
)

KEEP = 300.0  # seconds a batch stays readable: the longest outage a listener catches up from
PRUNE_EVERY = 30.0  # seconds between one sender's deletions of older rows
READ_LIMIT = 500  # rows read at a time
MAX_NOTIFY = 7999  # bytes of a NOTIFY payload: PostgreSQL takes fewer than 8,000
ORDER_LOCK = 0x6275696C646C6976  # "buildliv": held by the transaction appending a row
LIVE = "live"  # the kind of message stored in the table
m = live_messages.c


def channel(kind: str) -> str:
    """The NOTIFY channel of a kind of message (the same in every process of every host)."""
    if not kind.isidentifier():
        raise ValueError(f"not a channel name: {kind!r}")
    return f"buildmon_{kind.lower()}"


def append(engine: Engine, origin: str, body: str, now: float, *, prune: bool = False) -> int:
    """Store `body` (JSON) as the next row, NOTIFY its id on the channel of `live`, and with `prune` delete the
    rows older than KEEP; commits, and returns the new row's id."""
    with engine.begin() as conn:
        return append_in(conn, origin, body, now, prune=prune)


def append_in(conn, origin: str, body: str, now: float, *, prune: bool = False) -> int:
    """`append` in the caller's transaction: the row and its NOTIFY become visible when it commits (a
    processor's batch: its messages then reach the other processes in the order the batches committed).
    The order lock is held from here to that commit: call it last."""
    conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ORDER_LOCK})
    new_id = conn.execute(live_messages.insert().values(created=now, origin=origin, body=body)
                          .returning(m.id)).scalar_one()
    conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel(LIVE), "payload": str(new_id)})
    if prune:
        # A few minutes of batches: a sequential scan costs less than an index every insert would.
        conn.execute(delete(live_messages).where(m.created < now - KEEP))
    return new_id


def notify(engine: Engine, kind: str, origin: str, body: str = "") -> None:
    """A NOTIFY alone on the kind's channel: `origin`, a newline, then `body` (small JSON, or nothing)."""
    payload = f"{origin}\n{body}"
    if len(payload.encode()) > MAX_NOTIFY:
        raise ValueError(f"a {kind} message of {len(payload.encode())} bytes is too large for a NOTIFY")
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel(kind), "payload": payload})


def newest_id(engine: Engine) -> int:
    """The id of the newest row (0 when none): a new listener reads only what comes after it."""
    with engine.connect() as conn:
        return conn.execute(select(func.coalesce(func.max(m.id), 0))).scalar_one()


def read_after(engine: Engine, last_id: int, limit: int = READ_LIMIT) -> list:
    """(id, origin, body) of the rows after `last_id`, oldest first, at most `limit`."""
    with engine.connect() as conn:
        return conn.execute(select(m.id, m.origin, m.body).where(m.id > last_id).order_by(m.id).limit(limit)).all()


class Listener:
    """A connection of its own (psycopg 3, autocommit) that LISTENs on the channels of `kinds`.

    Not a connection of the engine's pool: it is held for the process's lifetime, and it stays idle
    between notifications, which a pooled connection must not (pool_pre_ping, recycling)."""

    def __init__(self, engine: Engine, kinds):
        import psycopg

        args, kwargs = engine.dialect.create_connect_args(engine.url)
        kwargs.pop("context", None)
        # Keepalives notice a peer that vanished without closing (a host or network gone) in about a minute.
        for key, value in {"connect_timeout": 5, "keepalives": 1, "keepalives_idle": 30,
                           "keepalives_interval": 10, "keepalives_count": 3}.items():
            kwargs.setdefault(key, value)
        self.conn = psycopg.connect(*args, autocommit=True, **kwargs)
        self.channels = {channel(kind): kind for kind in kinds}
        try:
            for name in self.channels:
                self.conn.execute(f"LISTEN {name}")
        except Exception:
            self.conn.close()
            raise

    def fileno(self) -> int:
        return self.conn.fileno()

    def wait(self, timeout: float, also=()) -> tuple[list, bool]:
        """([(kind, payload), ...] received, whether any of the descriptors `also` became readable),
        waiting up to `timeout` seconds for either.  A lost connection raises."""
        # poll, not select: a web process holding hundreds of sockets may give this one a number past
        # select's limit of 1024.
        poller = _select.poll()
        for fd in (self.conn.fileno(), *also):
            poller.register(fd, _select.POLLIN)
        ready = {fd for fd, _event in poller.poll(timeout * 1000)}
        interrupted = any(fd in ready for fd in also)
        received = [(self.channels.get(n.channel, n.channel), n.payload) for n in self.conn.notifies(timeout=0)]
        return received, interrupted

    def check(self) -> None:
        """A round trip: raises when the connection is gone (notifications that arrive meanwhile are kept)."""
        self.conn.execute("SELECT 1")

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:
            pass
