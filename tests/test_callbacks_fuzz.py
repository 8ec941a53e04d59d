"""Every Dash callback, posted junk: never a 5xx, always JSON (or Dash's empty 204).

The callbacks are read from the running app (`/_dash-dependencies`); the values a page really
holds (the selection stores, the dropdowns, the URL) from its rendered layouts.  Hypothesis then
posts requests shaped as the browser sends them, each input or state either such a value with
a part replaced by junk, or junk outright: odd strings, other scripts' digits, lone surrogates,
huge and non-finite numbers, None, lists, nested objects.  Then the envelope itself is fuzzed,
and the cases that used to be 500s are checked one by one.
"""
import json
from dataclasses import replace
from urllib.parse import urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashapp import MAX_REQUEST_BYTES, create_app
from dashapp.config import Config
from tests.builders import T0, commit, run, store_with
from tests.helpers import SECRET, LiveServer

EXAMPLES = 40  # per callback: ~700 requests in all
UPDATE = "/_dash-update-component"
ROWS_REQUEST = {"startRow": 0, "endRow": 100, "sortModel": [{"colId": "createtime", "sort": "desc"}],
                "filterModel": {"workflow": {"filterType": "text", "type": "contains", "filter": "CI"},
                                "attempt": {"filterType": "number", "type": "greaterThan", "filter": 0}}}
# Every page, with the element it draws whatever its URL says (commit c1 and pull request 7 are in the store).
PAGE_IDS = {"/": "waterfall-page", "/triage": "triage-page", "/developer": "developer-page",
            "/commit/c1": "commit-page", "/pull/7": "pull-page", "/runners": "runners-page"}
PAGES = tuple(PAGE_IDS)
SEARCHES = ("", "?repo=o/app&branch=main&window=24h&offset=50", "?author=alice&window=all", "?repo=o/lib",
            "?offset=99999999999999999999999&window=%00", "?author=%D9%A3&repo=" + "x" * 600)
ODD = ["", " ", "\x00", "\ud800", "\udfff", "\u0663", "\uff11", "\u202e", "🙂", "9" * 30, "-1", "1e999", "NaN",
       "Infinity", "-0", "null", "true", "{}", "[]", "<script>alert(1)</script>", "' OR 1=1 --", "%00",
       "../../etc/passwd", "a" * 5000, "__all__", "dark", "7d", "all", "{x.value", '{"a":1}.data']
HUGE = [2 ** 53 + 1, 2 ** 63, -(2 ** 63) - 1, 2 ** 64, 10 ** 30, -(10 ** 30)]
URL_KEYS = ["repo", "branch", "workflow", "author", "window", "offset", "status", "cursor"]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    path = tmp_path_factory.mktemp("cbfuzz") / "cb.db"
    records = [commit("c1"), commit("c2", author="bob", time=T0), commit("d1", repo="o/lib")]
    records += [replace(run(i, sha=f"c{1 + i % 2}", conclusion=("success", "failure", "cancelled")[i % 3],
                            workflow=("CI", "Lint")[i % 2], author=("alice", "bob")[i % 2], created=T0 + i * 60),
                        pull_requests=(7,) if i % 4 == 0 else ())
                for i in range(1, 25)]
    records += [run(100, repo="o/lib", sha="d1", branch="trunk", created=T0 + 5000)]
    store_with(path, records).dispose()
    app = create_app(Config.from_env({}, database_path=str(path), webhook_secret=SECRET))
    with LiveServer(app) as server:
        yield server
    app.server.extensions["buildmon"].close()


def _post(live, body=None, **kwargs):
    """POST `body` as JSON (NaN and Infinity included, as a browser's JSON.stringify never sends them),
    or the raw `data=`/`headers=` given."""
    if not kwargs:
        kwargs = {"data": json.dumps(body), "headers": {"Content-Type": "application/json"}}
    return requests.post(live.url + UPDATE, timeout=60, **kwargs)


def _outputs(output: str):
    if output.startswith(".."):
        return [_outputs(o) for o in output[2:-2].split("...")]
    id_, _, prop = output.rpartition(".")
    return {"id": id_, "property": prop}


def _body(dep: dict, inputs: list, state: list) -> dict:
    return {"output": dep["output"], "outputs": _outputs(dep["output"]),
            "inputs": [{**d, "value": v} for d, v in zip(dep["inputs"], inputs)],
            "state": [{**d, "value": v} for d, v in zip(dep["state"], state)],
            "changedPropIds": [f"{d['id']}.{d['property']}" for d in dep["inputs"][:1]]}


