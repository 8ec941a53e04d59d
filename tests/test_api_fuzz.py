"""Schemathesis against the API's own OpenAPI description: no 5xx, responses match it.

Every operation of the served `/api/openapi.json`, with data that fits the description
(positive) and data that does not (negative: the server must refuse it with a 400 in the
described JSON error shape); then the inputs that used to be 500s, one by one.
"""
import base64
import json

import pytest
import requests
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from dashapp import create_app
from dashapp.api.openapi import openapi
from dashapp.config import Config
from tests.builders import T0, commit, run, store_with
from tests.helpers import SECRET, LiveServer

DOCUMENT = "/api/openapi.json"  # schemathesis leaves out the operation that serves the description itself
OPERATIONS = [(method.upper(), path) for path, methods in openapi()["paths"].items() for method in methods
              if path != DOCUMENT]
EXAMPLES = 100  # per operation and mode: ~800 requests in all, seconds
# Operations that take nothing (no parameter, no body): one request says all, and nothing can be made invalid.
NO_INPUT = {(m, p) for m, p in OPERATIONS
            if "{" not in p and not openapi()["paths"][p][m.lower()].get("parameters")
            and "requestBody" not in openapi()["paths"][p][m.lower()]}
# Refused on this server whatever the data (409): a token would open nothing (no credentials are checked), a
# backfill or a reconcile needs GITHUB_TOKEN.
REFUSED_HERE = {("POST", "/api/tokens"), ("POST", "/api/backfills"), ("POST", "/api/reconcile")}


@pytest.fixture(scope="module")
def api_server(tmp_path_factory):
    path = tmp_path_factory.mktemp("apifuzz") / "api.db"
    records = [commit("c1"), commit("c2", author="bob", time=T0)]
    records += [run(i, sha=f"c{1 + i % 2}", conclusion=("success", "failure", "cancelled")[i % 3],
                    workflow=("CI", "Lint")[i % 2], created=T0 + i * 60) for i in range(1, 40)]
    store_with(path, records).dispose()
    app = create_app(Config.from_env({}, database_path=str(path), webhook_secret=SECRET,
                                     api_rate_limit="100000/minute"))
    with LiveServer(app) as live:
        yield live
    app.server.extensions["buildmon"].close()


@pytest.fixture(scope="module")
def schema(api_server):
    return schemathesis.openapi.from_url(api_server.url + "/api/openapi.json")


