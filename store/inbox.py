"""The inbox: deliveries accepted and acknowledged but not yet applied.

`POST /webhook` appends here and answers once the row is committed; the
processor (`ingest/processor.py`) takes rows in arrival order (`id`), applies
them to the store, logs each in `deliveries` and then removes them.  A row
is removed only after the store's commit, and the store's `deliveries` log
says which GUIDs were applied, so after a crash a row that is still here but
already applied is recognised and skipped: each acknowledged delivery takes
effect exactly once.

On SQLite the inbox is a file of its own beside the store: SQLite has one
writer per file, and accepting a delivery must never wait behind a
processing batch that holds the store's write lock for tens of
milliseconds.  On other databases it is a table of the store itself (row
locks, no such wait).  That choice, the processor's lock (`fcntl.flock`
beside the SQLite file, `pg_try_advisory_lock` on PostgreSQL) and the
repositories' locks below are this module's dialect differences.

On SQLite one processor applies at a time (the lock's holder; the others
stand by).  On PostgreSQL every processor applies (`shared`): the lock's
holder is only the leader, which alone does the periodic work (alert sweeps,
retention, archives).  A repository's deliveries are applied by one
processor at a time, in arrival order: each row carries its repository's
key (`repo`, set by the processors themselves, `key_pending`, so accepting
stays as it was), a processor `pick`s the oldest rows of repositories no
other processor holds, and its batch transaction `claim`s them: it takes a
transaction-level advisory lock per repository (trying, never waiting, so
processors cannot deadlock on them) and deletes the rows it got, so the
removal commits with what they applied.  A killed processor's transaction
is rolled back by the server: its rows and locks are free again at once, and
the next batch takes them.  Every derived key lies within one repository
(`store/derived`), so batches of different repositories never refresh the
same rows.
"""
import fcntl
import hashlib
import logging
import os
import threading
import time
from concurrent.futures import Future
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

from sqlalchemy import Column, Float, Index, Integer, LargeBinary, MetaData, Table, Text, bindparam, delete, \
    func, inspect, select, text, update
from sqlalchemy.engine import Engine

from store.engine import asynchronous_commit, is_sqlite, make_engine, writer_options
from store.migrate import schema_lock
from store.schema import ID, deliveries

metadata = MetaData()
inbox = Table(
    "inbox",
    metadata,
    Column("id", ID, primary_key=True),
    Column("guid", Text, nullable=False, unique=True),
    Column("event", Text, nullable=False),
    Column("content_type", Text, nullable=False),
    Column("received", Float, nullable=False),
    Column("body", LargeBinary, nullable=False),
    # The repository's key (`repository_key`): NULL until a processor has read the body (shared inboxes).
    Column("repo", Integer),
    # AUTOINCREMENT: an id is never reused once its row is removed, so `id` order is arrival order.
    sqlite_autoincrement=True,
)
Index("idx_inbox_received", inbox.c.received)

log = logging.getLogger(__name__)
MAX_GROUP = 1000  # deliveries in one group commit
REPO_LOCKS = 0x62756964  # the advisory locks' first key ("buid"); the second is a repository's key
SCAN = 4  # `pick` looks at the oldest SCAN x limit rows for repositories no other processor holds
_APPLIED = ("processed", "ignored")


@dataclass
class Accepted:
    """A delivery as the webhook hands it over."""
    guid: str
    event: str
    content_type: str
    received: float
    body: bytes


def inbox_location(database: str, configured: str = "") -> str:
    """Where the inbox lives: `configured`, else beside a SQLite store, else the store itself."""
    if configured:
        return configured
    if "://" in database and not database.startswith("sqlite"):
        return database
    path = database.split(":///", 1)[1] if database.startswith("sqlite:///") else database
    root, ext = os.path.splitext(path)
    return f"{root}.inbox{ext or '.db'}"


# The oldest waiting rows, and whether another processor holds each one's repository (its advisory lock
# granted: `claim`); one round trip.  A lock's second key is the repository's key as an unsigned oid.
_SCAN = text(
    "SELECT w.id, w.repo, (w.repo::bigint & 4294967295) IN ("
    "  SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND classid = :ns AND objsubid = 2"
    "  AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())) AS held "
    "FROM (SELECT id, repo FROM inbox ORDER BY id LIMIT :n) AS w ORDER BY w.id")


