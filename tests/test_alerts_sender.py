"""alerts/sender.py and store/outbox.py: retries with backoff, order, give-up, restarts, test messages.

Messages are put in the outbox directly (deciding them is `alerts/decide.py`'s); time is passed as `now`,
so backoff is checked without waiting for it.
"""
import json
import threading
import time

import pytest
from sqlalchemy import select

from alerts import channels
from alerts.config import AlertConfig, Channel, Delivery
from alerts.sender import Sender, backoff, send_test
from store import outbox
from store.engine import writer_options
from store.schema import alert_messages
from tests.receivers import (T0, FakeIssues, HTTPReceiver, SMTPReceiver, recovery_body, red_body, reminder_body,
                             wait_until)

pytestmark = pytest.mark.both_stores

HOOK_PATH = "/services/T000/B000/SecretHookPath42"
DELIVERY = Delivery(retry_seconds=0.05, max_retry_seconds=0.2, give_up_hours=24)


@pytest.fixture
def receiver():
    with HTTPReceiver() as live:
        yield live


def config_for(*chans: Channel) -> AlertConfig:
    return AlertConfig(path="alerts.toml", rules=(), channels={c.name: c for c in chans}, delivery=DELIVERY,
                       dashboard_url="http://buildmon.test")


def hook(receiver, name: str = "hook") -> Channel:
    return Channel(name, "webhook", url=receiver.url + HOOK_PATH, secret="s3cret", timeout=5)


def put(engine, channel: str, body: dict, *, created: float = T0, state: str = "pending", ref=None) -> int:
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        return conn.execute(alert_messages.insert().values(
            break_id=body["break_id"], rule=body["rule"], channel=channel, kind=body["kind"], body=json.dumps(body),
            created=created, state=state, tries=0, next_try=created, ref=ref)).inserted_primary_key[0]


def row(engine, message_id: int) -> dict:
    with engine.connect() as conn:
        return dict(conn.execute(select(alert_messages).where(alert_messages.c.id == message_id)).mappings().one())


def crash_mid_send(engine, config, message_id: int, **refs) -> None:
    """What a sender killed between sending and recording leaves: the message sent, its row `sending`."""
    with engine.connect().execution_options(**writer_options()) as conn, conn.begin():
        assert outbox.claim(conn, message_id)
    message = row(engine, message_id)
    channels.send(config.channels[message["channel"]], message_id, json.loads(message["body"]), **refs)


