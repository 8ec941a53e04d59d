"""The processor: from the inbox to the store, in batches, then live.

One batch: take the oldest waiting deliveries (up to `batch` of them), and in
one store transaction apply each in its own savepoint with the state rules
(`ingest/delivery.py`), log each in `deliveries`, refresh every derived key
the batch touched once (`store.derived`), read the live messages, commit;
then remove the batch from the inbox and publish.  A delivery already logged
as applied (a crash after the commit, before the removal) is skipped, so
every acknowledged delivery takes effect exactly once.

A delivery whose records fail is logged `failed` with its error (the dead
letter: `init_db.py --replay` re-applies it after a fix) and the rest of the
batch goes on.  If the batch as a whole fails (the derived refresh, the
commit), it is split in halves and each retried, down to single deliveries,
so one bad delivery is isolated instead of holding up the rest.

With alerts configured (`alerts/`), the processor decides them: each batch's
touched (workflow, branch) pairs after the derived refresh, in the batch's
transaction (an alert and the state that causes it commit together), and
every few seconds a sweep of what time alone decides, in its own.

It runs as a thread of each web process (`PROCESSOR=thread`), in a process
of its own started by the server (`PROCESSOR=process`), or alone as
`python -m dashapp worker`.  On SQLite the one holding the inbox's processor
lock works and the others stand by.  On PostgreSQL every processor applies
batches, each of repositories no other one holds (`store/inbox.py`), and the
lock's holder, the leader, also does the periodic work (alert sweeps,
retention, archives; the log fetcher and the alert sender follow it).
"""
import logging
import time

from prometheus_client import Counter, Gauge, Histogram

from ingest import delivery
from ingest.background import Background
from ingest.parse import PayloadError
from store import derived, retention
from store.engine import writer_options
from store.inbox import Inbox

log = logging.getLogger("ingest.processor")
IDLE_POLL = 2.0  # seconds between looks at the inbox when nothing woke the processor (a lost wake-up)
STANDBY_POLL = 2.0  # seconds between tries at the lock when another process holds it
# Seconds between checks that the leader still holds its lock (a round trip and a commit, not worth one per
# batch): a leader that lost its session goes on with its periodic work at most this long beside the next.
VERIFY_EVERY = 1.0
# A shared inbox (PostgreSQL) whose waiting rows all belong to repositories other processors hold: look
# again this soon (they may hold them for one batch only), not after IDLE_POLL.
HELD_POLL = 0.05
# After a batch smaller than the most, wait this long before the next: under a light stream the
# batches gather a few deliveries instead of one each (a batch's commit, inbox reads and derived
# refresh cost as much as several deliveries' records).  Under load the deliveries that arrive
# while a batch runs make the next batch bigger by themselves; a backlog is taken at once.
# (Waiting as long as the last batch took, to leave the cores to accepting, halved the sustained
# rate: 340 deliveries/s with lag under 1 s.)
LINGER = 0.01
RETENTION_EVERY = 3600.0  # seconds between passes that empty old delivery bodies (store/retention.py)
SWEEP_EVERY = 5.0  # seconds between alert sweeps (held decisions, reminders, stale runs, the operator's figures)
ALERTS_MESSAGE = {"type": "alerts"}  # the live message after alerts were decided (the Alerts page, the sender)


