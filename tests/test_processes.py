"""Several processes on one store, as `./run.sh` and the README run them: gunicorn web processes,
a separate worker, live updates reaching every process's WebSocket clients.

Real processes (the production command), real HTTP and WebSockets on 127.0.0.1.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest
import requests
import websocket

from bench.server import free_port
from tests.helpers import ROOT, SECRET, fixture_json, post

pytestmark = pytest.mark.slow
GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")


class Proc:
    def __init__(self, args, env, port=None):
        self.port = port
        self.url = f"http://127.0.0.1:{port}" if port else None
        self.log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would stall the server
        self.proc = subprocess.Popen(args, cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=self.log)

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise AssertionError(self.log.read().decode(errors="replace")[-3000:])
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError("server did not start")

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture
def procs():
    started = []
    yield started
    for p in started:
        p.stop()


def _env(db, **extra):
    return {"DATABASE_PATH": db, "GITHUB_WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "WARNING", "WEB_THREADS": "32",
            **{k: str(v) for k, v in extra.items()}}


def _web(procs, db, **extra) -> Proc:
    port = free_port()
    proc = Proc([GUNICORN, "-c", "dashapp/gunicorn_conf.py", "dashapp.wsgi:server"], _env(db, PORT=port, **extra),
                port)
    procs.append(proc)
    return proc.wait_ready()


def _client(server) -> websocket.WebSocket:
    client = websocket.create_connection(server.url.replace("http://", "ws://") + "/ws", timeout=15)
    assert json.loads(client.recv())["type"] == "hello"
    return client


def _run(run_id: int) -> bytes:
    payload = fixture_json("workflow_run/completed.payload.json")
    payload["workflow_run"]["id"] = run_id
    return json.dumps(payload).encode()


def _next_run(client, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout  # heartbeat pings arrive every 15 s: recv alone never times out
    while time.monotonic() < deadline:
        message = json.loads(client.recv())
        if message["type"] == "run":
            return message["row"]
    raise AssertionError(f"no run message within {timeout} s")


def _metric_sum(server, name: str) -> float:
    """The sum of a metric's samples (every label) in one scrape of /metrics."""
    total = 0.0
    for line in requests.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _active(server) -> float:
    for line in requests.get(server.url + "/metrics", timeout=10).text.splitlines():
        if line.startswith("buildmon_processor_active "):
            return float(line.split()[1])
    raise AssertionError("no buildmon_processor_active")


@pytest.mark.both_stores
def test_a_delivery_posted_to_one_web_process_reaches_the_clients_of_another(procs, new_store):
    """Two servers on one store: on SQLite over the machine's local sockets; on PostgreSQL, as on two hosts,
    nothing but the store joins them (LISTEN/NOTIFY)."""
    db = new_store("two")
    first = _web(procs, db, WEB_CONCURRENCY=1, PROCESSOR="thread")
    second = _web(procs, db, WEB_CONCURRENCY=1, PROCESSOR="thread")
    clients = [_client(first), _client(second)]
    try:
        for target, run_id in ((first, 7001), (second, 7002)):
            assert post(target.url, "workflow_run", _run(run_id)).status_code == 202
            assert [_next_run(c)["id"] for c in clients] == [run_id, run_id]
        # One processor between them; the other stands by.
        assert sorted([_active(first), _active(second)]) == [0.0, 1.0]
    finally:
        for c in clients:
            c.close()


def _worker_pids(server) -> list[int]:
    """The `dashapp worker` processes of the server's process group (from /proc)."""
    group, found = os.getpgid(server.proc.pid), []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ")
            if b"dashapp worker" in command and os.getpgid(int(name)) == group:
                found.append(int(name))
        except (OSError, ProcessLookupError):
            continue
    return found


