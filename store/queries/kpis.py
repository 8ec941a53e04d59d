"""Trunk health: how often the default branch is red, how soon red shows, how long a break lasts.

Over a repository's default branch and a time window (optionally one workflow).  As everywhere
(metrics.md), a *cell* is one workflow on one commit of the branch: its newest run's latest attempt;
X (failure, startup_failure) and T (timed_out) cells are *red*, success cells *green*; a commit is
red if any cell is red, else *pending* if any cell is queued or running.

- A commit is *in the window* when its first run on the branch was created in it.
- **Share of commits red** = red commits ÷ settled commits (in the window, not pending).  Split into
  *flaky* (every failed job of every red cell has the verdict FLAKY, `store.queries.failures.verdicts`)
  and *broken* (every other red commit, including those whose failure lines are not captured yet, which
  have no verdict), over the newest `VERDICT_COMMITS` (200) red commits of the window (`judged`; verdicts
  are decided when read, and a long window holds thousands).  `verdicts` says whether any of their
  failed jobs had a verdict at all; without one, the split means nothing and the strip leaves it out.
- **Time to red signal** of a red commit = the earliest completion of a failed attempt of its red
  cells' runs − the commit's arrival (its first run's creation on the branch; a red cell may be a
  scheduled run hours later, the commit's first red signal then).  The commit's own
  timestamp is not used: it is the author's or committer's clock, hours or days before a rebased
  commit was pushed.  p50/p90 over the red commits in the window.
- **Time to recovery**, per workflow: walking its cells in commit order (cancelled, skipped, neutral
  and unfinished cells skipped), a *break* is `BREAK_COMMITS` (2, the alert rule's default) or more
  red cells with no green between them, and its *recovery* the green cell after it
  (`alerts.episodes`).  Time to recovery = the green cell's run's completion − the completion of the
  first red cell's run's first failed attempt; p50 over the recoveries whose green run was created in
  the window (a break that began before the window is followed back).  Breaks still red now are
  counted as `open_breaks`.  Unlike the alerts, FLAKY and INFRA verdicts do not skip a cell here.
- **Force-pushes** are not known: the store keeps workflow runs and jobs, never push events.

Reads: the runs of the window's commits on the branch (one indexed read), the failed attempts of the
red cells' runs, the red runs' failed jobs with their verdicts, and for a break that began before the
window a few pages of that workflow's older runs.
"""
import time

from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from alerts.episodes import GREEN, RED, SKIP, Cell, episodes
from domain.state import FAILED, QUEUED_STATUSES
from store import metrics
from store.queries.failures import FLAKY, run_failures
from store.queries.selection import default_branch
from store.schema import branches, commits, runattempts, workflowruns

BREAK_COMMITS = 2  # red commits in a row that make a break (alerts.config.Rule.consecutive's default)
WALK_PAGE = 200  # older runs read per step when a break began before the window
WALK_STEPS = 5  # steps before giving up on finding a break's start (it is then left out)
VERDICT_COMMITS = 200  # the newest red commits whose verdicts split broken from flaky
EVER = -1e18  # `since` of the all-time window

w, c, ra = workflowruns.c, commits.c, runattempts.c
_RUN = (w.id, w.gitid, w.commitid, w.workflow, w.createtime, w.endtime, w.status, w.conclusion, c.time, c.hash,
        w.run_attempt)
ID, GITID, COMMIT, WORKFLOW, CREATED, ENDED, STATUS, CONCLUSION, CTIME, SHA, ATTEMPT = range(len(_RUN))
_BRANCH = select(branches.c.id).where(branches.c.repo == bindparam("repo"), branches.c.name == bindparam("name"))


def _runs_statement(by_workflow: bool):
    """Every run on the branch of the commits that have a run created since `since` (the branch's
    (branch, commitid) index serves both the inner and the outer read)."""
    named = [w.archivedworkflowname == bindparam("workflow")] if by_workflow else []
    window = select(w.commitid).where(w.branch == bindparam("br"), w.createtime >= bindparam("since"), *named)
    return (select(*_RUN).join(commits, c.id == w.commitid)
            .where(w.branch == bindparam("br"), w.commitid.in_(window), *named))


def _older_statement(by_workflow: bool):
    """One workflow's runs on the branch created before `before`, newest first (a page)."""
    named = [w.archivedworkflowname == bindparam("workflow")] if by_workflow else []
    return (select(*_RUN).join(commits, c.id == w.commitid)
            .where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime < bindparam("before"),
                   *named)
            .order_by(w.createtime.desc(), w.gitid.desc()).limit(WALK_PAGE))


