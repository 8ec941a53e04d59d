"""`store.queries.triage` on a small fixed history, against hand-computed values.

main (default branch), commits m1..m5 (m3 written by dave), one cell per workflow:

    commit  CI                 Lint        E2E                  Docs
    m5      X run 5 (build)    .           O 22                 O 42, then X 43 (newest)
    m4      ? run 4 running    X 13        F 21 (X, X, O)       X 40, then O 41 (newest)
    m3      T run 3 (test)     C 12        F 20 (X, O)
    m2      X run 2 (test)     X 11        X 23 (O, then X)
    m1      O run 1            X 10

feat (bob), commits f1, f2: CI X 30, X 31 (test/pytest); Lint X 32 on f1, O 33 on f2.
Runs are created 10 s after their commit (Docs 41 at +50, 43 at +60).
"""
import pytest
from sqlalchemy import select

from domain import records as r
from store.queries.filters import Filters
from store.queries.streaks import broken_main, streaks
from store.queries.triage import build_analysis, failure_groups, flaky_counts, flaky_runs
from store.schema import workflowruns
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores

NOW = T0 + 10_000
TIMES = {"m1": 100, "m2": 200, "m3": 300, "m4": 400, "m5": 500, "f1": 250, "f2": 350}


def job(gitid, run_gitid, name, conclusion, *, attempt=1, ended=50.0, steps=()):
    """A completed job whose `steps` are (number, name, conclusion)."""
    return r.Job(repo="o/app", gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name=None,
                 head_branch=None, head_sha=None, status="completed", conclusion=conclusion, createtime=T0,
                 starttime=T0 + 1, endtime=T0 + ended, runner_name="r1", runner_id=1,
                 steps=tuple(r.Step(n, s, "completed", c, T0 + 1, T0 + 2) for n, s, c in steps))


def _run(gitid, sha, workflow, conclusion="success", *, offset=10, **kw):
    branch = "feat" if sha.startswith("f") else "main"
    author = "bob" if branch == "feat" else "alice"
    return run(gitid, sha=sha, workflow=workflow, branch=branch, author=author, conclusion=conclusion,
               created=T0 + TIMES[sha] + offset, **kw)


def triage_records():
    test_fail = ((1, "checkout", "success"), (2, "install", "success"), (3, "pytest", "failure"),
                 (4, "upload", "failure"))
    return [
        r.Repo("o/app", default_branch="main", url="https://github.com/o/app"),
        *[commit(sha, time=T0 + t, author="dave" if sha == "m3" else "bob" if sha[0] == "f" else "alice")
          for sha, t in TIMES.items()],
        _run(1, "m1", "CI"), _run(2, "m2", "CI", "failure"), _run(3, "m3", "CI", "timed_out"),
        _run(4, "m4", "CI", status="in_progress"), _run(5, "m5", "CI", "failure"),
        job(201, 2, "test", "failure", steps=test_fail), job(202, 2, "lint", "success"),
        # Run 3 has two failed jobs: the one that ended first is its failing job.
        job(301, 3, "lint", "failure", ended=80, steps=((1, "ruff", "failure"),)),
        job(302, 3, "test", "timed_out", ended=40, steps=test_fail),
        job(501, 5, "build", "failure", steps=((1, "checkout", "success"), (2, "compile", "failure"))),
        _run(10, "m1", "Lint", "failure"), _run(11, "m2", "Lint", "failure"),
        _run(12, "m3", "Lint", "cancelled"), _run(13, "m4", "Lint", "failure"),
        _run(20, "m3", "E2E", "failure"), _run(20, "m3", "E2E", attempt=2, offset=30),
        _run(21, "m4", "E2E", "failure"), _run(21, "m4", "E2E", "failure", attempt=2, offset=20),
        _run(21, "m4", "E2E", attempt=3, offset=30),
        _run(22, "m5", "E2E"),
        _run(23, "m2", "E2E"), _run(23, "m2", "E2E", "failure", attempt=2, offset=30),
        job(2301, 23, "e2e", "success", steps=((1, "browser", "success"),)),
        job(2302, 23, "e2e", "failure", attempt=2, steps=((1, "setup", "success"), (2, "browser", "failure"))),
        _run(40, "m4", "Docs", "failure"), _run(41, "m4", "Docs", offset=50),
        _run(42, "m5", "Docs"), _run(43, "m5", "Docs", "failure", offset=60),
        _run(30, "f1", "CI", "failure"), _run(31, "f2", "CI", "failure"),
        job(3001, 30, "test", "failure", steps=test_fail), job(3101, 31, "test", "failure", steps=test_fail),
        _run(32, "f1", "Lint", "failure"), _run(33, "f2", "Lint"),
    ]


@pytest.fixture(scope="module")
def engine(module_stores):
    return store_with(module_stores.new("triage"), triage_records())


@pytest.fixture
def empty(new_store):
    return store_with(new_store("empty"), [])


def _q(engine, fn, **filters):
    with engine.connect() as conn:
        return fn(conn, Filters(**filters))


