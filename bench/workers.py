"""Processed rate with 1 and 2 processors: a backlog in the inbox, applied by `python -m dashapp worker` processes.

    python -m bench.workers                          # 6,000 deliveries over 8 repositories; PostgreSQL 1, 2; SQLite 1
    python -m bench.workers --quick                  # 240 deliveries: a smoke run (the test suite)

For each store and number of workers: a fresh store, `--deliveries` synthetic deliveries
(`bench/deliveries.py`: runs with their jobs, taking turns over `--repos` repositories) written
straight into the inbox as if accepted, then that many worker processes started together.  The
figure is the processed rate: deliveries over the time from the first to the last commit
(`deliveries.processed`), so start-up is not counted; then every delivery must be logged
`processed`.  Also printed: the workers' CPU and the PostgreSQL server's (user+system, /proc, as a
share of one core, from the first delivery applied to the last).  PostgreSQL runs in a throwaway cluster (`tests/pg.py`) with fsync and
synchronous commits on (`durable`), on the same 2 cores.

On PostgreSQL the workers apply batches at once, one repository at a time each
(`store/inbox.py`); on SQLite one applies and the others stand by, so it is run with one.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cpu(pids) -> float:
    """User+system seconds of the processes (and their reaped children)."""
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return total


def _postgres_pids(cluster) -> list[int]:
    out = subprocess.run(["pgrep", "-f", cluster.data], capture_output=True, text=True).stdout.split()
    found = set(int(p) for p in out)
    for pid in list(found):  # the postmaster's children (backends) do not name the data directory
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
        found.update(int(k) for k in kids)
    return sorted(found)


def fill(url: str, items) -> None:
    """The items written into the store's inbox as the webhook would have accepted them."""
    from store.engine import make_engine
    from store.inbox import Inbox, inbox

    engine = make_engine(url)
    box = Inbox(_inbox_location(url), engine)
    now = time.time()
    rows = [{"guid": guid, "event": event, "content_type": "application/json", "received": now, "body": body}
            for event, guid, body in items]
    with box.engine.begin() as conn:
        for i in range(0, len(rows), 500):
            conn.execute(inbox.insert(), rows[i:i + 500])
    box.close()
    engine.dispose()


def _inbox_location(url: str) -> str:
    from store.inbox import inbox_location

    return inbox_location(url)


def measure(url: str, workers: int, count: int, timeout: float, cluster=None) -> dict:
    from sqlalchemy import func, select

    from store.engine import make_engine
    from store.inbox import inbox
    from store.schema import deliveries

    env = {**os.environ, "DATABASE_PATH": url, "LOG_LEVEL": "WARNING", "GITHUB_WEBHOOK_SECRET": "bench"}
    engine = make_engine(url)
    box_engine = engine if "://" in url and not url.startswith("sqlite") else make_engine(_inbox_location(url))
    procs = [subprocess.Popen([sys.executable, "-m", "dashapp", "worker"], cwd=ROOT, env=env) for _ in range(workers)]
    started = time.monotonic()
    since = None  # (time, workers' CPU, server's CPU) when the first delivery left the inbox: start-up excluded
    try:
        while True:
            with box_engine.connect() as conn:
                left = conn.execute(select(func.count()).select_from(inbox)).scalar()
            if since is None and left < count:
                since = (time.monotonic(), _cpu([p.pid for p in procs]),
                         _cpu(_postgres_pids(cluster)) if cluster else 0.0)
            if not left:
                break
            if time.monotonic() - started > timeout:
                raise SystemExit(f"{left} deliveries still waiting after {timeout} s")
            for p in procs:
                if p.poll() is not None:
                    raise SystemExit(f"a worker exited with {p.returncode}")
            time.sleep(0.05)
        busy = time.monotonic() - since[0]
        cpu = (_cpu([p.pid for p in procs]) - since[1]) / busy * 100
        pg_cpu = ((_cpu(_postgres_pids(cluster)) - since[2]) / busy * 100) if cluster else float("nan")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
    with engine.connect() as conn:
        first, last, processed = conn.execute(select(func.min(deliveries.c.processed), func.max(deliveries.c.processed),
                                                     func.count()).where(deliveries.c.outcome == "processed")).one()
    engine.dispose()
    if box_engine is not engine:
        box_engine.dispose()
    if processed != count:
        raise SystemExit(f"{processed} of {count} deliveries processed")
    seconds = last - first
    return {"rate": count / seconds, "seconds": seconds, "cpu": cpu, "pg_cpu": pg_cpu}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.splitlines()[0])
    p.add_argument("--deliveries", type=int, default=6000)
    p.add_argument("--repos", type=int, default=8)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="PostgreSQL runs (default 1 2)")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--quick", action="store_true", help="240 deliveries (the test suite's smoke run)")
    args = p.parse_args(argv)
    if args.quick:
        args.deliveries = min(args.deliveries, 240)
    sys.path.insert(0, ROOT)
    from bench.deliveries import synthetic_deliveries
    from tests.pg import Cluster

    items = synthetic_deliveries(args.deliveries, seed=41, repos=args.repos)
    print(f"{len(items):,} deliveries over {args.repos} repositories; load average {os.getloadavg()[0]:.1f}",
          flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-workers-") as work:
        url = os.path.join(work, "one.db")
        from store.engine import make_engine
        from store.migrate import upgrade

        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        fill(url, items)
        results.append(("SQLite", 1, measure(url, 1, len(items), args.timeout)))
        cluster = Cluster(durable=True).start()
        try:
            for n in args.workers:
                url = cluster.new_database()
                fill(url, items)
                results.append(("PostgreSQL", n, measure(url, n, len(items), args.timeout, cluster)))
        finally:
            cluster.stop()
    print(f"{'store':<11} {'workers':>7} {'processed/s':>12} {'seconds':>8} {'workers CPU %':>14} {'server CPU %':>13}")
    for store, n, r in results:
        print(f"{store:<11} {n:>7} {r['rate']:>12,.0f} {r['seconds']:>8.1f} {r['cpu']:>14.0f} {r['pg_cpu']:>13.0f}")
    print(f"load average {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
