"""Backfills and reconciles started from the Admin page (or `POST /api/backfills`, `POST /api/reconcile`): one
thread each, in the process that was asked, writing as `init_db.py -r` and `--reconcile` do (`ingest.backfill`), its progress kept in the store (`store/adminjobs.py`)
so the page shows it from any process, and a live bump after each batch so open pages show the runs.

A process that stops mid-way leaves its job `running` until it is shown as interrupted; what was written is
kept, and a new backfill of the repository goes on from there (the backfill resumes from what is stored).
"""
import logging
import re
import threading
import time
from dataclasses import asdict

from dashapp.security import audit, identity
from store import adminjobs
from store.engine import writing

log = logging.getLogger(__name__)
REPO = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,38}/[A-Za-z0-9._-]{1,100}")  # GitHub's owner/name
BUMP_EVERY = 2.0  # seconds between live bumps (each makes every open page read again)
MAX_DAYS = 3650
EVERY_REPO = "all repositories"  # a reconcile's target when it looks at every repository


class Refused(ValueError):
    """Why a backfill cannot start (the caller answers it: 400 or 409)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def start(services, repo: str | None, *, days: float | None = None, kind: str = "backfill",
          origin: str = "api") -> int:
    """Start backfilling `repo` (the last `days`, or from where the store stops), or with `kind="reconcile"`
    re-fetching its runs (every repository's, `repo` None) stored as active for over STALE_HOURS; the job's
    id.  The job is written to the audit log as this request's identity's, in the transaction that makes it."""
    target = f"repo:{repo or '*'}"
    if kind == "reconcile" and repo is None:
        repo = EVERY_REPO
    elif not isinstance(repo, str) or not REPO.fullmatch(repo):
        raise Refused("repo: a repository as owner/name")
    if days is not None and not 0 < days <= MAX_DAYS:
        raise Refused(f"days: more than 0 and at most {MAX_DAYS}")
    config = services.config
    if not config.github_token:
        raise Refused(f"a {kind} reads GitHub's REST API: set GITHUB_TOKEN", 409)
    with writing(services.engine) as conn:
        if adminjobs.running(conn, kind, repo):
            raise Refused(f"a {kind} of {repo} is running already", 409)
        job_id = adminjobs.start(conn, kind=kind, target=repo, actor=identity().actor)
        audit(conn, f"{kind}.start", target, {"days": days, "job": job_id, "from": origin})
    since = None if days is None else time.time() - days * 86400
    threading.Thread(target=_run, args=(services, job_id, kind, repo, since), name=f"{kind}-{job_id}",
                     daemon=True).start()
    return job_id


def _run(services, job_id: int, kind: str, repo: str, since: float | None) -> None:
    from ingest.backfill import Backfill
    from ingest.restclient import Client

    config = services.config
    client = Client(config.github_api_url, config.github_token)
    last_bump, seen = [0.0], {}

    def on_batch(stats) -> None:
        seen.update(asdict(stats))
        with writing(services.engine) as conn:
            adminjobs.report(conn, job_id, seen)
        if time.monotonic() - last_bump[0] >= BUMP_EVERY:
            last_bump[0] = time.monotonic()
            services.broadcast([{"type": "admin"}])

    decider = None
    if services.alerts is not None:  # breaks in the history are recorded quietly: no later decision takes them for news
        from alerts.decide import Decider

        decider = Decider(services.alerts, quiet=True, stale_hours=config.stale_hours)
    try:
        backfill = Backfill(services.engine, client, progress=False, on_batch=on_batch, decider=decider)
        if kind == "reconcile":
            stats = backfill.reconcile(time.time() - config.stale_hours * 3600,
                                       None if repo == EVERY_REPO else [repo])
        else:
            stats = backfill.repo(repo, since=since)
        state, error, progress = "done", None, asdict(stats)
    except Exception as exc:  # GitHub refused, the store is down: the job says so, what was written stays
        log.warning("%s %s of %s stopped: %s", kind, job_id, repo, exc)
        state, error, progress = "failed", f"{type(exc).__name__}: {str(exc)[:300]}", seen
    finally:
        client.close()
    with writing(services.engine) as conn:
        adminjobs.report(conn, job_id, progress, state=state, error=error)
    services.broadcast([{"type": "admin"}])
