"""Live-update latency: signed webhook POST to message received by WebSocket clients.

    .venv/bin/python -m bench.live            # 1,000 posts, with 1 and with 200 clients
    .venv/bin/python -m bench.live --quick    # 20 posts, 1 and 5 clients (the test suite runs it)
    .venv/bin/python -m bench.live --postgresql --servers 2 --clients 200   # two servers on one PostgreSQL

The server is the production command, gunicorn with threads (bench/server.py);
each WebSocket holds one gunicorn thread for its lifetime, so the server
gets `--threads clients + 32`.  The latency of a post is measured from just
before the POST to the moment each client has parsed the run's message.
The clients run in `--procs` processes (default 4), each reading its share
of the sockets in one selector loop and parsing every message's JSON, as a
page does: 200 client threads in one Python process spent more time queueing
for their own GIL than the server took to deliver (see BENCHMARKS.md).
Also reports how long a SIGTERM takes to stop the server with the clients
still connected (they are closed with code 1001 first).

`--postgresql` serves a database of a throwaway PostgreSQL cluster on this
machine (`tests/pg.py`, fsync and synchronous commits on) instead of a SQLite
file; `--servers N` starts N servers of one web process each on that one
store, as on N hosts, with the clients spread over them and the posts taking
turns: a message reaches the other servers' clients through the store
(LISTEN/NOTIFY on PostgreSQL).  `--rate R` paces the posts at R a second
(default: each as soon as the previous one is answered, which measures the
latency under as much load as one client makes).
"""
import argparse
import json
import os
import statistics
import multiprocessing
import selectors
import tempfile
import time

import websocket

from bench.server import Server, free_port
from ingest.signature import sign
from tests.helpers import fixture_json

SECRET = "bench-secret"
DEFAULT_PROCS = 4  # client processes (each a selector loop over its share of the clients)
BASE = fixture_json("workflow_run/completed.payload.json")


def payload(run_id: int) -> bytes:
    body = json.loads(json.dumps(BASE))
    body["workflow_run"].update(id=run_id, head_sha=f"{run_id:040x}")
    body["workflow_run"]["head_commit"]["id"] = f"{run_id:040x}"
    return json.dumps(body).encode()


def _frames(buffer: bytearray):
    """Complete server frames (never masked) at the start of `buffer`: (opcode, payload); consumed bytes removed."""
    out, at = [], 0
    while len(buffer) - at >= 2:
        opcode, length, head = buffer[at] & 0x0F, buffer[at + 1] & 0x7F, 2
        if length == 126:
            if len(buffer) - at < 4:
                break
            length, head = int.from_bytes(buffer[at + 2:at + 4], "big"), 4
        elif length == 127:
            if len(buffer) - at < 10:
                break
            length, head = int.from_bytes(buffer[at + 2:at + 10], "big"), 10
        if len(buffer) - at < head + length:
            break
        out.append((opcode, bytes(buffer[at + head:at + head + length])))
        at += head + length
    del buffer[:at]
    return out


