"""Failure intelligence: failed jobs grouped by their failure line's fingerprint, and each one's verdict.

A *failed job* is a job of a run's latest attempt that completed `failure` or `timed_out`; its
*primary line* is its failure line of ordinal 0 (`failure_lines`, written by `store.joblogs.save`).
An *occurrence* is a failed job of a failed run (the runs Triage's failure groups count) with a
primary line; a *group* is the occurrences sharing a fingerprint.

Verdicts are computed when read, for the jobs shown, in this order of precedence:
INFRA (the primary line's class is `infra`), FLAKY (the same job passed on another attempt of the
run, on another run of the workflow on the same commit, or on both neighbouring commits of the
branch), BROKEN TRUNK (the same fingerprint failed on the default branch at one of the newest
commits that ran the workflow, other than the job's own), NEW (the fingerprint was not seen in any
failed job in the 21 days before the run was created), else KNOWN.  Each carries the runs that
justify it (`evidence`).  Every step is a few batched reads for all the jobs at once, or a
search per job through an index; a job decided by one step is not read by the next.
"""
import time
from collections import defaultdict
from dataclasses import replace

from sqlalchemy import and_, bindparam, func, literal_column, select
from sqlalchemy.engine import Connection

from domain.state import FAILED
from store.joblogs import DONE, FAILED as GAVE_UP, GONE, PENDING, excerpt
from store.prepared import literals
from store.queries.filters import Filters
from store.queries.triage import _each
from store.schema import branches, commits, failure_lines, job_logs, jobs, repos, workflowruns

NEW, BROKEN_TRUNK, FLAKY, INFRA, KNOWN = "NEW", "BROKEN TRUNK", "FLAKY", "INFRA", "KNOWN"
WHOSE = {NEW: "yours", BROKEN_TRUNK: "trunk", FLAKY: "flaky", INFRA: "infra", KNOWN: "known"}
FAILED_JOB = ("failure", "timed_out")  # a job's conclusions that make it a failed job
NEW_DAYS = 21  # a fingerprint unseen this long before a run is new (Treeherder's horizon)
TRUNK_COMMITS = 3  # the default branch's newest commits a failure must be seen at to be trunk's
EVIDENCE = 5  # runs shown per verdict
NEIGHBOUR_RUNS = 30  # runs read each way along a branch to find the commits before and after one
RATE_LIMITED = "rate limited"  # how the fetcher's error starts when GitHub paused it (ingest/joblogs.py)

w, j, fl, c = workflowruns.c, jobs.c, failure_lines.c, commits.c
OCCURRENCE_KEYS = ("job", "job_name", "job_url", "run", "run_gitid", "attempt", "run_url", "repo", "workflow",
                   "branch", "sha", "title", "author", "createtime", "conclusion", "text", "rule", "klass",
                   "fingerprint")
SUMMARY_KEYS = ("jobs", "runs", "first_seen", "last_seen", "branches", "authors", "repos", "workflows", "job_names")
EVIDENCE_KEYS = ("run", "run_gitid", "attempt", "url", "branch", "sha", "conclusion", "createtime")
LINE_KEYS = ("ordinal", "rule", "klass", "text", "fingerprint", "source", "path", "line", "fallback")


# -- the failed jobs of failed runs, with their primary line ----------------------------------------

def _failed_runs(by_fingerprint: bool = False) -> list:
    """The failed-run conditions spelled as the partial indexes say (literals), so SQLite reads them.

    `by_fingerprint`, for a read that starts from one fingerprint's lines (`idx_failure_lines_fingerprint`):
    spelled so that no index of the runs can serve them (`|| ''`); else SQLite, which has no statistics,
    walks every failed run and looks its line up (bench.generate's 1M-run store: 0.15-0.4 s a call, against
    2-70 ms from the fingerprint)."""
    if by_fingerprint:
        unindexed = literal_column("''")
        return [w.status.op("||")(unindexed) == "completed", w.conclusion.op("||")(unindexed).in_(FAILED)]
    return [w.status == literal_column("'completed'"), w.conclusion.in_(literals(FAILED))]


def _primary_join(outer: bool = False, by_fingerprint: bool = False):
    """Failed runs' latest attempts' failed jobs, joined to their primary line (`by_fingerprint`: see
    `_failed_runs`)."""
    failed_job = j.conclusion.in_(FAILED_JOB if by_fingerprint else literals(FAILED_JOB))
    joined = workflowruns.join(jobs, and_(j.run_gitid == w.gitid, j.run_attempt == w.run_attempt, failed_job))
    on = and_(fl.job == j.gitid, fl.ordinal == 0)
    return joined.outerjoin(failure_lines, on) if outer else joined.join(failure_lines, on)


