"""Start and stop the real server (the production command) for benchmarks and soak tests."""
import os
import signal
import socket
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`gunicorn -w 1 --threads N dashapp.wsgi:server` in its own process group."""

    def __init__(self, database: str, port: int, *, secret: str, threads: int = 32, env: dict | None = None,
                 log=None):
        self.database, self.port, self.secret, self.threads = database, port, secret, threads
        self.env = env or {}
        self.log = log if log is not None else subprocess.DEVNULL
        self.proc: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 60) -> "Server":
        env = {**os.environ, "DATABASE_PATH": self.database, "GITHUB_WEBHOOK_SECRET": self.secret,
               "LOG_LEVEL": "WARNING", "WEBHOOK_FAILURE_LIMIT": "100000/minute", **self.env}
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self.proc = subprocess.Popen(
            [gunicorn, "-w", "1", "--threads", str(self.threads), "-b", f"127.0.0.1:{self.port}",
             "--graceful-timeout", "2", "dashapp.wsgi:server"],
            cwd=ROOT, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kb(self) -> dict:
        """Current and peak resident memory of the server's processes, in kB."""
        out = {"rss": 0, "hwm": 0}
        for pid in _group_pids(self.proc.pid):
            try:
                with open(f"/proc/{pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            out["rss"] += int(line.split()[1])
                        elif line.startswith("VmHWM:"):
                            out["hwm"] += int(line.split()[1])
            except FileNotFoundError:
                pass
        return out

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.getpgid(int(name)) == pgid:
                    pids.append(int(name))
            except ProcessLookupError:
                pass
    return pids
