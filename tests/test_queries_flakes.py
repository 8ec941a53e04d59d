"""`store.queries.flakes`: Wilson bounds, job outcomes, and flaky jobs on a small store written by the real writer.

o/app, workflow CI, branch main (runs created 100 s apart after T0; "a2" attempts follow):

    run  sha  attempt 1                                    attempt 2                  job outcomes
    1    a1   test F, lint S                               test S                     test flaky, lint ok
    2    a2   test (ubuntu, 3.11) S, test (windows, 3.12) S, lint S                   test ok
    3    a3   test (ubuntu, 3.11) S, test (windows, 3.12) F, lint S   test (windows, 3.12) S    test flaky
    4    a4   build F, lint S                              build F                    build failed
    5    a5   e2e F                                                                   e2e failed, passed by run 6
    6    a5   e2e S (another run of CI on the same commit)                            e2e ok
    7    a6   test F                                       test in progress           test pending
    11   a4   build S, in workflow Nightly (not CI: does not make run 4's build flaky)

Elsewhere: run 8 on branch feat (test F, then S), run 9 in repo o/lib (unit F, then S), run 10
twenty days before T0 (test F, then S).
"""
import pytest

from domain import records as r
from store.queries.filters import Filters
from store.queries.flakes import base_name, flaky_jobs, job_outcomes, wilson
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores

DAY = 86400.0
RECENT = Filters(since=T0 - DAY)  # leaves out run 10
MATRIX = ("test (ubuntu, 3.11)", "test (windows, 3.12)")


def job(gitid, run_gitid, name, conclusion, *, attempt=1, repo="o/app", status="completed"):
    done = status == "completed"
    return r.Job(repo=repo, gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name=None,
                 head_branch=None, head_sha=None, status=status, conclusion=conclusion if done else None,
                 createtime=T0, starttime=T0 + 1, endtime=T0 + 50 if done else None, runner_name="r1", runner_id=1)


def rerun(gitid, first, second, *, created, second_status="completed", **kw):
    """Both attempts of a run whose latest attempt is the second."""
    return [run(gitid, attempt=1, conclusion=first, created=created, **kw),
            run(gitid, attempt=2, conclusion=second, created=created + 30, status=second_status, **kw)]


def t(k):
    """Run k's creation time."""
    return T0 + 100 * k


def records():
    return [
        r.Repo("o/app", default_branch="main", url="https://github.com/o/app"),
        r.Repo("o/lib", default_branch="main", url="https://github.com/o/lib"),
        *[commit(sha, time=T0 - 60) for sha in ("a1", "a2", "a3", "a4", "a5", "a6", "f1", "old")],
        commit("l1", repo="o/lib", time=T0 - 60),
        *rerun(1, "failure", "success", sha="a1", created=t(1)),
        job(101, 1, "test", "failure"), job(102, 1, "lint", "success"), job(103, 1, "test", "success", attempt=2),
        run(2, sha="a2", created=t(2)),
        job(201, 2, MATRIX[0], "success"), job(202, 2, MATRIX[1], "success"), job(203, 2, "lint", "success"),
        *rerun(3, "failure", "success", sha="a3", created=t(3)),
        job(301, 3, MATRIX[0], "success"), job(302, 3, MATRIX[1], "failure"), job(304, 3, "lint", "success"),
        job(303, 3, MATRIX[1], "success", attempt=2),
        *rerun(4, "failure", "failure", sha="a4", created=t(4)),
        job(401, 4, "build", "failure"), job(403, 4, "lint", "success"), job(402, 4, "build", "failure", attempt=2),
        run(5, sha="a5", conclusion="failure", created=t(5)), job(501, 5, "e2e", "failure"),
        run(6, sha="a5", created=t(6)), job(601, 6, "e2e", "success"),
        *rerun(7, "failure", None, sha="a6", created=t(7), second_status="in_progress"),
        job(701, 7, "test", "failure"), job(702, 7, "test", None, attempt=2, status="in_progress"),
        run(11, sha="a4", workflow="Nightly", created=t(11)), job(1101, 11, "build", "success"),
        *rerun(8, "failure", "success", sha="f1", branch="feat", author="bob", created=t(8)),
        job(801, 8, "test", "failure"), job(802, 8, "test", "success", attempt=2),
        *rerun(9, "failure", "success", repo="o/lib", sha="l1", created=t(9)),
        job(901, 9, "unit", "failure", repo="o/lib"), job(902, 9, "unit", "success", attempt=2, repo="o/lib"),
        *rerun(10, "failure", "success", sha="old", created=T0 - 20 * DAY),
        job(1001, 10, "test", "failure"), job(1002, 10, "test", "success", attempt=2),
    ]


