"""Start and stop the real server (the production command) for benchmarks and soak tests.

- `Server`: `gunicorn -c dashapp/gunicorn_conf.py dashapp.wsgi:server` (README "Running in production",
  `run.sh`), configured by the environment as in production: HOST, PORT, WEB_CONCURRENCY (web
  processes, default 2), WEB_THREADS, PROCESSOR (`process`, the default: the gunicorn master starts
  a worker process that applies the inbox, in the same process group; `thread`: the web processes
  apply it; `off`: they only accept).
- `Worker`: `python -m dashapp worker`, the separate delivery processor for `PROCESSOR=off`.
- `FloorServer`: the shared reference floor (`$SHARED_DIR/bench/floor_app.py`) under gunicorn sync.

Each runs in its own process group, so `kill()` is a crash (SIGKILL of the group) and `cpu_seconds()`
sums user+system CPU of every live process of the group.
"""
import os
import signal
import socket
import subprocess
import sys
import time

import requests

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.environ.get("SHARED_DIR") or os.path.join(ROOT, "..", "shared")
_TICK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_inbox_path(database: str) -> str:
    """Where the server keeps its inbox when INBOX_PATH is not set: `x.db` -> `x.inbox.db`."""
    base = database[:-3] if database.endswith(".db") else database
    return base + ".inbox.db"


class _Group:
    """A child process in its own process group."""

    proc: subprocess.Popen | None = None

    def _spawn(self, argv, env, log, cwd=ROOT):
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the whole process group: a crash, not a shutdown."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        elif self.proc is not None:
            self.kill()  # the leader is gone: make sure no orphan of its group is left

    def pids(self) -> list[int]:
        return _group_pids(self.proc.pid) if self.proc is not None else []

    def cpu_seconds(self) -> float:
        """User + system CPU of the group's live processes (a snapshot: take differences)."""
        total = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
        return total / _TICK

    def rss_kb(self) -> dict:
        """Current and peak resident memory of the group's processes, in kB."""
        out = {"rss": 0, "hwm": 0}
        for pid in self.pids():
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


class ServerExited(RuntimeError):
    pass


