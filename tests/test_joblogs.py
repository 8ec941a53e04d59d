"""Capture (ingest/joblogs.py): failed jobs' annotations and logs from the fake GitHub into failure lines.

Real SQLite stores, the real extractor and rules, the fake API and its second server (the "blob
storage" GitHub's 302 points to), and for ingest a real running server.
"""
import json
import os
import re
import subprocess
import sys
import time

import pytest
from sqlalchemy import func, select

from dashapp import create_app
from dashapp.config import Config
from failures.extract import extract, job_scope
from failures.rules import load
from ingest import joblogs
from ingest.backfill import Backfill
from ingest.joblogs import Fetcher
from ingest.restclient import Client
from live.messages import outgoing
from store import joblogs as queue
from store.engine import make_engine
from store.schema import deliveries, failure_lines, job_logs, jobs
from tests.fakegithub import ANNOTATIONS, FakeGitHub
from tests.helpers import ROOT, SECRET, LiveServer, deliver, fixture_bytes, post

RULES = load()
REPO = "owner/repo"
# FakeGitHub(runs=2): run 5001 has two attempts, both failed: its four jobs (build, test of each attempt).
FAILED = [500121, 500120, 500111, 500110]  # newest first, as the fetcher takes them
NEWEST = FAILED[0]
FAILURE_ANNOTATION = {  # GitHub's annotation of a failed step, in the example's shape
    "path": ".github", "start_line": 1, "end_line": 1, "start_column": None, "end_column": None,
    "annotation_level": "failure", "title": "", "message": "Process completed with exit code 1.",
    "raw_details": "", "blob_href": "https://github.com/owner/repo/blob/abc/.github",
}


@pytest.fixture
def fake():
    with FakeGitHub(runs=2) as fake:
        yield fake


@pytest.fixture
def stored(engine, fake):
    """The fake's runs backfilled (no logs): its failed jobs wait in the capture queue."""
    Backfill(engine, Client(fake.url, "T", retries=0)).repo(REPO)
    assert [job for job, _repo, _tries in due(engine)] == FAILED
    return engine


def due(engine, now=None):
    with engine.connect() as conn:
        return queue.due(conn, time.time() if now is None else now, 100)


def fetcher(engine, fake, **kw) -> Fetcher:
    return Fetcher(engine, token="T", api_url=fake.url, rules=RULES, **kw)


def row(engine, job) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(job_logs).where(job_logs.c.job == job)).mappings().one())


def lines(engine, job) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(failure_lines).where(failure_lines.c.job == job)
                                              .order_by(failure_lines.c.ordinal)).mappings()]


