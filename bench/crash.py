"""Crash soak: signed deliveries sent concurrently while server processes are SIGKILLed.

    python -m bench.crash                 # 5,000 deliveries a scenario; server: 2 kills, split: 6 kills
    python -m bench.crash --quick         # 300 deliveries a scenario; server: 1 kill, split: 3 (the test suite, ~30 s)
    python -m bench.crash --scenario split --deliveries 2000 --rounds 3

Each scenario gets a fresh store (`server.db`, `split.db`, with the inbox the server makes beside it,
`server.inbox.db`, `split.inbox.db`) and the same deliveries (`bench/deliveries.py`):

- `server`: the production command with the default PROCESSOR=process (the web processes accept, the
  worker process the gunicorn master started applies); each kill SIGKILLs the whole group (master,
  web processes and worker).
- `split`: web processes with PROCESSOR=off plus a separate `python -m dashapp worker`; the kills
  take turns: (a) the web processes, (b) the worker, (c) both at once.

Every kill happens with `--concurrency` requests in flight; what was killed is restarted, and the
senders wait while the web processes are down (a delivery cut by the kill counts as not answered).
After the burst, what each scenario checks and prints:

- every delivery answered 2xx was applied: it has a `deliveries` row with outcome processed or ignored
  (`lost` counts those that do not), and the inbox is empty (`pending`);
- in `split`, while the worker was down the web processes applied nothing (PROCESSOR=off holds);
- SQLite's integrity_check is ok on the store and on the inbox file;
- re-sending every delivery is answered 2xx and, once applied, ends in the same rows as a clean run
  without crashes (a reference store fed the same deliveries);
- re-sending them again is answered 200 `duplicate` throughout and changes no row.

The clean reference run is the production command on a fresh store fed every delivery once; the
comparison is `tests.helpers.snapshot` (every derived row by natural keys; `deliveries` excluded).
A work directory with the stores and server logs is kept when a check fails.  Exits non-zero when
any check fails.
"""
import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from bench.deliveries import synthetic_deliveries
from bench.server import Server, Worker, free_port
from ingest.signature import sign

SECRET = "crash-test-secret"
APPLIED = ("processed", "ignored")
KINDS = ("web", "worker", "both")


def _post(url, event, guid, body, timeout=20.0):
    """(status, outcome) of one signed delivery; (None, None) when the connection failed."""
    headers = {"X-GitHub-Event": event, "X-GitHub-Delivery": guid, "Content-Type": "application/json",
               "X-Hub-Signature-256": sign(SECRET, body)}
    try:
        answer = requests.post(url + "/webhook", data=body, headers=headers, timeout=timeout)
    except requests.RequestException:
        return None, None
    try:
        outcome = answer.json().get("outcome")
    except ValueError:
        outcome = None
    return answer.status_code, outcome


def _send_all(url, items, concurrency):
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda d: _post(url, *d), items))


def _applied(db) -> set:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return {g for (g,) in conn.execute("SELECT guid FROM deliveries WHERE outcome IN (?, ?)", APPLIED)}
    except sqlite3.OperationalError:  # not created yet
        return set()
    finally:
        conn.close()


def _outcomes(db) -> dict:
    """Deliveries by outcome, and the first error of a failed one."""
    conn = sqlite3.connect(db, timeout=30)
    try:
        out = dict(conn.execute("SELECT outcome, count(*) FROM deliveries GROUP BY outcome").fetchall())
        error = conn.execute("SELECT error FROM deliveries WHERE outcome = 'failed' LIMIT 1").fetchone()
        if error:
            out["first error"] = error[0]
        return out
    finally:
        conn.close()


def _inbox_pending(inbox) -> int | None:
    if not os.path.exists(inbox):
        return None
    conn = sqlite3.connect(inbox, timeout=30)
    try:
        return conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
    except sqlite3.OperationalError:
        return None
    finally:
        conn.close()


