"""The Waterfall view's queries: the commit grid, the performance series, the build stream.

The commit grid is paged in SQL: one query picks a page of the branch's
newest commits (LIMIT/OFFSET over commits, via the branch's index), a second
fetches only those commits' run attempts and keeps, per (commit, workflow),
the latest attempt plus whether an earlier one failed.  `cell_state` and
`commit_state` turn that into the glyphs and row colours of metrics.md.
"""
from __future__ import annotations  # `pd.DataFrame` annotations stay unevaluated: pandas loads on first use

from sqlalchemy import and_, bindparam, case, desc, func, select
from sqlalchemy.engine import Connection

from domain.state import FAILED, QUEUED_STATUSES
from store import metrics
from store.lazymodules import pandas as pd
from store.queries import rollup
from store.queries.filters import Filters
from store.rows import run_select
from store.schema import branches, commits, rollup_days, runattempts, workflowruns, workflows

PAGE_SIZE = 50
BUSY_BRANCH = 2000  # runs: above this, a branch's commit page is found from the newest commits down
STREAM_SIZE = 50
w = workflowruns.c

# Glyphs of metrics.md, with the word each stands for.
GLYPHS = {
    "O": "success", "F": "flaky", "X": "failure", "T": "timed out", "C": "cancelled",
    "S": "skipped", "N": "neutral", "?": "running", "Q": "queued", "": "not run",
}
_CONCLUSION_GLYPH = {"success": "O", "failure": "X", "startup_failure": "X", "timed_out": "T",
                     "cancelled": "C", "skipped": "S", "neutral": "N"}


def cell_state(status: str | None, conclusion: str | None, earlier_failed: bool = False) -> str:
    """The glyph of one grid cell from its latest attempt and whether an earlier attempt failed.

    "" means no run.  Completed runs with a conclusion metrics.md gives no
    glyph (action_required, stale) show as N: finished, not decisive.
    """
    if status is None and conclusion is None:
        return ""
    if status == "in_progress":
        return "?"
    if status in QUEUED_STATUSES:
        return "Q"
    if conclusion == "success":
        return "F" if earlier_failed else "O"
    return _CONCLUSION_GLYPH.get(conclusion, "N")


def commit_state(glyphs) -> str:
    """red if any X or T; else flaky if any F; else pending if any ? or Q; else green."""
    glyphs = set(glyphs)
    if glyphs & {"X", "T"}:
        return "red"
    if "F" in glyphs:
        return "flaky"
    if glyphs & {"?", "Q"}:
        return "pending"
    return "green"


# --- the commit grid ---------------------------------------------------------------------------

def _branch_id(conn: Connection, repo: str, branch: str) -> int | None:
    return conn.execute(_BRANCH_ID, {"repo": repo, "name": branch}).scalar()


_BRANCH_ID = select(branches.c.id).where(branches.c.repo == bindparam("repo"), branches.c.name == bindparam("name"))
PAGE_COLUMNS = ["commitid", "sha", "message", "author", "time"]
CELL_COLUMNS = ["commitid", "workflow", "status", "conclusion", "url", "attempts", "earlier_failed",
                "starttime", "endtime", "queuetime", "duration", "glyph", "gitid", "attempt"]


_ON_BRANCH = workflowruns.alias("on_branch")  # built once (an alias's column set-up is not free)


def _page_rows(conn: Connection, repo: str, branch_id: int, workflow: str | None, offset: int,
               limit: int) -> tuple[list[tuple], bool]:
    on_branch = select(w.commitid).where(w.branch == branch_id)
    if workflow:
        on_branch = on_branch.where(w.archivedworkflowname == workflow)
    query = (
        select(commits.c.id, commits.c.hash, commits.c.message, commits.c.author, commits.c.time)
        .order_by(desc(commits.c.time), desc(commits.c.id))
        .limit(limit + 1).offset(max(int(offset), 0))
    )
    busy = conn.execute(select(func.count()).select_from(on_branch.limit(BUSY_BRANCH).subquery())).scalar_one()
    if busy < BUSY_BRANCH:  # a quiet branch: its few commits by id, then sorted
        query = query.where(commits.c.id.in_(on_branch))
    else:  # a busy branch (main): the repository's newest commits, each checked for a run on the branch
        run = _ON_BRANCH
        has_run = select(run.c.id).where(run.c.commitid == commits.c.id, run.c.branch == branch_id)
        if workflow:
            has_run = has_run.where(run.c.archivedworkflowname == workflow)
        query = query.where(commits.c.repo == repo, has_run.exists())
    rows = [tuple(r) for r in conn.execute(query).all()]
    return rows[:limit], len(rows) > limit


