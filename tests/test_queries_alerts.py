"""The alerts' reads (`store.queries.alerts`) over a hand-made history, written as the deciding side writes it.

The story (`alert_history`): acme/web's CI went red on main two commits in a row and still is (an open break,
its messages delivered to chat, retried on the webhook, given up on e-mail); a run of acme/web is stuck (an
open `stale` break); acme/api's CI was red on main for three commits and was fixed (a closed break, break and
recovery delivered, one to a GitHub issue); acme/mobile's was red once long ago, found by a backfill (quiet).
Plus a test message, and a message whose title and error hold markup (shown as text by the page).
The commits, workflows and branches go through the real writer; the alert rows are inserted as
`store/alerts.py` inserts them.
"""
import json
import time

import pytest
from sqlalchemy import select, text

from domain import records as r
from store.engine import writer_options
from store.queries import alerts as aq
from store.schema import alert_breaks, alert_messages, branches, commits, workflows
from store.writer import apply
from tests.builders import commit, run

pytestmark = pytest.mark.both_stores

HOUR, DAY = 3600.0, 86400.0
HOSTILE = "<img src=x onerror=alert(1)> **bold** [x](javascript:alert(2))"
RETRY_ERROR = "ops.example.net answered 500 Internal Server Error (try 3; next in 2 min)"
GAVE_UP = "smtp.example.net:587 refused the connection"


def _body(kind: str, alert: str, title: str, **extra) -> str:
    return json.dumps({"kind": kind, "alert": alert, "break_id": extra.pop("break_id", None), "rule": "main-red",
                       "title": title, "summary": extra.pop("summary", ""), "repo": extra.pop("repo", None),
                       "workflow": None, "branch": None, "red_since": None, "red_for": None, "red_commits": None,
                       "first_bad": None, "fixed_by": None, "blame": [], "blame_more": 0, "last_green": None,
                       "jobs": [], "runs": [], "links": {"triage": None, "alerts": None, "failure": None},
                       "run": None, "figure": None, "decided": extra.pop("decided", 0.0), **extra})


def _records(now: float) -> list:
    out = [r.Repo(name="acme/web", default_branch="main", url="https://github.com/acme/web"),
           r.Repo(name="acme/api", default_branch="main", url="https://github.com/acme/api"),
           r.Repo(name="acme/mobile", default_branch="main")]
    web = [("w1", "Add the billing page", "alice", "success"), ("w2", "Bump the session library", "bob", "failure"),
           ("w3", "Fix typo in README", "carol", "failure")]
    for i, (sha, message, author, conclusion) in enumerate(web):
        created = now - 3 * HOUR + i * HOUR
        out += [commit(sha, repo="acme/web", author=author, message=message, time=created - 60),
                run(100 + i, repo="acme/web", sha=sha, author=author, conclusion=conclusion, created=created)]
    api = [("a1", "Green before", "dave", "success"), ("a2", "Break the API", "erin", "failure"),
           ("a3", "Still broken", "erin", "failure"), ("a4", "Revert: Break the API\n\nThis reverts a2.", "dave",
                                                       "success")]
    for i, (sha, message, author, conclusion) in enumerate(api):
        created = now - 2 * DAY + i * HOUR
        out += [commit(sha, repo="acme/api", author=author, message=message, time=created - 60),
                run(200 + i, repo="acme/api", sha=sha, author=author, conclusion=conclusion, created=created)]
    for i, (sha, conclusion) in enumerate((("m1", "failure"), ("m2", "success"))):
        created = now - 20 * DAY + i * HOUR
        out += [commit(sha, repo="acme/mobile", message=f"mobile {sha}", time=created - 60),
                run(300 + i, repo="acme/mobile", sha=sha, conclusion=conclusion, created=created)]
    return out


