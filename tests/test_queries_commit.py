"""`store.queries.commit` on a small hand-made history: finding a commit by its sha, its runs with every
attempt and job, its neighbours on the default branch, and a pull request's runs by head commit.

o/app's `main` (M = minutes after T0): m1 passes CI (run 1); m2's CI (run 2) fails `test` at step 3 on both
attempts, its Lint (run 4) passes; m3's CI (run 3) fails `test` again with the same failure line; m1 and m3
also pass Lint.  Pull request #7 (branch `feat`): p1's CI (run 10, created between m2's and m3's runs)
fails `test`; p2's CI (run 11, re-run once after a failure) and Lint (run 12) pass, and CI ran again on p2
(run 13, passing).  o/lib holds a commit with m2's sha (a fork; its branch `trunk`, no default branch
known) and pull request #7 too; two o/app commits share the prefix `abcdef1`.
"""
import hashlib
import time

import pytest

from domain import records as r
from failures import Extraction, FailureLine
from store import joblogs
from store.queries import commit as q
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores

M = 60
FP = "00000000000000aa"
LINE = "FAILED tests/test_api.py::test_export - AssertionError: 3 != 4"


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


M1, M2, M3, P1, P2 = (sha(n) for n in ("m1", "m2", "m3", "p1", "p2"))
AMBIGUOUS = ("abcdef1" + "0" * 33, "abcdef1" + "1" * 33)


def _job(gitid, run_gitid, name, conclusion="success", *, attempt=1, t=0.0, repo="o/app", steps=(),
         runner="GitHub Actions 7", labels=("ubuntu-latest",), group="GitHub Actions"):
    created = T0 + t
    return r.Job(repo=repo, gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name="CI",
                 head_branch=None, head_sha=None, status="completed", conclusion=conclusion, createtime=created,
                 starttime=created + 12, endtime=created + 12 + 90, runner_name=runner, runner_id=7,
                 labels=labels, url=f"https://github.com/{repo}/actions/runs/{run_gitid}/job/{gitid}",
                 steps=tuple(steps), runner_group=group)


def _steps(failing_at: int | None):
    return [r.Step(n, name, "completed", "failure" if n == failing_at else ("skipped" if failing_at and n > failing_at
                                                                           else "success"), T0, T0 + 1)
            for n, name in ((1, "Set up job"), (2, "Install"), (3, "Run tests"), (4, "Upload"))]


def history():
    records = [r.Repo("o/app", default_branch="main", url="https://github.com/o/app")]
    records += [commit(M1, time=T0), commit(M2, time=T0 + 10 * M, author="bob", message="fix: export\n\nbody"),
                commit(M3, time=T0 + 20 * M), commit(P1, time=T0 + 12 * M, author="carol"),
                commit(P2, time=T0 + 30 * M, author="carol"), commit(M2, repo="o/lib", time=T0),
                commit(AMBIGUOUS[0], time=T0 - 100 * M), commit(AMBIGUOUS[1], time=T0 - 90 * M)]
    records += [
        run(1, sha=M1, created=T0 + 1 * M), run(5, sha=M1, workflow="Lint", created=T0 + 1 * M),
        run(2, sha=M2, created=T0 + 11 * M, conclusion="failure", queue=30.0, duration=300.0),
        run(2, sha=M2, created=T0 + 11 * M, conclusion="failure", attempt=2, queue=20.0, duration=280.0),
        run(4, sha=M2, workflow="Lint", created=T0 + 11 * M),
        run(3, sha=M3, created=T0 + 21 * M, conclusion="failure"), run(6, sha=M3, workflow="Lint", created=T0 + 21 * M),
    ]
    pr = {"branch": "feat", "author": "carol"}
    records += [
        _pulled(run(10, sha=P1, created=T0 + 15 * M, conclusion="failure", **pr), 7),
        _pulled(run(11, sha=P2, created=T0 + 31 * M, conclusion="failure", **pr), 7),
        _pulled(run(11, sha=P2, created=T0 + 31 * M, attempt=2, **pr), 7),
        _pulled(run(12, sha=P2, workflow="Lint", created=T0 + 31 * M, **pr), 7),
        _pulled(run(13, sha=P2, created=T0 + 40 * M, **pr), 7),
        _pulled(run(20, repo="o/lib", sha=M2, branch="trunk", created=T0 + 5 * M), 7),
    ]
    records += [
        _job(100, 1, "build"), _job(101, 1, "test", steps=_steps(None)),
        _job(200, 2, "build", t=11 * M), _job(201, 2, "test", "failure", t=11 * M, steps=_steps(3)),
        _job(210, 2, "build", attempt=2, t=13 * M, runner="self-1", labels=("self-hosted", "linux"), group="gpu"),
        _job(211, 2, "test", "failure", attempt=2, t=13 * M, steps=_steps(3)),
        _job(300, 3, "build", t=21 * M), _job(301, 3, "test", "failure", t=21 * M, steps=_steps(3)),
        _job(1000, 10, "test", "failure", t=15 * M, steps=_steps(3)),
    ]
    return records