def _occurrence_columns():
    return (j.gitid.label("job"), j.name.label("job_name"), j.url.label("job_url"), w.id.label("run"),
            w.gitid.label("run_gitid"), j.run_attempt.label("attempt"), w.url.label("run_url"), w.repo,
            w.archivedworkflowname.label("workflow"), w.archivedbranchname.label("branch"),
            w.archivedcommithash.label("sha"), w.title, func.coalesce(w.fail_author, w.author).label("author"),
            w.createtime, j.conclusion, fl.text, fl.rule, fl["class"].label("klass"), fl.fingerprint)


_NEWEST_FIRST = (w.createtime.desc(), w.gitid.desc(), j.gitid.desc())


def _occurrence(row) -> dict:
    return {**dict(zip(OCCURRENCE_KEYS, row)), "excerpt": None, "verdict": None}


# -- groups, occurrences, summary ------------------------------------------------------------------

def groups(conn: Connection, filters: Filters, *, limit: int = 100, newest: int = 5) -> list[dict]:
    """Failed jobs of the runs `filters` selects, grouped by their primary line's fingerprint, newest first.

    Keys: fingerprint, text, rule, klass, jobs, runs, first_seen, last_seen, branches, authors, repos,
    workflows, job_names (sorted lists), verdict (the newest occurrence's), newest (occurrence dicts, newest
    first; only the first carries its verdict, the group's: each verdict costs a few searches).  The window is
    on the run's createtime; text, rule and klass are the newest occurrence's (a fingerprint's texts differ
    only in what normalising removed).  Groups rank by their newest occurrence (last_seen, then run and job
    id, descending).

    One read: the window's failed runs from their partial index by time, each joined to its latest attempt's
    failed jobs (`idx_jobs_run`) and their primary line (the key of `failure_lines`), newest first, summed
    here as they stream by (a GROUP BY with five DISTINCT lists, then a ranking of the same rows for the
    newest occurrences, read the rows twice and cost several times more); once `limit` groups are found,
    the rows of any other are skipped.  Then the shown occurrences by job id, and the groups' verdicts.
    """
    found: dict[str, _Group] = {}
    size = max(newest, 1)
    for fp, createtime, run, job, *names in _stream(conn, select(
            fl.fingerprint, w.createtime, w.gitid, j.gitid, w.archivedbranchname,
            func.coalesce(w.fail_author, w.author), w.repo, w.archivedworkflowname, j.name)
            .select_from(_primary_join()).where(*filters.conditions(), *_failed_runs()).order_by(*_NEWEST_FIRST)):
        # Inline, not a method per row: at 30 days of a busy store this loop runs ~50k times.  Newest first,
        # so a group's first rows are its newest occurrences and its last its first_seen.
        g = found.get(fp)
        if g is None:
            if len(found) >= limit:  # a group first seen now is older than the `limit` already found
                continue
            g = found[fp] = _Group(createtime)
        g.jobs += 1
        g.runs.add(run)
        g.names[tuple(names)] = None
        if len(g.newest) < size:
            g.newest.append(job)
        if createtime is not None:
            g.first = createtime
    # In the order of their newest occurrences.  A job that stopped being a failed one since the read above
    # (a redelivery) is left out, and so is a group left with none.
    shown = _occurrences_of(conn, [job for g in found.values() for job in g.newest])
    found_verdicts = verdicts(conn, [g.newest[0] for g in found.values()])
    out = []
    for fp, g in found.items():
        occurrences_ = [shown[job] for job in g.newest if job in shown]
        if not occurrences_:
            continue
        first = occurrences_[0]
        first["verdict"] = found_verdicts.get(first["job"])
        out.append({"fingerprint": fp, "text": first["text"], "rule": first["rule"], "klass": first["klass"],
                    **g.summary(), "verdict": first["verdict"], "newest": occurrences_[:newest]})
    return out


class _Group:
    """A group's sums as its occurrences stream by, newest first (see `groups`)."""

    __slots__ = ("jobs", "runs", "first", "last", "names", "newest")

    def __init__(self, last):
        self.jobs, self.runs, self.first, self.last = 0, set(), last, last
        self.names: dict[tuple, None] = {}  # each (branch, author, repo, workflow, job name) seen
        self.newest: list[int] = []  # the newest jobs, newest first

    def summary(self) -> dict:
        lists = [sorted({v for v in values if isinstance(v, str)}) for values in zip(*self.names)] \
            if self.names else [[]] * 5
        return dict(zip(SUMMARY_KEYS, (self.jobs, len(self.runs), self.first, self.last, *lists)))


