"""A throwaway PostgreSQL cluster for the tests: started once a session, one fresh database a test.

The cluster lives in a temporary directory, listens only on a unix socket there, and runs without
fsync (nothing in it outlives the session).  Each test's database is a copy of a template the
migrations were applied to once, so a test starts from an empty, current store in milliseconds.
PostgreSQL refuses to run as root: when the tests do, the cluster runs as `nobody`.
"""
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

TEMPLATE = "buildmon_template"
USER = "buildmon"
OPT_OUT = "BUILDMON_TEST_POSTGRES"  # "0": the tests run on SQLite alone


class Unavailable(RuntimeError):
    """PostgreSQL could not be had: no binaries, or the cluster did not start."""


def wanted() -> bool:
    return os.environ.get(OPT_OUT, "1") != "0"


def bin_dir() -> str:
    """The directory of pg_ctl and initdb: on PATH, else Debian's /usr/lib/postgresql/N/bin (newest)."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return os.path.dirname(os.path.realpath(found))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                      key=lambda p: int(p.split("/")[-3]) if p.split("/")[-3].isdigit() else 0)
    if not versions:
        raise Unavailable(f"pg_ctl not found (install Debian's postgresql package, or set {OPT_OUT}=0)")
    return os.path.dirname(versions[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, durable: bool = False):
        # durable: fsync and synchronous commits on, as a production server runs (the benchmarks' figures);
        # off for the tests, whose databases outlive nothing.
        self.durable = durable
        self.bin = bin_dir()
        self.root = tempfile.mkdtemp(prefix="buildmon-pg-")
        self.data = os.path.join(self.root, "data")
        self.port = _free_port()
        self._as = {}
        if os.geteuid() == 0:
            # PostgreSQL refuses root; the directory must be the server user's.
            self._as = {"user": "nobody", "group": "nogroup" if _group_exists("nogroup") else "nobody"}
            shutil.chown(self.root, **self._as)
        self._names = itertools.count(1)
        self._admin = None

    def _run(self, *args, timeout=120):
        done = subprocess.run([os.path.join(self.bin, args[0]), *args[1:]], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout, cwd=self.root, **self._as)
        if done.returncode != 0:
            raise Unavailable(f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        return done

    def start(self) -> "Cluster":
        # C collation: text sorts by its bytes, as SQLite's BINARY collation does.
        self._run("initdb", "-D", self.data, "-U", USER, "--auth=trust", "--encoding=UTF8", "--no-locale",
                  "--no-sync")
        options = " ".join(f"-c {k}={v}" for k, v in {
            "listen_addresses": "''", "unix_socket_directories": self.root, "port": self.port,
            **({"shared_buffers": "512MB"} if self.durable else {
                "fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "64MB"}),
            "max_connections": 300,
        }.items())
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-o", options, "-w",
                  "-t", "60", "start")
        self._admin = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT", pool_size=1)
        with self._admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {TEMPLATE}"))
        from store.engine import make_engine
        from store.migrate import upgrade

        engine = make_engine(self.url(TEMPLATE))
        upgrade(engine)
        engine.dispose()
        return self

    def url(self, database: str) -> str:
        return f"postgresql://{USER}@/{database}?host={self.root}&port={self.port}"

    def new_database(self, template: str = TEMPLATE) -> str:
        """A fresh store's URL: a copy of `template` (by default migrated and empty; "template0": bare)."""
        name = f"t{next(self._names)}"
        with self._admin.connect() as conn:
            if template != "template0":
                # A template must have no other session; a shared read-only store's pooled connections
                # (engines reconnect: pool_pre_ping) are ended rather than waited for.
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                  "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": template})
            conn.execute(text(f"CREATE DATABASE {name} TEMPLATE {template}"))
        return self.url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin.connect() as conn:  # FORCE: a server a test left behind may still hold it
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def restart(self) -> None:
        """Stop the server (ending every connection) and start it again, as a database restart does."""
        self._admin.dispose()
        self._run("pg_ctl", "-D", self.data, "-l", os.path.join(self.root, "log"), "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        if self._admin is not None:
            self._admin.dispose()
        try:
            if os.path.exists(os.path.join(self.data, "postmaster.pid")):
                self._run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _group_exists(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False