@pytest.fixture(scope="module")
def engine(module_stores):
    return store_with(module_stores.new("flakes"), records())


def _flaky(engine, filters=RECENT, **kw):
    with engine.connect() as conn:
        return flaky_jobs(conn, filters, **kw)


def _by_job(rows):
    return {(row["repo"], row["workflow"], row["job"]): row for row in rows}


# -- Wilson score interval ---------------------------------------------------------------

def test_wilson_known_values():
    low, high = wilson(5, 100)
    assert low == pytest.approx(0.02154, abs=5e-5) and high == pytest.approx(0.11175, abs=5e-5)
    low, high = wilson(2, 3)
    assert low == pytest.approx(0.2077, abs=5e-4) and high == pytest.approx(0.9385, abs=5e-4)
    low, high = wilson(5, 100, confidence=0.99)  # z = 2.5758: a wider interval
    assert low == pytest.approx(0.01685, abs=5e-5) and high == pytest.approx(0.13915, abs=5e-5)


def test_wilson_edges():
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=5e-4)
    low, high = wilson(20, 20)
    assert high == 1.0 and low == pytest.approx(0.8389, abs=5e-4)
    for k, n, confidence in ((3, 2, 0.95), (-1, 5, 0.95), (1, 5, 1.0), (1, 5, 0.0)):
        with pytest.raises(ValueError):
            wilson(k, n, confidence)


# -- Pure definitions --------------------------------------------------------------------

@pytest.mark.parametrize("name, base", [
    ("test (ubuntu-latest, 3.11)", "test"), ("test", "test"), ("Build (release) (ubuntu)", "Build (release)"),
    ("e2e (chrome)", "e2e"), ("call / build (x64)", "call / build"), ("test (a(b))", "test (a(b))"),
    ("test (x", "test (x"), ("test (x) y", "test (x) y"),
])
def test_base_name(name, base):
    assert base_name(name) == base


@pytest.mark.parametrize("rows, outcome", [
    ([("t", 1, "failure"), ("t", 2, "success")], "flaky"),
    ([("t", 1, "timed_out"), ("t", 3, "success")], "flaky"),
    ([("t", 1, "success")], "successful"),
    ([("t", 1, "failure")], "failed"),
    ([("t", 1, "failure"), ("t", 2, "failure")], "failed"),
    ([("t", 1, "success"), ("t", 2, "failure")], "failed"),  # passed, then failed: not a flake
    ([("t", 1, "failure"), ("t", 2, None)], "pending"),
    ([("t", 1, "cancelled")], "cancelled"),
    ([("t", 1, "skipped")], "skipped"),
    ([("t", 1, "failure"), ("t", 2, "skipped")], "undecided"),
    # Matrix legs: one outcome for the job; a failed leg wins over a flaky one, a flaky over a passing one.
    ([("t (a)", 1, "success"), ("t (b)", 1, "failure"), ("t (b)", 2, "success")], "flaky"),
    ([("t (a)", 1, "failure"), ("t (a)", 2, "success"), ("t (b)", 1, "failure")], "failed"),
    # fail-fast: one leg failed, the others were cancelled; a re-run of all of them passed.
    ([("t (a)", 1, "failure"), ("t (b)", 1, "cancelled"), ("t (a)", 2, "success"), ("t (b)", 2, "success")],
     "flaky"),
    ([("t (a)", 1, "success"), ("t (b)", 1, "skipped")], "successful"),
])
def test_job_outcomes(rows, outcome):
    assert job_outcomes(rows) == {"t": (outcome, tuple(sorted({n for n, _a, _c in rows})))}


def test_job_outcomes_keep_jobs_apart():
    assert job_outcomes([("a", 1, "failure"), ("b", 1, "success"), ("a", 2, "success")]) == {
        "a": ("flaky", ("a",)), "b": ("successful", ("b",))}


