"""Apply normalized records (`domain.records`) to the store.

Every write of the project goes through `apply`, inside a transaction the
caller owns: the webhook, the backfill and the demo generator alike.  The
state rules live in the upserts' WHERE clauses: a report replaces the stored
one only when its state key is greater (see `domain.state`), so late,
duplicated or reordered deliveries end in the same rows.

The statements are built once per SQL dialect and executed with parameters:
building SQLAlchemy constructs per record was most of the write cost.
"""
import json
import time
from functools import lru_cache

from sqlalchemy import and_, bindparam, case, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from domain import records as r
from domain.state import FAILED, job_key, run_key
from store import archive, derived
from store.derived.failure_causes import FAILED_JOB
from store.prepared import execute_prepared
from store.schema import (branches, commits, failure_lines, job_logs, jobs, repos, run_pulls, runattempts, steps,
                          workflowruns, workflows)

# A report that wins replaces all of these; `repo` too, so the row's repository always agrees with
# its branch, commit and workflow ids (GitHub's run id names one run wherever its repository moves).
RUN_FIELDS = ("repo", "branch", "commitid", "workflow", "author", "runtime", "starttime", "endtime", "queuetime",
              "status", "conclusion", "url", "archivedbranchname", "archivedcommithash", "archivedworkflowname",
              "run_attempt", "event", "updatetime", "run_number", "title", "statekey")
ATTEMPT_FIELDS = ("author", "status", "conclusion", "createtime", "starttime", "endtime", "updatetime", "runtime",
                  "queuetime", "url", "statekey")
JOB_FIELDS = ("run_gitid", "run_attempt", "repo", "name", "workflow_name", "head_branch", "head_sha", "status",
              "conclusion", "createtime", "starttime", "endtime", "queuetime", "runtime", "runner_name", "runner_id",
              "labels", "url", "statekey", "runner_group")
# The columns of a stored run that name its derived keys: its day and pair (branch, workflow,
# createtime), its commit's group (branch, commitid) and whether it has a failure cause.
_RUN_BEFORE = ("id", "branch", "commitid", "workflow", "createtime", "conclusion")


