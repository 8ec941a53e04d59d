"""`python -m store.copy`: a SQLite store copied into PostgreSQL, resumable, verified by counts and checksums."""
import os
import shutil
import time

import pytest
from sqlalchemy import func, select, update

from dashapp import create_app
from dashapp.config import Config
from store import copy as storecopy
from store import inbox as storeinbox
from store.engine import make_engine
from store.schema import commits, failure_lines, jobs, repos, workflowruns
from tests import builders as b
from tests import pg
from tests.helpers import SECRET

pytestmark = pytest.mark.skipif(not pg.wanted(), reason=f"{pg.OPT_OUT}=0")

API = ("/api/builds?limit=100", "/api/builds?repo=acme/webapp&conclusion=failure&limit=50", "/api/metrics",
       "/api/failures", "/api/flaky", "/api/builds.csv")


@pytest.fixture
def source(demo_store, tmp_path):
    """A copy of the demo's SQLite store the test may change."""
    path = str(tmp_path / "demo.db")
    for suffix in ("", "-wal"):
        if os.path.exists(demo_store + suffix):
            shutil.copy(demo_store + suffix, path + suffix)
    return path


def counts(location: str, *tables) -> list[int]:
    engine = make_engine(location)
    try:
        with engine.connect() as conn:
            return [conn.execute(select(func.count()).select_from(t)).scalar() for t in tables]
    finally:
        engine.dispose()


def answers(location: str) -> dict:
    app = create_app(Config.from_env({}, database_path=location, webhook_secret=SECRET,
                                     api_rate_limit="100000/minute"))
    try:
        client = app.server.test_client()
        got = {}
        for path in API:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code)
            got[path] = response.get_data(as_text=True) if path.endswith(".csv") else response.get_json()
            got[path].get("filters", {}).pop("since", None) if isinstance(got[path], dict) else None  # now - 7 days
        return got
    finally:
        app.server.extensions["buildmon"].close()


def test_the_demo_copied_into_a_bare_database_is_equal_and_answers_the_same(pg_cluster, source):
    url = pg_cluster.new_database(template="template0")  # migrated by the copy
    lines = []
    report = storecopy.copy(source, url, out=lines.append)
    try:
        assert report.equal and report.checks
        by_name = {check.name: check for check in report.checks}
        assert by_name["workflowruns"].source_rows > 300 and by_name["jobs"].destination_rows > 1000
        assert by_name["rollup_days"].source_rows > 0 and "export_lines" not in by_name  # kept by the destination
        assert any("rows/s" in line for line in lines) and lines[-1].strip().endswith("equal")
        assert answers(source) == answers(url)  # the CSV's lines too: SQLite's stored ones, PostgreSQL's formatted
        # The sequences follow the copied ids: a new row gets the next one.
        engine = make_engine(url)
        with engine.begin() as conn:
            highest = conn.execute(select(func.max(repos.c.id))).scalar()
            new = conn.execute(repos.insert().values(name="new/repo").returning(repos.c.id)).scalar()
        engine.dispose()
        assert new == highest + 1
    finally:
        pg_cluster.drop(url)


def test_a_copy_stopped_twice_continues_without_duplicates(pg_cluster, source):
    url = pg_cluster.new_database()
    full = counts(source, commits, failure_lines, jobs, workflowruns)
    try:
        # The demo's 61 branches (2 batches of 50), 170 commits (4), then the first batch of its 119 failure
        # lines: a composite key's table is one transaction, so it is left empty.
        with pytest.raises(storecopy.Interrupted):
            storecopy.copy(source, url, batch_rows=50, fail_after_batches=7, out=lambda _: None)
        got = counts(url, commits, failure_lines, jobs, workflowruns)
        assert got[0] == full[0] and got[1:] == [0, 0, 0]
        # Then failure lines (3 batches), job logs and a few of jobs' 22 batches: those kept.  (The batches
        # before jobs are not the same on every run of the demo: 5 and 7 of jobs' were seen, so the jobs
        # kept are counted as whole batches, not exactly.)
        with pytest.raises(storecopy.Interrupted):
            storecopy.copy(source, url, batch_rows=50, fail_after_batches=10, out=lambda _: None)
        got = counts(url, commits, failure_lines, jobs, workflowruns)
        assert got[1] == full[1] and 0 < got[2] < full[2] and got[2] % 50 == 0 and got[3] == 0
        lines = []
        report = storecopy.copy(source, url, batch_rows=50, out=lines.append)
        assert "(resuming)" in lines[0] and report.copied["commits"] == 0 and report.copied["failure_lines"] == 0
        assert report.copied["jobs"] == full[2] - got[2]
        assert report.equal and counts(url, commits, failure_lines, jobs, workflowruns) == full
        assert storecopy.main([source, url]) == 0  # once complete, a run again only verifies
    finally:
        pg_cluster.drop(url)


