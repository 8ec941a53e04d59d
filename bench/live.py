"""Live-update latency: signed webhook POST to message received by WebSocket clients.

    .venv/bin/python -m bench.live            # 1,000 posts, with 1 and with 200 clients
    .venv/bin/python -m bench.live --quick    # 20 posts, 1 and 5 clients (the test suite runs it)

The server is the production command, gunicorn with threads (bench/server.py);
each WebSocket holds one gunicorn thread for its lifetime, so the server
gets `--threads clients + 32`.  The latency of a post is measured from just
before the POST to the moment each client has parsed the run's message.
Also reports how long a SIGTERM takes to stop the server with the clients
still connected (they are closed with code 1001 first).
"""
import argparse
import json
import os
import statistics
import tempfile
import threading
import time

import websocket

from bench.server import Server, free_port
from ingest.signature import sign
from tests.helpers import fixture_json

SECRET = "bench-secret"
BASE = fixture_json("workflow_run/completed.payload.json")


def payload(run_id: int) -> bytes:
    body = json.loads(json.dumps(BASE))
    body["workflow_run"].update(id=run_id, head_sha=f"{run_id:040x}")
    body["workflow_run"]["head_commit"]["id"] = f"{run_id:040x}"
    return json.dumps(body).encode()


class Client(threading.Thread):
    def __init__(self, url: str):
        super().__init__(daemon=True)
        self.ws = websocket.create_connection(url, timeout=60)
        assert json.loads(self.ws.recv())["type"] == "hello"
        self.arrivals: dict[int, float] = {}
        self.close_code = None

    def run(self):
        try:
            while True:
                opcode, data = self.ws.recv_data(control_frame=True)
                if opcode == websocket.ABNF.OPCODE_CLOSE:
                    self.close_code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    return
                if opcode == websocket.ABNF.OPCODE_TEXT:
                    message = json.loads(data)
                    if message["type"] == "run":
                        self.arrivals[message["row"]["id"]] = time.perf_counter()
        except Exception:  # noqa: BLE001 - the connection ended
            return


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def measure(clients: int, posts: int, db_dir: str) -> dict:
    import requests

    db = os.path.join(db_dir, f"live-{clients}.db")
    server = Server(db, free_port(), secret=SECRET, threads=clients + 32,
                    env={"WEBHOOK_FAILURE_LIMIT": "100000/minute", "API_RATE_LIMIT": "100000/minute"})
    server.start()
    try:
        url = server.url.replace("http://", "ws://") + "/ws"
        readers = [Client(url) for _ in range(clients)]
        for r in readers:
            r.start()
        session = requests.Session()
        sent = {}
        for i in range(posts):
            run_id, body = 7_000_000 + i, payload(7_000_000 + i)
            headers = {"X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": f"bench-{clients}-{i}",
                       "X-Hub-Signature-256": sign(SECRET, body), "Content-Type": "application/json"}
            sent[run_id] = time.perf_counter()
            session.post(server.url + "/webhook", data=body, headers=headers, timeout=60).raise_for_status()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(len(r.arrivals) >= posts for r in readers):
            time.sleep(0.05)
        latencies = [(r.arrivals[run] - at) * 1000 for r in readers for run, at in sent.items() if run in r.arrivals]
        stopping = time.perf_counter()
    finally:
        server.stop()
    stop_s = time.perf_counter() - stopping
    for r in readers:
        r.join(timeout=5)
    return {
        "clients": clients, "posts": posts, "delivered": len(latencies), "expected": clients * posts,
        "p50_ms": round(statistics.median(latencies), 1), "p99_ms": round(percentile(latencies, 99), 1),
        "max_ms": round(max(latencies), 1), "sigterm_stop_s": round(stop_s, 2),
        "closed_1001": sum(1 for r in readers if r.close_code == 1001),
    }


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 posts, 1 and 5 clients")
    parser.add_argument("--posts", type=int)
    parser.add_argument("--clients", type=int, nargs="+")
    args = parser.parse_args(argv)
    posts = args.posts or (20 if args.quick else 1000)
    clients = args.clients or ([1, 5] if args.quick else [1, 200])
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        for n in clients:
            results.append(measure(n, posts, tmp))
            print(json.dumps(results[-1]), flush=True)
    return results


if __name__ == "__main__":
    main()
