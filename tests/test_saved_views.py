"""Saved views and pins over the API (store/savedviews.py, dashapp/api/views.py): each person's own, shared by
link, checked on the way in."""
import base64

import pytest

from dashapp import create_app
from dashapp.config import Config
from store import savedviews
from store.engine import make_engine
from store.migrate import upgrade

pytestmark = pytest.mark.both_stores
TRIAGE = {"name": "webapp failures", "path": "/triage", "search": "?repo=acme/webapp&window=30d"}


def login(user: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:pw-{user}".encode()).decode()}


@pytest.fixture
def client(db_path):
    app = create_app(Config.from_env({}, database_path=db_path, processor="off",
                                     dashboard_users="ann:pw-ann,bob:pw-bob", api_rate_limit="10000/minute"))
    yield app.server.test_client()
    app.server.extensions["buildmon"].close()


def test_views_are_their_owners_and_open_for_anyone_by_link(client):
    ann, bob = login("ann"), login("bob")
    saved = client.post("/api/views", json=TRIAGE, headers=ann)
    assert saved.status_code == 201, saved.get_json()
    view = saved.get_json()
    assert {k: view[k] for k in TRIAGE} == TRIAGE and view["link"] == f"/v/{view['slug']}" and len(view["slug"]) >= 12
    assert client.get("/api/views", headers=bob).get_json() == {"items": [], "count": 0}
    assert [v["name"] for v in client.get("/api/views", headers=ann).get_json()["items"]] == [TRIAGE["name"]]

    opened = client.get(view["link"], headers=bob)  # another person follows the link
    assert opened.status_code == 302 and opened.headers["Location"] == TRIAGE["path"] + TRIAGE["search"]
    assert client.delete(f"/api/views/{view['id']}", headers=bob).status_code == 404  # not bob's
    # Saved again under its name: replaced, the same link.
    again = client.post("/api/views", json={**TRIAGE, "search": "?repo=acme/api"}, headers=ann).get_json()
    assert (again["id"], again["slug"], again["search"]) == (view["id"], view["slug"], "?repo=acme/api")
    assert client.get(view["link"], headers=bob).headers["Location"] == "/triage?repo=acme/api"
    client.post("/api/views", json={"name": "all runners", "path": "/runners"}, headers=ann)
    assert [v["name"] for v in client.get("/api/views", headers=ann).get_json()["items"]] == ["all runners",
                                                                                            TRIAGE["name"]]

    assert client.delete(f"/api/views/{view['id']}", headers=ann).status_code == 204
    gone = client.get(view["link"], headers=bob)
    assert gone.status_code == 404 and b"No such view" in gone.data
    assert client.get(view["link"]).status_code == 401  # a link opens nothing for who may not read


@pytest.mark.parametrize("body, message", [
    ({"name": "x", "path": "//evil.example/"}, "path: a page"),
    ({"name": "x", "path": "https://evil.example/"}, "path: a page"),
    ({"name": "x", "path": "/api/builds"}, "path: a page"),
    ({"name": "x", "path": "/v/abc"}, "path: a page"),
    ({"name": "x", "path": "/triage?repo=a/b"}, "path: a page"),
    ({"name": "x", "path": "/\udbe8"}, "path: a page"),  # a lone surrogate: no database could store it
    ({"name": "x", "path": "/triage", "search": None}, "search:"),
    ({"name": "x", "path": "/triage", "search": "repo=a/b"}, "search:"),
    ({"name": "x", "path": "/triage", "search": "?a=b c"}, "search:"),
    ({"name": "  ", "path": "/triage"}, "name: 1 to 100"),
    ({"name": "n" * 101, "path": "/triage"}, "name: 1 to 100"),
    ({"name": "a\nb", "path": "/triage"}, "name: 1 to 100"),
    ({"name": "x", "path": "/triage", "owner": "bob"}, "unknown field(s): owner"),
    ({"path": "/triage"}, "name: 1 to 100"),
])
def test_bad_views_are_refused_with_the_reason(client, body, message):
    answer = client.post("/api/views", json=body, headers=login("ann"))
    assert answer.status_code == 400 and message in answer.get_json()["error"]
    assert client.get("/api/views", headers=login("ann")).get_json()["count"] == 0


def test_pins_are_set_per_repository(client):
    ann = login("ann")
    first = client.put("/api/pins", json={"repo": "acme/webapp", "pinned": True, "workflows": ["CI", "E2E"]},
                       headers=ann)
    assert first.get_json() == {"repos": ["acme/webapp"], "workflows": {"acme/webapp": ["CI", "E2E"]}}
    client.put("/api/pins", json={"repo": "acme/api", "workflows": ["Nightly"]}, headers=ann)
    after = client.put("/api/pins", json={"repo": "acme/webapp", "pinned": False, "workflows": ["E2E"]},
                       headers=ann).get_json()
    assert after == {"repos": [], "workflows": {"acme/api": ["Nightly"], "acme/webapp": ["E2E"]}}
    assert client.get("/api/pins", headers=login("bob")).get_json() == {"repos": [], "workflows": {}}
    for body, status in (({"repo": "nope"}, 400), ({"repo": "a/b", "pinned": "yes"}, 400),
                         ({"repo": "a/b", "workflows": "CI"}, 400), ({"repo": "a/b", "x": 1}, 400)):
        assert client.put("/api/pins", json=body, headers=ann).status_code == status
    assert client.put("/api/pins", data="x", headers=ann).status_code == 415


def test_an_anonymous_reader_has_no_views(db_path):
    app = create_app(Config.from_env({}, database_path=db_path, processor="off"))
    try:
        client = app.server.test_client()
        remote = {"REMOTE_ADDR": "10.1.2.3"}  # not the server's own host: anonymous, a reader
        answer = client.post("/api/views", json=TRIAGE, environ_base=remote)
        assert answer.status_code == 403 and "belong to a person" in answer.get_json()["error"]
        assert client.get("/api/pins", environ_base=remote).status_code == 403
        local = client.post("/api/views", json=TRIAGE)  # the server's own host: "local"
        assert local.status_code == 201
        assert client.get(local.get_json()["link"], environ_base=remote).status_code == 302
    finally:
        app.server.extensions["buildmon"].close()


def test_limits_and_order(db_path):
    engine = make_engine(db_path)
    upgrade(engine)
    with engine.begin() as conn:
        for i in range(savedviews.MAX_VIEWS):
            savedviews.save(conn, "ann", f"view {i:03d}", "/triage", "")
        with pytest.raises(ValueError, match="at most 200 saved views"):
            savedviews.save(conn, "ann", "one more", "/triage", "")
        savedviews.save(conn, "ann", "view 000", "/runners", "")  # a replacement is not one more
        with pytest.raises(ValueError, match="at most 200 pins"):
            savedviews.set_pins(conn, "ann", "a/b", True, [f"w{i}" for i in range(savedviews.MAX_PINS)])
    engine.dispose()
    assert savedviews.pinned_first(["a", "b", "c", "d"], {"d", "b"}) == ["b", "d", "a", "c"]


def test_pinned_repositories_come_first_and_are_the_waterfalls_default(writable_demo):
    from dashapp import shell, views_menu
    from dashapp.callbacks.waterfall import resolve_selection

    app = create_app(Config.from_env({}, database_path=writable_demo, processor="off",
                                     dashboard_users="ann:pw-ann,bob:pw-bob"))
    services = app.server.extensions["buildmon"]
    try:
        with app.server.test_request_context("/", headers=login("ann")):
            app.server.preprocess_request()  # who asks: ann
            unpinned = [o["value"] for o in shell._repo_options()][1:]
            with services.engine.connect() as conn:
                newest = resolve_selection(conn, {})
                assert newest["repo"] == views_menu.default_repo(conn, {"repos": [], "workflows": {}})
            pick = next(r for r in unpinned if r != newest["repo"])
            with services.engine.connect() as conn:
                workflows = resolve_selection(conn, {"repo": pick})["workflows"]
            assert workflows == sorted(workflows) and len(workflows) >= 2
            client = app.server.test_client()
            client.put("/api/pins", json={"repo": pick, "pinned": True, "workflows": [workflows[-1]]},
                       headers=login("ann"))
            options = shell._repo_options()
            assert [o["value"] for o in options][1:] == [pick] + [r for r in unpinned if r != pick]
            assert options[1]["label"] == "★ " + pick and not options[2]["label"].startswith("★")
            with services.engine.connect() as conn:
                chosen = resolve_selection(conn, {})
            assert chosen["repo"] == pick and chosen["workflows"] == [workflows[-1]] + workflows[:-1]
        with app.server.test_request_context("/", headers=login("bob")):
            app.server.preprocess_request()  # bob pinned nothing
            assert [o["value"] for o in shell._repo_options()][1:] == unpinned
    finally:
        services.close()
