"""Backfill from the GitHub REST API: history the webhook never saw.

Per repository: the repository, its workflows and branches (small
listings, fetched whole), the default branch's commits, then every workflow
run with all its attempts and jobs.  Runs are listed in `created` date
windows (a filtered listing stops at 1,000 results, so a fuller window is
split) and written oldest first, a batch per transaction.  The store then
always holds a prefix of the history, so the next backfill starts from the
newest stored run (minus an overlap) and an interrupted one continues where
it stopped.  Runs already stored completed, with all attempts and jobs (from
an earlier backfill or from webhooks), are not fetched again; re-applying a
report is idempotent anyway (see `store.writer`).  Then, given a log fetcher
(`ingest/joblogs.py`), the repository's failed jobs still waiting for their
logs are fetched into failure lines.
"""
import time
from dataclasses import dataclass, fields

from sqlalchemy import case, func, select
from sqlalchemy.engine import Engine
from tqdm import tqdm

from ingest.parse import PayloadError
from ingest.rest import (
    branch_record,
    commit_record,
    created_at,
    job_records,
    repo_record,
    run_records,
    run_summary,
    workflow_record,
)
from ingest.restclient import ApiError, Client, links, say
from domain.state import ACTIVE_STATUSES
from ingest.times import iso
from store import derived
from store.engine import writer_options
from store.schema import jobs, runattempts, workflowruns
from store.writer import apply

BATCH_RUNS = 20  # runs per transaction: a crash loses at most this much work
LISTING_CAP = 1000  # GitHub returns at most this many results of a filtered listing
OVERLAP = 3600.0  # seconds re-listed before the newest stored run
EARLIEST = 1514764800.0  # 2018-01-01, before GitHub Actions existed: no run is older


@dataclass
class Stats:
    runs: int = 0  # runs fetched and written
    skipped: int = 0  # listed runs already stored complete
    attempts: int = 0
    jobs: int = 0
    commits: int = 0
    branches: int = 0
    workflows: int = 0
    malformed: int = 0  # items GitHub sent in a shape we could not read
    gone: int = 0  # runs to reconcile that GitHub no longer has
    logs: int = 0  # failed jobs whose log (or annotations) became failure lines
    logs_gone: int = 0  # failed jobs whose log GitHub no longer has
    logs_left: int = 0  # failed jobs whose log kept failing: the server's fetcher tries again later
    complete: bool = True  # False when --max-runs stopped the work

    def add(self, other: "Stats") -> None:
        for f in fields(self):
            if f.name != "complete":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
        self.complete = self.complete and other.complete

    def summary(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.name != "complete"]
        return " ".join(parts) + ("" if self.complete else " (stopped at --max-runs; run again to continue)")


