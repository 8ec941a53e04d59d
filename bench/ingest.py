"""Ingest benchmark: acceptance against two reference floors, a burst, the sustained processed rate.

    python -m bench.ingest                       # full run, ~8-12 minutes on the shared 2-core machine
    python -m bench.ingest --quick               # a smoke run of every phase (the test suite, ~20 s)
    python -m bench.ingest --concurrency 32      # acceptance levels (default 8 32 128; --quick: 4)
    python -m bench.ingest --same-store --keep   # one project store for all phases; keep stores and logs
    python -m bench.ingest --postgresql          # the project on PostgreSQL (a throwaway cluster here)

One run serves, side by side on 127.0.0.1, and measures with the same client:

- floor hmac:   `$SHARED_DIR/bench/floor_app.py`, FLOOR_MODE=hmac, gunicorn sync, 2 workers
                (verify the signature, answer 200);
- floor insert: the same app, FLOOR_MODE=insert (plus json.loads and one 20-column INSERT, FLOOR_DB);
- project:      the production command (`gunicorn -c dashapp/gunicorn_conf.py dashapp.wsgi:server`,
                WEB_CONCURRENCY, WEB_THREADS and PROCESSOR at their production defaults,
                webhook secret set) on a store the app makes at start-up: a fresh one for each
                acceptance level, the burst and each sustained-rate probe (`--same-store`: one for all).
                Fresh stores keep the figures independent of the phases' order: the processor's
                derived refresh re-reads a (branch, workflow, day) group and a person's runs once a
                batch, and loadgen's payloads put every run in the same group, so its cost per batch
                grows with everything sent before.

Phases and what each printed figure means:

1. Acceptance (per level: floor hmac, floor insert, project): the shared reference client
   `$SHARED_DIR/bench/loadgen.py` (closed loop, GitHub's example workflow_job/workflow_run payloads
   with fresh ids, signed) for `--warmup` + `--duration` seconds.  `deliv/s`: answers a second in the
   measured window (the project answers 202 once a delivery is durable in its inbox, before it is
   applied); p50/p99/max: answer latency; `non2xx`: answers that were not 2xx plus connection errors.
   `srv CPU ms/d`: the server's user+system CPU (all processes of its gunicorn group, /proc) during
   the client's run, per answer; for the project it includes what its processor applied
   meanwhile.  `cli CPU %`: the client's own CPU (its rusage, from wait4) as a share of one core:
   well under 100 % means the client was not the bottleneck (it does share the 2 cores).  After each
   project level the run waits until the inbox is empty (`drain`) and prints the server CPU per
   delivery for accepting and applying together.
2. Burst: `--burst` deliveries (20,000) at `--burst-concurrency` (64), closed loop (`bench/sender.py`:
   bodies built by loadgen's own code).  `max answer`: the slowest answer; `all processed after`:
   seconds from the first request until /healthz says the inbox is empty; `processed /s`: deliveries
   applied a second (first to last `processed` time in `deliveries`); lag p50/p99: `processed -
   received` of the burst's rows; `lost`: deliveries answered 2xx with no processed/ignored row (0).
3. Sustained processed rate (full run): an open-loop sender (`bench/sender.py --rate`) offers a fixed
   rate for `--sustain-seconds` (60) while /healthz `inbox.lag_s` (age of the oldest unapplied
   delivery) is polled every 0.2 s.  A rate passes when that lag stays under `--lag-limit` (1 s) for
   the whole probe, the sender kept its schedule and every delivery was applied; a probe stops as
   soon as the lag reaches the limit.  The search starts at 70 % of the burst's processed rate,
   goes up x1.25 after a pass, down x0.6 after a fail, then bisects, within `--sustain-budget`
   seconds.  `sustained processed rate`: the highest passing rate, against floor insert's best
   acceptance rate; lag p50/p99/max: `processed - received` of that probe's rows in the store.
   `--quick` runs one short probe at `--quick-rate` instead (it exercises the path; not a search).

The summary prints the targets beside the figures (acceptance at c=32 >= 60 % of floor hmac and
p99 < 250 ms; no answer over 2 s in the burst; sustained processed rate >= 50 % of floor insert).
The exit status is non-zero when a measurement is invalid (non-2xx answers, lost or unapplied
deliveries, a server that died), not when a target is missed: the machine is shared.  A floor
stopped from outside during its run (another user's pkill) is restarted and measured again, and
the summary says so.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import requests

from bench.server import SHARED_DIR, FloorServer, Server, free_port

SECRET = "bench-secret"
LOADGEN = os.path.join(SHARED_DIR, "bench", "loadgen.py")
PAYLOADS = os.path.join(SHARED_DIR, "fixtures", "github")
ID_BASE = 30_000_000_000  # run/job ids: ID_BASE + phase * ID_STRIDE + n, fresh in every phase
ID_STRIDE = 10_000_000
TARGETS = {"accept_ratio_c32": 0.60, "accept_p99_c32_ms": 250.0, "burst_max_s": 2.0, "sustained_ratio": 0.50}


def log(*parts) -> None:
    print(*parts, flush=True)


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_child(argv, timeout: float) -> tuple[int, float, float]:
    """Run a client process; (exit code, its CPU seconds from wait4, wall seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if time.time() > deadline:
            proc.kill()
            pid, status, usage = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        log(proc.stderr.read().decode(errors="replace")[-2000:])
    proc.stderr.close()
    return proc.returncode, usage.ru_utime + usage.ru_stime, time.perf_counter() - started


class Counter:
    def __init__(self):
        self.phase = 0

    def id_base(self) -> int:
        self.phase += 1
        return ID_BASE + self.phase * ID_STRIDE


def accept(target, server, concurrency: int, args, ids: Counter, work: str) -> dict:
    """One loadgen run against `target`'s /webhook: rate, latency, CPU of server and client."""
    out = os.path.join(work, f"loadgen-{target}-{concurrency}.json")
    argv = [sys.executable, LOADGEN, "--url", server.url + "/webhook", "--secret", SECRET, "-c", str(concurrency),
            "-d", str(args.duration), "--warmup", str(args.warmup), "--json-out", out,
            "--id-base", str(ids.id_base()), "--payloads", PAYLOADS, "--label", target]
    cpu0, pids0 = server.cpu_seconds(), set(server.pids())
    code, client_cpu, wall = run_child(argv, timeout=args.warmup + args.duration + 120)
    server_cpu = server.cpu_seconds() - cpu0
    check_alive(target, server, pids0)
    if code != 0 or not os.path.exists(out):
        raise RuntimeError(f"loadgen failed against {target} (exit {code})")
    with open(out) as f:
        r = json.loads(f.readlines()[-1])
    answered = sum(r["codes_all"].values())
    bad = sum(v for k, v in r["codes_all"].items() if not 200 <= int(k) < 300) + sum(r["errors_all"].values())
    return {"target": target, "c": concurrency, "rate": r["rps"], "p50": r["p50_ms"], "p99": r["p99_ms"],
            "max": r["max_ms"], "bad": bad + r["hung_workers"], "answered": answered, "ok": r["ok_2xx_total"],
            "srv_ms": 1000 * server_cpu / max(1, answered), "srv_cpu": server_cpu,
            "cli_pct": 100 * client_cpu / wall, "cli_ms": 1000 * client_cpu / max(1, r["sent_total"]),
            "codes": r["codes_all"]}


class ServerGone(RuntimeError):
    pass


def check_alive(name, server, pids_before) -> None:
    """Raise if the server's processes changed during a measurement (one died, or the server was stopped)."""
    if not server.alive() or set(server.pids()) != pids_before:
        raise ServerGone(f"{name}: the server's processes changed during the measurement "
                           f"(before {sorted(pids_before)}, after {sorted(server.pids())}, leader alive: "
                           f"{server.alive()}); see servers.log in the work directory")


class Health:
    """Polls /healthz every `interval` s in a thread: (time, pending, lag_s) samples."""

    def __init__(self, server, interval: float = 0.2):
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, int, float]] = []
        self.slowest = 0.0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        session = requests.Session()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                inbox = session.get(self.server.url + "/healthz", timeout=10).json().get("inbox")
                if inbox is not None:
                    self.samples.append((time.time(), inbox["pending"], inbox["lag_s"]))
            except (requests.RequestException, ValueError):
                self.failures += 1
            spent = time.perf_counter() - t0
            self.slowest = max(self.slowest, spent)
            self._stop.wait(max(0.0, self.interval - spent))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def max_lag(self) -> float:
        return max((lag for _t, _p, lag in self.samples), default=0.0)

    def last(self):
        return self.samples[-1] if self.samples else None


