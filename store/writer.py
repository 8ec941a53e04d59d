"""Apply normalized records (`ingest.records`) to the store.

Every write of the project goes through `apply`, inside a transaction the
caller owns: the webhook, the backfill and the demo generator alike.  The
state rules live in the upserts' WHERE clauses: a report replaces the stored
one only when its state key is greater (see `ingest.state`), so late,
duplicated or reordered deliveries end in the same rows.
"""
import json

from sqlalchemy import case, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from ingest import records as r
from ingest.state import job_key, run_key
from store.schema import branches, commits, jobs, repos, runattempts, steps, workflowruns, workflows


def _insert(conn: Connection, table):
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _id(conn: Connection, table, **where) -> int:
    query = select(table.c.id)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    return conn.execute(query).scalar_one()


def apply(conn: Connection, items, *, now: float | None = None) -> list[dict]:
    """Write `items` (records) and return the changes worth broadcasting."""
    changes = []
    for item in items:
        handler = _HANDLERS[type(item)]
        change = handler(conn, item, now)
        if change:
            changes.append(change)
    return changes


def _repo(conn: Connection, repo: r.Repo, _now) -> None:
    ins = _insert(conn, repos).values(name=repo.name, default_branch=repo.default_branch, url=repo.url)
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[repos.c.name],
            set_={
                "default_branch": func.coalesce(ins.excluded.default_branch, repos.c.default_branch),
                "url": func.coalesce(ins.excluded.url, repos.c.url),
            },
        )
    )


def _branch(conn: Connection, branch: r.Branch, now) -> dict | None:
    ins = _insert(conn, branches).values(
        repo=branch.repo,
        name=branch.name,
        author=branch.author,
        createtime=branch.time,
        deletetime=(branch.time or now) if branch.deleted else None,
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[branches.c.repo, branches.c.name],
            set_={
                "author": func.coalesce(branches.c.author, ins.excluded.author),
                "createtime": func.coalesce(branches.c.createtime, ins.excluded.createtime),
                "deletetime": ins.excluded.deletetime
                if branch.deleted
                else (branches.c.deletetime if branch.time is None else None),
            },
        )
    )
    return None


def _branch_id(conn: Connection, repo: str, name: str) -> int:
    ins = _insert(conn, branches).values(repo=repo, name=name)
    conn.execute(ins.on_conflict_do_nothing(index_elements=[branches.c.repo, branches.c.name]))
    return _id(conn, branches, repo=repo, name=name)


def _commit(conn: Connection, commit: r.Commit, _now) -> None:
    ins = _insert(conn, commits).values(
        repo=commit.repo, hash=commit.hash, author=commit.author, message=commit.message, time=commit.time
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[commits.c.repo, commits.c.hash],
            set_={
                # Keep the first author and message seen (they are the same
                # commit's); the earliest time, since placeholders are later.
                "author": func.coalesce(commits.c.author, ins.excluded.author),
                "message": func.coalesce(commits.c.message, ins.excluded.message),
                "time": case((ins.excluded.time < commits.c.time, ins.excluded.time), else_=commits.c.time),
            },
        )
    )


def _workflow(conn: Connection, workflow: r.Workflow, _now) -> None:
    ins = _insert(conn, workflows).values(
        repo=workflow.repo, name=workflow.name, url=workflow.url, gitid=workflow.gitid, path=workflow.path
    )
    conn.execute(
        ins.on_conflict_do_update(
            index_elements=[workflows.c.repo, workflows.c.name],
            set_={
                "url": case((workflows.c.url == "", ins.excluded.url), else_=workflows.c.url),
                "gitid": func.coalesce(workflows.c.gitid, ins.excluded.gitid),
                "path": func.coalesce(workflows.c.path, ins.excluded.path),
            },
        )
    )


def _workflow_id(conn: Connection, repo: str, name: str) -> int:
    ins = _insert(conn, workflows).values(repo=repo, name=name, url="")
    conn.execute(ins.on_conflict_do_nothing(index_elements=[workflows.c.repo, workflows.c.name]))
    return _id(conn, workflows, repo=repo, name=name)


def _commit_id(conn: Connection, repo: str, sha: str, time: float) -> int:
    ins = _insert(conn, commits).values(repo=repo, hash=sha, time=time)
    conn.execute(ins.on_conflict_do_nothing(index_elements=[commits.c.repo, commits.c.hash]))
    return _id(conn, commits, repo=repo, hash=sha)


