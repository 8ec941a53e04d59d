"""`GET /ws`: every hub message, as sanitised JSON, to each connected browser.

Each connection subscribes to `services.hub` and forwards its messages from
its own thread; the hub never waits for a connection (its bounded queue
drops one that falls behind), and a watchdog closes the socket of a dropped
or stuck connection, so a slow or dead client delays nobody and its browser
reconnects.  Messages are `{"type": ..., "seq": n, "row": {...}}`; the first
is `{"type": "hello", "seq": last}` and an idle connection gets
`{"type": "ping", "seq": last}` every `HEARTBEAT` seconds, so a client can
both notice a dead connection and detect missed messages from `seq` gaps.
"""
import json
import logging
from collections import OrderedDict
import math
import signal
import socket
import threading
import time

from flask import Flask, current_app
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from wsproto.utilities import LocalProtocolError

from store.rows import RUN_COLUMNS

log = logging.getLogger(__name__)

RUN_FIELDS = tuple(c.name for c in RUN_COLUMNS)
JOB_FIELDS = ("gitid", "run_gitid", "attempt", "repo")
MAX_TEXT = 2000  # a commit message longer than this is cut: the page shows its first line
DEFAULTS = {
    "LIVE_HEARTBEAT": 15.0,  # seconds of silence before an application-level ping
    "LIVE_SEND_TIMEOUT": 10.0,  # a send blocked this long means the client stopped reading
    "LIVE_QUEUE": 1000,  # messages a connection may fall behind before the hub drops it
}
SOCK_OPTIONS = {"ping_interval": 25, "max_message_size": 4096}  # protocol pings keep proxies from timing out
EXTENSION = "buildmon.live"
ENCODED_CACHE = 2048  # recent messages kept encoded (by seq) for the connections still sending them


