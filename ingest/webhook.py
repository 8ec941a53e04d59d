"""`POST /webhook`: verify, log, apply, commit, broadcast (from the writer, in commit order), then answer."""
import logging
import time

from flask import Blueprint, current_app, g, jsonify, request

from ingest import delivery
from ingest.parse import PayloadError
from ingest.signature import verify

log = logging.getLogger("ingest.webhook")
bp = Blueprint("webhook", __name__)
LOOPBACK = ("127.0.0.1", "::1")


def _refuse(status: int, reason: str):
    return jsonify(outcome="refused", reason=reason), status


def refusal(config, body: bytes) -> str | None:
    """None when the current request's delivery may be processed, else why not.

    Computed once per request: the rate limiter asks too, before the view.
    """
    if "delivery_refusal" not in g:
        g.delivery_refusal = _refusal(config, body)
    return g.delivery_refusal


def _refusal(config, body: bytes) -> str | None:
    secret = config.webhook_secret
    if secret:
        if not request.headers.get("X-Hub-Signature-256"):
            return "missing X-Hub-Signature-256 (the webhook must be configured with the secret)"
        if not verify(secret, body, request.headers.get("X-Hub-Signature-256")):
            return "signature does not match"
        return None
    if config.allow_unsigned == "loopback" and request.remote_addr in LOOPBACK:
        return None
    return "no webhook secret is configured: set GITHUB_WEBHOOK_SECRET (unsigned deliveries are refused)"


@bp.post("/webhook")
def webhook():
    services = current_app.extensions["buildmon"]
    started = time.perf_counter()
    body = request.get_data()
    reason = refusal(services.config, body)
    if reason:
        log.warning("delivery refused from %s: %s", request.remote_addr, reason)
        services.stats.refused.labels(reason="signature").inc()
        return _refuse(401, reason)
    event = request.headers.get("X-GitHub-Event", "")
    guid = request.headers.get("X-GitHub-Delivery", "")
    if not event or len(event) > delivery.MAX_EVENT:
        services.stats.refused.labels(reason="headers").inc()
        return _refuse(400, "missing or invalid X-GitHub-Event header")
    if not guid or len(guid) > delivery.MAX_GUID:
        services.stats.refused.labels(reason="headers").inc()
        return _refuse(400, "missing or invalid X-GitHub-Delivery header")
    try:
        decoded = delivery.decode(event, body, request.content_type or "application/json")
    except PayloadError as exc:
        decoded = exc
    received = time.time()

    def write(conn):
        outcome = delivery.record(conn, guid, event, body, decoded, received)
        if outcome.changes:
            outcome.messages = delivery.live_messages(conn, outcome.changes)
        return outcome

    def publish(outcome):
        for message in outcome.messages:
            services.hub.publish(message)

    # Published by the writer after the commit, in commit order, before this thread is woken.
    outcome = services.writes.submit(write, on_commit=publish)
    seconds = time.perf_counter() - started
    services.stats.delivery(event, outcome.outcome, seconds)
    log.info(
        "delivery guid=%s event=%s outcome=%s status=%d ms=%.1f%s",
        guid, event, outcome.outcome, outcome.status, seconds * 1000,
        f" reason={outcome.reason!r}" if outcome.reason else "",
    )
    return jsonify(guid=guid, **outcome.body()), outcome.status


@bp.post("/webhook/floor")
def floor():
    """The benchmark's HTTP floor: the signature check alone (only with BENCHMARK_FLOOR=1)."""
    services = current_app.extensions["buildmon"]
    if services.config.benchmark_floor != "1":
        return _refuse(404, "not enabled (BENCHMARK_FLOOR=1)")
    reason = refusal(services.config, request.get_data())
    if reason:
        return _refuse(401, reason)
    return jsonify(outcome="floor"), 200
