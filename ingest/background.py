"""A daemon thread that can be woken and stopped: the shape of the processor and the log fetcher."""
import threading


class Background:
    """Subclasses define `run` (loop until `_stop` is set, waiting on `_wake`) and may extend `stop`."""

    thread_name = "background"

    def __init__(self):
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self):
        self._thread = threading.Thread(target=self.run, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def wake(self, _payload=None) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def run(self) -> None:
        raise NotImplementedError
