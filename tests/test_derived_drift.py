"""Derived state follows a run, an attempt, a job or a commit wherever a later delivery moves it.

A redelivered run can name another branch, commit, workflow, repository or creation day than the
stored row; a job can name another run or attempt; a commit can gain its author or an earlier
time.  Every derived key the row contributed to before the write must be refreshed as well as
the keys it contributes to after it, or the old keys keep counting it.  The check: whatever
sequence of deliveries is applied through the real writer (in processor batches or one `apply`
at a time) into a real SQLite file, every derived table the registry lists (and every derived
column) equals what `derived.rebuild` computes from the base tables.
"""
import json
import os
import shutil
import tempfile
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from domain import records as r
from ingest.processor import Processor
from store import derived
from store.engine import make_engine, writer_options
from store.inbox import Accepted, Inbox
from store.migrate import upgrade
from store.schema import person_runs, rollup_days, rollup_pairs, rollup_signals, rollup_streaks, workflowruns
from store.writer import apply
from tests.builders import T0, commit, run
from tests.helpers import fixture_json

DAY = 86400
REPOS = ("o/app", "o/lib")
WORKFLOWS = ("CI", "Lint", "Docs")
BRANCHES = ("main", "feature", "dev")
SHAS = ("c1", "c2", "c3", "c4")
PEOPLE = ("alice", "bob", "carol")
# Creation times: the same day, another day, either side of midnight.
CREATED = (0, 120, DAY - 30, DAY + 10, 2 * DAY + 5)


# --- the comparison ---------------------------------------------------------------------------------

def _rounded(row) -> tuple:
    return tuple(round(v, 6) if isinstance(v, float) else v for v in row)


def derived_rows(conn) -> dict:
    """Every row of every table the registry lists, and every registered column of the runs."""
    out = {}
    for part in derived.REGISTRY:
        for table in part.tables:
            out[table.name] = sorted((_rounded(row) for row in conn.execute(select(table)).all()), key=repr)
        if part.columns:
            out[f"{part.name} columns"] = sorted(
                tuple(row) for row in conn.execute(select(workflowruns.c.gitid, *part.columns)).all())
    return out


def assert_kept_equals_rebuild(engine) -> dict:
    """The derived rows as kept, checked against a rebuild (rolled back: the store is left as it was)."""
    with engine.connect().execution_options(**writer_options()) as conn:
        transaction = conn.begin()
        try:
            kept = derived_rows(conn)
            derived.rebuild(conn)
            rebuilt = derived_rows(conn)
        finally:
            transaction.rollback()
    for name in rebuilt:
        assert kept[name] == rebuilt[name], f"{name} drifted from a rebuild"
    return kept


# --- stores ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A migrated empty store, copied for each example (migrating each time would dominate)."""
    path = tmp_path_factory.mktemp("drift") / "template.db"
    engine = make_engine(str(path))
    upgrade(engine)
    engine.dispose()
    return path


def write(engine, batches) -> None:
    """Apply `batches` of (mode, items): "batch" as the processor does (each item its own `apply`
    in a `derived.batch`, one flush before the commit), "apply" one `apply` of all, flushed at its end."""
    for mode, items in batches:
        with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            if mode == "batch":
                with derived.batch(conn):
                    for item in items:
                        apply(conn, item if isinstance(item, list) else [item])
                    derived.flush(conn)
            else:
                apply(conn, [x for item in items for x in (item if isinstance(item, list) else [item])])


def check(template, batches) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "s.db")
        shutil.copy(template, path)
        engine = make_engine(path, synchronous="OFF")  # a scratch copy: no fsync per commit
        try:
            write(engine, batches)
            return assert_kept_equals_rebuild(engine)
        finally:
            engine.dispose()


# --- random deliveries --------------------------------------------------------------------------------

CONCLUSIONS = ("success", "success", "failure", "failure", "timed_out", "cancelled", "skipped")
STATUSES = ("queued", "in_progress", "completed", "completed", "completed")
UPDATED = (None, T0 - 10, T0 + 3 * DAY, T0 + 4 * DAY)  # out of order: older or newer than the run's times
# What a redelivery of a run can change (run's keyword arguments, `tests.builders.run`).
RUN_CHANGES = {"branch": BRANCHES, "sha": SHAS, "workflow": WORKFLOWS, "repo": REPOS,
               "created": tuple(T0 + c for c in CREATED), "conclusion": CONCLUSIONS, "status": STATUSES,
               "attempt": (1, 2, 3), "author": PEOPLE + (None,), "duration": (10.0, 100.0, 250.0)}
