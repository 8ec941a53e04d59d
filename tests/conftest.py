import itertools
import os
import shutil
from collections import Counter

import pytest

from sqlalchemy.engine import make_url

from dashapp import create_app
from dashapp.config import Config
from tests import pg
from tests.helpers import FIXTURES, SECRET, LiveServer

DEMO_RUNS = 400  # enough for the demo's story (red streak, flaky run), quick to build


def pytest_sessionstart(session):
    if not os.path.isdir(FIXTURES):
        raise pytest.UsageError(f"GitHub fixtures not found at {FIXTURES} (set SHARED_DIR)")


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """A store with the demo's story (red streak, flaky run...), built once for the browser tests."""
    from ingest.demo import populate
    from store.engine import make_engine
    from store.migrate import upgrade

    path = str(tmp_path_factory.mktemp("demo") / "demo.db")
    engine = make_engine(path)
    upgrade(engine)
    populate(engine, seed=1, runs=DEMO_RUNS)
    engine.dispose()
    return path


# --- the stores: SQLite, and PostgreSQL for the modules marked `both_stores` -----------------------

STORES = ("sqlite", "postgresql") if pg.wanted() else ("sqlite",)


def pytest_generate_tests(metafunc):
    """A test of a `both_stores` module that uses a store runs on each; browser tests stay on SQLite
    (they test the pages, which the query tests cover on both), as do tests marked `sqlite_only`."""
    if "store_kind" not in metafunc.fixturenames or not metafunc.definition.get_closest_marker("both_stores"):
        return
    if "dash_duo" in metafunc.fixturenames or metafunc.definition.get_closest_marker("sqlite_only"):
        return
    kinds = STORES
    if metafunc.definition.get_closest_marker("postgresql_only"):
        kinds = [pytest.param("postgresql", marks=() if pg.wanted() else pytest.mark.skip(reason=f"{pg.OPT_OUT}=0"))]
    # Module scope: a module's shared stores (module fixtures) are built once per kind.
    metafunc.parametrize("store_kind", kinds, indirect=True, scope="module")


@pytest.fixture(scope="module")
def store_kind(request):
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def pg_cluster():
    """The session's PostgreSQL cluster, started when the first test needs it.  A cluster that cannot
    start fails those tests: only BUILDMON_TEST_POSTGRES=0 leaves PostgreSQL out."""
    cluster = pg.Cluster()
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    yield cluster
    cluster.stop()


class Stores:
    """Fresh stores of one kind: SQLite files in a directory, or new databases of the cluster (migrated,
    empty), dropped by `close`."""

    def __init__(self, kind: str, directory, request):
        self.kind = kind
        self.directory = directory
        self._request = request
        self._made = []
        self._template = None
        self._copies = itertools.count(1)

    @property
    def cluster(self) -> pg.Cluster:
        return self._request.getfixturevalue("pg_cluster")

    def new(self, name: str = "builds") -> str:
        """A store's location (a SQLite path or a PostgreSQL URL), as DATABASE_PATH takes it."""
        if self.kind == "sqlite":
            return str(self.directory / f"{name}.db")
        url = self.cluster.new_database()
        self._made.append(url)
        return url

    def new_migrated(self, name: str) -> str:
        """A fresh store already migrated: on SQLite a copy of one migrated file (migrating each is slow)."""
        if self.kind != "sqlite":
            return self.new(name)
        if self._template is None:
            from store.engine import make_engine
            from store.migrate import upgrade

            self._template = self.new("migrated-template")
            engine = make_engine(self._template)
            upgrade(engine)
            engine.dispose()
        location = str(self.directory / f"{name}-{next(self._copies)}.db")
        shutil.copy(self._template, location)
        return location

    def discard(self, location: str) -> None:
        """Remove a store no longer needed before the stores close."""
        if self.kind == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                if os.path.exists(location + suffix):
                    os.remove(location + suffix)
        else:
            self._made.remove(location)
            self.cluster.drop(location)

    def close(self) -> None:
        while self._made:
            self.cluster.drop(self._made.pop())


@pytest.fixture(scope="module")
def module_stores(store_kind, tmp_path_factory, request):
    """Stores for a module's shared fixtures."""
    stores = Stores(store_kind, tmp_path_factory.mktemp("stores"), request)
    yield stores
    stores.close()