def test_failures_grouped_by_same_failure(engine):
    g = _q(engine, failure_groups)
    keys = [(row.workflow, row.job, row.step) for row in g.itertuples()]
    # Newest last_seen first: Docs 43 (560), CI/build 5 (510), Lint 13 (410), CI/test 31 (360), E2E 23 (210).
    assert keys == [("Docs", None, None), ("CI", "build", "compile"), ("Lint", None, None),
                    ("CI", "test", "pytest"), ("E2E", "e2e", "browser")]
    ci = g.iloc[3]
    assert (ci["count"], ci["commits"], ci["step_number"]) == (4, 4, 3)
    assert ci["authors"] == ["alice", "bob", "dave"]
    assert (ci["first_seen"], ci["last_seen"]) == (T0 + 210, T0 + 360)
    assert [x["gitid"] for x in ci["runs"]] == [31, 3, 30, 2]
    lint = g.iloc[2]
    assert (lint["count"], lint["commits"], [x["gitid"] for x in lint["runs"]]) == (4, 4, [13, 32, 11, 10])
    # E2E run 23: the failing job is its latest attempt's, not attempt 1's.
    assert g.iloc[4]["runs"][0]["url"] == "https://github.com/o/app/actions/runs/23"


def test_failure_groups_window_and_limit(engine):
    with engine.connect() as conn:
        g = failure_groups(conn, Filters(since=T0 + 300), runs_per_group=1)
    assert [(row.workflow, row.job, row.count) for row in g.itertuples()] == [
        ("Docs", None, 2), ("CI", "build", 1), ("Lint", None, 1), ("CI", "test", 2)]
    assert [len(x) for x in g["runs"]] == [1, 1, 1, 1]


def test_broken_main_streaks_and_first_bad_commit(engine):
    with engine.connect() as conn:
        b = broken_main(conn, Filters(branch="feat"), now=NOW)  # the branch filter does not apply here
    rows = {row.workflow: row for row in b.itertuples()}
    assert list(b["workflow"]) == ["CI", "Lint", "Docs"]  # red longest first
    ci = rows["CI"]  # m5 X, m4 running (skipped), m3 T, m2 X, then m1 green
    assert (ci.streak, ci.sha, ci.message, ci.commit_author, ci.after) == (3, "m2", "commit m2", "alice", "success")
    assert (ci.red_since, ci.red_for) == (T0 + 210, NOW - T0 - 210)
    assert ci.run_url.endswith("/runs/5")
    lint = rows["Lint"]  # m5 has no Lint run; m4 X; m3 cancelled stops the streak
    assert (lint.streak, lint.sha, lint.after) == (1, "m4", "cancelled")
    docs = rows["Docs"]  # the newest run of a commit decides its cell
    assert (docs.streak, docs.sha, docs.after, docs.red_since) == (1, "m5", "success", T0 + 560)


def test_streak_on_feature_branch_without_green_history(engine):
    s = _q(engine, streaks, branch="feat")
    assert [(row.workflow, row.streak, row.sha, row.after) for row in s.itertuples()] == [("CI", 2, "f1", None)]


def test_build_analysis(engine):
    a = _q(engine, build_analysis)
    got = {(row.workflow, row.branch): (row.runs, row.decisive, row.failed, row.failure_rate, row.flaky,
                                         row.successful, row.flake_rate, row.streak) for row in a.itertuples()}
    assert got == {
        ("CI", "main"): (5, 4, 3, 0.75, 0, 1, 0.0, 3),
        ("Lint", "main"): (4, 4, 3, 0.75, 0, 0, None, 1),
        ("E2E", "main"): (4, 4, 1, 0.25, 2, 1, pytest.approx(2 / 3), 0),
        ("Docs", "main"): (4, 4, 2, 0.5, 0, 2, 0.0, 1),
        ("CI", "feat"): (2, 2, 2, 1.0, 0, 0, None, 2),
        ("Lint", "feat"): (2, 2, 1, 0.5, 0, 1, 0.0, 0),
    }


def test_build_analysis_window_keeps_whole_streak(engine):
    a = _q(engine, build_analysis, since=T0 + 300, workflow="CI")
    # In the window: CI runs 3, 4, 5 on main and 31 on feat; the streaks still count older commits.
    assert [(row.branch, row.runs, row.failed, row.streak) for row in a.itertuples()] == [
        ("feat", 1, 1, 2), ("main", 3, 2, 3)]


def test_flaky_runs(engine):
    f = _q(engine, flaky_runs)
    assert list(f["id"]) == [21, 20]
    assert list(f["history"]) == [["failure", "failure", "success"], ["failure", "success"]]
    assert list(f["attempts"]) == [3, 2]
    assert (f.iloc[1]["sha"], f.iloc[1]["author"], f.iloc[1]["workflow"]) == ("m3", "dave", "E2E")
    counts = _q(engine, flaky_counts)
    assert counts.to_dict("records") == [{"repo": "o/app", "workflow": "E2E", "flaky": 2}]
    assert _q(engine, flaky_runs, since=T0 + 400)["id"].tolist() == [21]


@pytest.mark.parametrize("fn", [failure_groups, build_analysis, flaky_runs, flaky_counts, streaks])
def test_empty_database(empty, fn):
    assert _q(empty, fn).empty


