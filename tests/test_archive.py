"""Retention (store/archive.py): old rows out into monthly Parquet files and back, the rollups untouched."""
import json
import threading
import time

import pyarrow.parquet as pq
import pytest
import requests
from sqlalchemy import func, inspect, select

from dashapp import create_app
from dashapp.config import Config
from domain import records as r
from store import archive, derived, writer
from store.archive import command
from store.copy import digest
from store.derived.rollups import DAY
from store.engine import is_sqlite, make_engine
from store.migrate import upgrade
from store.queries.filters import Filters
from store.queries.waterfall import performance_records
from store.schema import archive_parts, deliveries, jobs, metadata, rollup_days, workflowruns
from tests import builders as b
from tests.helpers import SECRET, LiveServer, fixture_json, post

pytestmark = pytest.mark.both_stores

DAYS = 20  # the demo spans 30 days before it was built: about a third is older


def fingerprint(engine, skip=("archive_parts", "alembic_version")) -> dict:
    """{table: (rows, sha256)} of every table of the store."""
    with engine.connect() as conn:
        return {t.name: digest(conn, t) for t in metadata.sorted_tables if t.name not in skip}


def count(engine, table, *where) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar()


@pytest.fixture
def store(writable_demo, tmp_path):
    engine = make_engine(writable_demo)
    upgrade(engine)
    yield engine, tmp_path / "archive"
    engine.dispose()


def test_a_month_archived_and_restored_gives_back_every_row_and_leaves_the_rollups(store):
    engine, root = store
    before = fingerprint(engine)
    cutoff = archive.horizon_for(DAYS) * DAY
    old_runs = count(engine, workflowruns, workflowruns.c.createtime < cutoff)
    assert 50 < old_runs < before["workflowruns"][0]

    parts = archive.archive(engine, root, DAYS, runs=40)

    assert len(parts) >= old_runs // 40  # bounded batches
    assert count(engine, workflowruns, workflowruns.c.createtime < cutoff) == 0
    assert count(engine, jobs, jobs.c.createtime < cutoff - DAY) == 0
    assert sum(p.counts.get("workflowruns", 0) for p in parts) == old_runs
    after = fingerprint(engine)
    base = set(archive.TABLES_BY_NAME) | {"export_lines"}  # export lines go with their runs (SQLite triggers)
    for name in set(before) - base:  # rollups, people, streaks, commits...: not one row changed
        assert after[name] == before[name], name
    for name in archive.TABLES_BY_NAME:
        removed = before[name][0] - after[name][0]
        assert removed == sum(p.counts.get(name, 0) for p in parts), name
    with engine.connect() as conn:
        assert archive.cutoff(conn) == cutoff
        listed = archive.months(conn)
    assert sum(m["rows"]["workflowruns"] for m in listed) == old_runs
    assert [m["month"] for m in listed] == sorted({time.strftime("%Y-%m", time.gmtime(p.month * DAY)) for p in parts})
    # The files are Parquet any reader takes: a month's table directory is one dataset.
    first = listed[0]["month"]
    table = pq.read_table(root / first / "workflowruns")
    assert table.num_rows == listed[0]["rows"]["workflowruns"]
    assert set(table.column_names) == {c.name for c in workflowruns.columns}
    assert max(table.column("createtime").to_pylist()) < cutoff

    for m in listed:
        archive.restore(engine, root, archive.parse_month(m["month"]))

    assert fingerprint(engine) == before  # every table: counts and checksums
    with engine.connect() as conn:
        assert archive.horizon(conn) is None and archive.months(conn) == []
    assert not any(root.rglob("*.parquet"))


