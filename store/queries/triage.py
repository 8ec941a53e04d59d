"""The Triage view's queries: failures grouped, build analysis, broken main, flaky runs.

Each follows the Triage words of the shared metrics.md.  Rows are latest
attempts (`workflowruns`) unless an attempt history is the point (flaky runs).
A *cell* is one workflow on one commit of one branch: its newest run's latest
attempt.  Streaks walk a branch's cells newest-first by commit time, skip the
cells without a decisive result (running, queued, skipped, neutral) and stop
at the first decisive cell that is not failed; window filters never cut a
streak short (streaks are about now).
"""
import time

import pandas as pd
from sqlalchemy import and_, case, exists, func, literal, literal_column, or_, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from ingest.state import DECISIVE, FAILED
from store.queries.filters import Filters
from store.schema import branches, commits, jobs, repos, runattempts, steps, workflowruns, workflows

w = workflowruns.c
FAILED_JOB = ("failure", "timed_out")
RUNS_PER_GROUP = 20
FLAKY_LIST_LIMIT = 500


def _sum(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _frame(result) -> pd.DataFrame:
    columns = list(result.keys())
    return pd.DataFrame.from_records([tuple(row) for row in result.all()], columns=columns)


def _is_flaky(run_id, run_attempt):
    """SQL: an attempt of the run failed and a later attempt succeeded."""
    failed, later = aliased(runattempts), aliased(runattempts)
    return and_(run_attempt > 1, exists(
        select(literal(1)).select_from(failed)
        .join(later, and_(later.c.run == failed.c.run, later.c.attempt > failed.c.attempt))
        .where(failed.c.run == run_id, failed.c.conclusion.in_(FAILED), later.c.conclusion == "success")
    ))


# -- Failed builds, grouped by the same failure ------------------------------------------

def _failed_with_cause(filters: Filters):
    """CTE: failed latest attempts in `filters`, each with its failing job and step (or None).

    Driven from the failed runs: each looks up its own failing job through
    `idx_jobs_run` (a join of every failed job against the runs scanned the
    whole jobs table: seconds at 100k runs).
    """
    # The run's failing job: its failed job that ended first (then by name).
    failing_job = (
        select(jobs.c.id)
        .where(jobs.c.run_gitid == w.gitid, jobs.c.run_attempt == w.run_attempt, jobs.c.conclusion.in_(FAILED_JOB))
        .order_by(jobs.c.endtime.is_(None), jobs.c.endtime, jobs.c.name, jobs.c.gitid)
        .limit(1).scalar_subquery()
    )
    failed = (
        select(w.id, w.gitid, w.run_attempt, w.repo, w.archivedworkflowname.label("workflow"),
               w.archivedbranchname.label("branch"), w.archivedcommithash.label("sha"), w.commitid,
               w.conclusion, w.createtime, w.url, func.coalesce(commits.c.author, w.author).label("author"),
               failing_job.label("job_id"))
        .join(commits, commits.c.id == w.commitid)
        .where(*filters.conditions(), w.status == "completed", w.conclusion.in_(FAILED))
        .cte("failed")
    )
    job_name = select(jobs.c.name).where(jobs.c.id == failed.c.job_id).scalar_subquery()
    first_step = (
        select(steps.c.number, steps.c.name)
        .where(steps.c.job == failed.c.job_id, steps.c.conclusion == "failure")
        .order_by(steps.c.number).limit(1)
    )
    step_number = first_step.with_only_columns(steps.c.number).scalar_subquery()
    step_name = first_step.with_only_columns(steps.c.name).scalar_subquery()
    return select(failed, job_name.label("job"), step_name.label("step"), step_number.label("step_number")) \
        .cte("per_run")


def failure_groups(conn: Connection, filters: Filters, *, runs_per_group: int = RUNS_PER_GROUP) -> pd.DataFrame:
    """Failed runs grouped by the same failure (repo, workflow, failing job, failing step), newest first.

    Columns: repo, workflow, job, step, step_number, count, first_seen, last_seen,
    commits, authors (sorted list), runs (newest `runs_per_group`, each a dict).
    The failed runs are read once (their failing job and step looked up per run)
    and grouped here: grouping in SQL computed them twice.
    """
    columns = ["repo", "workflow", "job", "step", "step_number", "count", "first_seen", "last_seen", "commits",
               "authors", "runs"]
    per_run = _frame(conn.execute(select(_failed_with_cause(filters))))
    if per_run.empty:
        return pd.DataFrame(columns=columns)
    per_run = per_run.sort_values(["createtime", "gitid"], ascending=False)
    groups: dict[tuple, dict] = {}
    for row in per_run.to_dict("records"):  # newest first
        key = _group_key(row)
        group = groups.get(key)
        if group is None:
            group = groups[key] = {"repo": key[0], "workflow": key[1], "job": key[2], "step": key[3],
                                   "step_number": None, "count": 0, "first_seen": row["createtime"],
                                   "last_seen": row["createtime"], "commits": set(), "authors": set(), "runs": []}
        group["count"] += 1
        group["first_seen"] = row["createtime"]  # rows come newest first: the last one seen is the oldest
        group["commits"].add(row["commitid"])
        if isinstance(row["author"], str):
            group["authors"].add(row["author"])
        if not pd.isna(row["step_number"]):
            number = int(row["step_number"])
            group["step_number"] = number if group["step_number"] is None else max(group["step_number"], number)
        if len(group["runs"]) < runs_per_group:
            group["runs"].append({k: None if pd.isna(row[k]) else row[k]
                                  for k in ("gitid", "url", "sha", "branch", "author", "conclusion", "createtime")})
    for group in groups.values():
        group["commits"] = len(group["commits"])
        group["authors"] = sorted(group["authors"])
    # In order of each group's newest run; object columns keep None as None.
    return pd.DataFrame(list(groups.values()), columns=columns, dtype=object)


def _group_key(row: dict) -> tuple:
    return tuple(None if pd.isna(row[k]) else row[k] for k in ("repo", "workflow", "job", "step"))


# -- Streaks -----------------------------------------------------------------------------
#
# A streak needs only a branch's newest cells, down to the first decisive cell that is not
# failed (the stopper).  So the cells are read newest-first in slices of time: first every
# pair's runs since `horizon` in one query, then, for the few pairs whose stopper lies
# further back (or was not reached), older runs pair by pair.  A stopper is trusted only if
# its commit is not older than the oldest run read: every newer commit's runs were read too.

# How far back, beyond the first slice, to read a pair whose streak is not settled yet (seconds;
# None: all the rest).  Reading a busy main branch's whole history took seconds at 1M runs.
OLDER_SLICES = (30 * 86400, 180 * 86400, None)
_WALK_COLUMNS = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "red_since",
                 "newest_run", "after"]