def _ids(conn, repo: str) -> tuple[int, int, dict]:
    wf = conn.execute(select(workflows.c.id).where(workflows.c.repo == repo, workflows.c.name == "CI")).scalar_one()
    br = conn.execute(select(branches.c.id).where(branches.c.repo == repo, branches.c.name == "main")).scalar_one()
    shas = dict(conn.execute(select(commits.c.hash, commits.c.id).where(commits.c.repo == repo)).all())
    return wf, br, shas


STUCK = "acme/web: a Deploy run has been queued for 7 h"


def alert_history(engine, now: float | None = None, *, hostile: bool = True) -> dict:
    """Write the story above into `engine` (a migrated store); the break ids by name and `now`.  `hostile`: the
    stuck run's message has markup in its title and error (else a plain title and no error)."""
    now = time.time() if now is None else now
    with engine.connect().execution_options(**writer_options()) as conn:
        with conn.begin():
            apply(conn, _records(now))
    with engine.begin() as conn:
        wf, br, web = _ids(conn, "acme/web")
        awf, abr, api = _ids(conn, "acme/api")
        mwf, mbr, mobile = _ids(conn, "acme/mobile")

        def brk(**row) -> int:
            return conn.execute(alert_breaks.insert().values(**row)).inserted_primary_key[0]

        ids = {
            "web": brk(rule="main-red", kind="red", subject=f"{wf}:{br}", state="open", repo="acme/web", workflow=wf,
                       branch=br, opened=now - HOUR + 30, red_since=now - 2 * HOUR, first_bad=web["w2"],
                       last_bad=web["w3"], last_green=web["w1"], red_count=2),
            "stale": brk(rule="main-red", kind="stale", subject="run:4242", state="open", repo="acme/web",
                         opened=now - 10 * 60, red_since=now - 7 * HOUR, detail=json.dumps({"run": 4242})),
            "api": brk(rule="main-red", kind="red", subject=f"{awf}:{abr}", state="closed", repo="acme/api",
                       workflow=awf, branch=abr, opened=now - 2 * DAY + 2 * HOUR, red_since=now - 2 * DAY + HOUR,
                       first_bad=api["a2"], last_bad=api["a3"], last_green=api["a1"], red_count=2,
                       fixed_by=api["a4"], closed=now - 2 * DAY + 3 * HOUR),
            "mobile": brk(rule="main-red", kind="red", subject=f"{mwf}:{mbr}", state="closed", repo="acme/mobile",
                          workflow=mwf, branch=mbr, opened=now - 20 * DAY, red_since=now - 20 * DAY,
                          first_bad=mobile["m1"], last_bad=mobile["m1"], red_count=1, fixed_by=mobile["m2"],
                          closed=now - 20 * DAY + HOUR, quiet=1),
        }
        web_title = "acme/web: CI is red on main"

        def msg(break_id, channel, kind, state, created, title, **row) -> int:
            alert = row.pop("alert", "red")
            body = _body(kind, alert, title, break_id=break_id, repo=row.pop("repo", "acme/web"), decided=created)
            return conn.execute(alert_messages.insert().values(
                break_id=break_id, rule=None if break_id is None else "main-red", channel=channel, kind=kind,
                body=body, created=created, state=state, **row)).inserted_primary_key[0]

        opened = now - HOUR + 30
        msg(ids["web"], "team-chat", "break", "delivered", opened, web_title, tries=1, sent=opened + 1)
        msg(ids["web"], "ops-hook", "break", "pending", opened, web_title, tries=3, next_try=now + 120,
            last_error=RETRY_ERROR)
        msg(ids["web"], "oncall-mail", "break", "failed", opened, web_title, tries=9, last_error=GAVE_UP)
        msg(ids["stale"], "team-chat", "break", "sending", now - 10 * 60, HOSTILE if hostile else STUCK,
            alert="stale", tries=1, last_error=HOSTILE if hostile else None)
        closed, api_opened = now - 2 * DAY + 3 * HOUR, now - 2 * DAY + 2 * HOUR
        api_title = "acme/api: CI is red on main"
        for channel in ("team-chat", "tracker"):
            msg(ids["api"], channel, "break", "delivered", api_opened, api_title, repo="acme/api", tries=1,
                sent=api_opened + 2, ref="12" if channel == "tracker" else None)
            msg(ids["api"], channel, "recovery", "delivered", closed, "acme/api: CI is green again on main",
                repo="acme/api", tries=2 if channel == "tracker" else 1, sent=closed + 40)
        msg(ids["mobile"], "team-chat", "break", "quiet", now - 20 * DAY, "acme/mobile: CI is red on main",
            repo="acme/mobile")
        ids["test"] = msg(None, "team-chat", "test", "delivered", now - 5 * 60, "Test message from Build Monitor",
                          alert="test", repo=None, tries=1, sent=now - 5 * 60 + 1)
    ids["now"] = now
    return ids