def test_empty_broken_main(empty, engine):
    with empty.connect() as conn:
        assert broken_main(conn, Filters(), now=NOW).empty
    with engine.connect() as conn:
        assert broken_main(conn, Filters(repo="nobody/none"), now=NOW).empty


def test_single_failed_run(new_store):
    engine = store_with(new_store("one"), [commit("c1"), run(1, sha="c1", conclusion="failure")])
    g = _q(engine, failure_groups)
    assert g[["workflow", "job", "step", "count", "commits"]].values.tolist() == [["CI", None, None, 1, 1]]
    with engine.connect() as conn:
        b = broken_main(conn, Filters(), now=NOW)  # no repos row: the default branch falls back to main
    assert (b.iloc[0]["streak"], b.iloc[0]["sha"], b.iloc[0]["after"]) == (1, "c1", None)
    a = _q(engine, build_analysis)
    assert a[["runs", "failure_rate", "flake_rate", "streak"]].values.tolist() == [[1, 1.0, None, 1]]
    assert _q(engine, flaky_runs).empty


def test_streaks_read_further_back_when_the_newest_runs_do_not_settle_them(engine):
    from store.derived import streaks as rollup_streaks

    with engine.connect() as conn:
        pairs = [tuple(p) for p in conn.execute(select(workflowruns.c.workflow, workflowruns.c.branch).distinct())]
        whole = [rollup_streaks.walk(conn, wf, br, limits=(None,)) for wf, br in pairs]
        # One run a pair at first: CI's stopper (m1) and Lint's (m3) lie further back.
        stepwise = [rollup_streaks.walk(conn, wf, br, limits=(1, 2, None)) for wf, br in pairs]
        kept = {(row.workflow, row.branch): {c: getattr(row, c) for c in rollup_streaks.COLUMNS}
                for row in conn.execute(select(rollup_streaks.rollup_streaks)).all()}
        b = broken_main(conn, Filters(), now=T0 + 600)
    assert stepwise == whole
    assert kept == {pair: walked for pair, walked in zip(pairs, whole) if walked}, "the writer kept what a walk finds"
    assert [(row.workflow, row.streak, row.sha, row.after) for row in b.itertuples()] == [
        ("CI", 3, "m2", "success"), ("Lint", 1, "m4", "cancelled"), ("Docs", 1, "m5", "success")]


def test_broken_main_when_nothing_ran_recently(engine):
    # Nothing in the last week nor the 30 days before it: the streaks come from older slices.
    with engine.connect() as conn:
        b = broken_main(conn, Filters(), now=T0 + 60 * 86400)
    assert [(row.workflow, row.streak, row.sha) for row in b.itertuples()] == [
        ("CI", 3, "m2"), ("Lint", 1, "m4"), ("Docs", 1, "m5")]


@pytest.mark.parametrize("days", [None, 1, 7, 30, 3650])
def test_failure_groups_equal_the_failed_runs_grouped_by_hand(demo_location, days):
    """Either index path (a window by time, all time by group) gives what the failed runs say."""
    from store.engine import make_engine
    from store.schema import commits

    w = workflowruns.c
    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(w.createtime).order_by(w.createtime.desc())).first()[0]
        since = None if days is None else newest - days * 86400
        query = (select(w.repo, w.archivedworkflowname, w.fail_job, w.fail_step, w.fail_step_number, w.createtime,
                        w.gitid, w.commitid, commits.c.author, w.author)
                 .join(commits, commits.c.id == w.commitid)
                 .where(w.status == "completed", w.conclusion.in_(("failure", "timed_out", "startup_failure"))))
        if since is not None:
            query = query.where(w.createtime >= since)
        runs = sorted(conn.execute(query).all(), key=lambda r: (r.createtime, r.gitid), reverse=True)
        groups = failure_groups(conn, Filters(since=since), runs_per_group=5)
    expected = {}
    for r in runs:
        g = expected.setdefault((r.repo, r.archivedworkflowname, r.fail_job, r.fail_step), {
            "count": 0, "first_seen": r.createtime, "last_seen": r.createtime, "commits": set(), "authors": set(),
            "runs": [], "step_number": None})
        g["count"] += 1
        g["first_seen"] = r.createtime
        g["commits"].add(r.commitid)
        g["authors"].add(r[8] or r[9])
        if r.fail_step_number is not None:
            g["step_number"] = max(g["step_number"] or 0, r.fail_step_number)
        if len(g["runs"]) < 5:
            g["runs"].append(r.gitid)
    assert len(groups) == len(expected) and (days == 1 or len(groups) > 1)
    for row in groups.itertuples():
        g = expected[(row.repo, row.workflow, row.job, row.step)]
        assert (row.count, row.first_seen, row.last_seen, row.commits, row.step_number) == (
            g["count"], g["first_seen"], g["last_seen"], len(g["commits"]), g["step_number"])
        assert row.authors == sorted(a for a in g["authors"] if a)
        assert [r["gitid"] for r in row.runs] == g["runs"]
    assert list(groups["last_seen"]) == sorted(groups["last_seen"], reverse=True)