_RUNS = {flag: _runs_statement(flag) for flag in (False, True)}
_OLDER = {flag: _older_statement(flag) for flag in (False, True)}
_FAILED_ATTEMPTS = (select(ra.run, ra.endtime)
                    .where(ra.run.in_(bindparam("runs", expanding=True)), ra.conclusion.in_(FAILED)))

EMPTY = {"branch": None, "commits": 0, "settled": 0, "red": 0, "broken": None, "flaky": None, "red_share": None,
         "verdicts": False, "judged": 0, "signal_p50": None, "signal_p90": None, "signals": 0, "recovery_p50": None,
         "recoveries": 0, "open_breaks": 0, "force_pushes": None}


def _is_red(row) -> bool:
    return row[STATUS] == "completed" and row[CONCLUSION] in FAILED


def _is_pending(row) -> bool:
    return row[STATUS] == "in_progress" or row[STATUS] in QUEUED_STATUSES


def _cells(rows) -> dict:
    """{(commit, workflow): the newest run} of run rows."""
    out: dict = {}
    for row in rows:
        key = (row[COMMIT], row[WORKFLOW])
        kept = out.get(key)
        if kept is None or (row[CREATED] or 0, row[GITID]) > (kept[CREATED] or 0, kept[GITID]):
            out[key] = row
    return out


def trunk_health(conn: Connection, repo: str, *, since: float | None, workflow: str | None = None,
                 now: float | None = None) -> dict:
    """The trunk health KPIs (see the module's docstring) of `repo`'s default branch for the window that
    starts at `since` (None: all time), one workflow's runs only when `workflow` is given.

    Keys: branch; commits (in the window), settled, red, broken, flaky (None when no verdict; over the
    newest `judged` red commits), red_share (None without settled commits), verdicts, judged; signal_p50,
    signal_p90 (seconds), signals (red commits with a signal); recovery_p50 (seconds), recoveries;
    open_breaks; force_pushes (None: not known).
    """
    now = time.time() if now is None else now
    since = EVER if since is None else float(since)
    name = default_branch(conn, repo)
    branch = conn.execute(_BRANCH, {"repo": repo, "name": name}).scalar() if name else None
    if branch is None:
        return dict(EMPTY, branch=name)
    by_workflow = bool(workflow)
    named = {"workflow": workflow} if by_workflow else {}
    rows = conn.execute(_RUNS[by_workflow], {"br": branch, "since": since, **named}).all()
    cells = _cells(rows)
    out = dict(EMPTY, branch=name)
    out.update(_share_red(conn, rows, cells, since))
    out.update(_recovery(conn, cells, branch, since, now, named))
    return out


def _share_red(conn: Connection, rows, cells: dict, since: float) -> dict:
    first: dict = {}
    for row in rows:
        if row[CREATED] is not None:
            first[row[COMMIT]] = min(first.get(row[COMMIT], row[CREATED]), row[CREATED])
    in_window = {commit for commit, t in first.items() if t >= since}
    red_cells: dict = {}  # commit -> its red cells' runs
    pending = set()
    for (commit, _wf), row in cells.items():
        if commit not in in_window:
            continue
        if _is_red(row):
            red_cells.setdefault(commit, []).append(row)
        elif _is_pending(row):
            pending.add(commit)
    red = set(red_cells)
    settled = len(in_window - (pending - red))
    out = {"commits": len(in_window), "settled": settled, "red": len(red),
           "red_share": metrics.rate(len(red), settled)}
    if not red:
        return out
    red_runs = [row for runs in red_cells.values() for row in runs]
    # Time to red signal: the first failed attempt of a red cell's run to complete.
    ended = _first_failures(conn, [r[ID] for r in red_runs])
    signals = []
    for commit, runs in red_cells.items():
        ends = [ended[r[ID]] for r in runs if r[ID] in ended]
        if ends:
            signals.append(max(min(ends) - first[commit], 0.0))
    signals.sort()
    out.update(signal_p50=metrics._sorted_percentile(signals, 50), signal_p90=metrics._sorted_percentile(signals, 90),
               signals=len(signals))
    # Broken or flaky: the verdicts of the red cells' runs' failed jobs (their latest attempt's), for the
    # newest red commits only: verdicts are decided when read (~0.5 ms a job), and 90 days hold thousands.
    judged = sorted(red_cells, key=lambda commit: first[commit], reverse=True)[:VERDICT_COMMITS]
    # Flaky or not is all the split asks: the other kinds are not decided (`until`).  A verdict can be
    # given wherever a failure line was captured.
    failed = run_failures(conn, sorted({int(r[GITID]) for commit in judged for r in red_cells[commit]}),
                          until=FLAKY)
    verdicts = any(job["lines"] for jobs in failed.values() for job in jobs)
    if verdicts:
        flaky = 0
        for commit in judged:
            jobs = [job for r in red_cells[commit] for job in failed.get(int(r[GITID]), [])]
            if jobs and all((job.get("verdict") or {}).get("kind") == FLAKY for job in jobs):
                flaky += 1
        out.update(flaky=flaky, broken=len(judged) - flaky, judged=len(judged))
    out["verdicts"] = verdicts
    return out


