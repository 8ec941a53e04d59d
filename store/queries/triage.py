"""The Triage view's queries: failures grouped, build analysis, flaky runs (broken main: streaks.py).

Each follows the Triage words of the shared metrics.md.  Rows are latest
attempts (`workflowruns`) unless an attempt history is the point (flaky runs).
The current streaks of the analysis grid come from `store.queries.streaks`.
"""
from __future__ import annotations  # `-> pd.DataFrame` stays unevaluated: pandas loads on first use

import json
from collections import Counter
from dataclasses import replace

from sqlalchemy import and_, bindparam, case, exists, func, literal, literal_column, select, tuple_
from sqlalchemy.engine import Connection
from sqlalchemy.orm import aliased

from domain.state import DECISIVE, FAILED
from store.lazymodules import pandas as pd
from store.prepared import literals
from store.queries import rollup
from store.queries.filters import Filters
from store.queries.streaks import streak_lengths
from store.schema import (branches, commits, rollup_days, rollup_pairs, rollup_workflow_days, runattempts,
                          workflowruns, workflows)
from store.sqlfunctions import distinct_list, pipelined, searches_are_cheap

w = workflowruns.c
RUNS_PER_GROUP = 20
FLAKY_LIST_LIMIT = 500


def _sum(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _flaky():
    """SQL: an attempt of the run failed and a later attempt succeeded."""
    failed, later = aliased(runattempts), aliased(runattempts)
    return and_(w.run_attempt > 1, exists(
        select(literal(1)).select_from(failed)
        .join(later, and_(later.c.run == failed.c.run, later.c.attempt > failed.c.attempt))
        .where(failed.c.run == w.id, failed.c.conclusion.in_(FAILED), later.c.conclusion == "success")
    ))


_IS_FLAKY = _flaky()  # built once: building it cost more than running it on a small store


# -- Failed builds, grouped by the same failure ------------------------------------------

def failure_groups(conn: Connection, filters: Filters, *, runs_per_group: int = RUNS_PER_GROUP) -> pd.DataFrame:
    """Failed runs grouped by the same failure (repo, workflow, failing job, failing step), newest first.

    Columns: repo, workflow, job, step, step_number, count, first_seen, last_seen, commits,
    authors (sorted list), runs (newest `runs_per_group`, each a dict).  An author is the
    commit's, else the run's actor.  The failing job, step and author of each failed run are
    kept by the writer (`workflowruns.fail_*`), and two partial indexes hold the failed runs, one by
    creation time (a window's failed runs) and one by group (each group's newest runs): the
    groups with their authors are one grouped read, the newest runs one search per group (SQLite) or
    one statement for every group (PostgreSQL: `store.sqlfunctions.searches_are_cheap`).
    """
    columns = ["repo", "workflow", "job", "step", "step_number", "count", "first_seen", "last_seen", "commits",
               "authors", "runs"]
    # Spelled as the partial indexes say (literals), so SQLite reads the failed runs from them alone.
    failed = [*filters.conditions(), w.status == literal_column("'completed'"), w.conclusion.in_(literals(FAILED))]
    key = (w.repo, w.archivedworkflowname, w.fail_job, w.fail_step)
    if filters.since is not None:
        oldest = conn.execute(select(func.min(w.createtime)).where(
            w.status == literal_column("'completed'"), w.conclusion.in_(literals(FAILED)))).scalar()
        if oldest is not None and filters.since <= oldest:  # the window holds every failed run
            filters = replace(filters, since=None)
            failed = [*filters.conditions(), *failed[-2:]]
    # A window reads its failed runs by time: `repo || ''` keeps SQLite (without statistics) from
    # scanning every failed run in the group index's order to spare the GROUP BY a sort.
    grouped = (w.repo.op("||")(literal_column("''")).label("repo"), *key[1:]) if filters.since is not None else key
    groups = conn.execute(
        select(*grouped, func.max(w.fail_step_number), func.count(), func.min(w.createtime), func.max(w.createtime),
               func.count(w.commitid.distinct()), distinct_list(w.fail_author))
        .where(*failed).group_by(*grouped).order_by(func.max(w.createtime).desc())
    ).all()
    if not groups:
        return pd.DataFrame(columns=columns)

    shown = (w.gitid, w.url, w.archivedcommithash, w.archivedbranchname, w.fail_author, w.conclusion, w.createtime)
    if searches_are_cheap(conn):
        runs = _each(conn, lambda nulls: _newest_of_group(shown, failed, key, nulls, runs_per_group),
                     [{f"k{i}": v for i, v in enumerate(g[:4])} for g in groups], lambda p: tuple(
                         v is None for v in p.values()))
    else:
        runs = _newest_by_group(conn, shown, failed, key, runs_per_group, [tuple(g[:4]) for g in groups])
    out = []
    for (g, rows) in zip(groups, runs):
        out.append({"repo": g[0], "workflow": g[1], "job": g[2], "step": g[3], "step_number": g[4], "count": g[5],
                    "first_seen": g[6], "last_seen": g[7], "commits": g[8],
                    "authors": sorted({a for a in (json.loads(g[9]) if isinstance(g[9], str) else g[9])
                                       if isinstance(a, str)}),
                    "runs": [dict(zip(("gitid", "url", "sha", "branch", "author", "conclusion", "createtime"), r))
                             for r in rows]})
    # In order of each group's newest run; object columns keep None as None.
    return pd.DataFrame(out, columns=columns, dtype=object)


def _newest_of_group(shown, failed, key, nulls: tuple, limit: int):
    """A group's newest failed runs, one indexed search (SQLite): `col IS NULL` for the group's missing
    values and `col = :k` for the others, one statement per pattern of missing values."""
    match = [c.is_(None) if null else c == bindparam(f"k{i}") for i, (c, null) in enumerate(zip(key, nulls))]
    return select(*shown).where(*failed, *match).order_by(w.createtime.desc(), w.gitid.desc()).limit(limit)


def _newest_by_group(conn: Connection, shown, failed, key, limit: int, groups: list[tuple]) -> list[list]:
    """Each group's newest failed runs, for the groups in `groups`' order, from one statement that numbers the
    failed runs newest first within their group (PostgreSQL: searched one group at a time, each search read
    the window's failed runs again, seconds for a wide window at a million runs; BENCHMARKS.md)."""
    number = func.row_number().over(partition_by=key, order_by=(w.createtime.desc(), w.gitid.desc()))
    ranked = select(*key, *shown, number.label("n")).where(*failed).subquery()
    found: dict = {g: [] for g in groups}
    width = len(key)
    for row in conn.execute(select(ranked).where(ranked.c.n <= limit).order_by(ranked.c.n)):
        rows = found.get(tuple(row[:width]))
        if rows is not None:  # (a run committed since the groups were read may start a group of its own)
            rows.append(tuple(row[width:width + len(shown)]))
    return [found[g] for g in groups]


def _each(conn: Connection, statement, params: list[dict], variant=None):
    """`statement`'s rows for each of `params`: compiled once and run on the driver's cursor (hundreds of
    small searches; SQLAlchemy's per-call set-up cost more than SQLite's work), on PostgreSQL all sent before
    any answer is read (`store.sqlfunctions.pipelined`: one wait, not a round trip each).  With `variant`,
    `statement` is a function of `variant(p)` giving the statement for `p`, each variant compiled once."""
    statement_for = statement if variant is not None else (lambda _which: statement)
    variant = variant or (lambda _p: None)
    compiled_for: dict = {}

    def driver_args(p):
        which = variant(p)
        compiled = compiled_for.get(which)
        if compiled is None:
            compiled = compiled_for[which] = statement_for(which).compile(
                dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        bound = compiled.construct_params(p, _check=False)
        args = tuple(bound[k] for k in compiled.positiontup) if compiled.positiontup is not None else bound
        return compiled.string, args

    if not searches_are_cheap(conn):
        yield from pipelined(conn, (driver_args(p) for p in params))
        return
    cursor = conn.connection.cursor()
    try:
        for p in params:
            cursor.execute(*driver_args(p))
            yield cursor.fetchall()
    finally:
        cursor.close()


# -- Build analysis ----------------------------------------------------------------------

ANALYSIS_PAIRS = 200

_TOTALS = ("repo", "workflow_id", "branch_id", "runs", "decisive", "failed", "flaky", "successful", "last_run")


def _pair_totals(conn: Connection, filters: Filters, max_pairs: int, *, rollups: bool = True) -> list[tuple]:
    """`_TOTALS` tuples per (workflow, branch) pair: the top `max_pairs` by failures, then runs, repo and ids.
    From the rollups' whole days plus the runs of the partial day when the rollups can serve
    `filters`; else from the runs."""
    order = (literal_column("failed").desc(), literal_column("runs").desc(), literal_column("repo"),
             literal_column("workflow_id"), literal_column("branch_id"))
    plan = rollup.scope(conn, filters) if rollups else None
    if plan is None:
        completed = w.status == "completed"
        flaky = _IS_FLAKY
        return [tuple(r) for r in conn.execute(
            select(w.repo, w.workflow.label("workflow_id"), w.branch.label("branch_id"), func.count().label("runs"),
                   _sum(and_(completed, w.conclusion.in_(DECISIVE))).label("decisive"),
                   _sum(and_(completed, w.conclusion.in_(FAILED))).label("failed"),
                   _sum(flaky).label("flaky"),
                   _sum(and_(completed, w.conclusion == "success", ~flaky)).label("successful"),
                   func.max(w.createtime).label("last_run"))
            .where(*filters.conditions()).group_by(w.workflow, w.branch, w.repo).order_by(*order).limit(max_pairs))]
    if plan.first_day is None:  # all time: the pairs' totals, ranked through their index
        p = rollup_pairs.c
        return [tuple(r) for r in conn.execute(
            select(p.repo, p.workflow.label("workflow_id"), p.branch.label("branch_id"), p.runs, p.decisive, p.failed,
                   p.flaky, p.successful, p.last_run)
            .where(*plan.conditions(rollup_pairs)).order_by(p.failed.desc(), p.runs.desc(), *order[2:])
            .limit(max_pairs))]
    d = rollup_days.c
    sums = [func.sum(c).label(c.name) for c in (d.runs, d.decisive, d.failed, d.flaky, d.successful)]
    # Grouped by `branch + 0`, which no index orders: else SQLite (without statistics) scans the
    # whole table in key order to spare the GROUP BY a sort, rather than read the window's days
    # from the covering day index.
    branch = d.branch + 0 if plan.branch_ids is None else d.branch
    by_pair = (select(d.repo, d.workflow.label("workflow_id"), branch.label("branch_id"), *sums,
                      func.max(d.last_run).label("last_run"))
               .where(*plan.conditions()).group_by(branch, d.workflow, d.repo))
    partial = _pair_totals(conn, plan.raw, 10 ** 9) if plan.raw is not None else []
    # Each pair's failures in the window, from only the day rows with a failure (a few percent of
    # a long window's rows): when at least `max_pairs` pairs failed, only those with as many
    # failures as the `max_pairs`-th can rank (ties on failures rank by runs).
    whole: Counter = Counter()
    for br, wf, n in conn.execute(select(branch, d.workflow, func.sum(d.failed))
                                  .where(*plan.conditions(), d.failed > 0).group_by(branch, d.workflow)):
        whole[(br, wf)] += n
    failures = +(whole + Counter({(br, wf): n for _repo, wf, br, _runs, _decisive, n, *_ in partial}))
    if len(failures) >= max_pairs:
        least = sorted(failures.values(), reverse=True)[max_pairs - 1]
        candidates = {pair for pair, n in failures.items() if n >= least}
        rows = [r for r in partial if (r[2], r[1]) in candidates]
        # The whole days of the candidates that failed `least` times in them, in one read; then
        # of those the partial day lifts to `least`.
        enough = (select(branch, d.workflow).where(*plan.conditions(), d.failed > 0)
                  .group_by(branch, d.workflow).having(func.sum(d.failed) >= least))
        rows += conn.execute(by_pair.where(tuple_(d.branch, d.workflow).in_(enough))).all()
        extra = sorted(pair for pair in candidates if whole[pair] < least)
    else:
        top = [tuple(r) for r in conn.execute(by_pair.order_by(*order).limit(max_pairs))]
        if not partial:
            return top
        # The partial day can lift a pair into the top: its pairs join the candidates, with their whole days.
        rows = top + partial
        extra = sorted({(br, wf) for _r, wf, br, *_ in partial} - {(br, wf) for _r, wf, br, *_ in top})
    for chunk in _chunks(extra, 500):
        # The branch list lets SQLite search the key (branch, workflow, day); the pairs pick the rows.
        rows += conn.execute(by_pair.where(d.branch.in_(sorted({b for b, _ in chunk})),
                                           tuple_(d.branch, d.workflow).in_(chunk))).all()
    totals: dict[tuple, list] = {}
    for repo, wf, br, *counts, last_run in rows:
        total = totals.setdefault((repo, wf, br), [0, 0, 0, 0, 0, None])
        for i, n in enumerate(counts):
            total[i] += n
        if last_run is not None and (total[5] is None or last_run > total[5]):
            total[5] = last_run
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][2], -kv[1][0], kv[0]))[:max_pairs]
    return [(*key, *total) for key, total in ranked]


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


