"""Schemathesis against the API's own OpenAPI description: no 5xx, responses match it."""
import pytest
import schemathesis
import schemathesis.checks
from hypothesis import HealthCheck, given, settings

from dashapp import create_app
from dashapp.config import Config
from tests.builders import T0, commit, run, store_with
from tests.helpers import SECRET, LiveServer


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


def test_api_never_5xx_and_matches_its_schema(api_server):
    schema = schemathesis.openapi.from_url(api_server.url + "/api/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 4  # builds, builds.csv, metrics, runs/{id} at least
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call(base_url=api_server.url)
            assert response.status_code < 500, (operation.path, response.text)
            # Free-text parameters such as `since` are validated by the server
            # (400 with a reason), so "schema-valid but rejected" is expected.
            case.validate_response(response, excluded_checks=[schemathesis.checks.positive_data_acceptance])

        check()
