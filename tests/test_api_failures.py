"""The failure-intelligence API over a real server: a run's failed jobs with their lines and verdicts,
failure groups, one group, flaky jobs, their 400s, the OpenAPI description, and the /metrics gauges.

The store is `tests.test_queries_failures`'s hand-made history (its docstring tells the story).
"""
import time

import jsonschema_rs
import pytest
import requests
from sqlalchemy import update

from dashapp import create_app
from dashapp.api.openapi import ROUTE_PARAMS
from dashapp.config import Config
from dashapp.observability import FailureStats
from store import joblogs
from store.queries import failures as q
from store.schema import failure_lines
from tests.builders import T0
from tests.helpers import SECRET, LiveServer
from tests.test_queries_failures import D, FP, build, history

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def store(module_stores):
    path = module_stores.new("failures")
    build(path).dispose()
    return str(path)


@pytest.fixture(scope="module")
def api(store):
    app = create_app(Config.from_env({}, database_path=store, webhook_secret=SECRET, api_rate_limit="100000/minute"))
    with LiveServer(app) as live:
        yield live
    app.server.extensions["buildmon"].close()


def get(server, path, **params):
    return requests.get(server.url + path, params=params, timeout=30)


# -- /api/runs/<id> --------------------------------------------------------------------------------

def test_run_detail_gives_each_failed_job_its_lines_verdict_and_capture(api):
    body = get(api, "/api/runs/60").json()
    first, second = body["attempts"]
    assert [j["id"] for j in first["jobs"]] == [601, 602] and "verdict" not in first["jobs"][0]  # they passed
    test, e2e = second["jobs"]
    assert (test["id"], test["fingerprint"], test["rule"], test["class"], test["capture"]) == (
        603, FP["R"], "pytest", "test", "done")
    assert test["failure_lines"] == [{"ordinal": 0, "rule": "pytest", "klass": "test",
                                      "text": "FAILED test_R - AssertionError", "fingerprint": FP["R"],
                                      "source": "log", "path": None, "line": 10, "fallback": False}]
    assert test["verdict"]["kind"] == "FLAKY" and test["verdict"]["evidence"][0]["attempt"] == 1
    assert e2e["verdict"]["kind"] == "INFRA" and e2e["class"] == "infra"


def test_run_detail_of_a_failed_job_not_captured_yet(api):
    (job,) = get(api, "/api/runs/5").json()["attempts"][0]["jobs"]
    assert {k: job[k] for k in ("failure_lines", "fingerprint", "rule", "class", "verdict", "capture")} == {
        "failure_lines": [], "fingerprint": None, "rule": None, "class": None, "verdict": None, "capture": "pending"}


# -- /api/failures ---------------------------------------------------------------------------------

def test_failure_groups_with_the_filters_of_builds(api):
    body = get(api, "/api/failures", until=str(T0 + 14 * D)).json()
    assert [g["fingerprint"] for g in body["items"]] == [FP["X"], FP["G"], FP["L"]]
    assert body["count"] == 3 and body["limit"] == 100 and body["filters"] == {"until": T0 + 14 * D}
    g = body["items"][1]
    assert (g["jobs"], g["runs"], g["repos"], g["branches"]) == (4, 3, ["o/app", "o/lib"], ["feat", "main"])
    assert g["verdict"]["kind"] == "BROKEN TRUNK" and [o["job"] for o in g["newest"]] == [33, 32, 21, 11]
    lib = get(api, "/api/failures", repo="o/lib", window="all").json()["items"]
    assert [(x["fingerprint"], x["jobs"]) for x in lib] == [(FP["X"], 1), (FP["G"], 1)]
    assert [x["fingerprint"] for x in get(api, "/api/failures", limit="1", author="bob").json()["items"]] == [FP["T3"]]
    assert get(api, "/api/failures", branch="nothing").json() == {"items": [], "count": 0, "limit": 100,
                                                                  "filters": {"branch": "nothing"}}


def test_one_failure_group_with_occurrences_and_excerpts_on_demand(api):
    body = get(api, f"/api/failures/{FP['G']}").json()
    assert (body["fingerprint"], body["jobs"], body["runs"], body["first_seen"], body["count"]) == (
        FP["G"], 4, 3, T0 + 10 * D, 4)
    assert [o["job"] for o in body["occurrences"]] == [33, 32, 21, 11]
    assert all(o["excerpt"] is None and o["verdict"] for o in body["occurrences"])
    assert body["verdict"] == body["occurrences"][0]["verdict"]
    shown = get(api, f"/api/failures/{FP['G']}", excerpts="1", repo="o/lib").json()
    (only,) = shown["occurrences"]
    assert only["job"] == 21 and only["excerpt"] == "log of 21\nFAILED test_a.py::test_one - assert 3 == 2"
    assert shown["jobs"] == 4  # the totals are all time, whatever the filters
    missing = get(api, f"/api/failures/{'0' * 16}")
    assert missing.status_code == 404 and "no failed job" in missing.json()["error"]


# -- /api/flaky ------------------------------------------------------------------------------------

