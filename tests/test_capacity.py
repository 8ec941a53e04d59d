"""What a stranger can cost the production server: slow senders, WebSockets that never read, huge heads.

The production command (gunicorn with `dashapp/gunicorn_conf.py`: `dashapp/gunicorn_worker.py`, the
thread limit of `dashapp/capacity.py`, the WebSocket caps of `live/admission.py`), one web process of
16 threads, 4 of them /webhook's; real sockets on 127.0.0.1 (and 127.0.0.2-4, other clients to it).
"""
import json
import os
import select
import signal
import socket
import tempfile
import threading
import time

import pytest
import requests
import websocket

from bench.server import Server, free_port
from ingest.signature import sign
from tests.helpers import SECRET, fixture_json, post

pytestmark = pytest.mark.slow
THREADS, RESERVE, PER_CLIENT, TIMEOUT = 16, 4, 8, 4.0
PAGES = THREADS - RESERVE  # threads that pages, callbacks, the API and WebSockets may hold


def _start(tmp_path, **env) -> Server:
    server = Server(str(tmp_path / "capacity.db"), free_port(), secret=SECRET, threads=THREADS, workers=1,
                    processor="off",  # accepting is what is measured: no processor competing for the 2 cores
                    env={"WEBHOOK_RESERVE": str(RESERVE), "LIVE_MAX_PER_CLIENT": str(PER_CLIENT),
                         "REQUEST_TIMEOUT": str(TIMEOUT), **env},
                    log=tempfile.TemporaryFile())
    return server.start(retries=1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    started = _start(tmp_path_factory.mktemp("capacity"))
    yield started
    started.stop()


@pytest.fixture
def sockets():
    """Every socket and WebSocket a test opens, closed at its end whatever happened."""
    opened = []
    yield opened
    for item in opened:
        try:
            item.close()
        except Exception:  # noqa: BLE001 - already closed by the server
            pass


def _delivery() -> bytes:
    return json.dumps(fixture_json("workflow_run/completed.payload.json")).encode()


def _metric(server, name: str) -> float:
    for line in requests.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _stuck_websocket(server, address: str, sockets) -> tuple[int, bytes]:
    """A WebSocket from `address` that will never read (tiny receive buffer): the opcode and data of the
    first frame the server sends it (a hello, or a close)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((address, 0))
    sock.connect(("127.0.0.1", server.port))
    ws = websocket.create_connection(server.url.replace("http://", "ws://") + "/ws", socket=sock, timeout=10)
    sockets.append(ws)
    opcode, frame = ws.recv_data_frame(True)
    return opcode, frame.data


class SlowSenders(threading.Thread):
    """`count` connections sending a request a header line every 2 s, for ever; notes when each is answered."""

    def __init__(self, server, count: int, sockets):
        super().__init__(daemon=True)
        self.opened = time.monotonic()
        self.conns = []
        for _ in range(count):
            conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            conn.sendall(b"POST /webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            sockets.append(conn)
            self.conns.append(conn)
        self.answers: dict[socket.socket, tuple[float, bytes]] = {}
        self.stop = threading.Event()

    def run(self):
        line = 0
        while not self.stop.wait(2.0):
            line += 1
            for conn in self.conns:
                if conn in self.answers or select.select([conn], [], [], 0)[0]:
                    continue  # answered: leave its answer to be read
                try:
                    conn.sendall(f"X-Slow-{line}: {line}\r\n".encode())
                except OSError:
                    pass

    def wait_answers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.answers) < len(self.conns) and time.monotonic() < deadline:
            waiting = [c for c in self.conns if c not in self.answers]
            for conn in select.select(waiting, [], [], 0.1)[0]:
                try:
                    data = conn.recv(4096)
                except OSError:
                    data = b""
                self.answers[conn] = (time.monotonic() - self.opened, data)
        self.stop.set()


def test_slow_senders_and_websockets_that_never_read_leave_deliveries_their_threads(server, sockets):
    assert post(server.url, "workflow_run", _delivery(), timeout=10).status_code == 202  # the app is warm
    busy_before, refused_before = _metric(server, "buildmon_busy_refused_total"), {
        reason: _metric(server, f'buildmon_websocket_refused_total{{reason="{reason}"}}')
        for reason in ("per_client", "busy")}

    # Twice as many WebSockets as threads, from three addresses, none of which ever reads.
    frames = [_stuck_websocket(server, address, sockets)
              for address, count in (("127.0.0.2", 10), ("127.0.0.3", 10), ("127.0.0.4", 12)) for _ in range(count)]
    hellos = [data for opcode, data in frames if opcode == websocket.ABNF.OPCODE_TEXT]
    closes = [(int.from_bytes(data[:2], "big"), data[2:].decode()) for opcode, data in frames
              if opcode == websocket.ABNF.OPCODE_CLOSE]
    assert len(hellos) == PAGES and all(json.loads(h)["type"] == "hello" for h in hellos)
    per_client = [reason for code, reason in closes if "from your address" in reason]
    busy = [reason for code, reason in closes if "server busy" in reason]
    assert {code for code, _ in closes} == {1013}
    # 127.0.0.2: 8 (its cap) then 2 refused as too many; 127.0.0.3: the last 4 threads, then the server is full
    assert len(per_client) == 10 - PER_CLIENT and len(busy) == 2 * THREADS - PAGES - len(per_client)
    assert per_client[0] == f"too many live connections from your address (at most {PER_CLIENT})"
    assert busy[0] == f"server busy: all {PAGES} threads for pages are taken"

    # Pages are refused at once while WebSockets hold every thread they may; /webhook has its reserve.
    started = time.monotonic()
    page = requests.get(server.url + "/api/builds", timeout=10)
    assert page.status_code == 503 and page.headers["Retry-After"] == "5" and time.monotonic() - started < 1

    # Twice as many slow senders as threads: none of them holds one.
    slow = SlowSenders(server, 2 * THREADS, sockets)
    slow.start()
    times = []
    for _ in range(10):
        started = time.monotonic()
        answer = post(server.url, "workflow_run", _delivery(), timeout=10)
        times.append(time.monotonic() - started)
        assert answer.status_code == 202
    assert max(times) < 1.0, f"answer times {times}"
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200  # health checks are not pages

    # Each slow sender is answered 408 and closed once REQUEST_TIMEOUT has passed since it connected.
    slow.wait_answers(TIMEOUT + 10)
    assert len(slow.answers) == 2 * THREADS
    for after, data in slow.answers.values():
        assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), data
        assert TIMEOUT - 0.5 <= after <= TIMEOUT + 4, after

    assert _metric(server, "buildmon_threads_busy") == PAGES
    assert _metric(server, "buildmon_busy_refused_total") - busy_before == 1
    assert _metric(server, 'buildmon_websocket_refused_total{reason="per_client"}') - refused_before["per_client"] \
        == len(per_client)
    assert _metric(server, 'buildmon_websocket_refused_total{reason="busy"}') - refused_before["busy"] == len(busy)


def test_a_request_head_over_64_kb_is_431(server, sockets):
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sockets.append(conn)
    conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 1000)
                                                                      for i in range(70)))
    assert conn.recv(4096).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def _signed_head(body: bytes, guid: str, *extra: str) -> bytes:
    lines = ["POST /webhook HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json",
             "X-GitHub-Event: workflow_run", f"X-GitHub-Delivery: {guid}", f"X-Hub-Signature-256: {sign(SECRET, body)}",
             f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answers(conn, count: int, timeout: float = 10) -> list[bytes]:
    """The status lines of the next `count` answers on `conn` (each with a Content-Length)."""
    data, statuses = b"", []
    deadline = time.monotonic() + timeout
    while len(statuses) < count and time.monotonic() < deadline:
        end = data.find(b"\r\n\r\n")
        if end >= 0:
            head = data[:end].decode()
            length = int(next(line.split(":")[1] for line in head.split("\r\n")
                              if line.lower().startswith("content-length:")))
            if len(data) >= end + 4 + length:
                statuses.append(head.split("\r\n")[0].encode())
                data = data[end + 4 + length:]
                continue
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    return statuses


def test_requests_that_arrive_in_pieces_pipelined_or_kept_alive_are_served(server, sockets):
    conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sockets.append(conn)
    body = _delivery()
    # A delivery whose head and body come in pieces, a second behind it on the same connection...
    head = _signed_head(body, "pieces-1")
    for piece in (head[:40], head[40:], body[:100], body[100:]):
        conn.sendall(piece)
        time.sleep(0.3)
    assert _answers(conn, 1) == [b"HTTP/1.1 202 Accepted"]
    # ...two pipelined in one send (the second read ahead by the first's thread)...
    conn.sendall(_signed_head(body, "pieces-2") + body + _signed_head(body, "pieces-3") + body)
    assert _answers(conn, 2) == [b"HTTP/1.1 202 Accepted"] * 2
    # ...a body larger than the worker buffers (its thread reads it), and one sent after 100 Continue.
    large = json.dumps({**json.loads(body), "padding": "x" * 100_000}).encode()
    conn.sendall(_signed_head(large, "pieces-4") + large)
    assert _answers(conn, 1) == [b"HTTP/1.1 202 Accepted"]
    conn.sendall(_signed_head(body, "pieces-5", "Expect: 100-continue"))
    assert conn.recv(4096) == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.sendall(body)
    assert _answers(conn, 1) == [b"HTTP/1.1 202 Accepted"]
    # A body that ends early (the client says so) is still answered, by the app.
    short = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sockets.append(short)
    short.sendall(_signed_head(body, "pieces-6") + body[:10])
    short.shutdown(socket.SHUT_WR)
    assert _answers(short, 1) == [b"HTTP/1.1 400 Bad Request"]


def test_an_answered_client_that_never_closes_stalls_nobody(server, sockets):
    # gthread lingers on each closed connection in its main loop, up to 2 s: ten such clients would
    # have stalled every other request of the process for 20 s.
    for _ in range(10):
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sockets.append(conn)
        conn.sendall(b"GET /livez HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    time.sleep(0.2)
    started = time.monotonic()
    assert requests.get(server.url + "/livez", timeout=10).status_code == 200
    assert time.monotonic() - started < 1


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


def test_the_master_stays_light_and_a_stop_closes_connections_still_arriving(tmp_path, sockets):
    timeout = 2.0  # half-sent requests time out well within the graceful timeout (5 s)
    server = _start(tmp_path, REQUEST_TIMEOUT=str(timeout))
    try:
        # The master loads the worker class by path, without the `dashapp` package (and Dash).
        assert _rss_kb(server.proc.pid) < 40_000
        opened = time.monotonic()
        partial = [socket.create_connection(("127.0.0.1", server.port), timeout=15) for _ in range(3)]
        idle = [socket.create_connection(("127.0.0.1", server.port), timeout=15) for _ in range(3)]
        sockets.extend(partial + idle)
        for conn in partial:
            conn.sendall(b"GET / HTTP/1.1\r\n")
        time.sleep(0.3)
        os.kill(server.proc.pid, signal.SIGTERM)
        stopping = time.monotonic()
        # Idle ones are closed within gthread's 2 s linger; half-sent ones are answered 408 at their deadline.
        for conn in idle:
            assert conn.recv(100) == b"" and time.monotonic() - stopping < 4
        for conn in partial:
            assert conn.recv(100).startswith(b"HTTP/1.1 408 ")
            assert time.monotonic() - opened < timeout + 3
        assert server.proc.wait(timeout=15) == 0
    finally:
        server.stop()