def commit_page(conn: Connection, repo: str, branch: str, *, workflow: str | None = None,
                offset: int = 0, limit: int = PAGE_SIZE) -> tuple[pd.DataFrame, bool]:
    """A page of the branch's commits, newest first, and whether older ones exist.

    Columns: commitid, sha, message, author, time.
    """
    branch_id = _branch_id(conn, repo, branch)
    if branch_id is None:
        return pd.DataFrame(columns=PAGE_COLUMNS), False
    rows, has_older = _page_rows(conn, repo, branch_id, workflow, offset, limit)
    return pd.DataFrame(rows, columns=PAGE_COLUMNS), has_older


def _cells_statement(by_workflow: bool):
    """Per (commit, workflow) of the commits `ids` on the branch `branch`: the latest attempt, the number
    of attempts and how many failed before it (built once; each call binds the branch and the ids)."""
    ra = runattempts.c
    part = (w.commitid, w.archivedworkflowname)
    is_failed = case((ra.conclusion.in_(FAILED), 1), else_=0)
    ranked = (
        select(
            w.commitid, w.archivedworkflowname.label("workflow"), ra.status, ra.conclusion,
            func.coalesce(ra.url, w.url).label("url"), ra.starttime, ra.endtime, ra.queuetime, w.gitid, ra.attempt,
            func.row_number().over(partition_by=part,
                                   order_by=(desc(ra.createtime), desc(ra.attempt), desc(w.gitid))).label("rn"),
            func.count().over(partition_by=part).label("attempts"),
            (func.sum(is_failed).over(partition_by=part) - is_failed).label("earlier_failed"),
        )
        .select_from(runattempts.join(workflowruns, workflowruns.c.id == ra.run))
        .where(w.branch == bindparam("branch"), w.commitid.in_(bindparam("ids", expanding=True)),
               *([w.archivedworkflowname == bindparam("workflow")] if by_workflow else []))
        .subquery()
    )
    return select(*(c for c in ranked.c if c.name != "rn")).where(ranked.c.rn == 1)


_CELLS = {by_workflow: _cells_statement(by_workflow) for by_workflow in (False, True)}


def _cell_records(conn: Connection, branch_id: int, commit_ids: list[int], workflow: str | None) -> list[dict]:
    """`CELL_COLUMNS` dicts (plain Python: a page is a few hundred cells, pandas' set-up cost more)."""
    if not commit_ids:
        return []
    params = {"branch": branch_id, "ids": commit_ids, **({"workflow": workflow} if workflow else {})}
    out = []
    for (commitid, name, status, conclusion, url, starttime, endtime, queuetime, gitid, attempt, attempts,
         earlier) in conn.execute(_CELLS[bool(workflow)], params).all():
        earlier_failed = bool(earlier)
        out.append({"commitid": commitid, "workflow": name, "status": status, "conclusion": conclusion, "url": url,
                    "attempts": attempts, "earlier_failed": earlier_failed, "starttime": starttime,
                    "endtime": endtime, "queuetime": queuetime,
                    "duration": endtime - starttime if endtime is not None and starttime is not None else None,
                    "glyph": cell_state(status, conclusion, earlier_failed), "gitid": gitid, "attempt": attempt})
    return out


def commit_cells(conn: Connection, repo: str, branch: str, commit_ids, *,
                 workflow: str | None = None) -> pd.DataFrame:
    """Per (commit, workflow) of `commit_ids` on the branch: the latest attempt and the attempt history.

    Columns: commitid, workflow, status, conclusion, url, attempts, earlier_failed,
    starttime, endtime, queuetime, duration, glyph, gitid (the run's GitHub id), attempt (the latest's number).
    """
    commit_ids = [int(c) for c in commit_ids]
    branch_id = _branch_id(conn, repo, branch) if commit_ids else None
    records = _cell_records(conn, branch_id, commit_ids, workflow) if branch_id is not None else []
    return pd.DataFrame(records, columns=CELL_COLUMNS) if records else pd.DataFrame(columns=CELL_COLUMNS)