@lru_cache(maxsize=4)
def _statements(dialect_name: str) -> dict:
    """Every statement the writer runs, for one dialect."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    s = {}

    ins = dialect.insert(repos)
    s["repo"] = ins.on_conflict_do_update(index_elements=[repos.c.name], set_={
        "default_branch": func.coalesce(ins.excluded.default_branch, repos.c.default_branch),
        "url": func.coalesce(ins.excluded.url, repos.c.url)})

    # A branch event: keep the first author and creation time; a delete sets
    # deletetime, a push with a time (a new push) revives a deleted branch.
    for variant in ("deleted", "revived", "plain"):
        ins = dialect.insert(branches)
        deletetime = {"deleted": ins.excluded.deletetime, "revived": None, "plain": branches.c.deletetime}[variant]
        s[f"branch_{variant}"] = ins.on_conflict_do_update(
            index_elements=[branches.c.repo, branches.c.name],
            set_={"author": func.coalesce(branches.c.author, ins.excluded.author),
                  "createtime": func.coalesce(branches.c.createtime, ins.excluded.createtime),
                  "deletetime": deletetime})

    ins = dialect.insert(commits)
    s["commit"] = ins.on_conflict_do_update(index_elements=[commits.c.repo, commits.c.hash], set_={
        # The first author and message seen (they are the same commit's); the
        # earliest time, since a run's placeholder time is later.
        "author": func.coalesce(commits.c.author, ins.excluded.author),
        "message": func.coalesce(commits.c.message, ins.excluded.message),
        "time": case((ins.excluded.time < commits.c.time, ins.excluded.time), else_=commits.c.time)},
        # Only when that changes something: every workflow_run delivery carries its head commit, and
        # an unchanged commit must not send its runs to the derived refresh (nor rewrite their export
        # lines through the triggers) once a delivery.
        where=or_(and_(commits.c.author.is_(None), ins.excluded.author.is_not(None)),
                  and_(commits.c.message.is_(None), ins.excluded.message.is_not(None)),
                  ins.excluded.time < commits.c.time))

    ins = dialect.insert(workflows)
    s["workflow"] = ins.on_conflict_do_update(index_elements=[workflows.c.repo, workflows.c.name], set_={
        "url": case((workflows.c.url == "", ins.excluded.url), else_=workflows.c.url),
        "gitid": func.coalesce(workflows.c.gitid, ins.excluded.gitid),
        "path": func.coalesce(workflows.c.path, ins.excluded.path)})

    # Get-or-create returning the id in one statement (a no-op update makes
    # RETURNING answer on conflict too).
    for name, table, keys in (("branch_id", branches, ("repo", "name")), ("commit_id", commits, ("repo", "hash")),
                              ("workflow_id", workflows, ("repo", "name"))):
        ins = dialect.insert(table)
        s[name] = ins.on_conflict_do_update(index_elements=[table.c[k] for k in keys],
                                            set_={keys[1]: ins.excluded[keys[1]]}).returning(table.c.id)

    ins = dialect.insert(workflowruns)
    # RETURNING the id: a row when the report was inserted or replaced the stored one, none when
    # the state rule kept the stored one.
    s["run"] = ins.on_conflict_do_update(index_elements=[workflowruns.c.gitid],
                                         set_={f: ins.excluded[f] for f in RUN_FIELDS},
                                         where=ins.excluded.statekey > workflowruns.c.statekey
                                         ).returning(workflowruns.c.id)
    s["run_createtime"] = (workflowruns.update()
                           .where(workflowruns.c.gitid == bindparam("g"), workflowruns.c.createtime > bindparam("c"))
                           .values(createtime=bindparam("c")))
    # What the stored row contributes derived keys by (`_RUN_BEFORE`), read before the write.
    s["run_before"] = select(*(workflowruns.c[c] for c in _RUN_BEFORE)).where(workflowruns.c.gitid == bindparam("g"))

    ins = dialect.insert(runattempts)
    s["attempt"] = ins.on_conflict_do_update(index_elements=[runattempts.c.gitid, runattempts.c.attempt],
                                             set_={f: ins.excluded[f] for f in ATTEMPT_FIELDS},
                                             where=ins.excluded.statekey > runattempts.c.statekey)

    ins = dialect.insert(jobs)
    s["job"] = ins.on_conflict_do_update(index_elements=[jobs.c.gitid], set_={f: ins.excluded[f] for f in JOB_FIELDS},
                                         where=ins.excluded.statekey > jobs.c.statekey).returning(jobs.c.id)
    s["job_before"] = select(jobs.c.run_gitid, jobs.c.conclusion).where(jobs.c.gitid == bindparam("g"))
    s["steps_delete"] = steps.delete().where(steps.c.job == bindparam("j"))
    # A job that completes failed is queued for its log and annotations (ingest/joblogs.py): on every
    # write path, once (a redelivery, or a backfill of a job a webhook stored, leaves the row as it is).
    s["job_log"] = dialect.insert(job_logs).on_conflict_do_nothing(index_elements=[job_logs.c.job])
    s["job_log_drop"] = job_logs.delete().where(job_logs.c.job == bindparam("g"))
    s["failure_lines_drop"] = failure_lines.delete().where(failure_lines.c.job == bindparam("g"))
    s["steps_insert"] = steps.insert()
    # Every report's pull requests are kept: whichever report wins, the run ran for all of them.
    s["run_pulls"] = dialect.insert(run_pulls).on_conflict_do_nothing(index_elements=[run_pulls.c.run,
                                                                                        run_pulls.c.number])
    return s


def _exec(conn: Connection, s: dict, name: str, params):
    return execute_prepared(conn, name, s[name], params)


def apply(conn: Connection, items, *, now: float | None = None) -> list[dict]:
    """Write `items` (records) and return the changes worth broadcasting.

    Each write marks the derived keys it touched (`store.derived.mark`); they are refreshed here,
    at the end, unless the caller applies inside `derived.batch` and flushes once for the batch.
    """
    stmts = _statements(conn.dialect.name)
    changes = []
    before = derived.per_batch(conn, "archive_cutoff", archive.cutoff)
    for item in items:
        if before is not None and isinstance(item, (r.Run, r.Job)) and item.createtime is not None \
                and item.createtime < before:
            continue  # archived days' rollups are final (store/archive.py): a late report of one changes nothing
        change = _HANDLERS[type(item)](conn, stmts, item, now)
        if change:
            changes.append(change)
    if not derived.in_batch(conn):
        derived.flush(conn)
    return changes


def _repo(conn, s, repo: r.Repo, _now) -> None:
    _exec(conn, s, "repo", {"name": repo.name, "default_branch": repo.default_branch, "url": repo.url})


def _branch(conn, s, branch: r.Branch, now) -> None:
    variant = "deleted" if branch.deleted else ("plain" if branch.time is None else "revived")
    _exec(conn, s, f"branch_{variant}", {
        "repo": branch.repo, "name": branch.name, "author": branch.author, "createtime": branch.time,
        "deletetime": (branch.time or now) if branch.deleted else None})


def _commit(conn, s, commit: r.Commit, _now) -> None:
    changed = _exec(conn, s, "commit", {"repo": commit.repo, "hash": commit.hash, "author": commit.author,
                                         "message": commit.message, "time": commit.time}).rowcount
    if changed:  # its author picks its runs' people; its time orders its runs' cells in streaks
        derived.mark(conn, {("commit_row", commit.repo, commit.hash)})


def _workflow(conn, s, workflow: r.Workflow, _now) -> None:
    _exec(conn, s, "workflow", {"repo": workflow.repo, "name": workflow.name, "url": workflow.url,
                                 "gitid": workflow.gitid, "path": workflow.path})


def _run(conn, s, run: r.Run, _now) -> dict | None:
    key = run_key(run)
    values = {
        "gitid": run.gitid, "repo": run.repo, "createtime": run.createtime,
        "branch": _exec(conn, s, "branch_id", {"repo": run.repo, "name": run.branch}).scalar_one(),
        "commitid": _exec(conn, s, "commit_id", {"repo": run.repo, "hash": run.head_sha,
                                                  "time": run.createtime}).scalar_one(),
        "workflow": _exec(conn, s, "workflow_id", {"repo": run.repo, "name": run.workflow, "url": ""}).scalar_one(),
        "author": run.author, "runtime": run.runtime, "starttime": run.starttime, "endtime": run.endtime,
        "queuetime": run.queuetime, "status": run.status, "conclusion": run.conclusion, "url": run.url,
        "archivedbranchname": run.branch, "archivedcommithash": run.head_sha, "archivedworkflowname": run.workflow,
        "run_attempt": run.attempt, "event": run.event, "updatetime": run.updatetime,
        "run_number": run.run_number, "title": run.title, "statekey": f"{run.attempt:04d}|{key}",
    }
    # The stored row before this write: a report can move the run to another branch, commit,
    # workflow or repository, and an earlier attempt its creation to another day, so the keys it
    # counted under before are refreshed as well as those it counts under after.
    before = _exec(conn, s, "run_before", {"g": run.gitid}).first()
    replaced = _exec(conn, s, "run", values).first()  # None: the stored report stays
    # The run's createtime is its first attempt's, whichever attempt arrived first.
    earlier = _exec(conn, s, "run_createtime", {"g": run.gitid, "c": run.createtime}).rowcount
    run_id = replaced[0] if replaced is not None else before[0]
    attempt = _exec(conn, s, "attempt", {
        "run": run_id, "gitid": run.gitid, "attempt": run.attempt, "author": run.author, "status": run.status,
        "conclusion": run.conclusion, "createtime": run.createtime, "starttime": run.starttime,
        "endtime": run.endtime, "updatetime": run.updatetime, "runtime": run.runtime, "queuetime": run.queuetime,
        "url": run.url, "statekey": key}).rowcount
    if run.pull_requests:
        _exec(conn, s, "run_pulls", [{"run": run.gitid, "number": n, "repo": run.repo}
                                     for n in sorted(set(run.pull_requests))])
    if not (replaced or attempt or earlier):
        return None
    # The row after the write, told without reading it: this report's ids if it replaced the
    # stored one (or is the first), else the stored ones.
    if replaced is not None:
        branch, commit, workflow = values["branch"], values["commitid"], values["workflow"]
    else:
        branch, commit, workflow = before[1:4]
    created = run.createtime if earlier or before is None else before[4]
    keys = {("commit_run", branch, commit, run_id)}
    if created is not None:
        keys.add(("day", branch, workflow, derived.day_of(created)))
    if before is not None:
        old_branch, old_commit, old_workflow, old_created, old_conclusion = before[1:]
        if old_created is not None:
            keys.add(("day", old_branch, old_workflow, derived.day_of(old_created)))
        if (old_branch, old_commit, old_workflow) != (branch, commit, workflow):
            # The commit it left (or its workflow there) is read whole: the run no longer says what it changed.
            keys.add(("commit", old_branch, old_commit))
    # A run's failure cause changes only when it fails or failed, or when a re-run (a later
    # attempt) replaces a failure.
    if replaced is not None and (run.conclusion in FAILED or run.attempt > 1
                                 or (before is not None and old_conclusion in FAILED)):
        keys.add(("run", run.gitid))
    derived.mark(conn, keys)
    if not (replaced or attempt):
        return None  # only its creation moved back: nothing new to show
    return {"type": "run", "latest": replaced is not None, "gitid": run.gitid, "attempt": run.attempt,
            "repo": run.repo}


def _job(conn, s, job: r.Job, now) -> dict | None:
    # The stored job's run and conclusion: a failed job that passes, or moves to another run,
    # changes the failure cause of the run it was failing.
    before = _exec(conn, s, "job_before", {"g": job.gitid}).first()
    written = _exec(conn, s, "job", {
        "gitid": job.gitid, "run_gitid": job.run_gitid, "run_attempt": job.run_attempt, "repo": job.repo,
        "name": job.name, "workflow_name": job.workflow_name, "head_branch": job.head_branch,
        "head_sha": job.head_sha, "status": job.status, "conclusion": job.conclusion, "createtime": job.createtime,
        "starttime": job.starttime, "endtime": job.endtime, "queuetime": job.queuetime, "runtime": job.runtime,
        "runner_name": job.runner_name, "runner_id": job.runner_id, "labels": json.dumps(list(job.labels)),
        "url": job.url, "statekey": job_key(job), "runner_group": job.runner_group}).first()  # RETURNING its id; None: the stored job stays
    if written is None:
        return None
    job_id = written[0]
    _exec(conn, s, "steps_delete", {"j": job_id})
    if job.steps:
        _exec(conn, s, "steps_insert", [
            {"job": job_id, "number": st.number, "name": st.name, "status": st.status, "conclusion": st.conclusion,
             "starttime": st.starttime, "endtime": st.endtime}
            for st in {st.number: st for st in job.steps}.values()])
    failing = {job.run_gitid} if job.conclusion in FAILED_JOB else set()
    if failing and job.status == "completed":
        queued = time.time() if now is None else now
        _exec(conn, s, "job_log", {"job": job.gitid, "repo": job.repo, "state": "pending", "tries": 0,
                                   "queued": queued, "next_try": queued, "truncated": 0})
    if before is not None and before[1] in FAILED_JOB:
        failing.add(before[0])
        if job.conclusion not in FAILED_JOB:  # it did not fail after all: what its log said goes too, as
            _exec(conn, s, "job_log_drop", {"g": job.gitid})  # if the reports had come in the other order
            _exec(conn, s, "failure_lines_drop", {"g": job.gitid})
    moved = {job.run_gitid} | ({before[0]} if before is not None else set())
    derived.mark(conn, {("run", gitid) for gitid in failing} | {("job_run", gitid) for gitid in moved})
    return {"type": "job", "gitid": job.gitid, "run_gitid": job.run_gitid, "attempt": job.run_attempt,
            "repo": job.repo}


_HANDLERS = {
    r.Repo: _repo,
    r.Branch: _branch,
    r.Commit: _commit,
    r.Workflow: _workflow,
    r.Run: _run,
    r.Job: _job,
}