def inbox_state(server) -> tuple[int, float] | None:
    inbox = requests.get(server.url + "/healthz", timeout=30).json().get("inbox")
    return None if inbox is None else (inbox["pending"], inbox["lag_s"])


def drain(server, timeout: float) -> tuple[float, int]:
    """Wait until the inbox is empty; (seconds waited, deliveries pending at the start)."""
    started = time.perf_counter()
    state = inbox_state(server)
    first = state[0] if state else 0
    while state is not None and state[0] > 0:
        if time.perf_counter() - started > timeout:
            raise RuntimeError(f"inbox still holds {state[0]} deliveries after {timeout:.0f} s")
        time.sleep(0.2)
        state = inbox_state(server)
    return time.perf_counter() - started, first


def rows_since(db: str, since: float, until: float | None = None) -> list[tuple]:
    """(guid, outcome, received, processed) of the deliveries received in [since, until]."""
    from sqlalchemy import select

    from store.engine import make_engine
    from store.schema import deliveries as d

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return [tuple(row) for row in conn.execute(
                select(d.c.guid, d.c.outcome, d.c.received, d.c.processed)
                .where(d.c.received >= since, d.c.received <= (until or 1e12)))]
    finally:
        engine.dispose()


def pct(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, int(round(q / 100 * len(values) + 0.5)) - 1))]


