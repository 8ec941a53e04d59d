"""The rate limits' counters in the store, so every process and host counts together.

A storage for the `limits` library (Flask-Limiter's, and the failed-login limit's in
`dashapp/security.py`), chosen with `RATELIMIT_STORAGE_URI=store://` (the default on PostgreSQL):
one row of `rate_limits` per limit and client holds a fixed window's count and its end.  A hit is
one upsert, which starts a new window when the old one has ended.  The counts need not survive a
crash, so a hit's transaction does not wait for its commit to reach the disk
(`store.engine.asynchronous_commit`).  Rows of ended windows are deleted now and then by the hits.
"""
import random
import time

from limits.storage import Storage, storage_from_string
from sqlalchemy import case, delete, func, select
from sqlalchemy.exc import SQLAlchemyError

from store.engine import asynchronous_commit, is_sqlite
from store.schema import rate_limits as t
from store.sqlfunctions import insert

PRUNE_CHANCE = 0.001  # a hit also deletes the ended windows once in this many


def resolve(configured: str, engine) -> tuple[str, dict]:
    """The storage URI and its options: `configured` (RATELIMIT_STORAGE_URI), else `store://` on a server
    database, where processes on several hosts share it, and `memory://` (each process its own counts) on
    SQLite, whose one writer the processor keeps busy."""
    uri = configured or ("memory://" if is_sqlite(engine) else "store://")
    return uri, ({"engine": engine} if uri.split("://", 1)[0] == "store" else {})


def storage(configured: str, engine) -> Storage:
    uri, options = resolve(configured, engine)
    return storage_from_string(uri, **options)


class StoreStorage(Storage):
    """`store://`: the counters in the store's `rate_limits` table (the engine comes as the option `engine`)."""

    STORAGE_SCHEME = ["store"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, *, engine=None, **_options):
        if engine is None:
            raise ValueError("store:// rate limits need the store's engine (storage option `engine`)")
        self.engine = engine
        super().__init__(uri, wrap_exceptions=wrap_exceptions)

    @property
    def base_exceptions(self):
        return SQLAlchemyError

    def _begin(self):
        conn = self.engine.connect()
        conn.begin()
        asynchronous_commit(conn)
        return conn

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        now = time.time()
        with self._begin() as conn:
            stmt = insert(conn, t).values(key=key, count=amount, expiry=now + expiry)
            stmt = stmt.on_conflict_do_update(index_elements=[t.c.key], set_={
                "count": case((t.c.expiry <= now, amount), else_=t.c.count + amount),
                "expiry": case((t.c.expiry <= now, now + expiry), else_=t.c.expiry),
            }).returning(t.c.count)
            count = conn.execute(stmt).scalar()
            if random.random() < PRUNE_CHANCE:
                conn.execute(delete(t).where(t.c.expiry <= now))
            conn.commit()
        return count

    def get(self, key: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.count).where(t.c.key == key, t.c.expiry > time.time())).scalar() or 0

    def get_expiry(self, key: str) -> float:
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.expiry).where(t.c.key == key)).scalar() or time.time()

    def check(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(select(func.count()).select_from(t).where(t.c.key == ""))
            return True
        except SQLAlchemyError:
            return False

    def reset(self) -> int | None:
        with self._begin() as conn:
            removed = conn.execute(delete(t)).rowcount
            conn.commit()
        return removed

    def clear(self, key: str) -> None:
        with self._begin() as conn:
            conn.execute(delete(t).where(t.c.key == key))
            conn.commit()
