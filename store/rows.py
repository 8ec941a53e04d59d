"""Rows as the pages, the API and live messages show them.

`RUN_COLUMNS` is the one definition of a run row (latest attempt, joined to
its repository's names); the build stream, `/api/builds`, the CSV export and
the WebSocket messages all take it from here.
"""
from sqlalchemy import select
from sqlalchemy.engine import Connection

from store.schema import branches, commits, workflowruns, workflows

RUN_COLUMNS = (
    workflowruns.c.gitid.label("id"),
    workflowruns.c.repo,
    workflowruns.c.archivedworkflowname.label("workflow"),
    workflowruns.c.archivedbranchname.label("branch"),
    workflowruns.c.archivedcommithash.label("sha"),
    commits.c.message.label("message"),
    workflowruns.c.title,
    workflowruns.c.author,
    commits.c.author.label("commit_author"),
    workflowruns.c.event,
    workflowruns.c.status,
    workflowruns.c.conclusion,
    workflowruns.c.run_attempt.label("attempt"),
    workflowruns.c.createtime,
    workflowruns.c.starttime,
    workflowruns.c.endtime,
    workflowruns.c.updatetime,
    workflowruns.c.runtime,
    workflowruns.c.queuetime,
    workflowruns.c.url,
)


def run_select():
    """SELECT of `RUN_COLUMNS`, joined; callers add WHERE, ORDER and LIMIT."""
    return select(*RUN_COLUMNS).select_from(
        workflowruns.join(commits, commits.c.id == workflowruns.c.commitid)
    )


def run_rows(conn: Connection, gitids) -> list[dict]:
    gitids = list(gitids)
    if not gitids:
        return []
    rows = conn.execute(run_select().where(workflowruns.c.gitid.in_(gitids))).mappings().all()
    return [dict(row) for row in rows]


__all__ = ["RUN_COLUMNS", "run_select", "run_rows", "branches", "workflows"]