ANALYSIS_COLUMNS = ["repo", "workflow", "branch", "runs", "decisive", "failed", "failure_rate", "flaky", "successful",
                    "flake_rate", "streak", "last_run"]


def build_analysis(conn: Connection, filters: Filters, *, max_pairs: int = ANALYSIS_PAIRS) -> pd.DataFrame:
    """Workflows × branches in `filters`: runs, failed, failure and flake rates, current streak.

    At most `max_pairs` rows: the pairs with the most failures, then the most runs; ordered by
    repo, workflow and branch.

    failure_rate = failed ÷ decisive completed runs; flake_rate = flaky ÷ (successful + flaky),
    where a successful run is one whose latest attempt succeeded with no failed attempt before.
    Rates over nothing are None.  The streak is the current one, whatever the window.
    """
    totals = _pair_totals(conn, filters, max_pairs)
    if not totals:
        return pd.DataFrame(columns=ANALYSIS_COLUMNS)
    workflow_names = dict(conn.execute(select(workflows.c.id, workflows.c.name)
                                       .where(workflows.c.id.in_(sorted({t[1] for t in totals})))).all())
    branch_names = dict(conn.execute(select(branches.c.id, branches.c.name)
                                     .where(branches.c.id.in_(sorted({t[2] for t in totals})))).all())
    red = streak_lengths(conn, [(t[1], t[2]) for t in totals])
    rows = []
    for repo, wf, br, runs, decisive, failed, flaky, successful, last_run in totals:
        rows.append((repo, workflow_names.get(wf), branch_names.get(br), runs, decisive, failed,
                     failed / decisive if decisive else None, flaky, successful,
                     flaky / (flaky + successful) if flaky + successful else None, red.get((wf, br), 0), last_run))
    rows.sort(key=lambda r: (r[0], r[1] or "", r[2] or ""))
    frame = pd.DataFrame(rows, columns=ANALYSIS_COLUMNS)
    for column in ("failure_rate", "flake_rate"):  # None stays None
        frame[column] = pd.Series([r[ANALYSIS_COLUMNS.index(column)] for r in rows], dtype=object)
    return frame


