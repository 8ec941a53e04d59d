"""Who may open `/ws`: pages of this server's origin, a few sockets per client, and only while threads are left.

Each open socket holds a server thread for as long as it is open (`live/ws.py`), so a stranger could
take them all by opening sockets and never reading them.  Hence, per web process:

- at most LIVE_MAX_PER_CLIENT sockets per client address (REMOTE_ADDR, which is the client past
  TRUSTED_PROXIES: ProxyFix runs in front of the whole app), and
- a socket takes its place among the threads pages may hold (`dashapp/capacity.py`, WEB_THREADS -
  WEBHOOK_RESERVE), so sockets can never take /webhook's.

Past either, the socket is accepted and closed at once with 1013 (try again later) and a reason
naming the cap: a browser sees that code and reason (a refusal before the upgrade reaches it as a
bare 1006), and `assets/live.js` backs off, since only a socket that says hello resets its backoff.

The `Origin` check stops another site's page from opening a socket with the visitor's login
(cross-site WebSocket hijacking: browsers send cookies and basic-auth credentials with a WebSocket
handshake, and no CORS rule applies): a browser always sends `Origin`, and one that is neither
this server's (the scheme and host the request came to, past TRUSTED_PROXIES) nor in
LIVE_ALLOWED_ORIGINS is refused 403 before the upgrade.  A request without `Origin` is not from a
browser page, so it carries no visitor's credentials but its own, and passes (websocket-client, the
tests' and benchmarks' client, sends its target as `Origin` unless told not to).
"""
import logging
import threading
from collections import Counter
from urllib.parse import urlsplit

log = logging.getLogger("live.ws")

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
# What the browser's scheme of a page is called when its socket's is (an origin is a page's).
PAGE_SCHEMES = {"ws": "http", "wss": "https"}
TRY_AGAIN_LATER = 1013


def origin_of(url: str) -> str | None:
    """`url` as an origin, `scheme://host[:port]`, lower case and without a default port, as browsers send
    it; None when it is not one (`null`, a path, a bad port)."""
    try:
        parts = urlsplit(url.strip().lower())
        port = parts.port
    except ValueError:
        return None
    scheme, host = PAGE_SCHEMES.get(parts.scheme, parts.scheme), parts.hostname
    if scheme not in DEFAULT_PORTS or not host or parts.path not in ("", "/"):
        return None
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}" + ("" if port in (None, DEFAULT_PORTS[scheme]) else f":{port}")


class Admission:
    """The sockets each client holds, and whether one more may open.

    `threads`: the process's `dashapp.capacity.Threads` (None: no limit beyond the per-client one);
    `origins`: LIVE_ALLOWED_ORIGINS; `refused(reason)` counts each refusal (`origin`, `per_client`, `busy`).
    """

    def __init__(self, *, threads=None, per_client: int = 20, origins: str = "", refused=None):
        self.threads = threads
        self.per_client = per_client
        self.origins = {o for o in (origin_of(text) for text in origins.split(",") if text.strip()) if o}
        self.refused = refused or (lambda reason: None)
        self._clients: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._warned = False

    def origin_allowed(self, origin: str | None, own: str) -> bool:
        """May a page of `origin` (the `Origin` header, None without one) open a socket on the server at `own`?"""
        if origin is None:
            return True
        seen = origin_of(origin)
        return seen is not None and (seen == origin_of(own) or seen in self.origins)

    def origin_refusal(self, origin: str | None, own: str) -> str | None:
        """The 403 answer's text when a page of `origin` may not open a socket here (logged, counted); or None."""
        if self.origin_allowed(origin, own):
            return None
        self.refused("origin")
        # Said once at WARNING (likely a proxy setting; a stranger can repeat it at will): /metrics counts them.
        level, self._warned = (logging.DEBUG if self._warned else logging.WARNING), True
        log.log(level, "live: refused a WebSocket from the page of %r on %s (behind a TLS proxy, set "
                       "TRUSTED_PROXIES; other origins: LIVE_ALLOWED_ORIGINS)", origin[:200], own[:200])
        return "WebSocket refused: pages of another origin may not open it\n"

    def enter(self, client: str) -> tuple[str, str] | None:
        """Take a place for one more socket of `client`; or the refusal (`reason`, close message) if none is left."""
        with self._lock:
            if self._clients[client] >= self.per_client:
                refusal = "per_client", f"too many live connections from your address (at most {self.per_client})"
            elif self.threads is not None and not self.threads.take():
                refusal = "busy", f"server busy: all {self.threads.limit} threads for pages are taken"
            else:
                self._clients[client] += 1
                return None
        self.refused(refusal[0])
        return refusal

    def leave(self, client: str) -> None:
        with self._lock:
            self._clients[client] -= 1
            if self._clients[client] <= 0:
                del self._clients[client]
        if self.threads is not None:
            self.threads.give()

    def holding(self, client: str) -> int:
        with self._lock:
            return self._clients[client]