def _pulled(record: r.Run, *numbers: int) -> r.Run:
    return r.Run(**{**record.__dict__, "pull_requests": numbers})


@pytest.fixture(scope="module")
def engine(module_stores):
    engine = store_with(module_stores.new("c"), history())
    line = FailureLine(rule="pytest", klass="test", text=LINE, fingerprint=FP, line=9, source="log")
    with engine.begin() as conn:
        for job in (211, 301, 1000):
            joblogs.save(conn, job, "o/app", Extraction(lines=[line], excerpt=LINE, log_bytes=100, truncated=False),
                         source="log", now=time.time())
    yield engine
    engine.dispose()


def _one(conn, sha_, repo="o/app"):
    found = q.find_commits(conn, sha_, repo)
    assert len(found) == 1
    return found[0]


def test_find_commits_by_sha_prefix_and_repository(engine):
    with engine.connect() as conn:
        assert [c["repo"] for c in q.find_commits(conn, M2)] == ["o/app", "o/lib"]  # a fork: pick one
        assert _one(conn, M2[:7])["sha"] == M2
        assert _one(conn, M2[:7].upper())["sha"] == M2  # hex is hex
        assert _one(conn, M2, "o/lib")["repo"] == "o/lib"
        assert q.find_commits(conn, M2[:6]) == []  # too short to be a prefix
        assert [c["sha"] for c in q.find_commits(conn, "abcdef1")] == list(AMBIGUOUS)
        assert _one(conn, "abcdef11")["sha"] == AMBIGUOUS[1]
        assert q.find_commits(conn, "0000000") == [] and q.find_commits(conn, M2, "o/none") == []
        m2 = _one(conn, M2)
        assert (m2["author"], m2["message"], m2["time"]) == ("bob", "fix: export\n\nbody", T0 + 10 * M)


def test_commit_runs_every_attempt_and_job(engine):
    with engine.connect() as conn:
        runs = q.commit_runs(conn, _one(conn, M2)["id"])
    assert [(x["workflow"], x["gitid"], x["glyph"], x["attempt"], x["branch"]) for x in runs] == [
        ("CI", 2, "X", 2, "main"), ("Lint", 4, "O", 1, "main")]
    ci = runs[0]
    assert [(a["attempt"], a["conclusion"], a["queuetime"], a["runtime"]) for a in ci["attempts"]] == [
        (2, "failure", 20.0, 280.0), (1, "failure", 30.0, 300.0)]  # newest first
    latest, first = ci["attempts"]
    assert [(j["name"], j["glyph"]) for j in latest["jobs"]] == [("build", "O"), ("test", "X")]
    build, test = latest["jobs"]
    assert (build["runner_name"], build["labels"], build["runner_group"]) == ("self-1", ["self-hosted", "linux"], "gpu")
    assert (build["queuetime"], build["runtime"], build["failing_step"], build["failure"]) == (12.0, 90.0, None, None)
    assert test["failing_step"] == {"number": 3, "name": "Run tests", "conclusion": "failure"}
    assert test["failure"]["fingerprint"] == FP and test["failure"]["failure_lines"][0]["text"] == LINE
    assert test["failure"]["verdict"]["kind"] == "NEW"  # the first of its line; m3 failing after is no trunk's
    # Attempt 1's failed job has no line captured: its capture waits (queued by the writer).
    old_test = first["jobs"][1]
    assert (old_test["job"], old_test["failure"]["failure_lines"]) == (201, [])
    assert old_test["failure"]["capture"] == "pending"
    assert [j["job"] for j in first["jobs"]] == [200, 201]
    assert ci["pulls"] == [] and runs[1]["attempts"][0]["jobs"] == []


