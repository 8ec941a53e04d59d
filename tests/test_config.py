"""Settings: defaults, types, and the README documents every one."""
import os

from dashapp.config import SETTINGS, Config
from tests.helpers import ROOT


def test_defaults():
    config = Config.from_env({})
    assert config.database_path == "data/builds.db" and config.port == 8050 and config.stale_hours == 24.0
    assert config.webhook_secret == "" and not config.protected


def test_environment_overrides():
    config = Config.from_env({"PORT": "9000", "DATABASE_PATH": "postgresql://x/y", "API_TOKENS": "a,b"})
    assert config.port == 9000 and config.database_path == "postgresql://x/y" and config.protected


def test_readme_documents_every_setting():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    missing = [s.env for s in SETTINGS.values() if f"`{s.env}`" not in readme]
    assert missing == []
