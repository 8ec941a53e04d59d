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
from sqlalchemy import and_, case, exists, func, literal, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from ingest.state import DECISIVE, FAILED
from store.queries.filters import Filters
from store.schema import commits, jobs, repos, runattempts, steps, workflowruns

w = workflowruns.c
FAILED_JOB = ("failure", "timed_out")
RUNS_PER_GROUP = 20
FLAKY_LIST_LIMIT = 500


def _sum(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _frame(result) -> pd.DataFrame:
    return pd.DataFrame(result.mappings().all(), columns=list(result.keys()))


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
    """CTE: failed latest attempts in `filters`, each with its failing job and step (or None)."""
    failed = (
        select(w.id, w.gitid, w.run_attempt, w.repo, w.archivedworkflowname.label("workflow"),
               w.archivedbranchname.label("branch"), w.archivedcommithash.label("sha"), w.commitid,
               w.conclusion, w.createtime, w.url, func.coalesce(commits.c.author, w.author).label("author"))
        .join(commits, commits.c.id == w.commitid)
        .where(*filters.conditions(), w.status == "completed", w.conclusion.in_(FAILED))
        .cte("failed")
    )
    # The run's failing job: its failed job that ended first (then by name).
    ranked = (
        select(jobs.c.id, jobs.c.name, jobs.c.run_gitid, jobs.c.run_attempt,
               func.row_number().over(
                   partition_by=(jobs.c.run_gitid, jobs.c.run_attempt),
                   order_by=(jobs.c.endtime.is_(None), jobs.c.endtime, jobs.c.name, jobs.c.gitid),
               ).label("rn"))
        .join(failed, and_(jobs.c.run_gitid == failed.c.gitid, jobs.c.run_attempt == failed.c.run_attempt))
        .where(jobs.c.conclusion.in_(FAILED_JOB))
        .cte("failing_job")
    )
    first_step = (
        select(steps.c.number, steps.c.name)
        .where(steps.c.job == ranked.c.id, steps.c.conclusion == "failure")
        .order_by(steps.c.number).limit(1)
    )
    step_number = first_step.with_only_columns(steps.c.number).scalar_subquery()
    step_name = first_step.with_only_columns(steps.c.name).scalar_subquery()
    return (
        select(failed, ranked.c.name.label("job"), step_name.label("step"), step_number.label("step_number"))
        .join(ranked, and_(ranked.c.run_gitid == failed.c.gitid, ranked.c.run_attempt == failed.c.run_attempt,
                           ranked.c.rn == 1), isouter=True)
        .cte("per_run")
    )


def failure_groups(conn: Connection, filters: Filters, *, runs_per_group: int = RUNS_PER_GROUP) -> pd.DataFrame:
    """Failed runs grouped by the same failure (repo, workflow, failing job, failing step), newest first.

    Columns: repo, workflow, job, step, step_number, count, first_seen, last_seen,
    commits, authors (sorted list), runs (newest `runs_per_group`, each a dict).
    """
    per_run = _failed_with_cause(filters)
    key = (per_run.c.repo, per_run.c.workflow, per_run.c.job, per_run.c.step)
    groups = _frame(conn.execute(
        select(*key, func.max(per_run.c.step_number).label("step_number"), func.count().label("count"),
               func.min(per_run.c.createtime).label("first_seen"), func.max(per_run.c.createtime).label("last_seen"),
               func.count(per_run.c.commitid.distinct()).label("commits"),
               func.group_concat(per_run.c.author.distinct()).label("authors"))
        .group_by(*key)
        .order_by(func.max(per_run.c.createtime).desc())
    ))
    columns = ["repo", "workflow", "job", "step", "step_number", "count", "first_seen", "last_seen", "commits",
               "authors", "runs"]
    if groups.empty:
        return pd.DataFrame(columns=columns)
    ranked = select(
        *key, per_run.c.gitid, per_run.c.url, per_run.c.sha, per_run.c.branch, per_run.c.author,
        per_run.c.conclusion, per_run.c.createtime,
        func.row_number().over(partition_by=key, order_by=(per_run.c.createtime.desc(), per_run.c.gitid.desc()))
        .label("rn"),
    ).subquery()
    runs = _frame(conn.execute(select(ranked).where(ranked.c.rn <= runs_per_group)
                               .order_by(ranked.c.rn)))
    lists: dict[tuple, list] = {}
    for row in runs.to_dict("records"):
        lists.setdefault(_group_key(row), []).append(
            {k: row[k] for k in ("gitid", "url", "sha", "branch", "author", "conclusion", "createtime")})
    groups["authors"] = [sorted(a.split(",")) if isinstance(a, str) else [] for a in groups["authors"]]
    groups["runs"] = [lists.get(_group_key(g), []) for g in groups.to_dict("records")]
    groups = groups.astype({"job": object, "step": object})
    return groups[columns].where(groups[columns].notna(), None)


def _group_key(row: dict) -> tuple:
    return tuple(None if pd.isna(row[k]) else row[k] for k in ("repo", "workflow", "job", "step"))


# -- Streaks -----------------------------------------------------------------------------

def streaks(conn: Connection, filters: Filters, *, default_branch_only: bool = False,
            pairs=None) -> pd.DataFrame:
    """The current failure streak of every workflow on every branch `filters` selects (window ignored).

    One row per (workflow, branch) whose newest decisive cell is failed: repo, workflow, branch,
    workflow_id, branch_id, streak, first_bad (commit id), sha, message, commit_author,
    red_since (createtime of the run that makes the first bad commit's cell red), run_url (newest failed run),
    after (conclusion of the next older decisive cell: 'success' means the first bad commit is
    confirmed; None means history starts with the streak).
    `pairs`, a subquery of (workflow id, branch id), limits the branches looked at.
    """
    conds = filters.without_window().conditions()
    source = workflowruns
    if default_branch_only:
        source = workflowruns.join(repos, repos.c.name == w.repo, isouter=True)
        conds.append(w.archivedbranchname == func.coalesce(repos.c.default_branch, "main"))
    if pairs is not None:
        conds.append(tuple_(w.workflow, w.branch).in_(pairs))
    cell = (
        select(w.repo, w.workflow.label("workflow_id"), w.branch.label("branch_id"), w.commitid,
               w.archivedworkflowname.label("workflow"), w.archivedbranchname.label("branch"),
               w.status, w.conclusion, w.url,
               w.createtime.label("red_since"),
               func.row_number().over(partition_by=(w.workflow, w.branch, w.commitid),
                                      order_by=(w.createtime.desc(), w.gitid.desc())).label("rn"))
        .select_from(source).where(*conds)
        .cte("cell")
    )
    newest_first = (commits.c.time.desc(), cell.c.commitid.desc())
    ok = case((cell.c.conclusion.in_(FAILED), 0), else_=1)
    ordered = (
        select(cell.c.repo, cell.c.workflow_id, cell.c.branch_id, cell.c.workflow, cell.c.branch,
               cell.c.commitid, cell.c.conclusion, cell.c.url, cell.c.red_since,
               commits.c.hash.label("sha"), commits.c.message, commits.c.author.label("commit_author"),
               func.sum(ok).over(partition_by=(cell.c.workflow_id, cell.c.branch_id), order_by=newest_first,
                                 rows=(None, 0)).label("oks"),
               func.row_number().over(partition_by=(cell.c.workflow_id, cell.c.branch_id),
                                      order_by=newest_first).label("pos"))
        .join(commits, commits.c.id == cell.c.commitid)
        .where(cell.c.rn == 1, cell.c.status == "completed", cell.c.conclusion.in_(DECISIVE))
        .subquery()
    )
    rows = _frame(conn.execute(
        select(ordered).where((ordered.c.oks == 0) | ((ordered.c.oks == 1) & ordered.c.conclusion.not_in(FAILED)))
        .order_by(ordered.c.workflow_id, ordered.c.branch_id, ordered.c.pos)
    ))
    return _streak_rows(rows)


def _streak_rows(rows: pd.DataFrame) -> pd.DataFrame:
    columns = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "sha", "message",
               "commit_author", "red_since", "run_url", "after"]
    out = []
    for (_wf, _br), group in rows.groupby(["workflow_id", "branch_id"], sort=False):
        bad = group[group["oks"] == 0]
        if bad.empty:
            continue
        first, newest = bad.iloc[-1], bad.iloc[0]
        stopper = group[group["oks"] == 1]
        out.append({
            "repo": first["repo"], "workflow": first["workflow"], "branch": first["branch"],
            "workflow_id": int(first["workflow_id"]), "branch_id": int(first["branch_id"]), "streak": len(bad),
            "first_bad": int(first["commitid"]), "sha": first["sha"], "message": first["message"],
            "commit_author": first["commit_author"], "red_since": first["red_since"], "run_url": newest["url"],
            "after": stopper.iloc[0]["conclusion"] if not stopper.empty else None,
        })
    return pd.DataFrame(out, columns=columns)