def test_the_production_command_serves_every_client_live_and_restarts_its_processor(procs, tmp_path):
    """The defaults of `./run.sh`: two web processes and the processor the gunicorn master starts."""
    db = str(tmp_path / "workers.db")
    server = _web(procs, db)
    clients = [_client(server) for _ in range(8)]  # spread over the two web processes by the kernel
    try:
        assert post(server.url, "workflow_run", _run(8001)).status_code == 202
        assert [_next_run(c)["id"] for c in clients] == [8001] * 8
        (worker,) = _worker_pids(server)
        # The web processes only accept; /metrics, whichever answers, counts the worker's processor too.
        assert _active(server) == 1.0
        os.kill(worker, signal.SIGKILL)
        assert post(server.url, "workflow_run", _run(8002)).status_code == 202  # accepted meanwhile
        assert [_next_run(c)["id"] for c in clients] == [8002] * 8  # applied by the restarted worker
        (restarted,) = _worker_pids(server)
        assert restarted != worker
        # One /metrics for the server's processes, whichever web process answers: both deliveries accepted
        # (by either web process) and both applied (one by the killed worker, one by its successor).
        for _ in range(4):
            assert _metric_sum(server, "buildmon_deliveries_total") == 2
            assert _metric_sum(server, "buildmon_deliveries_processed_total") == 2
        deadline = time.monotonic() + 10  # each process sets its own gauges every 2 s; summed over both
        while _metric_sum(server, "buildmon_websocket_clients") != 8:
            assert time.monotonic() < deadline, "the two web processes' WebSockets were not summed to 8"
            time.sleep(0.2)
    finally:
        for c in clients:
            c.close()
    server.stop()  # stopping the server stops its worker
    assert _worker_pids_gone(restarted)


def _worker_pids_gone(pid: int, timeout: float = 15) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_web_processes_without_a_processor_and_a_separate_worker(procs, tmp_path):
    db = str(tmp_path / "worker.db")
    web = _web(procs, db, WEB_CONCURRENCY=1, PROCESSOR="off")
    client = _client(web)
    try:
        assert post(web.url, "workflow_run", _run(9001)).status_code == 202
        time.sleep(0.5)
        health = requests.get(web.url + "/healthz", timeout=10).json()
        assert health["inbox"]["pending"] == 1 and _active(web) == 0.0  # accepted, not applied
        worker = Proc([sys.executable, "-m", "dashapp", "worker"], _env(db))
        procs.append(worker)
        assert _next_run(client)["id"] == 9001  # applied by the worker, published to the web process
        assert requests.get(web.url + "/healthz", timeout=10).json()["inbox"]["pending"] == 0
        assert post(web.url, "workflow_run", _run(9002)).status_code == 202
        assert _next_run(client)["id"] == 9002  # the web process woke the worker: no polling delay
    finally:
        client.close()
    worker.proc.send_signal(signal.SIGTERM)  # stops cleanly
    assert worker.proc.wait(timeout=15) == 0


# --- must-show: 2 web processes and 2 workers on one PostgreSQL, a worker killed in a burst --------------

API_ALL = ("/api/builds?since=0&limit=500", "/api/builds?since=0&conclusion=failure&limit=500",
           "/api/metrics?since=0", "/api/failures?since=0", "/api/flaky?since=0", "/api/builds.csv?since=0")


def _answers(url: str) -> dict:
    out = {}
    for path in API_ALL:
        response = requests.get(url + path, timeout=60)
        assert response.status_code == 200, (path, response.text[:300])
        out[path] = response.text if ".csv" in path else response.json()
    return out


def _send_all(targets: list, items, concurrency: int = 8) -> list[int]:
    """Post `items` signed, taking turns over the `targets` (base URLs)."""
    from concurrent.futures import ThreadPoolExecutor

    from ingest.signature import sign

    local = threading.local()

    def one(numbered):
        n, (event, guid, body) = numbered
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        return session.post(targets[n % len(targets)] + "/webhook", data=body, timeout=60, headers={
            "X-GitHub-Event": event, "X-GitHub-Delivery": guid, "Content-Type": "application/json",
            "X-Hub-Signature-256": sign(SECRET, body)}).status_code

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, enumerate(items)))


