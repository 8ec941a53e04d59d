"""Sign-in against a local OpenID Connect provider (tests/fakeoidc.py), roles on every route, CSRF, session
expiry, API tokens and the audit log, over real HTTP."""
import re
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from dashapp import create_app
from dashapp.config import Config
from tests.fakeoidc import FakeOIDC
from tests.helpers import SECRET, LiveServer

pytestmark = pytest.mark.both_stores  # sessions, tokens and the audit log are SQL of their own

ANN = {"sub": "u-ann", "preferred_username": "ann", "email": "ann@example.com", "email_verified": True}
BOB = {"sub": "u-bob", "preferred_username": "bob", "email": "bob@example.com", "email_verified": True}
CAROL = {"sub": "u-carol", "preferred_username": "carol", "email": "carol@example.com", "email_verified": True}
# What each route needs beyond a viewer; every other route of the server is a viewer's.  A route added without
# a place here fails `test_every_route_answers_each_role_as_it_should` until it is put in one.
ADMIN_ROUTES = {("GET", "/api/tokens"), ("POST", "/api/tokens"), ("DELETE", "/api/tokens/<token_id>"),
                ("GET", "/api/audit")}
MAINTAINER_ROUTES = {("POST", "/api/alerts/channels/<name>/test"), ("GET", "/api/deliveries"),
                     ("GET", "/api/deliveries/<guid>"), ("POST", "/api/deliveries/<guid>/replay"),
                     ("POST", "/api/deliveries/replay"), ("GET", "/api/backfills"), ("POST", "/api/backfills"),
                     ("POST", "/api/reconcile"), ("GET", "/api/archives")}
OPEN = {"/healthz", "/readyz", "/livez", "/signin", "/signin/callback", "/signed-out"}


@pytest.fixture
def provider():
    with FakeOIDC() as fake:
        yield fake


def _config(db_path, provider, **overrides):
    settings = {"database_path": db_path, "webhook_secret": SECRET, "oidc_issuer": provider.url,
                "oidc_client_id": provider.client_id, "oidc_client_secret": provider.client_secret,
                "role_admins": "ann", "role_maintainers": "bob@example.com", "role_viewers": "@example.com",
                "auth_failure_limit": "1000/minute", **overrides}
    return Config.from_env({}, **settings)


@pytest.fixture
def server(db_path, provider):
    app = create_app(_config(db_path, provider))
    try:
        with LiveServer(app) as live:
            yield live
    finally:
        app.server.extensions["buildmon"].close()