STREAK_COLUMNS = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "sha", "message",
                  "commit_author", "red_since", "run_url", "after"]
_CELL = (w.repo, w.workflow.label("workflow_id"), w.branch.label("branch_id"), w.archivedworkflowname.label("workflow"),
         w.archivedbranchname.label("branch"), w.commitid, w.gitid, w.createtime, w.status, w.conclusion,
         commits.c.time.label("ctime"))


def _cells(conn: Connection, *conditions, limit: int | None = None) -> pd.DataFrame:
    query = (select(*_CELL).join(commits, commits.c.id == w.commitid).where(*conditions)
             .order_by(w.createtime.desc(), w.gitid.desc()))
    return _frame(conn.execute(query.limit(limit) if limit else query))


def _in_pairs(frame: pd.DataFrame, pairs: set) -> pd.Series:
    return pd.Series([p in pairs for p in zip(frame["workflow_id"], frame["branch_id"])], index=frame.index,
                     dtype=bool)


def _walk(rows: pd.DataFrame, complete: bool) -> tuple[pd.DataFrame, set]:
    """Streaks of the pairs in `rows` (newest-first over their cells), and the pairs not settled.

    `complete` says `rows` hold all of their pairs' runs; otherwise a pair is settled only by
    a stopper whose commit is not older than the pair's oldest run in `rows`.
    """
    pair = ["workflow_id", "branch_id"]
    if rows.empty:
        return pd.DataFrame(columns=_WALK_COLUMNS), set()
    oldest = rows.groupby(pair)["createtime"].min().rename("oldest")
    cells = (rows.sort_values(["createtime", "gitid"], ascending=False)
             .drop_duplicates(pair + ["commitid"]))
    cells = cells[(cells["status"] == "completed") & cells["conclusion"].isin(DECISIVE)]
    cells = cells.sort_values(pair + ["ctime", "commitid"], ascending=[True, True, False, False])
    cells["ok"] = ~cells["conclusion"].isin(FAILED)
    cells["oks"] = cells.groupby(pair)["ok"].cumsum()
    bad = cells[cells["oks"] == 0]
    stop = cells[cells["ok"] & (cells["oks"] == 1)].set_index(pair)
    state = pd.DataFrame(index=oldest.index).join(oldest)
    state["stop_time"] = stop["ctime"]
    state["after"] = stop["conclusion"]
    settled = state["stop_time"].notna() & (complete | (state["stop_time"] >= state["oldest"]))
    if complete:
        settled[:] = True
    unsettled = set(state.index[~settled])
    bad = bad[~_in_pairs(bad, unsettled)]
    if bad.empty:
        return pd.DataFrame(columns=_WALK_COLUMNS), unsettled
    grouped = bad.groupby(pair, sort=False)
    first = grouped.tail(1).set_index(pair)
    out = first[["repo", "workflow", "branch"]].copy()
    out["first_bad"] = first["commitid"].astype(int)
    out["red_since"] = first["createtime"]
    out["streak"] = grouped.size()
    out["newest_run"] = grouped.head(1).set_index(pair)["gitid"]
    out["after"] = state["after"].where(state["after"].notna(), None)
    out = out.reset_index()
    out["after"] = out["after"].astype(object).where(out["after"].notna(), None)
    return out[_WALK_COLUMNS], unsettled


