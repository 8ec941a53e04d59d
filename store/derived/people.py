"""Each person's runs and times to signal, kept by every write (the Developer view's numbers).

A person's runs are those they triggered (the run's actor) or whose commit they
wrote (`Filters(author=...)`).  Reading them through those two links costs a
random read per run (~19,000 for a busy person in a million runs); instead
`person_runs` holds one row per run and person, clustered by person and
creation time, with what the metric cards read of the run, and
`person_signals` each person's time to signal per commit and branch over
their own runs of it, by its first creation (as `store.queries.cards`
defines them for a person).

Both are recomputed per (branch, commit) from the runs (its ("commit",
branch, commit) keys, `store.derived`), before the write's transaction
commits: a run's write refreshes its commit on its branch; a commit's write
(its author can arrive after its runs) refreshes all of its branches.
`rebuild` recomputes everything (migrations, the bench generator).
"""
from collections import defaultdict

from sqlalchemy import and_, bindparam, case, delete, func, insert, or_, select
from sqlalchemy.engine import Connection

from store.derived.part import Part
from store.prepared import execute_prepared
from store.schema import commits, person_runs, person_signals, runattempts, workflowruns

w = workflowruns.c
ra = runattempts.c
pr = person_runs.c
ps = person_signals.c

_ROW = (w.id, w.author, commits.c.author, w.repo, w.branch, w.commitid, w.createtime, w.status, w.conclusion,
        w.runtime, w.updatetime, ra.attempt, ra.createtime, ra.endtime, ra.status, ra.queuetime)
(ID, ACTOR, WRITER, REPO, BRANCH, COMMIT, CREATED, STATUS, CONCLUSION, RUNTIME, UPDATED,
 A_NUM, A_CREATED, A_END, A_STATUS, A_QUEUE) = range(len(_ROW))
_SOURCE = workflowruns.join(commits, commits.c.id == w.commitid).outerjoin(runattempts, ra.run == w.id)
RUN_COLUMNS = ("person", "createtime", "run", "repo", "status", "conclusion", "runtime", "updatetime", "queues")
SIGNAL_COLUMNS = ("person", "first", "branch", "commitid", "repo", "tts")


# --- pure: the rows of whole (branch, commit) groups -> person rows ---------------------------------

def people_of(row) -> set:
    return {p for p in (row[ACTOR], row[WRITER]) if p is not None}


def summarize(rows) -> tuple[set, set]:
    """(`person_runs` rows, `person_signals` rows) as tuples of `RUN_COLUMNS` / `SIGNAL_COLUMNS`.

    `rows` are `_ROW` tuples, every attempt of each run, of whole (branch, commit) groups.
    """
    runs: dict[int, list] = defaultdict(list)
    for row in rows:
        runs[row[ID]].append(row)
    run_rows, groups = set(), defaultdict(list)
    for attempts in runs.values():
        row = attempts[0]
        people = people_of(row)
        numbered = sorted((a for a in attempts if a[A_NUM] is not None), key=lambda a: a[A_NUM])
        if row[CREATED] is not None:
            queues = " ".join(repr(float(a[A_QUEUE])) for a in numbered if a[A_QUEUE] is not None)
            for person in people:
                run_rows.add((person, row[CREATED], row[ID], row[REPO], row[STATUS], row[CONCLUSION], row[RUNTIME],
                              row[UPDATED], queues))
        for a in numbered:
            if a[A_NUM] == 1:
                for person in people:
                    groups[(person, row[BRANCH], row[COMMIT], row[REPO])].append(a)
    signal_rows = set()
    for (person, branch, commit, repo), firsts in groups.items():
        created = [a[A_CREATED] for a in firsts if a[A_CREATED] is not None]
        ended = [a[A_END] for a in firsts if a[A_END] is not None]
        if created and ended and all(a[A_STATUS] == "completed" for a in firsts):
            signal_rows.add((person, min(created), branch, commit, repo, max(ended) - min(created)))
    return run_rows, signal_rows


# --- I/O --------------------------------------------------------------------------------------------