FAILING_STEPS = ((), ((1, "checkout", "success"), (2, "pytest", "failure")), ((1, "ruff", "failure"),))
JOB_CHANGES = {"run_gitid": (1, 2, 3), "run_attempt": (1, 2, 3), "name": ("build", "test", "lint"),
               "conclusion": ("success", "failure", "timed_out", "cancelled"), "status": STATUSES,
               "ended": (40.0, 80.0, 120.0), "steps": FAILING_STEPS}


def _draw_changes(draw, args: dict, changes: dict, always=("conclusion",)) -> dict:
    """`args` with each field of `changes` changed one time in four (to a value maybe the same), and
    those of `always` drawn again each time."""
    return {**args, **{f: draw(st.sampled_from(values)) for f, values in changes.items()
                       if f in always or draw(st.sampled_from((False, False, False, True)))}}


@st.composite
def run_deliveries(draw) -> list:
    """A run (some deliveries with its head commit), then redeliveries of it changing a few things
    each, which replace the stored report or not by their update time.  By default the runs share
    their branch, workflow and commits: runs move into and out of each other's keys."""
    gitid = draw(st.integers(1, 3))
    args = {"gitid": gitid, "repo": "o/app", "workflow": "CI", "branch": "main", "sha": SHAS[gitid % 2],
            "author": PEOPLE[gitid % 3], "attempt": 1,
            "created": T0 + CREATED[gitid % 3], "queue": draw(st.sampled_from((0.0, 5.0, 30.0))),
            "duration": 100.0, "status": "completed", "conclusion": draw(st.sampled_from(CONCLUSIONS))}
    args = _draw_changes(draw, args, RUN_CHANGES)
    out = []
    for i in range(draw(st.integers(1, 4))):
        if i:
            args = _draw_changes(draw, args, RUN_CHANGES)
        item = run(**{**args, "updated": draw(st.sampled_from(UPDATED))})
        if draw(st.booleans()):  # a workflow_run delivery carries its head commit
            item = [commit(args["sha"], repo=args["repo"], author=draw(st.sampled_from(PEOPLE + (None,))),
                           time=draw(st.sampled_from((T0 - 60, args["created"])))), item]
        out.append(item)
        if draw(st.booleans()):  # a job of this attempt (the job groups redeliver jobs of these ids)
            out.append(_job(**{**_draw_changes(draw, _job_args(draw(st.integers(1, 4))), JOB_CHANGES),
                               "run_gitid": gitid, "run_attempt": args["attempt"]}))
    return out


def _job(gitid, run_gitid, run_attempt, name, conclusion, status, ended, steps) -> r.Job:
    return r.Job(repo="o/app", gitid=gitid, run_gitid=run_gitid, run_attempt=run_attempt, name=name,
                 workflow_name=None, head_branch=None, head_sha=None, status=status,
                 conclusion=conclusion if status == "completed" else None, createtime=T0,
                 starttime=T0 + 1 if status != "queued" else None,
                 endtime=T0 + ended if status == "completed" else None, runner_name="r1", runner_id=1,
                 steps=tuple(r.Step(n, s, "completed", c, T0 + 1, T0 + 2) for n, s, c in steps))


def _job_args(gitid: int) -> dict:
    return {"gitid": gitid, "run_gitid": gitid % 2 + 1, "run_attempt": 1, "name": ("build", "test", "lint")[gitid % 3],
            "conclusion": "failure", "status": "completed", "ended": 80.0, "steps": FAILING_STEPS[gitid % 3]}


@st.composite
def job_deliveries(draw) -> list:
    """A job, then redeliveries of it: passing, failing, moving to another run or attempt."""
    args = _draw_changes(draw, _job_args(draw(st.integers(1, 4))), JOB_CHANGES)
    out = [_job(**args)]
    for _ in range(draw(st.integers(1, 2))):
        args = _draw_changes(draw, args, JOB_CHANGES)
        out.append(_job(**args))
    return out


@st.composite
def commit_deliveries(draw) -> list:
    """A commit as a push tells it: its author (the first one told is kept) and time (the earliest)."""
    sha, repo = draw(st.sampled_from(SHAS)), draw(st.sampled_from(REPOS))
    return [commit(sha, repo=repo, author=draw(st.sampled_from(PEOPLE + (None, "dave"))),
                   time=T0 + draw(st.sampled_from((-3600, -60, 500, DAY))))
            for _ in range(draw(st.integers(1, 2)))]