def _stream(conn: Connection, statement, size: int = 5000):
    """`statement`'s rows as plain tuples, fetched `size` at a time on the driver's cursor (SQLAlchemy's
    rows cost more than SQLite's work for a window's tens of thousands)."""
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    bound = compiled.construct_params(_check=False)
    args = tuple(bound[k] for k in compiled.positiontup) if compiled.positiontup is not None else bound
    cursor = conn.connection.cursor()
    try:
        cursor.execute(compiled.string, args)
        while rows := cursor.fetchmany(size):
            yield from rows
    finally:
        cursor.close()


def _occurrences_of(conn: Connection, ids) -> dict[int, dict]:
    """Occurrence dicts of these jobs (failed jobs of failed runs' latest attempts with a primary line)."""
    out = {}
    for chunk in _chunks(_ints(ids)):
        for row in conn.execute(select(*_occurrence_columns()).select_from(_primary_join())
                                .where(j.gitid.in_(chunk))):
            out[row.job] = _occurrence(row)
    return out


def occurrences(conn: Connection, fingerprint: str, filters: Filters | None = None, *, limit: int = 200,
                excerpts: bool = True) -> list[dict]:
    """The occurrences of `fingerprint` among the runs `filters` selects (all when None), newest first.

    Keys: job, job_name, job_url, run, run_gitid, attempt, run_url, repo, workflow, branch, sha, title,
    author, createtime, conclusion, text, rule, klass, fingerprint, excerpt (the kept log lines, or None;
    None too unless `excerpts`), verdict.
    """
    out = [_occurrence(row) for row in _newest(conn, fingerprint, filters or Filters(), limit)]
    found = verdicts(conn, [o["job"] for o in out])
    for o in out:
        o["verdict"] = found.get(o["job"])
        if excerpts:
            o["excerpt"] = excerpt(conn, o["job"])
    return out


def _newest(conn: Connection, fingerprint: str, filters: Filters, limit: int) -> list:
    """The newest `limit` occurrences of `fingerprint` among the runs `filters` selects (rows of
    `_occurrence_columns`), by the cheaper of two searches (`_common`)."""
    if not _common(conn, fingerprint, filters):
        return conn.execute(
            select(*_occurrence_columns()).select_from(_primary_join(by_fingerprint=True))
            .where(*filters.conditions(), *_failed_runs(by_fingerprint=True), fl.fingerprint == fingerprint)
            .order_by(*_NEWEST_FIRST).limit(limit)).all()
    conditions = [*filters.conditions(), *_failed_runs()]
    # One search per failed conclusion through the failed runs by time, newest first, stopping at `limit`
    # found; the fingerprint is tested on each (`|| ''`: SQLite must not search by it).
    rows = []
    for conclusion in literals(FAILED):
        rows += conn.execute(
            select(*_occurrence_columns()).select_from(_primary_join())
            .where(*conditions, w.conclusion == conclusion,
                   fl.fingerprint.op("||")(literal_column("''")) == fingerprint)
            .order_by(*_NEWEST_FIRST).limit(limit)).all()
    return sorted(rows, key=lambda r: (r.createtime is not None, r.createtime or 0, r.run_gitid, r.job),
                  reverse=True)[:limit]


COMMON = 2000  # a fingerprint's lines below which its own index is the cheaper search, whatever the window


def _common(conn: Connection, fingerprint: str, filters: Filters) -> bool:
    """Whether the newest occurrences of `fingerprint` are cheaper found by walking the failed runs `filters`
    selects than by reading all its n lines.  The walk reads every failed run of the selection, not only the
    newest: its partial index serves the conclusion list as one seek per conclusion, so SQLite sorts what it
    read (all of a 1M-run store's 100k failed runs: 0.23 s, against 0.07 s for a fingerprint's 8,000 lines)."""
    n = conn.execute(select(func.count()).where(fl.fingerprint == fingerprint)).scalar_one()
    if n < COMMON:
        return False
    # Counted up to n only: whether there are fewer is all that is asked (a branch's failed runs can be many).
    window = conn.execute(select(func.count()).select_from(
        select(w.id).where(*filters.conditions(), *_failed_runs()).limit(n).subquery())).scalar_one()
    return window < n


