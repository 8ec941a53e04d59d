"""One writer for the store: a thread that applies queued writes in batches.

SQLite allows one writer at a time.  Instead of every request thread fighting
for the lock (and some losing with "database is locked"), request threads
hand their write to this queue and wait; the writer thread runs a batch of
them in one transaction, each in its own savepoint so one failure loses only
itself, commits once, and then wakes the waiters.  A waiter is woken only
after the commit, so an answer sent after `submit` returns is durable.
"""
import logging
import queue
import threading
from concurrent.futures import Future

from sqlalchemy.engine import Engine

from store import rollups
from store.engine import writer_options

log = logging.getLogger(__name__)
MAX_BATCH = 256


class WriteQueue:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, work, timeout: float | None = 30.0):
        """Run `work(conn)` in the writer's transaction; return its result once committed."""
        future: Future = Future()
        self._ensure_started()
        self._queue.put((work, future))
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
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._run_batch(batch)

    def _run_batch(self, batch) -> None:
        results = []
        try:
            with self.engine.connect().execution_options(**writer_options()) as conn:
                with conn.begin():
                    # The rollups of the whole batch's days are refreshed once, before the commit.
                    conn.info["rollups_deferred"] = True
                    try:
                        for work, _future in batch:
                            savepoint = conn.begin_nested()
                            try:
                                results.append((True, work(conn)))
                                savepoint.commit()
                            except Exception as exc:  # one bad write must not sink the batch
                                savepoint.rollback()
                                results.append((False, exc))
                    finally:
                        conn.info.pop("rollups_deferred", None)
                    rollups.flush(conn)
        except Exception as exc:
            log.exception("store writer: batch of %d failed to commit", len(batch))
            for _work, future in batch:
                future.set_exception(exc)
            return
        for (_work, future), (ok, value) in zip(batch, results):
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)
