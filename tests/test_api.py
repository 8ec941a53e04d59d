"""The REST API over a real server: filters, keyset paging, metrics equal to the cards, one run, errors."""
import json
import re
import time

import pytest
import requests

from bench import bulkdb
from dashapp import create_app
from dashapp.api.openapi import ROUTE_PARAMS
from dashapp.config import Config
from store.queries.cards import metric_cards
from store.queries.filters import Filters
from tests import builders as b
from tests.helpers import SECRET, LiveServer, fixture_json, post

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def history(module_stores):
    """Runs in two repositories, one re-run with a failed first attempt, times three apart."""
    db_path = module_stores.new("builds")
    records = [b.commit("c1"), b.commit("c2", author="bob", message="fix, \"it\"\nnow")]
    for i in range(10):
        records.append(b.run(100 + i, sha="c1" if i < 5 else "c2", created=b.T0 + 3 * i,
                             conclusion="failure" if i % 4 == 0 else "success",
                             repo="o/app" if i % 2 == 0 else "o/lib", author="alice" if i < 7 else "bob"))
    records.append(b.run(200, attempt=1, conclusion="failure", created=b.T0 + 100))
    records.append(b.run(200, attempt=2, conclusion="success", created=b.T0 + 100))
    b.store_with(db_path, records).dispose()
    return db_path


@pytest.fixture(scope="module")
def api(history):
    """One server for the read-only tests (they never write)."""
    config = Config.from_env({}, database_path=history, webhook_secret=SECRET, api_rate_limit="100000/minute")
    app = create_app(config)
    with LiveServer(app) as live:
        yield live
    app.server.extensions["buildmon"].close()  # its processor and bus, before the store is dropped


def get(server, path, **params):
    return requests.get(server.url + path, params=params, timeout=30)


def test_builds_newest_first_with_total_and_filters(api):
    body = get(api, "/api/builds").json()
    assert [r["id"] for r in body["items"]] == [200] + list(range(109, 99, -1))
    assert body["total"] == 11 and body["next"] is None and body["next_cursor"] is None
    assert body["items"][0]["attempt"] == 2 and body["items"][0]["conclusion"] == "success"
    lib = get(api, "/api/builds", repo="o/lib", conclusion="success").json()
    assert {r["id"] for r in lib["items"]} == {101, 103, 105, 107, 109} and lib["total"] == 5
    by_author = get(api, "/api/builds", author="bob").json()  # runs bob triggered, or of commits bob wrote
    assert {r["id"] for r in by_author["items"]} == {106, 107, 108, 109}  # 106: o/app commit c2 is bob's
    window = get(api, "/api/builds", since=b.T0 + 3, until=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(b.T0 + 9))).json()
    assert [r["id"] for r in window["items"]] == [102, 101]


def test_attempts_all_lists_every_attempt_with_its_own_state(api):
    body = get(api, "/api/builds", attempts="all", limit=2).json()
    assert [(r["id"], r["attempt"], r["conclusion"]) for r in body["items"]] == [(200, 2, "success"),
                                                                                (200, 1, "failure")]
    assert body["total"] == 12
    failed = get(api, "/api/builds", attempts="all", conclusion="failure", repo="o/app").json()
    assert (200, 1) in {(r["id"], r["attempt"]) for r in failed["items"]}


def test_pages_follow_next_to_the_end(api):
    seen, url, pages = [], api.url + "/api/builds?limit=3&repo=o/app", 0
    while url:
        body = requests.get(url, timeout=10).json()
        assert body["total"] == 6
        seen += [r["id"] for r in body["items"]]
        url = api.url + body["next"] if body["next"] else None
        pages += 1
    assert seen == [200, 108, 106, 104, 102, 100] and pages == 2


@pytest.mark.parametrize("params, message", [
    ({"limit": "0"}, "limit"), ({"limit": "1001"}, "limit"), ({"limit": "ten"}, "limit"),
    ({"since": "yesterday"}, "since"), ({"until": "2024-13-01"}, "until"), ({"status": "done"}, "status"),
    ({"conclusion": "ok"}, "conclusion"), ({"attempts": "some"}, "attempts"), ({"cursor": "!!"}, "cursor"),
    ({"cursor": "WzEsMl0"}, "cursor"), ({"window": "2w"}, "window"), ({"window": "7d", "since": "0"}, "either"),
    ({"since": "100", "until": "50"}, "before"), ({"repository": "o/app"}, "unknown parameter"),
])
def test_bad_parameters_are_a_json_400(api, params, message):
    for path in ("/api/builds", "/api/builds.csv", "/api/metrics"):
        if path != "/api/builds" and set(params) & {"limit", "cursor"}:
            continue
        if path == "/api/metrics" and "attempts" in params:
            continue
        response = get(api, path, **params)
        assert response.status_code == 400, (path, params)
        assert message in response.json()["error"]


