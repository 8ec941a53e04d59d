"""One commit's builds, and one pull request's: what the commit and pull-request pages read.

A commit is found by its sha, or by a prefix of 7 or more hex digits, in one repository or in all
(`find_commits`: a range search of each repository's `(repo, hash)` index).  Its runs, every attempt
and every attempt's jobs come from the runs' commit index, `idx_runattempts_run` and `idx_jobs_run`
(`commit_runs`); failed jobs carry what failure intelligence knows of them (`failures.job_failures`:
failure lines, fingerprint, verdict).

Its *neighbours* on the default branch (`neighbours`): for each workflow that ran on the commit, the
default branch's runs of that workflow created just before and just after the commit's first run of
it (other commits only), one index search each way (`idx_workflowruns_workflow_branch_createtime`).
Run creation time rather than commit time: what an author asks is whether trunk was failing the same
way when their run ran, and a pull request's commit may be authored days before it is pushed.

A pull request's runs are those `run_pulls` names (GitHub's `workflow_run.pull_requests`), grouped by
their head commit (`pull_commits`).
"""
import json
import re

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Connection

from domain.state import FAILED
from store.prepared import literals
from store.queries.failures import FAILED_JOB, default_branches, job_failures
from store.queries.selection import repo_names
from store.queries.triage import _each
from store.queries.waterfall import cell_state
from store.schema import (branches, commits, failure_lines, jobs, repos, run_pulls, runattempts, steps,
                          workflowruns)

w, j, c, ra, st, fl, rp = (workflowruns.c, jobs.c, commits.c, runattempts.c, steps.c, failure_lines.c,
                           run_pulls.c)
PREFIX = re.compile(r"[0-9a-f]{7,64}")  # a short sha: 7 hex digits at least, as git abbreviates
MATCHES = 20  # commits a sha prefix lists at most (an ambiguous one asks the reader to pick)
COMMIT_KEYS = ("id", "repo", "sha", "author", "message", "time")
RUN_KEYS = ("run", "gitid", "workflow_id", "workflow", "branch", "event", "run_number", "title", "url", "status",
            "conclusion", "createtime", "starttime", "endtime", "runtime", "queuetime", "attempt", "author")
ATTEMPT_KEYS = ("attempt", "status", "conclusion", "createtime", "starttime", "endtime", "runtime", "queuetime", "url",
                "author")
JOB_KEYS = ("id", "job", "run_gitid", "attempt", "name", "status", "conclusion", "createtime", "starttime", "endtime",
            "queuetime", "runtime", "runner_name", "labels", "runner_group", "url")
STEP_FAILED = ("failure", "timed_out")  # a step's conclusions that make it the failing step


def _commit(row) -> dict:
    return dict(zip(COMMIT_KEYS, row))


def _commit_columns():
    return c.id, c.repo, c.hash, c.author, c.message, c.time


def find_commits(conn: Connection, sha: str, repo: str | None = None, *, limit: int = MATCHES) -> list[dict]:
    """The commits whose hash is `sha`, else (when `sha` is 7 to 64 hex digits) whose hash starts with it,
    in `repo` or in every repository; at most `limit`, by repository and hash.  Keys: `COMMIT_KEYS`.

    Each repository's `(repo, hash)` index is searched, exactly, then as a range from the prefix."""
    if not isinstance(sha, str) or not sha:
        return []
    names = [repo] if repo else repo_names(conn)
    exact = select(*_commit_columns()).where(c.repo == bindparam("repo"), c.hash == bindparam("sha"))
    found = [_commit(row) for rows in _each(conn, exact, [{"repo": r, "sha": sha} for r in names]) for row in rows]
    prefix = sha.lower()
    if found or not PREFIX.fullmatch(prefix):
        return found[:limit]
    # Every hash starting with the prefix sorts from it up to it followed by any character beyond hex digits.
    ranged = (select(*_commit_columns())
              .where(c.repo == bindparam("repo"), c.hash >= bindparam("lo"), c.hash < bindparam("hi"))
              .order_by(c.hash).limit(limit + 1))
    params = [{"repo": r, "lo": prefix, "hi": prefix + "\U0010ffff"} for r in names]
    found = [_commit(row) for rows in _each(conn, ranged, params) for row in rows if row[2].startswith(prefix)]
    return found[:limit]