# -- Flaky runs --------------------------------------------------------------------------

def flaky_runs(conn: Connection, filters: Filters, *, limit: int = FLAKY_LIST_LIMIT) -> pd.DataFrame:
    """Runs in `filters` where an attempt failed and a later attempt succeeded, newest first.

    Columns: id, repo, workflow, branch, sha, message, author, createtime, url, attempts
    (the run's number of attempts), history (conclusions of its attempts, oldest first).
    """
    columns = ["id", "repo", "workflow", "branch", "sha", "message", "author", "createtime", "url", "attempts",
               "history"]
    rows = conn.execute(
        select(w.id, w.gitid, w.repo, w.archivedworkflowname, w.archivedbranchname, w.archivedcommithash,
               commits.c.message, func.coalesce(commits.c.author, w.author), w.createtime, w.url)
        .join(commits, commits.c.id == w.commitid)
        .where(*filters.conditions(), _IS_FLAKY)
        .order_by(w.createtime.desc(), w.gitid.desc()).limit(limit)
    ).all()
    if not rows:
        return pd.DataFrame(columns=columns)
    history: dict[int, list] = {}
    ids = ", ".join(str(int(r[0])) for r in rows)  # ints, inline: hundreds of bound parameters cost more
    for run_id, conclusion, status in conn.execute(
            select(runattempts.c.run, runattempts.c.conclusion, runattempts.c.status)
            .where(literal_column(f"runattempts.run IN ({ids})"))
            .order_by(runattempts.c.run, runattempts.c.attempt)).all():
        history.setdefault(run_id, []).append(conclusion or status)
    return pd.DataFrame([(*r[1:], len(history.get(r[0], [])), history.get(r[0], [])) for r in rows],
                        columns=columns)