@pytest.fixture
def story(engine):
    return alert_history(engine)


def test_open_breaks_newest_first_with_names_commits_and_deliveries(engine, story):
    now = story["now"]
    with engine.connect() as conn:
        found = aq.open_breaks(conn, now=now)
    assert [b["id"] for b in found] == [story["stale"], story["web"]]
    stale, web = found
    assert (web["repo"], web["workflow"], web["branch"], web["kind"], web["red_count"]) == (
        "acme/web", "CI", "main", "red", 2)
    assert web["repo_url"] == "https://github.com/acme/web" and web["state"] == "open" and web["closed"] is None
    assert web["red_for"] == pytest.approx(2 * HOUR)
    assert web["first_bad"] == {"sha": "w2", "title": "Bump the session library", "author": "bob",
                                "time": now - 2 * HOUR - 60}
    assert web["last_green"]["sha"] == "w1" and web["last_bad"]["sha"] == "w3" and web["fixed_by"] is None
    assert web["title"] == "acme/web: CI is red on main"
    assert [(d["channel"], d["kind"], d["state"], d["tries"]) for d in web["deliveries"]] == [
        ("oncall-mail", "break", "failed", 9), ("ops-hook", "break", "pending", 3),
        ("team-chat", "break", "delivered", 1)]
    assert web["deliveries"][1]["last_error"] == RETRY_ERROR and web["deliveries"][1]["next_try"] == now + 120
    # A stuck run: no workflow or branch of its own, its title from its message.
    assert (stale["kind"], stale["workflow"], stale["branch"], stale["first_bad"]) == ("stale", None, None, None)
    assert stale["title"] == HOSTILE and stale["red_for"] == pytest.approx(7 * HOUR)


def test_history_newest_closed_first_with_the_fix_and_paging(engine, story):
    with engine.connect() as conn:
        found = aq.history(conn)
        second = aq.history(conn, limit=1, offset=1)
        none = aq.history(conn, limit=5, offset=2)
    assert [b["id"] for b in found] == [story["api"], story["mobile"]]
    api, mobile = found
    assert api["red_for"] == pytest.approx(2 * HOUR)  # red since the first bad run until it closed
    assert api["fixed_by"]["sha"] == "a4" and api["fixed_by"]["title"] == "Revert: Break the API"
    assert api["first_bad"]["author"] == "erin" and api["repo_url"] == "https://github.com/acme/api"
    assert [(d["channel"], d["kind"]) for d in api["deliveries"]] == [
        ("team-chat", "break"), ("team-chat", "recovery"), ("tracker", "break"), ("tracker", "recovery")]
    assert mobile["quiet"] is True and mobile["repo_url"] is None and mobile["last_green"] is None
    assert [b["id"] for b in second] == [story["mobile"]] and none == []