def summary(conn: Connection, fingerprint: str) -> dict | None:
    """All time: text, rule, klass (the newest occurrence's), jobs, runs, first_seen, last_seen, repos,
    branches, authors, workflows, job_names; None when no occurrence has this fingerprint.

    One read of the fingerprint's occurrences (its index first), summed here with the newest picked on the
    way: the newest through `_newest` cost a walk of every failed run of a conclusion the fingerprint never
    had (the 60-minute timeout of bench.generate's 1M-run store: 0.47 s, against 0.04 s now)."""
    jobs_, runs, first, newest, names = 0, set(), None, None, {}
    for createtime, run, job, text, rule, klass, *rest in _stream(conn, select(
            w.createtime, w.gitid, j.gitid, fl.text, fl.rule, fl["class"], w.archivedbranchname,
            func.coalesce(w.fail_author, w.author), w.repo, w.archivedworkflowname, j.name)
            .select_from(_primary_join(by_fingerprint=True))
            .where(*_failed_runs(by_fingerprint=True), fl.fingerprint == fingerprint)):
        jobs_ += 1
        runs.add(run)
        key = (createtime is not None, createtime or 0, run, job)  # _newest's order
        if newest is None or key > newest[0]:
            newest = (key, text, rule, klass)
        if createtime is not None and (first is None or createtime < first):
            first = createtime
        names[tuple(rest)] = None
    if not jobs_:
        return None
    lists = [sorted({v for v in values if isinstance(v, str)}) for values in zip(*names)]
    last = newest[0][1] if newest[0][0] else None
    return {"text": newest[1], "rule": newest[2], "klass": newest[3],
            **dict(zip(SUMMARY_KEYS, (jobs_, len(runs), first, last, *lists)))}


def known(conn: Connection, fingerprint: str) -> bool:
    """Whether some job's primary failure line has this fingerprint (one index read: a page's check that
    its group exists, where `summary` reads all of a big group)."""
    return conn.execute(select(fl.job).where(fl.fingerprint == fingerprint, fl.ordinal == 0).limit(1)).first() \
        is not None


# -- lines, runs, people ---------------------------------------------------------------------------

def _ints(values) -> list[int]:
    return sorted({int(v) for v in values})


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def job_lines(conn: Connection, jobs_) -> dict[int, list[dict]]:
    """Each job's failure lines, primary first: ordinal, rule, klass, text, fingerprint, source, path, line,
    fallback (bool).  Jobs without lines are left out."""
    out: dict[int, list[dict]] = {}
    for chunk in _chunks(_ints(jobs_)):
        for row in conn.execute(
                select(fl.job, fl.ordinal, fl.rule, fl["class"], fl.text, fl.fingerprint, fl.source, fl.path,
                       fl.line, fl.fallback).where(fl.job.in_(chunk)).order_by(fl.job, fl.ordinal)):
            line = dict(zip(LINE_KEYS, row[1:]))
            line["fallback"] = bool(line["fallback"])
            out.setdefault(row[0], []).append(line)
    return out


def capture_states(conn: Connection, jobs_) -> dict[int, str]:
    """Each queued job's capture state (`job_logs.state`)."""
    out = {}
    for chunk in _chunks(_ints(jobs_)):
        out.update(conn.execute(select(job_logs.c.job, job_logs.c.state).where(job_logs.c.job.in_(chunk))).all())
    return out


def job_failures(conn: Connection, jobs_, *, until: str | None = None) -> dict[int, dict]:
    """What is known of why each job failed: failure_lines (list, primary first), fingerprint, rule,
    class (the primary line's, or None), verdict (None without a line; `until`: see `verdicts`), capture
    (its `job_logs` state or None).  For the API's run detail, every attempt's failed jobs."""
    ids = _ints(jobs_)
    lines, states, found = job_lines(conn, ids), capture_states(conn, ids), verdicts(conn, ids, until=until)
    out = {}
    for job in ids:
        primary = (lines.get(job) or [None])[0]
        out[job] = {"failure_lines": lines.get(job, []),
                    "fingerprint": primary and primary["fingerprint"], "rule": primary and primary["rule"],
                    "class": primary and primary["klass"], "verdict": found.get(job), "capture": states.get(job)}
    return out


def run_failures(conn: Connection, run_gitids, *, until: str | None = None) -> dict[int, list[dict]]:
    """Per run (GitHub run id; every one asked for), its latest attempt's failed jobs in the order they
    were created: job, name, url, conclusion, lines, verdict (None when no line yet; `until`: see
    `verdicts`), capture (`job_logs.state` or None)."""
    ids = _ints(run_gitids)
    out: dict[int, list[dict]] = {run: [] for run in ids}
    failed = []
    for chunk in _chunks(ids):
        failed += conn.execute(
            select(j.run_gitid, j.gitid, j.name, j.url, j.conclusion)
            .select_from(jobs.join(workflowruns, and_(w.gitid == j.run_gitid, w.run_attempt == j.run_attempt)))
            .where(j.run_gitid.in_(chunk), j.conclusion.in_(literals(FAILED_JOB)))
            .order_by(j.run_gitid, j.createtime, j.gitid)).all()
    known = job_failures(conn, [row[1] for row in failed], until=until)
    for run, job, name, url, conclusion in failed:
        about = known[job]
        out[run].append({"job": job, "name": name, "url": url, "conclusion": conclusion,
                         "lines": about["failure_lines"], "verdict": about["verdict"], "capture": about["capture"]})
    return out


