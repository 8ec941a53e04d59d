"""`ingest.demo`: the synthetic history, written to a real SQLite file and read back with SQL."""
import json
import re

import pytest
from sqlalchemy import distinct, func, select

from ingest.demo import FLAKY_EXAMPLE, RED_STREAK, STALE_RUNS, counts, demo_facts, populate
from domain.state import ACTIVE_STATUSES, DECISIVE, FAILED, QUEUED_STATUSES
from store.engine import make_engine
from store.migrate import upgrade
from store.schema import branches, commits, jobs, repos, runattempts, steps, workflowruns, workflows
from tests.helpers import snapshot

pytestmark = pytest.mark.slow  # builds the full 2,500-run demo once (about a minute of CPU)

NOW = 1_750_000_000.0  # Sunday 15 June 2025, 15:06:40 UTC
STALE_CUTOFF = 24 * 3600


def _store(path):
    engine = make_engine(str(path))
    upgrade(engine)
    return engine


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The default demo (seed 1, 2,500 runs), built once for the read-only tests."""
    engine = _store(tmp_path_factory.mktemp("demo") / "builds.db")
    returned = populate(engine, seed=1, now=NOW)
    yield engine, returned
    engine.dispose()


def _rows(engine, query):
    with engine.connect() as conn:
        return conn.execute(query).all()


def _scalar(engine, query):
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def _cells(engine, repo, branch, workflow):
    """Per commit on `branch`, newest first: (sha, author, conclusions of every attempt, latest status)."""
    query = (
        select(commits.c.hash, commits.c.author, workflowruns.c.gitid, workflowruns.c.status, commits.c.time)
        .join(commits, commits.c.id == workflowruns.c.commitid)
        .join(branches, branches.c.id == workflowruns.c.branch)
        .join(workflows, workflows.c.id == workflowruns.c.workflow)
        .where(workflowruns.c.repo == repo, branches.c.name == branch, workflows.c.name == workflow)
        .order_by(commits.c.time.desc())
    )
    out = []
    for sha, author, gitid, status, _ in _rows(engine, query):
        attempts = _rows(engine, select(runattempts.c.conclusion).where(runattempts.c.gitid == gitid)
                         .order_by(runattempts.c.attempt))
        out.append((sha, author, [a[0] for a in attempts], status))
    return out


def _glyph(conclusions, status):
    """The Waterfall glyph of a cell with one run (metrics.md)."""
    if status != "completed":
        return "?" if status == "in_progress" else "Q"
    latest = conclusions[-1]
    if latest == "success":
        return "F" if any(c in FAILED for c in conclusions[:-1]) else "O"
    return {"failure": "X", "startup_failure": "X", "timed_out": "T", "cancelled": "C", "skipped": "S",
            "neutral": "N"}[latest]


def test_counts_meet_the_issue_minimums(demo):
    engine, returned = demo
    assert returned == counts(engine)
    assert _scalar(engine, select(func.count()).select_from(repos)) >= 3
    assert _scalar(engine, select(func.count(distinct(workflows.c.name)))) >= 5
    assert _scalar(engine, select(func.count()).select_from(commits)) >= 200
    assert _scalar(engine, select(func.count()).select_from(workflowruns)) >= 2000
    assert 8 <= _scalar(engine, select(func.count(distinct(commits.c.author)))) <= 12
    per_repo = dict(_rows(engine, select(workflows.c.repo, func.count()).group_by(workflows.c.repo)))
    assert len(per_repo) >= 3 and all(2 <= n <= 4 for n in per_repo.values())
    defaults = dict(_rows(engine, select(repos.c.name, repos.c.default_branch)))
    assert defaults["acme/mobile"] == "master" and defaults["acme/webapp"] == "main"
    assert returned["runattempts"] > returned["workflowruns"] and returned["steps"] > returned["jobs"]


def test_history_spans_the_last_30_days_and_nothing_is_in_the_future(demo):
    engine, _ = demo
    first, last = _rows(engine, select(func.min(commits.c.time), func.max(commits.c.time)))[0]
    assert NOW - 31 * 86400 <= first < NOW - 25 * 86400 and last <= NOW
    for column in (runattempts.c.createtime, runattempts.c.starttime, runattempts.c.endtime,
                   runattempts.c.updatetime, jobs.c.endtime, steps.c.endtime):
        assert _scalar(engine, select(func.max(column))) <= NOW


def test_same_seed_and_now_give_the_same_rows_and_another_seed_does_not(tmp_path):
    a, b, c = (_store(tmp_path / f"{name}.db") for name in "abc")
    populate(a, seed=7, now=NOW, runs=150)
    populate(b, seed=7, now=NOW, runs=150)
    rows = snapshot(a)
    assert rows == snapshot(b)
    populate(a, seed=7, now=NOW, runs=150)  # written again through the writer: nothing changes
    assert snapshot(a) == rows
    populate(c, seed=8, now=NOW, runs=150)
    assert snapshot(c) != rows


def test_red_streak_on_main_is_red_and_starts_at_the_known_commit(demo):
    engine, _ = demo
    cells = _cells(engine, RED_STREAK["repo"], RED_STREAK["branch"], RED_STREAK["workflow"])
    n = RED_STREAK["length"]
    glyphs = [_glyph(conclusions, status) for _, _, conclusions, status in cells]
    assert glyphs[:n] == ["X"] * n and glyphs[n] == "O"  # the streak, then a green commit
    first_bad, before = cells[n - 1], cells[n]
    assert first_bad[0] == RED_STREAK["first_bad_sha"] and first_bad[1] == RED_STREAK["first_bad_author"]
    assert first_bad[2] == ["failure", "failure"]  # re-run once, failed again
    assert before[0] == RED_STREAK["last_green_sha"] and before[1] == RED_STREAK["last_green_author"]
    # The same failure: every failed job of the streak fails at the same step.
    shas = [cell[0] for cell in cells[:n]]
    failing = _rows(engine, select(jobs.c.name, steps.c.name, steps.c.conclusion)
                    .join(steps, steps.c.job == jobs.c.id)
                    .where(jobs.c.head_sha.in_(shas), jobs.c.workflow_name == RED_STREAK["workflow"],
                           jobs.c.conclusion.in_(FAILED), steps.c.conclusion == "failure"))
    assert {(job, step) for job, step, _ in failing} == {(RED_STREAK["job"], RED_STREAK["step"])}
    assert len(failing) == n + 1
    message = _scalar(engine, select(commits.c.message).where(commits.c.hash == RED_STREAK["first_bad_sha"]))
    assert message.startswith(RED_STREAK["first_bad_title"])
    # The commit before the streak is green in every workflow.
    before_runs = _rows(engine, select(workflowruns.c.conclusion).join(commits, commits.c.id == workflowruns.c.commitid)
                        .where(commits.c.hash == RED_STREAK["last_green_sha"]))
    assert before_runs and {c for (c,) in before_runs} == {"success"}


def test_flaky_runs_exist_and_the_known_one_is_described(demo):
    engine, returned = demo
    later = runattempts.alias("later")
    flaky = _scalar(engine, select(func.count(distinct(runattempts.c.gitid)))
                    .join(later, (later.c.gitid == runattempts.c.gitid) & (later.c.attempt > runattempts.c.attempt))
                    .where(runattempts.c.conclusion.in_(FAILED), later.c.conclusion == "success"))
    assert 0.01 * returned["workflowruns"] <= flaky <= 0.08 * returned["workflowruns"]
    facts = demo_facts(engine)["flaky_example"]
    assert facts["attempt_conclusions"] == FLAKY_EXAMPLE["attempts"] == ("failure", "success")
    cells = _cells(engine, FLAKY_EXAMPLE["repo"], FLAKY_EXAMPLE["branch"], FLAKY_EXAMPLE["workflow"])
    cell = next(c for c in cells if c[0] == FLAKY_EXAMPLE["sha"])
    assert _glyph(cell[2], cell[3]) == "F" and cell[1] == FLAKY_EXAMPLE["author"]
    first, second = _rows(engine, select(runattempts).where(runattempts.c.gitid == facts["run_gitid"])
                          .order_by(runattempts.c.attempt))
    assert second.createtime == second.starttime > first.endtime  # a re-run is created when it starts
    failing = _rows(engine, select(jobs.c.name, steps.c.name).join(steps, steps.c.job == jobs.c.id)
                    .where(jobs.c.run_gitid == facts["run_gitid"], jobs.c.run_attempt == 1,
                           steps.c.conclusion == "failure"))
    assert failing == [(FLAKY_EXAMPLE["job"], FLAKY_EXAMPLE["step"])]


def test_active_and_stale_runs(demo):
    engine, _ = demo
    unfinished = _rows(engine, select(workflowruns).where(workflowruns.c.status.in_(ACTIVE_STATUSES)))
    active = [run for run in unfinished if run.updatetime >= NOW - STALE_CUTOFF]
    stale = [run for run in unfinished if run.updatetime < NOW - STALE_CUTOFF]
    assert {run.status for run in active} >= {"in_progress", "queued"}
    assert all(run.updatetime >= NOW - 3600 for run in active)
    assert sorted((run.repo, run.archivedworkflowname, run.status) for run in stale) == \
        sorted((s["repo"], s["workflow"], s["status"]) for s in STALE_RUNS)
    for run in unfinished:
        run_jobs = _rows(engine, select(jobs).where(jobs.c.run_gitid == run.gitid,
                                                    jobs.c.run_attempt == run.run_attempt))
        assert run.endtime is None and run.conclusion is None and run_jobs
        if run.status in QUEUED_STATUSES:  # nothing has started yet
            assert run.starttime is None
            assert all(j.status == "queued" and j.starttime is None and j.runner_name is None for j in run_jobs)
        else:
            assert run.starttime is not None and any(j.status == "in_progress" for j in run_jobs)
    # Some running build is partly done: a finished job beside an unfinished one.
    assert any(
        {j.status for j in _rows(engine, select(jobs).where(jobs.c.run_gitid == run.gitid))} >= {"completed", "in_progress"}
        for run in active if run.status == "in_progress"
    )


def test_failures_have_a_failing_job_and_step(demo):
    engine, _ = demo
    failed_jobs = _rows(engine, select(jobs.c.id, jobs.c.conclusion).where(jobs.c.conclusion.in_(FAILED)))
    assert failed_jobs
    for job_id, _ in failed_jobs:
        failing = _rows(engine, select(steps.c.number).where(steps.c.job == job_id, steps.c.conclusion == "failure"))
        assert len(failing) == 1, job_id
    for gitid, attempt, conclusion in _rows(engine, select(runattempts.c.gitid, runattempts.c.attempt,
                                                           runattempts.c.conclusion)
                                            .where(runattempts.c.conclusion.in_(("failure", "timed_out")))):
        job_conclusions = {c for (c,) in _rows(engine, select(jobs.c.conclusion).where(
            jobs.c.run_gitid == gitid, jobs.c.run_attempt == attempt))}
        assert conclusion in job_conclusions, gitid


def test_failure_rate_and_every_kind_of_ending(demo):
    engine, _ = demo
    ended = dict(_rows(engine, select(workflowruns.c.conclusion, func.count()).group_by(workflowruns.c.conclusion)))
    decisive = sum(n for c, n in ended.items() if c in DECISIVE)
    failed = sum(n for c, n in ended.items() if c in FAILED)
    assert 0.05 <= failed / decisive <= 0.15
    for conclusion in ("timed_out", "cancelled", "skipped", "startup_failure"):
        assert ended.get(conclusion, 0) >= 1, conclusion
    # Same failures repeat: the most common failing workflow/job/step has failed on many commits.
    groups = _rows(engine, select(jobs.c.workflow_name, jobs.c.name, steps.c.name, func.count(distinct(jobs.c.head_sha)))
                   .join(steps, steps.c.job == jobs.c.id).where(steps.c.conclusion == "failure")
                   .group_by(jobs.c.repo, jobs.c.workflow_name, jobs.c.name, steps.c.name))
    assert max(n for *_, n in groups) >= 10


def test_superseded_pull_request_runs_are_cancelled(demo):
    engine, _ = demo
    cancelled = _rows(engine, select(workflowruns.c.repo, branches.c.name, commits.c.time, workflowruns.c.endtime)
                      .join(branches, branches.c.id == workflowruns.c.branch)
                      .join(commits, commits.c.id == workflowruns.c.commitid)
                      .where(workflowruns.c.conclusion == "cancelled", workflowruns.c.event == "pull_request"))
    superseded = 0
    for repo, branch, time, endtime in cancelled:
        newer = _scalar(engine, select(func.min(commits.c.time)).join(workflowruns, workflowruns.c.commitid == commits.c.id)
                        .join(branches, branches.c.id == workflowruns.c.branch)
                        .where(workflowruns.c.repo == repo, branches.c.name == branch, commits.c.time > time))
        superseded += newer is not None and newer <= endtime
    assert superseded >= 10


def test_durations_and_queues_look_like_github(demo):
    engine, _ = demo

    def median_runtime(repo, workflow):
        values = sorted(v for (v,) in _rows(engine, select(workflowruns.c.runtime).where(
            workflowruns.c.repo == repo, workflowruns.c.archivedworkflowname == workflow,
            workflowruns.c.conclusion == "success")))
        return values[len(values) // 2] / 60

    lint, ci, e2e = (median_runtime("acme/webapp", w) for w in ("Lint", "CI", "E2E"))
    assert 0.5 < lint < 3 < 5 < ci < 13 < e2e < 30
    started = _rows(engine, select(jobs.c.createtime, jobs.c.starttime).where(jobs.c.starttime.is_not(None)))
    assert all(start >= created for created, start in started)

    def median_queue(hours):
        values = sorted(s - c for c, s in started
                        if int(c // 3600 % 24) in hours and int((c // 86400 + 3) % 7) < 5)  # weekdays
        return values[len(values) // 2]

    assert median_queue(range(9, 17)) > 1.5 * median_queue(range(0, 5))  # busier in working hours
    assert max(s - c for c, s in started) > 10 * 60  # and now and then a long wait


def test_ids_urls_and_jobs_are_github_shaped(demo):
    engine, _ = demo
    for run in _rows(engine, select(workflowruns)):
        assert run.gitid > 9_000_000_000
        assert run.url == f"https://github.com/{run.repo}/actions/runs/{run.gitid}"
    for job in _rows(engine, select(jobs.c.gitid, jobs.c.repo, jobs.c.run_gitid, jobs.c.url, jobs.c.labels,
                                    jobs.c.status, jobs.c.runner_name, jobs.c.starttime)):
        assert job.gitid > 9_000_000_000 and job.url == f"https://github.com/{job.repo}/actions/runs/{job.run_gitid}/job/{job.gitid}"
        assert json.loads(job.labels)
        assert (job.runner_name is not None) == (job.starttime is not None)
    for wf in _rows(engine, select(workflows)):
        assert re.fullmatch(rf"https://github\.com/{wf.repo}/actions/workflows/[a-z0-9]+\.yml", wf.url)
    ci_jobs = {name for (name,) in _rows(engine, select(jobs.c.name).distinct().where(
        jobs.c.repo == "acme/api", jobs.c.workflow_name == "CI"))}
    assert ci_jobs == {"build", "test (ubuntu-latest)", "test (windows-latest)", "lint"}
    job_id = _scalar(engine, select(jobs.c.id).where(jobs.c.conclusion == "success", jobs.c.name == "build"))
    numbered = _rows(engine, select(steps.c.number, steps.c.name).where(steps.c.job == job_id).order_by(steps.c.number))
    assert numbered[0][1] == "Set up job" and numbered[-1][1] == "Complete job"
    assert numbered[-1][0] > len(numbered)  # step numbers jump, like GitHub's


def test_commits_authors_and_branches_are_realistic(demo):
    engine, _ = demo
    messages = [m for (m,) in _rows(engine, select(commits.c.message))]
    titles = [m.split("\n", 1)[0] for m in messages]
    conventional = re.compile(r"^(feat|fix|chore|refactor|docs|test|perf|ci|build)(\([\w-]+\))?: ")
    assert sum(bool(conventional.match(t)) for t in titles) > 0.6 * len(titles)
    assert sum("\n" in m for m in messages) > 0.1 * len(messages)
    assert any('"' in m and "," in m.split("\n", 1)[0] for m in messages)
    authors = {a for (a,) in _rows(engine, select(commits.c.author).distinct())}
    assert {"octocat", "mona-lisa", "hubot", "dependabot[bot]"} <= authors
    names = {(repo, name) for repo, name in _rows(engine, select(branches.c.repo, branches.c.name))}
    assert ("acme/mobile", "master") in names and len(names) > 50
    assert any(name.startswith("dependabot/") for _, name in names)
    assert _scalar(engine, select(func.count()).where(branches.c.deletetime.is_not(None))) > 0
    events = {e for (e,) in _rows(engine, select(workflowruns.c.event).distinct())}
    assert events == {"push", "pull_request", "schedule", "workflow_dispatch"}