def test_flaky_jobs_with_their_quarantine_parameters(api):
    items = get(api, "/api/flaky", min_runs="0", threshold="0", window="all").json()["items"]
    rr = [x for x in items if x["repo"] == "o/rr" and x["job"] == "test"]
    assert rr and rr[0]["flaky"] >= 1 and rr[0]["quarantine"] is True
    body = get(api, "/api/flaky", min_runs="1000", threshold="0.5", repo="o/rr", window="all").json()
    assert (body["min_runs"], body["threshold"], body["filters"]) == (1000, 0.5, {"repo": "o/rr"})
    assert body["items"] and not any(x["quarantine"] for x in body["items"])
    assert get(api, "/api/flaky", repo="o/none", window="all").json()["items"] == []
    # Without since or window: the last 30 days (this store's runs are older).
    recent = get(api, "/api/flaky", min_runs="0", threshold="0").json()
    assert recent["items"] == [] and time.time() - 30 * 86400 - 60 < recent["filters"]["since"] < time.time()


# -- errors, description ---------------------------------------------------------------------------

@pytest.mark.parametrize("path, params, message", [
    ("/api/failures", {"limit": "0"}, "limit"),
    ("/api/failures", {"limit": "x"}, "limit"),
    ("/api/failures", {"window": "2w"}, "window"),
    ("/api/failures", {"since": "100", "until": "50"}, "before"),
    ("/api/failures", {"excerpts": "1"}, "unknown parameter"),
    (f"/api/failures/{'a' * 16}", {"excerpts": "yes"}, "excerpts"),
    (f"/api/failures/{'a' * 16}", {"limit": "1001"}, "limit"),
    ("/api/failures/ABCDEF0123456789", {}, "16 lowercase hex"),
    ("/api/failures/abc", {}, "16 lowercase hex"),
    ("/api/flaky", {"min_runs": "-1"}, "min_runs"),
    ("/api/flaky", {"min_runs": "ten"}, "min_runs"),
    ("/api/flaky", {"threshold": "1"}, "below 1"),
    ("/api/flaky", {"threshold": "-0.1"}, "threshold"),
    ("/api/flaky", {"threshold": "1e-3"}, "threshold"),
    ("/api/flaky", {"threshold": "nan"}, "threshold"),
    ("/api/flaky", {"min_runs": "1", "cursor": "x"}, "unknown parameter"),
    ("/api/runs/60", {"excerpts": "1"}, "unknown parameter"),
])
def test_bad_parameters_are_a_json_400(api, path, params, message):
    response = get(api, path, **params)
    assert response.status_code == 400, response.text
    assert message in response.json()["error"]


def test_openapi_describes_the_new_routes_and_their_parameters(api):
    spec = get(api, "/api/openapi.json").json()
    for path in ("/api/failures", "/api/failures/{fingerprint}", "/api/flaky"):
        documented = {p["name"] for p in spec["paths"][path]["get"]["parameters"] if p["in"] == "query"}
        assert documented == set(ROUTE_PARAMS[path]), path
    job = spec["paths"]["/api/runs/{run_id}"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    job = job["properties"]["attempts"]["items"]["properties"]["jobs"]["items"]["properties"]
    assert {"failure_lines", "fingerprint", "rule", "class", "verdict", "capture"} <= set(job)


# -- /metrics --------------------------------------------------------------------------------------

def _sample(text: str, name: str) -> float:
    (line,) = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def test_metrics_show_coverage_and_the_capture_queue(api):
    text = requests.get(api.url + "/metrics", timeout=10).text
    captured = len(history()[1])
    assert _sample(text, "buildmon_failure_lines_coverage_ratio") == pytest.approx((captured - 1) / captured)
    assert _sample(text, 'buildmon_failure_capture_jobs{state="done"}') == captured
    assert _sample(text, 'buildmon_failure_capture_jobs{state="pending"}') == 1
    assert _sample(text, 'buildmon_failure_capture_jobs{state="gone"}') == 0


def test_failure_stats_are_read_again_after_their_ttl(new_store):
    engine = build(new_store("stats"))
    stats, fresh = FailureStats(engine, ttl=3600), FailureStats(engine, ttl=0)

    def read(collector):
        ratio, jobs = collector.collect()
        return ratio.samples[0].value, {s.labels["state"]: s.value for s in jobs.samples}

    before = read(stats)
    with engine.begin() as conn:
        conn.execute(update(failure_lines).values(fallback=1))  # no rule but the fallbacks matched
        joblogs.give_up(conn, 51, joblogs.GONE, "no log", T0)
    assert read(stats) == before  # kept for its ttl
    assert read(fresh) == (0.0, {"pending": 0, "done": before[1]["done"], "failed": 0, "gone": 1})
    with engine.begin() as conn:
        conn.execute(failure_lines.delete())
        conn.execute(update(q.job_logs).values(state=joblogs.PENDING))
    assert read(FailureStats(engine, ttl=0))[0] == 0.0  # no job captured: 0, not NaN
    engine.dispose()


@pytest.mark.parametrize("url, path", [
    ("/api/runs/60", "/api/runs/{run_id}"), ("/api/runs/5", "/api/runs/{run_id}"),
    ("/api/failures", "/api/failures"), (f"/api/failures/{FP['G']}?excerpts=1", "/api/failures/{fingerprint}"),
    (f"/api/failures/{FP['T']}", "/api/failures/{fingerprint}"), ("/api/flaky?min_runs=0", "/api/flaky"),
])
def test_answers_with_data_match_the_description(api, url, path):
    """The fuzz tests' store has no failure lines: here every documented field is met with values."""
    spec = get(api, "/api/openapi.json").json()
    schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    body = requests.get(api.url + url, timeout=30).json()
    jsonschema_rs.Draft202012Validator(schema).validate(body)  # what schemathesis validates with
    assert body  # not an empty answer that any schema accepts