def person_failures(conn: Connection, person: str, filters: Filters, *, limit: int = 200) -> list[dict]:
    """A person's failed jobs in the window (their runs, as `Filters.author` selects them), newest first, as
    occurrence dicts (text, rule, klass, fingerprint None when no line yet; excerpt None) plus `whose`:
    "yours" (NEW), "trunk" (BROKEN TRUNK), "flaky" (FLAKY), "infra" (INFRA), "known" (KNOWN) or
    "unknown" (no line yet)."""
    mine = replace(filters, author=person)
    rows = conn.execute(
        select(*_occurrence_columns()).select_from(_primary_join(outer=True))
        .where(*mine.conditions(), *_failed_runs()).order_by(*_NEWEST_FIRST).limit(limit)).all()
    out = [_occurrence(row) for row in rows]
    found = verdicts(conn, [o["job"] for o in out if o["fingerprint"] is not None])
    for o in out:
        o["verdict"] = found.get(o["job"])
        o["whose"] = WHOSE[o["verdict"]["kind"]] if o["verdict"] else "unknown"
    return out


# -- capture and coverage --------------------------------------------------------------------------

def capture_status(conn: Connection, *, token: bool) -> dict:
    """How the capture of failed jobs' logs stands: token (whether this server has one), pending, done,
    failed, gone (jobs in each state), paused_until (when GitHub rate-limited us: every pending job waits
    until then; else None), last_error (why the pending job due first last failed, else the reason of the
    job given up last, or None).

    Index reads only (`idx_job_logs_due`): the counts, the pending job due first, and the failed and gone
    jobs tried last."""
    now = time.time()
    jl = job_logs.c
    n = capture_counts(conn)
    first = conn.execute(select(jl.next_try, jl.error).where(jl.state == PENDING)
                         .order_by(jl.next_try).limit(1)).first()
    paused = first is not None and first[0] > now and (first[1] or "").startswith(RATE_LIMITED)
    last_error = first[1] if first is not None else None
    if last_error is None:  # no pending job in trouble: the newest job given up (its last try)
        ended = [row for state in (GAVE_UP, GONE) for row in conn.execute(
            select(jl.next_try, jl.error).where(jl.state == state, jl.error.is_not(None))
            .order_by(jl.next_try.desc()).limit(1))]
        last_error = max(ended, key=lambda row: row[0])[1] if ended else None
    return {"token": bool(token), "pending": n.get(PENDING, 0), "done": n.get(DONE, 0),
            "failed": n.get(GAVE_UP, 0), "gone": n.get(GONE, 0),
            "paused_until": first[0] if paused else None, "last_error": last_error}


def capture_counts(conn: Connection) -> dict[str, int]:
    """How many jobs are in each capture state (read from `idx_job_logs_due` alone)."""
    jl = job_logs.c
    return {state: n for state, n in conn.execute(select(jl.state, func.count()).group_by(jl.state))}


def coverage(conn: Connection) -> tuple[int, int]:
    """(failed jobs captured whose primary line is not a last-resort rule's, failed jobs captured):
    the classifier's coverage is the first over the second (a captured job with no line is not covered)."""
    jl = job_logs.c
    done = conn.execute(select(func.count()).select_from(job_logs).where(jl.state == DONE)).scalar_one()
    matched = conn.execute(
        select(func.count()).select_from(failure_lines.join(job_logs, jl.job == fl.job))
        .where(fl.ordinal == 0, fl.fallback == 0, jl.state == DONE)).scalar_one()
    return matched, done


# -- verdicts --------------------------------------------------------------------------------------

_BASE_KEYS = ("job", "name", "run_gitid", "attempt", "conclusion", "url", "run", "repo", "workflow_id", "branch_id",
              "commitid", "createtime", "branch", "sha", "run_url", "commit_time", "klass", "rule", "fingerprint",
              "workflow")


def _evidence(run, run_gitid, attempt, url, branch, sha, conclusion, createtime) -> dict:
    return dict(zip(EVIDENCE_KEYS, (run, run_gitid, attempt, url, branch, sha, conclusion, createtime)))


