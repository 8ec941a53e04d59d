"""`POST /webhook`: verify, append to the inbox, answer. Nothing else runs in the request.

A plain WSGI application dispatched before Flask and Dash (`wrap`): the
route needs none of their machinery, and their per-request set-up cost more
than the work itself.  A delivery is checked (size, signature, headers, a
body that can be JSON), appended to the inbox (`store/inbox.py`, a group
commit) and answered 202 once that row is committed; a GUID already pending
or applied is answered 200 "duplicate".  Parsing and applying are the
processor's (`ingest/processor.py`): a body that passes these checks but does
not parse is logged there as a failed delivery with its reason.

Nothing a stranger sends is read before it could be valid: the method, the
length (`Content-Length`, or a chunked body counted as it arrives, 413 past
25 MB), the event and GUID headers, the signature header's presence and form
and the failure limit are checked first, and a body is hashed as it streams
into a spool that keeps at most `SPOOL_IN_MEMORY` in memory, so an unsigned
or forged 24 MB POST costs neither its size in memory nor, over the limit,
its reading.

Refusals are limited per client and webhook (`WEBHOOK_FAILURE_LIMIT`, with
flask-limiter's own `limits` library), keyed by the client address and the
`X-GitHub-Hook-ID` header: GitHub sends every account's webhooks from the
same addresses, so a stranger's misconfigured webhook must not lock ours
out, and an attacker who copies our hook id only limits their own address.
An address gets ten times that over all hook ids, so inventing ids buys
little.  Over either limit a body larger than `OVER_LIMIT_READ` is answered
429 unread; a smaller one is still read and, when correctly signed,
accepted.  At most `LARGE_READS` bodies over `OVER_LIMIT_READ` are read at
once (the server reads a body a megabyte at a time, so thirty-two forged
24 MB bodies read together cost a hundred megabytes); the others wait up to
REQUEST_TIMEOUT for their turn, then are answered 503.
"""
import json
import logging
import socket
import tempfile
import threading
import time

from limits import parse as parse_limit
from limits.strategies import FixedWindowRateLimiter

from ingest.signature import Hasher, well_formed
from store import ratelimits
from store.inbox import Accepted