def test_cursor_of_one_mode_is_refused_in_the_other(api):
    cursor = get(api, "/api/builds", limit=1).json()["next_cursor"]
    response = get(api, "/api/builds", attempts="all", cursor=cursor)
    assert response.status_code == 400 and "attempts=latest" in response.json()["error"]


def test_unknown_run_and_route_are_json_404(api):
    assert get(api, "/api/runs/999").status_code == 404
    assert get(api, "/api/runs/999").json() == {"error": "no run with id 999"}
    assert get(api, "/api/runs/abc").status_code == 400
    assert get(api, "/api/nothing/here").status_code == 404 and "error" in get(api, "/api/nothing/here").json()


def test_metrics_equal_the_cards(api, history):
    from store.engine import make_engine

    engine = make_engine(history)
    for params in ({}, {"repo": "o/app"}, {"author": "bob", "since": str(b.T0 + 6)}, {"conclusion": "failure"}):
        body = get(api, "/api/metrics", **params).json()
        filters = Filters(**{k: (float(v) if k == "since" else v) for k, v in params.items()})
        with engine.connect() as conn:
            assert body == json.loads(json.dumps(metric_cards(conn, filters, now=time.time(), stale_hours=24)))
    engine.dispose()


def test_run_detail_has_attempts_jobs_labels_runner_and_steps(server):
    run = fixture_json("workflow_run/completed.payload.json")
    job = fixture_json("workflow_job/completed.success.with-organization.payload.json")
    job["workflow_job"]["run_id"] = run["workflow_run"]["id"]
    job["repository"] = run["repository"]
    for event, payload in (("workflow_run", run), ("workflow_job", job)):
        assert post(server.url, event, json.dumps(payload).encode()).status_code == 202
    server.services.settle()
    body = get(server, f"/api/runs/{run['workflow_run']['id']}").json()
    assert body["id"] == run["workflow_run"]["id"] and [a["attempt"] for a in body["attempts"]] == [1]
    (got,) = body["attempts"][0]["jobs"]
    assert got["id"] == job["workflow_job"]["id"] and got["labels"] == job["workflow_job"]["labels"]
    assert got["runner_name"] == job["workflow_job"]["runner_name"] and got["starttime"] and got["endtime"]
    assert [s["number"] for s in got["steps"]] == sorted(s["number"] for s in job["workflow_job"]["steps"])
    assert body["unmatched_jobs"] == []


def test_openapi_covers_every_route_and_parameter(server):
    spec = get(server, "/api/openapi.json").json()
    assert spec["openapi"].startswith("3.")
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(rule)) for rule in server.app.server.url_map.iter_rules()
              if str(rule).startswith("/api/") and "<path:" not in str(rule)}
    assert routes == set(spec["paths"]) == set(ROUTE_PARAMS)
    methods = {(re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(rule)), m.lower())
               for rule in server.app.server.url_map.iter_rules() if str(rule).startswith("/api/")
               and "<path:" not in str(rule) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert methods == {(path, m) for path, ops in spec["paths"].items() for m in ops}
    for path, allowed in ROUTE_PARAMS.items():
        for method, operation in spec["paths"][path].items():
            documented = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
            # A path's parameters are its reading's; a POST beside a GET (a list and "add one") takes none.
            assert documented == (set(allowed) if method == "get" or len(spec["paths"][path]) == 1 else set()), \
                (method, path)


@pytest.mark.slow
@pytest.mark.sqlite_only  # bench.bulkdb writes SQLite files
def test_paging_walks_100k_runs_each_exactly_once(new_store):
    path = new_store("big")
    bulkdb.build(path, 100_000)
    config = Config.from_env({}, database_path=path, webhook_secret=SECRET, api_rate_limit="100000/minute")
    started = time.monotonic()
    app = create_app(config)
    with LiveServer(app) as live:
        session, seen, url, totals = requests.Session(), [], "/api/builds?limit=1000", set()
        while url:
            body = session.get(live.url + url, timeout=60).json()
            seen += [(r["createtime"], r["id"]) for r in body["items"]]
            totals.add(body["total"])
            url = body["next"]
        by_repo = session.get(live.url + "/api/builds", params={"repo": "octo/lib", "limit": 1}).json()["total"]
        metrics = session.get(live.url + "/api/metrics", params={"repo": "octo/app", "until": "1601000000"}).json()
    app.server.extensions["buildmon"].close()
    assert totals == {100_000} and len(seen) == 100_000
    assert {gitid for _t, gitid in seen} == {bulkdb.run_gitid(i) for i in range(100_000)}
    assert seen == sorted(seen, reverse=True)  # newest first, ties broken by id
    assert by_repo == sum(1 for i in range(100_000) if i % 3 == 1)
    from store.engine import make_engine

    engine = make_engine(path)
    with engine.connect() as conn:
        expected = metric_cards(conn, Filters(repo="octo/app", until=1601000000.0), stale_hours=24)
    assert metrics == json.loads(json.dumps(expected))
    assert time.monotonic() - started < 60
