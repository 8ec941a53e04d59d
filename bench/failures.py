"""Time the failure-intelligence queries on a generated store (issue 13): median of 5, wall and CPU ms.

    python -m bench.failures /tmp/f100k.db      # a store from `python -m bench.generate`

Reads the store through the product's engine (as the server does).
"""
import statistics
import sys
import time

from store.engine import make_engine
from store.queries import failures
from store.queries.filters import Filters

DAY = 86400.0


def timed(label, fn, repeat=5):
    """Wall and thread-CPU milliseconds: median of `repeat` calls after a first one (shown apart)."""
    t0 = time.perf_counter()
    out = fn()
    first = (time.perf_counter() - t0) * 1000
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.thread_time()
        out = fn()
        cpus.append((time.thread_time() - c0) * 1000)
        walls.append((time.perf_counter() - t0) * 1000)
    size = len(out) if hasattr(out, "__len__") else out
    print(f"{label:52} wall {statistics.median(walls):7.1f} ms (max {max(walls):7.1f}, first {first:7.1f})"
          f"  cpu {statistics.median(cpus):7.1f} ms  [{size}]", flush=True)
    return out


def main(path: str) -> None:
    engine = make_engine(path)
    with engine.connect() as conn:
        now = conn.exec_driver_sql("SELECT max(createtime) FROM workflowruns").scalar()
        repo = conn.exec_driver_sql("SELECT repo FROM workflowruns GROUP BY repo ORDER BY count(*) DESC").scalar()
        print(f"store {path}: now {now:.0f}, repo filter {repo}")
        result = {}
        for days in (7, 30, 90):
            result[days] = timed(f"groups {days} d", lambda: failures.groups(conn, Filters(since=now - days * DAY)))
        timed("groups all time", lambda: failures.groups(conn, Filters()))
        timed(f"groups 30 d, repo={repo}", lambda: failures.groups(conn, Filters(repo=repo, since=now - 30 * DAY)))
        timed(f"groups 90 d, repo={repo}", lambda: failures.groups(conn, Filters(repo=repo, since=now - 90 * DAY)))
        timed("groups 7 d, branch=main", lambda: failures.groups(conn, Filters(branch="main", since=now - 7 * DAY)))
        biggest = max(result[90], key=lambda g: g["jobs"])
        print(f"biggest group in 90 d: {biggest['jobs']} jobs, {biggest['text'][:70]!r}")
        fp = biggest["fingerprint"]
        timed("occurrences(biggest), 200 with excerpts", lambda: failures.occurrences(conn, fp))
        timed("occurrences(biggest), 30 d", lambda: failures.occurrences(conn, fp, Filters(since=now - 30 * DAY)))
        timed("summary(biggest)", lambda: failures.summary(conn, fp))
        small = min(result[7], key=lambda g: g["jobs"])["fingerprint"]
        timed("summary(a rare one)", lambda: failures.summary(conn, small))
        timed("occurrences(a rare one)", lambda: failures.occurrences(conn, small))
        jobs = [r[0] for r in conn.exec_driver_sql(
            "SELECT job FROM failure_lines WHERE ordinal = 0 ORDER BY job DESC LIMIT 100")]
        verdicts = timed("verdicts of the newest 100 failed jobs", lambda: failures.verdicts(conn, jobs))
        kinds = {}
        for v in verdicts.values():
            kinds[v["kind"]] = kinds.get(v["kind"], 0) + 1
        print(f"  verdict kinds: {kinds}")
        spread = [r[0] for r in conn.exec_driver_sql(
            "SELECT job FROM failure_lines WHERE ordinal = 0 ORDER BY random() LIMIT 100")]
        timed("verdicts of 100 random failed jobs", lambda: failures.verdicts(conn, spread))
        author = conn.exec_driver_sql("SELECT author FROM workflowruns GROUP BY author ORDER BY count(*) DESC"
                                      ).scalar()
        timed(f"person_failures({author}, 7 d)",
              lambda: failures.person_failures(conn, author, Filters(since=now - 7 * DAY)))
        timed(f"person_failures({author}, 90 d)",
              lambda: failures.person_failures(conn, author, Filters(since=now - 90 * DAY)))
        runs = [r[0] for r in conn.exec_driver_sql(
            "SELECT gitid FROM workflowruns WHERE conclusion = 'failure' ORDER BY createtime DESC LIMIT 50")]
        timed("run_failures of the newest 50 failed runs", lambda: failures.run_failures(conn, runs))
        try:
            timed("capture_status", lambda: failures.capture_status(conn, token=True))
        except Exception as exc:  # noqa: BLE001
            print(f"capture_status failed: {exc!r}"[:200])
        timed("coverage", lambda: failures.coverage(conn))
        try:
            from store.queries import flakes
        except ImportError:
            print("store/queries/flakes.py: not there yet")
        else:
            for days in (7, 30, 90):
                timed(f"flaky_jobs {days} d", lambda: flakes.flaky_jobs(conn, Filters(since=now - days * DAY)))
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
