"""Deciding alerts: from the store's state to breaks and outbox messages, in the writing transaction.

A *cell* is one workflow on one commit of a watched branch: its newest run's latest attempt (as in
`store/derived/streaks.py`).  Walking a pair's newest cells in commit order, a failed cell is *red*,
a successful one *green*; a cancelled cell, an unfinished one, and a failed one whose every failed job
has a verdict the rule ignores (FLAKY, INFRA) are skipped.  An *episode* is a run of red cells with no
green between them, *closed* by the green cell after it; it is a break once it holds the rule's
`consecutive` red commits (or has been red `red_hours`).

Decisions are made from state, not from the order events arrived in: every decision re-reads the
pair's newest cells and matches their episodes with the breaks already recorded (an episode and a
break are the same when their red commits overlap).  An episode with no break opens one and queues
its `break` messages; a break whose episode has closed is closed and queues `recovery`.  So the same
deliveries in any order, with any duplicates, decide the same breaks, and the outbox's unique
(break, channel, kind) means a message is decided once.  An episode found already closed (its
green commit arrived first) is news while its fix is under a day old: both messages are queued.

While a failed job's failure lines are still being fetched (for at most `hold` seconds), its cell
*waits*: a decision that needs it is put off, so a flaky or infrastructure failure is known as such
before anyone is paged.  The fetcher's save, and a sweep every few seconds, decide again.

`quiet` decisions (a backfill's history, what the store held before the rule existed) record breaks
and messages as `quiet`: shown, never sent.
"""
import logging
import time

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from alerts.config import AlertConfig, Rule
from alerts.episodes import GREEN, RED, SKIP, WAIT, Cell, Episode, episodes, matches
from alerts.message import Builder
from domain.state import ACTIVE_STATUSES, FAILED
from store import alerts as store
from store.prepared import literals, savepoint
from store.queries.failures import run_failures
from store.schema import branches, commits, job_logs, jobs, repos, rollup_streaks, workflowruns, workflows

log = logging.getLogger("alerts.decide")
WINDOW = 60  # a pair's newest runs read per decision
HORIZON = 24 * 3600.0  # an episode already closed when first seen is news while its fix is this recent
OPERATOR = "operator"  # the rule name of the operator's alerts

w = workflowruns.c


