"""Trunk health KPIs (`store.queries.kpis`) against hand computations on a small default branch."""
import pytest

from domain import records as r
from failures import Extraction, FailureLine
from store import joblogs
from store.queries.kpis import trunk_health
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores


def _job(gitid, run_gitid, conclusion, *, attempt=1, name="test"):
    return r.Job(repo="o/app", gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name="CI",
                 head_branch="main", head_sha=None, status="completed", conclusion=conclusion, createtime=T0,
                 starttime=T0 + 1, endtime=T0 + 50, runner_name="r1", runner_id=1)


def _at(k):
    return T0 + k * 1000


def history():
    """main's commits c1..c8, one every 1000 s.  A commit arrives with its first run; CI is created 10 s
    after the arrival of c1 and c2 (their Lint arrives first), Docs on arrival; each run is queued 10 s, so
    it ends 10 s + its duration after its creation:

        c1  CI O  Lint O                     green
        c2  CI X (100 s; re-run, X again)    red, broken   signal 120 s (the first failed attempt)
        c3  CI X (200 s)                     red, broken   signal 210 s
        c4  CI O (100 s)                     green: CI's break c2-c3 recovered, 4120 - 2120 = 2000 s
        c5  CI X (400 s), test flaky         red, flaky    signal 410 s (test passed on c4 and c6)
        c6  CI O  Docs X (100 s)             red, broken   signal 110 s
        c7  CI O  Docs X (50 s)              red, broken   signal 60 s; Docs' break c6-c7 still open
        c8  CI queued                        pending: not settled
    """
    records = [commit(f"c{k}", time=_at(k) - 60) for k in range(1, 9)]
    records += [run(1, sha="c1", workflow="Lint", created=_at(1)), run(2, sha="c1", created=_at(1) + 10),
                run(3, sha="c2", workflow="Lint", created=_at(2)),
                run(4, sha="c2", conclusion="failure", created=_at(2) + 10),
                run(4, sha="c2", conclusion="failure", created=_at(2) + 500, attempt=2),
                run(5, sha="c3", conclusion="failure", created=_at(3) + 10, duration=200),
                run(6, sha="c4", created=_at(4) + 10),
                run(7, sha="c5", conclusion="failure", created=_at(5) + 10, duration=400),
                run(8, sha="c6", created=_at(6) + 10), run(9, sha="c6", workflow="Docs", conclusion="failure",
                                                          created=_at(6)),
                run(10, sha="c7", created=_at(7) + 10), run(11, sha="c7", workflow="Docs", conclusion="failure",
                                                            created=_at(7), duration=50),
                run(12, sha="c8", status="queued", created=_at(8) + 10)]
    records += [_job(20, 2, "success"), _job(40, 4, "failure"), _job(41, 4, "failure", attempt=2),
                _job(50, 5, "failure"), _job(60, 6, "success"), _job(70, 7, "failure"), _job(80, 8, "success"),
                _job(100, 10, "success")]
    return records


@pytest.fixture(scope="module")
def engine(module_stores):
    engine = store_with(module_stores.new("kpis"), history())
    with engine.begin() as conn:  # failure lines of the CI test jobs (the Docs jobs have none: no verdict)
        for job, fp in ((41, "aa"), (50, "bb"), (70, "cc")):
            line = FailureLine(rule="pytest", klass="test", text=f"FAILED test_{fp}", fingerprint=fp * 8, line=1,
                               source="log")
            joblogs.save(conn, job, "o/app", Extraction([line], line.text, 100, False), source="log", now=T0)
    yield engine
    engine.dispose()


def _kpis(engine, **kwargs):
    with engine.connect() as conn:
        return trunk_health(conn, "o/app", now=_at(9), **kwargs)


def test_all_time_equals_the_hand_computation(engine):
    k = _kpis(engine, since=None)
    assert k["branch"] == "main"
    assert (k["commits"], k["settled"], k["red"]) == (8, 7, 5)
    assert k["red_share"] == pytest.approx(5 / 7)
    assert k["verdicts"] and (k["broken"], k["flaky"], k["judged"]) == (4, 1, 5)
    # Signals 60, 110, 120, 210, 410: p50 the middle one, p90 at 3.6 of 0..4 (linear, as store.metrics).
    assert k["signals"] == 5 and k["signal_p50"] == pytest.approx(120)
    assert k["signal_p90"] == pytest.approx(210 + 0.6 * 200)
    assert (k["recoveries"], k["recovery_p50"], k["open_breaks"]) == (1, pytest.approx(2000), 1)
    assert k["force_pushes"] is None  # the store has no push events


def test_window_counts_commits_that_arrived_in_it_and_follows_breaks_back(engine):
    k = _kpis(engine, since=_at(4) - 5)  # c4..c8
    assert (k["commits"], k["settled"], k["red"], k["broken"], k["flaky"]) == (5, 4, 3, 2, 1)
    assert k["signal_p50"] == pytest.approx(110)
    # c4's recovery is in the window; its break (c2-c3) began before it and is read back.
    assert (k["recoveries"], k["recovery_p50"]) == (1, pytest.approx(2000))
    later = _kpis(engine, since=_at(5) - 5)  # c5..c8: no recovery in it
    assert (later["recoveries"], later["recovery_p50"], later["open_breaks"]) == (0, None, 1)


def test_one_workflow_and_an_unknown_repository(engine):
    ci = _kpis(engine, since=None, workflow="CI")
    assert (ci["commits"], ci["settled"], ci["red"], ci["broken"], ci["flaky"]) == (8, 7, 3, 2, 1)
    assert (ci["recoveries"], ci["open_breaks"]) == (1, 0)
    with engine.connect() as conn:
        nothing = trunk_health(conn, "x/y", since=None)
    assert nothing["red_share"] is None and nothing["commits"] == 0 and nothing["branch"] is None


def test_without_failure_lines_there_is_no_split(new_store):
    engine = store_with(new_store("bare"), [commit("c1"), run(1, sha="c1", conclusion="failure"),
                                               _job(10, 1, "failure")])
    with engine.connect() as conn:
        k = trunk_health(conn, "o/app", since=None, now=T0 + 1000)
    assert (k["red"], k["verdicts"], k["broken"], k["flaky"]) == (1, False, None, None)
    assert k["signal_p50"] == pytest.approx(110)
