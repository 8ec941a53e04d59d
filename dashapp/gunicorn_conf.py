"""gunicorn settings of the production command (`./run.sh`, README "Running in production").

`gunicorn -c dashapp/gunicorn_conf.py dashapp.wsgi:server` reads HOST, PORT, WEB_CONCURRENCY and
WEB_THREADS, so the README's command, `run.sh` and the benchmarks serve the same way.  Threads, not
sync workers: each open page holds a thread for its WebSocket.  No preload: every worker builds its
own app after the fork (the inbox writer and processor are threads, which a fork would not copy).
"""
import importlib.util
import os
import sys
import threading


def _load(filename: str):
    # dashapp/config.py and dashapp/gunicorn_worker.py read on their own: importing the `dashapp`
    # package would load Dash, pandas' neighbours and SQLAlchemy into the master (74 MB instead of
    # ~27), which serves no request.  So the worker class is given to gunicorn as a class, not as
    # "dashapp.gunicorn_worker.Worker", which gunicorn would import with its package.
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), filename)
    spec = importlib.util.spec_from_file_location("_buildmon_" + filename[:-3], path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_config = _load("config.py").Config.from_env()
bind = f"{_config.host}:{_config.port}"
workers = _config.web_concurrency
threads = _config.web_threads
# gthread, reading each request's head (and small body) without a thread, and closing a connection
# whose request has not arrived within REQUEST_TIMEOUT (dashapp/gunicorn_worker.py).
worker_class = _load("gunicorn_worker.py").Worker
worker_class.request_timeout = _config.request_timeout
# A connection waiting for its request costs a file, not a thread: room for twice as many slow
# senders as threads besides the open pages and the requests being served.
worker_connections = max(1000, 4 * threads)
# A WebSocket is a request that lasts as long as the page is open: it must not count as hung.
timeout = 0
graceful_timeout = 5
keepalive = 5
accesslog = None
# gunicorn's control socket is one path per user by default: servers started side by side (tests,
# benchmarks, a second instance) would take it from each other, and nothing here uses it.
control_socket_disable = True

# --- one /metrics for all of this server's processes (dashapp/observability.py) --------------------
# The web processes and the processor's worker write their counters into one directory, which
# `/metrics` sums whichever process answers.  Set here, in the master, before any of them starts (it
# is read when prometheus_client is imported).  An operator's own PROMETHEUS_MULTIPROC_DIR is used
# and emptied of a previous run's files; else a temporary one is made and removed on exit.
_metrics = {"dir": os.environ.get("PROMETHEUS_MULTIPROC_DIR"), "made": False}
if _metrics["dir"]:
    os.makedirs(_metrics["dir"], exist_ok=True)
    for _name in os.listdir(_metrics["dir"]):
        if _name.endswith(".db"):
            os.remove(os.path.join(_metrics["dir"], _name))
else:
    import tempfile

    _metrics["dir"], _metrics["made"] = tempfile.mkdtemp(prefix="buildmon-metrics-"), True
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics["dir"]


def _process_gone(pid: int) -> None:
    """A process's own gauges stop counting once it is gone (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, _metrics["dir"])


def child_exit(_server, worker):
    _process_gone(worker.pid)



# --- PROCESSOR=process: the delivery processor as a process of its own, started by this server ---
# A thread of a web process shares that process's GIL with its request threads, and the two slowed
# each other down (a sustained 340-700 deliveries/s with lag under 1 s, against 800/s in a process
# of its own on the same 2 cores).  The master starts `python -m dashapp worker` once it is ready,
# restarts it if it dies, stops it on exit; the web processes then only accept (PROCESSOR=off in
# them).  The worker runs at a lower CPU priority, so that under a flood accepting comes first and
# the inbox takes the backlog.
_worker = {"proc": None, "stopping": False}
# Held while the supervisor starts the worker, and taken by `pre_fork` before gunicorn forks a web
# process: a web process forked while Popen waits for its child's exec would inherit the write end
# of Popen's status pipe, and Popen would wait for that web process to exit (a test caught the
# master waiting there forever, so the worker was never restarted).
_spawn_lock = threading.Lock()


def when_ready(server):
    if _config.processor != "process":
        return
    import subprocess
    import sys
    import time

    def supervise():
        while not _worker["stopping"]:
            started = time.monotonic()
            with _spawn_lock:
                proc = _worker["proc"] = subprocess.Popen(
                    [sys.executable, "-m", "dashapp", "worker", "--nice", "5", "--exit-with-parent"])
            server.log.info("delivery processor started (pid %s)", proc.pid)
            code = proc.wait()
            _process_gone(proc.pid)
            if not _worker["stopping"]:
                server.log.error("delivery processor exited with %s; restarting", code)
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

    threading.Thread(target=supervise, name="processor-supervisor", daemon=True).start()


def pre_fork(_server, _worker_process):
    with _spawn_lock:  # not while the supervisor is starting the worker (see _spawn_lock)
        pass


def post_fork(_server, _worker_process):
    if _config.processor == "process":
        os.environ["PROCESSOR"] = "off"  # read by the worker's app (dashapp.wsgi), after the fork
    _few_malloc_arenas()


def _few_malloc_arenas():
    # glibc gives threads up to 8 malloc arenas per core, and each keeps the most it ever held: with
    # hundreds of threads, request bodies read in parallel (the server reads them a megabyte at a
    # time) left a web process 100 MB larger.  Two arenas held that to a third (tests/test_webhook_cost.py).
    import ctypes
    import ctypes.util

    try:
        ctypes.CDLL(ctypes.util.find_library("c")).mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc: its allocator has its own ways
        pass


def on_exit(server):
    _worker["stopping"] = True
    proc = _worker["proc"]
    if proc is not None and proc.poll() is None:
        proc.terminate()  # the worker finishes its batch and stops
        try:
            proc.wait(timeout=10)
        except Exception:
            proc.kill()
    if _metrics["made"]:
        import shutil

        shutil.rmtree(_metrics["dir"], ignore_errors=True)