class Backfill:
    """Fetch from `client`, write into `engine`."""

    def __init__(self, engine: Engine, client: Client, *, batch: int = BATCH_RUNS, listing_cap: int = LISTING_CAP,
                 overlap: float = OVERLAP, progress: bool | None = None, logs=None, decider=None,
                 on_batch=None):
        self.engine = engine
        # An alerts.decide.Decider (quiet unless asked): the breaks in the history it loads are recorded
        # in the transactions that load them, so no later decision takes them for news.
        self.decider = decider
        self.client = client
        self.logs = logs  # an ingest.joblogs.Fetcher (same API and token), or None: no logs fetched
        self.batch = batch
        self.listing_cap = listing_cap
        self.overlap = overlap
        self.progress = progress  # None: a bar only when stderr is a terminal
        self.on_batch = on_batch  # called with the Stats so far after each batch written (the Admin page's progress)

    # --- writing ------------------------------------------------------------

    def _write(self, items: list) -> None:
        if items:
            with self.engine.execution_options(**writer_options()).begin() as conn:
                with derived.after_flush(conn, self.decider and self.decider.after_flush):
                    apply(conn, items)

    # --- one repository -----------------------------------------------------

    def repo(self, name: str, *, since: float | None = None, max_runs: int | None = None) -> Stats:
        """Backfill `name` (owner/repo) from `since`, or from where the last backfill stopped."""
        stats = Stats()
        repo = repo_record(self.client.get(f"/repos/{name}")[1])
        name = repo.name  # GitHub's spelling, as webhooks carry it
        workflows = self._workflows(name, stats)
        found = [repo, *(workflow_record(w, name) for w in workflows.values())]
        for item in self.client.items(f"/repos/{name}/branches"):
            found.append(self._record(branch_record, item, name, stats))
            stats.branches += 1
        self._write([x for x in found if x])
        lower = since if since is not None else self._cursor(name)
        if lower is None:
            lower = self._oldest_run(name)
            if lower is None:
                return stats  # no runs at all
        lower = max(lower, EARLIEST)
        self._commits(name, lower, stats)
        self._runs(name, lower, workflows, max_runs, stats)
        self._logs(name, stats)
        return stats

    def _logs(self, name: str, stats: Stats) -> None:
        """The failed jobs' logs of `name` not fetched yet (this backfill's, and any webhook stored)."""
        if self.logs is None:
            return
        counts = self.logs.repo(name, progress=self.progress)
        stats.logs += counts.done
        stats.logs_gone += counts.gone
        stats.logs_left += counts.left

    def _record(self, parse, item, repo: str, stats: Stats):
        try:
            return parse(item, repo)
        except (PayloadError, TypeError, ValueError, KeyError) as exc:
            stats.malformed += 1
            say(f"{repo}: skipped an unreadable item: {exc}")
            return None

    def _workflows(self, name: str, stats: Stats) -> dict[int, dict]:
        found = {}
        for workflow in self.client.items(f"/repos/{name}/actions/workflows", "workflows"):
            if isinstance(workflow, dict) and isinstance(workflow.get("id"), int):
                found[workflow["id"]] = workflow
                stats.workflows += 1
        return found

    def _cursor(self, name: str) -> float | None:
        """Where an incremental backfill starts: the newest stored run, minus the overlap."""
        with self.engine.connect() as conn:
            newest = conn.execute(select(func.max(workflowruns.c.createtime)).where(workflowruns.c.repo == name))
            newest = newest.scalar()
        return None if newest is None else newest - self.overlap

    def _oldest_run(self, name: str) -> float | None:
        """The oldest run's created_at: the last page of the unfiltered listing, one run per page."""
        url = f"/repos/{name}/actions/runs"
        headers, page = self.client.get(url, {"per_page": 1})
        last = links(headers.get("link")).get("last")
        if last:
            _headers, page = self.client.get(last)
        runs = page.get("workflow_runs") or []
        return min((created_at(run) for run in runs), default=None)

    def _commits(self, name: str, lower: float, stats: Stats) -> None:
        # Listed newest first; each page is its own transaction.  The cursor
        # comes from runs, written after this, so a crash here refetches.
        params = {"since": iso(lower)}
        for _headers, page in self.client.pages(f"/repos/{name}/commits", params):
            found = [self._record(commit_record, item, name, stats) for item in page or []]
            found = [x for x in found if x]
            self._write(found)
            stats.commits += len(found)

    # --- runs ---------------------------------------------------------------

    def _listed(self, name: str, lo: int, hi: int | None):
        """Runs created in [lo, hi] (hi None: open), oldest first, splitting windows GitHub would cut."""
        created = f">={iso(lo)}" if hi is None else f"{iso(lo)}..{iso(hi)}"
        pages = self.client.pages(f"/repos/{name}/actions/runs", {"created": created})
        _headers, first = next(pages)
        top = int(time.time()) + 1 if hi is None else hi
        if (first.get("total_count") or 0) > self.listing_cap and top - lo > 1:
            pages.close()
            mid = (lo + top) // 2
            yield from self._listed(name, lo, mid)
            yield from self._listed(name, mid + 1, hi)
            return
        runs = {run["id"]: run for run in first.get("workflow_runs") or []}
        for _headers, page in pages:
            runs.update((run["id"], run) for run in page.get("workflow_runs") or [])
        yield from sorted(runs.values(), key=lambda run: (created_at(run), run["id"]))

    def _runs(self, name: str, lower: float, workflows: dict, max_runs: int | None, stats: Stats) -> None:
        pending: list[dict] = []
        bar = tqdm(desc=name, unit="run", leave=False, disable=None if self.progress is None else not self.progress)
        try:
            for run in self._listed(name, int(lower), None):
                pending.append(run)
                if len(pending) >= self.batch:
                    if not self._run_batch(name, pending, workflows, max_runs, stats, bar):
                        return
                    pending = []
            self._run_batch(name, pending, workflows, max_runs, stats, bar)
        finally:
            bar.close()

    def _run_batch(self, name, runs, workflows, max_runs, stats: Stats, bar) -> bool:
        """Fetch and write the runs that need it; False once --max-runs is reached."""
        stored = self._stored(run["id"] for run in runs)
        found = []
        for run in runs:
            bar.update(1)
            if _up_to_date(run, stored.get(run["id"])):
                stats.skipped += 1
                continue
            if max_runs is not None and stats.runs >= max_runs:
                stats.complete = False
                break
            found += self._run_detail(name, run, workflows, stats)
        self._write(found)
        if self.on_batch is not None:
            self.on_batch(stats)
        return stats.complete

    def _run_detail(self, name: str, run: dict, workflows: dict, stats: Stats) -> list:
        """Records of one run: every attempt and every job."""
        run_id, attempt, _status, _updated = run_summary(run)
        base = f"/repos/{name}/actions/runs/{run_id}"
        attempts = [self.client.get(f"{base}/attempts/{n}")[1] for n in range(1, attempt)] + [run]
        job_items = list(self.client.items(f"{base}/jobs", "jobs", {"filter": "all"}))
        try:
            found = []
            for each in attempts:
                found += run_records(each, name, workflows.get(each.get("workflow_id")))
            found += job_records(job_items, name)
        except PayloadError as exc:
            stats.malformed += 1
            say(f"{name}: skipped run {run_id}: {exc}")
            return []
        stats.runs += 1
        stats.attempts += len(attempts)
        stats.jobs += len(job_items)
        return found

    def _stored(self, ids) -> dict[int, tuple]:
        """gitid -> (attempt, status, updatetime, attempts stored, jobs, active jobs)."""
        ids = list(ids)
        if not ids:
            return {}
        with self.engine.connect() as conn:
            runs = conn.execute(
                select(workflowruns.c.gitid, workflowruns.c.run_attempt, workflowruns.c.status,
                       workflowruns.c.updatetime).where(workflowruns.c.gitid.in_(ids))
            ).all()
            attempts = dict(conn.execute(
                select(runattempts.c.gitid, func.count()).where(runattempts.c.gitid.in_(ids))
                .group_by(runattempts.c.gitid)
            ).all())
            job_counts = {
                gitid: (total, active or 0)
                for gitid, total, active in conn.execute(
                    select(jobs.c.run_gitid, func.count(),
                           func.sum(case((jobs.c.status == "completed", 0), else_=1)))
                    .where(jobs.c.run_gitid.in_(ids)).group_by(jobs.c.run_gitid)
                ).all()
            }
        return {
            gitid: (attempt, status, updated, attempts.get(gitid, 0), *job_counts.get(gitid, (0, 0)))
            for gitid, attempt, status, updated in runs
        }

    # --- repairing runs stuck as active -------------------------------------

    def reconcile(self, older_than: float, repos: list[str] | None = None) -> Stats:
        """Re-fetch runs stored as still active whose last update is before `older_than`."""
        stats = Stats()
        query = select(workflowruns.c.repo, workflowruns.c.gitid).where(
            workflowruns.c.status.in_(ACTIVE_STATUSES),
            func.coalesce(workflowruns.c.updatetime, workflowruns.c.createtime, 0) < older_than,
        ).order_by(workflowruns.c.repo, workflowruns.c.createtime)
        if repos:
            query = query.where(func.lower(workflowruns.c.repo).in_([r.lower() for r in repos]))
        with self.engine.connect() as conn:
            stale = conn.execute(query).all()
        by_repo: dict[str, list[int]] = {}
        for repo, gitid in stale:
            by_repo.setdefault(repo, []).append(gitid)
        for repo, ids in by_repo.items():
            workflows = self._workflows(repo, Stats())
            for start in range(0, len(ids), self.batch):
                found = []
                for gitid in ids[start:start + self.batch]:
                    try:
                        run = self.client.get(f"/repos/{repo}/actions/runs/{gitid}")[1]
                    except ApiError as exc:
                        if exc.status not in (404, 410):
                            raise
                        stats.gone += 1
                        say(f"{repo}: run {gitid} is gone from GitHub ({exc.status}); left as stored")
                        continue
                    found += self._run_detail(repo, run, workflows, stats)
                self._write(found)
                if self.on_batch is not None:
                    self.on_batch(stats)
            self._logs(repo, stats)
        return stats


def _up_to_date(run: dict, stored: tuple | None) -> bool:
    """Whether a listed run is already stored completed, with all its attempts and jobs."""
    if stored is None:
        return False
    _id, attempt, status, updated = run_summary(run)
    s_attempt, s_status, s_updated, s_attempts, s_jobs, s_active = stored
    return (
        status == "completed"
        and s_status == "completed"
        and s_attempt == attempt
        and (updated is None or (s_updated is not None and s_updated >= updated))
        and s_attempts >= attempt
        and s_jobs > 0
        and s_active == 0
    )