def test_messages_newest_first_with_their_delivery_and_title(engine, story):
    now = story["now"]
    with engine.connect() as conn:
        found = aq.messages(conn, limit=100)
        newest = aq.messages(conn, limit=2)
        page = aq.messages(conn, limit=100, before=found[2]["id"])
    assert len(found) == 10 and [m["created"] for m in found] == sorted((m["created"] for m in found), reverse=True)
    assert [m["id"] for m in newest] == [m["id"] for m in found[:2]]
    assert [m["id"] for m in page] == [m["id"] for m in found if m["id"] < found[2]["id"]]
    test, stale = found[0], found[1]
    assert (test["id"], test["break_id"], test["kind"], test["channel"], test["state"], test["alert"]) == (
        story["test"], None, "test", "team-chat", "delivered", "test")
    assert test["title"] == "Test message from Build Monitor" and test["sent"] == now - 5 * 60 + 1
    assert stale["title"] == HOSTILE and stale["last_error"] == HOSTILE and stale["state"] == "sending"
    retried = next(m for m in found if m["channel"] == "ops-hook")
    assert (retried["state"], retried["tries"], retried["next_try"], retried["last_error"], retried["repo"]) == (
        "pending", 3, now + 120, RETRY_ERROR, "acme/web")
    tracker = [m for m in found if m["channel"] == "tracker"]
    assert [(m["kind"], m["ref"]) for m in tracker] == [("recovery", None), ("break", "12")]
    assert set(found[0]) == set(aq.MESSAGE_KEYS) | {"title", "alert", "repo"}  # never the body itself


def test_a_body_that_is_not_a_message_gives_no_title(engine):
    with engine.begin() as conn:
        for body in ("not json", "[1, 2]", json.dumps({"title": 5}), json.dumps({"title": "one\nsecond line"})):
            conn.execute(alert_messages.insert().values(channel="c", kind="test", body=body, created=1.0,
                                                        state="pending"))
    with engine.connect() as conn:
        assert [m["title"] for m in aq.messages(conn)] == ["one", "", "", ""]  # newest (highest id) first


def test_counts_every_state_and_last_tests(engine, story):
    with engine.connect() as conn:
        counts = aq.counts(conn)
        tests = aq.last_tests(conn, ["team-chat", "ops-hook"])
    assert counts == {"open": 2, "closed": 2, "messages": {"pending": 1, "sending": 1, "delivered": 6, "failed": 1,
                                                           "quiet": 1, "skipped": 0}}
    assert list(tests) == ["team-chat"] and tests["team-chat"]["id"] == story["test"]


def test_an_empty_store_reads_empty(engine):
    with engine.connect() as conn:
        assert aq.open_breaks(conn) == [] and aq.history(conn) == [] and aq.messages(conn) == []
        assert aq.counts(conn)["messages"] == dict.fromkeys(aq.MESSAGE_STATES, 0)


def _plan(conn, statement) -> str:
    sql = str(statement.compile(conn, compile_kwargs={"literal_binds": True}))
    return " | ".join(row[-1] for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)).all())


@pytest.mark.sqlite_only  # reads SQLite's query plans
def test_reads_use_the_alert_indexes(engine, story):
    """Each read searches an index: none walks all breaks or all messages (they grow with time)."""
    b, m = alert_breaks.c, alert_messages.c
    with engine.connect() as conn:
        opened = _plan(conn, aq._break_select().where(aq._OPEN).order_by(b.opened.desc()))
        closed = _plan(conn, aq._break_select().where(b.closed.is_not(None)).order_by(b.closed.desc(), b.id.desc())
                       .limit(5))
        newest = _plan(conn, select(m.id).order_by(m.created.desc(), m.id.desc()).limit(5))
        of_breaks = _plan(conn, select(m.id).where(m.break_id.in_([1, 2])))
    assert "uq_alert_breaks_open" in opened
    assert "idx_alert_breaks_closed" in closed and "TEMP B-TREE" not in closed
    assert "idx_alert_messages_created" in newest and "TEMP B-TREE" not in newest
    assert "uq_alert_messages_once" in of_breaks or "sqlite_autoindex_alert_messages" in of_breaks
