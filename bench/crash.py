"""Crash soak: signed deliveries sent concurrently while the server is SIGKILLed.

    python -m bench.crash                 # 5,000 deliveries, 2 kills
    python -m bench.crash --quick         # 300 deliveries, 1 kill (the test suite runs this)

Checks, and prints: every delivery answered 2xx is in the database; SQLite's
integrity_check is ok; re-sending all deliveries fills what was refused and
ends in the same rows as a clean run without crashes; re-sending them again
changes no row.  Exits non-zero when any check fails.
"""
import argparse
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import select

from bench.deliveries import synthetic_deliveries
from bench.server import Server, free_port
from ingest.signature import sign
from store.engine import integrity_check, make_engine
from store.schema import deliveries

SECRET = "crash-test-secret"


def _post(url, event, guid, body, timeout=15.0):
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": guid, "Content-Type": "application/json",
               "X-Hub-Signature-256": sign(SECRET, body)}
    try:
        return requests.post(url + "/webhook", data=body, headers=headers, timeout=timeout).status_code
    except requests.RequestException:
        return None


def _send_all(url, items, concurrency):
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda d: _post(url, *d), items))


def _snapshot(path):
    from tests.helpers import snapshot  # the same row comparison the tests use

    engine = make_engine(path)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def run(count: int, kills: int, concurrency: int) -> bool:
    work = tempfile.mkdtemp(prefix="crash-")
    items = synthetic_deliveries(count)
    db = f"{work}/crash.db"
    server = Server(db, free_port(), secret=SECRET).start()
    accepted, sent = set(), [0]
    lock = threading.Lock()

    def send(item):
        status = _post(server.url, *item)
        with lock:
            sent[0] += 1
            if status is not None and 200 <= status < 300:
                accepted.add(item[1])

    def killer():
        for k in range(1, kills + 1):
            while sent[0] < count * k / (kills + 1):
                time.sleep(0.01)
            server.kill()
            time.sleep(0.3)
            server.start()

    started = time.time()
    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, items))
    kill_thread.join()
    crash_seconds = time.time() - started

    engine = make_engine(db)
    with engine.connect() as conn:
        stored = set(conn.execute(select(deliveries.c.guid).where(deliveries.c.outcome.in_(("processed", "ignored"))))
                     .scalars())
    integrity = integrity_check(engine)
    engine.dispose()
    lost = accepted - stored

    resend = _send_all(server.url, items, concurrency)
    after_resend = _snapshot(db)
    _send_all(server.url, items, concurrency)
    after_again = _snapshot(db)
    server.stop()

    reference_db = f"{work}/reference.db"
    with Server(reference_db, free_port(), secret=SECRET) as ref:
        _send_all(ref.url, items, concurrency)
    reference = _snapshot(reference_db)

    checks = {
        "every 2xx delivery stored": not lost,
        "integrity_check ok": integrity == "ok",
        "re-send answered 2xx": all(s is not None and 200 <= s < 300 for s in resend),
        "re-sent state equals a clean run": after_resend == reference,
        "second re-send changes no row": after_again == after_resend,
    }
    print(f"deliveries sent: {count}, concurrency {concurrency}, SIGKILLs: {kills}, took {crash_seconds:.1f} s")
    print(f"answered 2xx during the crashes: {len(accepted)}; stored: {len(stored)}; lost: {len(lost)}")
    print(f"integrity_check: {integrity}")
    for name, ok in checks.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}")
    return all(checks.values())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="300 deliveries, 1 kill")
    args = parser.parse_args(argv)
    if args.quick:
        args.deliveries, args.kills = 300, 1
    return 0 if run(args.deliveries, args.kills, args.concurrency) else 1


if __name__ == "__main__":
    sys.exit(main())
