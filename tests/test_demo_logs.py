"""`ingest.demo_logs`: the demo's failed jobs get realistic logs, run through the real extractor into a real store."""
import zlib
from collections import Counter

import pytest
from sqlalchemy import select

from domain.state import FAILED
from ingest.demo import FLAKY_EXAMPLE, RED_STREAK, _History, demo_facts, populate
from ingest.demo_catalog import CAUSES, REPOS
from failures.extract import extract, job_scope
from failures.rules import load
from ingest.demo_logs import _Job, choose, failed_jobs, render
from store.engine import make_engine
from store.migrate import upgrade
from store.schema import branches, commits, failure_lines, job_logs, jobs, workflowruns

NOW = 1_750_000_000.0  # the time tests/test_demo.py uses: the same history every run
RUNS = 400  # tests/conftest.py's DEMO_RUNS


def _build(path, seed=1):
    engine = make_engine(str(path))
    upgrade(engine)
    populate(engine, seed=seed, now=NOW, runs=RUNS)
    return engine


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    engine = _build(tmp_path_factory.mktemp("demo_logs") / "builds.db")
    yield engine
    engine.dispose()


def _rows(engine, query):
    with engine.connect() as conn:
        return conn.execute(query).all()


def _failed(engine):
    """job gitid -> (repo, workflow, name, conclusion, sha, branch) of every job that completed failed."""
    return {row[0]: row[1:] for row in _rows(engine, select(
        jobs.c.gitid, jobs.c.repo, jobs.c.workflow_name, jobs.c.name, jobs.c.conclusion, jobs.c.head_sha,
        jobs.c.head_branch).where(jobs.c.status == "completed", jobs.c.conclusion.in_(FAILED)))}


def _primary(engine):
    """job gitid -> its primary failure line (ordinal 0)."""
    return {row.job: row for row in _rows(engine, select(failure_lines).where(failure_lines.c.ordinal == 0))}


def test_every_failed_job_has_its_log_extracted_with_a_failure_line(demo):
    failed = _failed(demo)
    assert len(failed) >= 30
    logs = {row.job: row for row in _rows(demo, select(job_logs))}
    assert set(logs) == set(failed)
    for job, row in logs.items():
        assert (row.state, row.source, row.error) == ("done", "demo", None), job
        assert row.log_bytes > 2000 and not row.truncated
        assert row.excerpt and zlib.decompress(row.excerpt).decode()
    lines = Counter(job for (job,) in _rows(demo, select(failure_lines.c.job)))
    assert set(lines) == set(failed)  # at least one line each


def test_classifier_coverage_on_the_demo_is_at_least_90_percent(demo):
    failed, primary = _failed(demo), _primary(demo)
    matched = sum(1 for job in failed if job in primary and not primary[job].fallback)
    unmatched = sorted({(failed[job][:3], primary[job].text) for job in failed if primary[job].fallback})
    print(f"coverage {matched}/{len(failed)} = {matched / len(failed):.1%}; fallback lines: {unmatched}")
    assert matched >= 0.9 * len(failed)


def test_the_red_streak_shares_one_fingerprint_and_its_logs_differ(demo):
    failed, primary = _failed(demo), _primary(demo)
    shas = [sha for (sha,) in _rows(demo, select(commits.c.hash)
                                    .join(workflowruns, workflowruns.c.commitid == commits.c.id)
                                    .join(branches, branches.c.id == workflowruns.c.branch)
                                    .where(workflowruns.c.repo == RED_STREAK["repo"],
                                           branches.c.name == RED_STREAK["branch"],
                                           workflowruns.c.archivedworkflowname == RED_STREAK["workflow"])
                                    .order_by(commits.c.time.desc()).limit(RED_STREAK["length"]))]
    assert RED_STREAK["first_bad_sha"] in shas
    streak = [job for job, (repo, wf, name, _, sha, _) in failed.items()
              if repo == RED_STREAK["repo"] and wf == RED_STREAK["workflow"] and sha in shas]
    assert len(streak) == RED_STREAK["length"] + 1  # the first bad commit was re-run once
    assert {failed[job][2] for job in streak} == {RED_STREAK["job"]}
    prints = {primary[job].fingerprint for job in streak}
    assert len(prints) == 1
    line = primary[streak[0]]
    assert line._mapping["class"] == "test"
    assert "middleware" in f"{line.text} {line.path}"  # the story's cause: the token refresh moved into middleware
    # ...while the logs themselves differ (times, durations, line numbers): the fingerprint did the grouping.
    excerpts = {row.excerpt for row in _rows(demo, select(job_logs.c.excerpt).where(job_logs.c.job.in_(streak)))}
    assert len(excerpts) == len(streak)


