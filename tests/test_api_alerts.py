"""`/api/alerts` and the test action over a real server: breaks, messages with their delivery states and errors,
channels without their secrets, and who may send a test message (to a real HTTP receiver on 127.0.0.1).

The store is `tests.test_queries_alerts`'s story; the alert configuration is built here in code, with a
secret in every channel that has one, so the answers can be searched for them.
"""
import json

import jsonschema_rs
import pytest
import requests

from alerts.config import AlertConfig, Channel, Operator, Rule
from dashapp import create_app
from dashapp.api.openapi import openapi
from dashapp.config import Config
from tests.helpers import SECRET, LiveServer
from tests.receivers import HTTPReceiver
from tests.test_queries_alerts import GAVE_UP, HOSTILE, RETRY_ERROR, alert_history

TOKEN = "t0ken-for-alert-tests"
SLACK_PATH = "/services/T0SECRET/B0SECRET/XXXXslacksecretXXXX"
SECRETS = ("T0SECRET", "slacksecret", "hmac-s3cret-value", "ghp_s3cretgithubtoken", "smtp-s3cret-password")


def alert_config(receiver_url: str = "http://127.0.0.1:9") -> AlertConfig:
    """Four channels, each with its secret, and one rule: what a small team configures."""
    channels = {
        "team-chat": Channel(name="team-chat", type="slack", url=receiver_url + SLACK_PATH,
                             sources=(("url", "$SLACK_WEBHOOK_URL"),)),
        "ops-hook": Channel(name="ops-hook", type="webhook", url="https://ops.example.net/hooks/buildmon",
                            secret="hmac-s3cret-value", sources=(("secret", "file /run/secrets/hook"),)),
        "tracker": Channel(name="tracker", type="github-issue", token="ghp_s3cretgithubtoken", repo="acme/ops",
                           sources=(("token", "$GITHUB_TOKEN"),)),
        "oncall-mail": Channel(name="oncall-mail", type="email", host="smtp.example.net", username="buildmon",
                               password="smtp-s3cret-password", sender="buildmon@example.net",
                               to=("oncall@example.net",), sources=(("password", "$SMTP_PASSWORD"),)),
    }
    rules = (Rule(name="main-red", repos=("acme/*",), channels=("team-chat", "ops-hook", "tracker", "oncall-mail"),
                  red_hours=4.0, stale=True),)
    return AlertConfig(path="/etc/buildmon/alerts.toml", rules=rules, channels=channels,
                       operator=Operator(channels=("oncall-mail",), max_lag_seconds=600.0))


def serve(db_path, alerts: AlertConfig | None, **config):
    """The app on `db_path` with `alerts` as its alert configuration, as the lead's Services will hold it."""
    app = create_app(Config.from_env({}, database_path=str(db_path), webhook_secret=SECRET,
                                     api_rate_limit="100000/minute", **config))
    app.server.extensions["buildmon"].alerts = alerts
    return app


@pytest.fixture
def receiver():
    with HTTPReceiver() as found:
        yield found


@pytest.fixture
def story(engine):
    return alert_history(engine)


@pytest.fixture
def api(db_path, story, receiver):
    app = serve(db_path, alert_config(receiver.url))
    with LiveServer(app) as live:
        yield live
    app.server.extensions["buildmon"].close()


def _test(live, name: str, **kwargs):
    kwargs.setdefault("json", {})
    return requests.post(f"{live.url}/api/alerts/channels/{name}/test", timeout=30, **kwargs)


def test_alerts_lists_breaks_messages_and_channels(api, story):
    body = requests.get(api.url + "/api/alerts", timeout=30).json()
    assert body["configured"] is True and body["limit"] == 100 and body["offset"] == 0
    assert [b["id"] for b in body["open"]] == [story["stale"], story["web"]]
    web = body["open"][1]
    assert (web["repo"], web["workflow"], web["branch"], web["first_bad"]["sha"], web["red_count"]) == (
        "acme/web", "CI", "main", "w2", 2)
    states = {d["channel"]: (d["state"], d["tries"], d["last_error"]) for d in web["deliveries"]}
    assert states == {"team-chat": ("delivered", 1, None), "ops-hook": ("pending", 3, RETRY_ERROR),
                      "oncall-mail": ("failed", 9, GAVE_UP)}
    assert [b["id"] for b in body["history"]] == [story["api"], story["mobile"]]
    assert body["history"][0]["fixed_by"]["sha"] == "a4"
    assert len(body["messages"]) == 10 and body["messages"][0]["id"] == story["test"]
    assert body["messages"][1]["last_error"] == HOSTILE  # data, returned as it is (JSON is no markup)
    assert body["counts"]["messages"]["failed"] == 1 and body["counts"]["open"] == 2
    assert [(c["name"], c["type"]) for c in body["channels"]] == [
        ("team-chat", "slack"), ("ops-hook", "webhook"), ("tracker", "github-issue"), ("oncall-mail", "email")]
    assert all(c["description"] for c in body["channels"])
    assert body["rules"] == [{"name": "main-red", "repos": ["acme/*"], "workflows": ["*"], "branches": [],
                              "consecutive": 2, "ignore_verdicts": ["FLAKY", "INFRA"],
                              "channels": ["team-chat", "ops-hook", "tracker", "oncall-mail"], "red_hours": 4.0,
                              "stale": True}]
    assert body["operator"] == {"channels": ["oncall-mail"], "max_lag_seconds": 600.0, "max_failed_deliveries": None}
    paged = requests.get(api.url + "/api/alerts", params={"limit": "1", "offset": "1"}, timeout=30).json()
    assert [b["id"] for b in paged["history"]] == [story["mobile"]] and len(paged["messages"]) == 1


