"""The threads of a web process that pages, Dash callbacks, the API and `/ws` may hold: the rest are /webhook's.

Every request holds one of gunicorn's WEB_THREADS threads while it is served, and an open page holds
one for its WebSocket as long as it is open.  Enough open pages, or clients reading their answers
slowly, would leave none for /webhook, and GitHub drops a delivery not answered within 10 s, for
good.  So everything else shares at most WEB_THREADS - WEBHOOK_RESERVE of them: past that a request
is answered 503 at once with Retry-After, and a WebSocket closed with 1013 (`live/ws.py`, which
takes its own place here so that it can say why).  /webhook is served in front of this limit
(`ingest/webhook.py`), as are the health checks and /metrics (small, answered at once, and wanted
most when the process is full).  The development server (no gunicorn) keeps the same limit, from
WEB_THREADS.
"""
import logging
import threading

log = logging.getLogger(__name__)
UNCOUNTED = ("/healthz", "/readyz", "/livez", "/metrics")
RETRY_AFTER = "5"  # seconds: long enough for a burst of page loads to pass, short for a person waiting
BUSY = b"Busy: every thread this server gives to pages is taken; try again in a few seconds.\n"


class Threads:
    """How many threads pages, callbacks, the API and /ws hold in this process, against their limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.busy = 0
        self._lock = threading.Lock()

    @classmethod
    def for_pages(cls, config) -> "Threads":
        """WEB_THREADS - WEBHOOK_RESERVE, the reserve taking at most half the threads (so that a small
        WEB_THREADS, e.g. the tests' and benchmarks' 32, still serves pages)."""
        reserve = min(config.webhook_reserve, config.web_threads // 2)
        if reserve < config.webhook_reserve:
            log.warning("WEBHOOK_RESERVE=%d is more than half of WEB_THREADS=%d: reserving %d threads for /webhook",
                        config.webhook_reserve, config.web_threads, reserve)
        return cls(max(1, config.web_threads - reserve))

    def take(self) -> bool:
        with self._lock:
            if self.busy >= self.limit:
                return False
            self.busy += 1
            return True

    def give(self) -> None:
        with self._lock:
            self.busy -= 1

    def limit_app(self, app, *, counts_itself=(), refused=None):
        """`app`, answering 503 at once when every thread is taken.

        Paths in `counts_itself` are passed through uncounted: they take (and give back) their place
        themselves.  `refused()` is called for each 503.
        """
        passed = UNCOUNTED + tuple(counts_itself)

        def limited(environ, start_response):
            if environ.get("PATH_INFO") in passed:
                return app(environ, start_response)
            if not self.take():
                if refused is not None:
                    refused()
                start_response("503 Service Unavailable", [
                    ("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(BUSY))),
                    ("Retry-After", RETRY_AFTER), ("Cache-Control", "no-store")])
                return [BUSY]
            try:
                body = app(environ, start_response)
            except BaseException:  # a WebSocket under gunicorn ends with StopIteration from its response
                self.give()
                raise
            # Given back once the answer is sent (gunicorn closes the body then), not when `app` returns:
            # a streamed answer (the CSV export) holds its thread until its last byte.
            return _GivenBackOnClose(body, self.give)

        return limited


class _GivenBackOnClose:
    """A response body that gives its thread back when the server closes it, whatever its own close does."""

    def __init__(self, body, give):
        self._body, self._give = body, give

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        give, self._give = self._give, None
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            if give is not None:
                give()
