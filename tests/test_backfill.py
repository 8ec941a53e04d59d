"""The REST backfill in-process: parsing, paging, windows, merging with webhooks, rate limits."""
import re

import pytest
from sqlalchemy import func, select

from domain import records as r
from ingest.backfill import Backfill
from ingest.delivery import decode, record
from ingest.parse import PayloadError
from ingest.rest import branch_record, commit_record, job_records, run_records, workflow_record
from ingest.restclient import ApiError, Client, links, rate_limit_wait
from ingest.times import epoch
from store.engine import writer_options
from store.schema import commits, runattempts, workflowruns, workflows
from tests.fakegithub import FakeGitHub
from tests.helpers import fixture_bytes, fixture_json, snapshot

pytestmark = pytest.mark.both_stores


def client_for(fake, **kw):
    return Client(fake.url, "T", retries=0, **kw)


# --- pure: REST JSON -> records ---------------------------------------------

def test_rest_run_example_becomes_the_same_records_as_a_webhook_run():
    run = fixture_json("rest/actions/list-workflow-runs-for-repo.json")["workflow_runs"][0]
    workflow, commit, branch, latest = run_records(run, "octo-org/octo-repo")
    assert workflow == r.Workflow("octo-org/octo-repo", "Build", run["workflow_url"], 159038,
                                  ".github/workflows/build.yml@main")
    assert (commit.hash, commit.message) == ("acb5820ced9479c074f688cc328bf03f341a511d", "Create linter.yaml")
    assert branch == r.Branch("octo-org/octo-repo", "master")
    assert (latest.gitid, latest.attempt, latest.status, latest.conclusion, latest.starttime) == (
        30433642, 1, "queued", None, None)
    assert latest.createtime == epoch("2020-01-22T19:33:08Z")
    webhook = fixture_json("workflow_run/completed.payload.json")
    assert run_records(webhook["workflow_run"], "octo-org/octo-repo", webhook["workflow"]) == [
        x for x in decode("workflow_run", fixture_bytes("workflow_run/completed.payload.json")).records
        if not isinstance(x, r.Repo)
    ]


def test_rest_job_example_lacks_created_at_and_run_attempt():
    (job,) = job_records(fixture_json("rest/actions/list-jobs-for-workflow-run.json")["jobs"], "o/r")
    assert (job.gitid, job.run_gitid, job.run_attempt) == (399444496, 29679449, 1)
    assert job.createtime == job.starttime == epoch("2020-01-20T17:42:40Z")
    assert job.runtime == 119.0
    assert [s.number for s in job.steps][-2:] == [16, 17]
    assert job.steps[0].starttime == epoch("2020-01-20T17:42:40Z")  # -08:00 offset read right
    assert job.labels == ("self-hosted", "foo", "bar")


def test_rest_commit_branch_and_workflow_examples():
    item = fixture_json("rest/repos/list-commits.json")[0]
    assert commit_record(item, "o/r") == r.Commit("o/r", "6dcb09b5b57875f334f61aebed695e2e4193db5e", "octocat",
                                                  "Fix all the bugs", epoch("2011-04-14T16:00:49Z"))
    assert branch_record(fixture_json("rest/repos/list-branches.json")[0], "o/r") == r.Branch("o/r", "master")
    ci = fixture_json("rest/actions/list-repo-workflows.json")["workflows"][0]
    assert workflow_record(ci, "o/r") == r.Workflow("o/r", "CI", ci["html_url"], 161335,
                                                    ".github/workflows/blank.yaml")
    with pytest.raises(PayloadError):
        commit_record({"sha": "abc", "commit": {}}, "o/r")
    with pytest.raises(PayloadError):
        run_records({"id": 1, "status": "bogus"}, "o/r")


def test_link_header_and_rate_limit_arithmetic():
    header = '<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=9>; rel="last"'
    assert links(header) == {"next": "https://api.github.com/x?page=2", "last": "https://api.github.com/x?page=9"}
    assert links(None) == {}
    primary = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1000"}
    assert rate_limit_wait(403, primary, "API rate limit exceeded", now=990.0) == 11.0
    assert rate_limit_wait(429, {"retry-after": "30"}, "", now=0) == 30.0
    assert rate_limit_wait(403, {}, "You have exceeded a secondary rate limit", now=0) == 60.0
    assert rate_limit_wait(403, {"x-ratelimit-remaining": "12"}, "Resource not accessible", now=0) is None
    assert rate_limit_wait(500, primary, "", now=0) is None


# --- against the fake API -----------------------------------------------------

def test_client_waits_on_a_rate_limit_and_says_so(capsys):
    slept = []
    with FakeGitHub() as fake:
        fake.rate_limit_once = {"/repos/owner/repo"}
        client = client_for(fake, sleep=slept.append)
        _headers, repo = client.get("/repos/owner/repo")
    assert repo["full_name"] == "owner/repo"
    assert len(slept) == 1 and 1.0 <= slept[0] <= 2.5  # reset is now+1 s, whole seconds
    assert re.search(r"rate limited by GitHub \(403\): waiting [12] s until reset", capsys.readouterr().err)
    assert fake.requests == ["/repos/owner/repo", "/repos/owner/repo"]