@st.composite
def histories(draw) -> list:
    """Deliveries (each a record or a list of records: one `apply`), in (mode, deliveries) batches."""
    groups = st.one_of(run_deliveries(), run_deliveries(), job_deliveries(), job_deliveries(), commit_deliveries())
    deliveries = [d for group in draw(st.lists(groups, min_size=1, max_size=6)) for d in group]
    if draw(st.booleans()):  # the redeliveries of several runs interleaved
        deliveries = draw(st.permutations(deliveries))
    batches = []
    while deliveries:
        n = draw(st.integers(1, 4))
        batches.append((draw(st.sampled_from(("batch", "apply"))), deliveries[:n]))
        deliveries = deliveries[n:]
    return batches


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(histories())
def test_random_deliveries_keep_derived_state_equal_to_a_rebuild(template, batches):
    check(template, batches)


# --- regressions: a run redelivered elsewhere ----------------------------------------------------------

def _both_ways(template, first, second) -> dict:
    """`first` then `second` in two batches, and in one processor batch: both equal a rebuild."""
    check(template, [("batch", first), ("batch", second)])
    check(template, [("apply", first + second)])
    return check(template, [("batch", first), ("apply", second)])


def test_a_run_redelivered_on_another_branch_leaves_the_old_branch(template):
    first = [commit("c1"), run(1, branch="main", conclusion="failure")]
    later = [run(1, branch="feature", conclusion="failure", updated=T0 + 500)]
    kept = _both_ways(template, first, later)
    assert len(kept["rollup_days"]) == len(kept["rollup_pairs"]) == 1
    assert len(kept["rollup_streaks"]) == 1 and len(kept["rollup_signals"]) == 2  # CI and all workflows


def test_a_run_redelivered_on_another_commit_leaves_the_old_commit(template):
    first = [commit("c1", author="alice"), commit("c2", author="bob"), run(1, sha="c1", author="erin")]
    later = [run(1, sha="c2", author="erin", updated=T0 + 500)]
    kept = _both_ways(template, first, later)
    assert {row[0] for row in kept["person_runs"]} == {"bob", "erin"}, "alice wrote the commit it left"
    assert {row[0] for row in kept["person_signals"]} == {"bob", "erin"}


def test_a_run_redelivered_under_another_workflow_leaves_the_old_workflow(template):
    first = [commit("c1"), run(1, workflow="CI"), run(2, workflow="Lint", created=T0 + 5)]
    later = [run(1, workflow="Docs", updated=T0 + 500)]
    kept = _both_ways(template, first, later)
    assert len(kept["rollup_pairs"]) == 2
    assert len({row[2] for row in kept["rollup_signals"]}) == 3  # Lint, Docs and all workflows


