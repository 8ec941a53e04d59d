"""Protection of every data route, request limits, and output that stays inert."""
import base64
import re
import uuid

import pytest
import requests
from prometheus_client import generate_latest

from dashapp import create_app
from dashapp.config import Config
from tests.helpers import SECRET, LiveServer, fixture_bytes, post

TOKEN = "t0ken-for-tests"
# And /webhook, served before Flask with its own checks; and the sign-in pages (tests/test_signin.py).
OPEN = {"/healthz", "/readyz", "/livez", "/signin", "/signin/callback", "/signed-out"}


@pytest.fixture
def protected(db_path):
    config = Config.from_env({}, database_path=db_path, webhook_secret=SECRET, api_tokens=TOKEN,
                             dashboard_users="ann:pw1,bob:pw2")
    app = create_app(config)
    with LiveServer(app) as live:
        yield app, live


def _sample_paths(app):
    """One concrete URL per rule of the server, with its methods."""
    for rule in app.server.url_map.iter_rules():
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: {"id": "1"}.get(m.group(1), "x"), rule.rule)
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        yield rule.rule, path, methods


def test_every_data_route_needs_a_token_or_login(protected):
    app, live = protected
    checked = 0
    for rule, path, methods in _sample_paths(app):
        if rule in OPEN:
            continue
        for method in methods:
            answer = requests.request(method, live.url + path, timeout=10)
            assert answer.status_code == 401, (method, rule, answer.status_code)
            good = requests.request(method, live.url + path, timeout=10, headers={"Authorization": f"Bearer {TOKEN}"})
            assert good.status_code != 401, (method, rule)
            checked += 1
    assert checked >= 5  # the pages, Dash's own routes, and the data routes at least


def test_login_for_pages_and_wrong_credentials(protected):
    _app, live = protected
    page = requests.get(live.url + "/", timeout=10)
    assert page.status_code == 401 and page.headers["WWW-Authenticate"].startswith("Basic")
    assert requests.get(live.url + "/", auth=("ann", "pw1"), timeout=10).status_code == 200
    assert requests.get(live.url + "/", auth=("ann", "pw2"), timeout=10).status_code == 401
    assert requests.get(live.url + "/", auth=("eve", "pw1"), timeout=10).status_code == 401
    bad = base64.b64encode(b"\xff\xfe").decode()
    assert requests.get(live.url + "/", headers={"Authorization": f"Basic {bad}"}, timeout=10).status_code == 401
    assert requests.get(live.url + "/", headers={"Authorization": "Bearer nope"}, timeout=10).status_code == 401


def test_webhook_and_healthz_stay_open(protected):
    _app, live = protected
    assert requests.get(live.url + "/healthz", timeout=10).json()["status"] == "ok"
    assert post(live.url, "ping", fixture_bytes("ping/payload.json")).status_code == 202


def test_failed_signatures_are_limited_valid_deliveries_are_not(db_path):
    config = Config.from_env({}, database_path=db_path, webhook_secret=SECRET, webhook_failure_limit="5/minute")
    with LiveServer(create_app(config)) as live:
        body = fixture_bytes("ping/payload.json")
        codes = [post(live.url, "ping", body, secret="wrong").status_code for _ in range(8)]
        assert codes[:5] == [401] * 5 and set(codes[5:]) == {429}
        # A correctly signed delivery from the same client still gets in.
        assert all(post(live.url, "ping", body).status_code == 202 for _ in range(10))
        # Over the limit, a refused request is answered before its body is read.
        assert post(live.url, "ping", body, secret="wrong").status_code == 429


def _limited(db_path, **overrides):
    config = Config.from_env({}, database_path=db_path, webhook_secret=SECRET, api_tokens=TOKEN,
                             dashboard_users="ann:pw1", auth_failure_limit="5/minute", **overrides)
    return create_app(config)


