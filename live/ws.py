"""`GET /ws`: every hub message, as sanitised JSON, to each connected browser.

Each connection subscribes to `services.hub`, and one fan-out thread per
server sends them all: it encodes and frames each message once and writes
the same bytes to every socket without blocking (a socket that takes less
keeps the rest, in order, and is retried), so a message costs one
non-blocking send per client rather than a thread woken per client.  The
hub never waits for a connection (its bounded queue drops one that falls
behind), and a connection whose socket takes nothing for `LIVE_SEND_TIMEOUT`
or whose queue was dropped is cut, so a slow or dead client delays nobody
and its browser reconnects.  The connection's own (gunicorn) thread only
waits for the end and closes it.  Messages are `{"type": ..., "seq": n,
"row": {...}}`; the first is `{"type": "hello", "seq": last}` and an idle
connection gets `{"type": "ping", "seq": last}` every `HEARTBEAT` seconds, so
a client can both notice a dead connection and detect missed messages from
`seq` gaps.  Who may open one (same origin, a few per client address, only
while the threads left beside /webhook's reserve allow) is decided by
`live/admission.py`: a socket refused after the upgrade is closed with 1013
and the cap as its reason, before it says hello.
"""
import json
import logging
from collections import OrderedDict, deque
import signal
import socket
import threading
import time

from flask import Flask, current_app, request
from flask_sock import Sock
from simple_websocket import ConnectionClosed
from wsproto.utilities import LocalProtocolError

from live.admission import TRY_AGAIN_LATER, Admission
from live.messages import outgoing

log = logging.getLogger(__name__)

DEFAULTS = {
    "LIVE_HEARTBEAT": 15.0,  # seconds of silence before an application-level ping
    "LIVE_SEND_TIMEOUT": 10.0,  # a send blocked this long means the client stopped reading
    "LIVE_QUEUE": 1000,  # messages a connection may fall behind before the hub drops it
}
SOCK_OPTIONS = {"ping_interval": 25, "max_message_size": 4096}  # protocol pings keep proxies from timing out
EXTENSION = "buildmon.live"
ADMISSION = "buildmon.live.admission"  # who may open a socket (live/admission.py)
PATH = "/ws"
ENCODED_CACHE = 2048  # recent messages kept encoded (by seq) for the connections still sending them


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unfragmented, unmasked (server to client) WebSocket frame: built once, sent to every client."""
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, n))
    elif n < 65536:
        head = bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big")
    return head + payload


def _text_frame(text: str) -> bytes:
    return frame(text.encode())


class _Socket:
    """The socket as `simple_websocket` sees it: its writes (pongs, protocol pings, close frames) join the
    connection's outgoing bytes in order, so they never land inside a half-sent message."""

    def __init__(self, sock: socket.socket, conn: "Connection"):
        self._sock, self._conn = sock, conn

    def send(self, data) -> int:
        if not self._conn.write(bytes(data)):
            raise BrokenPipeError("connection closed")
        return len(data)

    def sendall(self, data) -> None:
        self.send(data)

    def close(self) -> None:
        # simple_websocket's reader thread ends: the client went away or closed
        self._conn.gone = True
        self._conn.finished.set()
        self._sock.close()

    def __getattr__(self, name):
        return getattr(self._sock, name)