class Decider:
    """Decides the alerts of `config` on a connection inside a write transaction."""

    def __init__(self, config: AlertConfig, *, quiet: bool = False, hold: float = 0.0, stale_hours: float = 24.0,
                 dashboard_url: str = ""):
        self.config, self.quiet, self.hold, self.stale_hours = config, quiet, hold, stale_hours
        self.dashboard_url = config.dashboard_url or dashboard_url
        self.decided = 0  # messages queued by this decider (the caller publishes a live message when it grows)

    # --- entry points -----------------------------------------------------------------------------

    def after_flush(self, conn: Connection, keys) -> None:
        """`store.derived.flush`'s hook: decide the (workflow, branch) pairs the flushed write touched."""
        self.safely(conn, lambda: self.pairs(conn, {(int(key[1]), int(key[2])) for key in keys if key[0] == "pair"}))

    def job(self, conn: Connection, job: int) -> bool:
        """The fetcher's hook, after a failed job's capture ended (lines saved, or none to be had): decide
        its pair again, since a decision may have been held for it.  True when anything was decided."""
        before = self.decided
        pair = conn.execute(select(w.workflow, w.branch).select_from(jobs.join(workflowruns, w.gitid == jobs.c.run_gitid))
                            .where(jobs.c.gitid == job)).first()
        if pair is not None:
            self.safely(conn, lambda: self.pairs(conn, {tuple(pair)}))
        return self.decided != before

    def safely(self, conn: Connection, work) -> None:
        """Run `work` in a savepoint: a failing decision is logged and undone, never the write it follows
        (decisions are made from state, so the next one about the pair makes up for it)."""
        before = self.decided
        try:
            with savepoint(conn, "alerts"):
                work()
        except Exception:
            self.decided = before
            log.exception("alerts: a decision failed; the write it followed is kept")

    def pairs(self, conn: Connection, pairs, now: float | None = None) -> None:
        """Decide every rule's red breaks on the (workflow id, branch id) `pairs`."""
        if not pairs or not self.config.rules:
            return
        now = time.time() if now is None else now
        for (wf, br), names in _names(conn, pairs).items():
            for rule in self.config.rules:
                if matches(rule, *names):
                    self._red(conn, rule, wf, br, now)

    def sweep(self, conn: Connection, *, now: float | None = None, lag: float | None = None) -> None:
        """What time alone decides: held decisions whose failure lines came or whose hold ran out,
        reminders, red-for-hours breaks, stale runs and the operator's figures."""
        now = time.time() if now is None else now
        pairs = set()
        if self.hold:
            pairs |= _held_pairs(conn, now - self.hold - 600)
        if any(rule.red_hours for rule in self.config.rules):
            least = min(rule.red_hours for rule in self.config.rules if rule.red_hours)
            pairs |= {tuple(r) for r in conn.execute(select(rollup_streaks.c.workflow, rollup_streaks.c.branch)
                                                     .where(rollup_streaks.c.streak > 0,
                                                            rollup_streaks.c.red_since <= now - least * 3600))}
        pairs |= {(row["workflow"], row["branch"]) for row in store.open_breaks(conn, kinds=("red",))}
        self.pairs(conn, pairs, now)
        if any(rule.stale for rule in self.config.rules):
            self._stale(conn, now)
        if self.config.operator is not None:
            self._operator(conn, now, lag)

    def baseline(self, conn: Connection, now: float | None = None) -> None:
        """Record, quietly, the episodes the store holds that no decision saw (written before a rule
        existed, or by a writer that decides nothing): the pairs red now or failed in the last day."""
        now = time.time() if now is None else now
        pairs = {tuple(r) for r in conn.execute(select(rollup_streaks.c.workflow, rollup_streaks.c.branch)
                                                .where(rollup_streaks.c.streak > 0))}
        pairs |= {tuple(r) for r in conn.execute(
            select(w.workflow, w.branch).where(w.status == "completed", w.conclusion.in_(FAILED),
                                               w.createtime >= now - HORIZON).distinct())}
        # A decider of its own: the fetcher's thread may decide with this one meanwhile, loudly.
        quiet = Decider(self.config, quiet=True, hold=self.hold, stale_hours=self.stale_hours,
                        dashboard_url=self.dashboard_url)
        quiet.pairs(conn, pairs, now)
        self.decided += quiet.decided

    # --- red breaks -------------------------------------------------------------------------------

    def _red(self, conn: Connection, rule: Rule, wf: int, br: int, now: float) -> None:
        cells, complete = _cells(conn, wf, br)
        self._classify(conn, rule, cells, now)
        found = episodes(cells, complete)
        subject = f"{wf}:{br}"
        stored = [s for s in store.breaks_of(conn, rule.name, subject) if s["kind"] == "red"]
        if not found and not any(s["state"] == store.OPEN for s in stored):
            return
        used = set()
        for episode in found:
            match = next((s for s in stored if s["id"] not in used and episode.overlaps(s)), None)
            if match is not None:
                used.add(match["id"])
                self._follow(conn, rule, wf, br, match, episode, now)
            else:
                self._open(conn, rule, wf, br, episode, now)
        for gone in (s for s in stored if s["state"] == store.OPEN and s["id"] not in used):
            # Its red commits are red no more (re-run green, or found flaky): green now is a recovery.
            newest = next((cell for cell in reversed(cells) if cell.state != SKIP), None)
            if newest is not None and newest.state == GREEN:
                self._recover(conn, rule, wf, br, gone, Episode(), newest, now)

    def _open(self, conn, rule: Rule, wf: int, br: int, episode: Episode, now: float) -> None:
        reds = episode.reds
        if episode.fixer is None:
            long_red = rule.red_hours is not None and now - episode.cells[0].created >= rule.red_hours * 3600
            if reds < rule.consecutive and not (long_red and not episode.waiting):
                return  # not (yet) a break; a waiting cell may make it one when its lines come
        elif reds < rule.consecutive or episode.truncated or now - episode.fixer.created > HORIZON:
            return  # closed: a short episode, the tail of an older one, or old news
        first, last = episode.cells[0], episode.cells[-1]
        values = dict(repo=None, workflow=wf, branch=br, red_since=first.created, first_bad=first.commit,
                      last_bad=last.commit, last_green=episode.last_green.commit if episode.last_green else None,
                      red_count=len(episode.cells))
        break_id = store.open_break(conn, rule=rule.name, kind="red", subject=f"{wf}:{br}", now=now,
                                    quiet=self.quiet, **values)
        builder = Builder(conn, self.config, self.dashboard_url, now)
        body = builder.red("break", rule.name, break_id=break_id, workflow=wf, branch=br, episode=episode)
        store.update_break(conn, break_id, repo=body["repo"])
        self._queue(conn, rule, break_id, "break", body, now, self.quiet)
        log.info("alert: %s %s: break %d opened (%d red commits)%s", rule.name, body["title"], break_id,
                 len(episode.cells), " quietly" if self.quiet else "")
        if episode.fixer is not None:
            found = {"id": break_id, "quiet": int(self.quiet), "red_since": first.created}
            self._recover(conn, rule, wf, br, found, episode, episode.fixer, now)

    def _follow(self, conn, rule: Rule, wf: int, br: int, found: dict, episode: Episode, now: float) -> None:
        first, last = episode.cells[0], episode.cells[-1]
        changed = {}
        if first.pos < found["first_pos"]:  # an older red commit arrived late: the break began earlier
            changed.update(first_bad=first.commit, red_since=first.created,
                           last_green=episode.last_green.commit if episode.last_green else None)
        if last.pos > found["last_pos"]:
            changed["last_bad"] = last.commit
        if changed or len(episode.cells) > (found["red_count"] or 0):  # the most red commits it has had
            store.update_break(conn, found["id"], red_count=max(len(episode.cells), found["red_count"] or 0),
                               **changed)
        if "first_bad" in changed:
            # Messages not yet tried say what is now known: the first bad commit and blame list.
            builder = Builder(conn, self.config, self.dashboard_url, now)
            store.refresh_unsent(conn, found["id"], "break", builder.red(
                "break", rule.name, break_id=found["id"], workflow=wf, branch=br, episode=episode))
            if episode.fixer is not None:
                store.refresh_unsent(conn, found["id"], "recovery", builder.red(
                    "recovery", rule.name, break_id=found["id"], workflow=wf, branch=br, episode=episode,
                    fixer=episode.fixer))
        if found["state"] != store.OPEN:
            return
        if episode.fixer is not None:
            self._recover(conn, rule, wf, br, found, episode, episode.fixer, now)
        elif rule.red_hours is not None and now - (found["red_since"] or now) >= rule.red_hours * 3600 \
                and not store.decided(conn, found["id"], "reminder"):
            body = Builder(conn, self.config, self.dashboard_url, now).red(
                "reminder", rule.name, break_id=found["id"], workflow=wf, branch=br, episode=episode,
                red_since=found["red_since"])
            self._queue(conn, rule, found["id"], "reminder", body, now, self.quiet or bool(found["quiet"]))

    def _recover(self, conn, rule: Rule, wf: int, br: int, found: dict, episode: Episode, fixer: Cell,
                 now: float) -> None:
        # Closed when the fixing run began (the history's "red for"), not when this decision learned of it.
        store.close_break(conn, found["id"], when=fixer.created, fixed_by=fixer.commit)
        body = Builder(conn, self.config, self.dashboard_url, now).red(
            "recovery", rule.name, break_id=found["id"], workflow=wf, branch=br, episode=episode, fixer=fixer,
            red_since=found["red_since"], recorded=found)
        self._queue(conn, rule, found["id"], "recovery", body, now, self.quiet or bool(found["quiet"]))
        log.info("alert: %s %s: break %d closed", rule.name, body["title"], found["id"])

    def _queue(self, conn, rule: Rule, break_id: int, kind: str, body: dict, now: float, quiet: bool,
               channels=None) -> None:
        self.decided += store.queue(conn, break_id=break_id, rule=rule.name if rule else OPERATOR,
                                    channels=channels or rule.channels, kind=kind, body=body, now=now, quiet=quiet)

    def _classify(self, conn: Connection, rule: Rule, cells: list[Cell], now: float) -> None:
        """Skip the failed cells whose every failed job has an ignored verdict; hold those whose lines
        are still being fetched (for at most `hold` seconds from when the job was queued)."""
        if not rule.ignore_verdicts:
            return
        # Only cells a decision can turn on: the last day's (older episodes are history) and the
        # newest red stretch, however old (an open break's beginning).  Verdicts cost reads.
        open_from = len(cells)
        while open_from and cells[open_from - 1].state != GREEN:
            open_from -= 1
        failed = [cell for i, cell in enumerate(cells)
                  if cell.state == RED and (i >= open_from or cell.created >= now - HORIZON)]
        if not failed:
            return
        found = run_failures(conn, [cell.gitid for cell in failed])
        pending = _pending_since(conn, [job["job"] for cell in failed for job in found.get(cell.gitid, ())
                                        if job["capture"] == "pending"]) if self.hold else {}
        for cell in failed:
            failed_jobs = found.get(cell.gitid) or []
            if not failed_jobs:
                continue  # no job known (a workflow_run-only setup): every failure counts
            if any(now - pending.get(job["job"], -1e18) < self.hold for job in failed_jobs):
                cell.state = WAIT
            elif all(job["verdict"] and job["verdict"]["kind"] in rule.ignore_verdicts for job in failed_jobs):
                cell.state = SKIP

    # --- stale runs and the operator's figures --------------------------------------------------------

    def _stale(self, conn: Connection, now: float) -> None:
        cutoff = now - self.stale_hours * 3600
        runs = [dict(row._mapping) for row in conn.execute(
            select(w.gitid, w.repo, w.workflow.label("workflow_id"), w.branch.label("branch_id"), w.status, w.url,
                   w.updatetime, workflows.c.name.label("workflow"), branches.c.name.label("branch"),
                   repos.c.default_branch)
            .select_from(workflowruns.join(workflows, workflows.c.id == w.workflow)
                         .join(branches, branches.c.id == w.branch).outerjoin(repos, repos.c.name == w.repo))
            .where(w.status.in_(literals(ACTIVE_STATUSES)), w.updatetime < cutoff, w.updatetime >= cutoff - 7 * 86400))]
        stuck = set()
        for run in runs:
            for rule in self.config.rules:
                if not rule.stale or not matches(rule, run["repo"], run["workflow"], run["branch"],
                                                 run["default_branch"]):
                    continue
                subject = f"run:{run['gitid']}"
                stuck.add((rule.name, subject))
                if store.breaks_of(conn, rule.name, subject, limit=1):
                    continue  # told once per run
                break_id = store.open_break(conn, rule=rule.name, kind="stale", subject=subject, now=now,
                                            quiet=self.quiet, repo=run["repo"], workflow=run["workflow_id"],
                                            branch=run["branch_id"], red_since=run["updatetime"])
                body = Builder(conn, self.config, self.dashboard_url, now).stale(
                    rule.name, break_id=break_id, run=run, hours=self.stale_hours)
                self._queue(conn, rule, break_id, "break", body, now, self.quiet)
        for found in store.open_breaks(conn, kinds=("stale",)):
            if (found["rule"], found["subject"]) not in stuck:
                store.close_break(conn, found["id"], when=now)  # it moved on: no message

    def _operator(self, conn: Connection, now: float, lag: float | None) -> None:
        operator = self.config.operator
        figures = []
        if operator.max_lag_seconds is not None and lag is not None:
            figures.append(("lag", lag, operator.max_lag_seconds))
        if operator.max_failed_deliveries is not None:
            figures.append(("failed_deliveries", store.failed_deliveries(conn), operator.max_failed_deliveries))
        opened = {found["subject"]: found for found in store.open_breaks(conn, kinds=("lag", "failed_deliveries"))}
        builder = Builder(conn, self.config, self.dashboard_url, now)
        for name, value, threshold in figures:
            current = opened.get(name)
            if value > threshold and current is None:
                break_id = store.open_break(conn, rule=OPERATOR, kind=name, subject=name, now=now, quiet=False,
                                            red_since=now, detail={"value": value, "threshold": threshold})
                body = builder.figure("break", name, break_id=break_id, value=value, threshold=threshold)
                self._queue(conn, None, break_id, "break", body, now, False, operator.channels)
            elif value <= threshold and current is not None:
                store.close_break(conn, current["id"], when=now)
                body = builder.figure("recovery", name, break_id=current["id"], value=value, threshold=threshold)
                self._queue(conn, None, current["id"], "recovery", body, now, bool(current["quiet"]),
                            operator.channels)