def lag_figures(rows) -> dict:
    lags = [p - r for _g, _o, r, p in rows if p is not None]
    return {"n": len(lags), "p50": pct(lags, 50), "p99": pct(lags, 99), "max": max(lags, default=float("nan"))}


def sender(server, work, name, ids: Counter, timeout: float, **kw) -> tuple[subprocess.Popen, str, str]:
    out, guids = os.path.join(work, f"{name}.json"), os.path.join(work, f"{name}.guids.json")
    argv = [sys.executable, "-m", "bench.sender", "--url", server.url + "/webhook", "--secret", SECRET,
            "--id-base", str(ids.id_base()), "--payloads", PAYLOADS, "--json-out", out, "--guids-out", guids,
            "--timeout", str(timeout)]
    for key, value in kw.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return proc, out, guids


def wait_child(proc, block: bool = True) -> tuple[int, float] | None:
    """Reap a client process: (exit code, its CPU seconds from wait4); None if it runs on (block=False)."""
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if not pid:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, -signal.SIGTERM):
        log(proc.stderr.read().decode(errors="replace")[-2000:])
    proc.stderr.close()
    return proc.returncode, usage.ru_utime + usage.ru_stime


def burst(server, args, ids, work) -> dict:
    db = server.database
    cpu0, pids0 = server.cpu_seconds(), set(server.pids())
    started_wall, started = time.time(), time.perf_counter()
    with Health(server) as health:
        proc, out, guids_file = sender(server, work, "burst", ids, 60, count=args.burst,
                                       concurrency=args.burst_concurrency)
        code, client_cpu = wait_child(proc)
        sent_s = time.perf_counter() - started
        if code != 0:
            raise RuntimeError("burst sender failed")
        waited, _ = drain(server, args.drain_timeout)
    all_processed = time.perf_counter() - started
    server_cpu = server.cpu_seconds() - cpu0
    check_alive("burst", server, pids0)
    with open(out) as f:
        r = json.load(f)
    with open(guids_file) as f:
        ok = {g for g, _t in json.load(f)}
    rows = rows_since(db, started_wall - 1)
    applied = {g: p for g, o, _r, p in rows if o in ("processed", "ignored")}
    lost = ok - set(applied)
    stamps = sorted(p for g, p in applied.items() if g in ok and p is not None)
    processed_rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] \
        else float("nan")
    bad = sum(v for k, v in r["codes"].items() if not 200 <= int(k) < 300) + sum(r["errors"].values())
    return {"n": r["sent"], "ok": len(ok), "bad": bad, "accept_rate": r["rate"], "p50": r["p50_ms"],
            "p99": r["p99_ms"], "max": r["max_ms"], "sent_s": sent_s, "all_processed_s": all_processed,
            "processed_rate": processed_rate, "lost": len(lost),
            "peak_pending": max((p for _t, p, _l in health.samples), default=0),
            "lag": lag_figures([row for row in rows if row[0] in ok]), "srv_cpu": server_cpu,
            "cli_cpu": client_cpu, "health_slowest": health.slowest, "drain_s": waited}