def _streaks(conn: Connection, recent: pd.DataFrame, horizon: float | None, extra_pairs=()) -> pd.DataFrame:
    """Streaks of the pairs in `recent` (every run of theirs since `horizon`) and of `extra_pairs`."""
    found, unsettled = _walk(recent, horizon is None)
    seen = set(zip(recent["workflow_id"], recent["branch_id"]))
    unsettled = sorted(unsettled | {tuple(p) for p in extra_pairs if tuple(p) not in seen})
    frames = [found]
    for i in range(0, len(unsettled), 500):  # older history, 500 pairs a query, in widening slices
        chunk = unsettled[i:i + 500]
        have = recent[_in_pairs(recent, set(chunk))]
        upper = horizon
        for back in OLDER_SLICES:
            lower = None if back is None else horizon - back
            older = _cells(conn, tuple_(w.workflow, w.branch).in_(chunk), w.createtime < upper,
                           *([w.createtime >= lower] if lower is not None else []))
            have = pd.concat([have, older], ignore_index=True)
            walked, still = _walk(have, lower is None)
            frames.append(walked)  # only settled pairs: `_walk` leaves the others out
            if lower is None:
                break
            # A pair with no run read yet is not settled either: read further back.
            still |= set(chunk) - set(zip(have["workflow_id"], have["branch_id"]))
            if not still:
                break
            chunk = sorted(still)
            have, upper = have[_in_pairs(have, still)], lower
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=STREAK_COLUMNS)
    return _with_details(conn, pd.concat(frames, ignore_index=True))


def _with_details(conn: Connection, found: pd.DataFrame) -> pd.DataFrame:
    """Add the first bad commits' sha, message and author, and the newest failed runs' links."""
    found = found.astype({"first_bad": int, "newest_run": int, "streak": int})
    shas = {row[0]: row[1:] for row in conn.execute(
        select(commits.c.id, commits.c.hash, commits.c.message, commits.c.author)
        .where(commits.c.id.in_(found["first_bad"].tolist()))).all()}
    urls = dict(conn.execute(select(w.gitid, w.url).where(w.gitid.in_(found["newest_run"].tolist()))).all())
    for i, column in enumerate(("sha", "message", "commit_author")):
        found[column] = [shas.get(c, (None, None, None))[i] for c in found["first_bad"]]
    found["run_url"] = [urls.get(g) for g in found["newest_run"]]
    return found[STREAK_COLUMNS]


