"""CSV export benchmark: rows/s and the server's peak memory while streaming a big export.

    .venv/bin/python -m bench.export            # 1,000,000 runs (builds the store first, ~2 min)
    .venv/bin/python -m bench.export --quick    # 20,000 runs, a smoke run (the test suite runs it)

The server is the production command (gunicorn, see bench/server.py) in its
own process; its memory is read from /proc (VmRSS sampled while streaming,
VmHWM after).  The downloaded file is parsed back with the csv module and
compared, row by row, with the store.
"""
import argparse
import csv
import json
import math
import os
import sys
import tempfile
import threading
import time
from datetime import datetime

import requests

from bench import bulkdb
from bench.server import Server, _group_pids, free_port
from dashapp.api.csvexport import FORMULA_START, TIME_FIELDS
from store.engine import make_engine
from store.queries import builds
from store.queries.filters import Filters

SECRET = "bench-secret"
INTEGERS = ("id", "attempt")
NUMBERS = ("runtime", "queuetime")


def _same(name: str, stored, cell: str) -> bool:
    """Does the CSV `cell` say the stored value (times ISO 8601 UTC, text defused)?"""
    if stored is None:
        return cell == ""
    if name in TIME_FIELDS:
        return cell.endswith("Z") and math.isclose(datetime.fromisoformat(cell).timestamp(), stored, abs_tol=1e-3)
    if name in INTEGERS:
        return int(cell) == stored
    if name in NUMBERS:
        return math.isclose(float(cell), stored)
    if stored[:1] and stored[0] in FORMULA_START:
        return cell == "'" + stored
    return cell == stored


def compare(csv_path: str, db_path: str, filters: Filters = Filters()) -> tuple[int, int]:
    """(rows in the file, rows that differ from the store); also fails on a wrong header or row count."""
    engine = make_engine(db_path)
    stored_rows = builds.iter_rows(engine, filters)
    rows = bad = 0
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if tuple(next(reader)) != builds.FIELDS:
            raise AssertionError("wrong header")
        for parsed in reader:
            stored = next(stored_rows, None)
            if stored is None:
                raise AssertionError("the file has more rows than the store")
            rows += 1
            if len(parsed) != len(builds.FIELDS) or not all(
                    _same(name, value, cell) for name, value, cell in zip(builds.FIELDS, stored, parsed)):
                bad += 1
    if next(stored_rows, None) is not None:
        raise AssertionError("the file has fewer rows than the store")
    engine.dispose()
    return rows, bad


def cpu_seconds(server: Server) -> float:
    """User + system CPU time of the server's processes so far."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in _group_pids(server.proc.pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except FileNotFoundError:
            pass
    return total / ticks


class Sampler(threading.Thread):
    """Samples the server's resident memory every 50 ms."""

    def __init__(self, server: Server):
        super().__init__(daemon=True)
        self.server, self.peak, self.running = server, 0, True

    def run(self):
        while self.running:
            self.peak = max(self.peak, self.server.rss_kb()["rss"])
            time.sleep(0.05)


def run(rows: int, db_path: str, out_dir: str) -> dict:
    if not os.path.exists(db_path):
        started = time.perf_counter()
        bulkdb.build(db_path, rows, attempts=False)
        print(f"built {rows:,} runs in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    csv_path = os.path.join(out_dir, "export.csv")
    env = {"API_RATE_LIMIT": "100000/minute"}
    with Server(db_path, free_port(), secret=SECRET, env=env) as server:
        warm = requests.get(server.url + "/api/builds.csv", params={"until": bulkdb.T0 + 600}, timeout=60)
        warm.raise_for_status()
        before = server.rss_kb()
        sampler = Sampler(server)
        sampler.start()
        cpu_before, load = cpu_seconds(server), os.getloadavg()
        client_before = time.process_time()
        started = time.perf_counter()
        first_byte = None
        size = 0
        with requests.get(server.url + "/api/builds.csv", stream=True, timeout=600) as response:
            response.raise_for_status()
            headers = dict(response.headers)
            with open(csv_path, "wb") as f:
                for chunk in response.iter_content(None):
                    if first_byte is None:
                        first_byte = time.perf_counter() - started
                    f.write(chunk)
                    size += len(chunk)
        seconds = time.perf_counter() - started
        server_cpu = cpu_seconds(server) - cpu_before
        client_cpu = time.process_time() - client_before
        sampler.running = False
        sampler.join()
        after = server.rss_kb()
    parsed, bad = compare(csv_path, db_path)
    return {
        "rows": parsed, "mismatched_rows": bad, "bytes": size, "seconds": round(seconds, 2),
        "rows_per_s": round(parsed / seconds), "first_byte_s": round(first_byte or 0, 3),
        "server_cpu_s": round(server_cpu, 2), "rows_per_server_cpu_s": round(parsed / max(server_cpu, 0.01)),
        "client_cpu_s": round(client_cpu, 2), "load_average_before": [round(x, 2) for x in load],
        "rss_before_mb": round(before["rss"] / 1024, 1), "rss_peak_sampled_mb": round(sampler.peak / 1024, 1),
        "hwm_before_mb": round(before["hwm"] / 1024, 1), "hwm_after_mb": round(after["hwm"] / 1024, 1),
        "peak_growth_mb": round(max(after["hwm"] - before["hwm"], sampler.peak - before["rss"]) / 1024, 1),
        "chunked": headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in headers,
        "content_disposition": headers.get("Content-Disposition"),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 runs instead of 1,000,000")
    parser.add_argument("--rows", type=int, help="number of runs (overrides --quick)")
    parser.add_argument("--db", help="reuse or create the store here (default: a temporary file)")
    args = parser.parse_args(argv)
    rows = args.rows or (20_000 if args.quick else 1_000_000)
    with tempfile.TemporaryDirectory(prefix="bench-export-") as tmp:
        result = run(rows, args.db or os.path.join(tmp, "builds.db"), tmp)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