class Connection:
    """One open WebSocket: its hub subscription and the bytes not yet taken by its socket.

    Writes never block: what the socket does not take at once waits in `pending` (oldest first) and
    `sending_since` says since when; the fan-out thread sends the rest when it can, or cuts the
    connection once it has waited `send_timeout`.
    """

    def __init__(self, ws, sub):
        self.ws = ws
        self.sub = sub
        self.sock: socket.socket = ws.sock
        if self.sock.gettimeout() is not None:
            self.sock.settimeout(None)  # MSG_DONTWAIT sends must return at once, never wait for a timeout
        ws.sock = _Socket(self.sock, self)
        self.sending_since: float | None = None
        self.aborted = False
        self.gone = False  # the socket was closed under us
        self.closing = False  # the handler is closing it: send nothing more from the hub
        self.close_reason: tuple[int, str] | None = None  # set to ask the handler to close it
        self.finished = threading.Event()  # wakes the handler thread
        self.last_seq = None  # seq of the last hub message (or hello) written
        self.last_write = time.monotonic()
        self._pending: deque[bytes] = deque()
        self._lock = threading.Lock()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def write(self, data: bytes) -> bool:
        """Send `data` after everything before it, without blocking; False once the connection is gone."""
        with self._lock:
            if self.aborted or self.gone:
                return False
            self._pending.append(data)
            if len(self._pending) == 1:
                self._flush_locked()
        return not (self.aborted or self.gone)

    def flush(self) -> None:
        with self._lock:
            if self._pending and not (self.aborted or self.gone):
                self._flush_locked()

    def _flush_locked(self) -> None:
        pending = self._pending
        while pending:
            data = pending[0] if len(pending) == 1 else b"".join(pending)
            try:
                sent = self.sock.send(data, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:  # the client is gone
                pending.clear()
                self.gone = True
                self.finished.set()
                break
            if sent == len(data):
                pending.clear()
            else:
                pending.clear()
                pending.append(data[sent:])
                if self.sending_since is None:
                    self.sending_since = time.monotonic()
                return
        self.sending_since = None
        self.last_write = time.monotonic()

    def request_close(self, code: int, message: str) -> None:
        if self.close_reason is None:
            self.close_reason = (code, message)
        self.finished.set()

    def abort(self) -> None:
        """Cut the TCP connection: the browser sees a close and reconnects."""
        self.aborted = True
        self.sub.close()
        self.finished.set()
        with self._lock:
            self._pending.clear()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class Connections:
    """The open WebSockets of one server, fed by one fan-out thread.

    Each connection's hub subscription only wakes this thread (no thread per client wakes per message);
    the thread encodes and frames each message once, writes the same bytes to every socket without
    blocking, sends idle connections a heartbeat, and cuts a connection whose socket has taken nothing
    for `send_timeout` or whose subscription the hub dropped (it fell `LIVE_QUEUE` messages behind).
    """

    TICK = 0.5  # seconds between housekeeping passes when nothing happens
    RETRY = 0.02  # seconds between attempts to send to a connection whose socket was full

    def __init__(self, send_timeout: float, heartbeat: float = DEFAULTS["LIVE_HEARTBEAT"]):
        self.send_timeout = send_timeout
        self.heartbeat = heartbeat
        self.closing = False
        self._open: set[Connection] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wakeup = threading.Event()
        self._encoded: OrderedDict[int, bytes] = OrderedDict()

    def wake(self) -> None:
        """Run by the hub after queueing a message for a connection: cheap, whatever the number of clients."""
        if not self._wakeup.is_set():
            self._wakeup.set()

    def encode(self, message: dict) -> bytes:
        """The frame of `outgoing(message)`, built once per message however many clients get it."""
        seq = message.get("seq")
        if not isinstance(seq, int):
            return _text_frame(outgoing(message))
        data = self._encoded.get(seq)
        if data is None:
            data = self._encoded[seq] = _text_frame(outgoing(message))
            while len(self._encoded) > ENCODED_CACHE:
                self._encoded.popitem(last=False)
        return data

    def add(self, conn: Connection, hello: bytes) -> None:
        """Send `hello`, then let the fan-out thread send `conn` its hub messages."""
        with self._lock:  # the fan-out thread lists connections under this lock: the hello goes first
            self._open.add(conn)
            conn.write(hello)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="ws-fanout", daemon=True)
                self._thread.start()
        self.wake()

    def remove(self, conn: Connection) -> None:
        with self._lock:
            self._open.discard(conn)

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def _run(self) -> None:
        while True:
            with self._lock:
                conns = list(self._open)
            waiting = any(conn.pending for conn in conns)
            self._wakeup.wait(self.RETRY if waiting else self.TICK)
            self._wakeup.clear()
            with self._lock:
                conns = list(self._open)
            for conn in conns:
                try:
                    self._pump(conn)
                except Exception:  # noqa: BLE001 - one broken connection must not stop the others' updates
                    log.exception("live: dropping a connection after an error")
                    conn.abort()

    def _pump(self, conn: Connection) -> None:
        if conn.aborted or conn.gone:
            return
        if conn.pending:
            conn.flush()
        now = time.monotonic()
        if conn.pending:
            since = conn.sending_since
            if (since is not None and now - since > self.send_timeout) or conn.sub.dropped:
                log.info("live: dropping a client that stopped reading (%s)",
                         "queue full" if conn.sub.dropped else "stuck send")
                conn.abort()
            return  # its socket is full: the hub queues its messages meanwhile
        if conn.closing:
            return
        if conn.sub.dropped:  # closed by the hub (fell behind) or by `close_all`
            conn.request_close(*((1001, "server shutting down") if self.closing else (1013, "fell behind")))
            return
        frames = []
        while True:
            item = conn.sub.get(timeout=0)
            if item is None:
                break
            frames.append(self.encode(item))
            conn.last_seq = item.get("seq", conn.last_seq)
        if frames:
            conn.write(frames[0] if len(frames) == 1 else b"".join(frames))
        elif now - conn.last_write >= self.heartbeat:
            conn.write(_text_frame(json.dumps({"type": "ping", "seq": conn.last_seq})))

    def close_all(self, timeout: float = 5.0) -> None:
        """Close every connection (code 1001, going away) and refuse new ones; wait up to `timeout`."""
        self.closing = True
        with self._lock:
            conns = list(self._open)
        for conn in conns:
            conn.request_close(1001, "server shutting down")  # wakes its thread, which closes the socket cleanly
        deadline = time.monotonic() + timeout
        while len(self) and time.monotonic() < deadline:
            time.sleep(0.02)
        with self._lock:
            left = list(self._open)
        for conn in left:  # its socket takes nothing: cut it
            conn.abort()