def probe(server, rate: float, seconds: float, args, ids, work, name) -> dict:
    """Offer `rate` deliveries/s for `seconds`; passes if /healthz's lag stays under the limit throughout."""
    db = server.database
    cpu0, pids0 = server.cpu_seconds(), set(server.pids())
    started_wall = time.time()
    with Health(server) as health:
        proc, out, guids_file = sender(server, work, name, ids, 30, rate=rate, duration=seconds)
        verdict = None
        while (reaped := wait_child(proc, block=False)) is None:
            time.sleep(0.05)
            if health.max_lag() >= args.lag_limit:
                verdict = f"lag {health.max_lag():.1f} s after {time.time() - started_wall:.1f} s"
                proc.send_signal(signal.SIGTERM)
                reaped = wait_child(proc)
                break
        code, client_cpu = reaped
        ended_wall = time.time()
    server_cpu = server.cpu_seconds() - cpu0
    check_alive(name, server, pids0)
    result = {"rate": rate, "seconds": ended_wall - started_wall, "max_lag_polled": health.max_lag(),
              "polls": len(health.samples), "srv_cpu": server_cpu, "cli_cpu": client_cpu, "lost": None,
              "health_slowest": health.slowest}
    drain(server, args.drain_timeout)
    # The probe's own rows: received (server clock, same machine) after its first request was sent.
    rows = rows_since(db, started_wall, ended_wall + 1.0)
    result["lag"] = lag_figures(rows)
    if verdict is None and code == 0:
        with open(out) as f:
            r = json.load(f)
        with open(guids_file) as f:
            ok = {g for g, _t in json.load(f)}
        rows = [row for row in rows if row[0] in ok]
        result["lag"] = lag_figures(rows)
        applied = {g for g, o, _r, _p in rows if o in ("processed", "ignored")}
        result.update(sent=r["sent"], ok=len(ok), lost=len(ok - applied), late=r["late_max_s"], p99=r["p99_ms"],
                      max=r["max_ms"], bad=r["sent"] - len(ok))
        if r["sent"] != len(ok):
            verdict = f"{r['sent'] - len(ok)} deliveries not answered 2xx"
        elif r["late_max_s"] > 0.5:
            verdict = f"the sender fell {r['late_max_s']:.1f} s behind its schedule (answers too slow)"
        elif result["lost"]:
            verdict = f"{result['lost']} deliveries lost"
    elif verdict is None:
        verdict = f"sender exit {code}"
    result["passed"] = verdict is None
    result["verdict"] = verdict or f"lag stayed under {args.lag_limit:g} s"
    return result