def grid_records(conn: Connection, repo: str, branch: str, *, workflow: str | None = None,
                 offset: int = 0, limit: int = PAGE_SIZE) -> dict:
    """`commit_grid` with its commits and cells as lists of dicts (what the page draws)."""
    branch_id = _branch_id(conn, repo, branch)
    rows, has_older = _page_rows(conn, repo, branch_id, workflow, offset, limit) if branch_id is not None \
        else ([], False)
    page = [dict(zip(PAGE_COLUMNS, r)) for r in rows]
    cells = _cell_records(conn, branch_id, [int(r["commitid"]) for r in page], workflow) if page else []
    glyphs: dict = {}
    for cell in cells:
        glyphs.setdefault(cell["commitid"], []).append(cell["glyph"])
    for commit in page:
        found = glyphs.get(commit["commitid"])
        commit["state"] = commit_state(found) if found else "green"
    return {
        "commits": page,
        "cells": cells,
        "workflows": sorted({c["workflow"] for c in cells if c["workflow"] is not None}),
        "offset": max(int(offset), 0),
        "has_older": has_older,
    }


def commit_grid(conn: Connection, repo: str, branch: str, *, workflow: str | None = None,
                offset: int = 0, limit: int = PAGE_SIZE) -> dict:
    """The grid of one page: commits (with their row `state`), cells, workflow columns, paging (frames)."""
    grid = grid_records(conn, repo, branch, workflow=workflow, offset=offset, limit=limit)
    grid["commits"] = pd.DataFrame(grid["commits"], columns=PAGE_COLUMNS + ["state"])
    grid["cells"] = pd.DataFrame(grid["cells"], columns=CELL_COLUMNS) if grid["cells"] \
        else pd.DataFrame(columns=CELL_COLUMNS)
    return grid


# --- the performance chart ---------------------------------------------------------------------

SERIES_COLUMNS = ["bucket", "workflow", "runtime_p50", "runtime_p90", "queue_p50", "queue_p90", "failures", "runs"]


def _run_rows_query(filters: Filters):
    completed = and_(w.status == "completed", w.conclusion.in_(("success",) + FAILED))
    return select(
        w.createtime, w.archivedworkflowname.label("workflow"),
        case((completed, w.runtime), else_=None).label("runtime"),
        case((w.starttime.is_not(None), w.queuetime), else_=None).label("queuetime"),
        case((and_(w.status == "completed", w.conclusion.in_(FAILED)), 1), else_=0).label("failed"),
    ).where(*filters.conditions(), w.createtime.is_not(None))


def performance_runs(conn: Connection, filters: Filters) -> pd.DataFrame:
    """One row per run in the selection: createtime, workflow, runtime, queuetime, failed.

    `runtime` is kept only for completed success/failed runs (the build time
    of metrics.md), `queuetime` only for started runs.
    """
    rows = conn.execute(_run_rows_query(filters)).all()
    return pd.DataFrame([tuple(r) for r in rows],
                        columns=["createtime", "workflow", "runtime", "queuetime", "failed"])


