"""Who is asking and what they may do: sessions, API tokens and logins, roles, CSRF, and request limits.

One `before_request` hook covers every route of the server (the pages, the
Dash callbacks, the API, the CSV export and the WebSocket), so a route added
later is protected by default.  Only `/healthz` (no data), the sign-in routes
and the webhook are open; the webhook is served in front of Flask with its
signature check and its own limit on refusals (`ingest/webhook.py`).

Who: a sign-in session (`dashapp/signin.py`, its cookie), a Bearer token (one an
admin issued, `store/accounts.py`, with its role; or one of API_TOKENS), or a
DASHBOARD_USERS login.  What they may do: a route says the role it needs where
it is defined (`requires`); every other route needs a viewer.  A request a
session makes that changes something (any method but GET and HEAD) must carry
the session's CSRF token, as Dash's renderer does from the `_csrf_token` cookie.
An unprotected server (no sign-in, tokens or logins) lets a client on its own
host do everything and anyone else read, as before roles.

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
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import Flask, g, jsonify, redirect, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse as parse_limit
from limits.strategies import FixedWindowRateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from dashapp.config import Config
from dashapp.roles import ADMIN, MAINTAINER, VIEWER, Person, allows, role_for
from ingest.webhook import is_local
from store import accounts, ratelimits

# And /webhook, served before Flask (ingest/webhook.py) with its own checks; and the views marked `public`.
PUBLIC_PATHS = ("/healthz", "/readyz", "/livez")
SESSION_COOKIE = "buildmon_session"
CSRF_COOKIE = "_csrf_token"  # the name Dash's renderer reads to send X-CSRFToken
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
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


@dataclass(frozen=True)
class Identity:
    """Who made this request (`flask.g.identity`): a name for the audit log, a role, and how they proved it."""
    actor: str
    role: str
    via: str  # session | token | static-token | login | local | anonymous
    csrf: str | None = None  # a session's CSRF token
    email: str | None = None


def identity() -> Identity:
    """The current request's `Identity` (anonymous outside a checked request)."""
    return g.get("identity") or Identity("anonymous", VIEWER, "anonymous")


def audit(conn, action: str, target: str | None = None, detail: dict | None = None) -> None:
    """Write `action` by this request's identity to the audit log (in the caller's transaction)."""
    who = identity()
    accounts.audit(conn, actor=who.actor, role=who.role, action=action, target=target, detail=detail,
                   client=request.remote_addr)


def requires(role: str):
    """Mark a view as needing `role` (write it under the route's decorator); the hook refuses anyone less."""
    def mark(view):
        view.required_role = role
        return view
    return mark


def public(view):
    """Mark a view as open to anyone (the sign-in routes: how a stranger becomes someone)."""
    view.public = True
    return view