def sustained(project, capacity: float, args, ids, work) -> list[dict]:
    """Search the highest rate that keeps the processing lag under the limit for the probe's length."""
    probes, lo, hi = [], 0.0, None
    rate = max(5.0, round(0.7 * capacity / 5) * 5)
    budget_end = time.perf_counter() + args.sustain_budget
    while len(probes) < args.max_probes:
        if time.perf_counter() + args.sustain_seconds > budget_end and probes:
            break
        with project.fresh(f"probe-{len(probes)}") as server:
            r = probe(server, rate, args.sustain_seconds, args, ids, work, f"probe-{len(probes)}")
        probes.append(r)
        log(f"  probe {rate:7.0f} /s for up to {args.sustain_seconds:.0f} s: {'pass' if r['passed'] else 'FAIL'} "
            f"({r['verdict']}; polled lag max {r['max_lag_polled']:.2f} s, table lag p99 {r['lag']['p99']:.3f} s)")
        if r["passed"]:
            lo = rate
        else:
            hi = rate
        nxt = rate * 1.25 if hi is None else (lo + hi) / 2 if lo else hi * 0.6
        nxt = round(nxt / 5) * 5
        if hi is not None and lo and (hi - lo) / hi < 0.1 or nxt in (lo, hi) or nxt < 5:
            break
        rate = nxt
    return probes


