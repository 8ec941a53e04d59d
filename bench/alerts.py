"""Time alert decisions (issue 14).

    python -m bench.alerts /tmp/f1m2.db          # on a store from `python -m bench.generate` (migrated first)
    python -m bench.alerts --processor 20000     # the processor with and without alerts, same deliveries

On a store, each decision runs inside a transaction rolled back.
With one rule watching every repository's default branch (verdicts on, the default): the baseline the
processor records when it takes the inbox, one pair decided as a batch's flush decides it (median of
the default-branch pairs with the most failures), and the sweep.  Wall and CPU milliseconds.
"""
import statistics
import sys
import time

from sqlalchemy import select

from alerts.config import AlertConfig, Channel, Rule
from alerts.decide import Decider
from store.engine import make_engine, writer_options
from store.migrate import upgrade
from store.schema import alert_messages, branches, repos, workflowruns

CONFIG = AlertConfig(path="bench", rules=(Rule("main", channels=("hook",)),),
                     channels={"hook": Channel(name="hook", type="webhook", url="http://127.0.0.1:9/")})


def timed(engine, label, work, repeat=1):
    walls, cpus, out = [], [], None
    for _ in range(repeat):
        with engine.connect().execution_options(**writer_options()) as conn:
            transaction = conn.begin()
            t0, c0 = time.perf_counter(), time.thread_time()
            out = work(conn)
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.thread_time() - c0) * 1000)
            messages = conn.execute(select(alert_messages.c.id)).all()
            transaction.rollback()
    print(f"{label:58} wall {statistics.median(walls):8.1f} ms (max {max(walls):8.1f})  "
          f"cpu {statistics.median(cpus):8.1f} ms  [{len(messages)} messages]", flush=True)
    return out


def main(path: str) -> None:
    engine = make_engine(path)
    upgrade(engine)
    with engine.connect() as conn:
        now = conn.exec_driver_sql("SELECT max(createtime) FROM workflowruns").scalar()
        runs = conn.exec_driver_sql("SELECT count(*) FROM workflowruns").scalar()
        w = workflowruns.c
        main_pairs = conn.execute(
            select(w.workflow, w.branch).select_from(workflowruns.join(branches, branches.c.id == w.branch)
                                                     .join(repos, repos.c.name == w.repo))
            .where(branches.c.name == repos.c.default_branch, w.conclusion == "failure")
            .group_by(w.workflow, w.branch)).all()
        pairs = sorted({tuple(p) for p in main_pairs})[:40]
        print(f"store {path}: {runs} runs, now {now:.0f}; {len(main_pairs)} default-branch pairs with failures; "
              f"deciding {len(pairs)} of them one at a time", flush=True)
    decider = Decider(CONFIG, hold=300.0)
    timed(engine, "baseline (quiet: every red pair and the last day's failures)",
          lambda conn: decider.baseline(conn, now=now))
    singles = []
    for pair in pairs:
        with engine.connect().execution_options(**writer_options()) as conn:
            transaction = conn.begin()
            t0 = time.perf_counter()
            decider.pairs(conn, {pair}, now=now)
            singles.append((time.perf_counter() - t0) * 1000)
            transaction.rollback()
    singles.sort()
    print(f"{'one pair decided (as after a batch touching it)':58} median {statistics.median(singles):6.1f} ms, "
          f"p90 {singles[int(len(singles) * 0.9)]:6.1f} ms, max {singles[-1]:6.1f} ms over {len(singles)} pairs",
          flush=True)
    timed(engine, "sweep (holds, open breaks)", lambda conn: decider.sweep(conn, now=now), repeat=3)


def processor(count: int, rounds: int = 2) -> None:
    """Apply the same `count` synthetic deliveries (bench/deliveries.py: one repository's default branch,
    12 % of runs failed) through the processor on a fresh store, alerts off and on, `rounds` times each,
    alternating: applied deliveries a second and CPU ms a delivery."""
    import tempfile
    from concurrent.futures import ThreadPoolExecutor

    from bench.deliveries import synthetic_deliveries
    from ingest.processor import Processor
    from store.inbox import Accepted, Inbox

    deliveries = synthetic_deliveries(count)
    for round_ in range(rounds):
        for mode in ("off", "on"):
            with tempfile.TemporaryDirectory() as work:
                engine = make_engine(f"{work}/b.db")
                upgrade(engine)
                box = Inbox(f"{work}/b.inbox.db", engine)
                with ThreadPoolExecutor(64) as pool:
                    list(pool.map(lambda d: box.append(Accepted(d[1], d[0], "application/json", time.time(), d[2])),
                                  deliveries))
                decider = Decider(CONFIG) if mode == "on" else None
                proc = Processor(engine, box, publish=lambda _m: None, batch=500, alerts=decider)
                t0, c0 = time.perf_counter(), time.process_time()
                while proc.process_batch():
                    pass
                wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                with engine.connect() as conn:
                    decided = conn.execute(select(alert_messages.c.id)).all()
                print(f"round {round_ + 1}, alerts {mode:3}: {count} deliveries in {wall:6.2f} s = "
                      f"{count / wall:6.0f} /s, CPU {cpu * 1000 / count:.3f} ms a delivery; "
                      f"{len(decided)} messages decided", flush=True)
                box.close()
                engine.dispose()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--processor"]:
        processor(int(sys.argv[2]) if len(sys.argv) > 2 else 20000)
    else:
        main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/f1m2.db")