def commit_by_id(conn: Connection, commit_id: int) -> dict | None:
    row = conn.execute(select(*_commit_columns()).where(c.id == commit_id)).first()
    return _commit(row) if row is not None else None


# -- the commit's runs, attempts and jobs ---------------------------------------------------------------

def _labels(value) -> list[str]:
    """A job's runs-on labels from their stored JSON (a list of strings; anything else reads as none)."""
    try:
        labels = json.loads(value) if value else []
    except (TypeError, ValueError):
        return []
    return [x for x in labels if isinstance(x, str)] if isinstance(labels, list) else []


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def run_jobs(conn: Connection, run_gitids) -> dict[tuple, list[dict]]:
    """Every job of these runs (GitHub run ids), per (run id, attempt), in the order they were created.

    Keys: `JOB_KEYS` (labels a list; `runner_group` None when GitHub did not say) plus glyph (of the job,
    as the grid draws a run), failing_step (`{number, name, conclusion}` of its first failed step, or
    None) and failure (`failures.job_failures`' dict for a failed job, else None)."""
    out: dict[tuple, list[dict]] = {}
    rows = []
    for chunk in _chunks(sorted({int(g) for g in run_gitids})):
        rows += conn.execute(
            select(j.id, j.gitid, j.run_gitid, j.run_attempt, j.name, j.status, j.conclusion, j.createtime,
                   j.starttime, j.endtime, j.queuetime, j.runtime, j.runner_name, j.labels, j.runner_group, j.url)
            .where(j.run_gitid.in_(chunk)).order_by(j.run_gitid, j.run_attempt, j.createtime, j.gitid)).all()
    done = [row[0] for row in rows if row[5] == "completed" and row[6] not in ("success", "skipped", "neutral")]
    failing: dict[int, dict] = {}
    for chunk in _chunks(done):
        for job, number, name, conclusion in conn.execute(
                select(st.job, st.number, st.name, st.conclusion)
                .where(st.job.in_(chunk), st.conclusion.in_(STEP_FAILED)).order_by(st.job, st.number)):
            failing.setdefault(job, {"number": number, "name": name, "conclusion": conclusion})
    known = job_failures(conn, [row[1] for row in rows if row[6] in FAILED_JOB])
    for row in rows:
        job = dict(zip(JOB_KEYS, row))
        job["labels"] = _labels(job["labels"])
        job["glyph"] = cell_state(job["status"], job["conclusion"])
        job["failing_step"] = failing.get(job["id"])
        job["failure"] = known.get(job["job"])
        out.setdefault((job["run_gitid"], job["attempt"]), []).append(job)
    return out


def pull_numbers(conn: Connection, run_gitids) -> dict[int, list[int]]:
    """The pull requests (numbers) each run ran for, from `run_pulls`; runs with none are left out."""
    out: dict[int, list[int]] = {}
    for chunk in _chunks(sorted({int(g) for g in run_gitids})):
        for run, number in conn.execute(select(rp.run, rp.number).where(rp.run.in_(chunk)).order_by(rp.run, rp.number)):
            out.setdefault(run, []).append(number)
    return out


def _attempts(conn: Connection, run_ids) -> dict[int, list[dict]]:
    """Every stored attempt of these runs (workflowruns ids), first attempt first."""
    out: dict[int, list[dict]] = {}
    for chunk in _chunks(sorted(set(run_ids))):
        for row in conn.execute(
                select(ra.run, ra.attempt, ra.status, ra.conclusion, ra.createtime, ra.starttime, ra.endtime,
                       ra.runtime, ra.queuetime, ra.url, ra.author)
                .where(ra.run.in_(chunk)).order_by(ra.run, ra.attempt)):
            out.setdefault(row[0], []).append(dict(zip(ATTEMPT_KEYS, row[1:])))
    return out