def _wait_http(group: _Group, url: str, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if group.proc.poll() is not None:
            group.kill()  # no orphan of its group left behind
            raise ServerExited(f"{what} exited with {group.proc.returncode}")
        time.sleep(0.1)
    group.kill()
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")


class Server(_Group):
    """The production command, `gunicorn -c dashapp/gunicorn_conf.py dashapp.wsgi:server`.

    `workers` is WEB_CONCURRENCY (None: the production default), `threads` WEB_THREADS,
    `processor` PROCESSOR (None: the default, `process`).
    """

    def __init__(self, database: str, port: int, *, secret: str, threads: int = 32, workers: int | None = None,
                 processor: str | None = None, env: dict | None = None, log=None):
        self.database, self.port, self.secret, self.threads = database, port, secret, threads
        self.workers, self.processor = workers, processor
        self.env = env or {}
        self.log = log if log is not None else subprocess.DEVNULL
        self.url = f"http://127.0.0.1:{port}"

    @property
    def inbox(self) -> str:
        return self.env.get("INBOX_PATH") or default_inbox_path(self.database)

    def environment(self) -> dict:
        env = {**os.environ, "DATABASE_PATH": self.database, "GITHUB_WEBHOOK_SECRET": self.secret,
               "HOST": "127.0.0.1", "PORT": str(self.port), "WEB_THREADS": str(self.threads),
               "LOG_LEVEL": "WARNING", "WEBHOOK_FAILURE_LIMIT": "100000/minute"}
        env.pop("BENCHMARK_FLOOR", None)
        if self.workers is not None:
            env["WEB_CONCURRENCY"] = str(self.workers)
        if self.processor is not None:
            env["PROCESSOR"] = self.processor
        env.update(self.env)
        return env

    def start(self, timeout: float = 90, retries: int = 0) -> "Server":
        """Start and wait until it answers; `retries`: start again (saying so) if it exits while starting."""
        for attempt in range(retries + 1):
            try:
                return self._start(timeout)
            except ServerExited as exc:
                if attempt == retries:
                    raise
                print(f"note: {exc} while starting (a worker failed to boot: see the server log); starting again",
                      flush=True)
                self.failed_starts += 1
        return self

    failed_starts = 0

    def _start(self, timeout: float) -> "Server":
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        # `--config` is `-c` spelled long: the same command, but out of reach of a colleague's
        # `pkill -f "gunicorn -c dashapp/gunicorn_conf.py"` on the shared machine.
        self._spawn([gunicorn, "--config", "dashapp/gunicorn_conf.py", "dashapp.wsgi:server"], self.environment(),
                    self.log)
        _wait_http(self, self.url + "/healthz", timeout, "server")
        self._wait_workers_booted(min(timeout, 30))
        return self

    def _wait_workers_booted(self, timeout: float) -> None:
        """Best effort: until every gunicorn worker has the store open (each builds its own app).

        /healthz answers as soon as one worker is up; a benchmark started then would see one worker."""
        wanted = self.workers or int(self.environment().get("WEB_CONCURRENCY") or 2)
        target = os.path.realpath(self.database)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:  # gunicorn halts when a worker fails to boot
                self.kill()
                raise ServerExited(f"server exited with {self.proc.returncode}")
            workers = [p for p in self.pids() if p != self.proc.pid]
            ready = 0
            for pid in workers:
                try:
                    if any(os.path.realpath(os.path.join(f"/proc/{pid}/fd", fd)).startswith(target)
                           for fd in os.listdir(f"/proc/{pid}/fd")):
                        ready += 1
                except (FileNotFoundError, PermissionError, ProcessLookupError):
                    pass
            if ready >= wanted:
                return
            time.sleep(0.1)

    def health(self, timeout: float = 5) -> dict:
        return requests.get(self.url + "/healthz", timeout=timeout).json()


class Worker(_Group):
    """`python -m dashapp worker`: the delivery processor as a process of its own (web: PROCESSOR=off)."""

    def __init__(self, database: str, *, secret: str, env: dict | None = None, log=None):
        self.database, self.secret = database, secret
        self.env = env or {}
        self.log = log if log is not None else subprocess.DEVNULL

    def start(self) -> "Worker":
        env = {**os.environ, "DATABASE_PATH": self.database, "GITHUB_WEBHOOK_SECRET": self.secret,
               "LOG_LEVEL": "WARNING", **self.env}
        # `-m dashapp.__main__ worker` runs the same `main()` as `-m dashapp worker`, out of reach of a
        # colleague's `pkill -f "dashapp worker"` on the shared machine.
        self._spawn([sys.executable, "-m", "dashapp.__main__", "worker"], env, self.log)
        time.sleep(0.2)
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}")
        return self


class FloorServer(_Group):
    """`$SHARED_DIR/bench/floor_app.py` served by gunicorn sync workers (FLOOR_MODE hmac or insert)."""

    def __init__(self, mode: str, port: int, *, secret: str, db: str | None = None, workers: int = 2, log=None):
        self.mode, self.port, self.secret, self.db, self.workers = mode, port, secret, db, workers
        self.log = log if log is not None else subprocess.DEVNULL
        self.url = f"http://127.0.0.1:{port}"

    def start(self, timeout: float = 60) -> "FloorServer":
        app_dir = os.path.join(SHARED_DIR, "bench")
        if not os.path.exists(os.path.join(app_dir, "floor_app.py")):
            raise RuntimeError(f"no floor_app.py in {app_dir} (set SHARED_DIR)")
        env = {**os.environ, "FLOOR_MODE": self.mode, "FLOOR_SECRET": self.secret}
        if self.db:
            env["FLOOR_DB"] = self.db
        gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
        self._spawn([gunicorn, "-w", str(self.workers), "-k", "sync", "-b", f"127.0.0.1:{self.port}",
                     "--no-control-socket", "--chdir", app_dir, "floor_app:app"], env, self.log, cwd=app_dir)
        # the floor has no GET route: any HTTP answer (405) means it is up
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                requests.get(self.url + "/webhook", timeout=1)
                time.sleep(0.5)  # the second sync worker boots alongside the first
                return self
            except requests.RequestException:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"floor {self.mode} exited with {self.proc.returncode}")
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"floor {self.mode} did not start")


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