def credential(config: Config, header: str | None, engine) -> Identity | None:
    """The identity the Authorization header proves: an issued token, an API_TOKENS one, or a login."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if value.startswith(accounts.TOKEN_PREFIX):
            with engine.connect() as conn:
                found = accounts.token_role(conn, value)
            return Identity(f"token:{found[0]}", found[1], "token") if found else None
        # API_TOKENS come from the server's own configuration: who holds one may do what a maintainer may.
        return Identity("api-token", MAINTAINER, "static-token") if _any_equal(value.encode(), _tokens(config)) \
            else None
    if scheme.lower() == "basic":
        try:
            user, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        users = _users(config)
        if _any_equal(password.encode(), [users.get(user, b"\0" * 32)]) and user in users:
            return Identity(user, role_for(config, Person(user), default=MAINTAINER), "login")
    return None


def behind_proxies(wsgi_app, config: Config):
    """`wsgi_app` reading the client's address, scheme and host past `TRUSTED_PROXIES` proxies.

    Applied outermost, so that every limit, loopback mode and the WebSocket origin check see the same
    client; with no trusted proxy, forwarding headers are ignored (a client could write them itself).
    """
    n = config.trusted_proxies
    return ProxyFix(wsgi_app, x_for=n, x_proto=n, x_host=n) if n > 0 else wsgi_app


def init_security(server: Flask, config: Config) -> Limiter:
    """Install the login/token check and the rate limits on `server`."""
    engine = server.extensions["buildmon"].engine
    failures = FixedWindowRateLimiter(ratelimits.storage(config.ratelimit_storage_uri, engine))
    failure_limit = parse_limit(config.auth_failure_limit)
    stats = server.extensions["buildmon"].stats

    def _answer(status: int, message: str):
        wants_json = request.path.startswith("/api/") or request.path.startswith("/_dash") or request.path == "/ws"
        response = jsonify(error=message) if wants_json else server.response_class(message, mimetype="text/plain")
        response.status_code = status
        return response

    @server.before_request
    def _require_login():
        if request.path in PUBLIC_PATHS or getattr(server.view_functions.get(request.endpoint), "public", False):
            return None
        if not config.protected:
            # As before roles: everything from the server's own host, reading from anywhere else.
            local = is_local(request.environ, request.remote_addr or "")
            g.identity = Identity("local", ADMIN, "local") if local else Identity("anonymous", VIEWER, "anonymous")
            return _allowed()
        cookie = request.cookies.get(SESSION_COOKIE)
        if cookie:
            with engine.connect() as conn:
                found = accounts.session(conn, cookie)
            if found:
                g.identity = Identity(found["login"], found["role"], "session", csrf=found["csrf"],
                                      email=found["email"])
                return _allowed()
        header = request.headers.get("Authorization")
        client = request.remote_addr or ""
        if header and not failures.test(failure_limit, "auth-failures", client):
            stats.auth_failures.labels(outcome="limited").inc()
            response = _answer(429, "too many failed logins or wrong tokens from this client; try again later")
            reset = failures.get_window_stats(failure_limit, "auth-failures", client).reset_time
            response.headers["Retry-After"] = str(max(1, int(reset - time.time()) + 1))
            return response
        found = credential(config, header, engine)
        if found:
            g.identity = found
            return _allowed()
        if header:  # a wrong token or password (asking without one is how a browser starts a login)
            stats.auth_failures.labels(outcome="refused").inc()
            failures.hit(failure_limit, "auth-failures", client)
        elif config.signin and request.method == "GET" and _is_page(request.path):
            return redirect(f"/signin?{urlencode({'next': request.full_path.rstrip('?')})}")
        response = _answer(401, "authentication required: sign in, a Bearer token or a dashboard login")
        if config.dashboard_users.strip():
            response.headers["WWW-Authenticate"] = REALM
        return response

    def _allowed():
        """None when the identity may make this request; else its refusal (the role, or CSRF)."""
        who = g.identity
        view = server.view_functions.get(request.endpoint)
        needed = getattr(view, "required_role", VIEWER)
        if not allows(who.role, needed):
            if not config.protected:
                return _answer(403, f"this needs the {needed} role: a protected server (sign-in, API_TOKENS or "
                                    "DASHBOARD_USERS) or a client on the server's own host")
            return _answer(403, f"this needs the {needed} role; {who.actor} is a {who.role}")
        if who.via == "session" and request.method not in SAFE_METHODS:
            sent = request.headers.get("X-CSRFToken") or request.form.get("csrf_token") or ""
            if not hmac.compare_digest(sent.encode(), (who.csrf or "").encode()):
                return _answer(403, "the request's CSRF token is missing or wrong: reload the page")
        return None

    # The API limit applies to /api/* whatever blueprint serves it.
    uri, options = ratelimits.resolve(config.ratelimit_storage_uri, engine)
    limiter = Limiter(get_remote_address, app=server, storage_uri=uri, storage_options=options,
                      headers_enabled=True, default_limits=[config.api_rate_limit],
                      default_limits_exempt_when=lambda: not request.path.startswith("/api/"))
    return limiter


def _is_page(path: str) -> bool:
    """A page a browser opens (sign-in redirects it), not a machine's route (they get 401)."""
    return not path.startswith(("/api/", "/_dash", "/ws", "/metrics", "/assets/", "/_reload", "/_favicon"))
