"""One writer for the store: a thread that applies queued writes in batches.

SQLite allows one writer at a time.  Instead of every request thread fighting
for the lock (and some losing with "database is locked"), request threads
hand their write to this queue and wait; the writer thread runs a batch of
them in one transaction, each in its own savepoint so one failure loses only
itself, commits once, and then wakes the waiters.  A waiter is woken only
after the commit, so an answer sent after `submit` returns is durable.
Writes queued while a batch runs join it (up to MAX_BATCH) rather than wait
for its commit and then their own; `on_commit` callbacks (the live publish)
run in the writer after the commit, in the order the writes were applied.
"""
import logging
import queue
import threading
from concurrent.futures import Future

from sqlalchemy.engine import Engine

from store import rollups
from store.engine import writer_options
from store.prepared import savepoint

log = logging.getLogger(__name__)
MAX_BATCH = 256


class WriteQueue:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._conn = None  # the writer thread's connection, kept between batches

    def submit(self, work, timeout: float | None = 30.0, *, on_commit=None):
        """Run `work(conn)` in the writer's transaction; return its result once committed.

        `on_commit(result)`, if given, runs in the writer thread after the commit and before this
        call returns, in the order the writes were applied (so what it publishes is in commit order).
        """
        future: Future = Future()
        self._ensure_started()
        self._queue.put((work, future, on_commit))
        return future.result(timeout=timeout)

    def _ensure_started(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        while True:
            batch = [self._queue.get()]
            self._take_waiting(batch)
            self._run_batch(batch)

    def _take_waiting(self, batch: list) -> bool:
        """Append the writes waiting in the queue to `batch` (up to MAX_BATCH); True if any."""
        taken = False
        while len(batch) < MAX_BATCH:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
            taken = True
        return taken

    def _connection(self):
        # One connection for the writer's life (a pool checkout and its reset per batch cost
        # more than a small batch's statements); a new one after a failed batch.
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect().execution_options(**writer_options())
        return self._conn

    def _discard_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                log.exception("store writer: closing the connection failed")

    def _run_batch(self, batch) -> None:
        results = []
        try:
            conn = self._connection()
            with conn.begin():
                # The rollups of the whole batch's days are refreshed once, before the commit.
                conn.info["rollups_deferred"] = True
                try:
                    # Writes that arrive while the batch runs join it, until the queue is empty:
                    # they would otherwise wait for this batch's commit and then their own.
                    while True:
                        for work, _future, _on_commit in batch[len(results):]:
                            try:
                                with savepoint(conn, "write"):
                                    value = work(conn)
                                results.append((True, value))
                            except Exception as exc:  # one bad write must not sink the batch
                                results.append((False, exc))
                        if not self._take_waiting(batch):
                            break
                finally:
                    conn.info.pop("rollups_deferred", None)
                rollups.flush(conn)
        except Exception as exc:
            log.exception("store writer: batch of %d failed to commit", len(batch))
            if self._conn is not None:
                self._conn.info.pop("rollups_dirty", None)  # marks of the rolled-back batch
            self._discard_connection()
            for _work, future, _on_commit in batch:
                future.set_exception(exc)
            return
        for (_work, future, on_commit), (ok, value) in zip(batch, results):
            if ok and on_commit is not None:
                try:
                    on_commit(value)
                except Exception:  # committed all the same: the answer must say so
                    log.exception("store writer: on_commit failed")
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
