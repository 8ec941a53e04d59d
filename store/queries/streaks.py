"""Current failure streaks of (workflow, branch) pairs, and broken default branches.

A *cell* is one workflow on one commit of one branch: its newest run's latest
attempt.  A streak walks a branch's cells newest-first by commit time, skips
the cells without a decisive result (running, queued, skipped, neutral) and
stops at the first decisive cell that is not failed; window filters never cut
a streak short (streaks are about now).

A streak needs only a branch's newest cells, down to the first decisive cell
that is not failed (the stopper).  So each pair's runs are read newest first
through the (workflow, branch, createtime) index with a limit, and again with
a larger one for the few pairs not settled.  A stopper is trusted only if its
commit is not older than the oldest run read: every newer commit's runs were
read too.
"""
import time
from functools import lru_cache

import pandas as pd
from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.engine import Connection

from ingest.state import DECISIVE, FAILED
from store.prepared import execute_prepared
from store.queries.filters import Filters
from store.schema import branches, commits, repos, workflowruns, workflows

w = workflowruns.c

_WALK_COLUMNS = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "red_since",
                 "newest_run", "after"]
STREAK_COLUMNS = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "sha", "message",
                  "commit_author", "red_since", "run_url", "after"]
_CELL = (w.repo, w.workflow.label("workflow_id"), w.branch.label("branch_id"), w.archivedworkflowname.label("workflow"),
         w.archivedbranchname.label("branch"), w.commitid, w.gitid, w.createtime, w.status, w.conclusion,
         commits.c.time.label("ctime"))


_NEWEST = (select(*_CELL).join(commits, commits.c.id == w.commitid)
           .where(w.workflow == bindparam("wf"), w.branch == bindparam("br"))
           .order_by(w.createtime.desc(), w.gitid.desc()))
_C = {c.name: i for i, c in enumerate(_CELL)}


@lru_cache(maxsize=8)
def _newest_statement(limit: int | None):
    """One statement object per limit (`execute_prepared` compiles each once)."""
    return _NEWEST.limit(limit) if limit is not None else _NEWEST


def _walk_pair(rows: list, complete: bool) -> dict | None | bool:
    """The streak of one pair from its newest runs (newest first): a `_WALK_COLUMNS` dict, None
    when the pair is not red, False when `rows` cannot settle it (read further back)."""
    seen, cells = set(), []
    for row in rows:  # the newest run of each commit is its cell
        if row[_C["commitid"]] not in seen:
            seen.add(row[_C["commitid"]])
            cells.append(row)
    cells = [c for c in cells if c[_C["status"]] == "completed" and c[_C["conclusion"]] in DECISIVE]
    cells.sort(key=lambda c: (c[_C["ctime"]], c[_C["commitid"]]), reverse=True)
    bad = []
    for cell in cells:
        if cell[_C["conclusion"]] not in FAILED:
            if not complete and rows and cell[_C["ctime"]] < min(r[_C["createtime"]] for r in rows):
                return False  # the stopper is older than what was read: a newer commit may be missing
            after = cell[_C["conclusion"]]
            break
        bad.append(cell)
    else:
        if not complete:
            return False
        after = None
    if not bad:
        return None
    first, newest = bad[-1], bad[0]
    return {"repo": first[_C["repo"]], "workflow": first[_C["workflow"]], "branch": first[_C["branch"]],
            "workflow_id": first[_C["workflow_id"]], "branch_id": first[_C["branch_id"]], "streak": len(bad),
            "first_bad": int(first[_C["commitid"]]), "red_since": first[_C["createtime"]],
            "newest_run": int(newest[_C["gitid"]]), "after": after}


def current_streaks(conn: Connection, pairs, limits=(8, 200, None)) -> pd.DataFrame:
    """The current streaks of `pairs` (workflow id, branch id), each pair read newest first.

    A pair's newest `limits[0]` runs settle almost every streak (green pairs after one cell);
    pairs not settled are read again with the next limit, the last None meaning all runs.
    One indexed read per pair: reading a time slice of every pair read thousands of runs
    of busy default branches to find streaks of a few cells.
    """
    found, todo = [], sorted({(int(a), int(b)) for a, b in pairs})
    for limit in limits:
        stmt = _newest_statement(limit)
        still = []
        for wf, br in todo:
            rows = [tuple(r) for r in execute_prepared(conn, f"newest_cells_{limit}", stmt,
                                                       {"wf": wf, "br": br}).all()]
            walked = _walk_pair(rows, complete=limit is None or len(rows) < limit)
            if walked is False:
                still.append((wf, br))
            elif walked:
                found.append(walked)
        todo = still
        if not todo:
            break
    if not found:
        return pd.DataFrame(columns=STREAK_COLUMNS)
    return _with_details(conn, pd.DataFrame(found, columns=_WALK_COLUMNS))


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
    window = [w.createtime >= filters.since] if filters.since is not None else []
    pairs = conn.execute(select(w.workflow, w.branch).where(*scope.conditions(), *window).distinct()).all()
    return current_streaks(conn, [tuple(p) for p in pairs])


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


def broken_main(conn: Connection, filters: Filters, *, now: float | None = None) -> pd.DataFrame:
    """Workflows currently red on their repository's default branch, longest red first.

    The branch filter and the window are ignored (this is about default branches, now);
    `red_for` is now − red_since, in seconds.
    """
    now = time.time() if now is None else now
    scope = Filters(repo=filters.repo, workflow=filters.workflow)
    pairs = _default_branch_pairs(conn, scope)
    if not pairs:
        return pd.DataFrame(columns=STREAK_COLUMNS + ["red_for"])
    frame = current_streaks(conn, pairs)
    frame["red_for"] = now - frame["red_since"].astype(float)
    return frame.sort_values(["red_for", "streak"], ascending=False, ignore_index=True)
