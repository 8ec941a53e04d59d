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
        assert _active(server) == 0.0  # the web processes only accept
        os.kill(worker, signal.SIGKILL)
        assert post(server.url, "workflow_run", _run(8002)).status_code == 202  # accepted meanwhile
        assert [_next_run(c)["id"] for c in clients] == [8002] * 8  # applied by the restarted worker
        (restarted,) = _worker_pids(server)
        assert restarted != worker
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
