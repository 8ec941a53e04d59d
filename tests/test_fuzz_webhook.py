"""Fuzzing `POST /webhook` with mutations of every real fixture: never a 5xx.

A mutated delivery is either accepted (it is still a valid payload) or
refused with a 4xx and a reason, and a refused one changes no stored row.
"""
import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashapp import create_app
from dashapp.config import Config
from tests.helpers import SECRET, LiveServer, deliver, fixture_json, post, snapshot, webhook_fixtures

ODD_VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False),
    st.text(max_size=30), st.sampled_from(["", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2021-13-45T99:99:99Z",
                                           "<script>alert(1)</script>", "=HYPERLINK(\"x\")", "\u0000", "completed"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, prefix + (i,))


def _mutate(payload, path, new, delete):
    payload = copy.deepcopy(payload)
    if not path:
        return new
    parent = payload
    for key in path[:-1]:
        parent = parent[key]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return payload


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    db = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    app = create_app(Config.from_env({}, database_path=str(db), webhook_secret=SECRET))
    with LiveServer(app) as server:
        yield server, app.server.extensions["buildmon"].engine


@pytest.mark.parametrize("path", webhook_fixtures())
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_fixture_never_5xx(live, path, data):
    server, engine = live
    payload = fixture_json(path)
    paths = list(_paths(payload))
    target = data.draw(st.sampled_from(paths), label="path")
    mutated = _mutate(payload, target, data.draw(ODD_VALUES, label="value"), data.draw(st.booleans(), label="delete"))
    body = json.dumps(mutated).encode()
    before = snapshot(engine)
    answer = deliver(server, path.split("/")[0], body)
    assert answer.status_code < 500, answer.text
    assert answer.json()["outcome"] in ("accepted", "refused", "duplicate")
    if answer.status_code >= 400:
        assert answer.json()["reason"]
        assert snapshot(engine) == before


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=300), event=st.sampled_from(["push", "workflow_run", "workflow_job", "ping", "x"]))
def test_random_bytes_never_5xx(live, body, event):
    server, engine = live
    before = snapshot(engine)
    answer = deliver(server, event, body)
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert snapshot(engine) == before


def test_huge_arrays_are_handled(live):
    server, _engine = live
    payload = fixture_json("workflow_job/completed.success.with-organization.payload.json")
    step = payload["workflow_job"]["steps"][0]
    payload["workflow_job"]["steps"] = [dict(step, number=i) for i in range(50_000)]
    answer = deliver(server, "workflow_job", json.dumps(payload).encode())
    assert answer.status_code < 500
    deep = "[" * 100_000 + "]" * 100_000
    answer = post(server.url, "push", deep.encode())
    assert answer.status_code == 400 and "JSON" in answer.json()["reason"]
    nested = "{" + '"a":[' * 100_000 + "]" * 100_000 + "}"  # passes the first look; the processor refuses it
    assert deliver(server, "push", nested.encode()).status_code == 202
    with _engine.connect() as conn:
        error = conn.exec_driver_sql("SELECT error FROM deliveries ORDER BY id DESC LIMIT 1").scalar()
    assert "JSON" in error
