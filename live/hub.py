"""The broadcaster: the one interface between the write path and live clients.

`publish` is called after a commit with small JSON-able messages;
subscribers (WebSocket connections) each get a bounded queue.  A subscriber
that falls behind is dropped, never waited for, so a slow or dead client
cannot block the webhook or other clients.  `InProcessHub` serves one server
process; several processes need a hub backed by a shared channel (Redis
pub/sub, PostgreSQL LISTEN/NOTIFY) with this same interface.
"""
import itertools
import queue
import threading
from typing import Protocol

DEFAULT_QUEUE = 1000


class Subscription:
    def __init__(self, hub: "InProcessHub", maxsize: int):
        self._hub = hub
        self._queue: queue.Queue = queue.Queue(maxsize)
        self.dropped = False

    def get(self, timeout: float | None = None) -> dict | None:
        """Next message, or None on timeout or once the subscription is dropped."""
        try:
            message = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return message

    def _offer(self, message: dict) -> bool:
        try:
            self._queue.put_nowait(message)
            return True
        except queue.Full:
            self.dropped = True
            return False

    def close(self) -> None:
        self._hub._remove(self)
        self.dropped = True
        try:
            self._queue.put_nowait(None)  # wake a reader blocked in get()
        except queue.Full:
            pass


class Broadcaster(Protocol):
    def publish(self, message: dict) -> None: ...
    def subscribe(self, maxsize: int = DEFAULT_QUEUE) -> Subscription: ...
    def close(self) -> None: ...


class InProcessHub:
    """Fan-out inside one process."""

    def __init__(self):
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.last_seq = 0

    def publish(self, message: dict) -> None:
        with self._lock:
            self.last_seq = next(self._seq)
            message = {**message, "seq": self.last_seq}
            subscribers = list(self._subscribers)
        for sub in subscribers:
            if not sub._offer(message):
                sub.close()  # fell behind: drop it; the client reconnects and catches up

    def subscribe(self, maxsize: int = DEFAULT_QUEUE) -> Subscription:
        sub = Subscription(self, maxsize)
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def _remove(self, sub: Subscription) -> None:
        with self._lock:
            self._subscribers.discard(sub)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def close(self) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            sub.close()
