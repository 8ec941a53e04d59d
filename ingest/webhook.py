"""`POST /webhook`: verify, append to the inbox, answer. Nothing else runs in the request.

A plain WSGI application dispatched before Flask and Dash (`wrap`): the
route needs none of their machinery, and their per-request set-up cost more
than the work itself.  A delivery is checked (size, signature, headers, a
body that can be JSON), appended to the inbox (`store/inbox.py`, a group
commit) and answered 202 once that row is committed; a GUID already pending
or applied is answered 200 "duplicate".  Parsing and applying are the
processor's (`ingest/processor.py`): a body that passes these checks but does
not parse is logged there as a failed delivery with its reason.

Refusals are limited per client (`WEBHOOK_FAILURE_LIMIT`, with
flask-limiter's own `limits` library): a client over the limit is answered
429 for what would have been refused, while a correctly signed delivery is
never limited (GitHub sends every account's webhooks from the same
addresses, so a stranger's misconfigured webhook must not lock ours out).
A body too large, or without a signature header when a secret is set, is
refused before it is read.
"""
import json
import logging
import time

from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter

from ingest.signature import verify
from store.inbox import Accepted

log = logging.getLogger("ingest.webhook")
PATH = "/webhook"
LOOPBACK = ("127.0.0.1", "::1")
MAX_GUID = 100
MAX_EVENT = 100
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
FORM = "application/x-www-form-urlencoded"
_STATUS = {200: "200 OK", 202: "202 Accepted", 400: "400 Bad Request", 401: "401 Unauthorized",
           405: "405 Method Not Allowed", 411: "411 Length Required", 413: "413 Content Too Large",
           429: "429 Too Many Requests", 503: "503 Service Unavailable"}


def wrap(app, services):
    """`app` (the Flask server's WSGI app) with `POST /webhook` served in front of it."""
    route = WebhookRoute(services)

    def dispatch(environ, start_response):
        if environ.get("PATH_INFO") == PATH:
            return route(environ, start_response)
        return app(environ, start_response)

    return dispatch


class WebhookRoute:
    def __init__(self, services):
        self.services = services
        config = services.config
        self.secret = config.webhook_secret
        self.unsigned_loopback = not self.secret and config.allow_unsigned == "loopback"
        self.limiter = FixedWindowRateLimiter(storage_from_string(config.ratelimit_storage_uri))
        self.limit = parse_limit(config.webhook_failure_limit)

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status, body = self._handle(environ)
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(_STATUS[status], headers)
        if status < 300:
            self.services.stats.delivery(body.get("event", ""), body["outcome"], time.perf_counter() - started)
        return [payload]

    def _handle(self, environ) -> tuple[int, dict]:
        if environ.get("REQUEST_METHOD") != "POST":
            return 405, {"outcome": "refused", "reason": "use POST"}
        client = environ.get("REMOTE_ADDR", "")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0:
            return self._refused(411, "a Content-Length header is required", "headers")
        if length > MAX_BODY:
            return self._refused(413, f"body over {MAX_BODY} bytes", "size", count=client)
        signature = environ.get("HTTP_X_HUB_SIGNATURE_256")
        if self.secret and not signature:
            return self._refused(401, "missing X-Hub-Signature-256 (the webhook must be configured with the secret)",
                                 "signature", count=client)
        if not self.secret and not (self.unsigned_loopback and client in LOOPBACK):
            return self._refused(401, "no webhook secret is configured: set GITHUB_WEBHOOK_SECRET "
                                      "(unsigned deliveries are refused)", "signature", count=client)
        body = environ["wsgi.input"].read(length) if length else b""
        if self.secret and not verify(self.secret, body, signature):
            return self._refused(401, "signature does not match", "signature", count=client)
        event = environ.get("HTTP_X_GITHUB_EVENT", "")
        guid = environ.get("HTTP_X_GITHUB_DELIVERY", "")
        if not event or len(event) > MAX_EVENT:
            return self._refused(400, "missing or invalid X-GitHub-Event header", "headers")
        if not guid or len(guid) > MAX_GUID:
            return self._refused(400, "missing or invalid X-GitHub-Delivery header", "headers")
        content_type = environ.get("CONTENT_TYPE") or "application/json"
        shape = _shape_error(body, content_type)
        if shape:
            return self._refused(400, shape, "body")
        try:
            added = self.services.inbox.append(Accepted(guid, event, content_type[:100], time.time(), body))
        except Exception as exc:  # the inbox cannot be written (disk full, read-only): GitHub may redeliver
            log.error("delivery guid=%s event=%s could not be stored: %s: %s", guid, event, type(exc).__name__, exc)
            return 503, {"guid": guid, "event": event, "outcome": "error",
                         "reason": f"could not store the delivery ({type(exc).__name__}); redeliver it later"}
        if not added:
            return 200, {"guid": guid, "event": event, "outcome": "duplicate",
                         "reason": f"delivery {guid} was already received"}
        return 202, {"guid": guid, "event": event, "outcome": "accepted"}

    def _refused(self, status: int, reason: str, kind: str, *, count: str | None = None) -> tuple[int, dict]:
        if count is not None:  # refusals a stranger can repeat at will count against the limit
            if not self.limiter.hit(self.limit, "webhook-failures", count):
                status, reason, kind = 429, "too many refused deliveries from this client; try again later", "limit"
        log.warning("delivery refused (%d): %s", status, reason)
        self.services.stats.refused.labels(reason=kind).inc()
        return status, {"outcome": "refused", "reason": reason}


def _shape_error(body: bytes, content_type: str) -> str | None:
    """Why `body` cannot be a delivery, judged from its first bytes only (the processor parses it)."""
    if content_type.startswith(FORM):
        return None if body.startswith(b"payload=") else "form body has no payload field"
    if body[:256].lstrip()[:1] != b"{":
        return "body is not a JSON object"
    return None
