"""Deciding alerts (alerts/decide.py): breaks and outbox messages from the store's state, in any order.

Every write goes through the real writer with a decider hooked after the derived refresh, as the
processor and the backfill run it, on a real SQLite store.
"""
import json
import random
import time

import pytest
from sqlalchemy import select

from alerts.config import AlertConfig, Channel, Operator, Rule
from alerts.decide import Decider
from domain import records as r
from failures import Extraction, FailureLine
from store import derived, joblogs
from store.engine import writer_options
from store.schema import alert_breaks, alert_messages
from store.writer import apply
from tests.builders import commit, run

pytestmark = pytest.mark.both_stores

NOW = time.time()
START = NOW - 6 * 3600  # the history's first commit: recent, so closed episodes are news
CHANNELS = {"chat": Channel(name="chat", type="slack", url="http://127.0.0.1:9/hook"),
            "hook": Channel(name="hook", type="webhook", url="http://127.0.0.1:9/json")}


def config(**rule) -> AlertConfig:
    values = {"name": "main", "channels": ("chat", "hook"), "ignore_verdicts": frozenset(), **rule}
    return AlertConfig(path="alerts.toml", rules=(Rule(**values),), channels=CHANNELS,
                       mentions={"alice": "<@U1>"}, dashboard_url="https://ci.example.com")


class History:
    """Commits c0, c1, ... of o/app on main, one CI run each, written with a decider hooked in."""

    def __init__(self, engine, decider: Decider):
        self.engine, self.decider = engine, decider
        self.written = [r.Repo("o/app", default_branch="main")]
        self.write(self.written)

    def write(self, items) -> None:
        with self.engine.connect().execution_options(**writer_options()) as conn, conn.begin(), \
                derived.after_flush(conn, self.decider.after_flush):
            apply(conn, items)

    @staticmethod
    def records(i: int, conclusion: str, *, attempt: int = 1, workflow: str = "CI", branch: str = "main",
                jobs: bool = False, gitid: int | None = None) -> list:
        sha = f"c{i}"
        gitid = gitid or 100 + i
        created = START + i * 600
        items = [commit(sha, time=START + i * 600 - 60, author="alice" if i % 2 else "bob",
                        message=f"change {i}\n\nbody"),
                 run(gitid, sha=sha, conclusion=conclusion, created=created + attempt, attempt=attempt,
                     workflow=workflow, branch=branch)]
        if jobs:
            items.append(r.Job(repo="o/app", gitid=gitid * 10 + attempt, run_gitid=gitid, run_attempt=attempt,
                               name="test", workflow_name=workflow, head_branch=branch, head_sha=sha,
                               status="completed", conclusion=conclusion, createtime=created, starttime=created + 1,
                               endtime=created + 50, runner_name="r1", runner_id=1,
                               url=f"https://github.com/o/app/actions/runs/{gitid}/job/{gitid * 10 + attempt}"))
        return items

    def add(self, i: int, conclusion: str, **kw) -> None:
        items = self.records(i, conclusion, **kw)
        self.written += items
        self.write(items)


def messages(engine) -> list[tuple]:
    """(kind, channel, state, first bad sha, fixing sha) of every message, in order."""
    with engine.connect() as conn:
        rows = conn.execute(select(alert_messages.c.kind, alert_messages.c.channel, alert_messages.c.state,
                                   alert_messages.c.body).order_by(alert_messages.c.id)).all()
    out = []
    for kind, channel, state, body in rows:
        body = json.loads(body)
        out.append((kind, channel, state, (body["first_bad"] or {}).get("sha"), (body["fixed_by"] or {}).get("sha")))
    return out


def breaks(engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(select(alert_breaks).order_by(alert_breaks.c.id))]


def bodies(engine, kind: str) -> list[dict]:
    with engine.connect() as conn:
        return [json.loads(b) for b in conn.execute(select(alert_messages.c.body)
                                                    .where(alert_messages.c.kind == kind)).scalars()]


