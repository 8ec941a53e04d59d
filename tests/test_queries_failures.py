"""`store.queries.failures` on a small hand-made history: groups by fingerprint, verdicts with evidence,
filters, a run's and a person's failures, the capture queue and the classifier's coverage.

Each verdict scenario has its own repository and fingerprints, so that they do not see each other
(NEW and KNOWN look at every repository).  Times are days after T0 (D).

- G (grouping): FP_G fails in o/app main (runs 1, 3) and o/lib feat (run 2, bob); run 3 also fails lint
  (FP_L); run 4 (o/lib main) ends with the exit-code fallback (FP_X); run 5's job has no line yet.
- R (re-runs): run 60 passed `test` and `e2e` on attempt 1 and failed both on attempt 2, e2e with an infra
  line; run 61 failed `test` and run 62, same workflow and commit, passed it.
- N (neighbours, branch dev): n1 passes, n2 fails, n3 passes, n4 fails (only a neighbour before).
- T (trunk): o/svc's default branch is `develop`: s1 passes, s2..s4 fail FP_T; pull requests of bob fail
  FP_T after (pr-1) and on a re-run that passed first (pr-3).  o/old has no repos row: its `master` failed
  FP_T2 at q1 then passed q2..q4 (not among the newest three) and failed FP_T3 at q5.
- K (known/new): FP_K 10 days apart (KNOWN), FP_O 30 days apart (NEW again).
"""
import time

import pytest
from sqlalchemy import update

from domain import records as r
from failures import Extraction, FailureLine
from store import joblogs
from store.queries import failures as q
from store.queries.filters import Filters
from store.schema import job_logs
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores

D = 86400
FP = {name: f"{i + 1:016x}" for i, name in enumerate(
    ("G", "L", "X", "R", "R2", "I", "NB", "NB2", "T", "T2", "T3", "K", "O", "Q"))}


def _run(gitid, repo, branch, sha, t, conclusion="failure", *, workflow="CI", author="alice", attempt=1):
    return run(gitid, repo=repo, branch=branch, sha=sha, workflow=workflow, author=author, attempt=attempt,
               conclusion=conclusion, created=T0 + t)


def _job(gitid, run_gitid, repo, name="test", conclusion="failure", *, attempt=1):
    return r.Job(repo=repo, gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name="CI",
                 head_branch=None, head_sha=None, status="completed", conclusion=conclusion, createtime=T0,
                 starttime=T0 + 1, endtime=T0 + 50, runner_name="r1", runner_id=1,
                 url=f"https://github.com/{repo}/actions/runs/{run_gitid}/job/{gitid}")


def _line(fp, *, klass="test", rule="pytest", fallback=False, text=None):
    return FailureLine(rule=rule, klass=klass, text=text or f"FAILED test_{fp} - AssertionError", fingerprint=FP[fp],
                       line=10, source="log", fallback=fallback)


def _commits(repo, author, times):
    return [commit(sha, repo=repo, author=author, time=T0 + t) for sha, t in times.items()]