def wait_for(check, timeout=30.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- one pass ----------------------------------------------------------------------------------

def test_a_failed_jobs_lines_fingerprints_and_excerpt_land(stored, fake):
    annotations = ANNOTATIONS * 3 + [FAILURE_ANNOTATION]  # two pages of the fake's three
    fake.annotations[NEWEST] = annotations
    published = []
    assert fetcher(stored, fake, publish=published.append).run_once() == 4
    text = fake.log_text(NEWEST)
    saved = row(stored, NEWEST)
    assert (saved["state"], saved["source"], saved["log_bytes"], saved["truncated"], saved["error"]) == (
        "done", "log", len(text.encode()), 0, None)
    # What the stream gave is what the one-shot extraction of the whole log gives.
    with stored.connect() as conn:
        workflow, name = conn.execute(select(jobs.c.workflow_name, jobs.c.name).where(jobs.c.gitid == NEWEST)).one()
    expected = extract(text, RULES, annotations=annotations, job_scope=job_scope(REPO, workflow, name))
    got = lines(stored, NEWEST)
    assert [(x["rule"], x["class"], x["text"], x["fingerprint"], x["source"]) for x in got] == [
        (x.rule, x.klass, x.text, x.fingerprint, x.source) for x in expected.lines]
    primary = got[0]
    assert "test_parse_empty_body" in primary["text"] and primary["class"] == "test" and not primary["fallback"]
    assert re.fullmatch(r"[0-9a-f]{16}", primary["fingerprint"])
    with stored.connect() as conn:
        kept = queue.excerpt(conn, NEWEST)
    assert kept == expected.excerpt and "AssertionError: assert None == {}" in kept
    # The other failed jobs too; one live message per job, in the shape pages take.
    assert all(row(stored, job)["state"] == "done" and lines(stored, job) for job in FAILED)
    assert [m[0]["row"] for m in published][0] == {"gitid": NEWEST, "run_gitid": 5001, "attempt": 2, "repo": REPO}
    assert json.loads(outgoing(published[0][0]))["row"]["gitid"] == NEWEST
    # Annotations are paged (the fake serves 3 a page, as GitHub serves up to 100).
    assert fake.count(f"/check-runs/{NEWEST}/annotations") == 2


def test_the_token_goes_to_the_api_and_never_to_the_blob_storage(stored, fake):
    assert fetcher(stored, fake).run_once() == 4
    assert len(fake.blob_requests) == 4 and all("sig=" in r for r in fake.blob_requests)
    assert fake.blob_auth == []
    assert fake.auth == {"token T"} and fake.count("/logs") == 4


def test_a_rate_limit_pauses_every_pending_job_then_the_fetch_completes(stored, fake):
    fake.rate_limit_once = {f"/repos/{REPO}/actions/jobs/{NEWEST}/logs"}
    f = fetcher(stored, fake)
    assert f.run_once() == 0  # the first job hit the limit: nothing more is asked
    assert fake.count("/logs") == 1
    rows = [row(stored, job) for job in FAILED]
    assert {r["state"] for r in rows} == {"pending"} and {r["tries"] for r in rows} == {0}
    assert len({r["next_try"] for r in rows}) == 1 and rows[0]["next_try"] == f.paused_until > time.time()
    assert re.fullmatch(r"rate limited by GitHub until \d\d:\d\d:\d\d UTC", rows[0]["error"])
    assert due(stored) == []
    assert f.run_once() == 0 and fake.count("/logs") == 1  # paused: GitHub is not asked
    wait_for(lambda: time.time() >= f.paused_until, timeout=5, what="the reset")
    assert f.run_once() == 4
    assert all(row(stored, job)["state"] == "done" and row(stored, job)["error"] is None for job in FAILED)


def test_server_errors_are_retried_with_a_doubling_backoff(stored, fake):
    fake.fail_times = {f"/repos/{REPO}/actions/jobs/{job}/logs": 2 for job in FAILED}
    f = fetcher(stored, fake)
    t0 = time.time()
    assert f.run_once(now=t0) == 4
    first = row(stored, NEWEST)
    assert (first["state"], first["tries"], first["next_try"], first["error"]) == (
        "pending", 1, t0 + 30, "log: HTTP 500")
    assert f.run_once(now=t0 + 29) == 0  # not due before the backoff
    assert f.run_once(now=t0 + 31) == 4
    assert (row(stored, NEWEST)["tries"], row(stored, NEWEST)["next_try"]) == (2, t0 + 31 + 60)
    assert f.run_once(now=t0 + 31 + 59) == 0
    assert f.run_once(now=t0 + 31 + 61) == 4
    assert all(row(stored, job)["state"] == "done" and lines(stored, job) for job in FAILED)


def test_a_job_that_keeps_failing_is_given_up_after_the_tries(stored, fake):
    fake.fail_times = {f"/repos/{REPO}/actions/jobs/{NEWEST}/logs": 99}
    f = fetcher(stored, fake, tries=3, per_pass=1)
    t = time.time()
    for _ in range(3):
        assert f.run_once(now=t) == 1
        t = row(stored, NEWEST)["next_try"] + 1
    gave_up = row(stored, NEWEST)
    assert (gave_up["state"], gave_up["tries"], gave_up["error"]) == ("failed", 3, "log: HTTP 500")
    assert lines(stored, NEWEST) == [] and fake.count(f"/jobs/{NEWEST}/logs") == 3
    assert NEWEST not in [job for job, _r, _t in due(stored, now=t + 10 ** 6)]


def test_a_gone_log_is_gone_and_annotations_alone_still_give_lines(stored, fake):
    fake.gone = {NEWEST: 404, FAILED[1]: 410}
    fake.annotations[FAILED[1]] = [FAILURE_ANNOTATION]
    assert fetcher(stored, fake).run_once() == 4
    gone = row(stored, NEWEST)
    assert (gone["state"], gone["tries"]) == ("gone", 1) and "404" in gone["error"]
    assert lines(stored, NEWEST) == [] and fake.count(f"/jobs/{NEWEST}/logs") == 1
    only = row(stored, FAILED[1])
    assert (only["state"], only["source"], only["log_bytes"]) == ("done", "annotations", 0)
    assert [x["source"] for x in lines(stored, FAILED[1])] == ["annotation"]
    assert fake.blob_requests and not [r for r in fake.blob_requests if f"/{NEWEST}?" in r]


def test_fetching_a_job_twice_ends_with_the_same_rows(stored, fake):
    fake.annotations[NEWEST] = [FAILURE_ANNOTATION]
    f, now = fetcher(stored, fake), time.time()
    assert f.fetch(NEWEST, REPO, now=now) == joblogs.DONE
    first = (row(stored, NEWEST), lines(stored, NEWEST))
    assert f.fetch(NEWEST, REPO, now=now) == joblogs.DONE
    assert (row(stored, NEWEST), lines(stored, NEWEST)) == first


# --- a log that never ends ----------------------------------------------------------------------

def test_a_never_ending_log_is_cut_at_the_byte_cap(stored, fake):
    fake.endless[NEWEST] = 0.0
    f = fetcher(stored, fake, max_bytes=300_000, per_pass=1)
    assert f.run_once() == 1
    saved = row(stored, NEWEST)
    assert (saved["state"], saved["truncated"], saved["log_bytes"]) == ("done", 1, 300_000)
    with stored.connect() as conn:
        assert "of a log that never ends" in queue.excerpt(conn, NEWEST)  # its last lines are kept
    wait_for(lambda: fake.endless_open == 0, timeout=10, what="the blob storage to see the hang-up")


def test_a_never_ending_slow_log_is_cut_at_the_deadline(stored, fake):
    fake.endless[NEWEST] = 0.002
    f = fetcher(stored, fake, max_bytes=10 ** 9, read_seconds=1.0, per_pass=1)
    assert f.run_once() == 1
    saved = row(stored, NEWEST)
    assert (saved["state"], saved["truncated"]) == ("done", 1) and 0 < saved["log_bytes"] < 10 ** 9
    wait_for(lambda: fake.endless_open == 0, timeout=10, what="the blob storage to see the hang-up")


def test_ingest_goes_on_while_a_never_ending_log_is_read(tmp_path):
    """Must-show 1: deliveries posted while the fetcher reads a log that never ends are applied meanwhile."""
    from bench.deliveries import synthetic_deliveries

    body = fixture_bytes("workflow_job/completed.failure.with-organization.payload.json")
    job = json.loads(body)["workflow_job"]["id"]
    with FakeGitHub("Codertocat/Hello-World", runs=0) as fake:
        fake.endless[job] = 0.005
        app = create_app(Config.from_env({}, database_path=str(tmp_path / "live.db"), webhook_secret=SECRET,
                                         processor="thread", github_token="T", github_api_url=fake.url,
                                         log_read_seconds=12))
        services = app.server.extensions["buildmon"]
        try:
            assert services.fetcher is not None
            with LiveServer(app) as live:
                assert deliver(live, "workflow_job", body).status_code == 202
                wait_for(lambda: fake.endless_open == 1, what="the fetcher to read the log")
                items = synthetic_deliveries(60, seed=7)
                for event, guid, payload in items:
                    assert post(live.url, event, payload, guid=guid).status_code == 202
                services.settle(timeout=60)
                with services.engine.connect() as conn:
                    applied = conn.execute(select(func.count()).select_from(deliveries)
                                           .where(deliveries.c.outcome == "processed")).scalar()
                # All applied, and the log is still being read: ingest did not wait for it.
                assert applied == 1 + len(items)
                assert fake.endless_open == 1 and row(services.engine, job)["state"] == "pending"
                wait_for(lambda: row(services.engine, job)["state"] == "done", what="the read's deadline")
                saved = row(services.engine, job)
                assert saved["truncated"] == 1 and saved["log_bytes"] > 0
                assert fake.blob_auth == []
        finally:
            services.close()


# --- wiring --------------------------------------------------------------------------------------

def test_without_a_token_no_fetcher_runs_and_failed_jobs_stay_pending(server, services):
    assert services.fetcher is None and services.processor.lock.held
    body = fixture_bytes("workflow_job/completed.failure.with-organization.payload.json")
    assert deliver(server, "workflow_job", body).status_code == 202
    job = json.loads(body)["workflow_job"]["id"]
    assert row(services.engine, job)["state"] == "pending" and row(services.engine, job)["tries"] == 0


def test_without_a_token_the_start_says_failure_lines_need_one(db_path, caplog):
    caplog.set_level("WARNING", logger="dashapp.services")
    app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET, processor="thread"))
    try:
        assert app.server.extensions["buildmon"].fetcher is None
        assert "failure lines need GITHUB_TOKEN" in caplog.text
    finally:
        app.server.extensions["buildmon"].close()


