"""Each (workflow, branch) pair's current failure streak and unfixed failure, kept by every write.

A *cell* is one workflow on one commit of one branch: its newest run's latest
attempt.  A streak walks a branch's cells newest-first by commit time, skips
the cells without a decisive result (running, queued, skipped, neutral) and
stops at the first decisive cell that is not failed (the stopper).

A pair's *unfixed run* is its newest decisive run (by creation) when that run
failed: the Developer view's "unfixed failures" are these runs.

`walk` computes both from the runs; `refresh` re-walks the pairs a write
touched (its ("pair", workflow, branch) keys, before its transaction commits,
like the other derived state: `store.derived`) and keeps a
`rollup_streaks` row only for pairs that are red or have an unfixed run, so
readers look pairs up instead of walking them.  A commit's time orders the
cells, so a commit written with an earlier time re-walks its pairs too.
"""
from functools import lru_cache

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.engine import Connection

from domain.state import DECISIVE, FAILED
from store.derived.part import Part
from store.prepared import execute_prepared, literals
from store.schema import commits, rollup_streaks, workflowruns

w = workflowruns.c
s = rollup_streaks.c
COLUMNS = ("repo", "streak", "first_bad", "red_since", "newest_run", "after", "unfixed_run")

_CELL = (w.repo, w.commitid, w.gitid, w.createtime, w.status, w.conclusion, commits.c.time.label("ctime"), w.id,
         commits.c.hash)
REPO, COMMIT, GITID, CREATED, STATUS, CONCLUSION, CTIME, ID, SHA = range(len(_CELL))
_NEWEST = (select(*_CELL).join(commits, commits.c.id == w.commitid)
           .where(w.workflow == bindparam("wf"), w.branch == bindparam("br"))
           .order_by(w.createtime.desc(), w.gitid.desc()))
# The same, past the commits already read: their older runs are not cells (a cell is a commit's
# newest run), and a commit with thousands of runs (a load generator's) must not be read whole.
_NEWEST_DECISIVE = (select(*_CELL).join(commits, commits.c.id == w.commitid)
                    .where(w.workflow == bindparam("wf"), w.branch == bindparam("br"), w.status == "completed",
                           w.conclusion.in_(literals(DECISIVE)))
                    .order_by(w.createtime.desc(), w.gitid.desc()).limit(1))
LIMITS = (8, 200, None)


@lru_cache(maxsize=8)
def _newest_statement(limit: int | None):
    """One statement object per limit (`execute_prepared` compiles each once)."""
    return _NEWEST.limit(limit) if limit is not None else _NEWEST


def walk_rows(rows: list, complete: bool) -> dict | None | bool:
    """The streak of one pair from its newest runs (`_CELL` tuples, newest first): a dict of
    `COLUMNS` but the unfixed run, None when the pair is not red, False when `rows` cannot
    settle it (read further back)."""
    seen, cells = set(), []
    for row in rows:  # the newest run of each commit is its cell
        if row[COMMIT] not in seen:
            seen.add(row[COMMIT])
            cells.append(row)
    cells = [c for c in cells if c[STATUS] == "completed" and c[CONCLUSION] in DECISIVE]
    # Commits of the same time in sha order: not by surrogate id, which follows arrival order.
    cells.sort(key=lambda c: (c[CTIME], c[SHA]), reverse=True)
    bad = []
    for cell in cells:
        if cell[CONCLUSION] not in FAILED:
            # A stopper older than what was read: a newer commit's runs may lie further back.
            if not complete and rows and cell[CTIME] < min(r[CREATED] for r in rows):
                return False
            after = cell[CONCLUSION]
            break
        bad.append(cell)
    else:
        if not complete:
            return False
        after = None
    if not bad:
        return None
    first, newest = bad[-1], bad[0]
    return {"repo": first[REPO], "streak": len(bad), "first_bad": int(first[COMMIT]), "red_since": first[CREATED],
            "newest_run": int(newest[GITID]), "after": after}