class Project:
    """The project's server on a fresh store for each phase (`--same-store`: one store for the whole run).

    The derived refresh re-reads a (branch, workflow, day) group and a person's runs per batch, and
    loadgen's payloads put every run in one such group: on one store the later phases would pay for
    the earlier phases' runs, and the figures would depend on the order of the phases."""

    def __init__(self, args, work, log_file):
        self.args, self.work, self.log_file = args, work, log_file
        self.shared: Server | None = None
        self.notes: list[str] = []
        self.cluster = None
        if args.postgresql:
            from tests.pg import Cluster

            self.cluster = Cluster(durable=True).start()

    def _new(self, phase) -> Server:
        if self.cluster is not None:
            db = self.cluster.new_database()
        else:
            db = os.path.join(self.work, f"project-{'all' if self.args.same_store else phase}.db")
        server = Server(db, free_port(), secret=SECRET, threads=256, workers=self.args.workers, log=self.log_file,
                        env={"API_RATE_LIMIT": "100000/minute"})
        server.start(retries=2)
        if server.failed_starts:
            self.notes.append(f"the project's server failed to start {server.failed_starts} time(s) on the fresh store "
                              f"of phase {phase} (a worker failed to boot; servers.log) and was started again")
        return server

    def fresh(self, phase):
        project = self

        class _Phase:
            def __enter__(self):
                if project.args.same_store:
                    project.shared = project.shared or project._new(phase)
                    self.server = project.shared
                else:
                    self.server = project._new(phase)
                return self.server

            def __exit__(self, *exc):
                if not project.args.same_store:
                    self.server.stop()

        return _Phase()

    def close(self):
        if self.shared is not None:
            self.shared.stop()
        if self.cluster is not None:
            self.cluster.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {__spec__.name if __spec__ else __name__}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small smoke run of every phase (the test suite)")
    parser.add_argument("--concurrency", type=int, nargs="+", help="acceptance levels (default 8 32 128; quick: 4)")
    parser.add_argument("--duration", type=float, help="measured seconds per loadgen run (default 10; quick 1.5)")
    parser.add_argument("--warmup", type=float, help="loadgen warm-up seconds, not measured (default 2; quick 0.5)")
    parser.add_argument("--burst", type=int, help="deliveries in the burst (default 20000; quick 300)")
    parser.add_argument("--burst-concurrency", type=int, help="requests in flight in the burst (default 64; quick 16)")
    parser.add_argument("--sustain-seconds", type=float, help="length of a sustained-rate probe (default 60)")
    parser.add_argument("--sustain-budget", type=float, default=300.0,
                        help="seconds the sustained-rate search may take (default 300)")
    parser.add_argument("--max-probes", type=int, default=5)
    parser.add_argument("--quick-rate", type=float, default=25.0, help="--quick: the one probe's rate (default 25/s)")
    parser.add_argument("--lag-limit", type=float, default=1.0, help="processing lag a sustained rate must stay under")
    parser.add_argument("--drain-timeout", type=float, default=300.0)
    parser.add_argument("--workers", type=int, help="WEB_CONCURRENCY of the project (default: production's)")
    parser.add_argument("--same-store", action="store_true",
                        help="one project store for every phase (default: a fresh store per phase and probe)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (stores, client results)")
    parser.add_argument("--postgresql", action="store_true",
                        help="the project's stores are databases of a throwaway PostgreSQL cluster on this machine "
                             "(tests/pg.py, fsync and synchronous commits on)")
    args = parser.parse_args(argv)
    q = args.quick
    args.concurrency = args.concurrency or ([4] if q else [8, 32, 128])
    args.duration = args.duration or (1.5 if q else 10.0)
    args.warmup = args.warmup if args.warmup is not None else (0.5 if q else 2.0)
    args.burst = args.burst or (300 if q else 20000)
    args.burst_concurrency = args.burst_concurrency or (16 if q else 64)
    args.sustain_seconds = args.sustain_seconds or (4.0 if q else 60.0)
    if not os.path.exists(LOADGEN):
        parser.error(f"no reference client at {LOADGEN} (set SHARED_DIR)")

    work = tempfile.mkdtemp(prefix="bench-ingest-")
    ids = Counter()
    began = time.perf_counter()
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:
        loop = "asyncio (no uvloop)"
    log(f"load average at start: {loadavg()}; {os.cpu_count()} cores; client: {LOADGEN} ({loop}); work dir {work}")
    log(f"project: {'one store for every phase' if args.same_store else 'a fresh store for each phase and probe'}")
    problems = []
    with open(os.path.join(work, "servers.log"), "w") as server_log:
        hmac_floor = FloorServer("hmac", free_port(), secret=SECRET, log=server_log)
        insert_floor = FloorServer("insert", free_port(), secret=SECRET, db=os.path.join(work, "floor.db"),
                                   log=server_log)
        project = Project(args, work, server_log)
        floors = {"floor hmac": hmac_floor, "floor insert": insert_floor}
        try:
            for f in floors.values():
                f.start()
            with project.fresh("idle") as server:
                health = server.health()
                if "inbox" not in health:
                    problems.append("/healthz has no `inbox`: this server is not the inbox pipeline")
                log(f"project: {len(server.pids()) - 1} processes besides the master (web, and the worker it started), /healthz {json.dumps(health)}")
                idle = 2.0 if args.quick else 5.0
                cpu0 = server.cpu_seconds()
                time.sleep(idle)
                log(f"project idle (no requests) for {idle:g} s: server CPU "
                    f"{100 * (server.cpu_seconds() - cpu0) / idle:.0f} % of a core")
            results = run_all(floors, project, args, ids, work, problems)
        except BaseException:
            args.keep = True
            log(f"\nFAILED: the work directory {work} is kept (servers.log, client results)")
            raise
        finally:
            for f in floors.values():
                f.stop()
            project.close()
    results["total_s"] = time.perf_counter() - began
    report(results, args, problems)
    log(f"load average at end: {loadavg()}; took {results['total_s']:.0f} s")
    if not args.keep:
        import shutil
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