def _branch_filters(filters: Filters) -> Filters:
    """Only what selects whole (workflow, branch) pairs: a streak is never cut by other filters."""
    return Filters(repo=filters.repo, branch=filters.branch, workflow=filters.workflow)


def streaks(conn: Connection, filters: Filters) -> pd.DataFrame:
    """The current failure streak of every (workflow, branch) with runs in `filters`.

    One row per red pair: repo, workflow, branch, workflow_id, branch_id, streak, first_bad
    (commit id), sha, message, commit_author, red_since (createtime of the run that makes the
    first bad commit red), run_url (newest failed run), after (conclusion of the next older
    decisive cell: 'success' confirms the first bad commit; None: history starts with the streak).
    The window selects the pairs, never cuts a streak short.
    """
    scope = _branch_filters(filters)
    recent = _cells(conn, *scope.conditions(), *([w.createtime >= filters.since] if filters.since else []))
    return _streaks(conn, recent, filters.since)


def _default_branch_pairs(conn: Connection, scope: Filters) -> list[tuple]:
    """(workflow id, branch id) of every workflow on its repository's default branch (else main or master)."""
    named = repos.c.default_branch
    query = (
        select(workflows.c.id, branches.c.id)
        .select_from(workflows.join(repos, repos.c.name == workflows.c.repo, isouter=True)
                     .join(branches, branches.c.repo == workflows.c.repo))
        .where(or_(branches.c.name == named, and_(named.is_(None), branches.c.name.in_(("main", "master")))))
    )
    if scope.repo:
        query = query.where(workflows.c.repo == scope.repo)
    if scope.workflow:
        query = query.where(workflows.c.name == scope.workflow)
    return [tuple(row) for row in conn.execute(query.order_by(workflows.c.id, branches.c.id)).all()]


def broken_main(conn: Connection, filters: Filters, *, now: float | None = None,
                recent_seconds: float = 7 * 86400) -> pd.DataFrame:
    """Workflows currently red on their repository's default branch, longest red first.

    The branch filter and the window are ignored (this is about default branches, now);
    `red_for` is now − red_since, in seconds.
    """
    now = time.time() if now is None else now
    scope = Filters(repo=filters.repo, workflow=filters.workflow)
    pairs = _default_branch_pairs(conn, scope)
    if not pairs:
        return pd.DataFrame(columns=STREAK_COLUMNS + ["red_for"])
    horizon = now - recent_seconds
    recent = _cells(conn, *scope.conditions(), w.createtime >= horizon, w.branch.in_({b for _w, b in pairs}))
    frame = _streaks(conn, recent, horizon, extra_pairs=pairs)
    frame = frame[_in_pairs(frame, set(pairs))]
    frame["red_for"] = now - frame["red_since"].astype(float)
    return frame.sort_values(["red_for", "streak"], ascending=False, ignore_index=True)


# -- Build analysis ----------------------------------------------------------------------

ANALYSIS_PAIRS = 200