def history():
    """(records, saves): the runs and jobs, and (job, repo, lines) to save as captured."""
    records = [r.Repo("o/app", default_branch="main"), r.Repo("o/svc", default_branch="develop"),
               r.Repo("o/kn", default_branch="main")]
    saves = []

    def fails(job, run_gitid, repo, *lines, name="test", attempt=1):
        records.append(_job(job, run_gitid, repo, name, attempt=attempt))
        if lines:
            saves.append((job, repo, list(lines)))

    # G: grouping across repositories and branches.
    records += _commits("o/app", "alice", {"a1": 10 * D - 60, "a2": 12 * D - 60}) + \
        _commits("o/app", "bob", {"a3": 13 * D - 60}) + \
        _commits("o/lib", "bob", {"l1": 11 * D - 60}) + _commits("o/lib", "alice", {"l2": 13 * D - 60})
    records.append(_run(1, "o/app", "main", "a1", 10 * D))
    fails(11, 1, "o/app", _line("G", text="FAILED test_a.py::test_one - assert 1 == 2"), name="test (ubuntu, 3.11)")
    records.append(_run(2, "o/lib", "feat", "l1", 11 * D, author="bob"))
    fails(21, 2, "o/lib", _line("G", text="FAILED test_a.py::test_one - assert 3 == 2"))
    records.append(_run(3, "o/app", "main", "a2", 12 * D))
    fails(31, 3, "o/app", _line("L", klass="lint", rule="ruff"), name="lint")
    fails(32, 3, "o/app", _line("G"), name="test (ubuntu, 3.11)")
    fails(33, 3, "o/app", _line("G", text="FAILED test_a.py::test_one - assert 5 == 2"), name="test (macos, 3.12)")
    records.append(_run(4, "o/lib", "main", "l2", 13 * D))
    fails(41, 4, "o/lib", _line("X", rule="exit-code", klass="unknown", fallback=True), name="build")
    records.append(_run(5, "o/app", "feat", "a3", 13 * D, author="bob"))
    fails(51, 5, "o/app")  # not captured yet

    # R: re-runs.
    records += _commits("o/rr", "carol", {"r1": 20 * D - 60, "r2": 21 * D - 60})
    records += [_run(60, "o/rr", "main", "r1", 20 * D, "success"), _run(60, "o/rr", "main", "r1", 20 * D, attempt=2),
                _job(601, 60, "o/rr", "test", "success"), _job(602, 60, "o/rr", "e2e", "success")]
    fails(603, 60, "o/rr", _line("R"), attempt=2)
    fails(604, 60, "o/rr", _line("I", klass="infra", rule="runner-lost"), name="e2e", attempt=2)
    records.append(_run(61, "o/rr", "main", "r2", 21 * D))
    fails(611, 61, "o/rr", _line("R2"))
    records += [_run(62, "o/rr", "main", "r2", 21 * D + 60, "success"), _job(621, 62, "o/rr", "test", "success")]

    # N: neighbouring commits on a branch.
    records += _commits("o/nb", "dave", {"n1": 30 * D, "n2": 30 * D + 100, "n3": 30 * D + 200, "n4": 30 * D + 300})
    records += [_run(71, "o/nb", "dev", "n1", 30 * D + 10, "success"), _job(711, 71, "o/nb", "test", "success")]
    records.append(_run(72, "o/nb", "dev", "n2", 30 * D + 110))
    fails(721, 72, "o/nb", _line("NB"))
    records += [_run(73, "o/nb", "dev", "n3", 30 * D + 210, "success"), _job(731, 73, "o/nb", "test", "success")]
    records.append(_run(74, "o/nb", "dev", "n4", 30 * D + 310))
    fails(741, 74, "o/nb", _line("NB2"))

    # T: the default branch broken at its newest commits.
    records += _commits("o/svc", "alice", {f"s{k}": 40 * D + k * 100 for k in range(1, 5)})
    records += _commits("o/svc", "bob", {"p1": 40 * D + 50, "p3": 40 * D + 60})
    records += [_run(81, "o/svc", "develop", "s1", 40 * D + 110, "success"), _job(811, 81, "o/svc", "test", "success")]
    for k in (2, 3, 4):
        records.append(_run(80 + k, "o/svc", "develop", f"s{k}", 40 * D + k * 100 + 10))
        fails(800 + k * 10 + 1, 80 + k, "o/svc", _line("T"))
    records.append(_run(85, "o/svc", "pr-1", "p1", 40 * D + 500, author="bob"))
    fails(851, 85, "o/svc", _line("T"))
    records += [_run(86, "o/svc", "pr-3", "p3", 40 * D + 600, "success", author="bob"),
                _run(86, "o/svc", "pr-3", "p3", 40 * D + 600, author="bob", attempt=2),
                _job(861, 86, "o/svc", "test", "success")]
    fails(862, 86, "o/svc", _line("T"), attempt=2)
    records += _commits("o/old", "erin", {f"q{k}": 45 * D + k * 100 for k in range(1, 6)})
    records += _commits("o/old", "bob", {"q8": 45 * D + 800, "q9": 45 * D + 900})
    records.append(_run(91, "o/old", "master", "q1", 45 * D + 110))
    fails(911, 91, "o/old", _line("T2"))
    for k in (2, 3, 4):
        records += [_run(90 + k, "o/old", "master", f"q{k}", 45 * D + k * 100 + 10, "success"),
                    _job(900 + k * 10 + 1, 90 + k, "o/old", "test", "success")]
    records.append(_run(95, "o/old", "master", "q5", 45 * D + 510))
    fails(951, 95, "o/old", _line("T3"))
    records.append(_run(96, "o/old", "pr-2", "q8", 45 * D + 810, author="bob"))
    fails(961, 96, "o/old", _line("T2"))
    records.append(_run(97, "o/old", "pr-4", "q9", 45 * D + 910, author="bob"))
    fails(971, 97, "o/old", _line("T3"))

    # K: seen 10 days before, and 30 days before.
    records += _commits("o/kn", "frank", {"k1": 50 * D - 60, "k2": 60 * D - 60, "k3": 50 * D - 50, "k4": 80 * D - 60})
    for gitid, branch, sha, t, fp in ((101, "b1", "k1", 50 * D, "K"), (102, "b2", "k2", 60 * D, "K"),
                                      (103, "b3", "k3", 50 * D + 10, "O"), (104, "b4", "k4", 80 * D, "O")):
        records.append(_run(gitid, "o/kn", branch, sha, t))
        fails(gitid * 10 + 1, gitid, "o/kn", _line(fp))
    # Job ids grow with time, but a job of an older run can come after (a re-run): run 105 (70 days) got
    # job 1060, after run 106 (72 days) got 1059.
    records += _commits("o/kn", "frank", {"k5": 70 * D - 60, "k6": 72 * D - 60})
    records += [_run(105, "o/kn", "b5", "k5", 70 * D), _run(106, "o/kn", "b6", "k6", 72 * D)]
    fails(1060, 105, "o/kn", _line("Q"))
    fails(1059, 106, "o/kn", _line("Q"))
    return records, saves


