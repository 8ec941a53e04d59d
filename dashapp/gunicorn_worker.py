"""gunicorn's threaded worker, giving a connection a thread only once its request has arrived.

gthread (gunicorn 27) waits for a connection's first byte without a thread, but then parses the
request in a pool thread that blocks on every recv: a client sending a header line every few
seconds holds that thread for as long as it likes, and twice WEB_THREADS of them leave none for
anyone, /webhook included (GitHub gives up on a delivery after 10 s and never retries).

This worker reads each request's head, and its body when it is small (Content-Length up to
`BUFFERED_BODY`), in its main loop with the selector, never blocking; the connection goes to the
pool once they have arrived, the bytes given back to gunicorn's parser, which then parses them
without waiting.  A kept-alive connection's next request is read the same way.  A request not
complete within REQUEST_TIMEOUT is answered 408 and closed; a head over `MAX_HEAD` bytes, 431.
A larger body is read by the thread (the webhook bounds its own read: `ingest/webhook.py`).
Closing an answered connection (reading what the client still sends, so that the close does not
reset it) is the loop's too, without blocking: gthread did it blocking its loop, up to 2 s a
connection, so a client that never closed stalled every connection of the process.

Loaded by path from `gunicorn_conf.py`, which sets `request_timeout`: importing it as
`dashapp.gunicorn_worker` would import the `dashapp` package, hence Dash, into the master.
"""
import errno
import heapq
import itertools
import os
import resource
import selectors
import socket
import time
from functools import partial

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import STOP_KEEPALIVE_LINGER, TConn, ThreadWorker

MAX_HEAD = 64 * 1024  # request line and headers (gunicorn's own limits come to more, but no client here needs it)
BUFFERED_BODY = 64 * 1024  # bodies up to this are read before the thread (a GitHub delivery usually is)
READ_SIZE = 64 * 1024
LINGER, LINGER_BYTES = 2.0, 64 * 1024  # an answered connection's closing: as gthread's (util.close_graceful)
SPARE_FILES = 256  # open files beside the connections: the stores, pipes, the live bus's sockets