def _verdict(kind: str, reason: str, evidence=()) -> dict:
    ordered = sorted(evidence, key=lambda e: (-(e["createtime"] or 0), -e["run_gitid"], -e["attempt"]))
    unique, seen = [], set()
    for e in ordered:
        if (e["run_gitid"], e["attempt"]) not in seen:
            seen.add((e["run_gitid"], e["attempt"]))
            unique.append(e)
    return {"kind": kind, "reason": reason, "evidence": unique[:EVIDENCE]}


def verdicts(conn: Connection, jobs_: list[int], *, until: str | None = None) -> dict[int, dict]:
    """The verdict of each failed job (job gitids) that has a primary line; others are left out.

    `{"kind", "reason", "evidence": [{run, run_gitid, attempt, url, branch, sha, conclusion, createtime}]}`
    with at most 5 evidence runs, newest first (NEW has none; KNOWN: the newest earlier occurrences).
    An evidence `url` is the job's page when the evidence is a job, `conclusion` that job's.

    With `until` (FLAKY), the kinds are decided in their order (INFRA, FLAKY, BROKEN TRUNK, then NEW or
    KNOWN) up to that one only, and jobs of a later kind are left out: whether a job is flaky is then
    known without searching a fingerprint's history (the costliest searches)."""
    base = _base_rows(conn, _ints(jobs_))
    out: dict[int, dict] = {}
    for job, b in base.items():
        if b["klass"] == "infra":
            out[job] = _verdict(INFRA, f"An infrastructure failure: rule {b['rule']!r} matched its log.")
    for kind, decide in ((FLAKY, _flaky), (BROKEN_TRUNK, _broken_trunk), (NEW, _new_or_known)):
        undecided = [b for job, b in base.items() if job not in out]
        if not undecided:
            break
        out.update(decide(conn, undecided))
        if kind == until:
            break
    return out


def _base_rows(conn: Connection, ids: list[int]) -> dict[int, dict]:
    """Each failed job with a primary line: the job, its run, commit and primary line."""
    out = {}
    for chunk in _chunks(ids):
        for row in conn.execute(
                select(j.gitid, j.name, j.run_gitid, j.run_attempt, j.conclusion, j.url, w.id, w.repo, w.workflow,
                       w.branch, w.commitid, w.createtime, w.archivedbranchname, w.archivedcommithash, w.url, c.time,
                       fl["class"], fl.rule, fl.fingerprint, w.archivedworkflowname)
                .select_from(jobs.join(workflowruns, w.gitid == j.run_gitid).join(commits, c.id == w.commitid)
                             .join(failure_lines, and_(fl.job == j.gitid, fl.ordinal == 0)))
                .where(j.gitid.in_(chunk), j.conclusion.in_(literals(FAILED_JOB)))):
            out[row[0]] = dict(zip(_BASE_KEYS, row))
    return out


# One search each way along a (workflow, branch) from a run's time (idx_workflowruns_workflow_branch_createtime).
_ALONG = select(w.commitid, c.hash, c.time).select_from(workflowruns.join(commits, c.id == w.commitid))
_BEFORE = (_ALONG.where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime <= bindparam("t"),
                        w.commitid != bindparam("cid"))
           .order_by(w.createtime.desc()).limit(NEIGHBOUR_RUNS))
_AFTER = (_ALONG.where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.createtime >= bindparam("t"),
                       w.commitid != bindparam("cid"))
          .order_by(w.createtime.asc()).limit(NEIGHBOUR_RUNS))


def _neighbours(conn: Connection, rows: list[dict]) -> dict[int, tuple]:
    """Each job's (commit before, commit after) on its branch among the commits that ran its workflow, by
    commit time (None where there is none)."""
    keys = sorted({(b["workflow_id"], b["branch_id"], b["createtime"], b["commitid"], b["commit_time"])
                   for b in rows if b["createtime"] is not None})
    params = [{"wf": k[0], "br": k[1], "t": k[2], "cid": k[3]} for k in keys]
    found = {}
    for key, before, after in zip(keys, _each(conn, _BEFORE, params), _each(conn, _AFTER, params)):
        own = key[4]
        candidates = {cid: t for cid, _hash, t in [*before, *after]}
        earlier = [(t, cid) for cid, t in candidates.items() if t < own]
        later = [(t, cid) for cid, t in candidates.items() if t > own]
        found[key] = (max(earlier)[1] if earlier else None, min(later)[1] if later else None)
    return {b["job"]: found.get((b["workflow_id"], b["branch_id"], b["createtime"], b["commitid"], b["commit_time"]),
                                (None, None)) for b in rows}