def build(path):
    """The history in a real store, its failure lines saved as the fetcher would."""
    records, saves = history()
    engine = store_with(path, records)
    with engine.begin() as conn:
        for job, repo, lines in saves:
            joblogs.save(conn, job, repo, Extraction(lines=lines, excerpt=f"log of {job}\n{lines[0].text}",
                                                     log_bytes=1000, truncated=False), source="log", now=T0)
    return engine


@pytest.fixture(scope="module")
def engine(module_stores):
    engine = build(module_stores.new("failures"))
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def conn(engine):
    with engine.connect() as conn:
        yield conn


def _group(groups, name):
    (found,) = [g for g in groups if g["fingerprint"] == FP[name]]
    return found


# -- groups ----------------------------------------------------------------------------------------

def test_groups_by_fingerprint_across_repositories_and_branches(conn):
    groups = q.groups(conn, Filters(until=T0 + 14 * D))
    assert [g["fingerprint"] for g in groups] == [FP["X"], FP["G"], FP["L"]]  # newest last_seen first
    g = _group(groups, "G")
    assert (g["jobs"], g["runs"], g["first_seen"], g["last_seen"]) == (4, 3, T0 + 10 * D, T0 + 12 * D)
    assert (g["repos"], g["branches"], g["authors"]) == (["o/app", "o/lib"], ["feat", "main"], ["alice", "bob"])
    assert g["workflows"] == ["CI"] and g["job_names"] == ["test", "test (macos, 3.12)", "test (ubuntu, 3.11)"]
    # The newest occurrence first (run 3's jobs, the higher job id first): its text, rule and class.
    assert [(o["run_gitid"], o["job"]) for o in g["newest"]] == [(3, 33), (3, 32), (2, 21), (1, 11)]
    assert (g["text"], g["rule"], g["klass"]) == ("FAILED test_a.py::test_one - assert 5 == 2", "pytest", "test")
    first = g["newest"][0]
    assert set(first) == set(q.OCCURRENCE_KEYS) | {"excerpt", "verdict"}
    assert (first["job_name"], first["repo"], first["branch"], first["sha"], first["author"], first["attempt"]) == (
        "test (macos, 3.12)", "o/app", "main", "a2", "alice", 1)
    assert first["run_url"] == "https://github.com/o/app/actions/runs/3" and first["excerpt"] is None
    assert g["verdict"] == first["verdict"] and g["verdict"]["kind"] == q.BROKEN_TRUNK  # run 1 failed it at a1
    assert [o["verdict"] is None for o in g["newest"]] == [False, True, True, True]  # the group's only
    assert [o["job"] for o in q.groups(conn, Filters(until=T0 + 14 * D), newest=2)[1]["newest"]] == [33, 32]