def run_all(floors, project, args, ids, work, problems) -> dict:
    accepted, drains, problems_seen = [], {}, []
    log(f"\n1. acceptance: loadgen -d {args.duration:g} --warmup {args.warmup:g} at each level")
    header = (f"{'server':13} {'conc':>4} {'deliv/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non2xx':>6} "
              f"{'srv CPU ms/d':>12} {'cli CPU %':>9} {'cli ms/req':>10}")
    log(header)

    def row(name, c, r):
        log(f"{name:13} {c:>4} {r['rate']:8.0f} {r['p50']:8.1f} {r['p99']:8.1f} {r['max']:8.1f} {r['bad']:>6} "
            f"{r['srv_ms']:12.2f} {r['cli_pct']:9.0f} {r['cli_ms']:10.2f}")
        if r["bad"]:
            problems.append(f"{name} at c={c}: {r['bad']} answers not 2xx or failed ({r['codes']})")

    for c in args.concurrency:
        for name, server in floors.items():
            try:
                r = accept(name, server, c, args, ids, work)
            except ServerGone as exc:  # stopped from outside (a colleague's pkill): say so, measure again
                log(f"{name} at c={c}: {exc}; restarted, measuring again")
                problems_seen.append(f"{name} at c={c} was stopped from outside during its run (measured again)")
                server.stop()
                server.start()
                r = accept(name, server, c, args, ids, work)
            accepted.append(r)
            row(name, c, r)
        with project.fresh(f"accept-{c}") as server:
            r = accept("project", server, c, args, ids, work)
            accepted.append(r)
            row("project", c, r)
            cpu0 = server.cpu_seconds()
            seconds, backlog = drain(server, args.drain_timeout)
            cpu = server.cpu_seconds() - cpu0
        drains[c] = {"seconds": seconds, "backlog": backlog, "rate": backlog / seconds if seconds else None, "cpu": cpu}
        total_ms = 1000 * (r["srv_cpu"] + cpu) / max(1, r["answered"])
        log(f"{'':13} {'':>4} drain: {backlog} pending applied in {seconds:.1f} s"
            + (f" ({backlog / seconds:.0f} /s)" if seconds > 0.3 and backlog else "")
            + f"; server CPU accept+process {total_ms:.2f} ms a delivery")

    log(f"\n2. burst: {args.burst} deliveries at concurrency {args.burst_concurrency} (closed loop)")
    with project.fresh("burst") as server:
        b = burst(server, args, ids, work)
    log(f"answered 2xx {b['ok']} of {b['n']} ({b['accept_rate']:.0f} /s, p50 {b['p50']:.1f} ms, p99 {b['p99']:.1f} ms, "
        f"max answer {b['max']:.0f} ms); peak pending {b['peak_pending']}; "
        f"all processed after {b['all_processed_s']:.1f} s; processed {b['processed_rate']:.0f} /s; "
        f"lag p50 {b['lag']['p50']:.2f} s p99 {b['lag']['p99']:.2f} s; lost {b['lost']}")
    log(f"server CPU {b['srv_cpu']:.1f} s ({1000 * b['srv_cpu'] / max(1, b['n']):.2f} ms a delivery, accept+process); "
        f"client CPU {b['cli_cpu']:.1f} s ({100 * b['cli_cpu'] / b['sent_s']:.0f} % of a core while sending)")
    if b["bad"] or b["lost"] or b["ok"] != b["n"]:
        problems.append(f"burst: {b['bad']} not 2xx, {b['lost']} lost")

    if args.quick:
        log(f"\n3. processing lag at a fixed {args.quick_rate:g} /s for {args.sustain_seconds:g} s (quick: no search)")
        with project.fresh("probe-quick") as server:
            probes = [probe(server, args.quick_rate, args.sustain_seconds, args, ids, work, "probe-quick")]
    else:
        capacity = b["processed_rate"]
        if capacity != capacity:  # nan: no processed times
            capacity = max((d["rate"] or 0 for d in drains.values()), default=50.0) or 50.0
        log(f"\n3. sustained processed rate: probes of {args.sustain_seconds:g} s, lag limit {args.lag_limit:g} s, "
            f"from 70 % of the burst's processed rate ({capacity:.0f} /s)")
        probes = sustained(project, capacity, args, ids, work)
    for p in probes:
        if p["lost"]:
            problems.append(f"probe at {p['rate']:g} /s: {p['lost']} deliveries lost")
    return {"accepted": accepted, "drains": drains, "burst": b, "probes": probes,
            "notes": problems_seen + project.notes}