def _series_records(rows, bucket_seconds: int) -> list[dict]:
    """p50/p90 of build and queue time, failures and runs per (bucket, workflow) of run rows
    (createtime, workflow, runtime, queuetime, failed); `bucket` in epoch seconds, sorted by workflow
    then bucket.  Plain Python: pandas' set-up cost more than the arithmetic for a chart's few runs."""
    groups: dict = {}
    for createtime, workflow, runtime, queuetime, failed in rows:
        key = (workflow if isinstance(workflow, str) else "(unnamed)", (createtime // bucket_seconds) * bucket_seconds)
        group = groups.get(key)
        if group is None:
            group = groups[key] = [[], [], 0, 0]
        if runtime is not None:
            group[0].append(runtime)
        if queuetime is not None:
            group[1].append(queuetime)
        group[2] += int(failed or 0)
        group[3] += 1
    out = []
    for (workflow, bucket), (runtimes, queues, failed, runs) in sorted(groups.items()):
        runtimes, queues = metrics._sorted(runtimes), metrics._sorted(queues)
        out.append({"bucket": bucket, "workflow": workflow,
                    "runtime_p50": metrics._sorted_percentile(runtimes, 50),
                    "runtime_p90": metrics._sorted_percentile(runtimes, 90),
                    "queue_p50": metrics._sorted_percentile(queues, 50),
                    "queue_p90": metrics._sorted_percentile(queues, 90),
                    "failures": failed, "runs": runs})
    return out


def _series_frame(records: list[dict]) -> pd.DataFrame:
    """`records` as the series frame: buckets as UTC timestamps, missing percentiles as NaN."""
    if not records:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    frame = pd.DataFrame.from_records(records, columns=SERIES_COLUMNS)
    frame["bucket"] = pd.to_datetime(frame["bucket"], unit="s", utc=True)
    for column in SERIES_COLUMNS[2:6]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def performance_series(runs: pd.DataFrame, bucket_seconds: int) -> pd.DataFrame:
    """p50/p90 of build and queue time and failure count per (bucket, workflow)."""
    if runs.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    rows = zip(runs["createtime"], runs["workflow"], *(
        [None if v is None or v != v else v for v in runs[c]] for c in ("runtime", "queuetime")), runs["failed"])
    return _series_frame(_series_records(rows, bucket_seconds))


def performance_records(conn: Connection, filters: Filters, bucket_seconds: int) -> list[dict]:
    """The series of `filters` as dicts (`SERIES_COLUMNS`, `bucket` in epoch seconds), sorted by workflow
    then bucket: per day from the rollups (one branch: each day's exact p50/p90 is kept per workflow)
    plus the partial first day from the runs; else from the runs."""
    plan = rollup.scope(conn, filters) if bucket_seconds == 86400 else None
    if plan is None or plan.branch_ids is None or len(plan.branch_ids) != 1:
        return _series_records(conn.execute(_run_rows_query(filters)).all(), bucket_seconds)
    d = rollup_days.c
    rows = conn.execute(
        select(d.day, workflows.c.name, d.build_p50, d.build_p90, d.queue_p50, d.queue_p90, d.failed, d.runs)
        .join(workflows, workflows.c.id == d.workflow).where(*plan.conditions())).all()
    out = [{"bucket": day * 86400, "workflow": name if isinstance(name, str) else "(unnamed)",
            "runtime_p50": b50, "runtime_p90": b90, "queue_p50": q50, "queue_p90": q90, "failures": failed,
            "runs": runs} for day, name, b50, b90, q50, q90, failed, runs in rows]
    if plan.raw is not None:
        out += _series_records(conn.execute(_run_rows_query(plan.raw)).all(), bucket_seconds)
    out.sort(key=lambda r: (r["workflow"], r["bucket"]))
    return out


def performance(conn: Connection, filters: Filters, bucket_seconds: int) -> pd.DataFrame:
    """`performance_records` as a frame (buckets as UTC timestamps)."""
    return _series_frame(performance_records(conn, filters, bucket_seconds))


# --- the build stream --------------------------------------------------------------------------

def stream_rows(conn: Connection, *, repo: str | None = None, workflow: str | None = None,
                limit: int = STREAM_SIZE) -> list[dict]:
    """The newest runs as raw `RUN_COLUMNS` dicts (what live updates push too)."""
    query = run_select()
    if repo:
        query = query.where(w.repo == repo)
    if workflow:
        query = query.where(w.archivedworkflowname == workflow)
    query = query.order_by(desc(w.createtime), desc(w.gitid)).limit(limit)
    return [dict(r) for r in conn.execute(query).mappings().all()]


__all__ = ["cell_state", "commit_state", "commit_grid", "grid_records", "commit_page", "commit_cells", "performance_runs",
           "performance_series", "performance", "performance_records", "stream_rows", "GLYPHS", "PAGE_SIZE"]
