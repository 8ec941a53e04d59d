"""Deliver the alert outbox: a thread that sends each due message on its channel, retrying with backoff.

Messages are decided (and written `pending`) by `alerts/decide.py` in the transaction that changed
the store; this thread, in the one process that holds the delivery processor (`active`), sends
them.  Per message: claim it (`sending`, one more try) in a short transaction, send it outside any
transaction (`alerts.channels.send`), then record the outcome: delivered; pending again after
`retry_seconds * 2**(tries-1)` (at most `max_retry_seconds`, at least the receiver's Retry-After);
failed when the receiver says trying again cannot help, or `give_up_hours` after the decision.

Order: the messages of one break on one channel go in id order, a recovery never before its break
message (`store.outbox.due`); a recovery or reminder whose break message was not delivered there
(failed, quiet, skipped) is skipped: no one heard of the break on that channel.

At least once: when the thread becomes active it puts `sending` rows (a crash mid-send) back to
pending; the receivers get the message id to drop a repeat (see `alerts/channels.py`).
"""
import logging
import time

from alerts import channels, message
from alerts.channels import SendError
from alerts.render import duration
from ingest.background import Background
from store import outbox
from store.engine import writer_options

log = logging.getLogger("alerts.sender")

POLL = 1.0  # seconds between looks at the outbox when nothing woke the sender
PER_PASS = 20  # messages per pass; a full pass goes again at once


def backoff(delivery, tries: int) -> float:
    """Seconds before the next try after the `tries`-th failed one (1 for the first)."""
    return min(delivery.max_retry_seconds, delivery.retry_seconds * 2 ** min(max(tries - 1, 0), 30))


def _write(engine, work):
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        return work(conn)