_RUNS_OF_COMMIT = select(w.id, w.gitid, w.workflow, w.archivedworkflowname, w.archivedbranchname, w.event,
                         w.run_number, w.title, w.url, w.status, w.conclusion, w.createtime, w.starttime, w.endtime,
                         w.runtime, w.queuetime, w.run_attempt, w.author)


def _glyph(run: dict, attempts: list[dict]) -> str:
    """The grid's glyph of a run: its latest attempt's state, F when it passed after an earlier one failed."""
    earlier = any(a["conclusion"] in FAILED for a in attempts if a["attempt"] < run["attempt"])
    return cell_state(run["status"], run["conclusion"], earlier)


def commit_runs(conn: Connection, commit_id: int) -> list[dict]:
    """Every run of the commit, by workflow name then creation, each with every attempt and its jobs.

    A run: `RUN_KEYS` (its latest attempt's state; `attempt` its number) plus glyph, pulls (the pull
    requests it ran for) and attempts (newest first): `ATTEMPT_KEYS` plus glyph and jobs (`run_jobs`).  An
    attempt known only from its jobs (its own report not stored) is listed with what the run says."""
    runs = [dict(zip(RUN_KEYS, row)) for row in conn.execute(
        _RUNS_OF_COMMIT.where(w.commitid == commit_id).order_by(w.archivedworkflowname, w.createtime, w.gitid))]
    attempts = _attempts(conn, [r["run"] for r in runs])
    jobs_ = run_jobs(conn, [r["gitid"] for r in runs])
    pulls = pull_numbers(conn, [r["gitid"] for r in runs])
    for run in runs:
        stored = {a["attempt"]: a for a in attempts.get(run["run"], [])}
        numbers = sorted(set(stored) | {n for g, n in jobs_ if g == run["gitid"]} | {run["attempt"]}, reverse=True)
        listed = []
        for n in numbers:
            a = stored.get(n) or {"attempt": n, **({k: run[k] for k in ATTEMPT_KEYS if k != "attempt"}
                                                  if n == run["attempt"] else dict.fromkeys(ATTEMPT_KEYS[1:]))}
            earlier = any(e["conclusion"] in FAILED for e in stored.values() if e["attempt"] < n)
            listed.append({**a, "glyph": cell_state(a["status"], a["conclusion"], earlier),
                           "jobs": jobs_.get((run["gitid"], n), [])})
        run["attempts"] = listed
        run["glyph"] = _glyph(run, list(stored.values()))
        run["pulls"] = pulls.get(run["gitid"], [])
    return runs


# -- the failed jobs of runs' latest attempts, with their primary line (neighbours, pull requests) ---------

def failed_jobs(conn: Connection, run_gitids) -> dict[int, list[dict]]:
    """Per run (GitHub run id), its latest attempt's failed jobs in creation order: name, url, conclusion,
    text and fingerprint (its primary failure line's, None while unknown).  Runs with none are left out."""
    out: dict[int, list[dict]] = {}
    joined = (jobs.join(workflowruns, and_(w.gitid == j.run_gitid, w.run_attempt == j.run_attempt))
              .outerjoin(failure_lines, and_(fl.job == j.gitid, fl.ordinal == 0)))
    for chunk in _chunks(sorted({int(g) for g in run_gitids})):
        for run, name, url, conclusion, text, fingerprint in conn.execute(
                select(j.run_gitid, j.name, j.url, j.conclusion, fl.text, fl.fingerprint).select_from(joined)
                .where(j.run_gitid.in_(chunk), j.conclusion.in_(literals(FAILED_JOB)))
                .order_by(j.run_gitid, j.createtime, j.gitid)):
            out.setdefault(run, []).append({"name": name, "url": url, "conclusion": conclusion, "text": text,
                                            "fingerprint": fingerprint})
    return out