def flaky_counts(conn: Connection, filters: Filters, *, rollups: bool = True) -> pd.DataFrame:
    """Flaky runs per workflow in `filters`, most first: repo, workflow, flaky."""
    return pd.DataFrame(_flaky_counts(conn, filters, rollups), columns=["repo", "workflow", "flaky"])


def _flaky_counts(conn: Connection, filters: Filters, rollups: bool) -> list[tuple]:
    plan = rollup.scope(conn, filters) if rollups else None
    if plan is None:
        return [tuple(r) for r in conn.execute(
            select(w.repo, w.archivedworkflowname.label("workflow"), func.count().label("flaky"))
            .where(*filters.conditions(), _IS_FLAKY)
            .group_by(w.workflow, w.repo, w.archivedworkflowname)
            .order_by(func.count().desc(), w.archivedworkflowname, w.repo)
        ).all()]
    # Summed over branches already, unless one branch is asked for.
    table = rollup_workflow_days if plan.branch_ids is None else rollup_days
    d = table.c
    rows = conn.execute(
        select(d.repo, workflows.c.name.label("workflow"), func.sum(d.flaky).label("flaky"))
        .join(workflows, workflows.c.id == d.workflow).where(*plan.conditions(table))
        .group_by(d.workflow, d.repo, workflows.c.name).having(func.sum(d.flaky) > 0)).all()
    if plan.raw is not None:
        rows += _flaky_counts(conn, plan.raw, False)
    totals: Counter = Counter()
    for repo, workflow, n in rows:
        totals[(repo, workflow)] += int(n)
    return [(repo, workflow, n) for (repo, workflow), n in
            sorted(totals.items(), key=lambda kv: (-kv[1], kv[0][1], kv[0][0]))]