def _flaky(conn: Connection, rows: list[dict]) -> dict[int, dict]:
    """FLAKY: the same job (same name) passed on another attempt of its run, on another run of its workflow
    on the same commit, or on both neighbouring commits of its branch."""
    around = _neighbours(conn, rows)
    wanted_commits = sorted({b["commitid"] for b in rows} | {cid for pair in around.values() for cid in pair if cid})
    workflow_ids = {b["workflow_id"] for b in rows}
    names = {b["name"] for b in rows}
    passed: dict[tuple, list] = defaultdict(list)  # (commit, workflow, name) -> evidence rows
    for chunk in _chunks(wanted_commits):
        for row in conn.execute(
                select(w.commitid, w.workflow, j.name, w.id, w.gitid, j.run_attempt, func.coalesce(j.url, w.url),
                       w.archivedbranchname, w.archivedcommithash, j.conclusion, w.createtime)
                .select_from(workflowruns.join(jobs, j.run_gitid == w.gitid))
                .where(w.commitid.in_(chunk), j.conclusion == literal_column("'success'"))):
            # Workflows and names are picked here: in SQL, SQLite (without statistics) searched runs by
            # workflow rather than by commit.
            if row[1] in workflow_ids and row[2] in names:
                passed[tuple(row[:3])].append(_evidence(*row[3:]))
    out = {}
    for b in rows:
        same = passed.get((b["commitid"], b["workflow_id"], b["name"]), [])
        rerun = [e for e in same if e["run_gitid"] == b["run_gitid"] and e["attempt"] != b["attempt"]]
        if rerun:
            out[b["job"]] = _verdict(FLAKY, f"The same job passed on attempt {rerun[0]['attempt']} of this run.",
                                     rerun)
            continue
        other = [e for e in same if e["run_gitid"] != b["run_gitid"]]
        if other:
            out[b["job"]] = _verdict(FLAKY, f"The same job passed in another {b['workflow']} run on the same "
                                            f"commit.", other)
            continue
        before, after = around[b["job"]]
        if before and after:
            sides = [passed.get((cid, b["workflow_id"], b["name"])) for cid in (before, after)]
            if all(sides):
                out[b["job"]] = _verdict(
                    FLAKY, "The same job passed on the commits just before and just after this one on "
                           f"{b['branch']}.", [max(side, key=lambda e: e["createtime"] or 0) for side in sides])
    return out


def default_branches(conn: Connection, names) -> dict[str, list[int]]:
    """Each repository's default branch ids: `repos.default_branch`, else its branches named main or master."""
    names = sorted(set(names))
    named = dict(conn.execute(select(repos.c.name, repos.c.default_branch).where(repos.c.name.in_(names))).all())
    wanted = sorted({named.get(r) or "main" for r in names} | {"master"} if names else set())
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for branch_id, repo, name in conn.execute(select(branches.c.id, branches.c.repo, branches.c.name)
                                              .where(branches.c.repo.in_(names), branches.c.name.in_(wanted))):
        out[repo][name] = branch_id
    result = {}
    for repo in names:
        choices = [named[repo]] if named.get(repo) else ["main", "master"]
        result[repo] = [out[repo][n] for n in choices if n in out[repo]][:1]
    return result


# The newest runs of a workflow on a branch (idx_workflowruns_workflow_branch_createtime), with their commits.
_NEWEST_ON = (select(w.commitid, c.time).select_from(workflowruns.join(commits, c.id == w.commitid))
              .where(w.workflow == bindparam("wf"), w.branch == bindparam("br"))
              .order_by(w.createtime.desc()).limit(NEIGHBOUR_RUNS))