def _first_failures(conn: Connection, runs) -> dict:
    """{run id: the completion of its first failed attempt to complete} of `runs` (workflowruns ids)."""
    out: dict = {}
    runs = sorted(set(runs))
    for i in range(0, len(runs), 500):
        for run, end in conn.execute(_FAILED_ATTEMPTS, {"runs": runs[i:i + 500]}).all():
            if end is not None:
                out[run] = min(out.get(run, end), end)
    return out


def _cell(row, state: str) -> Cell:
    return Cell(commit=row[COMMIT], sha=row[SHA], ctime=row[CTIME], run=row[ID], gitid=row[GITID],
                attempt=row[ATTEMPT], created=row[CREATED], conclusion=row[CONCLUSION], url=None, state=state)


def _state(row) -> str:
    if row[STATUS] != "completed":
        return SKIP
    if row[CONCLUSION] == "success":
        return GREEN
    return RED if row[CONCLUSION] in FAILED else SKIP


def _ordered(cells) -> list[Cell]:
    """Cells in commit order (oldest first; commits of the same time by sha, as the streaks do)."""
    return sorted((_cell(row, _state(row)) for row in cells), key=lambda cell: cell.pos)


def _recovery(conn: Connection, cells: dict, branch: int, since: float, now: float, named: dict) -> dict:
    by_workflow: dict = {}
    for (_commit, wf), row in cells.items():
        by_workflow.setdefault(wf, {})[row[COMMIT]] = row
    ended = {row[ID]: row[ENDED] for row in cells.values()}
    fixed, open_breaks = [], 0  # (first red run, green run's completion) of the breaks fixed in the window
    for wf, found in by_workflow.items():
        complete = since == EVER or _settled_before(found.values(), since)
        oldest = min((row[CREATED] for row in found.values() if row[CREATED] is not None), default=since)
        for _step in range(0 if complete else WALK_STEPS):
            older = conn.execute(_OLDER[bool(named)], {"wf": wf, "br": branch, "before": oldest, **named}).all()
            for row in older:  # a commit's newest run is its cell: keep the one already read
                kept = found.get(row[COMMIT])
                if kept is None or (row[CREATED] or 0, row[GITID]) > (kept[CREATED] or 0, kept[GITID]):
                    found[row[COMMIT]] = row
                    ended[row[ID]] = row[ENDED]
            complete = len(older) < WALK_PAGE or _settled_before(found.values(), since)
            if complete:
                break
            oldest = min((row[CREATED] for row in older if row[CREATED] is not None), default=oldest)
        for episode in episodes(_ordered(found.values()), complete=complete):
            if episode.truncated or episode.reds < BREAK_COMMITS:
                continue
            if episode.fixer is None:
                open_breaks += 1
            elif episode.fixer.created is not None and since <= episode.fixer.created <= now:
                fixed.append((episode.cells[0].run, ended.get(episode.fixer.run)))
    # A break begins when its first red run's first failed attempt completed (a re-run may fail later).
    first_red = _first_failures(conn, [run for run, _end in fixed])
    durations = sorted(max(end - first_red[run], 0.0) for run, end in fixed
                       if end is not None and first_red.get(run) is not None)
    return {"recovery_p50": metrics._sorted_percentile(durations, 50), "recoveries": len(durations),
            "open_breaks": open_breaks}


def _settled_before(rows, since: float) -> bool:
    """Whether the oldest decisive cell read (of the cells' run rows) is green and older than the window:
    every break a green cell of the window ended then began after it, so was read whole.  (Found without
    building and sorting the cells: a 90-day window at a million runs has tens of thousands.)"""
    decisive = [row for row in rows if _state(row) != SKIP]
    if not decisive:
        return False
    oldest = min(decisive, key=lambda row: (row[CTIME], row[SHA]))  # `Cell.pos`: commit order
    return _state(oldest) == GREEN and (oldest[CREATED] or 0) < since


__all__ = ["trunk_health", "BREAK_COMMITS", "EMPTY"]
