"""`ingest.parse` on every GitHub example payload we take."""
import copy
import dataclasses

import pytest

from domain import records as r
from ingest.parse import PayloadError, parse
from ingest.times import epoch
from tests.helpers import fixture_json, webhook_fixtures


def _event(path):
    return path.split("/")[0]


@pytest.mark.parametrize("path", webhook_fixtures())
def test_every_fixture_parses(path):
    payload = fixture_json(path)
    parsed = parse(_event(path), payload)
    assert parsed.event == _event(path)
    assert parsed.action == payload.get("action")
    if "repository" in payload and not parsed.ignored:
        assert parsed.repo == payload["repository"]["full_name"]
        assert parsed.records[0] == r.Repo(
            payload["repository"]["full_name"], payload["repository"].get("default_branch"),
            payload["repository"]["html_url"])
    if _event(path) in ("check_run", "check_suite"):
        assert parsed.ignored and parsed.records == []


@pytest.mark.parametrize("path", webhook_fixtures("workflow_run"))
def test_workflow_run_record(path):
    payload = fixture_json(path)
    run_json = payload["workflow_run"]
    parsed = parse("workflow_run", payload)
    (run,) = [x for x in parsed.records if isinstance(x, r.Run)]
    (workflow,) = [x for x in parsed.records if isinstance(x, r.Workflow)]
    assert run.gitid == run_json["id"] and run.attempt == run_json["run_attempt"]
    assert run.status == run_json["status"] and run.conclusion == run_json["conclusion"]
    assert run.createtime == epoch(run_json["created_at"])
    assert run.author == run_json["actor"]["login"]
    # The examples have name "": the workflow's own name stands in.
    assert run.workflow == workflow.name == payload["workflow"]["name"] != ""
    assert workflow.gitid == run_json["workflow_id"]
    if run_json["status"] == "completed":
        assert run.endtime == epoch(run_json["updated_at"])
        assert run.starttime == epoch(run_json["run_started_at"])
        # GitHub's example has updated_at before run_started_at: never negative.
        assert run.runtime == max(0.0, run.endtime - run.starttime)
        assert run.queuetime == max(0.0, run.starttime - run.createtime)
    else:  # a queued run has not started, whatever run_started_at says
        assert run.starttime is None and run.queuetime is None and run.endtime is None
    commits = [x for x in parsed.records if isinstance(x, r.Commit)]
    assert commits[0].hash == run_json["head_sha"]
    assert commits[0].message == run_json["head_commit"]["message"]


@pytest.mark.parametrize("path", webhook_fixtures("workflow_job"))
def test_workflow_job_record(path):
    payload = fixture_json(path)
    job_json = payload["workflow_job"]
    (job,) = [x for x in parse("workflow_job", payload).records if isinstance(x, r.Job)]
    assert (job.gitid, job.run_gitid, job.run_attempt) == (job_json["id"], job_json["run_id"], job_json["run_attempt"])
    assert job.status == job_json["status"] and job.labels == tuple(job_json["labels"])
    assert job.createtime == epoch(job_json["created_at"])
    if job_json["status"] in ("queued", "waiting"):
        # started_at is set on a queued job; it is not a start.
        assert job_json["started_at"] is not None
        assert job.starttime is None and job.queuetime is None
    else:
        assert job.starttime == epoch(job_json["started_at"])
        assert job.queuetime == job.starttime - job.createtime
    assert [s.number for s in job.steps] == [s["number"] for s in job_json["steps"]]


def test_failed_job_keeps_its_failing_step():
    job = parse("workflow_job", fixture_json("workflow_job/completed.failure.with-organization.payload.json")).records[-1]
    failing = [s for s in job.steps if s.conclusion == "failure"]
    assert [(s.number, s.name) for s in failing] == [(8, "Run yarn run format-check")]
    assert job.conclusion == "failure" and job.runtime == 198.0


