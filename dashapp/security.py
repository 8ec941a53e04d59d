"""Who may read: API tokens and a login for the pages, and request limits.

One `before_request` hook covers every route of the server (the pages, the
Dash callbacks, the API, the CSV export and the WebSocket), so a route added
later is protected by default.  Only `/healthz` (no data) is open, and the
webhook, which is served in front of Flask with its signature check and
its own limit on refusals (`ingest/webhook.py`).
"""
import base64
import hmac

from flask import Flask, jsonify, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from dashapp.config import Config

PUBLIC_PATHS = ("/healthz",)  # and /webhook, served before Flask (ingest/webhook.py) with its own checks
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


def init_security(server: Flask, config: Config) -> Limiter:
    """Install the login/token check and the rate limits on `server`."""

    @server.before_request
    def _require_login():
        if not config.protected or request.path in PUBLIC_PATHS:
            return None
        if authorised(config, request.headers.get("Authorization")):
            return None
        wants_json = request.path.startswith("/api/") or request.path.startswith("/_dash") or request.path == "/ws"
        response = jsonify(error="authentication required: a Bearer token or a dashboard login") if wants_json \
            else server.response_class("Login required.", mimetype="text/plain")
        response.status_code = 401
        if config.dashboard_users.strip():
            response.headers["WWW-Authenticate"] = REALM
        return response

    # The API limit applies to /api/* whatever blueprint serves it.
    limiter = Limiter(get_remote_address, app=server, storage_uri=config.ratelimit_storage_uri,
                      headers_enabled=True, default_limits=[config.api_rate_limit],
                      default_limits_exempt_when=lambda: not request.path.startswith("/api/"))
    return limiter
