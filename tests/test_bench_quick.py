"""The benchmarks' quick modes, so the scripts never rot (smoke runs, not timed assertions)."""
import re
import sqlite3

import pytest

from bench import generate, ingest, views


@pytest.mark.slow
def test_generate_is_deterministic_and_fills_every_table(tmp_path):
    counts = generate.generate(str(tmp_path / "a.db"), runs=1500, now=1_750_000_000.0, quiet=True)
    again = generate.generate(str(tmp_path / "b.db"), runs=1500, now=1_750_000_000.0, quiet=True)
    assert counts == again and counts["workflowruns"] == 1500 and counts["jobs"] >= 5000
    rows = [sqlite3.connect(tmp_path / name).execute(
        "SELECT gitid, status, conclusion, runtime FROM workflowruns ORDER BY gitid").fetchall()
        for name in ("a.db", "b.db")]
    assert rows[0] == rows[1]
    db = sqlite3.connect(tmp_path / "a.db")
    flaky = db.execute("SELECT count(*) FROM workflowruns WHERE run_attempt > 1").fetchone()[0]
    failing_steps = db.execute("SELECT count(*) FROM steps WHERE conclusion = 'failure'").fetchone()[0]
    assert flaky > 0 and failing_steps > 0


@pytest.mark.slow
def test_ingest_quick(capsys):
    """Every phase runs against the real servers and prints figures that add up."""
    code = ingest.main(["--quick", "--concurrency", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    rows = {m[0]: m for m in re.findall(
        r"^(floor hmac|floor insert|project)\s+4\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+([\d.]+)"
        r"\s+(\d+)", out, re.M)}
    assert set(rows) == {"floor hmac", "floor insert", "project"}, out
    for name, (_, rate, p50, p99, top, bad, srv_ms, cli_pct) in rows.items():
        assert int(rate) > 0 and float(p50) <= float(p99) <= float(top) and bad == "0", (name, out)
        assert float(srv_ms) > 0 and 0 < int(cli_pct) <= 100, (name, out)  # the CPU of both sides was measured
    assert re.search(r"^project / floor hmac\s+\d+%$", out, re.M), out
    # The burst: every delivery answered 2xx, every one applied, with its processing lag from the store.
    burst = re.search(r"answered 2xx (\d+) of (\d+) .*max answer (\d+) ms.*all processed after ([\d.]+) s; "
                      r"processed (\d+) /s; lag p50 ([\d.]+) s p99 ([\d.]+) s; lost (\d+)", out)
    assert burst and burst[1] == burst[2] == "300" and burst[8] == "0", out
    assert float(burst[6]) <= float(burst[7]) and float(burst[4]) > 0 and int(burst[5]) > 0, out
    # A low fixed rate is processed with the lag under 1 s, measured from the deliveries table.
    lag = re.search(r"lag at the quick rate: 25 /s \(lag under 1 s .*lag p50 (\d+) ms, p99 (\d+) ms, max (\d+) ms "
                    r"over (\d+) deliveries\)", out)
    assert lag and int(lag[1]) <= int(lag[2]) <= int(lag[3]) < 1000 and int(lag[4]) >= 90, out
    assert "INVALID" not in out and "no answer over 2 s in the burst" in out, out


@pytest.mark.slow
@pytest.mark.browser
def test_views_quick(capsys):
    assert views.main(["--quick"]) == 0
    out = capsys.readouterr().out
    # The commit grid comes with the page content (its callback runs on live updates only).
    assert "wf-cards.children" in out and "tr-failures.children" in out and "page load" in out
    assert "live grid" in out
