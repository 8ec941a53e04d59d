"""Create or upgrade the build database, and fill it: from GitHub's REST API, or with demo data.

    python init_db.py -db data/builds.db -r owner/repo -k TOKEN      # incremental backfill
    python init_db.py -db data/builds.db -r owner/repo -k TOKEN -i --yes   # start over
    python init_db.py -db data/builds.db --demo                      # synthetic history
"""
import argparse
import os
import sys
import time
from datetime import datetime, timezone

INIT_HELP = (
    "re-initialise: delete the SQLite database file (and its -wal/-shm) and create it anew. "
    "Asks for confirmation on a terminal; without a terminal it needs --yes, unless the file "
    "does not exist yet or is empty (0 bytes). Not available for non-SQLite URLs."
)
DESCRIPTION = (
    "Create or upgrade the build database (never dropping data), then optionally fill it. "
    "A backfill (-r) is incremental: it starts at the newest stored run minus an hour, skips runs "
    "already stored complete, and continues where an interrupted run stopped. Runs created before "
    "that point (e.g. during webhook downtime, or re-runs of old runs) are fetched with --since."
)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="init_db.py", description=DESCRIPTION)
    p.add_argument("-db", "--db", dest="db", default=os.environ.get("DATABASE_PATH", "data/builds.db"),
                   help="database file or SQLAlchemy URL (default: $DATABASE_PATH or data/builds.db)")
    p.add_argument("-i", "--init", action="store_true", help=INIT_HELP)
    p.add_argument("-y", "--yes", action="store_true", help="confirm --init without asking")
    p.add_argument("-r", "--repo", dest="repos", action="append", default=[], metavar="OWNER/REPO",
                   help="repository to backfill from the REST API (repeatable)")
    p.add_argument("-k", "--token", default=os.environ.get("GITHUB_TOKEN"),
                   help="GitHub token (default: $GITHUB_TOKEN; without one GitHub allows 60 requests/hour)")
    p.add_argument("--api-url", default=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
                   help="REST API base URL, e.g. https://HOST/api/v3 for GitHub Enterprise "
                        "(default: $GITHUB_API_URL or https://api.github.com)")
    p.add_argument("--since", type=parse_date, metavar="DATE",
                   help="backfill runs (and commits) created on or after this ISO date or time, "
                        "even when newer ones are stored; with --reconcile: repair runs not updated since")
    p.add_argument("--max-runs", type=int, metavar="N",
                   help="stop after fetching N runs (oldest first); run again to continue")
    p.add_argument("--batch", type=int, default=20, metavar="N",
                   help="runs written per transaction: an interruption loses at most this many (default 20)")
    p.add_argument("--retries", type=int, default=3, help="retries of a failing request (default 3)")
    p.add_argument("--demo", action="store_true", help="fill the database with synthetic demo history")
    p.add_argument("--seed", type=int, default=1, help="random seed for --demo (default 1)")
    p.add_argument("--replay", action="store_true",
                   help="re-apply the webhook deliveries logged as failed, and print the counts")
    p.add_argument("--reconcile", action="store_true",
                   help="re-fetch runs stored as still active whose last update is older than "
                        "--stale-hours (or --since), and store what GitHub says now")
    p.add_argument("--stale-hours", type=float, default=24.0, help="see --reconcile (default 24)")
    p.add_argument("--no-logs", dest="logs", action="store_false",
                   help="do not fetch the failed jobs' logs and annotations after the backfill (by default, with "
                        "a token, each repository's failed jobs waiting for them are fetched into failure lines)")
    p.add_argument("--send-alerts", action="store_true",
                   help="with ALERTS_CONFIG set: send the alerts the backfilled history holds (by default they are "
                        "recorded, not sent: history pages no one)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show a progress bar on stderr (default: when stderr is a terminal)")
    args = p.parse_args(argv)
    if args.max_runs is not None and args.max_runs < 0:
        p.error("--max-runs must be >= 0")
    if args.batch < 1:
        p.error("--batch must be >= 1")
    return args


def parse_date(text: str) -> float:
    """An ISO date or date-time (UTC unless an offset is given) as epoch seconds."""
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO date: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.timestamp()


def sqlite_file(location: str) -> str | None:
    """The file behind `location`, when it is SQLite; None for other databases."""
    if "://" not in location:
        return os.path.abspath(location)
    if location.startswith("sqlite:///") and location != "sqlite:///:memory:":
        return location[len("sqlite:///"):] or None
    return None