def _props(tree, found: dict) -> None:
    """Every (id, property) -> value of the components in a layout's JSON."""
    if isinstance(tree, list):
        for item in tree:
            _props(item, found)
    elif isinstance(tree, dict):
        props = tree.get("props") if "type" in tree and "namespace" in tree else None
        if isinstance(props, dict):
            if isinstance(props.get("id"), str):
                for prop, value in props.items():
                    found.setdefault((props["id"], prop), []).append(value)
            for value in props.values():
                _props(value, found)
        else:
            for value in tree.values():
                _props(value, found)


def _assert_answer(response, what) -> None:
    assert response.status_code < 500, (what, response.status_code, response.text[:500])
    if response.status_code == 204:  # PreventUpdate: nothing to change
        return
    assert response.headers["Content-Type"].startswith("application/json"), (what, response.text[:300])
    answer = response.json()
    if response.status_code >= 400:
        assert isinstance(answer.get("error"), str), (what, answer)
    else:
        assert "response" in answer or "sideUpdate" in answer, (what, answer)


@pytest.fixture(scope="module")
def callbacks(live):
    deps = requests.get(live.url + "/_dash-dependencies", timeout=30).json()
    server_side = [d for d in deps if not d.get("clientside_function")]
    assert len(server_side) >= 15
    return server_side


@pytest.fixture(scope="module")
def examples(live, callbacks):
    """Values the pages really hold, per (component id, property)."""
    found = {}
    _props(requests.get(live.url + "/_dash-layout", timeout=30).json(), found)
    router = next(d for d in callbacks if "_pages_content.children" in d["output"])
    for page, search in [(p, "") for p in PAGES] + [("/developer", "?author=alice"), ("/pull/7", "?repo=o/app")]:
        answer = _post(live, _body(router, [page, search], []))
        assert answer.status_code == 200, answer.text[:300]
        _props(answer.json()["response"], found)
    found[("dev-history", "getRowsRequest")] = [ROWS_REQUEST]
    found[("url", "pathname")] = found[("_pages_location", "pathname")] = list(PAGES)
    found[("url", "search")] = found[("_pages_location", "search")] = list(SEARCHES)
    found[("live-version", "data")] = [0, 7]
    found[("theme", "data")] = ["light", "dark"]
    return found


def test_commit_and_pull_pages_draw_the_stores_own(live, callbacks):
    """The pages the fuzzing starts from hold real content (their redraws' selections are real ones)."""
    router = _dep(callbacks, "_pages_content.children")
    for page, search, content in (("/commit/c1", "", "cm-content"), ("/pull/7", "", "pl-content"),
                                  ("/pull/7", "?repo=o/app", "pl-content")):
        answer = _post(live, _body(router, [page, search], []))
        assert answer.status_code == 200 and content in answer.text, (page, search, answer.text[:300])


def test_every_callback_answers_its_real_inputs(live, callbacks, examples):
    """The harness posts what a browser posts: each callback, given the page's own values, draws."""
    for dep in callbacks:
        values = [examples.get((d["id"], d["property"]), [None])[-1] for d in dep["inputs"] + dep["state"]]
        n = len(dep["inputs"])
        response = _post(live, _body(dep, values[:n], values[n:]))
        assert response.status_code in (200, 204), (dep["output"], response.status_code, response.text[:500])


SCALARS = (st.none() | st.booleans() | st.integers(-(2 ** 70), 2 ** 70) | st.sampled_from(HUGE) | st.floats()
           | st.sampled_from(ODD) | st.text(max_size=40)
           | st.text(st.characters(codec=None, categories=["Nd", "No", "Cs", "Cc", "Zs"]), max_size=8))


def _junk(keys):
    return st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(keys) | st.text(max_size=8), inner, max_size=5), max_leaves=12)


def _query_strings():
    value = st.sampled_from(ODD) | st.text(max_size=30) | st.integers().map(str) | st.sampled_from(HUGE).map(str)
    return st.dictionaries(st.sampled_from(URL_KEYS) | st.text(max_size=6), value, max_size=5).map(
        lambda args: "?" + urlencode(args, errors="surrogatepass"))


def _mutated(value, junk):
    """`value`, or `value` with one part (at any depth) replaced by junk, or junk."""
    options = [junk, st.just(value)]
    if isinstance(value, dict) and value:
        options.append(st.sampled_from(sorted(value)).flatmap(
            lambda k: _mutated(value[k], junk).map(lambda v: {**value, k: v})))
        options.append(junk.map(lambda v: {**value, "extra": v}))
    if isinstance(value, list) and value:
        options.append(st.integers(0, len(value) - 1).flatmap(
            lambda i: _mutated(value[i], junk).map(lambda v: value[:i] + [v] + value[i + 1:])))
    return st.one_of(options)


