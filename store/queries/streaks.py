"""Current failure streaks of (workflow, branch) pairs, and broken default branches.

A *cell* is one workflow on one commit of one branch: its newest run's latest
attempt.  A streak walks a branch's cells newest-first by commit time, skips
the cells without a decisive result (running, queued, skipped, neutral) and
stops at the first decisive cell that is not failed; window filters never cut
a streak short (streaks are about now).

The writer keeps every red pair's streak in `rollup_streaks`
(`store/derived/streaks.py`), so reading streaks is a lookup per pair.
"""
from __future__ import annotations  # `-> pd.DataFrame` stays unevaluated: pandas loads on first use

import time

from sqlalchemy import and_, literal_column, or_, select
from sqlalchemy.engine import Connection

from store.lazymodules import pandas as pd
from store.queries.filters import Filters
from store.schema import branches, commits, repos, rollup_streaks, workflowruns, workflows

w = workflowruns.c
s = rollup_streaks.c

_WALK_COLUMNS = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "red_since",
                 "newest_run", "after"]
STREAK_COLUMNS = ["repo", "workflow", "branch", "workflow_id", "branch_id", "streak", "first_bad", "sha", "message",
                  "commit_author", "red_since", "run_url", "after"]
_STORED = (select(s.repo, workflows.c.name, branches.c.name, s.workflow, s.branch, s.streak, s.first_bad, s.red_since,
                  s.newest_run, s.after)
           .join(workflows, workflows.c.id == s.workflow).join(branches, branches.c.id == s.branch)
           .where(s.streak > 0))


def _stored(conn: Connection, query, pairs) -> list[tuple]:
    """`query`'s rows for the (workflow id, branch id) `pairs`."""
    todo = sorted({(int(b), int(a)) for a, b in pairs})  # as the key: (branch, workflow); ints
    found = []
    for i in range(0, len(todo), 400):
        chunk = todo[i:i + 400]
        # The branch list lets SQLite search the key; the pairs then pick the rows.  Spelled
        # inline (ids are ints): 800 bound parameters cost more to process than the search.
        branches_in = ", ".join(str(b) for b in sorted({b for b, _ in chunk}))
        pairs_in = ", ".join(f"({b}, {wf})" for b, wf in chunk)
        found += [tuple(r) for r in conn.execute(query.where(
            literal_column(f"rollup_streaks.branch IN ({branches_in})"),
            literal_column(f"(rollup_streaks.branch, rollup_streaks.workflow) IN (VALUES {pairs_in})"))).all()]
    return found


def streak_lengths(conn: Connection, pairs) -> dict[tuple[int, int], int]:
    """{(workflow id, branch id): current streak} of the red pairs among `pairs`."""
    return {(wf, br): n for wf, br, n in _stored(conn, select(s.workflow, s.branch, s.streak).where(s.streak > 0),
                                                 pairs)}


def current_streaks(conn: Connection, pairs) -> pd.DataFrame:
    """The current streaks of `pairs` (workflow id, branch id) that are red, from `rollup_streaks`."""
    found = _stored(conn, _STORED, pairs)
    if not found:
        return pd.DataFrame(columns=STREAK_COLUMNS)
    return pd.DataFrame(_with_details(conn, [dict(zip(_WALK_COLUMNS, row)) for row in found]),
                        columns=STREAK_COLUMNS)


def _with_details(conn: Connection, found: list[dict]) -> list[dict]:
    """Add the first bad commits' sha, message and author, and the newest failed runs' links."""
    shas = {row[0]: row[1:] for row in conn.execute(
        select(commits.c.id, commits.c.hash, commits.c.message, commits.c.author)
        .where(commits.c.id.in_(sorted({f["first_bad"] for f in found})))).all()}
    urls = dict(conn.execute(select(w.gitid, w.url).where(w.gitid.in_(sorted({f["newest_run"] for f in found})))).all())
    for f in found:
        f["sha"], f["message"], f["commit_author"] = shas.get(f["first_bad"], (None, None, None))
        f["run_url"] = urls.get(f["newest_run"])
    return found


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
    query = select(workflows.c.id, workflows.c.repo)
    if scope.repo:
        query = query.where(workflows.c.repo == scope.repo)
    if scope.workflow:
        query = query.where(workflows.c.name == scope.workflow)
    found = conn.execute(query).all()
    if not found:
        return []
    named = dict(conn.execute(select(repos.c.name, repos.c.default_branch)
                              .where(repos.c.name.in_(sorted({r for _, r in found})))).all())
    # Each repository's branch by its name (an index search), not a join with all its branches.
    wanted = or_(*(and_(branches.c.repo == repo, branches.c.name.in_([named[repo]] if named.get(repo)
                                                                     else ["main", "master"]))
                   for repo in sorted({r for _, r in found})))
    by_repo: dict[str, list] = {}
    for branch_id, repo in conn.execute(select(branches.c.id, branches.c.repo).where(wanted)).all():
        by_repo.setdefault(repo, []).append(branch_id)
    return sorted((wf, br) for wf, repo in found for br in by_repo.get(repo, ()))


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
