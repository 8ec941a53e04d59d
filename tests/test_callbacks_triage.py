"""`dashapp.callbacks.triage`: what the Triage sections draw for a selection, without a browser."""
import re

import pytest

from dashapp import create_app
from dashapp.callbacks import triage
from dashapp.components import static_html
from dashapp.config import Config
from store.engine import make_engine
from store.queries import failures as fq


@pytest.fixture
def demo_app(demo_store):
    app = create_app(Config.from_env({}, database_path=demo_store, webhook_secret="s"))
    with app.server.app_context():
        yield app
    app.server.extensions["buildmon"].close()


def _rows(markup: str) -> list[str]:
    return re.findall(r'data-fingerprint="([0-9a-f]{16})"', markup)


def test_causes_draw_the_newest_groups_and_link_to_all_of_them(demo_app, demo_store, monkeypatch):
    engine = make_engine(demo_store)
    with engine.connect() as conn:
        every = [g["fingerprint"] for g in fq.groups(conn, triage.selection_filters({"window": "all"}), limit=1000)]
    engine.dispose()
    assert len(every) > 3  # the demo fails in several ways
    monkeypatch.setattr(triage, "GROUPS_SHOWN", 3)
    sel = triage.selection({"window": "all", "repo": None})
    first = static_html(triage.causes_section(sel), ids=True)
    assert _rows(first) == every[:3]  # the newest first, as the query ranks them
    link = re.search(r'<a[^>]*id="tr-causes-more"[^>]*>', first)
    assert link and 'href="/triage?window=all&amp;groups=all"' in link.group(0)
    assert "The 3 groups that failed most recently." in first
    everything = static_html(triage.causes_section(triage.selection({"window": "all", "groups": "all"})), ids=True)
    assert _rows(everything) == every and 'id="tr-causes-more"' not in everything


def test_causes_offer_no_link_when_every_group_is_drawn(demo_app, monkeypatch):
    monkeypatch.setattr(triage, "GROUPS_SHOWN", 1000)
    markup = static_html(triage.causes_section(triage.selection({"window": "all"})), ids=True)
    assert _rows(markup) and 'id="tr-causes-more"' not in markup


def test_the_url_asks_for_every_group_and_nothing_else(demo_store):
    from dashapp.pages.triage import resolve

    engine = make_engine(demo_store)
    with engine.connect() as conn:
        assert resolve(conn, {"groups": "all"})["groups"] == "all"
        assert resolve(conn, {"groups": "some"})["groups"] is None
    engine.dispose()
    with pytest.raises(Exception, match="groups"):
        triage.selection({"groups": "<script>"})