def client_process(url: str, count: int, posts: int, pipe) -> None:
    """`count` WebSocket clients in one process, read by one selector loop.

    Each client does what a page does with every message (reads the frame,
    decodes and parses its JSON) and notes when each run arrived; the loop
    simply avoids one Python thread per client contending for one GIL.
    """
    sel = selectors.DefaultSelector()
    clients = []
    for index in range(count):
        ws = websocket.create_connection(url, timeout=60)
        assert json.loads(ws.recv())["type"] == "hello"
        ws.sock.setblocking(False)
        client = {"ws": ws, "buffer": bytearray(), "arrivals": {}, "close_code": None}
        clients.append(client)
        sel.register(ws.sock, selectors.EVENT_READ, client)
    pipe.send("ready")
    open_ = len(clients)
    complete = False
    deadline = time.monotonic() + 600
    while open_ and time.monotonic() < deadline:
        for key, _ in sel.select(timeout=1.0):
            client = key.data
            try:
                data = key.fileobj.recv(262144)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                client["buffer"] += data
                for opcode, payload in _frames(client["buffer"]):
                    if opcode == 0x1:
                        message = json.loads(payload)
                        if message["type"] == "run":
                            client["arrivals"][message["row"]["id"]] = time.perf_counter()
                    elif opcode == 0x9:  # the server's protocol ping: answer, or it closes the connection
                        key.fileobj.send(websocket.ABNF.create_frame(payload, websocket.ABNF.OPCODE_PONG).format())
                    elif opcode == 0x8:
                        client["close_code"] = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                        data = b""
            if not data:
                sel.unregister(key.fileobj)
                key.fileobj.close()
                open_ -= 1
        if not complete and all(len(c["arrivals"]) >= posts for c in clients):
            complete = True
            pipe.send("complete")
    pipe.send([{"arrivals": c["arrivals"], "close_code": c["close_code"]} for c in clients])


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def measure(clients: int, posts: int, db_dir: str, procs: int | None = None, servers: int = 1,
            cluster=None, rate: float | None = None) -> dict:
    import requests

    db = cluster.new_database() if cluster is not None else os.path.join(db_dir, f"live-{clients}.db")
    running = [Server(db, free_port(), secret=SECRET, threads=clients + 32, workers=1 if servers > 1 else None,
                      env={"WEBHOOK_FAILURE_LIMIT": "100000/minute", "API_RATE_LIMIT": "100000/minute",
                           # every client comes from 127.0.0.1: not a page per person
                           "LIVE_MAX_PER_CLIENT": str(clients)})
               for _ in range(servers)]
    procs = max(1, min(clients, procs or DEFAULT_PROCS))
    if servers > 1:  # each client process on one server
        procs = max(procs - procs % servers, servers)
    context = multiprocessing.get_context("spawn")
    workers = []
    for server in running:
        server.start()
    try:
        for index in range(procs):
            url = running[index % servers].url.replace("http://", "ws://") + "/ws"
            count = clients // procs + (index < clients % procs)
            parent, child = context.Pipe()
            proc = context.Process(target=client_process, args=(url, count, posts, child), daemon=True)
            proc.start()
            workers.append((proc, parent))
        for _, pipe in workers:
            assert pipe.recv() == "ready"
        session = requests.Session()
        sent = {}
        began = time.perf_counter()
        for i in range(posts):
            if rate:  # paced: post i leaves at i / rate seconds, not as soon as post i - 1 is answered
                time.sleep(max(0.0, began + i / rate - time.perf_counter()))
            run_id, body = 7_000_000 + i, payload(7_000_000 + i)
            headers = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": f"bench-{clients}-{i}",
                       "X-Hub-Signature-256": sign(SECRET, body), "Content-Type": "application/json"}
            sent[run_id] = time.perf_counter()
            session.post(running[i % servers].url + "/webhook", data=body, headers=headers,
                         timeout=60).raise_for_status()
        deadline = time.monotonic() + 60
        early = {}  # a process whose clients were all closed before the end sends its figures at once
        for index, (_, pipe) in enumerate(workers):
            if pipe.poll(max(0.0, deadline - time.monotonic())):
                message = pipe.recv()
                if message != "complete":
                    early[index] = message
        stopping = time.perf_counter()
    finally:
        for server in running:
            server.stop()
    stop_s = time.perf_counter() - stopping
    readers = []
    for index, (proc, pipe) in enumerate(workers):
        if index in early:
            readers.extend(early[index])
        elif pipe.poll(30):
            readers.extend(pipe.recv())
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()
    latencies = [(r["arrivals"][run] - at) * 1000 for r in readers for run, at in sent.items()
                 if run in r["arrivals"]]
    first = {run: min(r["arrivals"][run] for r in readers if run in r["arrivals"])
             for run in sent if any(run in r["arrivals"] for r in readers)}
    # the fan-out's share: per post, from its first client's message to its last's
    spread = [(max(r["arrivals"][run] for r in readers if run in r["arrivals"]) - at) * 1000
              for run, at in first.items()]
    return {
        "clients": clients, "posts": posts, "delivered": len(latencies), "expected": clients * posts,
        "p50_ms": round(statistics.median(latencies), 1), "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1),
        "first_p50_ms": round(statistics.median((at - sent[run]) * 1000 for run, at in first.items()), 1),
        "spread_p50_ms": round(statistics.median(spread), 1), "spread_p99_ms": round(percentile(spread, 99), 1),
        "sigterm_stop_s": round(stop_s, 2),
        "closed_1001": sum(1 for r in readers if r["close_code"] == 1001), "client_processes": procs,
        "servers": servers, "store": "postgresql" if cluster is not None else "sqlite", "rate": rate,
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 posts, 1 and 5 clients")
    parser.add_argument("--posts", type=int)
    parser.add_argument("--clients", type=int, nargs="+")
    parser.add_argument("--procs", type=int, default=DEFAULT_PROCS, help="client processes (default %(default)s)")
    parser.add_argument("--servers", type=int, default=1, help="servers of one web process each on the one store")
    parser.add_argument("--rate", type=float, help="posts a second (default: each as soon as the last is answered)")
    parser.add_argument("--postgresql", action="store_true", help="the store is a throwaway PostgreSQL database")
    args = parser.parse_args(argv)
    posts = args.posts or (20 if args.quick else 1000)
    clients = args.clients or ([1, 5] if args.quick else [1, 200])
    results = []
    cluster = None
    if args.postgresql:
        from tests.pg import Cluster

        cluster = Cluster(durable=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            for n in clients:
                results.append(measure(n, posts, tmp, args.procs, servers=args.servers, cluster=cluster,
                                       rate=args.rate))
                print(json.dumps(results[-1]), flush=True)
    finally:
        if cluster is not None:
            cluster.stop()
    return results


if __name__ == "__main__":
    main()