class Sender(Background):
    """Send `engine`'s due alert messages on `config`'s channels while `active()`."""

    thread_name = "alert-sender"

    def __init__(self, engine, config, *, active=lambda: True, publish=None, clock=time.time, poll: float = POLL,
                 per_pass: int = PER_PASS):
        super().__init__()
        self.engine = engine
        self.config = config
        self.active = active  # callable() -> bool: send only while True (this process holds the processor)
        self.publish = publish  # callable(list of live messages) after delivery states changed
        self.clock = clock
        self.poll = poll
        self.per_pass = max(1, per_pass)
        self._was_active = False

    # --- running ------------------------------------------------------------------------------------

    def run(self) -> None:
        log.info("alerts: sending on %d channels", len(self.config.channels))
        while not self._stop.is_set():
            self._wake.clear()
            handled = 0
            try:
                if self.active():
                    if not self._was_active:
                        self.recover()
                        self._was_active = True
                    handled = self.run_once()
                else:
                    self._was_active = False
            except Exception:  # the store was unreachable, or a bug: the outbox is still there next pass
                log.exception("alerts: a pass of the sender failed; trying again in %g s", self.poll)
            if handled < self.per_pass:
                self._wake.wait(self.poll)

    def recover(self) -> int:
        """Put messages a stopped sender left `sending` back to pending (they may have been sent: at least once)."""
        moved = _write(self.engine, outbox.reset_sending)
        if moved:
            log.warning("alerts: %d messages were being sent when the sender stopped; sending them again", moved)
            self._publish()
        return moved

    def run_once(self, now: float | None = None) -> int:
        """Handle the messages due by `now` (up to `per_pass`, in id order); how many.  Outcomes are stamped
        with `now` when given (tests), else with the time of each."""
        with self.engine.connect() as conn:
            due = outbox.due(conn, self.clock() if now is None else now, self.per_pass)
        handled = 0
        for row in due:
            if self._stop.is_set():
                break
            if self.deliver(row, now=now) is not None:
                handled += 1
        if handled:
            self._publish()
        return handled

    def _publish(self) -> None:
        if self.publish is not None:
            try:
                self.publish([{"type": "alerts"}])
            except Exception:  # recorded all the same; the page sees it on its next refresh
                log.exception("alerts: publishing a delivery change failed")

    # --- one message --------------------------------------------------------------------------------

    def deliver(self, row: dict, *, now: float | None = None) -> str | None:
        """Send one due message (a row of `outbox.due`) and record the outcome: its new state, or None when it
        was left as it was (another sender took it)."""
        stamp = (lambda: now) if now is not None else self.clock
        name, mid = row["channel"], row["id"]
        what = f"message {mid} ({row['kind']}, rule {row['rule'] or '-'}) on channel {name!r}"
        give_up_at = row["created"] + self.config.delivery.give_up_hours * 3600
        if stamp() >= give_up_at:
            error = (f"not delivered within {duration(give_up_at - row['created'])}"
                     + (f"; last error: {row['last_error']}" if row["last_error"] else ""))
            _write(self.engine, lambda conn: outbox.give_up(conn, mid, error))
            log.warning("alerts: gave up %s: %s", what, error)
            return outbox.FAILED
        break_ref = None
        if row["kind"] in ("recovery", "reminder") and row["break_id"] is not None:
            with self.engine.connect() as conn:
                first = outbox.break_message(conn, row["break_id"], name)
            if first is not None and first["state"] in (outbox.PENDING, outbox.SENDING):
                return None  # not due: its break message goes first
            if first is None or first["state"] != outbox.DELIVERED:
                reason = (f"the break's message was {first['state']} on this channel" if first
                          else "no break message on this channel")
                _write(self.engine, lambda conn: outbox.skip(conn, mid, reason))
                log.info("alerts: skipped %s: %s", what, reason)
                return outbox.SKIPPED
            break_ref = first["ref"]
        if not _write(self.engine, lambda conn: outbox.claim(conn, mid)):
            return None
        tries = row["tries"] + 1
        channel = self.config.channels.get(name)
        try:
            if channel is None:
                raise SendError(f"no channel named {name!r} in ALERTS_CONFIG")
            result = channels.send(channel, mid, row["body"], ref=row["ref"], break_message_ref=break_ref)
        except SendError as exc:
            return self._failed(mid, what, tries, exc, stamp(), give_up_at)
        except Exception as exc:  # a bug: the message is kept and retried, the traceback logged
            log.exception("alerts: sending %s failed", what)
            return self._failed(mid, what, tries, SendError(f"internal error ({type(exc).__name__})"), stamp(),
                                give_up_at)
        if result.skipped:
            _write(self.engine, lambda conn: outbox.skip(conn, mid, result.detail))
            log.info("alerts: skipped %s: %s", what, result.detail)
            return outbox.SKIPPED
        _write(self.engine, lambda conn: outbox.delivered(conn, mid, stamp(), result.ref))
        log.info("alerts: delivered %s on try %d: %s", what, tries, result.detail)
        return outbox.DELIVERED

    def _failed(self, mid: int, what: str, tries: int, exc: SendError, now: float, give_up_at: float) -> str:
        if not exc.retry or now >= give_up_at:
            _write(self.engine, lambda conn: outbox.give_up(conn, mid, exc.text))
            log.warning("alerts: gave up %s after %d tries: %s", what, tries, exc.text)
            return outbox.FAILED
        delay = max(backoff(self.config.delivery, tries), exc.wait or 0.0)
        _write(self.engine, lambda conn: outbox.retry(conn, mid, exc.text, now + delay))
        log.info("alerts: %s failed on try %d (%s); next try in %s", what, tries, exc.text, duration(delay))
        return outbox.PENDING


# --- a test message ---------------------------------------------------------------------------------

def send_test(engine, config, channel_name: str, *, now: float | None = None, publish=None) -> dict:
    """Send a test message on `channel_name` now, outside the sender's loop: {"id", "state" (delivered |
    failed), "error" (None when delivered), "detail" (what was done or checked)}.  KeyError: no such channel."""
    channel = config.channels[channel_name]
    fixed = now
    now = time.time() if now is None else now
    body = message.test_body(channel_name, now, config.dashboard_url)
    mid = _write(engine, lambda conn: outbox.insert_test(conn, channel_name, body, now))
    error, detail = None, ""
    try:
        result = channels.send(channel, mid, body)
        detail = result.detail
    except SendError as exc:
        error = exc.text
    except Exception as exc:  # a bug: said, not raised to the page
        log.exception("alerts: the test message on channel %r failed", channel_name)
        error = f"internal error ({type(exc).__name__})"
    if error is None:
        _write(engine, lambda conn: outbox.delivered(conn, mid, time.time() if fixed is None else fixed, result.ref))
        log.info("alerts: test message %d delivered on channel %r: %s", mid, channel_name, detail)
    else:
        _write(engine, lambda conn: outbox.give_up(conn, mid, error))
        log.warning("alerts: test message %d on channel %r failed: %s", mid, channel_name, error)
    if publish is not None:
        try:
            publish([{"type": "alerts"}])
        except Exception:
            log.exception("alerts: publishing a delivery change failed")
    return {"id": mid, "state": outbox.DELIVERED if error is None else outbox.FAILED, "error": error,
            "detail": detail}