def _keys(examples) -> list[str]:
    keys = set(URL_KEYS) | set(ROWS_REQUEST)
    for values in examples.values():
        for value in values:
            if isinstance(value, dict):
                keys |= {k for k in value if isinstance(k, str)}
    return sorted(keys)


def _value_strategy(key, examples, junk):
    seeds = examples.get(key, [None])[-3:]
    strategy = st.sampled_from(seeds).flatmap(lambda seed: _mutated(seed, junk))
    if key[1] == "search":
        strategy = strategy | _query_strings()
    elif key[1] == "pathname":
        strategy = st.sampled_from(PAGES + ("/nowhere", "/developer/x")) | strategy
    return strategy


def test_callbacks_never_5xx_on_junk_inputs(live, callbacks, examples):
    junk = _junk(_keys(examples))
    for dep in callbacks:
        keys = [(d["id"], d["property"]) for d in dep["inputs"] + dep["state"]]
        n = len(dep["inputs"])

        @given(values=st.tuples(*(_value_strategy(k, examples, junk) for k in keys)))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(values):
            _assert_answer(_post(live, _body(dep, list(values[:n]), list(values[n:]))), dep["output"])

        check()


def test_callback_envelopes_never_5xx(live, callbacks, examples):
    """The request itself mangled: missing or wrong keys, unknown outputs, inputs that do not match."""
    junk = _junk(["output", "outputs", "inputs", "state", "changedPropIds", "id", "property", "value"])
    bodies = [_body(dep, [examples.get((d["id"], d["property"]), [None])[-1] for d in dep["inputs"]],
                    [examples.get((d["id"], d["property"]), [None])[-1] for d in dep["state"]]) for dep in callbacks]

    @given(body=st.sampled_from(bodies).flatmap(lambda body: _mutated(body, junk)))
    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(body):
        _assert_answer(_post(live, body), "envelope")

    check()


# -- the cases that used to be 500s -------------------------------------------------------------

def _dep(callbacks, fragment: str) -> dict:
    return next(d for d in callbacks if fragment in d["output"])


def _history(live, callbacks, request, author="alice"):
    sel = {"author": author, "repo": None, "window": "all", "empty": False, "known_repo": True, "known": True}
    return _post(live, _body(_dep(callbacks, "dev-history.getRowsResponse"), [request], [sel]))


@pytest.mark.parametrize("request_, reason", [
    ({"startRow": 2 ** 63, "endRow": 2 ** 63 + 100}, "startRow"),
    ({"startRow": 10 ** 30}, "startRow"),
    ({"startRow": -1, "endRow": 100}, "startRow"),
    ({"startRow": 1.5, "endRow": 100}, "startRow"),
    ({"startRow": "0", "endRow": 100}, "startRow"),
    ({"startRow": True, "endRow": 100}, "startRow"),
    ({"startRow": 0, "endRow": 2 ** 70}, "endRow"),
    ({"startRow": 100, "endRow": 50}, "endRow"),
    ({"startRow": 0, "endRow": 100, "sortModel": {"colId": "createtime"}}, "sortModel"),
    ({"startRow": 0, "endRow": 100, "sortModel": [{"colId": "createtime", "sort": "sideways"}]}, "sort"),
    ({"startRow": 0, "endRow": 100, "sortModel": [{"colId": ["x"], "sort": "asc"}]}, "colId"),
    ({"startRow": 0, "endRow": 100, "sortModel": [{"colId": "id", "sort": "asc"}] * 50}, "sortModel"),
    ({"startRow": 0, "endRow": 100, "filterModel": []}, "filterModel"),
    ({"startRow": 0, "endRow": 100, "filterModel": {"attempt": {"filterType": "number", "filter": 10 ** 30}}},
     "filter"),
    ({"startRow": 0, "endRow": 100, "filterModel": {"workflow": {"filterType": "text", "filter": {"$ne": 1}}}},
     "filter"),
    ({"startRow": 0, "endRow": 100, "filterModel": {"workflow": {"filterType": "regex", "filter": ".*"}}},
     "filterType"),
    ({"startRow": 0, "endRow": 100, "filterModel": {"workflow": {"type": "contains", "filter": "\ud800"}}},
     "surrogate"),
    ("everything", "getRowsRequest"),
])
def test_bad_grid_row_requests_are_400(live, callbacks, request_, reason):
    response = _history(live, callbacks, request_)
    assert response.status_code == 400, response.text[:300]
    assert reason in response.json()["error"]