def _integrity(path) -> str:
    if not os.path.exists(path):
        return f"missing ({path})"
    conn = sqlite3.connect(path, timeout=30)
    try:
        return "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    finally:
        conn.close()


def _wait_applied(db, inbox, guids, timeout) -> tuple[set, int | None, float]:
    """Wait until every GUID in `guids` is applied and the inbox is empty; (missing, pending, seconds)."""
    started = time.perf_counter()
    while True:
        missing = set(guids) - _applied(db)
        pending = _inbox_pending(inbox)
        if (not missing and pending == 0) or time.perf_counter() - started > timeout:
            return missing, pending, time.perf_counter() - started
        time.sleep(0.2)


def _snapshot(path):
    from store.engine import make_engine
    from tests.helpers import snapshot  # the same row comparison the tests use

    engine = make_engine(path)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


class Deployment:
    """The processes of one scenario: the web server, and for `split` a worker."""

    def __init__(self, db, split: bool, log):
        self.split = split
        env = {"API_RATE_LIMIT": "100000/minute"}
        self.web = Server(db, free_port(), secret=SECRET, processor="off" if split else None, env=env, log=log)
        self.worker = Worker(db, secret=SECRET, env=env, log=log) if split else None

    def start(self):
        self.web.start(retries=2)
        if self.worker:
            self.worker.start()
        return self

    def stop(self):
        if self.worker:
            self.worker.stop()
        self.web.stop()


def scenario(name, items, kinds, concurrency, work, reference, timeout) -> bool:
    split = name == "split"
    db = os.path.join(work, f"{name}.db")
    logfile = open(os.path.join(work, f"{name}.log"), "w")
    deployment = Deployment(db, split, logfile).start()
    inbox = deployment.web.inbox
    accepted, sent, statuses = set(), [0], {}
    lock = threading.Lock()
    up = threading.Event()
    up.set()
    kill_log, off_violations = [], []

    def send(item):
        up.wait()
        status, _outcome = _post(deployment.web.url, *item)
        with lock:
            sent[0] += 1
            statuses[status or "no answer"] = statuses.get(status or "no answer", 0) + 1
            if status is not None and 200 <= status < 300:
                accepted.add(item[1])

    def killer():
        for k, kind in enumerate(kinds, start=1):
            while sent[0] < len(items) * k / (len(kinds) + 1):
                time.sleep(0.005)
            pending = _inbox_pending(inbox)
            if kind in ("web", "both"):
                up.clear()
                deployment.web.kill()
            if kind in ("worker", "both"):
                deployment.worker.kill()
            kill_log.append(f"{kind} (inbox pending {pending})")
            if kind == "worker":
                # The web processes run with PROCESSOR=off: with no worker nothing may be applied.
                before = len(_applied(db))
                time.sleep(1.0)
                after = len(_applied(db))
                if after != before:
                    off_violations.append(f"{after - before} applied with the worker down")
            else:
                time.sleep(0.3)
            if kind in ("web", "both"):
                deployment.web.start()
                up.set()
            if kind in ("worker", "both"):
                deployment.worker.start()

    started = time.time()
    kill_thread = threading.Thread(target=killer)
    kill_thread.start()
    try:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(send, items))
    finally:
        kill_thread.join()
    crash_seconds = time.time() - started

    lost, pending, waited = _wait_applied(db, inbox, accepted, timeout)
    stored = _applied(db)
    integrity, inbox_integrity = _integrity(db), _integrity(inbox)

    resend = _send_all(deployment.web.url, items, concurrency)
    missing_after_resend, pending_after_resend, _ = _wait_applied(db, inbox, [i[1] for i in items], timeout)
    after_resend = _snapshot(db)
    again = _send_all(deployment.web.url, items, concurrency)
    time.sleep(1.0)  # anything a duplicate wrongly queued would be applied by now
    after_again = _snapshot(db)
    pending_end = _inbox_pending(inbox)
    deployment.stop()
    logfile.close()

    checks = {
        "every 2xx delivery applied (processed/ignored row)": not lost,
        "inbox empty after the crashes": pending == 0,
        "integrity_check ok (store)": integrity == "ok",
        "integrity_check ok (inbox file)": inbox_integrity == "ok",
        "re-send answered 2xx": all(s is not None and 200 <= s < 300 for s, _ in resend),
        "re-sent deliveries all applied, inbox empty": not missing_after_resend and pending_after_resend == 0,
        "re-sent state equals a clean run": after_resend == reference,
        "second re-send answered 200 duplicate": all(s == 200 and o == "duplicate" for s, o in again),
        "second re-send changes no row": after_again == after_resend and pending_end == 0,
    }
    if split:
        checks["PROCESSOR=off: nothing applied while the worker was down"] = not off_violations
    print(f"[{name}] {'web PROCESSOR=off + worker process' if split else 'the production command (PROCESSOR=process)'}: "
          f"{len(items)} deliveries, concurrency {concurrency}, SIGKILLs: {', '.join(kill_log)}; "
          f"took {crash_seconds:.1f} s")
    print(f"[{name}] answered 2xx during the crashes: {len(accepted)}; applied: {len(stored)}; lost: {len(lost)}; "
          f"inbox pending: {pending} (all applied {waited:.1f} s after the burst)")
    print(f"[{name}] answers during the crashes: "
          + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))))
    print(f"[{name}] integrity_check: store {integrity}, inbox {inbox_integrity}")
    if off_violations:
        print(f"[{name}] PROCESSOR=off violated: {off_violations}")
    if lost or missing_after_resend:
        print(f"[{name}] deliveries by outcome: {_outcomes(db)}")
    for check, ok in checks.items():
        print(f"[{name}] {'ok  ' if ok else 'FAIL'} {check}")
    sys.stdout.flush()
    return all(checks.values())