def test_neighbours_on_the_default_branch(engine):
    with engine.connect() as conn:
        m2 = _one(conn, M2)
        found = q.neighbours(conn, m2, q.commit_runs(conn, m2["id"]))
    assert found["branch"] == "main"
    ci, lint = found["workflows"]
    assert (ci["workflow"], ci["glyph"], [f["name"] for f in ci["failed"]]) == ("CI", "X", ["test"])
    assert (ci["older"]["commit"]["sha"], ci["older"]["glyph"], ci["older"]["failed"]) == (M1, "O", [])
    assert (ci["newer"]["commit"]["sha"], ci["newer"]["glyph"]) == (M3, "X")
    assert (ci["newer"]["same_jobs"], ci["newer"]["same_lines"]) == (["test"], [FP])  # main fails the same way
    assert ci["older"]["same_jobs"] == [] and ci["newer"]["failed"][0]["text"] == LINE
    assert (lint["older"]["commit"]["sha"], lint["newer"]["commit"]["sha"]) == (M1, M3)


def test_neighbours_of_a_pull_request_commit_by_run_time(engine):
    with engine.connect() as conn:
        p1 = _one(conn, P1)
        found = q.neighbours(conn, p1, q.commit_runs(conn, p1["id"]))
        p2 = _one(conn, P2)
        later = q.neighbours(conn, p2, q.commit_runs(conn, p2["id"]))
    (ci,) = found["workflows"]
    # Its run came after m2's and before m3's: both failing `test` with its line.
    assert (ci["older"]["commit"]["sha"], ci["newer"]["commit"]["sha"]) == (M2, M3)
    assert ci["older"]["same_jobs"] == ["test"] == ci["newer"]["same_jobs"]
    ci2, lint2 = later["workflows"]
    assert ci2["glyph"] == "O" and ci2["older"]["commit"]["sha"] == M3 and ci2["newer"] is None
    assert lint2["older"]["same_jobs"] == []


def test_a_commit_with_no_default_branch_has_no_neighbours(engine):
    with engine.connect() as conn:
        fork = _one(conn, M2, "o/lib")
        assert q.neighbours(conn, fork, q.commit_runs(conn, fork["id"])) == {"branch": None, "workflows": []}


def test_pull_request_runs_by_head_commit(engine):
    with engine.connect() as conn:
        assert q.pull_repos(conn, 7) == ["o/app", "o/lib"] and q.pull_repos(conn, 8) == []
        found = q.pull_commits(conn, "o/app", 7)
        assert q.pull_commits(conn, "o/app", 8) == []
        assert q.pull_numbers(conn, [10, 11, 1]) == {10: [7], 11: [7]}
    assert [(g["sha"], g["pushed"], g["branches"]) for g in found] == [(P2, T0 + 31 * M, ["feat"]),
                                                                       (P1, T0 + 15 * M, ["feat"])]
    p2, p1 = found
    # p2: CI's latest run is 13 (of two), Lint's 12; run 11 passed on a re-run (flaky) but is not the latest.
    assert [(x["workflow"], x["gitid"], x["glyph"], x["runs"]) for x in p2["runs"]] == [
        ("CI", 13, "O", 2), ("Lint", 12, "O", 1)]
    assert [(x["workflow"], x["gitid"], x["glyph"]) for x in p1["runs"]] == [("CI", 10, "X")]
    assert [(f["name"], f["text"], f["fingerprint"]) for f in p1["runs"][0]["failed"]] == [("test", LINE, FP)]
    assert (p1["author"], p1["message"]) == ("carol", f"commit {P1}")