def test_the_performance_chart_of_90_days_keeps_its_whole_days(store):
    engine, root = store
    filters = Filters(repo="acme/webapp", branch="main", since=time.time() - 90 * DAY)

    def chart():
        with engine.connect() as conn:
            return performance_records(conn, filters, 86400)

    before = chart()
    archive.archive(engine, root, DAYS)
    after = chart()
    first_whole = -(-filters.since // DAY) * DAY
    assert [r for r in after if r["bucket"] >= first_whole] == [r for r in before if r["bucket"] >= first_whole]
    # The archived days were drawn before and are compared above. How many there are follows the demo's
    # weekly rhythm and the weekday the test runs on (4 to 10 days): a few, never none.
    assert len({r["bucket"] for r in before if r["bucket"] < archive.horizon_for(DAYS) * DAY}) >= 3


def test_the_writer_refuses_runs_and_jobs_before_the_horizon(store):
    engine, root = store
    archive.archive(engine, root, DAYS)
    with engine.connect() as conn:
        cutoff = archive.cutoff(conn)
    rollups = fingerprint(engine)["rollup_days"]
    old = b.run(990001, repo="acme/webapp", created=cutoff - 3 * DAY, conclusion="failure")
    new = b.run(990002, repo="acme/webapp", created=time.time() - 3600)
    late_job = r.Job(repo="acme/webapp", gitid=990003, run_gitid=990001, run_attempt=1, name="test",
                     workflow_name="CI", head_branch="main", head_sha="c1", status="completed", conclusion="failure",
                     createtime=cutoff - 3 * DAY, starttime=cutoff - 3 * DAY + 5, endtime=cutoff - 3 * DAY + 60,
                     runner_name=None, runner_id=None)
    with engine.begin() as conn:
        writer.apply(conn, [old, new, late_job])
    assert count(engine, workflowruns, workflowruns.c.gitid == 990001) == 0
    assert count(engine, workflowruns, workflowruns.c.gitid == 990002) == 1
    assert count(engine, jobs, jobs.c.gitid == 990003) == 0
    assert fingerprint(engine)["rollup_days"] != rollups  # the new run's day counted; the old day's rows as they were
    with engine.connect() as conn:
        old_day = conn.execute(select(func.sum(rollup_days.c.runs)).where(
            rollup_days.c.day == int((cutoff - 3 * DAY) // DAY))).scalar()
    assert old_day and old_day > 0
    with engine.begin() as conn, pytest.raises(RuntimeError, match="restore them first"):
        derived.rebuild(conn)


def test_a_batch_that_cannot_commit_leaves_its_rows_and_no_files(store, store_kind):
    engine, root = store
    if store_kind == "sqlite":
        refuse = ("CREATE TRIGGER refuse BEFORE DELETE ON workflowruns BEGIN SELECT RAISE(ABORT, 'refused'); END",
                  "DROP TRIGGER refuse")
    else:
        refuse = ("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; "
                  "END $$; CREATE TRIGGER refuse BEFORE DELETE ON workflowruns FOR EACH ROW EXECUTE FUNCTION "
                  "refuse()",
                  "DROP TRIGGER refuse ON workflowruns; DROP FUNCTION refuse()")
    with engine.begin() as conn:
        conn.exec_driver_sql(refuse[0])
    before = fingerprint(engine)
    with pytest.raises(Exception, match="refused"):
        archive.archive(engine, root, DAYS)
    assert fingerprint(engine) == before
    assert not any(root.rglob("*.parquet")) and not any(root.rglob("*.tmp"))
    # A crash after the files were written and before the commit: files without a batch row, removed.
    stray = root / "2026-01" / "workflowruns" / "part-000999.parquet"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"PAR1")
    with engine.begin() as conn:
        conn.exec_driver_sql(refuse[1])
    parts = archive.archive(engine, root, DAYS)
    assert parts and not stray.exists()
    assert {int(p.name[5:11]) for p in root.rglob("part-*.parquet")} == {p.id for p in parts}


def test_deliveries_posted_while_archiving_are_all_kept(writable_demo, tmp_path):
    """The processor archives between its batches while deliveries arrive: none is lost, the old rows go."""
    engine = make_engine(writable_demo)
    upgrade(engine)
    with engine.begin() as conn:  # deliveries of the archived era, and a dead letter that stays
        for i, outcome in enumerate(["processed"] * 30 + ["failed"]):
            conn.execute(deliveries.insert().values(
                guid=f"old-{i}", event="workflow_run", action="completed", repo="acme/webapp",
                received=time.time() - (DAYS + 5) * DAY + i, outcome=outcome, body=b"{}", processed=None))
    cutoff = archive.horizon_for(DAYS) * DAY
    old_runs = count(engine, workflowruns, workflowruns.c.createtime < cutoff)
    engine.dispose()
    app = create_app(Config.from_env({}, database_path=writable_demo, webhook_secret=SECRET, processor="off",
                                     archive_after_days=str(DAYS), archive_dir=str(tmp_path / "archive")))
    services = app.server.extensions["buildmon"]
    services.processor.archiver.runs = 10  # many small batches, interleaved with the deliveries'
    payload = fixture_json("workflow_run/completed.payload.json")
    sent = []
    try:
        with LiveServer(app) as live:
            services.start_processor()

            def send(offset):
                for i in range(40):
                    gitid = 880000000 + offset * 1000 + i
                    payload["workflow_run"].update(id=gitid, created_at=time.strftime(
                        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 600)))
                    answer = post(live.url, "workflow_run", json.dumps(payload).encode(), guid=f"new-{gitid}")
                    assert answer.status_code == 202, answer.text
                    sent.append(gitid)

            threads = [threading.Thread(target=send, args=(k,)) for k in range(3)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            services.settle(60)
            deadline = time.monotonic() + 60
            while services.processor.archiver._phase is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            engine = services.engine
            assert len(sent) == 120
            assert count(engine, workflowruns, workflowruns.c.gitid.in_(sent)) == 120
            assert count(engine, deliveries, deliveries.c.guid.like("new-%")) == 120
            assert count(engine, workflowruns, workflowruns.c.createtime < cutoff) == 0
            assert count(engine, deliveries, deliveries.c.guid.like("old-%")) == 1  # the dead letter
            with engine.connect() as conn:
                archived = archive.months(conn)
                parts = conn.execute(select(func.count()).select_from(archive_parts)).scalar()
            assert sum(m["rows"].get("workflowruns", 0) for m in archived) == old_runs
            assert sum(m["rows"].get("deliveries", 0) for m in archived) == 30
            assert parts >= old_runs // 10
            listed = requests.get(live.url + "/api/archives", timeout=10).json()  # from this host: an admin
            assert listed["keep_days"] == DAYS and listed["archived_before"] == cutoff
            assert [m["month"] for m in listed["months"]] == [m["month"] for m in archived]
            assert sum(m["rows"]["workflowruns"] for m in listed["months"]) == old_runs
    finally:
        services.close()


@pytest.mark.sqlite_only
def test_the_file_shrinks_and_the_command_lists_and_restores(demo_store, tmp_path, capsys):
    path = str(tmp_path / "s.db")
    engine = make_engine(path)  # a new file: incremental auto-vacuum from the start
    upgrade(engine)
    source = make_engine(demo_store)
    with source.connect() as src, engine.begin() as dst:
        for table in metadata.sorted_tables:
            if table.name in ("alembic_version",) or not inspect(src).has_table(table.name):
                continue
            rows = [dict(r._mapping) for r in src.execute(select(table))]
            if rows and table.name != "export_lines":
                dst.execute(table.insert(), rows)
    source.dispose()
    assert is_sqlite(engine)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA auto_vacuum").scalar() == 2
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    before = fingerprint(engine)
    engine.dispose()

    assert command.main(["--db", path, "run", "--days", str(DAYS)]) == 0
    out = capsys.readouterr().out
    assert "archived" in out and "month" in out and "runs" in out
    engine = make_engine(path)
    with engine.connect() as conn:
        # Smaller by the pages the archived rows held (how many depends on the demo's clock), none left free.
        assert conn.exec_driver_sql("PRAGMA page_count").scalar() < pages - 20
        assert conn.exec_driver_sql("PRAGMA freelist_count").scalar() == 0
        months = archive.months(conn)
    assert (tmp_path / "archive" / months[0]["month"] / "jobs").is_dir()  # beside the store

    # A batch whose file went missing is refused whole, with the reason; the rest stays archived.
    first = next((tmp_path / "archive" / months[0]["month"] / "workflowruns").glob("part-*.parquet"))
    first.rename(first.with_suffix(".moved"))
    assert command.main(["--db", path, "restore", months[0]["month"]]) == 2
    assert "workflowruns rows" in capsys.readouterr().err
    first.with_suffix(".moved").rename(first)
    assert command.main(["--db", path, "list"]) == 0
    assert months[0]["month"] in capsys.readouterr().out
    for m in months:
        assert command.main(["--db", path, "restore", m["month"]]) == 0
    assert "no archives" in capsys.readouterr().out
    assert fingerprint(engine) == before
    assert command.main(["--db", path, "restore", "2001-01"]) == 2
    assert "no archive of 2001-01" in capsys.readouterr().err
    assert command.main(["--db", path, "restore", "January"]) == 2
    engine.dispose()


def test_horizons_are_whole_utc_days_and_months_parse():
    now = 1_764_000_000.0  # 2025-11-24 16:00 UTC
    assert archive.horizon_for(30, now) == int((now - 30 * DAY) // DAY)
    assert archive.month_name(archive.parse_month("2026-09")) == "2026-09"
    assert archive.parse_month("2026-09") * DAY == 1_788_220_800  # 2026-09-01T00:00Z
    with pytest.raises(ValueError, match="YYYY-MM"):
        archive.parse_month("2026/09")


def test_the_policy_is_checked_at_start(tmp_path, caplog):
    path = str(tmp_path / "p.db")
    with pytest.raises(ValueError, match="ARCHIVE_AFTER_DAYS: at least 1 day"):
        create_app(Config.from_env({}, database_path=path, processor="off", archive_after_days="0.5"))
    app = create_app(Config.from_env({}, database_path=path, processor="off", archive_after_days="14"))
    try:
        assert app.server.extensions["buildmon"].processor.archiver.days == 14
        assert any("re-runs a run up to 30 days" in r.getMessage() for r in caplog.records)
    finally:
        app.server.extensions["buildmon"].close()