def test_every_operation_is_fuzzed(schema):
    served = sorted((op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations())
    assert served == sorted(OPERATIONS) and len(served) >= 4


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=str)
@pytest.mark.parametrize("method,path", OPERATIONS, ids=[p for _m, p in OPERATIONS])
def test_api_never_5xx_and_matches_its_schema(api_server, schema, method, path, mode):
    if (method, path) in NO_INPUT and mode is GenerationMode.NEGATIVE:
        pytest.skip("takes no input: nothing to make invalid")
    operation = schema[path][method]
    seen = {"4xx": 0, "2xx": 0}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case):
        response = case.call(base_url=api_server.url, timeout=30)
        assert response.status_code < 500, (path, response.text)
        if response.status_code >= 400:
            content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
            assert "application/json" in str(content_type), response.text
            assert isinstance(json.loads(response.text).get("error"), str)
        seen["4xx" if response.status_code >= 400 else "2xx"] += 1
        # Every default check (no 5xx, status code, content type, response schema, negative data
        # refused), except that a value the description allows may still be refused by a check
        # it cannot express (a date that does not exist, since >= until...).
        case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])

    check()
    assert sum(seen.values()) >= (1 if (method, path) in NO_INPUT else EXAMPLES // 2)
    if mode is GenerationMode.POSITIVE and "{" not in path and (method, path) not in REFUSED_HERE:
        assert seen["2xx"] > 0  # valid filters are not all refused


# -- the inputs that used to be 500s (or a wrong 200) ------------------------------------------

def _cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


BAD_QUERIES = {
    "/api/runs/\u0663": "ASCII digits",  # ARABIC-INDIC DIGIT THREE: int() reads it as 3
    "/api/runs/\uff11": "ASCII digits",  # FULLWIDTH DIGIT ONE
    "/api/runs/99999999999999999999999": "must be from 1 to 9223372036854775807",
    "/api/runs/9223372036854775808": "must be from 1 to 9223372036854775807",
    "/api/runs/0": "must be from 1",
    "/api/runs/-5": "must be from 1",
    "/api/runs/1e3": "ASCII digits",
    "/api/builds?limit=\u0663": "ASCII digits",
    "/api/builds?limit=1_0": "ASCII digits",
    "/api/builds?limit=99999999999999999999999": "must be from 1 to 1000",
    "/api/builds?since=\u0663": "expected ISO 8601",
    "/api/builds?since=1e300": "expected ISO 8601",
    "/api/builds?since=nan": "expected ISO 8601",
    "/api/builds?since=99999999999999": "must be from",
    "/api/metrics?until=-99999999999999": "must be from",
    "/api/builds.csv?since=2024-13-01": "expected ISO 8601",
    "/api/builds?since=2024-01-01T00:00:00%2B99:00": "expected ISO 8601",
    "/api/builds?since=2024-01-02&until=2024-01-01": "since must be before until",
    "/api/builds?window=1y": "window: unknown value",
    "/api/builds?status=done": "status: unknown value",
    "/api/builds?attempts=some": "attempts",
    "/api/builds?repo=" + "x" * 501: "longer than 500",
    "/api/builds?cursor=" + _cursor("l", 1, 99999999999999999999999): "cursor",
    "/api/builds?cursor=" + _cursor("l", 1e300, 1): "cursor",
    "/api/builds?cursor=" + base64.urlsafe_b64encode(b'["l",NaN,1]').decode(): "cursor",
    "/api/builds?cursor=" + base64.urlsafe_b64encode(b'["l",1e999,1]').decode(): "cursor",
    "/api/builds?cursor=" + _cursor("l", True, 1): "cursor",
    "/api/builds?cursor=" + _cursor("l", T0, 1.5): "cursor",
    "/api/builds?cursor=" + _cursor("l", T0): "cursor",
    "/api/builds?cursor=" + _cursor({"l": 1}): "cursor",
    "/api/builds?cursor=" + _cursor("a", T0, 1, 1): "made for attempts=all",
    "/api/builds?attempts=all&cursor=" + _cursor("a", T0, 1, 2 ** 63): "cursor",
    "/api/builds?cursor=" + base64.urlsafe_b64encode(b"[" * 5000).decode(): "cursor",
    "/api/builds?cursor=%D9%A3%D9%A3": "cursor",
    "/api/builds?cursor=" + "A" * 201: "cursor",
    "/api/builds?cursor=a&cursor=b": "give it once",
}


@pytest.mark.parametrize("url", list(BAD_QUERIES), ids=range(len(BAD_QUERIES)))
def test_bad_input_is_a_400_with_a_reason(api_server, url):
    response = requests.get(api_server.url + url, timeout=30)
    assert response.status_code == 400, (url, response.status_code, response.text)
    assert response.headers["Content-Type"].startswith("application/json")
    assert BAD_QUERIES[url] in response.json()["error"], response.json()


def test_good_input_still_answers(api_server):
    get = lambda url: requests.get(api_server.url + url, timeout=30)  # noqa: E731
    assert get("/api/runs/5").json()["id"] == 5
    assert get("/api/runs/0005").json()["id"] == 5
    assert get("/api/runs/9223372036854775807").status_code == 404  # in range, just not there
    first = get("/api/builds?limit=10").json()
    second = get(f"/api/builds?limit=10&cursor={first['next_cursor']}").json()
    assert [r["id"] for r in first["items"] + second["items"]] == list(range(39, 19, -1))
    for since in ("2023-11-14T22:13:20Z", "2023-11-14T23:13:20+01:00", "1700000000", "1700000000.5", "-1"):
        assert get(f"/api/builds?since={since.replace('+', '%2B')}").status_code == 200, since
    assert get("/api/builds?since=0001-01-01&until=9999-12-31T23:59:59Z").json()["total"] == 39


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_flask_errors_on_api_routes_are_json(api_server, method):
    for path in ("/api/builds", "/api/runs/1", "/api/nowhere"):
        response = requests.request(method, api_server.url + path, timeout=30)
        assert response.status_code == 405, (path, response.text)
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == {"error": "The method is not allowed for the requested URL."}
        assert "GET" in response.headers["Allow"]


def test_unknown_api_route_is_a_json_404(api_server):
    response = requests.get(api_server.url + "/api/runs/1/jobs", timeout=30)
    assert response.status_code == 404 and "no API route" in response.json()["error"]