def test_no_secret_is_ever_answered(api):
    text = requests.get(api.url + "/api/alerts", timeout=30).text
    assert not [s for s in SECRETS if s in text]
    assert "hooks" not in json.dumps(json.loads(text)["channels"])  # no URL path either: only hosts


def test_the_answer_matches_the_openapi_description(api):
    body = requests.get(api.url + "/api/alerts", timeout=30).json()
    schema = openapi()["paths"]["/api/alerts"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    jsonschema_rs.Draft202012Validator(schema).validate(body)


def test_not_configured_says_so_with_empty_lists(db_path, story):
    app = serve(db_path, None)
    try:
        with LiveServer(app) as live:
            body = requests.get(live.url + "/api/alerts", timeout=30).json()
            assert (body["configured"], body["channels"], body["rules"], body["operator"]) == (False, [], [], None)
            assert len(body["open"]) == 2  # what the store recorded is still there to read
            answer = _test(live, "team-chat")
            assert answer.status_code == 409 and "ALERTS_CONFIG" in answer.json()["error"]
    finally:
        app.server.extensions["buildmon"].close()


@pytest.mark.parametrize("params,message", [({"limit": "0"}, "limit"), ({"offset": "-1"}, "offset"),
                                            ({"limit": "x"}, "limit"), ({"repo": "acme/web"}, "unknown parameter")])
def test_bad_parameters_are_a_json_400(api, params, message):
    answer = requests.get(api.url + "/api/alerts", params=params, timeout=30)
    assert answer.status_code == 400 and message in answer.json()["error"]


def test_a_loopback_client_of_an_unprotected_server_sends_a_test(api, receiver):
    answer = _test(api, "team-chat")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["channel"], body["state"], body["delivered"], body["error"]) == ("team-chat", "delivered", True, None)
    assert not [s for s in SECRETS if s in answer.text]
    (got,) = receiver.requests
    assert got.path == SLACK_PATH and "text" in got.json()
    # The test message is in the outbox like any other, newest first.
    newest = requests.get(api.url + "/api/alerts", timeout=30).json()["messages"][0]
    assert (newest["id"], newest["kind"], newest["channel"], newest["state"]) == (body["id"], "test", "team-chat",
                                                                                   "delivered")


def test_a_test_needs_json_a_known_channel_and_an_object(api, receiver):
    form = _test(api, "team-chat", json=None, data={"x": "1"})
    assert form.status_code == 415 and "application/json" in form.json()["error"]
    bare = _test(api, "team-chat", json=None)
    assert bare.status_code == 415
    plain = _test(api, "team-chat", json=None, data="{}", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 415
    unknown = _test(api, "nobody")
    assert unknown.status_code == 404 and "team-chat" in unknown.json()["error"]
    listed = _test(api, "team-chat", json=[1])
    assert listed.status_code == 400 and "JSON object" in listed.json()["error"]
    empty = _test(api, "team-chat", json=None, data=b"", headers={"Content-Type": "application/json"})
    assert empty.status_code == 200
    assert requests.get(f"{api.url}/api/alerts/channels/team-chat/test", timeout=30).status_code == 404  # POST only
    assert len(receiver.requests) == 1  # only the one allowed


def test_an_unprotected_server_refuses_a_test_from_elsewhere(db_path, story, receiver):
    # Behind a declared proxy, the client is the forwarded one; without one, a forwarding header says a proxy
    # on this host (that nobody declared) relayed someone: neither is local.
    for proxies, forwarded in ((1, "203.0.113.7"), (0, "203.0.113.7")):
        app = serve(db_path, alert_config(receiver.url), trusted_proxies=proxies)
        try:
            with LiveServer(app) as live:
                answer = _test(live, "team-chat", headers={"X-Forwarded-For": forwarded})
                assert answer.status_code == 403, (proxies, answer.text)
                assert "API_TOKENS or DASHBOARD_USERS" in answer.json()["error"]
                if proxies:  # the proxy's own loopback client is local
                    assert _test(live, "team-chat", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
        finally:
            app.server.extensions["buildmon"].close()
    assert len(receiver.requests) == 1


def test_a_protected_server_wants_the_credential_from_anywhere(db_path, story, receiver):
    app = serve(db_path, alert_config(receiver.url), api_tokens=TOKEN, trusted_proxies=1)
    try:
        with LiveServer(app) as live:
            assert _test(live, "team-chat").status_code == 401
            assert _test(live, "team-chat", headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert requests.get(live.url + "/api/alerts", timeout=30).status_code == 401
            # With the token, a client from elsewhere may: the credential is the authorisation.
            answer = _test(live, "team-chat", headers={"Authorization": f"Bearer {TOKEN}",
                                                       "X-Forwarded-For": "203.0.113.7"})
            assert answer.status_code == 200 and answer.json()["delivered"] is True
            no_json = _test(live, "team-chat", json=None, data="{}",
                            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "text/plain"})
            assert no_json.status_code == 415
    finally:
        app.server.extensions["buildmon"].close()
    assert len(receiver.requests) == 1


def test_a_test_that_fails_says_why_without_the_secret(db_path, story):
    with HTTPReceiver() as gone:
        url = gone.url  # a port that was a receiver's: nothing listens there once it has stopped
    app = serve(db_path, alert_config(url))
    try:
        with LiveServer(app) as live:
            answer = _test(live, "team-chat")
            body = answer.json()
            assert answer.status_code == 200 and (body["state"], body["delivered"]) == ("failed", False)
            assert "127.0.0.1" in body["error"] and not [s for s in SECRETS if s in answer.text]
            shown = requests.get(live.url + "/api/alerts", timeout=30).json()["messages"][0]
            assert (shown["id"], shown["state"], shown["last_error"]) == (body["id"], "failed", body["error"])
    finally:
        app.server.extensions["buildmon"].close()