def run(count: int, server_kills: int, split_rounds: int, concurrency: int, scenarios, timeout: float) -> bool:
    work = tempfile.mkdtemp(prefix="crash-")
    items = synthetic_deliveries(count)

    reference_db = os.path.join(work, "reference.db")
    with open(os.path.join(work, "reference.log"), "w") as log:
        ref = Server(reference_db, free_port(), secret=SECRET, log=log).start(retries=2)
        try:
            _send_all(ref.url, items, concurrency)
            missing, pending, _ = _wait_applied(reference_db, ref.inbox, [i[1] for i in items], timeout)
        finally:
            ref.stop()
    if missing or pending:
        print(f"FAIL the clean reference run did not apply everything: {len(missing)} missing, {pending} pending; "
              f"outcomes {_outcomes(reference_db)} (stores and logs kept in {work})")
        return False
    reference = _snapshot(reference_db)

    ok = True
    for name in scenarios:
        kinds = ["web"] * server_kills if name == "server" else list(KINDS) * split_rounds
        ok &= scenario(name, items, kinds, concurrency, work, reference, timeout)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
        print("all scenarios: ok")
    else:
        print(f"all scenarios: FAIL (stores and server logs kept in {work})")
    return ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name if __spec__ else __name__}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deliveries", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=2, help="SIGKILLs in the server scenario (default 2)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds of web / worker / both kills in the split scenario (default 2)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scenario", choices=("server", "split"), action="append",
                        help="run only this scenario (repeatable; default both)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the inbox to empty")
    parser.add_argument("--quick", action="store_true", help="300 deliveries; server: 1 kill, split: 1 round")
    args = parser.parse_args(argv)
    if args.quick:
        args.deliveries, args.kills, args.rounds = 300, 1, 1
    scenarios = args.scenario or ["server", "split"]
    return 0 if run(args.deliveries, args.kills, args.rounds, args.concurrency, scenarios, args.timeout) else 1


if __name__ == "__main__":
    sys.exit(main())
