"""Engine creation: the one module that knows about SQLite.

Everything else speaks SQLAlchemy Core, so moving to PostgreSQL is a matter
of passing a `postgresql://` URL.  For SQLite this module turns on WAL (so
dashboard reads never wait for the webhook writer), a busy timeout, foreign
keys, and makes pysqlite's transactions real so that savepoints work.
"""
import os

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url

BUSY_TIMEOUT_MS = 30_000


def database_url(location: str) -> str:
    """Turn `DATABASE_PATH` (a file path or a SQLAlchemy URL) into a URL.

    A plain `postgresql://` URL names psycopg 3, the driver the requirements install (SQLAlchemy's
    default for it is psycopg2)."""
    if "://" in location:
        scheme, rest = location.split("://", 1)
        if scheme in ("postgresql", "postgres"):
            return f"postgresql+psycopg://{rest}"
        return location
    path = os.path.abspath(location)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    return f"sqlite:///{path}"


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(location: str, *, synchronous: str = "FULL") -> Engine:
    """Create the engine for `location`, tuned for one writer and many readers."""
    url = make_url(database_url(location))
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000},
        pool_size=8,
        max_overflow=16,
        # The most recently returned connection first: its page cache is warm, and the idle ones'
        # caches are not all filled in turn (a 1M-run export through FIFO: +17-23 MB; LIFO: +11 MB).
        pool_use_lifo=True,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy emit BEGIN itself (pysqlite's own handling breaks
        # savepoints), then set the per-connection PRAGMAs.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # Takes effect only in a new, empty file (an older store converts with `python -m store.archive
        # vacuum`): pages freed by archiving can then be given back to the disk a few at a time.
        cursor.execute("PRAGMA auto_vacuum=INCREMENTAL")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Writers take the write lock up front so that two writers queue on
        # the busy timeout instead of failing on a lock upgrade.
        immediate = connection.get_execution_options().get("sqlite_immediate")
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def writer_options() -> dict:
    """Execution options for a connection that will write."""
    return {"sqlite_immediate": True}


def writing(engine: Engine):
    """A transaction that will write: on SQLite it begins IMMEDIATE, so it waits its turn on the busy timeout
    rather than failing at once when its first read turns into a write while another connection writes."""
    return engine.execution_options(**writer_options()).begin()


def integrity_check(engine: Engine) -> str:
    """SQLite's own consistency check ("ok" when sound); other backends say "ok"."""
    if not is_sqlite(engine):
        return "ok"
    with engine.connect() as conn:
        return conn.exec_driver_sql("PRAGMA integrity_check").scalar()


def reclaim(engine: Engine, pages: int) -> int | None:
    """Give up to `pages` free pages of a SQLite store back to the disk (its file shrinks); how many it gave.
    None when the store cannot (another database, or a SQLite file made before incremental vacuum, which
    `vacuum` converts)."""
    if not is_sqlite(engine):
        return None  # PostgreSQL's autovacuum reuses the space; its files are its own business
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        if conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() != 2:
            return None
        before = conn.exec_driver_sql("PRAGMA freelist_count").scalar()
        # The pragma frees one page per step, and Python's sqlite3 steps a statement without result columns
        # once per execute (executescript would step it through, but commits first): one execute per page.
        driver = conn.connection.driver_connection
        for _ in range(min(int(pages), before)):
            driver.execute("PRAGMA incremental_vacuum(1)")
        return before - conn.exec_driver_sql("PRAGMA freelist_count").scalar()


def checkpoint(engine: Engine) -> None:
    """Copy a SQLite store's write-ahead log into its file now (which shrinks the file when pages were given
    back); what open readers still need stays in the log for the next checkpoint.  Nothing elsewhere."""
    if is_sqlite(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def asynchronous_commit(conn) -> None:
    """Let the caller's transaction commit without waiting for the disk, for writes a crash may lose (they
    are made again): PostgreSQL's `synchronous_commit = off` for this transaction.  Nothing on SQLite, whose
    stores set their `synchronous` per connection."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def analyze(conn) -> None:
    """Gather the query planner's statistics now, after a bulk load (`store.copy`): PostgreSQL's autovacuum
    gets to new tables only later, and until then the planner works from guesses; SQLite's `sqlite_stat1` is
    refreshed likewise.  `conn`: a connection outside a transaction."""
    with conn.begin():
        conn.exec_driver_sql("ANALYZE")


def vacuum(engine: Engine) -> bool:
    """Rewrite a SQLite store whole, in incremental auto-vacuum mode from then on (its file shrinks to its
    rows; it is locked meanwhile, minutes for a large store).  False for other databases."""
    if not is_sqlite(engine):
        return False
    raw = engine.raw_connection()  # VACUUM runs outside a transaction, which SQLAlchemy would begin
    try:
        for statement in ("PRAGMA auto_vacuum=INCREMENTAL", "VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)"):
            raw.driver_connection.execute(statement).fetchall()
    finally:
        raw.close()
    return True