def _value(value):
    """Plain JSON values only; anything else (bytes, dates, NaN) goes out as null."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2 ** 53 else str(value)  # beyond 2**53 JavaScript loses digits
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value[:MAX_TEXT]
    return None


def _url(value):
    return value if isinstance(value, str) and value.startswith(("https://", "http://")) else None


def outgoing(message: dict) -> str:
    """The JSON text sent for a hub message: allow-listed fields, plain values."""
    kind = message.get("type")
    out = {"type": kind if kind in ("run", "job") else "other", "seq": _value(message.get("seq"))}
    row = message.get("row") if isinstance(message.get("row"), dict) else {}
    if kind == "run":
        out["row"] = {name: _value(row.get(name)) for name in RUN_FIELDS}
        out["row"]["url"] = _url(out["row"]["url"])
    elif kind == "job":
        out["row"] = {name: _value(row.get(name)) for name in JOB_FIELDS}
    return json.dumps(out, separators=(",", ":"), allow_nan=False)


class Connection:
    def __init__(self, ws, sub):
        self.ws = ws
        self.sub = sub
        self.sending_since: float | None = None
        self.aborted = False

    def send(self, text: str) -> None:
        self.sending_since = time.monotonic()
        try:
            self.ws.send(text)
        finally:
            self.sending_since = None

    def abort(self) -> None:
        """Cut the TCP connection: unblocks a stuck send, and the browser sees a close and reconnects."""
        self.aborted = True
        self.sub.close()
        try:
            self.ws.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Connections:
    """The open WebSockets of one server: watched for stuck sends, closed on shutdown."""

    def __init__(self, send_timeout: float):
        self.send_timeout = send_timeout
        self.closing = False
        self._open: set[Connection] = set()
        self._lock = threading.Lock()
        self._watchdog: threading.Thread | None = None
        self._encoded: OrderedDict[int, str] = OrderedDict()

    def encode(self, message: dict) -> str:
        """`outgoing(message)`, computed once per message however many clients get it."""
        seq = message.get("seq")
        if not isinstance(seq, int):
            return outgoing(message)
        with self._lock:
            text = self._encoded.get(seq)
        if text is None:
            text = outgoing(message)
            with self._lock:
                self._encoded[seq] = text
                while len(self._encoded) > ENCODED_CACHE:
                    self._encoded.popitem(last=False)
        return text

    def add(self, conn: Connection) -> None:
        with self._lock:
            self._open.add(conn)
            if self._watchdog is None or not self._watchdog.is_alive():
                self._watchdog = threading.Thread(target=self._watch, name="ws-watchdog", daemon=True)
                self._watchdog.start()

    def remove(self, conn: Connection) -> None:
        with self._lock:
            self._open.discard(conn)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def _watch(self) -> None:
        while True:
            time.sleep(0.2)
            with self._lock:
                conns = list(self._open)
            now = time.monotonic()
            for conn in conns:
                stuck = conn.sending_since is not None and now - conn.sending_since > self.send_timeout
                if not conn.aborted and (stuck or (conn.sub.dropped and conn.sending_since is not None)):
                    log.info("live: dropping a client that stopped reading (%s)", "stuck send" if stuck else "queue full")
                    conn.abort()

    def close_all(self, timeout: float = 5.0) -> None:
        """Close every connection (code 1001, going away) and refuse new ones; wait up to `timeout`."""
        self.closing = True
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            conn.sub.close()  # wakes its thread, which closes the socket cleanly
        deadline = time.monotonic() + timeout
        while len(self) and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            left = list(self._open)
        for conn in left:  # stuck in a send: cut it
            conn.abort()


def serve(ws, hub, conns: Connections, *, heartbeat: float, queue: int) -> None:
    """Forward `hub` messages to `ws` until either side goes away."""
    if conns.closing:
        ws.close(1001, "server shutting down")
        return
    sub = hub.subscribe(queue)
    conn = Connection(ws, sub)
    conns.add(conn)
    reason, message = 1000, ""
    try:
        conn.send(json.dumps({"type": "hello", "seq": getattr(hub, "last_seq", None)}))
        idle_since = time.monotonic()
        while ws.connected:
            item = sub.get(timeout=1.0)
            if sub.dropped:  # closed by the hub (fell behind) or by `close_all`
                reason, message = (1001, "server shutting down") if conns.closing else (1013, "fell behind")
                break
            if item is None:
                while ws.receive(timeout=0) is not None:  # the client has nothing to say: discard
                    pass
                if time.monotonic() - idle_since >= heartbeat:
                    conn.send(json.dumps({"type": "ping", "seq": getattr(hub, "last_seq", None)}))
                    idle_since = time.monotonic()
                continue
            conn.send(conns.encode(item))
            idle_since = time.monotonic()
    except (OSError, ConnectionClosed, LocalProtocolError):  # the socket broke or was cut: the client is gone
        pass
    finally:
        sub.close()
        conns.remove(conn)
    if not conn.aborted and ws.connected:
        try:
            ws.close(reason, message)
        except Exception:  # already closed by the other side
            pass


def init_app(server: Flask, hub) -> Connections:
    """Serve `/ws` on `server` from `hub`; close connections on shutdown (SIGTERM, `close`)."""
    for key, value in DEFAULTS.items():
        server.config.setdefault(key, value)
    server.config.setdefault("SOCK_SERVER_OPTIONS", dict(SOCK_OPTIONS))
    conns = Connections(server.config["LIVE_SEND_TIMEOUT"])
    server.extensions[EXTENSION] = conns
    sock = Sock(server)

    @sock.route("/ws")
    def websocket(ws):
        config = current_app.config
        serve(ws, hub, conns, heartbeat=config["LIVE_HEARTBEAT"], queue=config["LIVE_QUEUE"])

    _close_on_sigterm(conns)
    return conns


def close(server: Flask, timeout: float = 5.0) -> None:
    """Close every open WebSocket of `server` (tests, and before a server stops)."""
    conns = server.extensions.get(EXTENSION)
    if conns is not None:
        conns.close_all(timeout)


def _close_on_sigterm(conns: Connections) -> None:
    # gunicorn's graceful stop waits for open requests, and a WebSocket is
    # one: close them first.  Only chained onto a handler someone installed
    # (gunicorn's worker), in the main thread; the default action is kept.
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if not callable(previous):
        return

    def handler(signum, frame):
        threading.Thread(target=conns.close_all, name="ws-close", daemon=True).start()
        previous(signum, frame)

    signal.signal(signal.SIGTERM, handler)