class Inbox:
    """The inbox table and its group-committing appender."""

    def __init__(self, location: str, store: Engine, *, synchronous: str = "FULL"):
        self.store = store
        if not is_sqlite(store):
            self.engine = store  # a server database: the inbox is one of its tables
        else:
            self.engine = make_engine(location, synchronous=synchronous)
        self.location = location
        self._lock_fd = os.open(location + ".write-lock", os.O_RDWR | os.O_CREAT, 0o600) \
            if self.engine is not store else None
        self._lock_mutex = threading.Lock()
        self._remover = None
        # Web processes start together: create it under the write lock (a plain BEGIN failed at once
        # with "database is locked" when two upgraded their read locks together), and on a server
        # database under the migrations' schema lock (two creating it at once: a duplicate key).
        with self._write_lock(), schema_lock(store) if self.engine is store else nullcontext(), \
                self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            create(conn)
        # Several processors apply at once (see the module's docstring) on a server database only.
        self.shared = self.engine is store
        self._queue: list = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.on_commit = None  # called after each group commit that added rows (wakes the processor)
        # (time, error) of the last group commit that failed, None once one succeeds: /healthz reports it.
        self.write_failure: tuple[float, str] | None = None

    # --- accept: group commit ---------------------------------------------------------------------

    def append(self, item: Accepted, timeout: float = 30.0) -> bool:
        """Commit `item`; True when it was added, False when the GUID is already pending or applied.

        Request threads queue their delivery and wait; one appender thread writes every waiting
        delivery in one transaction and wakes them after its commit (a group commit: one fsync for
        many deliveries), so an answer sent after this returns is durable.
        """
        future: Future = Future()
        with self._cond:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._append_loop, name="inbox-appender", daemon=True)
                self._thread.start()
            self._queue.append((item, future))
            self._cond.notify()
        return future.result(timeout=timeout)

    def _append_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed and not self._queue:
                    return
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            try:
                added = self._write(group)
            except Exception as exc:  # the store is down or full: every waiter hears it
                self.write_failure = (time.time(), f"{type(exc).__name__}: {str(exc)[:200]}")
                for _item, future in group:
                    future.set_exception(exc)
                continue
            self.write_failure = None
            for (_item, future), ok in zip(group, added):
                future.set_result(ok)
            if any(added) and self.on_commit is not None:
                try:
                    self.on_commit()
                except Exception:  # a wake-up lost: the processor looks again within IDLE_POLL
                    log.exception("inbox: waking the processor failed")

    def _write(self, group) -> list[bool]:
        guids = list({item.guid for item, _ in group})
        # GUIDs the store has applied, read before the inbox's write lock is taken (the store is busy
        # with the processor's writes: its reads must not hold up the other appenders).  One applied
        # between this read and the insert is still skipped by the processor: a duplicate answered
        # 202 instead of 200, never applied twice.
        with self.store.connect() as store:
            known = self._applied(store, guids)
        with self._write_lock(), self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            known |= set(conn.execute(select(inbox.c.guid).where(inbox.c.guid.in_(guids))).scalars())
            added, rows = [], []
            for item, _future in group:
                fresh = item.guid not in known
                added.append(fresh)
                if fresh:
                    known.add(item.guid)
                    rows.append({"guid": item.guid, "event": item.event, "content_type": item.content_type,
                                 "received": item.received, "body": item.body})
            if rows:
                conn.execute(inbox.insert(), rows)
        return added

    @contextmanager
    def _write_lock(self):
        """Writers of a SQLite inbox take turns on a file lock: the kernel hands it to the next waiter
        at once, where SQLite's own busy handler sleeps and retries (up to 100 ms a try), which put
        the appenders of several web processes seconds behind each other under load."""
        if self._lock_fd is None:
            yield
            return
        with self._lock_mutex:  # flock is per open file: threads of one process take turns here
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    @staticmethod
    def _applied(conn, guids) -> set:
        # The outcome is tested here, not in SQL: with `outcome IN (...)` in the WHERE clause SQLite
        # chose the outcome index and read every applied delivery (14 ms a call at 14,000).
        return {guid for guid, outcome in conn.execute(
            select(deliveries.c.guid, deliveries.c.outcome).where(deliveries.c.guid.in_(guids)))
            if outcome in _APPLIED}

    # --- process ----------------------------------------------------------------------------------

    def take(self, limit: int) -> list:
        """The oldest `limit` pending deliveries, in arrival order (the one processor of a SQLite inbox)."""
        with self.engine.connect() as conn:
            return conn.execute(select(inbox).order_by(inbox.c.id).limit(limit)).all()

    def key_pending(self, key, limit: int = 1000) -> int:
        """Set the repository key of up to `limit` of the oldest rows without one (`key(row)`: an int); the
        number keyed.  Rows another processor is keying are skipped, not waited for.  The keys are not
        worth a wait for the disk (a crash that loses them leaves the rows to be keyed again)."""
        with self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            rows = conn.execute(select(inbox.c.id, inbox.c.event, inbox.c.content_type, inbox.c.body)
                                .where(inbox.c.repo.is_(None)).order_by(inbox.c.id).limit(limit)
                                .with_for_update(skip_locked=True)).all()
            if rows:  # (nothing to key, the most common case: one round trip and an empty commit)
                asynchronous_commit(conn)
                conn.execute(update(inbox).where(inbox.c.id == bindparam("i")).values(repo=bindparam("r")),
                             [{"i": row.id, "r": key(row)} for row in rows])
        return len(rows)

    def pick(self, limit: int, skip=frozenset()) -> tuple[list, int]:
        """Up to `limit` waiting rows of repositories no other processor holds, in arrival order: each
        repository's from its oldest, repositories in the order of their oldest, none behind a row not yet
        keyed (its repository is not known yet); and how many rows it passed over as held (or in `skip`:
        repositories this processor found held).  `claim` makes them this processor's."""
        with self.engine.connect() as conn:
            # Whole repositories, oldest first, until `limit`: with a backlog each processor takes a few
            # repositories' rows (the others take others) rather than all repositories' oldest rows.
            free: dict = {}
            passed = 0
            for row_id, repo, held in conn.execute(_SCAN, {"ns": REPO_LOCKS, "n": SCAN * limit}):
                if repo is None:  # being keyed by another processor: counted as held, to look again soon
                    passed += 1
                    break
                if held or repo in skip:
                    passed += 1
                    continue
                free.setdefault(repo, []).append(row_id)
            ids: list = []
            for repo_ids in free.values():
                ids += repo_ids[:limit - len(ids)]
                if len(ids) >= limit:
                    break
            if not ids:
                return [], passed
            return conn.execute(select(inbox).where(inbox.c.id.in_(ids)).order_by(inbox.c.id)).all(), passed

    def claim(self, conn, rows) -> list:
        """In the caller's transaction: lock the repositories of `rows` (those another processor holds are
        left) and delete the rows, so they go when the transaction commits and come back if it rolls
        back; the rows now this transaction's, in arrival order."""
        got = {repo for repo in sorted({row.repo for row in rows})
               if conn.execute(text("SELECT pg_try_advisory_xact_lock(:ns, :repo)"),
                               {"ns": REPO_LOCKS, "repo": repo}).scalar()}
        wanted = [row.id for row in rows if row.repo in got]
        if not wanted:
            return []
        mine = set(conn.execute(delete(inbox).where(inbox.c.id.in_(wanted)).returning(inbox.c.id)).scalars())
        return [row for row in rows if row.id in mine]

    def remove(self, ids) -> None:
        ids = list(ids)
        if not ids:
            return
        if self._remover is None:
            # No fsync for removals: one lost in a power cut brings rows back that the processor then
            # finds already applied (in `deliveries`) and skips; only appends must be durable.
            self._remover = self.engine if self.engine is self.store else make_engine(self.location,
                                                                                          synchronous="OFF")
        with self._write_lock(), self._remover.connect().execution_options(**writer_options()) as conn, \
                conn.begin():
            conn.execute(delete(inbox).where(inbox.c.id.between(min(ids), max(ids)), inbox.c.id.in_(ids)))

    def pending(self) -> tuple[int, float | None]:
        """(rows waiting, time the oldest was received)."""
        with self.engine.connect() as conn:
            count, oldest = conn.execute(select(func.count(), func.min(inbox.c.received))).one()
        return count, oldest

    def lag(self, now: float | None = None) -> float:
        """Seconds the oldest waiting delivery has waited (0 when none waits)."""
        _count, oldest = self.pending()
        return 0.0 if oldest is None else max(0.0, (now or time.time()) - oldest)

    # --- one processor at a time ------------------------------------------------------------------

    def processor_lock(self) -> "ProcessorLock":
        return ProcessorLock(self)

    def rundir(self) -> str:
        """A directory for this inbox's local sockets (`live/bus.py`), the same for every process."""
        key = hashlib.sha256(os.path.realpath(self.location).encode() if "://" not in self.location
                             else self.location.encode()).hexdigest()[:16]
        path = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or "/tmp", f"buildmon-{key}")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.engine is not self.store:
            self.engine.dispose()
            if self._remover is not None:
                self._remover.dispose()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def create(conn) -> None:
    """Create the inbox table, or give an older one its `repo` column."""
    metadata.create_all(conn, checkfirst=True)
    if "repo" not in {column["name"] for column in inspect(conn).get_columns("inbox")}:
        conn.execute(text("ALTER TABLE inbox ADD COLUMN repo INTEGER"))


