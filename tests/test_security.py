"""Protection of every data route, request limits, and output that stays inert."""
import base64
import re

import pytest
import requests

from dashapp import create_app
from dashapp.config import Config
from tests.helpers import SECRET, LiveServer, fixture_bytes, post

TOKEN = "t0ken-for-tests"
OPEN = {"/healthz"}  # and /webhook, served before Flask with its own checks


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