def broken_main(conn: Connection, filters: Filters, *, now: float | None = None) -> pd.DataFrame:
    """Workflows currently red on their repository's default branch, longest red first.

    The `branch` filter is ignored (this section is about default branches); `red_for` is
    now − the first bad commit's run createtime, in seconds.
    """
    now = time.time() if now is None else now
    frame = streaks(conn, filters.__class__(**{**filters.as_dict(), "branch": None}), default_branch_only=True)
    frame["red_for"] = now - frame["red_since"].astype(float)
    return frame.sort_values(["red_for", "streak"], ascending=False, ignore_index=True)


# -- Build analysis ----------------------------------------------------------------------

def build_analysis(conn: Connection, filters: Filters) -> pd.DataFrame:
    """Workflows × branches in `filters`: runs, failed, failure and flake rates, current streak.

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
        .order_by(w.repo, w.archivedworkflowname, w.archivedbranchname)
    ))
    columns = ["repo", "workflow", "branch", "runs", "decisive", "failed", "failure_rate", "flaky", "successful",
               "flake_rate", "streak", "last_run"]
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame["failure_rate"] = pd.Series([f / d if d else None for f, d in zip(frame["failed"], frame["decisive"])],
                                      dtype=object)
    frame["flake_rate"] = pd.Series([f / (f + s) if f + s else None
                                     for f, s in zip(frame["flaky"], frame["successful"])], dtype=object)
    pairs = select(w.workflow, w.branch).where(*filters.conditions()).distinct()
    red = streaks(conn, filters, pairs=pairs)[["workflow_id", "branch_id", "streak"]]
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
