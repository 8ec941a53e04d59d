import os

import pytest

from dashapp import create_app
from dashapp.config import Config
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


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "builds.db")


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