def test_two_red_commits_break_once_a_third_adds_nothing_green_recovers_once(engine):
    history = History(engine, Decider(config()))
    history.add(0, "success")
    history.add(1, "failure")
    assert messages(engine) == []  # one red commit is not a break (consecutive = 2)
    history.add(2, "failure")
    assert messages(engine) == [("break", "chat", "pending", "c1", None), ("break", "hook", "pending", "c1", None)]
    history.add(3, "failure")
    history.add(3, "failure")  # a duplicate
    assert len(messages(engine)) == 2
    history.add(4, "success")
    assert messages(engine)[2:] == [("recovery", "chat", "pending", "c1", "c4"),
                                    ("recovery", "hook", "pending", "c1", "c4")]
    history.add(5, "success")
    assert len(messages(engine)) == 4
    [found] = breaks(engine)
    assert found["state"] == "closed" and found["red_count"] == 3 and found["repo"] == "o/app"
    body = bodies(engine, "break")[0]
    assert body["title"] == "o/app: CI is red on main"
    assert body["first_bad"]["title"] == "change 1" and body["first_bad"]["author"] == "alice"
    assert body["first_bad"]["mention"] == "<@U1>"
    assert body["first_bad"]["url"] is None or body["first_bad"]["url"].endswith("/commit/c1")
    assert [c["sha"] for c in body["blame"]] == ["c1"] and body["last_green"]["sha"] == "c0"
    assert [run_["sha"] for run_ in body["runs"]] == ["c2", "c1"]
    assert body["links"]["triage"] == "https://ci.example.com/triage?repo=o%2Fapp&workflow=CI&branch=main"
    recovery = bodies(engine, "recovery")[0]
    assert recovery["fixed_by"]["sha"] == "c4" and recovery["red_for"] > 0


def test_the_blame_list_holds_every_commit_between_the_last_green_and_the_first_red(engine):
    history = History(engine, Decider(config()))
    history.add(0, "success")
    # c1 and c2 ran only another workflow on main: still commits the break may come from.
    history.add(1, "success", workflow="Lint", gitid=901)
    history.add(2, "success", workflow="Lint", gitid=902)
    history.add(3, "failure")
    history.add(4, "failure")
    body = bodies(engine, "break")[0]
    assert [c["sha"] for c in body["blame"]] == ["c1", "c2", "c3"] and body["first_bad"]["sha"] == "c3"


@pytest.mark.parametrize("seed", range(8))
def test_any_order_with_duplicates_decides_the_same_messages_once(new_store, seed):
    from store.migrate import upgrade
    from store.engine import make_engine

    def decided(order_seed):
        engine = make_engine(new_store(f"s{order_seed}"))
        upgrade(engine)
        history = History(engine, Decider(config()))
        items = []
        for i, conclusion in enumerate(["success", "failure", "failure", "failure", "success"]):
            items.append(History.records(i, conclusion))
        items += random.Random(order_seed).sample(items, 3)  # duplicates
        if order_seed is not None:
            random.Random(order_seed).shuffle(items)
        for group in items:
            history.write(group)
        found = sorted(messages(engine))
        engine.dispose()
        return found

    in_order = decided(None)
    assert [m[0] for m in in_order].count("break") == 2 and [m[0] for m in in_order].count("recovery") == 2
    assert decided(seed) == in_order


def test_consecutive_one_and_cancellations_neither_red_nor_green(engine):
    history = History(engine, Decider(config(consecutive=1)))
    history.add(0, "success")
    history.add(1, "cancelled")
    assert messages(engine) == []
    history.add(2, "failure")
    assert [m[:2] for m in messages(engine)] == [("break", "chat"), ("break", "hook")]
    history.add(3, "cancelled")  # not a recovery
    assert len(messages(engine)) == 2
    history.add(4, "success")
    assert [m[0] for m in messages(engine)].count("recovery") == 2


def test_an_older_red_commit_arriving_late_moves_the_first_bad_commit_silently(engine):
    history = History(engine, Decider(config()))
    history.add(0, "success")
    history.add(2, "failure")
    history.add(3, "failure")
    assert bodies(engine, "break")[0]["first_bad"]["sha"] == "c2"
    history.add(1, "failure")  # c1 is older than c2: the break began there
    assert len(messages(engine)) == 2
    with engine.connect() as conn:
        first = conn.execute(select(alert_breaks.c.first_bad)).scalar()
        from store.schema import commits
        assert conn.execute(select(commits.c.hash).where(commits.c.id == first)).scalar() == "c1"


def test_a_rerun_that_passes_recovers_an_open_break(engine):
    history = History(engine, Decider(config()))
    history.add(0, "success")
    history.add(1, "failure")
    history.add(2, "failure")
    history.add(2, "success", attempt=2)  # the newest red commit re-run green
    assert [m[0] for m in messages(engine)].count("recovery") == 2
    assert bodies(engine, "recovery")[0]["fixed_by"]["sha"] == "c2"