def _in_batch(db: str, name: str) -> bool:
    """True while the worker whose sessions are named `name` holds a repository's lock: mid-batch."""
    from sqlalchemy import text

    from store.engine import make_engine
    from store.inbox import REPO_LOCKS

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            return bool(conn.execute(text(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.classid = :ns AND a.application_name = :name"),
                {"ns": REPO_LOCKS, "name": name}).scalar())
    finally:
        engine.dispose()


@pytest.mark.both_stores
@pytest.mark.postgresql_only
def test_two_web_processes_and_two_workers_share_one_postgresql(procs, new_store, tmp_path):
    """Must-show 2: a delivery posted to web A reaches a WebSocket client of web B; SIGKILL of a worker in the
    middle of a batch, during a burst, loses nothing acknowledged and applies nothing twice; the API answers
    what one SQLite process answers for the same deliveries."""
    from bench.deliveries import synthetic_deliveries
    from dashapp import create_app
    from dashapp.config import Config
    from tests.helpers import LiveServer

    db = new_store("scale")
    web_a = _web(procs, db, WEB_CONCURRENCY=1, PROCESSOR="off")
    web_b = _web(procs, db, WEB_CONCURRENCY=1, PROCESSOR="off")
    named = {name: db + ("&" if "?" in db else "?") + f"application_name={name}" for name in ("w1", "w2")}
    workers = {name: Proc([sys.executable, "-m", "dashapp", "worker"], _env(url, PROCESSOR_BATCH=20))
               for name, url in named.items()}
    procs.extend(workers.values())
    client = _client(web_b)
    try:
        assert post(web_a.url, "workflow_run", _run(9101)).status_code == 202
        assert _next_run(client)["id"] == 9101  # posted to A, applied by a worker, pushed by B
    finally:
        client.close()

    items = synthetic_deliveries(720, seed=31, repos=6)
    codes: list = []
    sender = threading.Thread(target=lambda: codes.extend(_send_all([web_a.url, web_b.url], items)))
    sender.start()
    deadline = time.monotonic() + 60
    while not _in_batch(db, "w1"):  # wait for w1 to hold a batch, then kill it there
        assert time.monotonic() < deadline and sender.is_alive(), "w1 never held a batch during the burst"
        time.sleep(0.01)
    workers["w1"].proc.send_signal(signal.SIGKILL)
    workers["w1"].proc.wait(timeout=10)
    sender.join(timeout=300)
    assert codes == [202] * len(items)  # every one acknowledged
    deadline = time.monotonic() + 120
    while requests.get(web_a.url + "/healthz", timeout=10).json()["inbox"]["pending"]:
        assert time.monotonic() < deadline, "w2 did not apply what w1 left"
        time.sleep(0.2)
    from sqlalchemy import func, select

    from store.engine import make_engine
    from store.schema import deliveries

    engine = make_engine(db)
    try:
        with engine.connect() as conn:
            outcomes = dict(conn.execute(select(deliveries.c.outcome, func.count()).group_by(deliveries.c.outcome)).all())
    finally:
        engine.dispose()
    assert outcomes == {"processed": len(items) + 1}  # the one run above and the burst, each once
    shared = _answers(web_a.url)
    assert _answers(web_b.url) == shared
    assert shared["/api/builds?since=0&limit=500"]["total"] == 61  # the burst's 60 runs and the first

    single = create_app(Config.from_env({}, database_path=str(tmp_path / "single.db"), webhook_secret=SECRET))
    try:
        with LiveServer(single) as live:
            assert _send_all([live.url], [("workflow_run", "first-run", _run(9101))] + items) == [202] * (len(items) + 1)
            live.services.settle(timeout=120)
            assert _answers(live.url) == shared
    finally:
        single.server.extensions["buildmon"].close()
