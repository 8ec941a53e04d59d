"""The failing job and step of each failed run (`workflowruns.fail_*`), kept by every write.

metrics.md's "same failure": for a failed run, its failed job that ended first (then by
name) and that job's first failed step; and whom the failure is shown under (`fail_author`:
the commit's author, else the run's actor; a commit's write refreshes its runs').  Kept on
the run so Triage groups failures without a lookup per run; recomputed from the jobs
whenever the run's latest attempt or one of its failed jobs is written (its ("run", gitid)
key, `store.derived`), so any arrival order ends the same.
"""
from functools import lru_cache

from sqlalchemy import and_, bindparam, case, func, inspect, or_, select
from sqlalchemy.engine import Connection

from domain.state import FAILED
from store.derived.part import Part
from store.prepared import execute_prepared, literals
from store.schema import commits, jobs, steps, workflowruns

FAILED_JOB = ("failure", "timed_out")
w = workflowruns.c


def update(conn: Connection, run_gitids=None, *, authors: bool = True) -> None:
    """Set `fail_job`, `fail_step`, `fail_step_number` and (unless not `authors`: migration 0004)
    `fail_author` of runs (all failed runs when None) from their jobs and commits."""
    stmt = _cause_statement(conn.dialect.name, run_gitids is None, authors)
    if run_gitids is None:
        conn.execute(stmt)
    elif run_gitids:
        execute_prepared(conn, "failure_causes", stmt, [{"g": g} for g in sorted(set(run_gitids))])


@lru_cache(maxsize=8)
def _cause_statement(_dialect_name: str, every_failed: bool, authors: bool = True):
    failed = and_(w.status == "completed", w.conclusion.in_(literals(FAILED)))
    fj = jobs.alias("failing_job")  # an alias: the outer lookups of its name must not correlate to it
    failing_job = (
        select(fj.c.id)
        .where(fj.c.run_gitid == w.gitid, fj.c.run_attempt == w.run_attempt,
               fj.c.conclusion.in_(literals(FAILED_JOB)))
        .order_by(fj.c.endtime.is_(None), fj.c.endtime, fj.c.name, fj.c.gitid)
        .limit(1).correlate(workflowruns).scalar_subquery()  # the updated run, two levels up
    )
    first_step = (select(steps.c.number, steps.c.name)
                  .where(steps.c.job == failing_job, steps.c.conclusion == "failure")
                  .order_by(steps.c.number).limit(1))
    values = {
        "fail_job": case((failed, select(jobs.c.name).where(jobs.c.id == failing_job).scalar_subquery()),
                         else_=None),
        "fail_step": case((failed, first_step.with_only_columns(steps.c.name).scalar_subquery()), else_=None),
        "fail_step_number": case((failed, first_step.with_only_columns(steps.c.number).scalar_subquery()),
                                 else_=None),
    }
    if authors:
        values["fail_author"] = case((failed, func.coalesce(
            select(commits.c.author).where(commits.c.id == w.commitid).scalar_subquery(), w.author)), else_=None)
    stmt = workflowruns.update().values(**values)
    return stmt.where(failed) if every_failed else stmt.where(w.gitid == bindparam("g"))


def update_commit(conn: Connection, commit_id: int) -> None:
    """Refresh `fail_author` of a commit's failed runs (its author may arrive after them)."""
    execute_prepared(conn, "failure_authors", _author_statement(), {"c": commit_id})


@lru_cache(maxsize=1)
def _author_statement():
    failed = and_(w.status == "completed", w.conclusion.in_(literals(FAILED)))
    author = func.coalesce(select(commits.c.author).where(commits.c.id == w.commitid).scalar_subquery(), w.author)
    return workflowruns.update().where(w.commitid == bindparam("c"), failed).values(fail_author=author)


def refresh(conn: Connection, keys) -> None:
    """Recompute the causes of the ("run", gitid) keys' runs and the failure authors of the
    ("commit_author", commit) keys' failed runs."""
    update(conn, [key[1] for key in keys if key[0] == "run"])
    for key in keys:
        if key[0] == "commit_author":
            update_commit(conn, key[1])


def rebuild(conn: Connection) -> None:
    """Recompute the causes of every failed run and clear those of the other runs."""
    # `fail_author` comes with migration 0007; migration 0004 rebuilds the other columns before.
    authors = "fail_author" in {c["name"] for c in inspect(conn).get_columns("workflowruns")}
    update(conn, authors=authors)
    kept = [w.fail_job, w.fail_step, w.fail_step_number] + ([w.fail_author] if authors else [])
    not_failed = or_(w.status.is_distinct_from("completed"), w.conclusion.is_(None),
                     w.conclusion.not_in(literals(FAILED)))
    conn.execute(workflowruns.update().where(not_failed, or_(*(c.is_not(None) for c in kept)))
                 .values({c.name: None for c in kept}))


PART = Part(name="failure_causes", tables=(), columns=(w.fail_job, w.fail_step, w.fail_step_number, w.fail_author),
            kinds=("run", "commit_author"), refresh=refresh, rebuild=rebuild)