# -- flaky_jobs on the store ---------------------------------------------------------------

def test_rerun_that_passed_is_flaky_and_matrix_legs_group(engine):
    jobs = _by_job(_flaky(engine))
    test = jobs[("o/app", "CI", "test")]
    # Runs 1 and 3 flaky (3 through its windows leg), 2 successful (two legs, one run), 7 pending, 8 (feat)
    # flaky; run 10 is outside the window.
    assert (test["flaky"], test["successful"], test["runs"], test["failed"]) == (3, 1, 4, 0)
    assert test["names"] == ["test", *MATRIX]
    assert test["rate"] == 3 / 4
    assert (test["wilson_low"], test["wilson_high"]) == wilson(3, 4)
    assert test["last_flaky_url"] == "https://github.com/o/app/actions/runs/8"
    assert test["last_flaky_run"] is not None and test["last_flaky"] >= T0 + 800


def test_only_failing_and_only_passing_jobs_are_not_listed(engine):
    jobs = _by_job(_flaky(engine))
    # build failed twice in run 4 (and passed only in another workflow); lint always passed.
    assert ("o/app", "CI", "build") not in jobs and ("o/app", "CI", "lint") not in jobs
    assert ("o/app", "Nightly", "build") not in jobs


def test_failure_passed_by_another_run_on_the_same_commit_is_flaky(engine):
    e2e = _by_job(_flaky(engine))[("o/app", "CI", "e2e")]
    assert (e2e["flaky"], e2e["successful"], e2e["runs"], e2e["failed"]) == (1, 1, 2, 1)
    assert e2e["last_flaky_url"] == "https://github.com/o/app/actions/runs/5"


def test_min_runs_and_threshold_decide_quarantine(engine):
    def quarantined(**kw):
        return {row["job"] for row in _flaky(engine, **kw) if row["quarantine"]}

    # test: 3 flaky of 4 runs (Wilson low 0.30); e2e: 1 of 2 (low 0.09); unit (o/lib): 1 of 1 (low 0.21).
    assert quarantined() == set()  # fewer than 20 runs each
    assert quarantined(min_runs=4) == {"test"}
    assert quarantined(min_runs=2) == {"test", "e2e"}
    assert quarantined(min_runs=1) == {"test", "e2e", "unit"}
    assert quarantined(min_runs=1, threshold=0.25) == {"test"}
    assert quarantined(min_runs=1, threshold=0.1) == {"test", "unit"}
    assert quarantined(min_runs=1, threshold=0.95) == set()


def test_order_quarantine_first_then_lower_bound(engine):
    rows = _flaky(engine, min_runs=2)
    assert [(row["job"], row["quarantine"]) for row in rows] == [("test", True), ("e2e", True), ("unit", False)]
    rows = _flaky(engine)  # none quarantined: by Wilson lower bound alone
    assert [row["job"] for row in rows] == ["test", "unit", "e2e"]
    assert [row["job"] for row in _flaky(engine, limit=1)] == ["test"]


def test_filters_select_the_runs(engine):
    assert {row["job"] for row in _flaky(engine, Filters(repo="o/lib", since=T0 - DAY))} == {"unit"}
    main = _by_job(_flaky(engine, Filters(branch="main", since=T0 - DAY)))
    assert main[("o/app", "CI", "test")]["flaky"] == 2  # run 8 is on feat
    assert ("o/lib", "CI", "unit") in main
    assert _by_job(_flaky(engine, Filters()))[("o/app", "CI", "test")]["flaky"] == 4  # with run 10, all time
    assert _flaky(engine, Filters(since=T0 + 100_000)) == []
    # The window cuts the other run of a commit too: without run 6, run 5's e2e failure is not known to be flaky.
    assert ("o/app", "CI", "e2e") not in _by_job(_flaky(engine, Filters(until=T0 + 550)))


def test_arguments_checked(engine):
    for kw in ({"min_runs": -1}, {"threshold": 1.0}, {"threshold": -0.1}, {"confidence": 1.0}, {"limit": -1}):
        with pytest.raises(ValueError):
            _flaky(engine, **kw)


def test_empty_store(new_store):
    engine = store_with(new_store("empty"), [])
    assert _flaky(engine, Filters()) == []