def _earlier_failed(conn: Connection, run_ids) -> set[int]:
    """The runs (workflowruns ids) with an attempt before their latest that failed."""
    found = set()
    for chunk in _chunks(sorted(set(run_ids))):
        found |= set(conn.execute(
            select(ra.run).select_from(runattempts.join(workflowruns, w.id == ra.run))
            .where(ra.run.in_(chunk), ra.attempt < w.run_attempt, ra.conclusion.in_(FAILED))).scalars())
    return found


# -- neighbours on the default branch -------------------------------------------------------------------

_SIDE = select(w.id, w.gitid, w.commitid, w.status, w.conclusion, w.url, w.createtime, w.run_attempt)
_OLDER = (_SIDE.where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime <= bindparam("t"),
                      w.commitid != bindparam("cid")).order_by(w.createtime.desc(), w.gitid.desc()).limit(1))
_NEWER = (_SIDE.where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime > bindparam("t"),
                      w.commitid != bindparam("cid")).order_by(w.createtime.asc(), w.gitid.asc()).limit(1))
SIDE_KEYS = ("run", "gitid", "commitid", "status", "conclusion", "url", "createtime", "attempt")


def neighbours(conn: Connection, commit: dict, runs: list[dict]) -> dict:
    """The default branch's results around the commit, per workflow that ran on it (`commit_runs`' runs).

    `{"branch": the default branch's name or None (unknown: no workflows then), "workflows": [...]}`, each
    `{workflow, workflow_id, glyph, failed (this commit's failed jobs, `failed_jobs` dicts, of its newest
    run of the workflow), older, newer}`; a side is None when there is no such run, else `SIDE_KEYS` plus
    glyph, commit (`COMMIT_KEYS`), failed, same_jobs (failed job names it shares with this commit) and
    same_lines (shared fingerprints)."""
    trunk = default_branches(conn, [commit["repo"]]).get(commit["repo"]) or []
    if not trunk:
        return {"branch": None, "workflows": []}
    branch = conn.execute(select(branches.c.name).where(branches.c.id == trunk[0])).scalar()
    per_workflow: dict[int, dict] = {}
    for run in runs:  # by workflow name then creation: the last is the newest, the first the earliest
        entry = per_workflow.setdefault(run["workflow_id"], {"workflow": run["workflow"], "first": run["createtime"],
                                                             "newest": run})
        entry["newest"] = run
        if run["createtime"] is not None and (entry["first"] is None or run["createtime"] < entry["first"]):
            entry["first"] = run["createtime"]
    keys = [(wf, e["first"]) for wf, e in per_workflow.items() if e["first"] is not None]
    params = [{"wf": wf, "br": trunk[0], "t": t, "cid": commit["id"]} for wf, t in keys]
    older = {wf: rows[0] for (wf, _t), rows in zip(keys, _each(conn, _OLDER, params)) if rows}
    newer = {wf: rows[0] for (wf, _t), rows in zip(keys, _each(conn, _NEWER, params)) if rows}
    sides = [dict(zip(SIDE_KEYS, row)) for row in [*older.values(), *newer.values()]]
    found_commits = {}
    for chunk in _chunks(sorted({s["commitid"] for s in sides})):
        found_commits.update({row[0]: _commit(row) for row in conn.execute(
            select(*_commit_columns()).where(c.id.in_(chunk)))})
    failed = failed_jobs(conn, [s["gitid"] for s in sides] + [e["newest"]["gitid"] for e in per_workflow.values()])
    flaky = _earlier_failed(conn, [s["run"] for s in sides])
    out = []
    for wf, entry in sorted(per_workflow.items(), key=lambda kv: (kv[1]["workflow"] or "", kv[0])):
        own = failed.get(entry["newest"]["gitid"], [])
        names, prints = {f["name"] for f in own}, {f["fingerprint"] for f in own if f["fingerprint"]}
        item = {"workflow": entry["workflow"], "workflow_id": wf, "glyph": entry["newest"]["glyph"], "failed": own}
        for label, found in (("older", older), ("newer", newer)):
            row = found.get(wf)
            if row is None:
                item[label] = None
                continue
            side = dict(zip(SIDE_KEYS, row))
            theirs = failed.get(side["gitid"], [])
            side.update(glyph=cell_state(side["status"], side["conclusion"], side["run"] in flaky),
                        commit=found_commits.get(side["commitid"]), failed=theirs,
                        same_jobs=sorted(names & {f["name"] for f in theirs}),
                        same_lines=sorted(prints & {f["fingerprint"] for f in theirs if f["fingerprint"]}))
            item[label] = side
        out.append(item)
    return {"branch": branch, "workflows": out}