def test_grid_row_requests_are_served_and_bounded(live, callbacks):
    page = _history(live, callbacks, ROWS_REQUEST).json()["response"]["dev-history"]["getRowsResponse"]
    assert page["rowCount"] >= 1 and all(r["workflow"] == "CI" for r in page["rowData"])
    huge = _history(live, callbacks, {"startRow": 0, "endRow": 2 ** 53 - 1}).json()["response"]
    assert len(huge["dev-history"]["getRowsResponse"]["rowData"]) <= 1000
    empty = _history(live, callbacks, {"startRow": 2 ** 53 - 1001, "endRow": 2 ** 53 - 1}).json()["response"]
    assert empty["dev-history"]["getRowsResponse"]["rowData"] == []
    for filters in ({"attempt": {"filterType": "number", "type": "inRange", "filter": 1, "filterTo": 3}},
                    {"workflow": {"filterType": "text", "operator": "OR", "conditions": [
                        {"type": "equals", "filter": "CI"}, {"type": "startsWith", "filter": "Li"}]}},
                    {"workflow": {"filterType": "text", "type": "blank"}}):
        assert _history(live, callbacks, {"startRow": 0, "endRow": 100, "filterModel": filters}).status_code == 200


@pytest.mark.parametrize("search", [
    "?offset=99999999999999999999999", "?offset=-5", "?offset=%D9%A3", "?offset=1e9", "?window=forever",
    "?window=%00&repo=%00", "?repo=" + "x" * 5000, "?author=%ED%A0%80", "?branch=main&branch=dev&offset=50",
])
@pytest.mark.parametrize("page", PAGES)
def test_junk_url_parameters_fall_back_and_the_page_draws(live, callbacks, page, search):
    response = _post(live, _body(_dep(callbacks, "_pages_content.children"), [page, search], []))
    assert response.status_code == 200, response.text[:300]
    drawn = json.dumps(response.json()["response"]["_pages_content"]["children"])
    assert PAGE_IDS[page] in drawn


@pytest.mark.parametrize("body, reason", [
    ({}, "output"),
    ([], "JSON object"),
    ({"output": "nowhere.children"}, "no server-side callback"),
    ({"output": "theme.data", "outputs": {"id": "theme", "property": "data"}, "inputs": []}, "no server-side"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"}, "inputs": []}, "inputs"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": {}}], "state": None}, "state"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-chart", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": {}}]}, "outputs"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": {}}], "changedPropIds": [1]},
     "changedPropIds"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": {}}], "changedPropIds": ["{x.data"]},
     "not an input"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": []}]}, "wf-selection"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": {"offset": 2 ** 63}}]}, "offset"),
    ({"output": "wf-csv.children", "outputs": {"id": "wf-csv", "property": "children"},
      "inputs": [{"id": "wf-selection", "property": "data", "value": {"window": "\u0663d"}}]}, "window"),
])
def test_bad_envelopes_and_values_are_400(live, body, reason):
    response = _post(live, body)
    assert response.status_code == 400, response.text[:300]
    assert reason in response.json()["error"], response.json()


def test_flask_errors_on_json_routes_are_json(live):
    cases = [
        (_post(live, data="{not json", headers={"Content-Type": "application/json"}), 400),
        (_post(live, data="[" * 100_000 + "]" * 100_000, headers={"Content-Type": "application/json"}), 400),
        (_post(live, data="x" * (MAX_REQUEST_BYTES + 1), headers={"Content-Type": "application/json"}), 413),
        (_post(live, data="output=x", headers={"Content-Type": "application/x-www-form-urlencoded"}), 415),
        (requests.put(live.url + UPDATE, json={}, timeout=30), 405),
        (requests.post(live.url + "/_dash-layout", json={}, timeout=30), 405),
        (requests.post(live.url + "/healthz", timeout=30), 405),
        (_post(live, data='{"output": ' + "9" * 5000 + "}", headers={"Content-Type": "application/json"}), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text[:300])
        assert response.headers["Content-Type"].startswith("application/json")
        assert isinstance(response.json()["error"], str)
    page = requests.put(live.url + "/triage", timeout=30)  # the pages keep Flask's own answer
    assert page.status_code == 405 and page.headers["Content-Type"].startswith("text/html")