log = logging.getLogger("ingest.webhook")
PATH = "/webhook"
LOOPBACK = ("127.0.0.1", "::1")
MAX_GUID = 100
MAX_EVENT = 100
MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB
FORM = "application/x-www-form-urlencoded"
SPOOL_IN_MEMORY = 128 * 1024  # a larger body waits in a temporary file until its signature is checked
OVER_LIMIT_READ = 64 * 1024  # over the failure limit, larger bodies are refused unread
LARGE_READS = 4  # bodies over OVER_LIMIT_READ read at the same time
CHUNK = 1024 * 1024  # what the server reads from the socket at a time: smaller reads copy its buffer
BODY_TIMEOUT = 60.0  # seconds to receive a whole body (each read also waits at most REQUEST_TIMEOUT)
_STATUS = {200: "200 OK", 202: "202 Accepted", 400: "400 Bad Request", 401: "401 Unauthorized",
           405: "405 Method Not Allowed", 408: "408 Request Timeout", 411: "411 Length Required",
           413: "413 Content Too Large", 429: "429 Too Many Requests", 503: "503 Service Unavailable"}


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
        self.limiter = FixedWindowRateLimiter(ratelimits.storage(config.ratelimit_storage_uri, services.engine))
        self.limit = parse_limit(config.webhook_failure_limit)
        self.client_limit = type(self.limit)(self.limit.amount * 10, self.limit.multiples)
        self.large_reads = threading.BoundedSemaphore(LARGE_READS)
        self.read_timeout = config.request_timeout

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        status, body = self._handle(environ)
        if status >= 400 and not environ.get("buildmon.body_read"):
            _do_not_drain(environ)
        payload = json.dumps(body, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                   ("X-Content-Type-Options", "nosniff")]
        if status == 405:
            headers.append(("Allow", "POST"))
        start_response(_STATUS[status], headers)
        if status < 300:
            self.services.stats.delivery(body.get("event", ""), body["outcome"], time.perf_counter() - started)
        return [payload]

    def _handle(self, environ) -> tuple[int, dict]:
        if environ.get("REQUEST_METHOD") != "POST":
            return 405, {"outcome": "refused", "reason": "use POST"}
        # REMOTE_ADDR is the client past TRUSTED_PROXIES (ProxyFix runs in front of this route).
        client = environ.get("REMOTE_ADDR", "")
        key = (client, environ.get("HTTP_X_GITHUB_HOOK_ID", "")[:40])
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        try:
            length = -1 if chunked else int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            length = -1
        if length < 0 and not chunked:
            return self._refused(411, "a Content-Length header is required", "headers")
        if length > MAX_BODY:
            return self._refused(413, f"body over {MAX_BODY} bytes", "size", count=key)
        large = chunked or length > OVER_LIMIT_READ
        if large and self._over_limit(key):
            return self._refused(429, "too many refused deliveries from this client; try again later", "limit")
        signature = environ.get("HTTP_X_HUB_SIGNATURE_256")
        if self.secret and not signature:
            return self._refused(401, "missing X-Hub-Signature-256 (the webhook must be configured with the secret)",
                                 "signature", count=key)
        if self.secret and not well_formed(signature):
            return self._refused(401, "X-Hub-Signature-256 is not of the form sha256=<64 hex digits>",
                                 "signature", count=key)
        if not self.secret and not (self.unsigned_loopback and is_local(environ, client)):
            return self._refused(401, "no webhook secret is configured: set GITHUB_WEBHOOK_SECRET "
                                      "(unsigned deliveries are refused)", "signature", count=key)
        event = environ.get("HTTP_X_GITHUB_EVENT", "")
        guid = environ.get("HTTP_X_GITHUB_DELIVERY", "")
        if not event or len(event) > MAX_EVENT:
            return self._refused(400, "missing or invalid X-GitHub-Event header", "headers")
        if not guid or len(guid) > MAX_GUID:
            return self._refused(400, "missing or invalid X-GitHub-Delivery header", "headers")
        if large:
            if not self.large_reads.acquire(timeout=self.read_timeout):
                return self._refused(503, "too many large deliveries at once; redeliver later", "busy")
            try:
                body, status, reason = self._read(environ, length, signature)
            finally:
                self.large_reads.release()
        else:
            body, status, reason = self._read(environ, length, signature)
        if body is None:
            kind = {401: "signature", 408: "timeout", 413: "size"}.get(status, "body")
            return self._refused(status, reason, kind, count=key)
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

    def _read(self, environ, length: int, signature: str | None) -> tuple[bytes | None, int, str]:
        """The body, hashed as it arrives; or None with the status and reason of its refusal."""
        stream = environ["wsgi.input"]
        hasher = Hasher(self.secret) if self.secret else None
        # The socket under the stream (gunicorn's): each read waits at most REQUEST_TIMEOUT, the whole body
        # at most BODY_TIMEOUT, so a sender trickling bytes cannot hold this thread for ever.
        sock = environ.get("gunicorn.socket")
        deadline = time.monotonic() + BODY_TIMEOUT
        left = length if length >= 0 else MAX_BODY + 1
        received = 0
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY) as spool:
            try:
                while left > 0:
                    if sock is not None:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            raise TimeoutError
                        sock.settimeout(min(remaining, self.read_timeout))
                    chunk = stream.read(min(CHUNK, left))
                    if not chunk:
                        break
                    received += len(chunk)
                    left -= len(chunk)
                    if received > MAX_BODY:
                        return None, 413, f"body over {MAX_BODY} bytes"
                    if hasher is not None:
                        hasher.update(chunk)
                    spool.write(chunk)
            except (TimeoutError, socket.timeout):
                return None, 408, (f"the body did not arrive in time (at most {self.read_timeout:g} s between "
                                   f"pieces, {BODY_TIMEOUT:.0f} s in all)")
            finally:
                if sock is not None:
                    sock.settimeout(None)
            environ["buildmon.body_read"] = left <= 0 or not chunk
            if length >= 0 and received < length:
                return None, 400, f"the body ended after {received} of {length} bytes"
            if hasher is not None and not hasher.matches(signature):
                return None, 401, "signature does not match"
            spool.seek(0)
            return spool.read(), 200, ""

    def _over_limit(self, key: tuple[str, str]) -> bool:
        return not (self.limiter.test(self.limit, "webhook-failures", *key)
                    and self.limiter.test(self.client_limit, "webhook-client-failures", key[0]))

    def _refused(self, status: int, reason: str, kind: str, *,
                 count: tuple[str, str] | None = None) -> tuple[int, dict]:
        if count is not None:  # refusals a stranger can repeat at will count against the limits
            within = self.limiter.hit(self.limit, "webhook-failures", *count)
            within = self.limiter.hit(self.client_limit, "webhook-client-failures", count[0]) and within
            if not within and status != 413:
                status, reason, kind = 429, "too many refused deliveries from this client; try again later", "limit"
        log.warning("delivery refused (%d): %s", status, reason)
        self.services.stats.refused.labels(reason=kind).inc()
        return status, {"outcome": "refused", "reason": reason}


def _do_not_drain(environ) -> None:
    """Close the connection after this answer instead of reading the rest of a refused body.

    gunicorn drains an unread body to keep the connection alive, reading it a megabyte at a time:
    thirty-two refused 30 MB chunked bodies drained together cost 50 MB.  Its `Body.failed` is
    what it sets itself when a body cannot be read to its end: the connection is then closed (after
    the answer, with a short lingering read so the client still gets it).
    """
    stream = environ.get("wsgi.input")
    if environ.get("CONTENT_LENGTH") in (None, "", "0") and "chunked" not in \
            environ.get("HTTP_TRANSFER_ENCODING", "").lower():
        return  # no body: the connection is fine to reuse
    if hasattr(stream, "failed"):
        stream.failed = True


def is_local(environ, client: str) -> bool:
    """A loopback client with no proxy in between: a proxy on this host forwards strangers from 127.0.0.1.

    With TRUSTED_PROXIES set, ProxyFix has already replaced REMOTE_ADDR with the forwarded client, so a
    forwarding header still present here came from a proxy nobody declared.
    """
    if client not in LOOPBACK:
        return False
    if "werkzeug.proxy_fix.orig" in environ:  # REMOTE_ADDR was read past the declared proxies
        return True
    return not any(environ.get(h) for h in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"))


def _shape_error(body: bytes, content_type: str) -> str | None:
    """Why `body` cannot be a delivery, judged from its first bytes only (the processor parses it)."""
    if content_type.startswith(FORM):
        return None if body.startswith(b"payload=") else "form body has no payload field"
    if body[:256].lstrip()[:1] != b"{":
        return "body is not a JSON object"
    return None