def _names(conn: Connection, pairs) -> dict[tuple[int, int], tuple]:
    """{(workflow id, branch id): (repo, workflow name, branch name, the repository's default branch)}."""
    out = {}
    pairs = sorted(pairs)
    for i in range(0, len(pairs), 400):
        chunk = pairs[i:i + 400]
        rows = conn.execute(
            select(workflows.c.id, branches.c.id, workflows.c.repo, workflows.c.name, branches.c.name,
                   repos.c.default_branch)
            .select_from(workflows.join(branches, and_(branches.c.repo == workflows.c.repo,
                                                       branches.c.id.in_(sorted({b for _, b in chunk}))))
                         .outerjoin(repos, repos.c.name == workflows.c.repo))
            .where(workflows.c.id.in_(sorted({wf for wf, _ in chunk})))).all()
        wanted = set(chunk)
        out.update({(row[0], row[1]): tuple(row[2:]) for row in rows if (row[0], row[1]) in wanted})
    return out


_CELLS = (select(w.commitid, commits.c.hash, commits.c.time, w.id, w.gitid, w.run_attempt, w.createtime, w.status,
                 w.conclusion, w.url)
          .join(commits, commits.c.id == w.commitid))


def _cells(conn: Connection, wf: int, br: int) -> tuple[list[Cell], bool]:
    """The pair's cells among its newest WINDOW runs, oldest first, classified red/green/skip; and
    whether those runs are all it has."""
    rows = conn.execute(_CELLS.where(w.workflow == wf, w.branch == br)
                        .order_by(w.createtime.desc(), w.gitid.desc()).limit(WINDOW)).all()
    seen, cells = set(), []
    for commit, sha, ctime, run, gitid, attempt, created, status, conclusion, url in rows:
        if commit in seen:
            continue  # a commit's cell is its newest run
        seen.add(commit)
        if status != "completed":
            continue
        state = GREEN if conclusion == "success" else RED if conclusion in FAILED else SKIP
        cells.append(Cell(commit, sha, ctime, run, gitid, attempt or 1, created, conclusion, url, state))
    cells.sort(key=lambda cell: cell.pos)
    return cells, len(rows) < WINDOW


def _pending_since(conn: Connection, job_ids) -> dict[int, float]:
    """When each of `job_ids` still waiting for its log was queued."""
    ids = sorted(set(job_ids))
    if not ids:
        return {}
    return dict(conn.execute(select(job_logs.c.job, job_logs.c.queued)
                             .where(job_logs.c.job.in_(ids), job_logs.c.state == "pending")).all())


def _held_pairs(conn: Connection, since: float) -> set[tuple[int, int]]:
    """The pairs of failed jobs queued for their logs since `since` (decisions that may be held)."""
    rows = conn.execute(
        select(w.workflow, w.branch).distinct()
        .select_from(job_logs.join(jobs, jobs.c.gitid == job_logs.c.job).join(workflowruns, w.gitid == jobs.c.run_gitid))
        .where(job_logs.c.queued >= since)).all()
    return {tuple(row) for row in rows}
