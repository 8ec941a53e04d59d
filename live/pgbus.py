"""Messages between the processes of a server on a PostgreSQL store, on one host or several.

The same interface as `live/bus.py`'s `LocalBus` (`send(kind, payload)`, handlers by kind, `close`),
over the store itself: `live` batches are rows that the other processes read after a NOTIFY, in the
order they were committed; other kinds (`inbox`: new deliveries committed, wake the processor) are
a NOTIFY alone.  The SQL is `store/livechannel.py`'s.

A thread of each process holds a LISTEN connection of its own.  When it is lost (a database restart,
a failover, a network cut) the thread connects again, with a growing pause up to `RECONNECT_MAX`,
and then reads every batch it missed from the table: that is the catch-up.  Batches older than
`store.livechannel.KEEP` seconds are pruned and not caught up; those pages see the change at their
next refresh instead.  A wake-up missed meanwhile costs nothing: the processor looks at the inbox
every `ingest.processor.IDLE_POLL` seconds anyway.
"""
import json
import logging
import os
import socket
import threading
import time
import uuid

from store import livechannel

log = logging.getLogger(__name__)
LIVE = livechannel.LIVE  # the kind whose payloads go through the table; the others are a NOTIFY alone
IDLE_CHECK = 30.0  # seconds of silence after which the listening connection is checked with a round trip
RECONNECT_FIRST = 0.1  # seconds before the first attempt to connect again, doubled after each failure
RECONNECT_MAX = 2.0


class PgBus:
    def __init__(self, engine, handlers: dict):
        self.engine = engine
        self.handlers = handlers  # kind -> callable(the payload's JSON bytes)
        self.name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._closed = threading.Event()
        self._last_prune = 0.0
        # Threads of this process take turns here rather than each holding a pooled connection while it waits
        # for the order lock (store/livechannel.py); it also guards `_last_prune`.
        self._send_lock = threading.Lock()
        # Listen before reading where the table ends: a batch committed in between is both notified and after
        # that id.  Done here, not in the thread, so nothing sent once the start returns is missed.
        self._listener = livechannel.Listener(engine, handlers)
        try:
            self._last_id = livechannel.newest_id(engine)
        except Exception:
            self._drop_listener()
            raise
        self._wake_r, self._wake_w = os.pipe()  # written by close: ends the thread's wait at once
        self._thread = threading.Thread(target=self._run, name="pg-bus", daemon=True)
        self._thread.start()

    # --- send -------------------------------------------------------------------------------------

    def send(self, kind: str, payload=None) -> None:
        """Send `payload` (JSON-able) to every other process of the store.  A failure (the database
        unreachable) is logged, not raised: the sender has committed its own work already."""
        try:
            if kind == LIVE:
                if not payload:
                    return
                body = json.dumps(payload, separators=(",", ":"))
                with self._send_lock:
                    now, prune = self._prune_due()
                    livechannel.append(self.engine, self.name, body, now, prune=prune)
            else:
                livechannel.notify(self.engine, kind, self.name,
                                   "" if payload is None else json.dumps(payload, separators=(",", ":")))
        except Exception as exc:
            log.warning("pg bus: a %s message was not sent: %s: %s", kind, type(exc).__name__, str(exc)[:200])

    def _prune_due(self) -> tuple[float, bool]:
        """(now, whether this send also deletes the old rows); under `_send_lock`.  Counted as done when
        asked: a send that then fails leaves it to the next one after PRUNE_EVERY."""
        now = time.time()
        prune = now - self._last_prune >= livechannel.PRUNE_EVERY
        if prune:
            self._last_prune = now
        return now, prune

    def send_in(self, conn, payload: list) -> None:
        """`live` messages as part of the caller's transaction (a processor's batch): the other processes
        read them once it commits, in the order the batches of every processor committed (sent after the
        commit instead, two processors' batches of one repository could arrive in the other order).  In a
        savepoint: a failure is logged and the batch goes on without them."""
        if not payload:
            return
        body = json.dumps(payload, separators=(",", ":"))
        with self._send_lock:
            now, prune = self._prune_due()
        try:
            with conn.begin_nested():
                livechannel.append_in(conn, self.name, body, now, prune=prune)
        except Exception as exc:
            log.warning("pg bus: a batch's live messages were not sent: %s: %s", type(exc).__name__, str(exc)[:200])

    # --- receive ----------------------------------------------------------------------------------

    def _run(self) -> None:
        pause = RECONNECT_FIRST
        while not self._closed.is_set():
            try:
                if self._listener is None:
                    self._listener = livechannel.Listener(self.engine, self.handlers)
                    log.info("pg bus: listening again; reading what was published meanwhile")
                    self._read_stored()  # the catch-up
                    pause = RECONNECT_FIRST
                self._listen()
            except Exception as exc:
                if self._closed.is_set():
                    break
                log.warning("pg bus: the listening connection failed (%s: %s); connecting again in %.1f s",
                            type(exc).__name__, str(exc)[:200], pause)
                self._drop_listener()
                if self._closed.wait(pause):
                    break
                pause = min(pause * 2, RECONNECT_MAX)
        self._drop_listener()

    def _listen(self) -> None:
        """Hand what arrives to the handlers until close (returns) or the connection fails (raises)."""
        quiet_since = time.monotonic()
        while not self._closed.is_set():
            received, interrupted = self._listener.wait(IDLE_CHECK, (self._wake_r,))
            if interrupted:
                return
            if not received:
                if time.monotonic() - quiet_since >= IDLE_CHECK:
                    self._listener.check()
                    quiet_since = time.monotonic()
                continue
            quiet_since = time.monotonic()
            stored = False
            for kind, payload in received:
                if kind == LIVE:
                    stored = True  # one read covers every id notified so far
                else:
                    origin, _, body = payload.partition("\n")
                    if origin != self.name:
                        self._hand(kind, body.encode())
            if stored:
                self._read_stored()

    def _read_stored(self) -> None:
        """Hand every stored batch after the last one seen to its handler, in order, but this process's own
        (`Services.broadcast` published those here already)."""
        handler = self.handlers.get(LIVE)
        while True:
            rows = livechannel.read_after(self.engine, self._last_id)
            for row_id, origin, body in rows:
                self._last_id = row_id
                if origin != self.name and handler is not None:
                    self._hand(LIVE, body.encode())
            if len(rows) < livechannel.READ_LIMIT:
                return

    def _hand(self, kind: str, body: bytes) -> None:
        handler = self.handlers.get(kind)
        if handler is None:
            return
        try:
            handler(body)
        except Exception:
            log.exception("pg bus: a %s message could not be handled", kind)

    def _drop_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def close(self) -> None:
        self._closed.set()
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