def report(results, args, problems) -> None:
    accepted, b, probes = results["accepted"], results["burst"], results["probes"]
    by = {(r["target"], r["c"]): r for r in accepted}
    levels = args.concurrency
    log("\n== summary ==")
    log(f"{'acceptance, deliveries/s (p50 / p99 ms)':42}" + "".join(f"{'c=' + str(c):>26}" for c in levels))
    for name in ("floor hmac", "floor insert", "project"):
        cells = "".join(f"{by[name, c]['rate']:>9.0f} ({by[name, c]['p50']:6.1f} /{by[name, c]['p99']:7.1f})"
                        for c in levels)
        log(f"{name:42}{cells}")
    log(f"{'project / floor hmac':42}" + "".join(f"{by['project', c]['rate'] / by['floor hmac', c]['rate']:>26.0%}"
                                               for c in levels))
    log(f"{'project / floor insert':42}" + "".join(
        f"{by['project', c]['rate'] / by['floor insert', c]['rate']:>26.0%}" for c in levels))
    log(f"{'client CPU, % of a core (project runs)':42}" + "".join(f"{by['project', c]['cli_pct']:>26.0f}"
                                                                  for c in levels))
    log(f"{'server CPU, ms a delivery (project, accept)':42}" + "".join(f"{by['project', c]['srv_ms']:>26.2f}"
                                                                       for c in levels))
    insert_best = max(by["floor insert", c]["rate"] for c in levels)
    passed = [p for p in probes if p["passed"]]
    best = max(passed, key=lambda p: p["rate"]) if passed else None
    log(f"burst of {b['n']} at c={args.burst_concurrency}: max answer {b['max']:.0f} ms, all processed after "
        f"{b['all_processed_s']:.1f} s, processed {b['processed_rate']:.0f} /s, lost {b['lost']}")
    label = "lag at the quick rate" if args.quick else "sustained processed rate"
    if best:
        log(f"{label}: {best['rate']:.0f} /s (lag under {args.lag_limit:g} s for {best['seconds']:.0f} s; "
            f"lag p50 {best['lag']['p50'] * 1000:.0f} ms, p99 {best['lag']['p99'] * 1000:.0f} ms, "
            f"max {best['lag']['max'] * 1000:.0f} ms over {best['lag']['n']} deliveries)"
            + ("" if args.quick else
               f" = {best['rate'] / insert_best:.0%} of floor insert's best ({insert_best:.0f} /s)"))
        log(f"  server CPU at that rate {100 * best['srv_cpu'] / best['seconds']:.0f} % of a core, "
            f"client CPU {100 * best['cli_cpu'] / best['seconds']:.0f} %")
    else:
        log(f"{label}: no probed rate passed ("
            + "; ".join(f"{p['rate']:.0f} /s: {p['verdict']}" for p in probes) + ")")

    log("\ntargets" + " " * 45 + "figure        met")
    if 32 in levels:
        ratio = by["project", 32]["rate"] / by["floor hmac", 32]["rate"]
        p99 = by["project", 32]["p99"]
        _target("acceptance at c=32 >= 60 % of floor hmac", f"{ratio:.0%}", ratio >= TARGETS["accept_ratio_c32"])
        _target("acceptance p99 at c=32 < 250 ms", f"{p99:.0f} ms", p99 < TARGETS["accept_p99_c32_ms"])
    else:
        log("(c=32 not measured: the acceptance targets are not evaluated)")
    _target(f"no answer over 2 s in the burst ({b['n']} at c={args.burst_concurrency})", f"{b['max']:.0f} ms",
            b["max"] < 1000 * TARGETS["burst_max_s"])
    if args.quick:
        log("(quick: the sustained processed rate is not searched)")
    else:
        ratio = (best["rate"] if best else 0.0) / insert_best
        _target("sustained processed rate >= 50 % of floor insert", f"{ratio:.0%}", ratio >= TARGETS["sustained_ratio"])
    for note in results.get("notes", ()):
        log(f"note: {note}")
    if problems:
        log("\nINVALID MEASUREMENT:")
        for p in problems:
            log(f"  - {p}")


def _target(what, figure, met) -> None:
    log(f"{what:52} {figure:>12}  {'yes' if met else 'NO'}")


if __name__ == "__main__":
    sys.exit(main())