class ProcessorStats:
    def __init__(self, registry):
        self.outcomes = Counter("buildmon_deliveries_processed_total", "Deliveries applied, by event and outcome",
                                ["event", "outcome"], registry=registry)
        self.batch_seconds = Histogram("buildmon_processor_batch_seconds", "Time to apply and commit one batch",
                                       registry=registry, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.batch_size = Histogram("buildmon_processor_batch_deliveries", "Deliveries in one batch",
                                    registry=registry, buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000))
        self.lag = Histogram("buildmon_processing_lag_seconds_hist",
                             "Time from a delivery's acceptance to its commit in the store", registry=registry,
                             buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        # Summed over the live processes in multiprocess mode (dashapp/observability.py): 1 on a server.
        self.active = Gauge("buildmon_processor_active", "1 when this process holds the processor (the leader, "
                            "on PostgreSQL)", registry=registry, multiprocess_mode="livesum")

    def applied(self, event: str, outcome: str) -> None:
        self.outcomes.labels(event=event if len(event) <= 40 else "other", outcome=outcome).inc()


class Processor(Background):
    thread_name = "delivery-processor"

    def __init__(self, engine, box: Inbox, *, publish, batch: int = 500, stats: ProcessorStats | None = None,
                 retention_days: float = 0.0, alerts=None, archiver=None, publish_in=None):
        super().__init__()
        self.engine = engine
        self.inbox = box
        self.publish = publish  # callable(list of live messages), after the commit
        # callable(connection, messages) in the batch's transaction, before its commit (live/pgbus.py: the other
        # processes get them in commit order); `publish` then gets them with sent=True (this process's pages).
        self.publish_in = publish_in
        self.batch = max(1, batch)
        self.stats = stats
        self.retention_days = retention_days
        self._retained_at = 0.0
        self.alerts = alerts  # alerts.decide.Decider, or None
        self.archiver = archiver  # store.archive.Archiver (ARCHIVE_AFTER_DAYS), or None
        self._swept_at = 0.0
        self.lock = box.processor_lock()
        self._busy = False
        self._claimed: set = set()  # ids of the rows this batch's transactions claimed (a shared inbox)
        self.held_back = False  # the last batch left rows of repositories other processors held
        # (time, error) of the last batch that could not be committed at all, None after one commits.
        self.write_failure: tuple[float, str] | None = None

    # --- running ----------------------------------------------------------------------------------

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.lock.release()

    def run(self) -> None:
        """Hold the processor lock and process until stopped (standing by while another holds it; on a
        shared inbox, processing all the same)."""
        if self.inbox.shared:
            self._run_shared()
            return
        announced = False
        while not self._stop.is_set():
            try:
                acquired = self.lock.acquire()
            except Exception as exc:  # the database is unreachable (restarting): try again, as a standby does
                log.warning("processor: the processor lock could not be asked for (%s: %s); trying again",
                            type(exc).__name__, str(exc)[:200])
                self._stop.wait(1.0)
                continue
            if not acquired:
                if not announced:
                    log.info("processor: another process holds the inbox; standing by")
                    announced = True
                self._stop.wait(STANDBY_POLL)
                continue
            if self.stats:
                self.stats.active.set(1)
            log.info("processor: processing the inbox %s", self.inbox.location)
            announced = False
            try:
                self._baseline()
                self._loop()
            except Exception as exc:
                self.write_failure = (time.time(), f"{type(exc).__name__}: {str(exc)[:200]}")
                log.exception("processor: stopped by an error; restarting in 1 s")
                self._stop.wait(1.0)
        if self.stats:
            self.stats.active.set(0)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self.lock.verify():
                return  # lost with its database session: `run` takes it again before going on
            self._step(leading=True)

    def _step(self, leading: bool) -> None:
        """One batch, the leader's periodic work after it, then the wait before the next."""
        self._wake.clear()
        done = self.process_batch()
        archiving = False
        if leading:
            self._sweep()
            archiving = self._archive()
            if done == 0:
                self._retain()
        if done == 0 and not archiving:
            self._wake.wait(HELD_POLL if self.held_back else IDLE_POLL)
        elif done < self.batch:
            self._stop.wait(LINGER)

    def _run_shared(self) -> None:
        """Apply batches beside the other processors; lead (the periodic work) while holding the lock."""
        asked_at, verified_at = None, 0.0
        while not self._stop.is_set():
            try:
                if self.lock.held and time.monotonic() - verified_at >= VERIFY_EVERY:
                    verified_at = time.monotonic()
                    if not self.lock.verify():
                        self._lead(False)
                        asked_at = None  # lost with its session (a database restart): ask again at once
                if not self.lock.held and (asked_at is None or time.monotonic() - asked_at >= STANDBY_POLL):
                    asked_at = time.monotonic()
                    if self.lock.acquire():
                        verified_at = time.monotonic()
                        self._lead(True)
                self._step(leading=self.lock.held)
            except Exception as exc:  # the database is unreachable (restarting): try again in 1 s
                self.write_failure = (time.time(), f"{type(exc).__name__}: {str(exc)[:200]}")
                log.exception("processor: stopped by an error; going on in 1 s")
                self._stop.wait(1.0)
        self._lead(False)

    def _lead(self, leading: bool) -> None:
        if self.stats:
            self.stats.active.set(1 if leading else 0)
        if leading:
            log.info("processor: leading the processors of %s (alert sweeps, retention, archives)",
                     self.inbox.location)
            self._baseline()

    def _retain(self) -> None:
        """When idle, at most every RETENTION_EVERY: empty the bodies past RAW_RETENTION_DAYS."""
        if not self.retention_days:
            return
        if self._retained_at and time.monotonic() - self._retained_at < RETENTION_EVERY:
            return
        self._retained_at = time.monotonic()
        try:
            dropped = retention.drop_old_bodies(self.engine, self.retention_days, options=writer_options())
        except Exception:  # tried again in an hour; processing goes on
            log.exception("processor: emptying old delivery bodies failed")
            return
        if dropped:
            log.info("processor: emptied the bodies of %d deliveries processed over %g days ago", dropped,
                     self.retention_days)

    def _archive(self) -> bool:
        """One bounded step of the archive policy between batches, busy or idle; True while a pass goes on."""
        if self.archiver is None:
            return False
        try:
            more = self.archiver.step()
        except Exception:  # the pass starts again at the next hour; processing goes on
            log.exception("processor: archiving failed")
            self.archiver.stop_pass()
            return False
        if not more and self.archiver.parts:
            rows = sum(sum(part.counts.values()) for part in self.archiver.parts)
            log.info("processor: archived %d batches (%d rows) into %s", len(self.archiver.parts), rows,
                     self.archiver.root)
            self.archiver.parts = []
        return more

    def _baseline(self) -> None:
        """On taking the inbox: record quietly what the store holds that no decision saw."""
        if self.alerts is not None:
            self._decide(lambda conn: self.alerts.baseline(conn))

    def _sweep(self) -> None:
        """At most every SWEEP_EVERY, busy or idle: what time alone decides."""
        if self.alerts is None or time.monotonic() - self._swept_at < SWEEP_EVERY:
            return
        self._swept_at = time.monotonic()
        try:
            lag = self.inbox.lag()
            self._decide(lambda conn: self.alerts.sweep(conn, lag=lag))
        except Exception:  # tried again at the next sweep; processing goes on
            log.exception("processor: the alert sweep failed")

    def _decide(self, work) -> None:
        before = self.alerts.decided
        with self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            work(conn)
        if self.alerts.decided != before:
            self._publish([ALERTS_MESSAGE])

    def _publish(self, messages: list, sent: bool = False) -> None:
        try:
            self.publish(messages, sent=True) if sent else self.publish(messages)
        except Exception:  # committed all the same
            log.exception("processor: publishing live messages failed")

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until the inbox is empty and no batch is in flight (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._busy and self.inbox.pending()[0] == 0:
                return
            self.wake()
            time.sleep(0.01)
        raise TimeoutError(f"the inbox still holds {self.inbox.pending()[0]} deliveries after {timeout} s")

    # --- one batch --------------------------------------------------------------------------------

    def process_batch(self) -> int:
        """Apply the oldest waiting deliveries (up to `batch`; on a shared inbox, of repositories no other
        processor holds); the number handled."""
        self._busy = True
        try:
            self.held_back = False
            if not self.inbox.shared:
                rows = self.inbox.take(self.batch)
                if not rows:
                    return 0
                started = time.perf_counter()
                messages = self._apply(rows)
                self.inbox.remove(row.id for row in rows)
                return self._done(rows, messages, started)
            self.inbox.key_pending(delivery.repository_key)
            lost: set = set()
            # Another processor may claim a picked repository first (both picked it between its batches):
            # pick again without it, a few times, rather than wait.
            for _attempt in range(3):
                rows, passed = self.inbox.pick(self.batch, skip=lost)
                self.held_back |= bool(passed or lost)
                if not rows:
                    return 0
                started = time.perf_counter()
                self._claimed = set()
                messages = self._apply(rows)
                # Removed in their batch's transaction (`Inbox.claim`); the rows of repositories another
                # processor claimed first are its to apply.
                claimed = [row for row in rows if row.id in self._claimed]
                lost |= {row.repo for row in rows if row.id not in self._claimed}
                if claimed:
                    return self._done(claimed, messages, started)
            self.held_back = True
            return 0
        finally:
            self._busy = False

    def _done(self, rows, messages: list, started: float) -> int:
        self.write_failure = None
        if self.stats:
            self.stats.batch_seconds.observe(time.perf_counter() - started)
            self.stats.batch_size.observe(len(rows))
        if messages:
            self._publish(messages, sent=self.publish_in is not None)
        return len(rows)

    def _apply(self, rows) -> list:
        """Apply `rows` in one transaction; on failure, in halves (down to one, which becomes a dead letter)."""
        try:
            return self._transaction(rows)
        except Exception as exc:
            if len(rows) == 1:
                log.error("processor: delivery %s could not be committed: %s", rows[0].guid, exc)
                self._dead_letter(rows[0], exc)
                return []
            log.warning("processor: a batch of %d failed (%s: %s); retrying it in halves",
                        len(rows), type(exc).__name__, str(exc)[:200])
            half = len(rows) // 2
            return self._apply(rows[:half]) + self._apply(rows[half:])

    def _transaction(self, rows) -> list:
        outcomes = []
        conn = self.engine.connect().execution_options(**writer_options())
        decided = self.alerts.decided if self.alerts is not None else 0
        try:
            with conn.begin(), derived.after_flush(conn, self.alerts and self.alerts.after_flush):
                if self.inbox.shared:
                    rows = self.inbox.claim(conn, rows)
                with derived.batch(conn):
                    for row in rows:
                        outcomes.append((row, self._record(conn, row)))
                    derived.flush(conn)
                changes = [c for _row, o in outcomes for c in o.changes]
                messages = delivery.live_messages(conn, changes) if changes else []
                if self.alerts is not None and self.alerts.decided != decided:
                    messages.append(ALERTS_MESSAGE)
                if self.publish_in is not None and messages:
                    self.publish_in(conn, messages)  # last: it holds the live channel's order lock to the commit
        except Exception:
            derived.discard(conn)
            raise
        finally:
            conn.close()
        if self.inbox.shared:
            self._claimed.update(row.id for row in rows)
        now = time.time()
        for row, outcome in outcomes:
            if self.stats:
                self.stats.applied(row.event, outcome.outcome)
                self.stats.lag.observe(now - row.received)
            log.info("delivery guid=%s event=%s outcome=%s lag_ms=%.0f%s", row.guid, row.event, outcome.outcome,
                     (now - row.received) * 1000, f" reason={outcome.reason!r}" if outcome.reason else "")
        return messages

    @staticmethod
    def _record(conn, row) -> delivery.Outcome:
        try:
            decoded = delivery.decode(row.event, row.body, row.content_type)
        except PayloadError as exc:
            decoded = exc
        return delivery.record(conn, row.guid, row.event, row.body, decoded, row.received)

    def _dead_letter(self, row, exc: Exception) -> None:
        reason = f"could not commit delivery: {type(exc).__name__}: {str(exc)[:200]}"
        try:
            with self.engine.connect().execution_options(**writer_options()) as conn, conn.begin():
                if self.inbox.shared and not self.inbox.claim(conn, [row]):
                    return  # another processor has it now
                delivery.log_failure(conn, row.guid, row.event, row.body, row.received, reason)
        except Exception:
            # The store itself refuses writes (read-only, disk full): keep the delivery in the inbox.
            log.exception("processor: could not log delivery %s as failed; it stays in the inbox", row.guid)
            raise
        if self.inbox.shared:
            self._claimed.add(row.id)
        if self.stats:
            self.stats.applied(row.event, "failed")