def test_backoff_doubles_up_to_the_maximum():
    assert [backoff(Delivery(retry_seconds=30, max_retry_seconds=100), n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


def test_a_receiver_down_for_a_while_gets_the_message_once_when_back(engine, receiver):
    published = []
    sender = Sender(engine, config_for(hook(receiver)), publish=published.append)
    mid = put(engine, "hook", red_body())
    receiver.status = 500
    assert sender.run_once(now=T0) == 1
    first = row(engine, mid)
    assert (first["state"], first["tries"], first["next_try"]) == ("pending", 1, T0 + 0.05)
    assert first["last_error"] == f"webhook at 127.0.0.1:{receiver.port} answered HTTP 500: server error"
    assert sender.run_once(now=T0 + 0.01) == 0  # not due before its backoff
    receiver.stop()
    assert sender.run_once(now=T0 + 1) == 1
    second = row(engine, mid)
    assert (second["state"], second["tries"], second["next_try"]) == ("pending", 2, T0 + 1 + 0.1)
    assert second["last_error"].endswith("could not connect (connection refused)")
    receiver.status = 200
    receiver.start()  # back, on the same port
    assert sender.run_once(now=T0 + 2) == 1
    done = row(engine, mid)
    assert (done["state"], done["tries"], done["sent"]) == ("delivered", 3, T0 + 2)
    assert done["last_error"] == second["last_error"]  # what the retries met stays visible
    assert [r.headers["x-buildmon-delivery"] for r in receiver.delivered()] == [str(mid)]
    assert published == [[{"type": "alerts"}]] * 3
    assert sender.run_once(now=T0 + 3) == 0


def test_retry_after_is_honoured_and_a_revoked_hook_fails_at_once(engine, receiver):
    sender = Sender(engine, config_for(hook(receiver)))
    mid = put(engine, "hook", red_body())
    receiver.status, receiver.retry_after = 429, "30"
    sender.run_once(now=T0)
    assert row(engine, mid)["next_try"] == T0 + 30
    receiver.status, receiver.retry_after = 410, None
    sender.run_once(now=T0 + 30)
    gone = row(engine, mid)
    assert gone["state"] == "failed" and gone["tries"] == 2 and "HTTP 410" in gone["last_error"]


def test_a_message_undelivered_after_give_up_hours_fails(engine, receiver):
    sender = Sender(engine, config_for(hook(receiver)))
    old = put(engine, "hook", red_body(), created=T0 - 25 * 3600)
    receiver.status = 500
    late = put(engine, "hook", red_body(break_id=2), created=T0 - 24 * 3600 + 1)
    sender.run_once(now=T0)  # `late` is tried once more, fails, and has no time left
    sender.run_once(now=T0 + 1)
    assert row(engine, old)["state"] == "failed" and row(engine, old)["tries"] == 0
    assert row(engine, old)["last_error"] == "not delivered within 1 d"
    assert row(engine, late)["state"] == "failed" and "HTTP 500" in row(engine, late)["last_error"]
    assert len(receiver.requests) == 1


def test_a_recovery_waits_for_its_break_message_on_that_channel(engine, receiver):
    with HTTPReceiver() as other:
        sender = Sender(engine, config_for(hook(receiver), hook(other, "other")))
        broke = put(engine, "hook", red_body(break_id=4))
        elsewhere = put(engine, "other", red_body(break_id=4))
        recovered = put(engine, "hook", recovery_body(break_id=4))
        receiver.status = 500
        sender.run_once(now=T0)
        assert row(engine, recovered)["state"] == "pending" and row(engine, recovered)["tries"] == 0
        assert row(engine, elsewhere)["state"] == "delivered"  # another channel does not wait
        receiver.status = 200
        sender.run_once(now=T0 + 1)
        sender.run_once(now=T0 + 1)
        assert [r.headers["x-buildmon-event"] for r in receiver.delivered()] == ["break", "recovery"]
        assert row(engine, broke)["state"] == row(engine, recovered)["state"] == "delivered"


def test_a_recovery_whose_break_was_never_delivered_is_skipped(engine, receiver):
    sender = Sender(engine, config_for(hook(receiver)))
    put(engine, "hook", red_body(break_id=5), state="failed")
    after_failed = put(engine, "hook", recovery_body(break_id=5))
    without = put(engine, "hook", reminder_body(break_id=6))
    sender.run_once(now=T0)
    assert row(engine, after_failed)["state"] == row(engine, without)["state"] == "skipped"
    assert row(engine, after_failed)["last_error"] == "the break's message was failed on this channel"
    assert receiver.requests == []


def test_a_restart_after_a_crash_mid_send_opens_no_second_issue(engine):
    with FakeIssues() as github:
        config = config_for(Channel("gh", "github-issue", token=github.token, api_url=github.url, repo="acme/web"))
        broke = put(engine, "gh", red_body(break_id=8))
        crash_mid_send(engine, config, broke)  # the issue was opened, the row still says `sending`
        sender = Sender(engine, config)
        assert sender.recover() == 1
        sender.run_once(now=T0)
        assert row(engine, broke)["state"] == "delivered" and row(engine, broke)["ref"] == "1"
        assert github.count("POST", "/issues") == 1

        recovered = put(engine, "gh", recovery_body(break_id=8))
        crash_mid_send(engine, config, recovered, break_message_ref="1")
        sender.recover()
        sender.run_once(now=T0 + 1)
        assert row(engine, recovered)["state"] == "delivered"
        assert len(github.comments[("acme/web", 1)]) == 1 and github.all_issues()[0]["state"] == "closed"


def test_a_repeated_email_has_the_same_message_id(engine, tmp_path):
    with SMTPReceiver(tmp_path) as smtp:
        config = config_for(Channel("mail", "email", host="127.0.0.1", port=smtp.port, username=smtp.username,
                                    password=smtp.password, sender="ci@example.com", to=("dev@example.com",),
                                    ca_file=smtp.ca_file, timeout=5))
        mid = put(engine, "mail", red_body())
        crash_mid_send(engine, config, mid)
        sender = Sender(engine, config)
        sender.recover()
        sender.run_once(now=T0)
        first, again = (m["message"]["Message-ID"] for m in smtp.messages)
        assert first == again == row(engine, mid)["ref"]


def test_the_thread_sends_only_while_active_and_resets_sending_rows(engine, receiver):
    allowed, asked, published = threading.Event(), [], []

    def active() -> bool:
        asked.append(allowed.is_set())
        return allowed.is_set()

    now = time.time()
    stuck = put(engine, "hook", red_body(break_id=1), created=now, state="sending")
    sender = Sender(engine, config_for(hook(receiver)), active=active, publish=published.append, poll=0.02)
    sender.start()
    try:
        wait_until(lambda: len(asked) >= 2, what="the sender's passes")
        assert row(engine, stuck)["state"] == "sending"  # not active: not touched
        allowed.set()
        sender.wake()
        wait_until(lambda: row(engine, stuck)["state"] == "delivered", what="the reset message's delivery")
        fresh = put(engine, "hook", red_body(break_id=2), created=now)
        sender.wake()
        wait_until(lambda: row(engine, fresh)["state"] == "delivered", what="a new message's delivery")
    finally:
        sender.stop()
    assert len(receiver.delivered()) == 2 and [{"type": "alerts"}] in published


def test_send_test_delivers_at_once_and_records_it(engine, receiver):
    config = config_for(hook(receiver))
    result = send_test(engine, config, "hook", now=T0)
    assert result == {"id": result["id"], "state": "delivered", "error": None,
                      "detail": f"posted to 127.0.0.1:{receiver.port}"}
    [request] = receiver.requests
    assert request.headers["x-buildmon-event"] == "test" and request.json()["kind"] == "test"
    recorded = row(engine, result["id"])
    assert (recorded["kind"], recorded["state"], recorded["tries"], recorded["break_id"]) == ("test", "delivered", 1,
                                                                                            None)
    with pytest.raises(KeyError):
        send_test(engine, config, "nope")
    receiver.stop()
    failed = send_test(engine, config, "hook", now=T0)
    assert failed["state"] == "failed" and failed["error"].endswith("could not connect (connection refused)")
    assert HOOK_PATH not in failed["error"] and "s3cret" not in failed["error"]
    assert row(engine, failed["id"])["last_error"] == failed["error"]
    assert Sender(engine, config).run_once(now=T0 + 1) == 0  # a failed test is not retried by the loop


def test_send_test_on_github_checks_access_only(engine):
    with FakeIssues() as github:
        config = config_for(Channel("gh", "github-issue", token=github.token, api_url=github.url, repo="acme/web"))
        result = send_test(engine, config, "gh", now=T0)
        assert result["state"] == "delivered" and "the token can read acme/web" in result["detail"]
        assert github.count("POST") == 0