_GROUP_ROWS = select(*_ROW).select_from(_SOURCE).where(w.branch == bindparam("br"), w.commitid == bindparam("c"))
_RUN_ROWS = select(*_ROW).select_from(_SOURCE).where(w.id == bindparam("run"), w.branch == bindparam("br"),
                                                     w.commitid == bindparam("c"))
_OLD_RUNS = select(*(pr[c] for c in RUN_COLUMNS)).where(pr.run.in_(
    select(w.id).where(w.branch == bindparam("br"), w.commitid == bindparam("c"))))
_OLD_RUN = select(*(pr[c] for c in RUN_COLUMNS)).where(pr.run == bindparam("run"))
_OLD_SIGNALS = select(*(ps[c] for c in SIGNAL_COLUMNS)).where(ps.commitid == bindparam("c"),
                                                              ps.branch == bindparam("br"))
# One person's time to signal on a commit and branch, as SQLite aggregates over the first attempts
# of their runs (their own, or all of the commit's when they wrote it): per run repository,
# (repo, first attempts, completed, min creation, max end).
_PERSON_FIRSTS = (select(w.repo, func.count(), func.sum(case((ra.status == "completed", 1), else_=0)),
                         func.min(ra.createtime), func.max(ra.endtime))
                  .select_from(workflowruns.join(commits, commits.c.id == w.commitid)
                               .join(runattempts, and_(ra.run == w.id, ra.attempt == 1)))
                  .where(w.branch == bindparam("br"), w.commitid == bindparam("c"),
                         or_(w.author == bindparam("p"), commits.c.author == bindparam("p")))
                  .group_by(w.repo))
_RUN_DELETE = delete(person_runs).where(pr.person == bindparam("k_person"), pr.createtime == bindparam("k_createtime"),
                                        pr.run == bindparam("k_run"))
_SIGNAL_DELETE = delete(person_signals).where(ps.person == bindparam("k_person"), ps.first == bindparam("k_first"),
                                              ps.branch == bindparam("k_branch"),
                                              ps.commitid == bindparam("k_commitid"))


def refresh(conn: Connection, keys) -> None:
    """Recompute the person rows of the ("commit", branch, commit) keys (all of the commit's runs
    there) and of the ("commit_run", branch, commit, run) keys (the runs written, and the times to
    signal of their people on that commit), and write what changed (statements compiled once:
    this runs before every write's commit)."""
    groups: dict[tuple[int, int], set | None] = {}
    for key in keys:
        if key[0] == "commit":
            groups[(key[1], key[2])] = None
        elif groups.get((key[1], key[2]), ()) is not None:
            groups.setdefault((key[1], key[2]), set()).add(key[3])
    for (branch, commit), runs in sorted(groups.items(), key=lambda item: item[0]):
        if runs is None or not _refresh_runs(conn, branch, commit, runs):
            _refresh_group(conn, branch, commit)


def _refresh_group(conn: Connection, branch: int, commit: int) -> None:
    """Every person row of a commit's runs on a branch, from all of them."""
    key = {"br": branch, "c": commit}
    new_runs, new_signals = summarize(
        [tuple(r) for r in execute_prepared(conn, "people_group_rows", _GROUP_ROWS, key).all()])
    old_runs = {tuple(r) for r in execute_prepared(conn, "people_old_runs", _OLD_RUNS, key).all()}
    old_signals = {tuple(r) for r in execute_prepared(conn, "people_old_signals", _OLD_SIGNALS, key).all()}
    _write_runs(conn, old_runs, new_runs)
    _write_signals(conn, old_signals, new_signals)


