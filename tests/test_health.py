"""`/healthz`, `/readyz`, `/livez`: 503 with the reason when deliveries could not be stored or applied,
200 again after recovery; old delivery bodies emptied, their rows kept.

A full disk is a real small filesystem (tmpfs) that the test mounts and fills.  A store or inbox
that refuses writes is SQLite refusing them (`query_only`, `max_page_count`) on the app's own
connections: a filesystem cannot be remounted read-only while SQLite holds files open on it for
writing, so its read-only check is shown on a filesystem with nothing open.
"""
import os
import subprocess
import time
import uuid

import pytest
import requests
from sqlalchemy import event, select

from dashapp import create_app
from dashapp.config import Config
from dashapp.health import disk_reasons
from store.retention import drop_old_bodies
from store.schema import deliveries
from tests.helpers import SECRET, LiveServer, fixture_bytes, post

PING = fixture_bytes("ping/payload.json")
RUN = fixture_bytes("workflow_run/completed.payload.json")


def _health(server) -> tuple[int, dict]:
    answer = requests.get(server.url + "/healthz", timeout=10)
    ready = requests.get(server.url + "/readyz", timeout=10)
    assert ready.status_code == answer.status_code
    assert requests.get(server.url + "/livez", timeout=10).status_code == 200  # alive whatever happens
    return answer.status_code, answer.json()


@pytest.fixture
def small_fs(tmp_path):
    """A 24 MB tmpfs of this test's own (the machine's disks are left alone)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a filesystem here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _served(path, **overrides):
    config = Config.from_env({}, database_path=str(path), webhook_secret=SECRET, **overrides)
    return create_app(config)


def test_a_full_disk_is_503_with_the_reason_then_200_after_space_is_freed(small_fs):
    app = _served(small_fs / "builds.db", health_min_free_mb=4)
    try:
        with LiveServer(app) as server:
            status, body = _health(server)
            assert status == 200 and body["reasons"] == []
            filler = small_fs / "filler"
            with open(filler, "wb") as f:  # until the disk is really full
                try:
                    while True:
                        f.write(b"\0" * 1024 * 1024)
                        f.flush()
                except OSError:
                    pass
            answer = post(server.url, "workflow_run", RUN)
            assert answer.status_code in (202, 503)  # a page of the inbox may still have had room
            status, body = _health(server)
            assert status == 503 and body["status"] == "error"
            assert any("disk is nearly full" in reason for reason in body["reasons"]), body
            os.remove(filler)
            assert post(server.url, "workflow_run", RUN).status_code in (200, 202)
            server.services.settle()
            assert _health(server)[0] == 200
    finally:
        app.server.extensions["buildmon"].close()


def _refuse_writes(engine, pragma):
    """Every new connection of `engine` refuses writes the way SQLite itself does (`pragma`)."""
    def on_connect(dbapi, _record):
        dbapi.execute(pragma)

    event.listen(engine, "connect", on_connect)
    engine.dispose()

    def undo():
        event.remove(engine, "connect", on_connect)
        engine.dispose()
    return undo


def test_a_read_only_store_is_503_and_deliveries_wait_until_it_is_writable(db_path):
    app = _served(db_path)
    services = app.server.extensions["buildmon"]
    try:
        with LiveServer(app) as server:
            undo = _refuse_writes(services.engine, "PRAGMA query_only=ON")
            assert post(server.url, "workflow_run", RUN).status_code == 202  # the inbox still takes it
            deadline = time.monotonic() + 30
            while services.processor.write_failure is None and time.monotonic() < deadline:
                time.sleep(0.05)
            status, body = _health(server)
            assert status == 503
            assert any("writes to the store are failing" in r and "readonly" in r for r in body["reasons"]), body
            assert body["inbox"]["pending"] == 1  # kept, not lost
            undo()
            services.settle()
            assert _health(server)[0] == 200
    finally:
        services.close()


def test_a_read_only_inbox_refuses_deliveries_with_503_and_says_why(db_path):
    app = _served(db_path)
    services = app.server.extensions["buildmon"]
    try:
        with LiveServer(app) as server:
            undo = _refuse_writes(services.inbox.engine, "PRAGMA query_only=ON")
            answer = post(server.url, "ping", PING)
            assert answer.status_code == 503 and answer.json()["outcome"] == "error"
            status, body = _health(server)
            assert status == 503
            assert any("writes to the inbox are failing" in r and "readonly" in r for r in body["reasons"]), body
            undo()
            assert post(server.url, "ping", PING).status_code == 202
            services.settle()
            assert _health(server)[0] == 200
    finally:
        services.close()


def test_a_read_only_filesystem_is_named(small_fs):
    assert disk_reasons("store", str(small_fs / "builds.db"), 1) == []
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    assert disk_reasons("store", str(small_fs / "builds.db"), 1) == [
        f"the store is on a read-only filesystem ({small_fs})"]
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)


def test_an_inbox_that_refuses_writes_is_503_until_a_write_succeeds(db_path):
    app = _served(db_path)
    services = app.server.extensions["buildmon"]
    engine = services.inbox.engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
    try:
        with LiveServer(app) as server:
            # SQLite's own "database or disk is full", at the inbox's current size.
            undo = _refuse_writes(engine, f"PRAGMA max_page_count={pages}")
            answers = [post(server.url, "workflow_run", RUN).status_code for _ in range(20)]
            assert 503 in answers
            status, body = _health(server)
            assert status == 503
            assert any("writes to the inbox are failing" in r and "full" in r for r in body["reasons"]), body
            undo()
            assert post(server.url, "workflow_run", RUN).status_code in (200, 202)
            services.settle()
            assert _health(server)[0] == 200
    finally:
        services.close()


def test_processing_lag_over_the_threshold_is_503(db_path):
    app = _served(db_path, processor="off", health_max_lag=1.0)
    services = app.server.extensions["buildmon"]
    try:
        with LiveServer(app) as server:
            assert post(server.url, "ping", PING).status_code == 202
            time.sleep(1.5)
            status, body = _health(server)
            assert status == 503 and any("behind" in r and "HEALTH_MAX_LAG" in r for r in body["reasons"]), body
            services.processor.start()
            services.settle()
            assert _health(server)[0] == 200
    finally:
        services.close()


def test_old_bodies_are_emptied_their_rows_and_dead_letters_kept(server, services):
    guids = [str(uuid.uuid4()) for _ in range(3)]
    assert post(server.url, "ping", PING, guid=guids[0]).status_code == 202
    assert post(server.url, "workflow_run", RUN, guid=guids[1]).status_code == 202
    assert post(server.url, "workflow_run", b"{broken", guid=guids[2]).status_code == 202  # a dead letter
    services.settle()
    assert drop_old_bodies(services.engine, 14) == 0  # nothing is old yet
    assert drop_old_bodies(services.engine, 0, now=time.time() + 30 * 86400) == 0  # 0 keeps forever
    assert drop_old_bodies(services.engine, 14, now=time.time() + 15 * 86400) == 2
    with services.engine.connect() as conn:
        rows = {r.guid: r for r in conn.execute(select(deliveries))}
    assert set(rows) == set(guids)
    assert rows[guids[0]].body == b"" and rows[guids[1]].body == b"" and rows[guids[2]].body == b"{broken"
    assert rows[guids[1]].outcome == "processed" and rows[guids[2]].outcome == "failed"
    # Still known: a redelivery of an emptied one is a duplicate, not applied again.
    again = post(server.url, "workflow_run", RUN, guid=guids[1])
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
