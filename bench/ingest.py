"""Ingest throughput: signed deliveries per second through `POST /webhook`.

    python -m bench.ingest                 # 4,000 deliveries at concurrency 8 and 32
    python -m bench.ingest --quick         # 200 deliveries (the test suite runs this)

The production server (gunicorn, one worker, threads) serves a fresh store.
Each level sends `workflow_run`/`workflow_job` deliveries (a run's whole life
and its jobs', as GitHub sends them for a push) over real HTTP, then the same
load to `POST /webhook/floor` on the same server, which only checks the
signature and answers 200: the HTTP floor.  Ingest is reported as a ratio of
the floor measured in the same run.
"""
import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

import requests

from bench.deliveries import synthetic_deliveries
from bench.server import Server, free_port
from ingest.signature import sign

SECRET = "bench-secret"


def load(url: str, items, concurrency: int) -> dict:
    """Send `items` with `concurrency` client threads; deliveries/s and latency percentiles."""
    latencies, errors = [], []
    lock = threading.Lock()
    cursor = iter(items)

    def worker():
        session = requests.Session()
        while True:
            with lock:
                item = next(cursor, None)
            if item is None:
                return
            event, guid, body = item
            headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": guid, "Content-Type": "application/json",
                       "X-Hub-Signature-256": sign(SECRET, body)}
            t0 = time.perf_counter()
            answer = session.post(url, data=body, headers=headers, timeout=30)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if answer.status_code != 200:
                    errors.append(answer.status_code)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    latencies.sort()
    return {"rate": len(latencies) / seconds, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
            "max": latencies[-1] * 1000, "errors": len(errors)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.deliveries = 200
    work = tempfile.mkdtemp(prefix="bench-ingest-")
    failures = 0
    print(f"{'endpoint':16} {'conc':>4} {'deliv/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>6}")
    with Server(os.path.join(work, "ingest.db"), free_port(), secret=SECRET, env={"BENCHMARK_FLOOR": "1"}) as server:
        for level, concurrency in enumerate(args.concurrency):
            items = synthetic_deliveries(args.deliveries, seed=100 + level)  # new runs at every level
            floor = load(server.url + "/webhook/floor", items, concurrency)
            ingest = load(server.url + "/webhook", items, concurrency)
            for name, r in (("floor", floor), ("webhook", ingest)):
                print(f"{name:16} {concurrency:>4} {r['rate']:9.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['max']:8.1f} "
                      f"{r['errors']:>6}")
            print(f"ingest / floor at concurrency {concurrency}: {ingest['rate'] / floor['rate']:.0%}")
            failures += ingest["errors"] + floor["errors"]
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