@pytest.mark.parametrize("path", webhook_fixtures("push"))
def test_push(path):
    payload = fixture_json(path)
    parsed = parse("push", payload)
    if payload["ref"].startswith("refs/tags/"):
        assert parsed.ignored == "tag push"
        return
    branch = [x for x in parsed.records if isinstance(x, r.Branch)]
    assert branch[0].name == payload["ref"].removeprefix("refs/heads/") and not branch[0].deleted
    hashes = [x.hash for x in parsed.records if isinstance(x, r.Commit)]
    assert hashes == [c["id"] for c in payload["commits"]]


@pytest.mark.parametrize("path", webhook_fixtures("create") + webhook_fixtures("delete"))
def test_tag_refs_are_ignored(path):
    assert "tag" in parse(_event(path), fixture_json(path)).ignored


def test_branch_create_and_delete():
    payload = copy.deepcopy(fixture_json("create/payload.json"))
    payload.update(ref="feature/x", ref_type="branch")
    (branch,) = [x for x in parse("create", payload).records if isinstance(x, r.Branch)]
    assert (branch.name, branch.deleted) == ("feature/x", False)
    (branch,) = [x for x in parse("delete", payload).records if isinstance(x, r.Branch)]
    assert branch.deleted


def test_org_ping_has_no_repository():
    parsed = parse("ping", fixture_json("ping/with-organization.payload.json"))
    assert parsed.repo is None and parsed.records == []


def test_unknown_event_is_ignored_not_an_error():
    assert parse("star", {"action": "created"}).ignored


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda p: p.pop("workflow_run"), "workflow_run: expected an object"),
        (lambda p: p["workflow_run"].update(id="12"), "workflow_run.id"),
        (lambda p: p["workflow_run"].update(id=True), "workflow_run.id"),
        (lambda p: p["workflow_run"].update(status="exploded"), "unknown status"),
        (lambda p: p["workflow_run"].update(created_at="9999-01-01T00:00:00Z"), "out of range"),
        (lambda p: p["workflow_run"].update(created_at=None), "missing time"),
        (lambda p: p["repository"].update(full_name=7), "repository.full_name"),
    ],
)
def test_malformed_workflow_run_says_why(mutate, message):
    payload = copy.deepcopy(fixture_json("workflow_run/completed.payload.json"))
    mutate(payload)
    with pytest.raises(PayloadError, match=message):
        parse("workflow_run", payload)


def test_not_an_object():
    with pytest.raises(PayloadError):
        parse("push", [1, 2])


def test_a_runs_pull_requests_and_a_jobs_runner_group_are_read():
    payload = fixture_json("workflow_run/completed.with-pull-requests.payload.json")
    [run] = [item for item in parse("workflow_run", payload).records if isinstance(item, r.Run)]
    assert run.pull_requests == (2,)
    payload["workflow_run"]["pull_requests"] = [{"number": "2"}]
    with pytest.raises(PayloadError, match=r"workflow_run.pull_requests\[0\].number"):
        parse("workflow_run", payload)
    job = fixture_json("workflow_job/completed.failure.with-organization.payload.json")
    [record] = [item for item in parse("workflow_job", job).records if isinstance(item, r.Job)]
    assert record.runner_group == "GitHub Actions"


def test_every_reports_pull_requests_are_kept_whichever_report_wins(tmp_path):
    from sqlalchemy import select

    from store.schema import run_pulls
    from tests.builders import commit, run, store_with

    first = run(7, sha="c1", status="in_progress")
    last = run(7, sha="c1")
    engine = store_with(tmp_path / "b.db", [commit("c1"), dataclasses.replace(last, pull_requests=(5,)),
                                            dataclasses.replace(first, pull_requests=(4, 5))])
    with engine.connect() as conn:
        assert conn.execute(select(run_pulls.c.run, run_pulls.c.number, run_pulls.c.repo)
                            .order_by(run_pulls.c.number)).all() == [(7, 4, "o/app"), (7, 5, "o/app")]
    engine.dispose()
