"""`/healthz` (`/readyz`), `/livez` and Prometheus `/metrics`: is it up, and what is it doing.

Under gunicorn the web processes and the processor's worker count into one directory
(`PROMETHEUS_MULTIPROC_DIR`, which `dashapp/gunicorn_conf.py` sets up): every process's counters and
histograms are written there, and `/metrics`, whichever process answers, sums them (prometheus_client's
multiprocess mode).  A process's own gauges (its WebSockets, its threads, whether it leads the
processors) are set there every few seconds and summed over the live processes; what is read from the
store (the inbox, failure capture) is read by the process answering.  Without that directory (the
development server, tests) `/metrics` is the process's own registry, as before.
"""
import os
import threading
import time

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from dashapp import health
from dashapp.jsonerrors import json_routes
from store.joblogs import DONE, FAILED, GONE, PENDING
from store.queries.failures import capture_counts, coverage

bp = Blueprint("observability", __name__)
# Their errors (a 405 for a POST...) are JSON, as their answers are (dashapp/jsonerrors.py).
bp.record_once(lambda state: json_routes(state.app, "/healthz", "/readyz", "/livez"))


MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
SAMPLE_EVERY = 2.0  # seconds between settings of a process's own gauges in multiprocess mode


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_DIR))


def process_gauge(name: str, documentation: str, read, registry, sampler=None) -> Gauge:
    """A gauge of this process's own state, `read()`: read when scraped, or, in multiprocess mode, set
    every SAMPLE_EVERY seconds by `sampler` and summed over the live processes."""
    gauge = Gauge(name, documentation, registry=registry, multiprocess_mode="livesum")
    if multiprocess() and sampler is not None:
        sampler.add(gauge, read)
    else:
        gauge.set_function(read)
    return gauge


class Sampler:
    """Sets the multiprocess gauges of this process from their functions, every SAMPLE_EVERY seconds."""

    def __init__(self):
        self._gauges: list = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def add(self, gauge: Gauge, read) -> None:
        self._gauges.append((gauge, read))
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-sampler", daemon=True)
            self._thread.start()

    def sample(self) -> None:
        for gauge, read in list(self._gauges):
            try:
                gauge.set(read())
            except Exception:  # a store that is down: the last value stays, the next sample tries again
                pass

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(SAMPLE_EVERY):
                return

    def stop(self) -> None:
        self._stop.set()


class Stats:
    """The server's counters, in a registry of its own (one per app)."""

    def __init__(self, hub, inbox=None):
        self.registry = CollectorRegistry()
        self.sampler = Sampler()
        self.deliveries = Counter("buildmon_deliveries_total",
                                  "Webhook deliveries answered (accepted or duplicate), by event and outcome",
                                  ["event", "outcome"], registry=self.registry)
        self.refused = Counter("buildmon_deliveries_refused_total", "Webhook requests refused before processing",
                               ["reason"], registry=self.registry)
        self.latency = Histogram("buildmon_delivery_seconds", "Time from request to answer (the inbox row committed)",
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        self.auth_failures = Counter("buildmon_auth_failures_total",
                                     "Requests with a wrong token or password (refused), and those answered 429 "
                                     "because their client had too many (limited)", ["outcome"],
                                     registry=self.registry)
        self.busy_refused = Counter("buildmon_busy_refused_total",
                                    "Requests other than /webhook answered 503 at once: every thread left to them "
                                    "beside WEBHOOK_RESERVE was taken", registry=self.registry)
        self.live_refused = Counter("buildmon_websocket_refused_total",
                                    "WebSockets refused: origin (403, another site's page), per_client "
                                    "(LIVE_MAX_PER_CLIENT) or busy (no thread left; both closed with 1013)",
                                    ["reason"], registry=self.registry)
        process_gauge("buildmon_websocket_clients", "Open WebSocket connections",
                      lambda: getattr(hub, "subscriber_count", 0), self.registry, self.sampler)
        # Read from the store by the process answering: collectors, not gauges, so that nothing of theirs
        # is in the multiprocess directory.
        self.store_collectors = [InboxStats(inbox), FailureStats(inbox.store)] if inbox is not None else []
        for collector in self.store_collectors:
            self.registry.register(collector)

    def watch_threads(self, threads) -> None:
        """Report the threads pages, callbacks, the API and WebSockets hold, and their limit (dashapp/capacity.py)."""
        process_gauge("buildmon_threads_busy", "Threads held by pages, callbacks, the API and WebSockets",
                      lambda: threads.busy, self.registry, self.sampler)
        Gauge("buildmon_threads_limit", "Most threads they may hold: WEB_THREADS - WEBHOOK_RESERVE",
              registry=self.registry, multiprocess_mode="livesum").set(threads.limit)

    def delivery(self, event: str, outcome: str, seconds: float) -> None:
        self.deliveries.labels(event=event if len(event) <= 40 else "other", outcome=outcome).inc()
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        """What `/metrics` answers: this process's registry, or every process's (multiprocess mode)."""
        if not multiprocess():
            return generate_latest(self.registry)
        from prometheus_client import multiprocess as mp

        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry)
        for collector in self.store_collectors:
            registry.register(collector)
        return generate_latest(registry)


