"""Retention on a real-sized store: archive what is older than 30 days while deliveries are posted, check
that none is lost, that the rollups and the 90-day performance charts are as before and that the file
shrank, then re-import every month and compare every table (counts and SHA-256) with the original.

    python -m bench.generate --runs 100000 --out /tmp/g100000.db     # once
    python -m bench.archive --db /tmp/g100000.db                       # works on a copy

The server is the app in this process (Werkzeug, threaded), its processor a thread that archives between
its batches (ARCHIVE_AFTER_DAYS), as a production processor does; a few sender threads post signed
`workflow_run` deliveries meanwhile, and for 8 s before the pass (the baseline of their processing lag).  Printed: the pass's time and rows, each batch's time holding the
write lock, the deliveries' processing lag during the pass, file sizes, the re-import's time and the
comparisons.
"""
import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path

import requests
from sqlalchemy import delete, func, select

from dashapp import create_app
from dashapp.config import Config
from ingest.signature import sign
from store import archive
from store.archive import command
from store.copy import digest
from store.derived.rollups import DAY
from store.engine import make_engine, vacuum
from store.migrate import upgrade
from store.queries.filters import Filters
from store.queries.waterfall import performance_records
from store.schema import (deliveries, metadata, rollup_days, rollup_hist, rollup_runner_days, run_pulls, runattempts,
                          workflowruns)

SECRET = "bench-archive"
BASELINE = 8.0  # seconds of deliveries posted before the pass, for the lag without archiving
FIXTURE = "workflow_run/completed.payload.json"


def fingerprint(engine) -> dict:
    with engine.connect() as conn:
        return {t.name: digest(conn, t) for t in metadata.sorted_tables
                if t.name not in ("archive_parts", "alembic_version")}