def _answer(status: str, text: str) -> bytes:
    body = text.encode()
    return (f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


TOO_LARGE = _answer("431 Request Header Fields Too Large", f"request headers over {MAX_HEAD} bytes\n")


def body_to_buffer(head: bytes) -> int:
    """Body bytes to read before a request with this head (request line and headers) goes to a thread.

    Its Content-Length when that is at most `BUFFERED_BODY`; otherwise 0: a thread reads a large or
    chunked body, one the client sends only after `100 Continue` (which gunicorn sends from the
    thread), and any malformed framing, which gunicorn's parser refuses.
    """
    length = None
    for line in head.split(b"\r\n")[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            continue
        name, value = name.lower(), value.strip().lower()
        if name in (b"transfer-encoding", b"expect"):
            return 0
        if name == b"content-length":
            if length is not None or not value.isdigit():
                return 0
            length = int(value)
    return length if length is not None and length <= BUFFERED_BODY else 0


class Conn(TConn):
    """A connection, and what the main loop has read of its next request."""

    def __init__(self, cfg, sock, client, server):
        super().__init__(cfg, sock, client, server)
        self.deadline = 0.0
        self.idle = False
        self.upgraded = False  # its last request was a WebSocket's (`Worker.handle_request`)
        self.drained = 0  # bytes read and dropped while closing (`Worker._linger`)
        self.expect()

    def expect(self, data: bytes = b"") -> None:
        """Start reading a request, of which `data` has arrived."""
        self.received = bytearray(data)
        self.scanned = 0  # bytes of `received` already searched for the end of the head
        self.wanted = None  # bytes the request takes (head + buffered body), once the head is complete

    def ready(self) -> bool | None:
        """True once the request has arrived (head, and a small body); None if its head is over MAX_HEAD."""
        if self.wanted is None:
            # From where the last search ended (less 3 bytes, for a CRLFCRLF split between reads): a
            # client sending a byte at a time must not cost a search of everything it sent so far.
            end = self.received.find(b"\r\n\r\n", max(0, self.scanned - 3))
            if end < 0:
                self.scanned = len(self.received)
                return None if len(self.received) > MAX_HEAD else False
            if end > MAX_HEAD:
                return None
            self.wanted = end + 4 + body_to_buffer(bytes(self.received[:end]))
        return len(self.received) >= self.wanted


class Worker(ThreadWorker):
    request_timeout = 10.0  # REQUEST_TIMEOUT, set by gunicorn_conf.py

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading: set[Conn] = set()  # connections whose request the main loop is reading
        self.lingering: set[Conn] = set()  # answered connections closing (`_linger`)
        # (deadline, n, conn), earliest first; an entry whose connection has moved on (to a thread,
        # or to a later deadline) is skipped when it comes up
        self.deadlines: list = []
        self._order = itertools.count()
        self._stop_noted = False

    def init_process(self):
        # The app leaves /webhook WEB_THREADS - WEBHOOK_RESERVE threads (dashapp/capacity.py): make it
        # this pool's real size, whatever `--threads` said.
        os.environ["WEB_THREADS"] = str(self.cfg.threads)
        _allow_open_files(self.cfg.worker_connections + SPARE_FILES)
        super().init_process()

    # --- reading requests in the main loop ---

    def accept(self, listener):
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        conn = Conn(self.cfg, sock, client, listener.getsockname())  # non-blocking
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, client):
            # TLS and HTTP/2 handshakes are gunicorn's, done in a thread (unused here: a proxy ends TLS)
            self.enqueue_req(conn)
            return
        self._read_request(conn, b"", time.monotonic() + self.request_timeout)

    def _read_request(self, conn: Conn, data: bytes, deadline: float, *, idle: bool = False) -> None:
        """Read `conn`'s request (of which `data` has arrived) until `deadline`; `idle`: a kept-alive
        connection's deadline to begin one, its REQUEST_TIMEOUT starting with its first byte."""
        conn.expect(data)
        conn.idle = idle
        if data and self._advance(conn):
            return
        conn.sock.setblocking(False)
        self._arm(conn, deadline)
        self.reading.add(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_data, conn))

    def _on_data(self, conn: Conn, _sock) -> None:
        data = _recv(conn)
        if data is None:
            return
        if not data:
            if conn.wanted is not None:  # its head came, and the client says its body ended: the app says so
                self._hand_over(conn)
            else:  # closed (or reset) before its headers were complete: nobody to answer
                self._drop(conn)
            return
        if conn.idle:
            conn.idle = False
            self._arm(conn, time.monotonic() + self.request_timeout)
        conn.received += data
        self._advance(conn)

    def _advance(self, conn: Conn) -> bool:
        """Hand `conn` to a thread once its request is complete, or refuse it; False while it is not."""
        ready = conn.ready()
        if ready is None:
            self._refuse(conn, TOO_LARGE)
        elif ready:
            self._hand_over(conn)
        return ready is not False

    def _hand_over(self, conn: Conn) -> None:
        self._forget(conn)
        data = bytes(conn.received)
        conn.expect()
        conn.data_ready = True  # gthread's handle() must not wait for a first byte again
        try:
            conn.init()  # a new connection's HTTP/1 parser (a plain socket: no I/O)
            conn.parser.unreader.unread(data)
        except Exception:  # noqa: BLE001 - one broken connection must not stop the loop
            self.log.exception("could not hand a request over")
            self._drop(conn)
            return
        self.enqueue_req(conn)

    def handle_request(self, req, conn):
        # An upgraded connection (a WebSocket) ends up closed by another thread (simple_websocket's
        # reader): the main loop must not register its socket with the selector again.
        conn.upgraded = any(name == "UPGRADE" for name, _ in req.headers)
        return super().handle_request(req, conn)

    def finish_request(self, conn, fs):
        if not isinstance(conn, Conn) or self.cfg.is_ssl or conn.is_http2:
            super().finish_request(conn, fs)
        elif fs.cancelled() or fs.exception() is not None or conn.upgraded:
            self._drop(conn)
        elif fs.result() is True:  # kept alive: its next request is read here too, from what the thread read ahead
            ahead = conn.parser.unreader.take_buffered()
            idle = self.cfg.keepalive if self.alive else min(self.cfg.keepalive, STOP_KEEPALIVE_LINGER)
            self._read_request(conn, ahead, time.monotonic() + (self.request_timeout if ahead else idle),
                               idle=not ahead)
        else:
            self._linger(conn)

    # --- deadlines, closing ---

    def _arm(self, conn: Conn, deadline: float) -> None:
        conn.deadline = deadline
        heapq.heappush(self.deadlines, (deadline, next(self._order), conn))

    def murder_keepalived(self, force=False):
        # Run by gthread's loop after every wait (at most 1 s), while stopping, and with force=True at
        # the very end: close the connections whose request did not arrive in time.
        super().murder_keepalived(force)
        now = time.monotonic()
        if not self.alive and not self._stop_noted:
            # Stopping: a connection with nothing of a request yet gets as long as gthread gives a
            # kept-alive one; one half-sent keeps its deadline (the graceful timeout bounds it).
            self._stop_noted = True
            for conn in list(self.reading):
                if not conn.received:
                    self._arm(conn, min(conn.deadline, now + STOP_KEEPALIVE_LINGER))
        while self.deadlines and (force or self.deadlines[0][0] <= now):
            deadline, _, conn = heapq.heappop(self.deadlines)
            if conn.deadline != deadline or not (conn in self.reading or conn in self.lingering):
                continue
            if conn in self.reading and conn.received and not force:
                self._refuse(conn, self._timed_out)
            else:
                # No 408 to an idle connection (a browser's preconnect, a kept-alive one): it would
                # read it as the answer to the next request it sends.
                self._drop(conn)

    @property
    def _timed_out(self) -> bytes:
        return _answer("408 Request Timeout", f"request not received within {self.request_timeout:g} s\n")

    def _refuse(self, conn: Conn, answer: bytes) -> None:
        self._forget(conn)
        try:  # best effort, non-blocking: a client that does not take it is closed all the same
            conn.sock.send(answer)
        except OSError:
            pass
        self._linger(conn)

    def _linger(self, conn: Conn) -> None:
        """Close an answered connection as RFC 9112 (9.6) says, without blocking.

        FIN after the answer, then what the client still sends is read and dropped until it closes
        (at most LINGER s, LINGER_BYTES), so that closing does not reset the connection and destroy
        the answer before the client has read it.  gthread lingers in its main loop, blocking it for
        up to 2 s a connection: a client that never closes after its answer stalls every other
        connection of the process, deliveries included.
        """
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_linger_data, conn))
        except (OSError, ValueError, KeyError):  # already closed or reset
            self._drop(conn)
            return
        conn.drained = 0
        self.lingering.add(conn)
        self._arm(conn, time.monotonic() + LINGER)

    def _on_linger_data(self, conn: Conn, _sock) -> None:
        data = _recv(conn)
        if data is None:
            return
        conn.drained += len(data)
        if not data or conn.drained >= LINGER_BYTES:
            self._drop(conn)

    def _forget(self, conn: Conn) -> None:
        if conn in self.reading or conn in self.lingering:
            self.reading.discard(conn)
            self.lingering.discard(conn)
            try:
                self.poller.unregister(conn.sock)
            except (KeyError, ValueError, OSError):
                pass

    def _drop(self, conn: Conn) -> None:
        """Close `conn` now."""
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()


def _recv(conn: Conn) -> bytes | None:
    """What arrived on `conn`'s (non-blocking) socket; b"" at its end (or reset), None if nothing after all."""
    try:
        return conn.sock.recv(READ_SIZE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return b""


def _allow_open_files(wanted: int) -> None:
    """Raise this process's soft limit on open files to `wanted`, within the hard limit.

    Each connection is a file, and gthread's accept ends the worker on EMFILE: with the common
    soft limit of 1024, `worker_connections` past about 900 would be a way to crash it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted if hard == resource.RLIM_INFINITY else min(wanted, hard),
                                                    hard))
