"""The broadcaster: the one interface between the write path and live clients.

`publish` is called after a commit with small JSON-able messages;
subscribers (WebSocket connections) each get a bounded queue.  A subscriber
either blocks in `get`, or passes `wake`, a cheap callable run after each
message is queued (and when it is dropped), and drains with `get(timeout=0)`:
one sender thread can then serve many subscriptions without a thread each.  A subscriber
that falls behind is dropped, never waited for, so a slow or dead client
cannot block the webhook or other clients.  `InProcessHub` serves one server
process; the other processes' messages reach it through a bus (`live/bus.py`
on one machine, `live/pgbus.py` over a PostgreSQL store).
"""
import itertools
import threading
from collections import deque
from typing import Callable, Protocol

DEFAULT_QUEUE = 1000


class Subscription:
    def __init__(self, hub: "InProcessHub", maxsize: int, wake: Callable[[], None] | None = None):
        self._hub = hub
        self._maxsize = maxsize
        self._items: deque = deque()  # appends and pops are atomic: no lock on the wake/drain path
        self._ready = threading.Condition(threading.Lock())  # only for readers blocked in get()
        self._wake = wake
        self.dropped = False

    def get(self, timeout: float | None = None) -> dict | None:
        """Next message, or None on timeout (0: don't wait) or once the subscription is dropped and drained."""
        items = self._items
        if not items and timeout != 0 and not self.dropped:
            with self._ready:
                self._ready.wait_for(lambda: items or self.dropped, timeout)
        return items.popleft() if items else None

    def _offer(self, message: dict) -> bool:
        if len(self._items) >= self._maxsize:
            self.dropped = True
            return False
        self._items.append(message)
        self._notify()
        return True

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake()
        else:
            with self._ready:
                self._ready.notify()

    def close(self) -> None:
        self._hub._remove(self)
        self.dropped = True
        self._notify()  # wake a reader blocked in get()


class Broadcaster(Protocol):
    def publish(self, message: dict) -> None: ...
    def subscribe(self, maxsize: int = DEFAULT_QUEUE, wake: Callable[[], None] | None = None) -> Subscription: ...
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

    def subscribe(self, maxsize: int = DEFAULT_QUEUE, wake: Callable[[], None] | None = None) -> Subscription:
        sub = Subscription(self, maxsize, wake)
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