def walk(conn: Connection, workflow: int, branch: int, limits=LIMITS) -> dict | None:
    """A pair's `rollup_streaks` row (without its key) from its runs; None when it needs none.

    The newest `limits[0]` runs settle almost every streak; a pair not settled reads on, past the
    commits already read, `limits[1]` runs, then all the rest (`limits[-1]` is None).
    """
    streak, rows, complete, seen = None, [], True, set()
    for limit in limits:
        params = {"wf": workflow, "br": branch}
        if seen:  # rare (a pair not settled by its newest runs): built per call
            past = _NEWEST.where(w.commitid.not_in(sorted(seen)))
            found = [tuple(r) for r in conn.execute(past.limit(limit) if limit else past, params).all()]
        else:
            found = [tuple(r) for r in execute_prepared(conn, f"streak_newest_{limit}", _newest_statement(limit),
                                                        params).all()]
        rows += found
        seen.update(r[COMMIT] for r in found)
        complete = limit is None or len(found) < limit
        streak = walk_rows(rows, complete)
        if streak is not False:
            break
    # The newest decisive run, whichever commit it belongs to (older runs of a commit were skipped).
    newest = execute_prepared(conn, "streak_newest_decisive", _NEWEST_DECISIVE, {"wf": workflow, "br": branch}).first()
    unfixed = _unfixed([tuple(newest)] if newest else [], True)
    if not streak and unfixed is None:
        return None
    out = streak or {"repo": rows[0][REPO], "streak": 0, "first_bad": None, "red_since": None, "newest_run": None,
                     "after": None}
    return {**out, "unfixed_run": unfixed}


def _unfixed(rows: list, complete: bool):
    """The newest decisive run's id when it failed; None when it did not or there is none;
    False when `rows` (the newest runs, all of them if `complete`) hold no decisive run."""
    for row in rows:
        if row[STATUS] == "completed" and row[CONCLUSION] in DECISIVE:
            return int(row[ID]) if row[CONCLUSION] in FAILED else None
    return None if complete else False


_STORED = select(*(s[c] for c in COLUMNS)).where(s.workflow == bindparam("wf"), s.branch == bindparam("br"))
_DELETE = delete(rollup_streaks).where(s.workflow == bindparam("wf"), s.branch == bindparam("br"))
_INSERT = insert(rollup_streaks)


def refresh(conn: Connection, keys) -> None:
    """Re-walk the pairs of ("pair", workflow, branch) `keys` and write what changed (statements
    compiled once: this runs before every write's commit)."""
    for wf, br in sorted({(int(wf), int(br)) for _kind, wf, br in keys}):
        old = execute_prepared(conn, "streak_stored", _STORED, {"wf": wf, "br": br}).first()
        new = walk(conn, wf, br)
        new_values = tuple(new[c] for c in COLUMNS) if new else None
        if (tuple(old) if old else None) == new_values:
            continue
        if old:
            execute_prepared(conn, "streak_delete", _DELETE, {"wf": wf, "br": br})
        if new:
            execute_prepared(conn, "streak_insert", _INSERT, {"workflow": wf, "branch": br, **new})


def rebuild(conn: Connection) -> None:
    """Walk every pair that has runs."""
    conn.execute(delete(rollup_streaks))
    pairs = conn.execute(select(w.workflow, w.branch).distinct()).all()
    rows = []
    for wf, br in pairs:
        new = walk(conn, wf, br)
        if new:
            rows.append({"workflow": wf, "branch": br, **new})
        if len(rows) >= 5000:
            conn.execute(insert(rollup_streaks), rows)
            rows = []
    if rows:
        conn.execute(insert(rollup_streaks), rows)


PART = Part(name="streaks", tables=(rollup_streaks,), columns=(), kinds=("pair",), refresh=refresh, rebuild=rebuild)