def test_flaky_timeout_and_infra_failures_appear(demo):
    failed, primary = _failed(demo), _primary(demo)
    classes = Counter(primary[job]._mapping["class"] for job in failed)
    assert classes["timeout"] >= 1 and classes["infra"] >= 1 and classes["test"] >= 10, classes
    for job, (_, _, _, conclusion, _, _) in failed.items():
        if conclusion == "timed_out":
            assert primary[job]._mapping["class"] == "timeout", primary[job].text
    # Flaky jobs rotate among a few causes rather than repeating one.
    flaky = {primary[job].fingerprint for job, (repo, wf, name, *_) in failed.items()
             if (repo, wf, name) == (FLAKY_EXAMPLE["repo"], FLAKY_EXAMPLE["workflow"], FLAKY_EXAMPLE["job"])}
    assert len(flaky) >= 2
    # The story's flaky run: its failed attempt has a line, and the same job passed on attempt 2.
    run = demo_facts(demo)["flaky_example"]["run_gitid"]
    (job,) = [gitid for (gitid,) in _rows(demo, select(jobs.c.gitid).where(
        jobs.c.run_gitid == run, jobs.c.run_attempt == 1, jobs.c.conclusion == "failure"))]
    assert primary[job]._mapping["class"] in ("test", "infra")


def test_the_same_seed_gives_the_same_lines_and_another_seed_other_ones(demo, tmp_path):
    def lines(engine):
        return sorted(tuple(row) for row in _rows(engine, select(failure_lines))) + \
            sorted(tuple(row) for row in _rows(engine, select(job_logs.c.job, job_logs.c.excerpt, job_logs.c.log_bytes)))

    again = _build(tmp_path / "again.db")
    other = _build(tmp_path / "other.db", seed=2)
    try:
        assert lines(again) == lines(demo)
        assert lines(other) != lines(demo)
    finally:
        again.dispose()
        other.dispose()


def test_every_failure_mode_has_causes_of_its_kind():
    for repo in REPOS:
        for wf in repo.workflows:
            for job, step, kind, _ in wf.modes:
                causes = CAUSES[(repo.name, wf.name, job, step)]
                if kind != "timeout":  # a timeout shows GitHub's message, whatever the tool was doing
                    assert sum(c.weight for c in causes if c.kind == kind) > 0, (repo.name, wf.name, job, step, kind)


def test_logs_look_like_github_logs():
    history = _History(1, NOW)
    history.generate(RUNS)
    history.simulate()
    history.records()
    failed = failed_jobs(history, 1, NOW)
    timed_out = next(job for job in failed if job.kind == "timeout")
    text, annotations = render(timed_out, choose(timed_out), 1)
    lines = text.splitlines()
    stamps = [line[:28] for line in lines]
    assert all(s[4] == "-" and s[10] == "T" and s[27] == "Z" and line[28] == " " for s, line in zip(stamps, lines))
    assert stamps == sorted(stamps)  # time goes forward
    assert lines[0].endswith("Current runner version: '2.321.0'") and "##[group]Run actions/checkout@v4" in text
    assert lines[-1].endswith("Cleaning up orphan processes")
    assert "has exceeded the maximum execution time of 30 minutes." in text and "The operation was canceled." in text
    assert {a["message"] for a in annotations} >= {"The operation was canceled."}
    # Every failure that ends with the tool's exit code says so, as GitHub does.
    for job in failed[:20]:
        text, annotations = render(job, choose(job), 1)
        assert "##[error]" in text or any("lost communication" in a["message"] for a in annotations)


def _jobs_of_every_cause():
    """A minimal failed job for each cause of each failure mode: set up, the failing step, complete."""
    defs = {(repo.name, wf.name, jd.name): (jd, wf) for repo in REPOS for wf in repo.workflows for jd in wf.jobs}
    for (repo, workflow, name, step), causes in CAUSES.items():
        jd, wf = defs[(repo, workflow, name)]
        t = NOW - 3600
        steps = [[1, "Set up job", t, t + 2, "success"], [2, "Checkout", t + 2, t + 5, "success"],
                 [3, step, t + 5, t + 95, "failure"], [5, "Post Checkout", t + 95, t + 96, "success"],
                 [6, "Complete job", t + 96, t + 97, "success"]]
        for cause in causes:
            job = _Job(25_000_000_000 + len(cause.name), repo, workflow, name, jd.labels,
                       "perf-runner-01" if "self-hosted" in jd.labels else "GitHub Actions 7", "ab" * 20, "main",
                       steps, cause.kind, step, wf.timeout, cause.name)
            yield job, cause


def test_every_cause_renders_a_log_the_extractor_reads():
    rules = load()
    seen = set()
    for job, cause in _jobs_of_every_cause():
        text, annotations = render(job, cause, 1)
        assert text.endswith("Cleaning up orphan processes\n") or cause.arg.get("end") == "lost", cause.name
        scope = job_scope(job.repo, job.workflow, job.name)
        assert extract(text, rules, annotations=annotations, job_scope=scope).lines, cause.name
        seen.add(cause.name)
    assert len(seen) >= 50