def test_groups_limit_and_empty(conn, new_store):
    assert [g["fingerprint"] for g in q.groups(conn, Filters(until=T0 + 14 * D), limit=1)] == [FP["X"]]
    empty = store_with(new_store("empty"), [])
    with empty.connect() as c:
        assert q.groups(c, Filters()) == [] and q.summary(c, FP["G"]) is None and q.coverage(c) == (0, 0)
        assert q.occurrences(c, FP["G"]) == [] and q.verdicts(c, [1, 2]) == {} and q.run_failures(c, [1]) == {1: []}
    empty.dispose()


@pytest.mark.parametrize("filters, expected", [
    (Filters(repo="o/lib"), {"G": 1, "X": 1}),
    (Filters(branch="feat"), {"G": 1}),
    (Filters(author="bob", until=T0 + 20 * D), {"G": 1}),  # run 2; run 5 (bob's too) has no line yet
    (Filters(since=T0 + 11 * D, until=T0 + 13 * D), {"G": 3, "L": 1}),
    (Filters(workflow="Lint"), {}),
    (Filters(conclusion="success"), {}),
    (Filters(repo="o/svc", author="bob"), {"T": 2}),
])
def test_group_filters(conn, filters, expected):
    assert {name: _group(q.groups(conn, filters), name)["jobs"] for name in expected} == expected
    assert len(q.groups(conn, filters)) == len(expected)


# -- verdicts --------------------------------------------------------------------------------------

def _verdict(conn, job):
    return q.verdicts(conn, [job])[job]


def _runs(verdict):
    return [e["run_gitid"] for e in verdict["evidence"]]


def test_flaky_when_the_same_job_passed_on_another_attempt(conn):
    v = _verdict(conn, 603)
    assert v["kind"] == q.FLAKY and "attempt 1" in v["reason"]
    (e,) = v["evidence"]
    assert e == {"run": e["run"], "run_gitid": 60, "attempt": 1,
                 "url": "https://github.com/o/rr/actions/runs/60/job/601",
                 "branch": "main", "sha": "r1", "conclusion": "success", "createtime": T0 + 20 * D}


def test_flaky_when_another_run_on_the_same_commit_passed(conn):
    v = _verdict(conn, 611)
    assert v["kind"] == q.FLAKY and _runs(v) == [62] and "same commit" in v["reason"]


def test_flaky_when_both_neighbouring_commits_passed(conn):
    v = _verdict(conn, 721)
    assert v["kind"] == q.FLAKY and _runs(v) == [73, 71] and [e["sha"] for e in v["evidence"]] == ["n3", "n1"]
    # n4's neighbour before (n3) passed, but there is none after: not flaky, and FP_NB2 is new.
    assert _verdict(conn, 741)["kind"] == q.NEW


def test_broken_trunk_for_a_pull_request_and_on_the_default_branch(conn):
    pr = _verdict(conn, 851)
    assert pr["kind"] == q.BROKEN_TRUNK and _runs(pr) == [84, 83, 82]  # develop's newest three commits
    assert {e["branch"] for e in pr["evidence"]} == {"develop"} and "develop" in pr["reason"]
    assert _runs(_verdict(conn, 841)) == [83, 82]  # not its own commit's run
    # s2 was the first commit of develop to fail it: the newer commits failing the same way do not make it
    # trunk's (its author broke trunk); s3 is trunk's, from s2.
    assert _verdict(conn, 821)["kind"] == q.NEW
    assert _verdict(conn, 831)["kind"] == q.BROKEN_TRUNK and _runs(_verdict(conn, 831)) == [82]


def test_default_branch_falls_back_to_master_and_counts_only_the_newest_commits(conn):
    # o/old has no repos row: master.  FP_T3 failed at q5, one of its newest three commits.
    assert _verdict(conn, 971)["kind"] == q.BROKEN_TRUNK and _runs(_verdict(conn, 971)) == [95]
    # FP_T2 failed on master at q1 only, behind q2..q4 that passed: known, not trunk's.
    v = _verdict(conn, 961)
    assert v["kind"] == q.KNOWN and _runs(v) == [91]