def _broken_trunk(conn: Connection, rows: list[dict]) -> dict[int, dict]:
    """BROKEN TRUNK: the same fingerprint failed on the default branch in another run whose commit is one of
    the newest `TRUNK_COMMITS` commits (by commit time) of that branch that ran the job's workflow, other than
    the job's own commit."""
    trunk = default_branches(conn, {b["repo"] for b in rows})
    pairs = sorted({(b["workflow_id"], br) for b in rows for br in trunk[b["repo"]]})
    newest: dict[tuple, list] = {}
    commit_times: dict[int, float] = {}
    for pair, found in zip(pairs, _each(conn, _NEWEST_ON, [{"wf": wf, "br": br} for wf, br in pairs])):
        times = {cid: t for cid, t in found}
        commit_times.update(times)
        newest[pair] = [cid for cid, _t in sorted(times.items(), key=lambda kv: -kv[1])[:TRUNK_COMMITS]]
    wanted = sorted({cid for ids in newest.values() for cid in ids})
    branch_ids = {br for ids in trunk.values() for br in ids}
    fingerprints = {b["fingerprint"] for b in rows}
    failing: dict[tuple, list] = defaultdict(list)  # (commit, fingerprint) -> evidence
    for chunk in _chunks(wanted):
        for row in conn.execute(
                select(w.commitid, fl.fingerprint, w.id, w.gitid, j.run_attempt, func.coalesce(j.url, w.url),
                       w.archivedbranchname, w.archivedcommithash, j.conclusion, w.createtime, w.branch)
                .select_from(_primary_join()).where(w.commitid.in_(chunk))):
            # Branches and fingerprints are picked here, so that SQLite searches the runs by commit.
            if row[-1] in branch_ids and row[1] in fingerprints:
                failing[tuple(row[:2])].append(_evidence(*row[2:-1]))
    out = {}
    for b in rows:
        # On the default branch itself, only older commits failing the same way make it trunk's: the commit
        # that broke trunk first is its author's to fix, not "already broken".
        on_trunk = b["branch_id"] in trunk[b["repo"]]
        evidence = [e for br in trunk[b["repo"]] for cid in newest.get((b["workflow_id"], br), ())
                    if cid != b["commitid"] and not (on_trunk and commit_times[cid] >= b["commit_time"])
                    for e in failing.get((cid, b["fingerprint"]), ()) if e["run_gitid"] != b["run_gitid"]]
        if evidence:
            commits_ = len({e["sha"] for e in evidence})
            out[b["job"]] = _verdict(
                BROKEN_TRUNK, f"The same failure is failing on {evidence[0]['branch']} at {commits_} of its "
                              f"{TRUNK_COMMITS} newest commits that ran {b['workflow']}.", evidence)
    return out


# The newest earlier occurrences of a fingerprint in the horizon (any attempt, any repository): its index
# searched from the job's own id down (GitHub's job ids grow with time, so the first found are the newest and
# the search stops after a few); when none is found there, from its id up (a re-run's job, made after this
# one, of a run created before).  Each job's run is read for its time.
_EARLIER_COLUMNS = (w.id, w.gitid, j.run_attempt, func.coalesce(j.url, w.url), w.archivedbranchname,
                    w.archivedcommithash, j.conclusion, w.createtime)
_EARLIER_FROM = failure_lines.join(jobs, j.gitid == fl.job).join(workflowruns, w.gitid == j.run_gitid)
_EARLIER_WHERE = (fl.fingerprint == bindparam("fp"), w.createtime >= bindparam("since"), w.createtime < bindparam("t"),
                  j.conclusion.in_(literals(FAILED_JOB)))
_EARLIER_BELOW = (select(*_EARLIER_COLUMNS).select_from(_EARLIER_FROM)
                  .where(*_EARLIER_WHERE, fl.job < bindparam("job")).order_by(fl.job.desc()).limit(EVIDENCE))
_EARLIER_ABOVE = (select(*_EARLIER_COLUMNS).select_from(_EARLIER_FROM)
                  .where(*_EARLIER_WHERE, fl.job > bindparam("job")).order_by(fl.job.asc()).limit(EVIDENCE))


def _new_or_known(conn: Connection, rows: list[dict]) -> dict[int, dict]:
    """NEW when no failed job had the fingerprint in the `NEW_DAYS` days before the run was created, else
    KNOWN with the newest earlier occurrences."""
    timed = [b for b in rows if b["createtime"] is not None]
    params = [{"fp": b["fingerprint"], "since": b["createtime"] - NEW_DAYS * 86400, "t": b["createtime"],
               "job": b["job"]} for b in timed]
    seen = {b["job"]: [_evidence(*row) for row in found]
            for b, found in zip(timed, _each(conn, _EARLIER_BELOW, params))}
    rest = [(b, p) for b, p in zip(timed, params) if not seen[b["job"]]]
    for (b, _p), found in zip(rest, _each(conn, _EARLIER_ABOVE, [p for _b, p in rest])):
        seen[b["job"]] = [_evidence(*row) for row in found]
    out = {}
    for b in rows:
        earlier = seen.get(b["job"])
        if earlier:
            out[b["job"]] = _verdict(KNOWN, f"Seen in failed jobs in the {NEW_DAYS} days before this run.", earlier)
        else:
            out[b["job"]] = _verdict(NEW, f"Not seen in any failed job in the {NEW_DAYS} days before this run.")
    return out
