"""init_db.py as a user runs it: a subprocess against the fake GitHub API."""
import json
import os
import subprocess
import sys
import time
import types

import pytest
from sqlalchemy import func, select

import init_db
from ingest.delivery import decode, record
from ingest.times import iso
from store.engine import make_engine, writer_options
from store.migrate import upgrade
from store.schema import deliveries, failure_lines, job_logs, jobs, metadata, runattempts, workflowruns
from tests.fakegithub import FakeGitHub
from tests.helpers import ROOT, fixture_bytes, fixture_json, snapshot


def cli(*args, stdin=subprocess.DEVNULL):
    return subprocess.run([sys.executable, os.path.join(ROOT, "init_db.py"), *args], cwd=ROOT, stdin=stdin,
                          capture_output=True, text=True, timeout=120)


def backfill(db, fake, *extra):
    return cli("-db", db, "-r", fake.repo, "-k", "T", "--api-url", fake.url, *extra)


ACCOUNT_TABLES = {"web_sessions", "access_tokens", "audit_log", "server_secrets", "admin_jobs", "archive_parts",
                  "saved_views", "pins", "rate_limits"}


def counts(engine) -> dict:
    with engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar() for t in metadata.sorted_tables
                # derived: tests/test_rollups.py, test_csv.py; alert decisions: tests/test_alerts_*.py; sign-in:
                # tests/test_signin.py
                if not t.name.startswith(("rollup_", "person_", "export_", "alert_"))
                and t.name not in ACCOUNT_TABLES}


def test_backfill_fills_every_table_and_a_second_run_fetches_only_what_is_new(db_path):
    with FakeGitHub(runs=8) as fake:
        done = backfill(db_path, fake, "-i", "--yes")
        assert done.returncode == 0, done.stderr
        engine = make_engine(db_path)
        # 8 runs, every third with 2 attempts: 11 attempts, 2 jobs of 10 steps each per attempt;
        # commits: 5 from the listing + 8 runs' head commits.
        assert counts(engine) == dict(repos=1, branches=3, commits=13, workflows=2, workflowruns=8,
                                      runattempts=11, jobs=22, steps=220, deliveries=0, job_logs=10, run_pulls=0,
                                      failure_lines=counts(engine)["failure_lines"])
        with engine.connect() as conn:  # every failed job's log was fetched and gave failure lines
            assert conn.execute(select(job_logs.c.state, func.count()).group_by(job_logs.c.state)).all() == [
                ("done", 10)]
            assert conn.execute(select(func.count(func.distinct(failure_lines.c.job)))).scalar() == 10
        assert fake.auth == {"token T"}
        with engine.connect() as conn:
            run = conn.execute(select(workflowruns).where(workflowruns.c.gitid == 5001)).mappings().one()
            tries = conn.execute(select(runattempts.c.attempt, runattempts.c.conclusion)
                                 .where(runattempts.c.gitid == 5001).order_by(runattempts.c.attempt)).all()
        assert (run["run_attempt"], run["status"], run["conclusion"], run["archivedbranchname"]) == (
            2, "completed", "failure", "feature/x")
        assert [tuple(t) for t in tries] == [(1, "failure"), (2, "failure")]
        before, first = snapshot(engine), len(fake.requests)

        again = backfill(db_path, fake)
        assert again.returncode == 0, again.stderr
        assert snapshot(engine) == before
        second = fake.requests[first:]
        # Only the newest run's window was listed (one page), and no run's jobs or attempts were fetched.
        assert sum("/actions/runs?" in r for r in second) == 1
        assert not [r for r in second if "/jobs" in r or "/attempts/" in r]
        assert "skipped=1" in again.stdout

        fake.add_run(8), fake.add_run(9)
        third_start = len(fake.requests)
        more = backfill(db_path, fake)
        assert more.returncode == 0, more.stderr
        third = fake.requests[third_start:]
        assert {r.split("/")[6] for r in third if "/actions/runs/" in r and "/jobs" in r} == {"5008", "5009"}
        assert counts(engine)["workflowruns"] == 10