def test_new_and_known(conn):
    known = _verdict(conn, 1021)
    assert known["kind"] == q.KNOWN and _runs(known) == [101] and known["evidence"][0]["createtime"] == T0 + 50 * D
    new = _verdict(conn, 1011)
    assert new == {"kind": q.NEW, "reason": new["reason"], "evidence": []} and "21 days" in new["reason"]
    assert _verdict(conn, 1041)["kind"] == q.NEW  # FP_O was seen 30 days before, beyond the horizon
    later_job = _verdict(conn, 1059)  # seen 2 days before, in a job with a higher id
    assert later_job["kind"] == q.KNOWN and _runs(later_job) == [105]
    assert _verdict(conn, 1060)["kind"] == q.NEW


def test_precedence_infra_then_flaky_then_trunk(conn):
    infra = _verdict(conn, 604)  # e2e passed on attempt 1 too: infra comes first
    assert infra["kind"] == q.INFRA and "runner-lost" in infra["reason"] and infra["evidence"] == []
    flaky = _verdict(conn, 862)  # FP_T is failing on develop, but this job passed on attempt 1
    assert flaky["kind"] == q.FLAKY and _runs(flaky) == [86]


def test_verdicts_until_flaky_decide_the_first_kinds_only(conn):
    """`until=FLAKY` (the Waterfall KPIs' split): INFRA and FLAKY as in full, the later kinds left out."""
    asked = [603, 611, 721, 851, 1021, 1011, 604, 862, 11]
    full = q.verdicts(conn, asked)
    early = {job: v for job, v in full.items() if v["kind"] in (q.INFRA, q.FLAKY)}
    assert early and len(early) < len(full)  # both sides of the cut are in the fixture
    assert q.verdicts(conn, asked, until=q.FLAKY) == early
    runs = [r for r in range(1, 120) if q.run_failures(conn, [r])[r]]
    whole, cut = q.run_failures(conn, runs), q.run_failures(conn, runs, until=q.FLAKY)
    kinds = {(job["verdict"] or {}).get("kind") for jobs in whole.values() for job in jobs}
    assert {q.FLAKY, q.NEW} <= kinds  # runs with failed jobs of both sides
    assert cut == {run: [dict(job, verdict=job["verdict"] if (job["verdict"] or {}).get("kind") in (
        q.INFRA, q.FLAKY) else None) for job in jobs] for run, jobs in whole.items()}


def test_verdicts_only_for_failed_jobs_with_a_line(conn):
    found = q.verdicts(conn, [11, 51, 601, 999999])
    assert set(found) == {11}
    assert set(q.verdicts(conn, [603, 611, 721, 851, 1021, 1011, 604])) == {603, 611, 721, 851, 1021, 1011, 604}


# -- occurrences, summary, lines -------------------------------------------------------------------

def test_occurrences_and_summary(conn):
    found = q.occurrences(conn, FP["G"])
    assert [o["job"] for o in found] == [33, 32, 21, 11]
    assert found[2]["excerpt"] == "log of 21\nFAILED test_a.py::test_one - assert 3 == 2"
    assert all(o["verdict"] for o in found) and found[2]["verdict"]["kind"] == q.KNOWN  # seen at run 1
    assert [o["job"] for o in q.occurrences(conn, FP["G"], Filters(repo="o/lib"), excerpts=False)] == [21]
    assert q.occurrences(conn, FP["G"], limit=1, excerpts=False)[0]["excerpt"] is None
    s = q.summary(conn, FP["G"])
    assert (s["jobs"], s["runs"], s["first_seen"], s["last_seen"], s["repos"]) == (
        4, 3, T0 + 10 * D, T0 + 12 * D, ["o/app", "o/lib"])
    assert s["text"] == "FAILED test_a.py::test_one - assert 5 == 2" and s["klass"] == "test"
    assert q.summary(conn, "0" * 16) is None


def test_job_lines(conn):
    lines = q.job_lines(conn, [41, 51])
    assert list(lines) == [41]
    assert lines[41] == [{"ordinal": 0, "rule": "exit-code", "klass": "unknown",
                          "text": "FAILED test_X - AssertionError", "fingerprint": FP["X"],
                          "source": "log", "path": None, "line": 10, "fallback": True}]


