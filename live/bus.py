"""Messages between the processes of one server on one machine: live updates and wake-ups.

Several web processes (gunicorn workers) and perhaps a separate worker share
one store.  The processor runs in one of them; the pages' WebSockets are
held by all of them.  Each process binds a Unix datagram socket in a
directory named after the inbox (`Inbox.rundir`), and `send` writes a
datagram to every other socket there: no broker to run, nothing to poll, and
a datagram arrives whole or not at all.  A socket whose process has died
refuses (ECONNREFUSED) and is removed.  A peer whose buffer is full gets
up to `RETRIES` ms to make room (its receiver only hands messages to its
hub); past that the message is dropped and logged, and that process's
pages see the change at their next refresh instead.

Two kinds of message: `live` (a list of hub messages, published to this
process's hub) and `inbox` (new deliveries were committed: wake the
processor).  With a PostgreSQL store, whose processes may run on several
hosts, `live/pgbus.py` carries them instead, with the same `send` and handlers.
"""
import errno
import json
import logging
import os
import socket
import threading
import time
import uuid

log = logging.getLogger(__name__)
MAX_DATAGRAM = 60_000  # below the default socket buffer (~208 KB) with room for several in flight
RETRIES = 200  # 1 ms apart: how long a full peer may take to make room before a message is dropped


class LocalBus:
    def __init__(self, rundir: str, handlers: dict):
        self.rundir = rundir
        self.handlers = handlers  # kind -> callable(the payload's JSON bytes)
        self.name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.sock"
        self.path = os.path.join(rundir, self.name)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(self.path)
        self._out = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._out.setblocking(False)
        self._closed = False
        self._thread = threading.Thread(target=self._receive, name="local-bus", daemon=True)
        self._thread.start()

    def peers(self) -> list[str]:
        try:
            names = os.listdir(self.rundir)
        except FileNotFoundError:
            return []
        return [os.path.join(self.rundir, n) for n in names if n.endswith(".sock") and n != self.name]

    def send(self, kind: str, payload=None) -> None:
        """Send `payload` (JSON-able; a list is split across datagrams) to every other process."""
        peers = self.peers()
        if not peers:
            return
        for datagram in _datagrams(kind, payload):
            for peer in peers:
                self._send_one(datagram, peer, kind)

    def _send_one(self, datagram: bytes, peer: str, kind: str) -> None:
        for _attempt in range(RETRIES):
            try:
                self._out.sendto(datagram, peer)
                return
            except (ConnectionRefusedError, FileNotFoundError):
                _unlink(peer)  # its process is gone
                return
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.ENOBUFS):
                    log.warning("local bus: sending to %s failed: %s", peer, exc)
                    return
                time.sleep(0.001)  # its buffer is full: its receiver drains it within milliseconds
        log.warning("local bus: %s took nothing for %d ms; a %s message was dropped", peer, RETRIES, kind)

    def _receive(self) -> None:
        while not self._closed:
            try:
                data = self._sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                continue
            kind, _, body = data.partition(b"\n")
            handler = self.handlers.get(kind.decode(errors="replace"))
            if handler is None:
                continue
            try:
                handler(body)  # the payload's JSON, decoded by the handler if it wants it
            except Exception:
                log.exception("local bus: a message could not be handled")

    def close(self) -> None:
        self._closed = True
        _unlink(self.path)
        try:
            os.rmdir(self.rundir)  # the last process of this inbox leaves no directory behind
        except OSError:
            pass
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        # A datagram to itself wakes the receiver blocked in recv.
        try:
            self._out.sendto(b"", self.path)
        except OSError:
            pass
        self._sock.close()
        self._out.close()


def _datagrams(kind: str, payload) -> list[bytes]:
    """`kind`, a newline, then the payload's JSON (a receiver with no use for a kind skips its JSON)."""
    whole = kind.encode() + b"\n" + (json.dumps(payload, separators=(",", ":")).encode() if payload is not None
                                     else b"")
    if len(whole) <= MAX_DATAGRAM or not isinstance(payload, list) or len(payload) < 2:
        return [whole]
    half = len(payload) // 2
    return _datagrams(kind, payload[:half]) + _datagrams(kind, payload[half:])


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