def test_interrupted_backfill_continues_and_ends_like_an_uninterrupted_one(tmp_path):
    whole = str(tmp_path / "whole.db")
    with FakeGitHub(runs=9) as fake:
        assert backfill(whole, fake).returncode == 0
    expected = snapshot(make_engine(whole))

    broken = str(tmp_path / "broken.db")
    with FakeGitHub(runs=9) as fake:
        fake.fail_after = 20  # GitHub goes down in the middle of the runs
        stopped = backfill(broken, fake, "--retries", "0", "--batch", "2")
        assert stopped.returncode == 1
        assert "run the same command again" in stopped.stderr
        partial = counts(make_engine(broken))["workflowruns"]
        assert 0 < partial < 9
        fake.fail_after = None
        assert backfill(broken, fake).returncode == 0
    assert snapshot(make_engine(broken)) == expected

    bounded = str(tmp_path / "bounded.db")
    with FakeGitHub(runs=9) as fake:
        first = backfill(bounded, fake, "--max-runs", "4")
        assert first.returncode == 0 and "stopped at --max-runs" in first.stdout
        assert counts(make_engine(bounded))["workflowruns"] == 4
        assert backfill(bounded, fake).returncode == 0
    assert snapshot(make_engine(bounded)) == expected


def test_rate_limited_backfill_waits_says_so_and_gets_everything(db_path):
    with FakeGitHub(runs=5) as fake:
        fake.rate_limit_once = {"/repos/owner/repo/actions/runs/5002/jobs", "/repos/owner/repo/branches"}
        done = backfill(db_path, fake)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("rate limited by GitHub (403): waiting") == 2
    assert "until reset" in done.stderr
    assert sum(r.startswith("/repos/owner/repo/actions/runs/5002/jobs") for r in fake.requests) == 2
    c = counts(make_engine(db_path))
    assert (c["branches"], c["workflowruns"], c["jobs"]) == (3, 5, 2 * 7)


def test_init_deletes_only_with_confirmation(db_path):
    with FakeGitHub(runs=2) as fake:
        assert backfill(db_path, fake).returncode == 0
    engine = make_engine(db_path)
    assert counts(engine)["workflowruns"] == 2
    engine.dispose()

    refused = cli("-db", db_path, "-i")  # stdin is not a terminal and no --yes
    assert refused.returncode == 2
    assert f"WARNING: --init deletes {db_path}" in refused.stderr
    assert counts(make_engine(db_path))["workflowruns"] == 2

    done = cli("-db", db_path, "-i", "--yes")
    assert done.returncode == 0, done.stderr
    assert counts(make_engine(db_path))["workflowruns"] == 0

    fresh = os.path.join(os.path.dirname(db_path), "new.db")
    assert cli("-db", fresh, "-i").returncode == 0  # nothing to lose: no confirmation needed
    assert counts(make_engine(fresh))["repos"] == 0


def test_replay_reapplies_failed_deliveries(db_path):
    engine = make_engine(db_path)
    upgrade(engine)
    body = fixture_bytes("workflow_run/completed.payload.json")
    with engine.execution_options(**writer_options()).begin() as conn:
        conn.execute(deliveries.insert().values(guid="g-1", event="workflow_run", action="completed",
                                                received=1.0, outcome="failed", error="bug", body=body))
    engine.dispose()
    done = cli("-db", db_path, "--replay")
    assert done.returncode == 0, done.stderr
    assert "replayed deliveries: processed=1" in done.stdout
    with engine.connect() as conn:
        assert conn.execute(select(workflowruns.c.status).where(workflowruns.c.gitid == 289782451)).scalar() \
            == "completed"
        assert conn.execute(select(deliveries.c.outcome)).scalar() == "processed"