def test_an_old_closed_episode_is_history_not_news(engine):
    old = Decider(config())
    history = History(engine, old)
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        apply(conn, [])
    # Decide only once the whole history is there, two days later: the fix is over a day old.
    history.decider = Decider(config(channels=("chat",)))
    items = [History.records(i, c) for i, c in enumerate(["success", "failure", "failure", "success"])]
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        for group in items:
            apply(conn, group)
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        history.decider.pairs(conn, {(1, 1)}, now=NOW + 2 * 86400)
    assert messages(engine) == []
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        history.decider.pairs(conn, {(1, 1)}, now=NOW)
    assert sorted(m[0] for m in messages(engine)) == ["break", "recovery"]


def test_quiet_decisions_are_recorded_not_sent_and_their_recovery_stays_quiet(engine):
    history = History(engine, Decider(config(), quiet=True))
    for i, conclusion in enumerate(["success", "failure", "failure"]):
        history.add(i, conclusion)
    assert {m[2] for m in messages(engine)} == {"quiet"} and breaks(engine)[0]["quiet"] == 1
    history.decider = Decider(config())  # the server, after the backfill
    history.add(3, "failure")
    assert len(messages(engine)) == 2
    history.add(4, "success")
    assert {m[2] for m in messages(engine)} == {"quiet"}


def test_baseline_records_what_the_store_held_before_the_rule(engine):
    history = History(engine, Decider(AlertConfig(path="x", rules=(), channels=CHANNELS)))
    for i, conclusion in enumerate(["success", "failure", "failure"]):
        history.add(i, conclusion)
    decider = Decider(config())
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        decider.baseline(conn)
    assert {m[2] for m in messages(engine)} == {"quiet"}
    history.decider = decider
    history.add(3, "failure")
    history.add(4, "success")
    assert {m[2] for m in messages(engine)} == {"quiet"}


def test_other_branches_and_unmatched_workflows_are_not_watched(engine):
    history = History(engine, Decider(config(workflows=("Deploy*",))))
    for i in range(3):
        history.add(i, "failure")
        history.add(i + 10, "failure", branch="feature", gitid=500 + i)
    assert messages(engine) == []
    history.decider = Decider(config(branches=("feat*",)))
    history.add(20, "failure", branch="feature", gitid=520)
    assert [m[3] for m in messages(engine)][:1] == ["c10"]


def _save_line(engine, job: int, klass: str, fingerprint: str = "00000000000000aa") -> None:
    line = FailureLine(rule="r", klass=klass, text=f"{klass} failure", fingerprint=fingerprint, line=3, source="log")
    with engine.begin() as conn:
        joblogs.save(conn, job, "o/app", Extraction(lines=[line], excerpt="x", log_bytes=10, truncated=False),
                     source="log", now=NOW)


def test_infrastructure_failures_page_no_one_when_verdicts_are_on(engine):
    history = History(engine, Decider(config(ignore_verdicts=frozenset({"FLAKY", "INFRA"}))))
    history.add(0, "success", jobs=True)
    history.add(1, "failure", jobs=True)
    _save_line(engine, 1011, "infra")
    history.add(2, "failure", jobs=True)
    _save_line(engine, 1021, "infra")
    history.add(3, "success", jobs=True)  # any later write decides the pair again
    assert messages(engine) == []


def test_a_decision_waits_for_failure_lines_then_decides_from_their_verdicts(engine):
    decider = Decider(config(consecutive=1, ignore_verdicts=frozenset({"FLAKY", "INFRA"})), hold=300)
    history = History(engine, decider)
    history.add(0, "success", jobs=True)
    history.add(1, "failure", jobs=True)
    assert messages(engine) == []  # held: job 1011's lines are being fetched
    _save_line(engine, 1011, "test")
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        assert decider.job(conn, 1011)  # the fetcher's hook, in the transaction that saved the lines
    assert [m[0] for m in messages(engine)] == ["break", "break"]
    body = bodies(engine, "break")[0]
    assert body["jobs"][0]["name"] == "test" and body["jobs"][0]["lines"][0]["text"] == "test failure"
    assert body["links"]["failure"] == "https://ci.example.com/failure/00000000000000aa"