@pytest.fixture
def new_store(store_kind, tmp_path, request):
    """new_store(name) -> a fresh store's location, for tests that need several."""
    stores = Stores(store_kind, tmp_path, request)
    yield stores.new
    stores.close()


@pytest.fixture(scope="session")
def pg_demo(pg_cluster):
    """`demo_store`'s history in a PostgreSQL database, built once."""
    from ingest.demo import populate
    from store.engine import make_engine

    url = pg_cluster.new_database()
    engine = make_engine(url)
    populate(engine, seed=1, runs=DEMO_RUNS)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def demo_location(store_kind, request):
    """The demo's store of the test's kind, shared: read it, never write it (`writable_demo`)."""
    return request.getfixturevalue("demo_store" if store_kind == "sqlite" else "pg_demo")


@pytest.fixture
def writable_demo(store_kind, demo_location, new_store, request):
    """A copy of the demo's store of the test's kind that the test may change."""
    if store_kind == "sqlite":
        location = new_store("demo")
        shutil.copy(demo_location, location)
        return location
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.new_database(template=make_url(demo_location).database)
    request.addfinalizer(lambda: cluster.drop(url))
    return url


@pytest.fixture
def db_path(new_store):
    """The test's store: a SQLite file path, or a PostgreSQL URL in `both_stores` modules."""
    return new_store("builds")


def pytest_terminal_summary(terminalreporter):
    """How many tests ran on each store (a both-store test once per store)."""
    counts = Counter()
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        for report in terminalreporter.stats.get(outcome, []):
            if getattr(report, "when", "call") == "teardown" and outcome != "error":
                continue
            kind = "postgresql" if "[postgresql" in report.nodeid or "-postgresql" in report.nodeid else \
                "sqlite" if "[sqlite" in report.nodeid or "-sqlite" in report.nodeid else "single"
            counts[kind, outcome] += 1
    if not counts:
        return
    line = []
    for kind, label in (("sqlite", "SQLite"), ("postgresql", "PostgreSQL")):
        outcomes = {o: n for (k, o), n in counts.items() if k == kind}
        line.append(f"{label}: {sum(outcomes.values())} ({', '.join(f'{n} {o}' for o, n in sorted(outcomes.items()))})"
                    if outcomes else f"{label}: 0")
    single = sum(n for (k, _o), n in counts.items() if k == "single")
    note = "" if pg.wanted() else f" ({pg.OPT_OUT}=0: PostgreSQL left out)"
    terminalreporter.write_sep("-", "tests run on both stores, per store")
    terminalreporter.write_line(f"{'; '.join(line)}; tests of one store or none (SQLite): {single}{note}")


@pytest.fixture
def engine(db_path):
    """A migrated, empty store at `db_path` (modules with their own data define their own `engine`)."""
    from store.engine import make_engine
    from store.migrate import upgrade

    engine = make_engine(db_path)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def config(db_path):
    return Config.from_env({}, database_path=db_path, webhook_secret=SECRET)


@pytest.fixture
def app(config):
    app = create_app(config)
    yield app
    app.server.extensions["buildmon"].close()


@pytest.fixture
def services(app):
    return app.server.extensions["buildmon"]


@pytest.fixture
def server(app):
    with LiveServer(app) as live:
        yield live


def pytest_collection_modifyitems(config, items):
    """`./test.sh` runs the tests on every core (pytest-xdist, `--dist loadgroup`): the browser tests share
    one worker, so that two Chromiums and their servers never fight over the cores within a test's waits."""
    for item in items:
        if "dash_duo" in getattr(item, "fixturenames", ()) or item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(autouse=True)
def _dash_duo_on_a_free_port(request, monkeypatch):
    """dash_duo serves on port 58050 unless told otherwise: a port that another test's server (or a
    previous dash_duo server not yet gone) may hold, since ports are handed out from that range."""
    if "dash_duo" not in request.fixturenames:
        return
    from dash.testing.composite import DashComposite

    from tests.receivers import free_port

    start = DashComposite.start_server

    def start_server(self, app, navigate=True, **kwargs):
        kwargs.setdefault("port", free_port())
        return start(self, app, navigate=navigate, **kwargs)

    monkeypatch.setattr(DashComposite, "start_server", start_server)