def sign_in(live, provider, user, next_path="/api/me") -> requests.Session:
    provider.user = dict(user)
    browser = requests.Session()
    answer = browser.get(f"{live.url}/signin", params={"next": next_path}, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.url == live.url + next_path
    return browser


def _csrf(browser) -> dict:
    return {"X-CSRFToken": browser.cookies.get("_csrf_token")}


def test_sign_in_runs_the_code_flow_with_pkce_state_and_nonce(server, provider):
    browser = sign_in(server, provider, ANN)
    me = browser.get(server.url + "/api/me", timeout=10).json()
    assert (me["actor"], me["role"], me["via"], me["email"]) == ("ann", "admin", "session", "ann@example.com")
    authorize = next(args for path, args in provider.requests if path == "/authorize")
    token = next(args for path, args in provider.requests if path == "/token")
    assert authorize["code_challenge_method"] == "S256" and len(authorize["code_challenge"]) >= 43
    assert authorize["state"] and authorize["nonce"] and authorize["redirect_uri"] == server.url + "/signin/callback"
    assert len(token["code_verifier"]) >= 43 and "client_secret" not in token  # the secret went as Basic auth
    # The session cookie is HttpOnly; the CSRF one is readable by the page (Dash sends it back), both Lax/Strict.
    cookies = {c.name: c for c in browser.cookies}
    assert cookies["buildmon_session"].has_nonstandard_attr("HttpOnly")
    assert not cookies["_csrf_token"].has_nonstandard_attr("HttpOnly")
    # The page's navbar says who is signed in, with the sign-out form carrying the CSRF token.
    layout = browser.get(server.url + "/_dash-layout", timeout=10).text
    assert '"signed-in-as"' in layout and browser.cookies.get("_csrf_token") in layout
    # And the next path is kept only when it is this site's.
    assert sign_in(server, provider, ANN, next_path="/triage?window=30d").cookies.get("buildmon_session")
    evil = requests.Session().get(f"{server.url}/signin", params={"next": "//evil.example/x"}, timeout=30)
    assert evil.url == server.url + "/"


def test_strangers_are_sent_to_sign_in_and_machines_get_401(server):
    page = requests.get(server.url + "/triage?window=7d", allow_redirects=False, timeout=10)
    assert page.status_code == 302
    assert page.headers["Location"] == "/signin?next=%2Ftriage%3Fwindow%3D7d"
    for path in ("/api/builds", "/_dash-layout", "/metrics"):
        assert requests.get(server.url + path, allow_redirects=False, timeout=10).status_code == 401, path
    assert requests.get(server.url + "/healthz", timeout=10).status_code == 200


@pytest.mark.parametrize("tamper", ["signature", "nonce", "audience", "expired"])
def test_an_id_token_that_does_not_hold_is_refused(server, provider, tamper):
    provider.tamper, provider.user = tamper, dict(ANN)
    browser = requests.Session()
    answer = browser.get(server.url + "/signin", timeout=30)
    assert answer.status_code == 400 and "Sign-in failed" in answer.text
    assert "buildmon_session" not in browser.cookies
    assert browser.get(server.url + "/api/me", timeout=10).status_code == 401


def test_a_callback_with_a_state_of_another_flow_is_refused(server, provider):
    provider.user = dict(ANN)
    browser = requests.Session()
    start = browser.get(server.url + "/signin", allow_redirects=False, timeout=10)
    authorize = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    code = parse_qs(urlsplit(authorize.headers["Location"]).query)["code"][0]
    forged = browser.get(f"{server.url}/signin/callback", params={"code": code, "state": "forged"}, timeout=10)
    assert forged.status_code == 400 and "buildmon_session" not in browser.cookies
    # Nor does a code work in a browser that never started the flow (no flow cookie: a login CSRF).
    other = requests.get(authorize.headers["Location"], timeout=10)
    assert other.status_code == 400


def test_roles_come_from_logins_addresses_domains_and_groups(db_path, provider):
    app = create_app(_config(db_path, provider, role_admins="group:ops", role_viewers="@example.com,dave"))
    try:
        with LiveServer(app) as live:
            def role(user):
                provider.user = dict(user)
                answer = requests.Session().get(live.url + "/signin?next=/api/me", timeout=30)
                return answer.json()["role"] if answer.status_code == 200 else answer.status_code

            assert role(BOB) == "maintainer"  # his address
            assert role(CAROL) == "viewer"  # her domain
            assert role({**CAROL, "sub": "x", "preferred_username": "x", "groups": ["OPS"]}) == "admin"
            assert role({"sub": "d", "preferred_username": "dave"}) == "viewer"  # a login, no address
            assert role({"sub": "e", "preferred_username": "eve", "email": "eve@evil.example",
                         "email_verified": True}) == 403
            # An address the provider has not verified counts for nothing.
            assert role({**CAROL, "sub": "y", "preferred_username": "y", "email_verified": False}) == 403
    finally:
        app.server.extensions["buildmon"].close()


def _walk(app):
    """(method, rule, a concrete path) for every route of the server, but the open ones and /signout."""
    for rule in app.url_map.iter_rules():
        if rule.rule in OPEN or rule.rule == "/signout":
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: {"token_id": "999"}.get(m.group(1), "x"), rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule.rule, path


def test_every_route_answers_each_role_as_it_should(db_path, provider):
    app = create_app(_config(db_path, provider))
    try:
        with LiveServer(app) as live:
            people = {"admin": sign_in(live, provider, ANN), "maintainer": sign_in(live, provider, BOB),
                      "viewer": sign_in(live, provider, CAROL)}
            checked = 0
            for method, rule, path in _walk(app.server):
                needs = "admin" if (method, rule) in ADMIN_ROUTES else \
                    "maintainer" if (method, rule) in MAINTAINER_ROUTES else "viewer"
                for role, browser in people.items():
                    answer = browser.request(method, live.url + path, headers=_csrf(browser), json={},
                                             allow_redirects=False, timeout=10)
                    allowed = {"viewer": 0, "maintainer": 1, "admin": 2}[role] >= \
                        {"viewer": 0, "maintainer": 1, "admin": 2}[needs]
                    if allowed:
                        assert answer.status_code not in (401, 403), (method, rule, role, answer.text[:200])
                    else:
                        assert answer.status_code == 403 and f"needs the {needs} role" in answer.json()["error"], \
                            (method, rule, role)
                    checked += 1
                # Nobody signed in: 401, or a redirect to sign in for a page.
                anonymous = requests.request(method, live.url + path, allow_redirects=False, timeout=10)
                assert anonymous.status_code in (401, 302), (method, rule)
            assert checked >= 3 * 20
    finally:
        app.server.extensions["buildmon"].close()


def test_a_session_request_that_changes_something_needs_its_csrf_token(server, provider):
    browser = sign_in(server, provider, ANN)
    body = {"name": "ci", "role": "viewer"}
    missing = browser.post(server.url + "/api/tokens", json=body, timeout=10)
    wrong = browser.post(server.url + "/api/tokens", json=body, headers={"X-CSRFToken": "guess"}, timeout=10)
    assert missing.status_code == wrong.status_code == 403 and "CSRF" in missing.json()["error"]
    dash_call = browser.post(server.url + "/_dash-update-component", json={}, timeout=10)
    assert dash_call.status_code == 403 and "CSRF" in dash_call.json()["error"]
    assert browser.post(server.url + "/api/tokens", json=body, headers=_csrf(browser), timeout=10).status_code == 201
    # Reading needs no token; sign-out without it is refused too (a page elsewhere cannot sign you out).
    assert browser.get(server.url + "/api/tokens", timeout=10).status_code == 200
    assert browser.post(server.url + "/signout", allow_redirects=False, timeout=10).status_code == 403


def test_sessions_end_when_they_expire_and_at_sign_out(db_path, provider):
    app = create_app(_config(db_path, provider, session_hours=1.5 / 3600))
    try:
        with LiveServer(app) as live:
            browser = sign_in(live, provider, ANN)
            assert browser.get(live.url + "/api/me", timeout=10).status_code == 200
            time.sleep(2)
            assert browser.get(live.url + "/api/me", timeout=10).status_code == 401
            page = browser.get(live.url + "/", allow_redirects=False, timeout=10)
            assert page.status_code == 302 and page.headers["Location"].startswith("/signin")
    finally:
        app.server.extensions["buildmon"].close()


def test_sign_out_ends_the_session_everywhere(server, provider):
    browser = sign_in(server, provider, ANN)
    copy = requests.Session()
    copy.cookies.update(browser.cookies)  # the same session, e.g. on another host behind the balancer
    out = browser.post(server.url + "/signout", data={"csrf_token": browser.cookies.get("_csrf_token")},
                       allow_redirects=False, timeout=10)
    assert out.status_code == 302 and out.headers["Location"] == "/signed-out"
    assert copy.get(server.url + "/api/me", timeout=10).status_code == 401
    actions = [e["action"] for e in sign_in(server, provider, ANN).get(server.url + "/api/audit", timeout=10)
               .json()["items"]]
    assert actions[:3] == ["signin", "signout", "signin"]


def test_tokens_carry_a_role_expire_and_are_revoked(server, provider):
    admin = sign_in(server, provider, ANN)

    def issue(**body):
        answer = admin.post(server.url + "/api/tokens", json=body, headers=_csrf(admin), timeout=10)
        assert answer.status_code == 201, answer.text
        return answer.json()

    viewer = issue(name="dashboard TV", role="viewer")
    short = issue(name="one second", role="maintainer", days=1.5 / 86400)
    assert viewer["token"].startswith("bm_") and viewer["expires"] is None

    def call(token, method="GET", path="/api/builds", **kwargs):
        return requests.request(method, server.url + path, headers={"Authorization": f"Bearer {token}"},
                                timeout=10, **kwargs).status_code

    assert call(viewer["token"]) == 200
    assert call(viewer["token"], "POST", "/api/tokens", json={"name": "x"}) == 403  # a viewer issues nothing
    assert call(short["token"], "GET", "/api/me") == 200
    time.sleep(2)
    assert call(short["token"], "GET", "/api/me") == 401  # expired
    listed = {t["id"]: t for t in admin.get(server.url + "/api/tokens", timeout=10).json()["items"]}
    assert listed[viewer["id"]]["state"] == "live" and listed[short["id"]]["state"] == "expired"
    assert "token" not in listed[viewer["id"]] and "digest" not in listed[viewer["id"]]
    revoked = admin.delete(f"{server.url}/api/tokens/{viewer['id']}", headers=_csrf(admin), timeout=10)
    assert revoked.status_code == 200
    assert call(viewer["token"]) == 401
    again = admin.delete(f"{server.url}/api/tokens/{viewer['id']}", headers=_csrf(admin), timeout=10)
    assert again.status_code == 404
    audit = admin.get(server.url + "/api/audit", timeout=10).json()["items"]
    assert [(e["action"], e["actor"], e["target"]) for e in audit[:3]] == [
        ("token.revoke", "ann", f"token:{viewer['id']}"), ("token.issue", "ann", f"token:{short['id']}"),
        ("token.issue", "ann", f"token:{viewer['id']}")]
    # Bad requests say what is wrong.
    for body in ({}, {"name": "x", "role": "root"}, {"name": "x", "days": 0}, {"name": "x", "days": "7"},
                 {"name": "x", "extra": 1}, []):
        answer = admin.post(server.url + "/api/tokens", json=body, headers=_csrf(admin), timeout=10)
        assert answer.status_code == 400 and answer.json()["error"], body


def test_an_unprotected_server_issues_no_tokens_and_stays_open(db_path):
    app = create_app(Config.from_env({}, database_path=db_path, webhook_secret=SECRET))
    try:
        with LiveServer(app) as live:
            me = requests.get(live.url + "/api/me", timeout=10).json()
            assert (me["role"], me["via"], me["protected"]) == ("admin", "local", False)  # this host
            answer = requests.post(live.url + "/api/tokens", json={"name": "x"}, timeout=10)
            assert answer.status_code == 409 and "would open nothing" in answer.json()["error"]
            assert requests.get(live.url + "/signin", timeout=10).status_code == 404
    finally:
        app.server.extensions["buildmon"].close()


def test_github_sign_in_maps_organisations_teams_and_addresses_to_roles(db_path):
    from tests.fakegithub_oauth import FakeGitHubOAuth

    with FakeGitHubOAuth() as github:
        config = Config.from_env({}, database_path=db_path, webhook_secret=SECRET, github_api_url=github.api_url,
                                 github_oauth_client_id=github.client_id,
                                 github_oauth_client_secret=github.client_secret,
                                 role_admins="team:github/justice-league", role_maintainers="org:acme",
                                 role_viewers="@github.com")
        app = create_app(config)
        try:
            with LiveServer(app) as live:
                def sign_in_as(**user):
                    github.user = {**github.user, **user}
                    browser = requests.Session()
                    answer = browser.get(f"{live.url}/signin?next=/api/me", timeout=30)
                    return browser, answer

                browser, answer = sign_in_as()
                assert answer.status_code == 200, answer.text
                assert (answer.json()["actor"], answer.json()["role"]) == ("octocat", "admin")  # the team
                assert answer.json()["email"] == "octocat@github.com"  # the primary verified address
                authorize = next(a for p, a, _ in github.requests if p == "/login/oauth/authorize")
                assert authorize["code_challenge_method"] == "S256" and authorize["state"]
                assert set(authorize["scope"].split()) == {"read:user", "user:email", "read:org"}
                token = next(a for p, a, _ in github.requests if p == "/login/oauth/access_token")
                assert token["code_verifier"]
                # The REST calls carried the user's token (not the server's GITHUB_TOKEN).
                assert all(auth and auth.startswith("Bearer gho_") for p, _, auth in github.requests
                           if p.startswith("/api/v3/"))
                assert browser.get(live.url + "/api/tokens", timeout=10).status_code == 200

                _, answer = sign_in_as(login="hubot", id=2, teams=[], orgs=["acme"])
                assert answer.json()["role"] == "maintainer"  # the organisation
                _, answer = sign_in_as(login="mona", id=3, teams=[], orgs=[])
                assert answer.json()["role"] == "viewer"  # the address
                unverified = [{"email": "x@github.com", "primary": True, "verified": False}]
                _, answer = sign_in_as(login="x", id=4, teams=[], orgs=[], emails=unverified)
                assert answer.status_code == 403 and "No access" in answer.text
        finally:
            app.server.extensions["buildmon"].close()


def test_github_web_address_follows_the_api_address():
    from dashapp.signin import github_web_url

    assert github_web_url("https://api.github.com") == "https://github.com"
    assert github_web_url("https://ghe.example.com/api/v3/") == "https://ghe.example.com"
