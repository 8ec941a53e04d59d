"""The benchmarks' quick modes, so the scripts never rot (smoke runs, not timed assertions)."""
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
    assert ingest.main(["--quick", "--concurrency", "4"]) == 0
    out = capsys.readouterr().out
    assert "ingest / floor at concurrency 4" in out and "webhook" in out


@pytest.mark.slow
@pytest.mark.browser
def test_views_quick(capsys):
    assert views.main(["--quick"]) == 0
    out = capsys.readouterr().out
    # The commit grid comes with the page content (its callback runs on live updates only).
    assert "wf-cards.children" in out and "tr-failures.children" in out and "page load" in out
    assert "live grid" in out