def test_a_held_decision_is_made_when_the_hold_runs_out(engine):
    decider = Decider(config(consecutive=1, ignore_verdicts=frozenset({"INFRA"})), hold=300)
    history = History(engine, decider)
    history.add(1, "failure", jobs=True)
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        decider.sweep(conn, now=time.time() + 10)
    assert messages(engine) == []
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        decider.sweep(conn, now=time.time() + 301)
    assert [m[0] for m in messages(engine)] == ["break", "break"]


def test_a_flaky_failure_rerun_green_while_held_pages_no_one(engine):
    decider = Decider(config(consecutive=1, ignore_verdicts=frozenset({"FLAKY", "INFRA"})), hold=300)
    history = History(engine, decider)
    history.add(0, "success", jobs=True)
    history.add(1, "failure", jobs=True)
    history.add(1, "success", attempt=2, jobs=True)
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        decider.sweep(conn, now=time.time() + 400)
    assert messages(engine) == []


def test_red_for_hours_reminds_once(engine):
    history = History(engine, Decider(config(red_hours=1.0)))
    history.add(0, "success")
    history.add(1, "failure")
    history.add(2, "failure")
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        history.decider.sweep(conn, now=NOW + 2 * 3600)
        history.decider.sweep(conn, now=NOW + 3 * 3600)
    assert [m[0] for m in messages(engine)] == ["break", "break", "reminder", "reminder"]


def test_red_for_hours_opens_a_break_below_the_consecutive_count(engine):
    history = History(engine, Decider(config(consecutive=3, red_hours=8.0)))
    history.add(0, "success")
    history.add(1, "failure")
    assert messages(engine) == []  # red for under 6 h
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        history.decider.sweep(conn, now=START + 600 + 8 * 3600 + 2)
    assert [m[0] for m in messages(engine)] == ["break", "break"]


def test_a_stale_run_is_told_once_and_closed_when_it_moves(engine):
    decider = Decider(config(stale=True), stale_hours=1.0)
    history = History(engine, decider)
    history.write([commit("s1", time=START), run(700, sha="s1", status="in_progress", created=START)])
    for later in (2, 3):
        with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            decider.sweep(conn, now=START + later * 3600)
    stale = bodies(engine, "break")
    assert len(stale) == 2 and stale[0]["alert"] == "stale" and "in progress" in stale[0]["title"]
    history.write([run(700, sha="s1", status="completed", conclusion="success", created=START)])
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        decider.sweep(conn, now=START + 4 * 3600)
    assert [b["state"] for b in breaks(engine)] == ["closed"] and len(messages(engine)) == 2


def test_the_operator_hears_when_the_lag_crosses_its_threshold_and_when_it_is_back(engine):
    cfg = AlertConfig(path="x", rules=(), channels=CHANNELS, operator=Operator(channels=("hook",),
                                                                               max_lag_seconds=60))
    decider = Decider(cfg)
    for lag in (10, 90, 120, 5, 1):
        with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
            decider.sweep(conn, lag=lag)
    assert [(m[0], m[1]) for m in messages(engine)] == [("break", "hook"), ("recovery", "hook")]
    assert bodies(engine, "break")[0]["figure"] == {"name": "lag", "value": 90, "threshold": 60}


def test_a_failing_decision_never_loses_the_write(engine, caplog):
    decider = Decider(config())
    decider._red = lambda *a: 1 / 0
    history = History(engine, decider)
    for i, conclusion in enumerate(["success", "failure", "failure"]):
        history.add(i, conclusion)
    from store.schema import workflowruns
    with engine.connect() as conn:
        assert conn.execute(select(workflowruns.c.gitid)).scalars().all() == [100, 101, 102]
    assert messages(engine) == [] and "a decision failed" in caplog.text


def test_a_break_whose_red_commits_all_rerun_green_recovers_and_still_names_its_first_bad_commit(engine):
    history = History(engine, Decider(config()))
    history.add(0, "success")
    history.add(1, "failure")
    history.add(2, "failure")
    history.add(1, "success", attempt=2)
    history.add(2, "success", attempt=2)
    assert [m[0] for m in messages(engine)] == ["break", "break", "recovery", "recovery"]
    recovery = bodies(engine, "recovery")[0]
    assert recovery["first_bad"]["sha"] == "c1" and recovery["fixed_by"]["sha"] == "c2"
    assert recovery["red_commits"] == 2 and "2 red commits" in recovery["summary"]
