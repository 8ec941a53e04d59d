"""`/healthz` and `/metrics` over real HTTP."""
import requests

from tests.helpers import fixture_bytes, post


def test_healthz_reports_database_and_last_delivery(server):
    first = requests.get(server.url + "/healthz", timeout=10).json()
    assert first == {"status": "ok", "reasons": [], "database": "ok", "last_delivery": None, "last_delivery_age_s": None,
                     "inbox": {"pending": 0, "lag_s": 0.0}, "failed_deliveries": 0}
    post(server.url, "ping", fixture_bytes("ping/payload.json"))
    after = requests.get(server.url + "/healthz", timeout=10).json()
    assert after["last_delivery"] is not None and after["last_delivery_age_s"] < 60


def test_metrics_count_deliveries_and_refusals(server):
    post(server.url, "workflow_run", fixture_bytes("workflow_run/completed.payload.json"))
    post(server.url, "workflow_run", b"{broken")
    post(server.url, "ping", fixture_bytes("ping/payload.json"), secret="wrong")
    server.services.settle()
    text = requests.get(server.url + "/metrics", timeout=10).text
    assert 'buildmon_deliveries_total{event="workflow_run",outcome="accepted"} 2.0' in text
    assert 'buildmon_deliveries_processed_total{event="workflow_run",outcome="processed"} 1.0' in text
    assert 'buildmon_deliveries_processed_total{event="workflow_run",outcome="failed"} 1.0' in text
    assert 'buildmon_deliveries_refused_total{reason="signature"} 1.0' in text
    assert "buildmon_websocket_clients 0.0" in text
    assert "buildmon_delivery_seconds_count 2.0" in text
