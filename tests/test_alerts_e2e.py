"""Alerts from end to end: signed webhook deliveries to a real server, its processor deciding, its
sender delivering to real local receivers (Slack-style and generic webhooks, GitHub's issues API,
SMTP with STARTTLS), and the Alerts page's API showing what happened.
"""
import hashlib
import hmac
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone

import pytest
import requests

from dashapp import create_app
from dashapp.config import Config
from tests.helpers import SECRET, LiveServer, fixture_json, post
from tests.receivers import FakeIssues, HTTPReceiver, SMTPReceiver, wait_until

REPO = "octo-org/octo-repo"
NOW = time.time()
HOOK_SECRET = "hook-secret-8J2"


def iso(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_payload(i: int, conclusion: str | None, *, attempt: int = 1, run_id: int | None = None,
                branch: str = "main") -> bytes:
    """A workflow_run delivery for commit `i` (c{i}) of REPO on `branch`: completed with `conclusion`, or
    in progress (None)."""
    payload = fixture_json("workflow_run/completed.payload.json")
    payload["repository"]["default_branch"] = "main"
    created = NOW - 3600 + i * 60
    sha = hashlib.sha1(f"c{i}".encode()).hexdigest()
    run = payload["workflow_run"]
    run.update(id=run_id or 5000 + i, name="CI", head_sha=sha, head_branch=branch, run_attempt=attempt,
               status="completed" if conclusion else "in_progress", conclusion=conclusion,
               created_at=iso(created), run_started_at=iso(created + 5 + attempt * 10),
               updated_at=iso(created + 30 + attempt * 10))
    run["head_commit"].update(id=sha, message=f"Change number {i}\n\nDetails.", timestamp=iso(created - 30),
                              author={"name": "octocat", "email": "octocat@example.com"})
    payload["action"] = "completed" if conclusion else "in_progress"
    return json.dumps(payload).encode()


def sha_of(i: int) -> str:
    return hashlib.sha1(f"c{i}".encode()).hexdigest()


ALERTS = '''
dashboard_url = "https://ci.example.com"
hold_seconds = 0

[delivery]
retry_seconds = 0.2
max_retry_seconds = 0.5

[mentions]
octocat = "<@U0CTO>"

[channels.chat]
type = "slack"
url = "{chat}"

[channels.hook]
type = "webhook"
url = "{hook}"
secret_env = "TEST_ALERT_HOOK_SECRET"

[channels.tracker]
type = "github-issue"
api_url = "{github}"
token_env = "TEST_ALERT_TOKEN"
labels = ["main-broken"]

[channels.mail]
type = "email"
host = "127.0.0.1"
port = {smtp_port}
username = "alerts"
password_env = "TEST_SMTP_PASSWORD"
ca_file = "{ca_file}"
from = "Build Monitor <buildmon@example.com>"
to = ["team@example.com"]

[[rules]]
name = "main"
channels = [{channels}]
ignore_verdicts = []
'''


@pytest.fixture
def receivers(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ALERT_HOOK_SECRET", HOOK_SECRET)
    monkeypatch.setenv("TEST_ALERT_TOKEN", "ghs_alerts_token")
    chat, hook = HTTPReceiver().start(), HTTPReceiver().start()
    issues = FakeIssues(token="ghs_alerts_token", repos=(REPO,)).__enter__()
    smtp = SMTPReceiver(tmp_path)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", smtp.password)
    with smtp:
        yield {"chat": chat, "hook": hook, "issues": issues, "smtp": smtp}
    chat.stop()
    hook.stop()
    issues.__exit__(None, None, None)


def alerts_file(tmp_path, receivers, channels=("chat", "hook", "tracker", "mail"), extra: str = "") -> str:
    path = tmp_path / "alerts.toml"
    path.write_text(ALERTS.format(chat=receivers["chat"].url + "/services/T0/B0/x", hook=receivers["hook"].url + "/ci",
                                  github=receivers["issues"].url, smtp_port=receivers["smtp"].port,
                                  ca_file=receivers["smtp"].ca_file,
                                  channels=", ".join(f'"{c}"' for c in channels)) + extra)
    return str(path)


def start(tmp_path, alerts: str, **settings):
    config = Config.from_env({}, database_path=str(tmp_path / "builds.db"), webhook_secret=SECRET,
                             alerts_config=alerts, **settings)
    app = create_app(config)
    return app, LiveServer(app).__enter__()


def stop(app, server) -> None:
    server.__exit__(None, None, None)
    app.server.extensions["buildmon"].close()


def send(server, payload: bytes, guid: str | None = None) -> None:
    assert post(server.url, "workflow_run", payload, guid=guid).status_code in (200, 202)  # 200: a duplicate
    server.services.settle()


def api(server) -> dict:
    return requests.get(server.url + "/api/alerts", timeout=10).json()


def all_delivered(server, count: int) -> list[dict]:
    def done():
        messages = api(server)["messages"]
        return messages if len(messages) == count and all(m["state"] == "delivered" for m in messages) else None
    return wait_until(done, timeout=30, what=f"{count} messages delivered")


def test_two_red_commits_alert_every_channel_once_and_green_recovers_once(tmp_path, receivers):
    app, server = start(tmp_path, alerts_file(tmp_path, receivers))
    try:
        chat, hook, issues, smtp = (receivers[k] for k in ("chat", "hook", "issues", "smtp"))
        send(server, run_payload(0, "success"))
        send(server, run_payload(1, "failure"))
        send(server, run_payload(2, "failure"))
        all_delivered(server, 4)
        assert len(chat.delivered()) == len(hook.delivered()) == len(smtp.messages) == 1
        text = chat.delivered()[0].json()["text"]
        assert sha_of(1)[:7] in text and "Change number 1" in text and "<@U0CTO>" in text
        [request] = hook.delivered()
        signature = "sha256=" + hmac.new(HOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["x-hub-signature-256"] == signature
        body = request.json()
        assert body["kind"] == "break" and body["first_bad"]["sha"] == sha_of(1)
        assert [c["sha"] for c in body["blame"]] == [sha_of(1)] and body["last_green"]["sha"] == sha_of(0)
        [issue] = issues.all_issues(REPO)
        assert issue["state"] == "open" and [label["name"] for label in issue["labels"]] == ["main-broken"]
        mail = smtp.messages[0]
        assert mail["tls"] and mail["rcpt_tos"] == ["team@example.com"]
        assert "red on main" in mail["message"]["Subject"]

        send(server, run_payload(3, "failure"))  # a third red commit: nothing new
        send(server, run_payload(2, "failure"))  # a redelivery: nothing new
        time.sleep(1.0)
        assert len(api(server)["messages"]) == 4 and len(chat.requests) == 1

        send(server, run_payload(4, "success"))
        all_delivered(server, 8)
        assert len(chat.delivered()) == len(hook.delivered()) == len(smtp.messages) == 2
        recovery = hook.delivered()[1].json()
        assert recovery["kind"] == "recovery" and recovery["fixed_by"]["sha"] == sha_of(4)
        [issue] = issues.all_issues(REPO)
        assert issue["state"] == "closed" and issues.count("POST", "/comments") == 1
        state = api(server)
        assert state["open"] == [] and len(state["history"]) == 1
    finally:
        stop(app, server)


@pytest.mark.parametrize("seed", [1, 2])
def test_shuffled_deliveries_with_duplicates_send_the_same_messages_once(tmp_path, receivers, seed):
    app, server = start(tmp_path, alerts_file(tmp_path, receivers, channels=("hook",)))
    try:
        deliveries = [(str(uuid.uuid4()), run_payload(i, c))
                      for i, c in enumerate(["success", "failure", "failure", "failure", "success"])]
        deliveries += random.Random(seed).sample(deliveries, 3)  # GitHub's redeliveries keep their GUID
        deliveries += [(str(uuid.uuid4()), payload) for _, payload in deliveries[:2]]  # and new GUIDs
        random.Random(seed).shuffle(deliveries)
        for guid, payload in deliveries:
            send(server, payload, guid)
        all_delivered(server, 2)
        time.sleep(0.5)
        got = sorted((r.json()["kind"], r.json()["first_bad"]["sha"], (r.json()["fixed_by"] or {}).get("sha"))
                     for r in receivers["hook"].delivered())
        assert got == [("break", sha_of(1), None), ("recovery", sha_of(1), sha_of(4))]
        assert len(receivers["hook"].requests) == 2
    finally:
        stop(app, server)


def test_a_receiver_down_for_a_while_gets_the_alert_once_it_is_back(tmp_path, receivers):
    hook = receivers["hook"]
    hook.status = 500
    app, server = start(tmp_path, alerts_file(tmp_path, receivers, channels=("hook",)))
    try:
        for i, conclusion in enumerate(["success", "failure", "failure"]):
            send(server, run_payload(i, conclusion))
        wait_until(lambda: len(hook.requests) >= 2, what="two failed tries")
        hook.stop()  # now connections are refused
        message = wait_until(lambda: next((m for m in api(server)["messages"]
                                           if m["tries"] >= 3 and "refused" in (m["last_error"] or "")), None),
                             what="a refused try on record")
        assert message["state"] == "pending"
        hook.status = 200
        hook.start()
        [message] = all_delivered(server, 1)
        assert message["tries"] >= 4
        assert [r.status for r in hook.requests].count(200) == 1
    finally:
        stop(app, server)


def test_a_flaky_failure_rerun_green_pages_no_one_when_verdicts_are_on(tmp_path, receivers):
    # Verdicts on: the decision waits for the failed job's failure lines (the fetcher cannot reach
    # GitHub here, so they stay pending) for up to hold_seconds; the re-run passes meanwhile.
    path = alerts_file(tmp_path, receivers, channels=("hook",))
    text = open(path).read().replace("hold_seconds = 0", "hold_seconds = 120").replace(
        "ignore_verdicts = []", "ignore_verdicts = [\"FLAKY\", \"INFRA\"]\nconsecutive = 1")
    open(path, "w").write(text)
    closed = HTTPReceiver().start()
    closed.stop()  # a port nothing listens on: the fetcher's GitHub
    app, server = start(tmp_path, path, github_token="ghs_x", github_api_url=closed.url)
    try:
        send(server, run_payload(0, "success"))
        job = fixture_json("workflow_job/completed.failure.with-organization.payload.json")
        job["repository"]["full_name"] = REPO
        job["workflow_job"].update(id=777001, run_id=5001, run_attempt=1, head_sha=sha_of(1), head_branch="main",
                                   status="completed", conclusion="failure", name="test")
        assert post(server.url, "workflow_job", json.dumps(job).encode()).status_code == 202
        send(server, run_payload(1, "failure"))
        send(server, run_payload(1, None, attempt=2))
        send(server, run_payload(1, "success", attempt=2))
        time.sleep(6)  # past a sweep
        assert api(server)["messages"] == [] and receivers["hook"].requests == []
    finally:
        stop(app, server)
    # The same with verdicts off pages at once.
    text = text.replace("ignore_verdicts = [\"FLAKY\", \"INFRA\"]", "ignore_verdicts = []")
    open(path, "w").write(text)
    (tmp_path / "builds.db").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"builds.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "builds.inbox.db").unlink(missing_ok=True)
    app, server = start(tmp_path, path, github_token="ghs_x", github_api_url=closed.url)
    try:
        send(server, run_payload(0, "success"))
        send(server, run_payload(1, "failure"))
        all_delivered(server, 1)
    finally:
        stop(app, server)


class Blackhole:
    """A port that takes a request and never answers: a send in flight, for as long as the test wants."""

    def __init__(self):
        import socket

        self.socket = socket
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.taken = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                conn.recv(65536)
                self.taken.append(conn)
        except OSError:  # closed
            pass

    def close(self):
        for conn in self.taken:
            conn.close()
        self.sock.shutdown(self.socket.SHUT_RDWR)  # wakes the accepting thread: the port is free after
        self.sock.close()
        self._thread.join(timeout=5)


def _worker(tmp_path, alerts: str):
    from tests.test_processes import Proc

    return Proc([sys.executable, "-m", "dashapp", "worker"],
                {"DATABASE_PATH": str(tmp_path / "builds.db"), "ALERTS_CONFIG": alerts, "LOG_LEVEL": "INFO",
                 "TEST_ALERT_HOOK_SECRET": HOOK_SECRET, "TEST_ALERT_TOKEN": "ghs_alerts_token",
                 "TEST_SMTP_PASSWORD": "unused"})


def _message(tmp_path) -> dict | None:
    from sqlalchemy import select

    from store.engine import make_engine
    from store.schema import alert_messages

    engine = make_engine(str(tmp_path / "builds.db"))
    try:
        with engine.connect() as conn:
            row = conn.execute(select(alert_messages)).first()
        return dict(row._mapping) if row else None
    finally:
        engine.dispose()


def test_a_worker_killed_between_the_break_and_its_send_delivers_it_once_after_restart(tmp_path, receivers):
    hole = Blackhole()
    hook = receivers["hook"]
    hook.stop()
    hook.port = hole.port  # the channel's URL: first the blackhole, later a receiver on the same port
    alerts = alerts_file(tmp_path, receivers, channels=("hook",))
    # The web process only accepts (PROCESSOR=off); a worker process decides and sends.
    app, server = start(tmp_path, alerts, processor="off")
    worker = _worker(tmp_path, alerts)
    try:
        for i, conclusion in enumerate(["success", "failure", "failure"]):
            assert post(server.url, "workflow_run", run_payload(i, conclusion)).status_code == 202
        wait_until(lambda: hole.taken, timeout=30, what="the worker to send the break")
        assert _message(tmp_path)["state"] == "sending"  # committed, and in flight
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        hole.close()
        hook.start()  # the receiver is up; the worker is not
        time.sleep(0.5)
        assert hook.requests == []
        worker = _worker(tmp_path, alerts)
        wait_until(lambda: (_message(tmp_path) or {}).get("state") == "delivered", timeout=30,
                   what="the break delivered after the restart")
        time.sleep(1.0)
        assert [r.status for r in hook.requests] == [200]
        assert hook.requests[0].json()["kind"] == "break" and _message(tmp_path)["tries"] == 2
    finally:
        worker.stop()
        stop(app, server)