def serve(ws, hub, conns: Connections, *, heartbeat: float, queue: int) -> None:
    """Hold `ws` open while the fan-out thread sends it every hub message; close it when asked."""
    if conns.closing:
        ws.close(1001, "server shutting down")
        return
    conns.heartbeat = heartbeat
    sub = hub.subscribe(queue, wake=conns.wake)
    conn = Connection(ws, sub)
    last = getattr(hub, "last_seq", None)
    conn.last_seq = last
    conns.add(conn, _text_frame(json.dumps({"type": "hello", "seq": last})))
    try:
        while ws.connected and not conn.aborted and not conn.gone and conn.close_reason is None:
            conn.finished.wait(1.0)
            if sub.dropped and conn.close_reason is None and not conn.aborted:
                conns.wake()  # the fan-out thread decides: fell behind, or shutting down
            while ws.receive(timeout=0) is not None:  # the client has nothing to say: discard
                pass
        conn.closing = True
        sub.close()
        if conn.close_reason is not None and not conn.aborted and not conn.gone and ws.connected:
            try:
                ws.close(*conn.close_reason)  # its frame follows whatever is still pending
            except Exception:  # already closed by the other side
                pass
            deadline = time.monotonic() + conns.send_timeout
            while conn.pending and not (conn.aborted or conn.gone) and time.monotonic() < deadline:
                conns.wake()
                time.sleep(0.01)
    except (OSError, ConnectionClosed, LocalProtocolError):  # the socket broke or was cut: the client is gone
        pass
    finally:
        sub.close()
        conns.remove(conn)


def init_app(server: Flask, hub, admission: Admission | None = None) -> Connections:
    """Serve `/ws` on `server` from `hub` to whom `admission` lets in; close connections on shutdown
    (SIGTERM, `close`)."""
    for key, value in DEFAULTS.items():
        server.config.setdefault(key, value)
    server.config.setdefault("SOCK_SERVER_OPTIONS", dict(SOCK_OPTIONS))
    conns = Connections(server.config["LIVE_SEND_TIMEOUT"])
    server.extensions[EXTENSION] = conns
    admission = server.extensions[ADMISSION] = admission or Admission()
    sock = Sock(server)

    @server.before_request
    def _same_origin():  # before the upgrade, which happens before the route's function runs
        if request.path != PATH:
            return None
        refusal = admission.origin_refusal(request.headers.get("Origin"), f"{request.scheme}://{request.host}")
        return None if refusal is None else server.response_class(refusal, status=403, mimetype="text/plain")

    @sock.route(PATH)
    def websocket(ws):
        config = current_app.config
        client = request.remote_addr or ""
        refusal = admission.enter(client)
        if refusal is not None:  # accepted, then closed at once: the browser sees the code and the reason
            log.debug("live: refused a WebSocket from %s: %s", client, refusal[1])  # counted on /metrics
            ws.close(TRY_AGAIN_LATER, refusal[1])
            return
        try:
            serve(ws, hub, conns, heartbeat=config["LIVE_HEARTBEAT"], queue=config["LIVE_QUEUE"])
        finally:
            admission.leave(client)

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