# -- pull requests --------------------------------------------------------------------------------------

PULL_RUN_KEYS = ("run", "gitid", "workflow", "branch", "status", "conclusion", "url", "createtime", "runtime",
                 "queuetime", "attempt", "author", "commitid", "sha", "message", "commit_author", "commit_time")


def pull_repos(conn: Connection, number: int) -> list[str]:
    """The repositories with runs for pull request `number` (one index search per repository)."""
    names = repo_names(conn)
    probe = select(rp.repo).where(rp.repo == bindparam("repo"), rp.number == bindparam("n")).limit(1)
    return [r for r, rows in zip(names, _each(conn, probe, [{"repo": r, "n": number} for r in names])) if rows]


def pull_commits(conn: Connection, repo: str, number: int) -> list[dict]:
    """The pull request's runs grouped by head commit, the commit pushed last first (by its first run's
    creation).  Each: `COMMIT_KEYS`, pushed (that first run's creation), branches (the runs' head branches),
    and runs: the latest run of each workflow on it (by creation), by workflow name, each `PULL_RUN_KEYS`
    plus glyph, runs (how many the workflow ran on the commit) and failed (`failed_jobs`' dicts)."""
    rows = [dict(zip(PULL_RUN_KEYS, row)) for row in conn.execute(
        select(w.id, w.gitid, w.archivedworkflowname, w.archivedbranchname, w.status, w.conclusion, w.url,
               w.createtime, w.runtime, w.queuetime, w.run_attempt, w.author, w.commitid, c.hash, c.message,
               c.author, c.time)
        .select_from(run_pulls.join(workflowruns, w.gitid == rp.run).join(commits, c.id == w.commitid))
        .where(rp.repo == repo, rp.number == number, w.repo == repo)
        .order_by(w.createtime, w.gitid))]
    flaky = _earlier_failed(conn, [r["run"] for r in rows])
    grouped: dict[int, dict] = {}
    for r in rows:  # oldest first: each workflow's last run seen is its latest
        r["glyph"] = cell_state(r["status"], r["conclusion"], r["run"] in flaky)
        g = grouped.setdefault(r["commitid"], {
            "id": r["commitid"], "repo": repo, "sha": r["sha"], "author": r["commit_author"],
            "message": r["message"], "time": r["commit_time"], "pushed": r["createtime"], "branches": [],
            "latest": {}, "counts": {}})
        if r["branch"] and r["branch"] not in g["branches"]:
            g["branches"].append(r["branch"])
        g["latest"][r["workflow"]] = r
        g["counts"][r["workflow"]] = g["counts"].get(r["workflow"], 0) + 1
    failed = failed_jobs(conn, [r["gitid"] for g in grouped.values() for r in g["latest"].values()
                                if r["conclusion"] in FAILED])
    out = []
    for g in grouped.values():
        latest, counts = g.pop("latest"), g.pop("counts")
        g["runs"] = [{**r, "runs": counts[name], "failed": failed.get(r["gitid"], [])}
                     for name, r in sorted(latest.items(), key=lambda kv: kv[0] or "")]
        out.append(g)
    out.sort(key=lambda g: (g["pushed"] is not None, g["pushed"] or 0, g["id"]), reverse=True)
    return out


def repo_url(conn: Connection, repo: str) -> str | None:
    """The repository's own URL when GitHub told it (`repos.url`), for links to its commits and pull requests."""
    return conn.execute(select(repos.c.url).where(repos.c.name == repo)).scalar()
