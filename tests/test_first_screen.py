"""The Waterfall's first HTML response already holds the page, commit grid drawn (before any script runs)."""
from dashapp import create_app
from dashapp.config import Config
from tests.builders import T0, commit, run, store_with


def _client(tmp_path, records):
    store_with(tmp_path / "fs.db", records)
    app = create_app(Config.from_env({}, database_path=str(tmp_path / "fs.db"), webhook_secret="s"))
    return app.server.test_client()


def test_first_response_holds_the_grid(tmp_path):
    client = _client(tmp_path, [commit("abc1234def", message="<script>x</script> fix"),
                                run(1, sha="abc1234def", created=T0, conclusion="failure")])
    html = client.get("/?repo=o/app").get_data(as_text=True)
    snapshot = html[html.index('<div id="prerender"'):html.index('id="react-entry-point"')]
    assert 'id="commit-grid-snapshot"' in snapshot and 'data-sha="abc1234def"' in snapshot
    assert 'data-glyph="X"' in snapshot and "o/app · main" in snapshot
    assert "<script>x</script>" not in snapshot and "&lt;script&gt;x&lt;/script&gt; fix" in snapshot
    assert 'id="commit-grid-table"' not in snapshot  # the live page's grid keeps its own id
    # The scripts wait for the document; the renderer starts after them.
    assert "<script src=" not in html and "<script defer src=" in html
    assert "DOMContentLoaded" in html[html.index('id="_dash-renderer"'):]


def test_other_pages_and_empty_store(tmp_path):
    client = _client(tmp_path, [])
    html = client.get("/").get_data(as_text=True)
    assert 'id="prerender"' in html and "No commits yet." in html
    assert 'id="prerender"' not in client.get("/triage").get_data(as_text=True)