def charts(engine) -> dict:
    """The 90-day performance chart (per day) of every repository's default branch."""
    since = time.time() - 90 * DAY
    out = {}
    with engine.connect() as conn:
        pairs = conn.execute(select(workflowruns.c.repo, workflowruns.c.archivedbranchname)
                             .where(workflowruns.c.archivedbranchname == "main").distinct()).all()
        for repo, branch in pairs:
            records = performance_records(conn, Filters(repo=repo, branch=branch, since=since), 86400)
            out[repo] = [r for r in records if r["bucket"] >= -(-since // DAY) * DAY]  # its whole days
    return out


def final_days(conn, cutoff: float) -> dict:
    """Rows and SHA-256 of the rollups of the days before `cutoff` (the days archived: no write changes them)."""
    day = int(cutoff // DAY)
    out = {}
    for table, column in ((rollup_days, rollup_days.c.day), (rollup_runner_days, rollup_runner_days.c.day),
                          (rollup_hist, rollup_hist.c.period)):
        sha, n = hashlib.sha256(), 0
        for row in conn.execute(select(table).where(column < day).order_by(*table.primary_key.columns)):
            sha.update(repr(tuple(row)).encode())
            n += 1
        out[table.name] = (n, sha.hexdigest()[:16])
    return out


def _payload(shared: Path) -> dict:
    with open(shared / "fixtures" / "github" / FIXTURE) as f:
        return json.load(f)


def post_while(url: str, payload: dict, done: threading.Event, sent: list, senders: int,
               prefix: str) -> list[threading.Thread]:
    def send(k):
        body = json.loads(json.dumps(payload))
        session = requests.Session()
        i = 0
        while not done.is_set():
            gitid = (770_000_000 if prefix == "bench" else 660_000_000) + k * 1_000_000 + i
            i += 1
            body["workflow_run"].update(id=gitid, created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            data = json.dumps(body).encode()
            answer = session.post(f"{url}/webhook", data=data, timeout=30, headers={
                "X-GitHub-Event": "workflow_run", "X-GitHub-Delivery": f"{prefix}-{gitid}",
                "Content-Type": "application/json", "X-Hub-Signature-256": sign(SECRET, data)})
            assert answer.status_code == 202, answer.text
            sent.append(gitid)
            time.sleep(0.02)
    threads = [threading.Thread(target=send, args=(k,), daemon=True) for k in range(senders)]
    for t in threads:
        t.start()
    return threads


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.archive", description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="a SQLite store (copied first; the original is not changed)")
    p.add_argument("--days", type=float, default=30)
    p.add_argument("--senders", type=int, default=4, help="threads posting deliveries during the pass")
    p.add_argument("--shared", default=os.environ.get("SHARED_DIR", "../shared"))
    p.add_argument("--quick", action="store_true", help="a generated 1,500-run store, 20 days kept (a smoke run)")
    args = p.parse_args(argv)
    if not args.db and not args.quick:
        p.error("--db is required (or --quick)")
    baseline = BASELINE
    work = Path(tempfile.mkdtemp(prefix="bench-archive-"))
    try:
        if args.quick:
            from bench.generate import generate

            args.db, args.days, args.senders, baseline = str(work / "generated.db"), 20, 2, 2.0
            generate(args.db, runs=1500, quiet=True)
        path = str(work / "store.db")
        shutil.copy(args.db, path)
        engine = make_engine(path)
        upgrade(engine)
        started = time.monotonic()
        vacuum(engine)  # a store made before incremental vacuum: converted once, as the README says
        os.sync()  # the rewritten file on disk before anything is timed (its writeback stalls commits' fsyncs)
        print(f"converted to incremental vacuum in {time.monotonic() - started:.1f} s")
        size_before = os.path.getsize(path)
        before, charts_before = fingerprint(engine), charts(engine)
        cutoff = archive.horizon_for(args.days) * DAY
        with engine.connect() as conn:
            frozen_before = final_days(conn, cutoff)
        with engine.connect() as conn:
            old = conn.execute(select(func.count()).where(workflowruns.c.createtime < cutoff)).scalar()
        print(f"store: {before['workflowruns'][0]:,} runs, {before['jobs'][0]:,} jobs, {before['steps'][0]:,} steps, "
              f"{size_before / 1e6:.0f} MB; {old:,} runs created before the horizon "
              f"{time.strftime('%Y-%m-%d', time.gmtime(cutoff))}")
        engine.dispose()

        app = create_app(Config.from_env({}, database_path=path, webhook_secret=SECRET, processor="off",
                                         archive_after_days=str(args.days), archive_dir=str(work / "archive"),
                                         api_rate_limit="1000000/minute"))
        services = app.server.extensions["buildmon"]
        steps_timed = []
        archiver = services.processor.archiver
        step = archiver.step

        def timed_step():
            t0, parts = time.perf_counter(), len(archiver.parts)
            more = step()
            if len(archiver.parts) > parts:  # a batch archived (and its pages given back)
                steps_timed.append(time.perf_counter() - t0)
            return more
        archiver.step = timed_step
        from werkzeug.serving import make_server

        server = make_server("127.0.0.1", 0, app.server, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_port}"
        done, sent = threading.Event(), []
        # The baseline: the same senders for BASELINE seconds with the archiver set aside.
        services.processor.archiver = None
        services.start_processor()
        senders = post_while(url, _payload(Path(args.shared)), done, sent, args.senders, "base")
        time.sleep(baseline)
        done.set()
        for t in senders:
            t.join()
        services.settle(120)
        baseline = len(sent)
        done.clear()
        senders = post_while(url, _payload(Path(args.shared)), done, sent, args.senders, "bench")
        services.processor.archiver = archiver
        services.processor.wake()
        while not archiver._started or archiver._phase is not None:  # the pass began, then ended
            time.sleep(0.05)
        pass_seconds = time.monotonic() - archiver._started
        done.set()
        for t in senders:
            t.join()
        services.settle(120)
        engine = services.engine
        with engine.connect() as conn:
            kept = conn.execute(select(func.count()).where(workflowruns.c.gitid.in_(sent))).scalar()
            lags, base_lags = ([p - r for r, p in conn.execute(select(deliveries.c.received, deliveries.c.processed)
                                                                .where(deliveries.c.guid.like(f"{prefix}-%")))]
                               for prefix in ("bench", "base"))
            months = archive.months(conn)
            left = conn.execute(select(func.count()).where(workflowruns.c.createtime < cutoff)).scalar()
        charts_after = charts(engine)
        with engine.connect() as conn:
            page_size = conn.exec_driver_sql("PRAGMA page_size").scalar()
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar() * page_size
            frozen_after = final_days(conn, cutoff)
        size_after = os.path.getsize(path)
        archived_rows = sum(sum(m["rows"].values()) for m in months)
        archive_bytes = sum(m["bytes"] for m in months)
        lags.sort()
        per_month = ", ".join(f"{m['month']}: {m['rows'].get('workflowruns', 0):,} runs" for m in months)
        print(f"archive pass: {pass_seconds:.1f} s, {sum(m['parts'] for m in months)} batches, {archived_rows:,} rows "
              f"({per_month}); {archive_bytes / 1e6:.1f} MB of Parquet")
        print(f"an archive step (a batch, then its pages given back): median {statistics.median(steps_timed) * 1000:.0f} ms, "
              f"max {max(steps_timed) * 1000:.0f} ms")
        print(f"deliveries posted: {len(sent):,} ({baseline:,} before the pass, {len(sent) - baseline:,} during it), "
              f"runs stored {kept:,} (lost {len(sent) - kept})")
        for label, values in (("before the pass", sorted(base_lags)), ("during the pass", lags)):
            print(f"processing lag {label}: p50 {values[len(values) // 2] * 1000:.0f} ms, "
                  f"p99 {values[int(len(values) * 0.99)] * 1000:.0f} ms, max {values[-1] * 1000:.0f} ms")
        print(f"runs before the horizon left in the store: {left}")
        changed = frozen_before != frozen_after
        print(f"rollups of the archived days (rollup_days, rollup_hist, rollup_runner_days before the horizon): "
              f"{'DIFFERENT' if changed else 'equal'} ({frozen_after})")
        print(f"90-day charts (whole days), {len(charts_before)} repositories: "
              f"{'equal' if charts_before == charts_after else 'DIFFERENT'}")
        print(f"file: {size_before / 1e6:.0f} MB before, {size_after / 1e6:.0f} MB after the pass with the server "
              f"running ({pages / 1e6:.0f} MB of pages); the pass gave {archiver.reclaimed * page_size / 1e6:.0f} MB back "
              f"to the disk, and the deliveries posted meanwhile took some of it again")
        services.close()
        server.shutdown()
        engine = make_engine(path)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        engine.dispose()
        print(f"file after the server stopped (last checkpoint): {os.path.getsize(path) / 1e6:.0f} MB")

        # The re-import, compared with the original: first take away what was posted during the pass (rows
        # with new ids, so the rest is as it was), then put every month back.
        engine = make_engine(path)
        with engine.begin() as conn:
            posted = conn.execute(select(workflowruns.c.id).where(workflowruns.c.gitid.in_(sent))).scalars().all()
            conn.execute(delete(runattempts).where(runattempts.c.run.in_(posted)))
            conn.execute(delete(run_pulls).where(run_pulls.c.run.in_(sent)))
            conn.execute(delete(workflowruns).where(workflowruns.c.id.in_(posted)))
            conn.execute(delete(deliveries).where(deliveries.c.guid.like("bench-%") | deliveries.c.guid.like("base-%")))
        started = time.monotonic()
        for m in months:
            archive.restore(engine, work / "archive", archive.parse_month(m["month"]))
        print(f"re-import of {len(months)} months: {time.monotonic() - started:.1f} s")
        restored = fingerprint(engine)
        compared = list(archive.TABLES_BY_NAME) + ["export_lines"]
        differ = [name for name in compared if restored[name] != before[name]]
        for name in compared:
            print(f"  {name:<14} rows {before[name][0]:>10,} -> {restored[name][0]:>10,}  "
                  f"sha256 {before[name][1]} -> {restored[name][1]}")
        print(f"after re-import, counts and checksums equal the original's: {'yes' if not differ else differ}")
        counts_equal = not differ
        engine.dispose()

        # The file alone: the same archive by the command on another copy, nothing posted meanwhile.
        quiet = str(work / "quiet.db")
        shutil.copy(args.db, quiet)
        command.main(["--db", quiet, "vacuum"])
        size = os.path.getsize(quiet)
        started = time.monotonic()
        command.main(["--db", quiet, "--dir", str(work / "quiet-archive"), "run", "--days", str(args.days)])
        print(f"the command alone: {time.monotonic() - started:.1f} s; file {size / 1e6:.0f} MB -> "
              f"{os.path.getsize(quiet) / 1e6:.0f} MB ({(1 - os.path.getsize(quiet) / size) * 100:.0f} % smaller)")
        engine = make_engine(quiet)
        engine.dispose()
        return 0 if kept == len(sent) and not changed and charts_before == charts_after and counts_equal else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
