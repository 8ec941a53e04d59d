import os

import pytest

from dashapp import create_app
from dashapp.config import Config
from tests.helpers import FIXTURES, SECRET, LiveServer


def pytest_sessionstart(session):
    if not os.path.isdir(FIXTURES):
        raise pytest.UsageError(f"GitHub fixtures not found at {FIXTURES} (set SHARED_DIR)")


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "builds.db")


@pytest.fixture
def config(db_path):
    return Config.from_env({}, database_path=db_path, webhook_secret=SECRET)


@pytest.fixture
def app(config):
    return create_app(config)


@pytest.fixture
def services(app):
    return app.server.extensions["buildmon"]


@pytest.fixture
def server(app):
    with LiveServer(app) as live:
        yield live