def build_analysis(conn: Connection, filters: Filters, *, max_pairs: int = ANALYSIS_PAIRS) -> pd.DataFrame:
    """Workflows × branches in `filters`: runs, failed, failure and flake rates, current streak.

    At most `max_pairs` rows: the pairs with the most failures, then the most runs.

    failure_rate = failed ÷ decisive completed runs; flake_rate = flaky ÷ (successful + flaky),
    where a successful run is one whose latest attempt succeeded with no failed attempt before.
    Rates over nothing are None.
    """
    completed = w.status == "completed"
    flaky = _is_flaky(w.id, w.run_attempt)
    frame = _frame(conn.execute(
        select(w.repo, w.archivedworkflowname.label("workflow"), w.archivedbranchname.label("branch"),
               w.workflow.label("workflow_id"), w.branch.label("branch_id"),
               func.count().label("runs"),
               _sum(and_(completed, w.conclusion.in_(DECISIVE))).label("decisive"),
               _sum(and_(completed, w.conclusion.in_(FAILED))).label("failed"),
               _sum(flaky).label("flaky"),
               _sum(and_(completed, w.conclusion == "success", ~flaky)).label("successful"),
               func.max(w.createtime).label("last_run"))
        .where(*filters.conditions())
        .group_by(w.workflow, w.branch, w.repo, w.archivedworkflowname, w.archivedbranchname)
        # The grid shows the pairs that matter most: most failures, then most runs.
        .order_by(literal_column("failed").desc(), literal_column("runs").desc(), w.repo, w.archivedworkflowname,
                  w.archivedbranchname)
        .limit(max_pairs)
    ))
    columns = ["repo", "workflow", "branch", "runs", "decisive", "failed", "failure_rate", "flaky", "successful",
               "flake_rate", "streak", "last_run"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["failure_rate"] = pd.Series([f / d if d else None for f, d in zip(frame["failed"], frame["decisive"])],
                                      dtype=object)
    frame["flake_rate"] = pd.Series([f / (f + s) if f + s else None
                                     for f, s in zip(frame["flaky"], frame["successful"])], dtype=object)
    frame = frame.sort_values(["repo", "workflow", "branch"]).reset_index(drop=True)
    pairs = [(int(a), int(b)) for a, b in zip(frame["workflow_id"], frame["branch_id"])]
    recent = _cells(conn, *_branch_filters(filters).conditions(), tuple_(w.workflow, w.branch).in_(pairs),
                    *([w.createtime >= filters.since] if filters.since else []))
    red = _streaks(conn, recent, filters.since)[["workflow_id", "branch_id", "streak"]]
    frame = frame.merge(red, on=["workflow_id", "branch_id"], how="left")
    frame["streak"] = frame["streak"].fillna(0).astype(int)
    return frame[columns]


# -- Flaky runs --------------------------------------------------------------------------

def flaky_runs(conn: Connection, filters: Filters, *, limit: int = FLAKY_LIST_LIMIT) -> pd.DataFrame:
    """Runs in `filters` where an attempt failed and a later attempt succeeded, newest first.

    Columns: id, repo, workflow, branch, sha, message, author, createtime, url, attempts
    (the run's number of attempts), history (conclusions of its attempts, oldest first).
    """
    frame = _frame(conn.execute(
        select(w.id.label("run"), w.gitid.label("id"), w.repo, w.archivedworkflowname.label("workflow"),
               w.archivedbranchname.label("branch"), w.archivedcommithash.label("sha"), commits.c.message,
               func.coalesce(commits.c.author, w.author).label("author"), w.createtime, w.url)
        .join(commits, commits.c.id == w.commitid)
        .where(*filters.conditions(), _is_flaky(w.id, w.run_attempt))
        .order_by(w.createtime.desc(), w.gitid.desc()).limit(limit)
    ))
    columns = ["id", "repo", "workflow", "branch", "sha", "message", "author", "createtime", "url", "attempts",
               "history"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    attempts = conn.execute(
        select(runattempts.c.run, runattempts.c.conclusion, runattempts.c.status)
        .where(runattempts.c.run.in_([int(v) for v in frame["run"]]))
        .order_by(runattempts.c.run, runattempts.c.attempt)
    ).all()
    history: dict[int, list] = {}
    for run_id, conclusion, status in attempts:
        history.setdefault(run_id, []).append(conclusion or status)
    frame["history"] = [history.get(r, []) for r in frame["run"]]
    frame["attempts"] = [len(h) for h in frame["history"]]
    return frame[columns]


def flaky_counts(conn: Connection, filters: Filters) -> pd.DataFrame:
    """Flaky runs per workflow in `filters`, most first: repo, workflow, flaky."""
    return _frame(conn.execute(
        select(w.repo, w.archivedworkflowname.label("workflow"), func.count().label("flaky"))
        .where(*filters.conditions(), _is_flaky(w.id, w.run_attempt))
        .group_by(w.workflow, w.repo, w.archivedworkflowname)
        .order_by(func.count().desc(), w.archivedworkflowname)
    ))