def test_client_follows_every_page_and_reports_errors():
    with FakeGitHub(runs=7, page_size=2) as fake:
        client = client_for(fake)
        runs = list(client.items("/repos/owner/repo/actions/runs", "workflow_runs"))
        assert sorted(run["id"] for run in runs) == list(range(5000, 5007))
        assert fake.count("/actions/runs?") == 4
        with pytest.raises(ApiError) as missing:
            client.get("/repos/owner/repo/actions/runs/1")
        assert missing.value.status == 404


def test_listing_windows_are_split_when_github_would_cut_them(engine):
    with FakeGitHub(runs=9, cap=4) as fake:
        stats = Backfill(engine, client_for(fake), listing_cap=4).repo("owner/repo")
        windows = {r for r in fake.requests if "created=" in r and "&page=" not in r}
    assert stats.runs == 9
    with engine.connect() as conn:
        assert sorted(conn.execute(select(workflowruns.c.gitid)).scalars()) == list(range(5000, 5009))
    assert len(windows) > 2  # the open window was split into dated ones
    assert any("..2024-03-" in w for w in windows)


def test_a_crash_loses_at_most_one_batch_and_keeps_the_oldest_runs(engine):
    with FakeGitHub(runs=9) as fake:
        fake.fail_after = 22
        with pytest.raises(ApiError):
            Backfill(engine, client_for(fake), batch=2).repo("owner/repo")
        fetched = {int(r.split("/")[6]) for r in fake.requests[:22] if "/jobs" in r}
    with engine.connect() as conn:
        stored = sorted(conn.execute(select(workflowruns.c.gitid)).scalars())
    assert stored == list(range(5000, 5000 + len(stored)))  # a prefix, oldest first
    assert 2 <= len(stored) and len(fetched) - len(stored) < 2


def test_a_run_stored_by_webhook_then_backfilled_is_one_row(engine):
    webhook = fixture_json("workflow_run/completed.payload.json")
    queued = fixture_bytes("workflow_run/requested.payload.json")
    with engine.execution_options(**writer_options()).begin() as conn:
        record(conn, "g-1", "workflow_run", queued, decode("workflow_run", queued))
    with FakeGitHub("octo-org/octo-repo", runs=3) as fake:
        fake.default_branch = webhook["repository"]["default_branch"]
        fake.workflows.append(webhook["workflow"])
        fake.put_run([webhook["workflow_run"]])
        stats = Backfill(engine, client_for(fake)).repo("octo-org/octo-repo", since=0)
    assert stats.runs == 4
    with engine.connect() as conn:
        rows = conn.execute(select(workflowruns).where(workflowruns.c.gitid == 289782451)).mappings().all()
        assert len(rows) == 1 and (rows[0]["status"], rows[0]["conclusion"]) == ("completed", "success")
        assert conn.execute(select(func.count()).select_from(runattempts)
                            .where(runattempts.c.gitid == 289782451)).scalar() == 1
        sha = webhook["workflow_run"]["head_sha"]
        assert conn.execute(select(func.count()).select_from(commits).where(commits.c.hash == sha)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(workflows).where(workflows.c.name == "test")).scalar() == 1
    # The completed webhook arriving after the backfill changes nothing.
    before = snapshot(engine)
    body = fixture_bytes("workflow_run/completed.payload.json")
    with engine.execution_options(**writer_options()).begin() as conn:
        outcome = record(conn, "g-2", "workflow_run", body, decode("workflow_run", body))
    assert outcome.outcome == "processed" and outcome.changes == []
    assert snapshot(engine) == before


def test_runs_already_stored_complete_are_not_fetched_again(engine):
    with FakeGitHub(runs=6) as fake:
        Backfill(engine, client_for(fake)).repo("owner/repo")
        before, start = snapshot(engine), len(fake.requests)
        stats = Backfill(engine, client_for(fake)).repo("owner/repo", since=0)  # re-sweep everything
        again = fake.requests[start:]
    assert (stats.runs, stats.skipped) == (0, 6)
    assert not [x for x in again if "/jobs" in x or "/attempts/" in x]
    assert snapshot(engine) == before


def test_a_run_still_in_progress_is_fetched_again_until_completed(engine):
    with FakeGitHub(runs=2) as fake:
        fake.attempts[5001][-1].update(status="in_progress", conclusion=None)
        for job in fake.jobs[5001]:
            job.update(status="in_progress", conclusion=None, completed_at=None)
        Backfill(engine, client_for(fake)).repo("owner/repo")
        fake.add_run(1)  # now it finished
        stats = Backfill(engine, client_for(fake)).repo("owner/repo")
    assert (stats.runs, stats.skipped) == (1, 0)
    with engine.connect() as conn:
        assert conn.execute(select(workflowruns.c.status).where(workflowruns.c.gitid == 5001)).scalar() \
            == "completed"
