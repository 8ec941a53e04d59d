"""`/healthz` and Prometheus `/metrics`: is it up, and what is it doing."""
import time

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select, text

from store.schema import deliveries

bp = Blueprint("observability", __name__)


class Stats:
    """The server's counters, in a registry of its own (one per app)."""

    def __init__(self, hub, inbox=None):
        self.registry = CollectorRegistry()
        self.deliveries = Counter("buildmon_deliveries_total",
                                  "Webhook deliveries answered (accepted or duplicate), by event and outcome",
                                  ["event", "outcome"], registry=self.registry)
        self.refused = Counter("buildmon_deliveries_refused_total", "Webhook requests refused before processing",
                               ["reason"], registry=self.registry)
        self.latency = Histogram("buildmon_delivery_seconds", "Time from request to answer (the inbox row committed)",
                                 registry=self.registry,
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
        clients = Gauge("buildmon_websocket_clients", "Open WebSocket connections", registry=self.registry)
        clients.set_function(lambda: getattr(hub, "subscriber_count", 0))
        if inbox is not None:
            pending = Gauge("buildmon_inbox_pending", "Deliveries accepted and not yet applied",
                            registry=self.registry)
            pending.set_function(lambda: inbox.pending()[0])
            lag = Gauge("buildmon_processing_lag_seconds", "Age of the oldest delivery not yet applied",
                        registry=self.registry)
            lag.set_function(inbox.lag)

    def delivery(self, event: str, outcome: str, seconds: float) -> None:
        self.deliveries.labels(event=event if len(event) <= 40 else "other", outcome=outcome).inc()
        self.latency.observe(seconds)


@bp.get("/healthz")
def healthz():
    services = current_app.extensions["buildmon"]
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            last = conn.execute(select(func.max(deliveries.c.received))).scalar()
            dead = conn.execute(select(func.count()).where(deliveries.c.outcome == "failed")).scalar()
        pending, oldest = services.inbox.pending()
    except Exception as exc:  # the point of a health check: say so, don't raise
        return jsonify(status="error", database=f"unreachable: {type(exc).__name__}"), 503
    now = time.time()
    last = max(x for x in (last, oldest, 0.0) if x is not None) or None
    return jsonify(status="ok", database="ok", last_delivery=last,
                   last_delivery_age_s=None if last is None else round(now - last, 1),
                   inbox={"pending": pending, "lag_s": 0.0 if oldest is None else round(max(0.0, now - oldest), 3)},
                   failed_deliveries=dead)


@bp.get("/metrics")
def prometheus():
    stats = current_app.extensions["buildmon"].stats
    return Response(generate_latest(stats.registry), mimetype=CONTENT_TYPE_LATEST)