def test_in_thread_mode_only_the_process_holding_the_processor_fetches(db_path, fake):
    config = Config.from_env({}, database_path=db_path, webhook_secret=SECRET, processor="thread",
                             github_token="T", github_api_url=fake.url)
    one, two = create_app(config), create_app(config)
    a, b = one.server.extensions["buildmon"], two.server.extensions["buildmon"]
    try:
        wait_for(lambda: a.processor.lock.held or b.processor.lock.held, what="a processor")
        assert [a.fetcher.active(), b.fetcher.active()].count(True) == 1
    finally:
        a.close()
        b.close()


def test_the_worker_process_fetches_beside_its_processor(stored, fake, db_path):
    env = dict(os.environ, DATABASE_PATH=db_path, GITHUB_TOKEN="T", GITHUB_API_URL=fake.url, LOG_LEVEL="INFO")
    worker = subprocess.Popen([sys.executable, "-m", "dashapp", "worker"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: not due(stored, now=time.time() + 10 ** 6) or worker.poll() is not None, timeout=60,
                 what="the worker to fetch the logs")
    finally:
        worker.terminate()
        _out, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err
    assert all(row(stored, job)["state"] == "done" and lines(stored, job) for job in FAILED)
    assert re.search(rf"job logs: fetched job {NEWEST} of {REPO} \([\d.]+ KB, \d+ lines", err)
    assert fake.blob_auth == []


def test_a_bad_rules_file_stops_the_start(db_path, tmp_path):
    from failures.rules import RulesError

    bad = tmp_path / "rules.toml"
    bad.write_text("[[rule]\nname = \n")
    with pytest.raises(RulesError):
        create_app(Config.from_env({}, database_path=db_path, failure_rules=str(bad)))
    env = dict(os.environ, DATABASE_PATH=db_path, FAILURE_RULES=str(bad))
    worker = subprocess.run([sys.executable, "-m", "dashapp", "worker"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert worker.returncode == 1
    assert worker.stderr.startswith(f"failure rules: {bad}") and len(worker.stderr.splitlines()) == 1


def test_the_settings_defaults_are_the_fetchers():
    config = Config.from_env({})
    assert (config.log_max_bytes, config.log_read_seconds, config.log_fetch_tries, config.log_fetch) == (
        joblogs.DEFAULT_MAX_BYTES, joblogs.DEFAULT_READ_SECONDS, joblogs.DEFAULT_TRIES, "on")


# --- backfill -------------------------------------------------------------------------------------

def test_a_backfill_fills_the_failed_jobs_lines_waiting_out_a_rate_limit(engine, capsys):
    with FakeGitHub(runs=6) as fake:
        fake.rate_limit_once = {f"/repos/{REPO}/actions/jobs/{NEWEST}/logs"}
        logs = fetcher(engine, fake)
        stats = Backfill(engine, Client(fake.url, "T", retries=0), logs=logs).repo(REPO)
        assert fake.blob_auth == []
    with engine.connect() as conn:
        states = dict(conn.execute(select(job_logs.c.job, job_logs.c.state)).all())
        primaries = dict(conn.execute(select(failure_lines.c.job, failure_lines.c.text)
                                      .where(failure_lines.c.ordinal == 0)).all())
    assert len(states) > 4 and set(states.values()) == {"done"}
    assert (stats.logs, stats.logs_gone, stats.logs_left) == (len(states), 0, 0)
    assert set(primaries) == set(states) and all("test_parse_empty_body" in t for t in primaries.values())
    assert re.search(r"rate limited by GitHub \(403\): waiting \d+ s until reset", capsys.readouterr().err)


def test_init_db_fetches_the_logs_after_the_backfill_unless_told_not_to(db_path):
    def backfill(db, fake, *extra):
        return subprocess.run([sys.executable, os.path.join(ROOT, "init_db.py"), "-db", db, "-r", fake.repo,
                               "-k", "T", "--api-url", fake.url, *extra], cwd=ROOT, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=120)

    with FakeGitHub(runs=3) as fake:
        skipped = backfill(db_path, fake, "--no-logs")
        assert skipped.returncode == 0, skipped.stderr
        assert fake.count("/logs") == 0 and "logs=0" in skipped.stdout
        engine = make_engine(db_path)
        assert {state for _job, _repo, state in pending_states(engine)} == {"pending"}
        done = backfill(db_path, fake)
        assert done.returncode == 0, done.stderr
        assert {state for _job, _repo, state in pending_states(engine)} == {"done"}
        assert re.search(r"logs=[1-9]", done.stdout) and fake.blob_auth == []
        engine.dispose()


def pending_states(engine):
    with engine.connect() as conn:
        return conn.execute(select(job_logs.c.job, job_logs.c.repo, job_logs.c.state)).all()