# -- a run's failures, a person's ------------------------------------------------------------------

def test_run_failures(conn):
    found = q.run_failures(conn, [60, 5, 62])
    assert found[62] == []
    assert [(f["job"], f["name"], f["conclusion"], f["capture"]) for f in found[60]] == [
        (603, "test", "failure", "done"), (604, "e2e", "failure", "done")]
    assert found[60][0]["verdict"]["kind"] == q.FLAKY and found[60][1]["verdict"]["kind"] == q.INFRA
    assert found[60][0]["lines"][0]["fingerprint"] == FP["R"]
    (pending,) = found[5]
    assert (pending["job"], pending["lines"], pending["verdict"], pending["capture"]) == (51, [], None, "pending")


def test_person_failures_say_whose(conn):
    found = q.person_failures(conn, "bob", Filters())
    assert [(f["job"], f["whose"]) for f in found] == [
        (971, "trunk"), (961, "known"), (862, "flaky"), (851, "trunk"), (51, "unknown"), (21, "known")]
    assert found[4]["text"] is None and found[4]["verdict"] is None
    assert [f["job"] for f in q.person_failures(conn, "bob", Filters(since=T0 + 45 * D), limit=1)] == [971]
    # dave wrote n1..n4 of o/nb (alice's runs): their runs too.
    assert [(f["job"], f["whose"]) for f in q.person_failures(conn, "dave", Filters())] == [
        (741, "yours"), (721, "flaky")]
    assert q.person_failures(conn, "nobody", Filters()) == []
    assert [f["whose"] for f in q.person_failures(conn, "frank", Filters())] == [
        "yours", "known", "yours", "known", "yours", "yours"]


# -- capture and coverage --------------------------------------------------------------------------

def test_coverage_counts_captured_jobs_not_matched_by_a_fallback(conn):
    captured = len(history()[1])
    assert q.coverage(conn) == (captured - 1, captured)


def test_capture_status_with_a_paused_queue(new_store):
    engine = build(new_store("capture"))
    now = time.time()
    with engine.begin() as c:
        assert q.capture_status(c, token=False) == {"token": False, "pending": 1, "done": len(history()[1]),
                                                    "failed": 0, "gone": 0, "paused_until": None,
                                                    "last_error": None}
        joblogs.queue(c, [(7001, "o/app"), (7002, "o/app")], now)
        joblogs.give_up(c, 7001, joblogs.GONE, "GitHub has no log for this job (404)", now)
        c.execute(update(job_logs).where(job_logs.c.state == joblogs.PENDING)
                  .values(next_try=now + 600, error="rate limited by GitHub until 12:00:00 UTC"))
        status = q.capture_status(c, token=True)
        assert (status["token"], status["pending"], status["gone"], status["paused_until"]) == (True, 2, 1, now + 600)
        assert status["last_error"] == "rate limited by GitHub until 12:00:00 UTC"
        joblogs.retry(c, 7002, "HTTP 502 from GitHub", now - 1)  # due now, for another reason: not paused
        status = q.capture_status(c, token=True)
        assert (status["paused_until"], status["last_error"]) == (None, "HTTP 502 from GitHub")
        c.execute(update(job_logs).where(job_logs.c.state == joblogs.PENDING).values(error=None))
        assert q.capture_status(c, token=True)["last_error"] == "GitHub has no log for this job (404)"
    engine.dispose()


@pytest.mark.parametrize("filters", [Filters(), Filters(repo="o/app"), Filters(since=T0 + 11 * D),
                                     Filters(author="bob")])
def test_occurrences_found_by_time_equal_those_found_by_fingerprint(conn, monkeypatch, filters):
    """A common fingerprint's newest occurrences are found walking back in time; a rare one's by its index."""
    def each(limit):
        return {fp: [o["job"] for o in q.occurrences(conn, code, filters, limit=limit, excerpts=False)]
                for fp, code in FP.items()}

    by_fingerprint = [each(limit) for limit in (1, 2, 200)]
    monkeypatch.setattr(q, "_common", lambda *_args: True)
    assert [each(limit) for limit in (1, 2, 200)] == by_fingerprint
    assert by_fingerprint[2]["G"] == ([33, 32, 21, 11] if filters == Filters() else by_fingerprint[2]["G"])