def reinitialise(location: str, yes: bool) -> bool:
    """Delete the database file after a warning and confirmation; False when refused."""
    path = sqlite_file(location)
    if path is None:
        print(f"--init only deletes SQLite files; drop the database behind {location} yourself.", file=sys.stderr)
        return False
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        confirmed = True  # nothing to lose
    else:
        print(f"WARNING: --init deletes {path} (and {path}-wal, {path}-shm) with all its data.", file=sys.stderr)
        if yes:
            confirmed = True
        elif sys.stdin.isatty():
            confirmed = input(f"Delete {path} and start over? [y/N] ").strip().lower() in ("y", "yes")
        else:
            print("Refusing without --yes (stdin is not a terminal).", file=sys.stderr)
            confirmed = False
    if confirmed:
        for suffix in ("", "-wal", "-shm", "-journal"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
    return confirmed


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.init and not reinitialise(args.db, args.yes):
        return 2
    from store.engine import make_engine, writer_options
    from store.migrate import upgrade

    engine = make_engine(args.db)
    upgrade(engine)
    print(f"database ready: {args.db}")
    if args.demo:
        from ingest.demo import populate  # written separately; only needed here

        counts = populate(engine, seed=args.seed)
        print("demo data:", " ".join(f"{k}={v}" for k, v in counts.items()))
    if args.replay:
        from ingest.delivery import replay
        from store import derived

        # Replayed deliveries are news that failed to land: their alerts are decided, and sent by the server.
        decider = alert_decider(quiet=False)
        with engine.execution_options(**writer_options()).begin() as conn, \
                derived.after_flush(conn, decider and decider.after_flush):
            counts = replay(conn)
        print("replayed deliveries:", " ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "none failed")
    if args.repos or args.reconcile:
        return github(engine, args)
    return 0


def github(engine, args) -> int:
    """The REST part: backfill each repository, then reconcile."""
    from ingest.backfill import Backfill, Stats
    from ingest.restclient import ApiError, Client

    if not args.token:
        print("warning: no GitHub token (-k or GITHUB_TOKEN): 60 requests/hour, public repositories only",
              file=sys.stderr)
    client = Client(args.api_url, args.token, retries=args.retries)
    decider = alert_decider(quiet=not args.send_alerts)
    logs = log_fetcher(engine, args, decider)
    backfill = Backfill(engine, client, batch=args.batch, progress=args.progress, logs=logs, decider=decider)
    total = Stats()
    try:
        for repo in args.repos:
            left = None if args.max_runs is None else max(0, args.max_runs - total.runs)
            stats = backfill.repo(repo, since=args.since, max_runs=left)
            total.add(stats)
            print(f"{repo}: {stats.summary()}")
        if args.reconcile:
            cutoff = args.since if args.since is not None else time.time() - args.stale_hours * 3600
            stats = backfill.reconcile(cutoff, args.repos or None)
            print(f"reconciled: {stats.summary()}")
    except ApiError as exc:
        print(f"backfill stopped: {exc}\nWhat was written is kept; run the same command again to continue.",
              file=sys.stderr)
        return 1
    finally:
        client.close()
        if logs is not None:
            logs.stop()
        print(f"GitHub requests: {client.requests}" + (f", waited {client.waited:.0f} s on rate limits"
                                                       if client.waited else ""))
    return 0


def alert_decider(*, quiet: bool):
    """The alerts of ALERTS_CONFIG decided as this command writes (None without it): `quiet` records
    them without sending; the server's sender delivers the rest."""
    path = os.environ.get("ALERTS_CONFIG", "").strip()
    if not path:
        return None
    from alerts.config import ConfigError, load
    from alerts.decide import Decider

    try:
        config = load(path, github_token=os.environ.get("GITHUB_TOKEN", ""),
                      github_api_url=os.environ.get("GITHUB_API_URL", ""))
    except ConfigError as exc:
        sys.exit(f"alerts: {exc}")
    return Decider(config, quiet=quiet, stale_hours=float(os.environ.get("STALE_HOURS") or 24),
                   dashboard_url=f"http://{os.environ.get('HOST') or '127.0.0.1'}:{os.environ.get('PORT') or 8050}")


def log_fetcher(engine, args, decider=None):
    """The fetcher of failed jobs' logs for the backfill (ingest/joblogs.py), with the server's settings
    (FAILURE_RULES, LOG_MAX_BYTES, LOG_READ_SECONDS, LOG_FETCH_TRIES); None with --no-logs, LOG_FETCH=off
    or no token."""
    if not args.logs or os.environ.get("LOG_FETCH", "").strip().lower() == "off":
        return None
    if not args.token:
        print("failure lines need a token: the failed jobs' logs are not fetched", file=sys.stderr)
        return None
    from failures.rules import RulesError, load
    from ingest import joblogs

    try:
        rules = load(os.environ.get("FAILURE_RULES") or None)
    except RulesError as exc:
        sys.exit(f"failure rules: {exc}")
    env = os.environ.get
    return joblogs.Fetcher(engine, token=args.token, api_url=args.api_url, rules=rules,
                           max_bytes=int(env("LOG_MAX_BYTES") or joblogs.DEFAULT_MAX_BYTES),
                           read_seconds=float(env("LOG_READ_SECONDS") or joblogs.DEFAULT_READ_SECONDS),
                           tries=int(env("LOG_FETCH_TRIES") or joblogs.DEFAULT_TRIES),
                           decide=decider.job if decider is not None else None)


if __name__ == "__main__":
    sys.exit(main())
