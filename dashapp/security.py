"""Who may read: API tokens and a login for the pages, and request limits.

One `before_request` hook covers every route of the server (the pages, the
Dash callbacks, the API, the CSV export and the WebSocket), so a route added
later is protected by default.  Only `/healthz` (no data) is open, and the
webhook, which is served in front of Flask with its signature check and
its own limit on refusals (`ingest/webhook.py`).

Wrong tokens and passwords count against `AUTH_FAILURE_LIMIT` per client;
past it every attempt from that client is answered 429 until the window
ends, a right one too (were it let through, the difference between 429 and
200 would tell a guesser when they had found it).  The client is the address
past `TRUSTED_PROXIES` (`behind_proxies`), for these limits, the API's and
the webhook's alike.
"""
import base64
import hmac
import time

from flask import Flask, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from dashapp.config import Config

# And /webhook, served before Flask (ingest/webhook.py) with its own checks.
PUBLIC_PATHS = ("/healthz", "/readyz", "/livez")
REALM = 'Basic realm="Build Monitor", charset="UTF-8"'


def _tokens(config: Config) -> list[bytes]:
    return [t.strip().encode() for t in config.api_tokens.split(",") if t.strip()]


def _users(config: Config) -> dict[str, bytes]:
    users = {}
    for pair in config.dashboard_users.split(","):
        if ":" in pair:
            user, password = pair.strip().split(":", 1)
            users[user] = password.encode()
    return users


def _any_equal(candidate: bytes, secrets) -> bool:
    # Compare against every secret, in constant time, without stopping early.
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(candidate, secret)
    return found


def authorised(config: Config, header: str | None) -> bool:
    """True when the Authorization header carries a valid token or login."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return _any_equal(value.strip().encode(), _tokens(config))
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        users = _users(config)
        return _any_equal(password.encode(), [users.get(user, b"\0" * 32)]) and user in users
    return False


def behind_proxies(wsgi_app, config: Config):
    """`wsgi_app` reading the client's address, scheme and host past `TRUSTED_PROXIES` proxies.

    Applied outermost, so that every limit, loopback mode and the WebSocket origin check see the same
    client; with no trusted proxy, forwarding headers are ignored (a client could write them itself).
    """
    n = config.trusted_proxies
    return ProxyFix(wsgi_app, x_for=n, x_proto=n, x_host=n) if n > 0 else wsgi_app


def init_security(server: Flask, config: Config) -> Limiter:
    """Install the login/token check and the rate limits on `server`."""
    failures = FixedWindowRateLimiter(storage_from_string(config.ratelimit_storage_uri))
    failure_limit = parse_limit(config.auth_failure_limit)
    stats = server.extensions["buildmon"].stats

    def _answer(status: int, message: str):
        wants_json = request.path.startswith("/api/") or request.path.startswith("/_dash") or request.path == "/ws"
        response = jsonify(error=message) if wants_json else server.response_class(message, mimetype="text/plain")
        response.status_code = status
        return response

    @server.before_request
    def _require_login():
        if not config.protected or request.path in PUBLIC_PATHS:
            return None
        header = request.headers.get("Authorization")
        client = request.remote_addr or ""
        if header and not failures.test(failure_limit, "auth-failures", client):
            stats.auth_failures.labels(outcome="limited").inc()
            response = _answer(429, "too many failed logins or wrong tokens from this client; try again later")
            reset = failures.get_window_stats(failure_limit, "auth-failures", client).reset_time
            response.headers["Retry-After"] = str(max(1, int(reset - time.time()) + 1))
            return response
        if authorised(config, header):
            return None
        if header:  # a wrong token or password (asking without one is how a browser starts a login)
            stats.auth_failures.labels(outcome="refused").inc()
            failures.hit(failure_limit, "auth-failures", client)
        response = _answer(401, "authentication required: a Bearer token or a dashboard login")
        if config.dashboard_users.strip():
            response.headers["WWW-Authenticate"] = REALM
        return response

    # The API limit applies to /api/* whatever blueprint serves it.
    limiter = Limiter(get_remote_address, app=server, storage_uri=config.ratelimit_storage_uri,
                      headers_enabled=True, default_limits=[config.api_rate_limit],
                      default_limits_exempt_when=lambda: not request.path.startswith("/api/"))
    return limiter