def test_reconcile_repairs_runs_stuck_as_active(db_path):
    engine = make_engine(db_path)
    upgrade(engine)
    queued = fixture_bytes("workflow_run/requested.payload.json")  # updated 2020: long stale
    with engine.execution_options(**writer_options()).begin() as conn:
        record(conn, "g-1", "workflow_run", queued, decode("workflow_run", queued))
    completed = fixture_json("workflow_run/completed.payload.json")
    with FakeGitHub("octo-org/octo-repo", runs=0) as fake:
        fake.workflows.append(completed["workflow"])
        fake.put_run([completed["workflow_run"]], jobs=[])
        done = cli("-db", db_path, "--reconcile", "-k", "T", "--api-url", fake.url)
    assert done.returncode == 0, done.stderr
    assert "/repos/octo-org/octo-repo/actions/runs/289782451" in fake.requests
    with engine.connect() as conn:
        row = conn.execute(select(workflowruns.c.status, workflowruns.c.conclusion)).all()
        assert [tuple(r) for r in row] == [("completed", "success")]
        assert conn.execute(select(func.count()).select_from(jobs)).scalar() == 0


def test_reconcile_leaves_recent_active_runs_alone(db_path):
    engine = make_engine(db_path)
    upgrade(engine)
    payload = fixture_json("workflow_run/requested.payload.json")
    payload["workflow_run"]["updated_at"] = iso(time.time())
    body = json.dumps(payload).encode()
    with engine.execution_options(**writer_options()).begin() as conn:
        record(conn, "g-1", "workflow_run", body, decode("workflow_run", body))
    with FakeGitHub("octo-org/octo-repo", runs=0) as fake:
        done = cli("-db", db_path, "--reconcile", "--api-url", fake.url)
    assert done.returncode == 0, done.stderr
    assert fake.requests == []
    assert "reconciled: runs=0" in done.stdout


def test_demo_calls_the_demo_generator(db_path, monkeypatch, capsys):
    calls = []

    def populate(engine, *, seed=1, now=None, runs=2500):
        calls.append((str(engine.url), seed))
        return {"workflowruns": 0}

    monkeypatch.setitem(sys.modules, "ingest.demo", types.SimpleNamespace(populate=populate))
    assert init_db.main(["-db", db_path, "--demo", "--seed", "7"]) == 0
    assert calls == [(f"sqlite:///{os.path.abspath(db_path)}", 7)]
    assert "demo data: workflowruns=0" in capsys.readouterr().out


@pytest.mark.parametrize("text,expected", [("2024-03-01", 1709251200.0), ("2024-03-01T01:00:00Z", 1709254800.0)])
def test_since_takes_iso_dates(text, expected):
    assert init_db.parse_date(text) == expected


ALERTS = """
[channels.hook]
type = "webhook"
url = "http://127.0.0.1:9/hook"

[[rules]]
name = "main"
ignore_verdicts = []
channels = ["hook"]
"""


@pytest.mark.parametrize("send, state", [(False, "quiet"), (True, "pending")])
def test_a_backfill_records_its_historys_breaks_quietly_unless_asked(tmp_path, send, state):
    from store.schema import alert_breaks, alert_messages

    (tmp_path / "alerts.toml").write_text(ALERTS)
    db = str(tmp_path / "b.db")
    with FakeGitHub(runs=12) as fake:
        # The runs on main (every third): one workflow, green, green, then red twice (still red).
        for i, conclusion in zip((0, 3, 6, 9), ("success", "success", "failure", "failure")):
            for attempt in fake.attempts[5000 + i]:
                attempt.update(conclusion=conclusion, name=fake.workflows[0]["name"],
                               workflow_id=fake.workflows[0]["id"], path=fake.workflows[0]["path"])
        done = subprocess.run([sys.executable, os.path.join(ROOT, "init_db.py"), "-db", db, "-r", fake.repo, "-k",
                               "T", "--api-url", fake.url, "--no-logs", *(["--send-alerts"] if send else [])],
                              cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "ALERTS_CONFIG": str(tmp_path / "alerts.toml")})
    assert done.returncode == 0, done.stderr
    engine = make_engine(db)
    with engine.connect() as conn:
        breaks = conn.execute(select(alert_breaks.c.state, alert_breaks.c.quiet, alert_breaks.c.red_count)).all()
        messages = conn.execute(select(alert_messages.c.kind, alert_messages.c.state)).all()
    engine.dispose()
    assert [tuple(b) for b in breaks] == [("open", int(not send), 2)]
    assert [tuple(m) for m in messages] == [("break", state)]