def test_a_destination_holding_another_store_is_refused(pg_cluster, source, tmp_path, capsys):
    other = str(tmp_path / "other.db")
    b.store_with(other, [b.commit("c1"), b.run(1, sha="c1"), b.run(2, sha="c1", conclusion="failure")]).dispose()
    url = pg_cluster.new_database()
    try:
        assert storecopy.copy(other, url, out=lambda _: None).equal
        before = counts(url, commits, jobs, workflowruns)
        with pytest.raises(storecopy.Refused, match="not a partial copy"):
            storecopy.copy(source, url, out=lambda _: None)
        assert storecopy.main([source, url]) == 2 and "refused" in capsys.readouterr().err
        assert counts(url, commits, jobs, workflowruns) == before  # nothing written
        # A complete copy that the server then wrote to is not a copy any more either.
        engine = make_engine(url)
        with engine.begin() as conn:
            conn.execute(repos.insert().values(name="later/repo"))
        engine.dispose()
        with pytest.raises(storecopy.Refused):
            storecopy.copy(other, url, out=lambda _: None)
    finally:
        pg_cluster.drop(url)


def test_a_difference_is_found_and_named(pg_cluster, source, capsys):
    url = pg_cluster.new_database()
    try:
        assert storecopy.copy(source, url, out=lambda _: None).equal
        engine = make_engine(url)
        with engine.begin() as conn:
            run = conn.execute(select(func.min(workflowruns.c.id))).scalar()
            conn.execute(update(workflowruns).where(workflowruns.c.id == run)
                         .values(runtime=workflowruns.c.runtime + 0.001))
        engine.dispose()
        assert storecopy.main(["--verify-only", source, url]) == 1
        out = capsys.readouterr()
        assert f"DIFFERENT (first at key ({run},))" in out.out and "DIFFERENT: workflowruns" in out.err
    finally:
        pg_cluster.drop(url)


def test_the_pending_inbox_and_large_bodies_are_copied(pg_cluster, tmp_path):
    path = str(tmp_path / "small.db")
    b.store_with(path, [b.commit("c1"), b.run(1, sha="c1")]).dispose()
    box = make_engine(storeinbox.inbox_location(path))
    big = os.urandom(300_000)
    with box.begin() as conn:
        storeinbox.metadata.create_all(conn)
        conn.execute(storeinbox.inbox.insert(), [
            {"id": 7 + i, "guid": f"g{i}", "event": "ping", "content_type": "application/json",
             "received": time.time(), "body": big if i == 1 else b'{"zen": "hi"}'} for i in range(3)])
    box.dispose()
    url = pg_cluster.new_database()
    try:
        # A 100 kB budget: the large body goes in a batch of its own.
        report = storecopy.copy(path, url, batch_bytes=100_000, out=lambda _: None)
        assert report.equal and report.copied["inbox"] == 3
        engine = make_engine(url)
        with engine.begin() as conn:
            rows = conn.execute(select(storeinbox.inbox.c.id, storeinbox.inbox.c.body)
                                .order_by(storeinbox.inbox.c.id)).all()
            new = conn.execute(storeinbox.inbox.insert().values(
                guid="next", event="ping", content_type="application/json", received=0.0, body=b"")
                .returning(storeinbox.inbox.c.id)).scalar()
        engine.dispose()
        assert [r.id for r in rows] == [7, 8, 9] and rows[1].body == big and new == 10
    finally:
        pg_cluster.drop(url)