def test_a_run_redelivered_in_another_repository_or_on_another_day(template):
    first = [commit("c1"), run(1, conclusion="failure")]
    kept = _both_ways(template, first, [run(1, repo="o/lib", conclusion="failure", updated=T0 + 500)])
    # The run is o/lib's now, its row's repository too: every rollup row says so.
    assert {row[2] for row in kept["rollup_pairs"]} == {row[3] for row in kept["rollup_days"]} == {"o/lib"}
    assert {row[2] for row in kept["rollup_streaks"]} == {"o/lib"}
    # An earlier attempt arriving late moves the run's creation to the day before.
    kept = _both_ways(template, [commit("c1"), run(1, attempt=2, created=T0 + DAY)], [run(1, created=T0)])
    assert [row[2] - int(T0 // DAY) for row in kept["rollup_days"]] == [0]
    # The same attempt redelivered with an earlier creation but an older state: only the day moves.
    kept = _both_ways(template, [commit("c1"), run(1, created=T0 + DAY, updated=T0 + 2 * DAY)],
                      [run(1, created=T0, updated=T0 + DAY)])
    assert [row[2] - int(T0 // DAY) for row in kept["rollup_days"]] == [0]


def test_a_stale_attempt_on_another_branch_counts_where_the_run_is(template):
    """Attempt 2 holds the run; attempt 1, arriving late with another branch, is kept as an attempt
    of the run where the run is, not on its own branch."""
    first = [commit("c1"), run(1, branch="main", attempt=2, created=T0 + 900)]
    kept = _both_ways(template, first, [run(1, branch="feature", attempt=1, conclusion="failure")])
    assert len(kept["rollup_pairs"]) == 1 and kept["rollup_days"][0][9] == 1  # flaky: failed, then passed


def test_a_failure_replaced_by_a_success_of_the_same_attempt_clears_its_cause(template):
    from tests.test_queries_triage import job

    first = [commit("c1"), run(1, conclusion="failure"),
             job(11, 1, "test", "failure", steps=((1, "pytest", "failure"),))]
    kept = _both_ways(template, first, [run(1, conclusion="success", updated=T0 + 900)])
    assert kept["failure_causes columns"] == [(1, None, None, None, None)]


def test_a_job_that_passes_or_moves_to_another_run_leaves_its_failing_job(template):
    from tests.test_queries_triage import job

    first = [commit("c1"), run(1, conclusion="failure"), run(2, conclusion="failure", created=T0 + 5),
             job(11, 1, "test", "failure", ended=40), job(12, 1, "lint", "failure", ended=80)]
    kept = _both_ways(template, first, [job(11, 1, "test", "success", ended=90)])
    assert ("lint" in kept["failure_causes columns"][0]) and kept["failure_causes columns"][1][1] is None
    kept = _both_ways(template, first, [job(11, 2, "test", "failure", ended=95)])
    assert [row[1] for row in kept["failure_causes columns"]] == ["lint", "test"]


def test_a_commit_gaining_its_author_moves_its_runs_people(template):
    first = [r.Commit("o/app", "c1", None, None, T0), run(1, sha="c1", author="erin", conclusion="failure")]
    kept = _both_ways(template, first, [commit("c1", author="dave", time=T0 - 600)])
    assert {row[0] for row in kept["person_runs"]} == {"dave", "erin"}
    assert kept["failure_causes columns"][0][-1] == "dave"


# --- the same through the processor, from GitHub's payloads -----------------------------------------------

SHA2 = "f" * 40


def _run_delivery(run_changes: dict, workflow_changes: dict | None = None) -> bytes:
    payload = fixture_json("workflow_run/completed.payload.json")
    payload["workflow_run"].update(run_changes)
    if run_changes.get("head_sha"):
        payload["workflow_run"]["head_commit"].update(id=run_changes["head_sha"], timestamp="2020-10-05T16:30:00Z")
    payload["workflow"].update(workflow_changes or {})
    return json.dumps(payload).encode()


def test_processor_redeliveries_of_a_run_with_another_branch_commit_workflow_and_day(template, tmp_path):
    """GitHub's run, redelivered (new delivery ids) on another branch, then commit, then workflow
    (id, name and path), then created the day before and passed: one run, counted where it is now."""
    path = tmp_path / "p.db"
    shutil.copy(template, path)
    engine = make_engine(str(path))
    box = Inbox(str(tmp_path / "p.inbox.db"), engine)
    processor = Processor(engine, box, publish=lambda messages: None)
    other = {"id": 999, "name": "other", "path": ".github/workflows/other.yml"}
    deliveries = [
        _run_delivery({"conclusion": "failure"}),
        _run_delivery({"conclusion": "failure", "head_branch": "moved", "updated_at": "2020-10-05T16:34:00Z"}),
        _run_delivery({"conclusion": "failure", "head_branch": "moved", "head_sha": SHA2,
                       "updated_at": "2020-10-05T16:35:00Z"}),
        _run_delivery({"conclusion": "failure", "head_branch": "moved", "head_sha": SHA2, "workflow_id": 999,
                       "path": other["path"], "updated_at": "2020-10-05T16:36:00Z"}, other),
        _run_delivery({"conclusion": "success", "head_branch": "moved", "head_sha": SHA2, "workflow_id": 999,
                       "path": other["path"], "created_at": "2020-10-04T23:59:00Z",
                       "updated_at": "2020-10-05T16:40:00Z"}, other),
    ]
    try:
        for i, body in enumerate(deliveries):
            assert box.append(Accepted(str(uuid.UUID(int=i + 1)), "workflow_run", "application/json", 1.0 + i, body))
            assert processor.process_batch() == 1
            kept = assert_kept_equals_rebuild(engine)
            assert len(kept["rollup_pairs"]) == len(kept["rollup_days"]) == 1, i
            assert len(kept["rollup_streaks"]) == (i < 4), i
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(workflowruns)).scalar() == 1
            assert tuple(conn.execute(select(workflowruns.c.archivedbranchname, workflowruns.c.archivedcommithash,
                                             workflowruns.c.archivedworkflowname, workflowruns.c.conclusion)).one()) \
                == ("moved", SHA2, "other", "success")
            assert tuple(conn.execute(select(rollup_days.c.runs, rollup_days.c.success)).one()) == (1, 1)
            assert conn.execute(select(rollup_pairs.c.runs)).scalar() == 1
            # Created on 2020-10-04 now (a run keeps the earliest creation it was told), not on the 5th.
            assert conn.execute(select(rollup_days.c.day)).scalar() == 18539
            assert conn.execute(select(func.count()).select_from(rollup_signals)).scalar() == 2
            assert conn.execute(select(func.count()).select_from(person_runs)).scalar() == 2  # actor, commit author
    finally:
        box.close()
        engine.dispose()
