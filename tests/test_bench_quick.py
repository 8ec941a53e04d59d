"""The benchmarks' quick modes, so the scripts never rot (smoke runs, not timed assertions)."""
import re
import sqlite3
import zlib

import pytest

from bench import archive, generate, ingest, views, workers


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
def test_generate_captures_every_failed_job(tmp_path):
    """Every failed job has its log captured and a primary failure line, as the product stores them."""
    from failures import CLASSES

    paths = [str(tmp_path / name) for name in ("a.db", "b.db")]
    for path in paths:
        generate.generate(path, runs=3000, now=1_750_000_000.0, quiet=True)
    dbs = [sqlite3.connect(path) for path in paths]
    lines = [db.execute("SELECT * FROM failure_lines ORDER BY job, ordinal").fetchall() for db in dbs]
    assert lines[0] == lines[1]  # deterministic
    db = dbs[0]
    failed = {g for g, in db.execute("SELECT gitid FROM jobs WHERE status = 'completed'"
                                     " AND conclusion IN ('failure', 'timed_out')")}
    logs = db.execute("SELECT job, state, source, excerpt FROM job_logs").fetchall()
    assert {row[0] for row in logs} == failed and len(failed) > 200
    assert {(row[1], row[2]) for row in logs} == {("done", "bench")}
    assert all(zlib.decompress(row[3]).decode() for row in logs)
    assert {job for job, in db.execute("SELECT job FROM failure_lines WHERE ordinal = 0")} == failed
    assert db.execute("SELECT count(*) FROM failure_lines WHERE ordinal > 0").fetchone()[0] > 0  # some have 2-3
    assert {k for k, in db.execute('SELECT DISTINCT class FROM failure_lines')} <= set(CLASSES)
    assert all(re.fullmatch(r"[0-9a-f]{16}", fp) for fp, in db.execute("SELECT fingerprint FROM failure_lines"))
    sizes = [n for n, in db.execute("SELECT count(*) FROM failure_lines WHERE ordinal = 0 GROUP BY fingerprint"
                                    " ORDER BY 1 DESC")]
    assert len(sizes) > 100 and sum(sizes[:10]) > 0.2 * len(failed)  # many causes, a heavy head
    # A red streak on the default branch repeats its cause: consecutive failed runs of a workflow on main
    # share their fingerprint far more often than chance.
    rows = db.execute(
        "SELECT w.repo, w.archivedworkflowname, f.fingerprint FROM workflowruns w"
        " JOIN jobs j ON j.run_gitid = w.gitid AND j.run_attempt = w.run_attempt"
        " JOIN failure_lines f ON f.job = j.gitid AND f.ordinal = 0"
        " WHERE w.archivedbranchname = 'main' ORDER BY w.repo, w.archivedworkflowname, w.createtime").fetchall()
    same = sum(a[:2] == b[:2] and a[2] == b[2] for a, b in zip(rows, rows[1:]))
    assert same > 0.2 * len(rows), (same, len(rows))
    # A failed attempt that passed on re-run failed on a flaky test or on infra (its primary line says which).
    rerun = {k for k, in db.execute(
        "SELECT DISTINCT f.class FROM workflowruns w JOIN jobs j ON j.run_gitid = w.gitid AND j.run_attempt = 1"
        " JOIN failure_lines f ON f.job = j.gitid AND f.ordinal = 0"
        " WHERE w.run_attempt = 2 AND w.conclusion = 'success'")}
    assert rerun and rerun <= {"test", "infra", "unknown"}


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
    # Failure intelligence: Triage's failures by cause and the biggest failure group's page.
    assert "tr-causes.children" in out and "fl-occurrences.children" in out and "fl-header.children" in out
    assert "live grid" in out
    # Every page's time to first content: each drew its sections (a page whose content never came shows inf).
    table = out[out.index("time to first content"):].splitlines()
    for page in ("Waterfall", "Triage", "Runners", "Alerts", "Developer", "Failure", "Commit", "Pull request"):
        row = next(line for line in table if line.startswith(page + " "))
        assert "inf" not in row, row


def test_archive_quick(capsys):
    assert archive.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"runs stored ([\d,]+) \(lost 0\)", out)
    assert "90-day charts (whole days)" in out and ": equal" in out
    assert "counts and checksums equal the original's: yes" in out


def test_workers_quick(capsys):
    """One and two workers apply the same backlog on PostgreSQL (one on SQLite), every delivery once."""
    from tests import pg

    if not pg.wanted():
        pytest.skip(f"{pg.OPT_OUT}=0")
    assert workers.main(["--quick"]) == 0
    out = capsys.readouterr().out
    rows = {tuple(line.split()[:2]) for line in out.splitlines() if line.startswith(("SQLite ", "PostgreSQL "))}
    assert rows == {("SQLite", "1"), ("PostgreSQL", "1"), ("PostgreSQL", "2")}