class ProcessorLock:
    """Held by the one processor (the leader, on PostgreSQL) of an inbox; released when its process dies
    (file lock or session)."""

    ADVISORY_KEY = 0x6275696C646D6F6E % (2 ** 63)  # "buildmon"

    def __init__(self, box: Inbox):
        self._box = box
        self._fd = None
        self._conn = None

    def acquire(self) -> bool:
        """Take the lock if it is free; True when this process now holds it."""
        if self.held:
            return True
        if is_sqlite(self._box.engine):
            fd = os.open(self._box.location + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return False
            self._fd = fd
            return True
        conn = self._box.engine.connect()
        if conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({self.ADVISORY_KEY})").scalar():
            conn.commit()
            self._conn = conn
            return True
        conn.close()
        return False

    @property
    def held(self) -> bool:
        return self._fd is not None or self._conn is not None

    def verify(self) -> bool:
        """True while the lock is still this process's.  A PostgreSQL lock lives in its session: a
        database restart (or a dropped connection) ends it, and another processor may then take it."""
        if self._conn is None:
            return self.held
        try:
            self._conn.exec_driver_sql("SELECT 1").scalar()
            self._conn.commit()
            return True
        except Exception:
            log.warning("processor: the session holding the processor lock was lost; taking the lock again")
            self.release()
            return False

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                conn.close()
            except Exception:  # a lost session: nothing left to release
                conn.invalidate()
