"""`python -m store.archive`: archive now, list the archived months, put one back, or vacuum a SQLite store."""
import argparse
import os
import sys
import time

from store.archive import archive, location, months, parse_month, restore
from store.engine import make_engine, vacuum
from store.migrate import upgrade


def _table(months_: list[dict]) -> str:
    lines = [f"{'month':<8} {'batches':>7} {'runs':>9} {'jobs':>9} {'steps':>10} {'deliveries':>10} {'MB':>8}"]
    for m in months_:
        rows = m["rows"]
        lines.append(f"{m['month']:<8} {m['parts']:>7} {rows.get('workflowruns', 0):>9,} {rows.get('jobs', 0):>9,} "
                     f"{rows.get('steps', 0):>10,} {rows.get('deliveries', 0):>10,} {m['bytes'] / 1e6:>8.1f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m store.archive",
        description="Move old runs, jobs, steps and deliveries out of the store into monthly Parquet files, list "
                    "the archives, or put a month back. The server may keep running: each batch is one short "
                    "transaction.")
    p.add_argument("--db", default=os.environ.get("DATABASE_PATH", "data/builds.db"),
                   help="the store (default: $DATABASE_PATH, else data/builds.db)")
    p.add_argument("--dir", default=os.environ.get("ARCHIVE_DIR", ""),
                   help="the archive directory (default: $ARCHIVE_DIR, else `archive` beside a SQLite store)")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="archive what is older than --days (whole UTC days)")
    run.add_argument("--days", type=float, required=True)
    run.add_argument("--pause", type=float, default=0.0, help="seconds between batches (default 0)")
    sub.add_parser("list", help="the archived months")
    back = sub.add_parser("restore", help="put an archived month (YYYY-MM) back into the store")
    back.add_argument("month")
    sub.add_parser("vacuum", help="rewrite a SQLite store so its file shrinks now and with each archive after "
                                  "(locks the store; minutes for millions of runs)")
    args = p.parse_args(argv)
    engine = make_engine(args.db)
    upgrade(engine)
    root = location(args.db, args.dir)
    try:
        if args.command == "run":
            if args.days < 1:
                p.error("--days must be at least 1")
            started = time.monotonic()
            parts = archive(engine, root, args.days, pause=args.pause)
            rows = sum(sum(part.counts.values()) for part in parts)
            print(f"archived {len(parts)} batches, {rows:,} rows, in {time.monotonic() - started:.1f} s into {root}")
        elif args.command == "restore":
            restored = restore(engine, root, parse_month(args.month))
            print("restored " + ", ".join(f"{name} {n:,}" for name, n in restored.items()))
        elif args.command == "vacuum":
            print("vacuumed" if vacuum(engine) else "nothing to do: not a SQLite store")
        with engine.connect() as conn:
            found = months(conn)
        print(_table(found) if found else "no archives")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    return 0