def test_wrong_tokens_and_passwords_turn_into_429_for_that_client(db_path):
    app = _limited(db_path)
    try:
        with LiveServer(app) as live:
            wrong = [requests.get(live.url + "/api/builds", headers={"Authorization": "Bearer guess"}, timeout=10)
                     for _ in range(3)]
            wrong += [requests.get(live.url + "/", auth=("ann", f"guess{i}"), timeout=10) for i in range(4)]
            assert [a.status_code for a in wrong] == [401] * 5 + [429] * 2
            assert int(wrong[-1].headers["Retry-After"]) >= 1
            assert wrong[-2].headers["Content-Type"].startswith("text/plain")
            # Over the limit even the right token is refused: otherwise 200 against 429 would confirm a guess.
            right = requests.get(live.url + "/api/builds", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            assert right.status_code == 429 and "too many" in right.json()["error"]
            # Asking without credentials is how a browser starts a login: never counted, still 401.
            assert requests.get(live.url + "/", timeout=10).status_code == 401
            metrics = requests.get(live.url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
            assert metrics.status_code == 429  # the client is still over its limit
        text = generate_latest(app.server.extensions["buildmon"].stats.registry).decode()
        assert 'buildmon_auth_failures_total{outcome="refused"} 5.0' in text
        assert 'buildmon_auth_failures_total{outcome="limited"} 4.0' in text
    finally:
        app.server.extensions["buildmon"].close()


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(db_path):
    app = _limited(db_path, trusted_proxies=1)
    try:
        with LiveServer(app) as live:
            def get(client, token="guess"):
                return requests.get(live.url + "/api/builds", timeout=10, headers={
                    "Authorization": f"Bearer {token}", "X-Forwarded-For": client}).status_code

            assert [get("203.0.113.5") for _ in range(6)] == [401] * 5 + [429]
            assert get("203.0.113.6", TOKEN) == 200  # another client behind the same proxy
            assert get("203.0.113.5", TOKEN) == 429
    finally:
        app.server.extensions["buildmon"].close()


def test_without_a_trusted_proxy_forwarded_addresses_are_ignored(db_path):
    app = _limited(db_path)
    try:
        with LiveServer(app) as live:
            codes = [requests.get(live.url + "/api/builds", timeout=10, headers={
                "Authorization": "Bearer guess", "X-Forwarded-For": f"198.51.100.{i}"}).status_code for i in range(6)]
            assert codes == [401] * 5 + [429]  # a client cannot pick a fresh address for each guess
    finally:
        app.server.extensions["buildmon"].close()


def _unsigned(url, **headers):
    return requests.post(url + "/webhook", data=fixture_bytes("ping/payload.json"), timeout=10, headers={
        "X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4()), "Content-Type": "application/json",
        **headers})


def test_loopback_mode_does_not_trust_a_proxy_on_the_same_host(db_path):
    config = Config.from_env({}, database_path=db_path, allow_unsigned="loopback")
    app = create_app(config)
    try:
        with LiveServer(app) as live:
            assert _unsigned(live.url).status_code == 202  # a local client, straight to the socket
            # A proxy on this host forwarding someone: the socket says 127.0.0.1, the client is not local.
            assert _unsigned(live.url, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
            assert _unsigned(live.url, **{"Forwarded": "for=203.0.113.7"}).status_code == 401
    finally:
        app.server.extensions["buildmon"].close()
    app = create_app(Config.from_env({}, database_path=db_path, allow_unsigned="loopback", trusted_proxies=1))
    try:
        with LiveServer(app) as live:  # the declared proxy's word is taken: only a local client is local
            assert _unsigned(live.url, **{"X-Forwarded-For": "203.0.113.7"}).status_code == 401
            assert _unsigned(live.url, **{"X-Forwarded-For": "127.0.0.1"}).status_code == 202
    finally:
        app.server.extensions["buildmon"].close()


def test_config_repr_hides_secrets():
    config = Config.from_env({}, webhook_secret="s3cret", github_token="ghp_x", api_tokens="tok-XYZ",
                             dashboard_users="a:b")
    assert not any(s in repr(config) for s in ("s3cret", "ghp_x", "tok-XYZ", "a:b"))


def test_secrets_never_reach_logs_or_answers(db_path, caplog):
    import logging

    secrets = {"webhook": "whsec-Q7x", "token": "ghp_tokenQ7x", "api": "api-Q7x", "user": "pw-Q7x"}
    caplog.set_level(logging.DEBUG)
    config = Config.from_env({}, database_path=db_path, webhook_secret=secrets["webhook"],
                             github_token=secrets["token"], api_tokens=secrets["api"],
                             dashboard_users=f"ann:{secrets['user']}")
    with LiveServer(create_app(config)) as live:
        auth = {"Authorization": f"Bearer {secrets['api']}"}
        answers = [
            post(live.url, "ping", fixture_bytes("ping/payload.json"), secret="wrong"),
            post(live.url, "ping", b"{bad", secret=secrets["webhook"]),
            requests.get(live.url + "/api/builds?since=garbage", headers=auth, timeout=10),
            requests.get(live.url + "/api/runs/123456", headers=auth, timeout=10),
            requests.get(live.url + "/api/openapi.json", headers=auth, timeout=10),
            requests.get(live.url + "/healthz", timeout=10),
            requests.get(live.url + "/metrics", headers=auth, timeout=10),
        ]
    seen = caplog.text + "".join(a.text for a in answers) + repr(config)
    assert [name for name, value in secrets.items() if value in seen] == []
