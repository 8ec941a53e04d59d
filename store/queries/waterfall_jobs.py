"""The jobs of the Waterfall grid's expanded workflow columns.

A workflow column expanded into its jobs shows, per commit, one cell per *job group*: the jobs of
the workflow cell's run (its latest attempt) that share a base name (`failures.extract.base_name`:
the legs of a matrix, "test (3.11, ubuntu)" and "test (3.12, ubuntu)", are the group "test").  A
job's glyph follows the workflow cells' rules (`waterfall.cell_state`), F when the same job failed
in an earlier attempt of the run; a group shows its worst member's glyph (`WORST_FIRST`).

One query for the page: the jobs of every attempt of the expanded cells' runs (`idx_jobs_run`).
"""
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from domain.state import FAILED
from failures.extract import base_name
from store.queries.waterfall import cell_state
from store.schema import jobs

# Glyphs from worst to best, as a commit's row is ranked (red, flaky, pending, then the rest).
WORST_FIRST = ("X", "T", "F", "?", "Q", "C", "N", "O", "S", "")
_RANK = {glyph: rank for rank, glyph in enumerate(WORST_FIRST)}
j = jobs.c
_JOBS = (select(j.run_gitid, j.run_attempt, j.gitid, j.name, j.status, j.conclusion, j.url, j.starttime, j.endtime,
                j.createtime)
         .where(j.run_gitid.in_(bindparam("runs", expanding=True))))
JOB_KEYS = ("job", "name", "status", "conclusion", "url", "duration", "glyph", "earlier_failed")


def worst(glyphs) -> str:
    """The worst of `glyphs` (`WORST_FIRST`); "" for none."""
    return min(glyphs, key=lambda g: _RANK.get(g, len(WORST_FIRST)), default="")


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def job_groups(conn: Connection, cells, workflows) -> dict:
    """The job groups of `cells` (the grid's `CELL_COLUMNS` dicts) of the `workflows` expanded: the jobs of
    each cell's attempt (none yet when it was just re-run: the cell has no groups then).

    Returns {workflow: {"groups": [base names, sorted], "cells": {(commitid, base name): group}}}, a
    group being {"glyph": the worst member's, "members": [`JOB_KEYS` dicts of the latest attempt, worst
    first, then by name]}.
    """
    wanted = set(workflows or ())
    runs = {}  # run gitid -> (commitid, workflow, the cell's attempt)
    for cell in cells:
        if cell.get("workflow") in wanted and cell.get("gitid") is not None:
            runs[int(cell["gitid"])] = (cell["commitid"], cell["workflow"], cell.get("attempt"))
    out = {name: {"groups": [], "cells": {}} for name in wanted}
    if not runs:
        return out
    rows = []
    for chunk in _chunks(sorted(runs)):
        rows += conn.execute(_JOBS, {"runs": chunk}).all()
    latest: dict = {}  # the cell's attempt; else (a cell read without one) the newest attempt with jobs
    for row in rows:
        latest[row.run_gitid] = runs[row.run_gitid][2] or max(latest.get(row.run_gitid, 0), row.run_attempt)
    failed_before = {(row.run_gitid, row.name) for row in rows
                     if row.run_attempt < latest[row.run_gitid] and row.conclusion in FAILED}
    members: dict = {}
    for row in rows:
        if row.run_attempt != latest[row.run_gitid]:
            continue
        earlier = (row.run_gitid, row.name) in failed_before
        duration = row.endtime - row.starttime if row.endtime is not None and row.starttime is not None else None
        job = dict(zip(JOB_KEYS, (row.gitid, row.name, row.status, row.conclusion, row.url, duration,
                                  cell_state(row.status, row.conclusion, earlier), earlier)))
        commitid, workflow, _attempt = runs[row.run_gitid]
        members.setdefault((workflow, commitid, base_name(row.name)), []).append(job)
    for (workflow, commitid, base), found in members.items():
        found.sort(key=lambda job: (_RANK.get(job["glyph"], len(WORST_FIRST)), job["name"]))
        out[workflow]["cells"][(commitid, base)] = {"glyph": found[0]["glyph"], "members": found}
    for workflow, entry in out.items():
        entry["groups"] = sorted({base for (_c, base) in entry["cells"]}, key=lambda b: (b.casefold(), b))
    return out


__all__ = ["job_groups", "worst", "WORST_FIRST", "JOB_KEYS"]