def _refresh_runs(conn: Connection, branch: int, commit: int, runs: set) -> bool:
    """The person rows of the written `runs` of a commit on a branch, and the times to signal there
    of their people (before and after); False, having written nothing, when that cannot be told
    from them (a run without a creation time has no row to say whose it was)."""
    key = {"br": branch, "c": commit}
    rows = [tuple(r) for run in sorted(runs)
            for r in execute_prepared(conn, "people_run_rows", _RUN_ROWS, {**key, "run": run}).all()]
    if any(row[CREATED] is None for row in rows):
        return False
    new_runs, _ = summarize(rows)
    old_runs = {tuple(r) for run in sorted({row[ID] for row in rows})
                for r in execute_prepared(conn, "people_old_run", _OLD_RUN, {"run": run}).all()}
    old_signals = {tuple(r) for r in execute_prepared(conn, "people_old_signals", _OLD_SIGNALS, key).all()}
    # Whose times to signal the written runs can change: their people now and before.
    people = {row[0] for row in new_runs | old_runs}
    # A written run whose first attempt has not completed leaves its people no signal, whatever
    # the commit's other runs say: nothing else is read (a commit of thousands of runs costs its new ones).
    open_ = {p for row in rows if row[A_NUM] == 1 and row[A_STATUS] != "completed" for p in people_of(row)}
    new_signals = set()
    for person in sorted(people - open_):
        for repo, n, done, first, last in execute_prepared(conn, "people_person_firsts", _PERSON_FIRSTS,
                                                           {**key, "p": person}).all():
            if n == done and first is not None and last is not None:
                new_signals.add((person, first, branch, commit, repo, last - first))
    _write_runs(conn, old_runs, new_runs)
    _write_signals(conn, {row for row in old_signals if row[0] in people}, new_signals)
    return True


def _write_runs(conn: Connection, old: set, new: set) -> None:
    _replace(conn, "people_runs", person_runs, _RUN_DELETE, ("person", "createtime", "run"), old - new, new - old,
             RUN_COLUMNS)


def _write_signals(conn: Connection, old: set, new: set) -> None:
    _replace(conn, "people_signals", person_signals, _SIGNAL_DELETE, ("person", "first", "branch", "commitid"),
             old - new, new - old, SIGNAL_COLUMNS)


def _replace(conn: Connection, name: str, table, deleting, key: tuple, gone: set, added: set,
             columns: tuple) -> None:
    if gone:
        index = [columns.index(k) for k in key]
        execute_prepared(conn, f"{name}_delete", deleting,
                         [{f"k_{k}": row[i] for k, i in zip(key, index)} for row in gone])
    if added:
        execute_prepared(conn, f"{name}_insert", _INSERTS[table.name], [dict(zip(columns, row)) for row in added])


_INSERTS = {"person_runs": insert(person_runs), "person_signals": insert(person_signals)}


def rebuild(conn: Connection) -> None:
    """Recompute every person row in one pass over the runs, ordered by branch and commit."""
    conn.execute(delete(person_runs))
    conn.execute(delete(person_signals))
    result = conn.execute(select(*_ROW).select_from(_SOURCE).order_by(w.branch, w.commitid))
    current, rows = None, []
    run_rows, signal_rows = [], []

    def flush_group():
        a, b = summarize(rows)
        run_rows.extend(a)
        signal_rows.extend(b)

    while True:
        batch = result.fetchmany(20000)
        for row in batch:
            key = (row[BRANCH], row[COMMIT])
            if key != current and rows:
                flush_group()
                rows = []
            current = key
            rows.append(tuple(row))
        if len(run_rows) >= 20000 or not batch:
            if run_rows:
                conn.execute(insert(person_runs), [dict(zip(RUN_COLUMNS, r)) for r in run_rows])
            if signal_rows:
                conn.execute(insert(person_signals), [dict(zip(SIGNAL_COLUMNS, r)) for r in signal_rows])
            run_rows, signal_rows = [], []
        if not batch:
            break
    if rows:
        flush_group()
        if run_rows:
            conn.execute(insert(person_runs), [dict(zip(RUN_COLUMNS, r)) for r in run_rows])
        if signal_rows:
            conn.execute(insert(person_signals), [dict(zip(SIGNAL_COLUMNS, r)) for r in signal_rows])


PART = Part(name="people", tables=(person_runs, person_signals), columns=(), kinds=("commit", "commit_run"),
            refresh=refresh, rebuild=rebuild)