def _run(conn: Connection, run: r.Run, _now) -> dict | None:
    key = run_key(run)
    latest_key = f"{run.attempt:04d}|{key}"
    values = dict(
        branch=_branch_id(conn, run.repo, run.branch),
        commitid=_commit_id(conn, run.repo, run.head_sha, run.createtime),
        workflow=_workflow_id(conn, run.repo, run.workflow),
        author=run.author,
        runtime=run.runtime,
        starttime=run.starttime,
        endtime=run.endtime,
        queuetime=run.queuetime,
        status=run.status,
        conclusion=run.conclusion,
        url=run.url,
        archivedbranchname=run.branch,
        archivedcommithash=run.head_sha,
        archivedworkflowname=run.workflow,
        run_attempt=run.attempt,
        event=run.event,
        updatetime=run.updatetime,
        run_number=run.run_number,
        title=run.title,
        statekey=latest_key,
    )
    ins = _insert(conn, workflowruns).values(gitid=run.gitid, repo=run.repo, createtime=run.createtime, **values)
    latest = conn.execute(
        ins.on_conflict_do_update(
            index_elements=[workflowruns.c.gitid],
            set_=values,
            where=ins.excluded.statekey > workflowruns.c.statekey,
        )
    ).rowcount
    # The run's createtime is its first attempt's, whichever attempt arrived first.
    conn.execute(
        workflowruns.update()
        .where(workflowruns.c.gitid == run.gitid, workflowruns.c.createtime > run.createtime)
        .values(createtime=run.createtime)
    )
    run_id = _id(conn, workflowruns, gitid=run.gitid)
    attempt_values = dict(
        author=run.author,
        status=run.status,
        conclusion=run.conclusion,
        createtime=run.createtime,
        starttime=run.starttime,
        endtime=run.endtime,
        updatetime=run.updatetime,
        runtime=run.runtime,
        queuetime=run.queuetime,
        url=run.url,
        statekey=key,
    )
    ins = _insert(conn, runattempts).values(run=run_id, gitid=run.gitid, attempt=run.attempt, **attempt_values)
    attempt = conn.execute(
        ins.on_conflict_do_update(
            index_elements=[runattempts.c.gitid, runattempts.c.attempt],
            set_=attempt_values,
            where=ins.excluded.statekey > runattempts.c.statekey,
        )
    ).rowcount
    if not (latest or attempt):
        return None
    return {"type": "run", "latest": bool(latest), "gitid": run.gitid, "attempt": run.attempt, "repo": run.repo}


def _job(conn: Connection, job: r.Job, _now) -> dict | None:
    values = dict(
        run_gitid=job.run_gitid,
        run_attempt=job.run_attempt,
        repo=job.repo,
        name=job.name,
        workflow_name=job.workflow_name,
        head_branch=job.head_branch,
        head_sha=job.head_sha,
        status=job.status,
        conclusion=job.conclusion,
        createtime=job.createtime,
        starttime=job.starttime,
        endtime=job.endtime,
        queuetime=job.queuetime,
        runtime=job.runtime,
        runner_name=job.runner_name,
        runner_id=job.runner_id,
        labels=json.dumps(list(job.labels)),
        url=job.url,
        statekey=job_key(job),
    )
    ins = _insert(conn, jobs).values(gitid=job.gitid, **values)
    changed = conn.execute(
        ins.on_conflict_do_update(
            index_elements=[jobs.c.gitid], set_=values, where=ins.excluded.statekey > jobs.c.statekey
        )
    ).rowcount
    if not changed:
        return None
    job_id = _id(conn, jobs, gitid=job.gitid)
    conn.execute(steps.delete().where(steps.c.job == job_id))
    if job.steps:
        conn.execute(
            steps.insert(),
            [
                dict(job=job_id, number=s.number, name=s.name, status=s.status, conclusion=s.conclusion,
                     starttime=s.starttime, endtime=s.endtime)
                for s in {s.number: s for s in job.steps}.values()
            ],
        )
    return {"type": "job", "gitid": job.gitid, "run_gitid": job.run_gitid, "attempt": job.run_attempt, "repo": job.repo}


_HANDLERS = {
    r.Repo: _repo,
    r.Branch: _branch,
    r.Commit: _commit,
    r.Workflow: _workflow,
    r.Run: _run,
    r.Job: _job,
}