class InboxStats:
    """The inbox's backlog, read from it when scraped (the same whichever process answers)."""

    def __init__(self, inbox):
        self.inbox = inbox

    def describe(self):
        return self._families(0, 0.0)

    def collect(self):
        count, oldest = self.inbox.pending()
        return self._families(count, 0.0 if oldest is None else max(0.0, time.time() - oldest))

    @staticmethod
    def _families(count: int, lag: float) -> list:
        pending = GaugeMetricFamily("buildmon_inbox_pending", "Deliveries accepted and not yet applied")
        pending.add_metric([], count)
        age = GaugeMetricFamily("buildmon_processing_lag_seconds", "Age of the oldest delivery not yet applied")
        age.add_metric([], lag)
        return [pending, age]


class FailureStats:
    """Failure intelligence read from the store when scraped: the classifier's coverage and the capture queue.

    Coverage counts every captured job (a join over them: ~100 ms at a million runs), so what was read is
    kept `ttl` seconds: scrapes in between cost nothing, and a gauge a minute old is still the truth.
    """

    STATES = (PENDING, DONE, FAILED, GONE)

    def __init__(self, engine, ttl: float = 60.0):
        self.engine, self.ttl = engine, ttl
        self._read: tuple | None = None  # (when, ratio, {state: jobs})
        self._lock = threading.Lock()

    def describe(self):
        # Names only: registering must not read the store (it may not be migrated yet).
        return self._families(0.0, {})

    def collect(self):
        with self._lock:
            if self._read is None or time.monotonic() - self._read[0] >= self.ttl:
                with self.engine.connect() as conn:
                    matched, done = coverage(conn)
                    counts = capture_counts(conn)
                self._read = (time.monotonic(), matched / done if done else 0.0, counts)
            _when, ratio, counts = self._read
        return self._families(ratio, counts)

    def _families(self, ratio: float, counts: dict) -> list:
        share = GaugeMetricFamily(
            "buildmon_failure_lines_coverage_ratio",
            "Share of captured failed jobs whose failure line a rule matched (not the exit-code or catch-all "
            "fallback); 0 with none captured")
        share.add_metric([], ratio)
        jobs = GaugeMetricFamily("buildmon_failure_capture_jobs",
                                 "Failed jobs by where the capture of their log stands", labels=["state"])
        for state in self.STATES:
            jobs.add_metric([state], counts.get(state, 0))
        return [share, jobs]


@bp.get("/healthz")
@bp.get("/readyz")
def healthz():
    """Ready to take deliveries: 200 with the figures, or 503 with the reasons (`dashapp/health.py`)."""
    result = health.check(current_app.extensions["buildmon"])
    return jsonify(result.report()), 200 if result.ok else 503


@bp.get("/livez")
def livez():
    """The process answers (for a process manager's restart decision; it reads nothing)."""
    return jsonify(status="ok")


@bp.get("/metrics")
def prometheus():
    return Response(current_app.extensions["buildmon"].stats.exposition(), mimetype=CONTENT_TYPE_LATEST)
