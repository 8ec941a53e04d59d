"""`dashapp.callbacks.waterfall.resolve_selection`: what the Waterfall shows for a URL, without a browser."""
from domain import records as r
from dashapp.callbacks.waterfall import resolve_selection, selection_filters
from tests.builders import T0, commit, run, store_with


def _resolve(engine, **query):
    with engine.connect() as conn:
        return resolve_selection(conn, query)


def test_defaults_and_unknowns(tmp_path):
    engine = store_with(tmp_path / "sel.db", [
        r.Repo(name="o/lib", default_branch="trunk"), commit("c1"), commit("c2", repo="o/lib"),
        run(1, sha="c1", created=T0), run(2, sha="c2", repo="o/lib", branch="trunk", created=T0 + 5),
    ])
    everything = _resolve(engine)
    assert (everything["repo"], everything["branch"], everything["all"], everything["known"]) == \
        ("o/lib", "trunk", True, True)  # the most recently active repository, on its default branch
    app = _resolve(engine, repo="o/app", window="24h", offset="50", workflow="Lint")
    assert (app["branch"], app["window"], app["offset"], app["all"]) == ("main", "24h", 50, False)
    assert app["workflows"] == ["Lint", "CI"]  # an asked-for workflow stays selectable
    odd = _resolve(engine, repo="o/app", window="weird", offset="-3")
    assert (odd["window"], odd["offset"]) == ("7d", 0)
    unknown = _resolve(engine, repo="x/y")
    assert not unknown["known"] and not unknown["empty"] and unknown["branch"] is None
    filters = selection_filters(app, now=T0 + 86400)
    assert (filters.repo, filters.branch, filters.workflow, filters.since) == ("o/app", "main", "Lint", T0)


def test_empty_store(tmp_path):
    sel = _resolve(store_with(tmp_path / "empty.db", []))
    assert sel["empty"] and not sel["known"] and sel["repo"] is None


def test_the_trunk_strip_reads_at_most_90_days_and_says_so(tmp_path):
    from dashapp import create_app
    from dashapp.callbacks.waterfall import KPI_DAYS, kpi_section
    from dashapp.components import static_html
    from dashapp.config import Config
    from store.queries.kpis import trunk_health

    # Red commits 100 and 10 days before "now": all time holds both, the strip the newer one.
    now = T0 + 100 * 86400
    engine = store_with(tmp_path / "k.db", [
        commit("old", time=T0), commit("new", time=now - 10 * 86400),
        run(1, sha="old", created=T0, conclusion="failure"),
        run(2, sha="new", created=now - 10 * 86400, conclusion="failure")])
    app = create_app(Config.from_env({}, database_path=str(tmp_path / "k.db"), webhook_secret="s"))
    with app.server.app_context(), engine.connect() as conn:
        sel = resolve_selection(conn, {"repo": "o/app", "window": "all"})
        strip = static_html(kpi_section(sel, now=now))
        assert trunk_health(conn, "o/app", since=None, now=now)["red"] == 2
        assert trunk_health(conn, "o/app", since=now - KPI_DAYS * 86400, now=now)["red"] == 1
    assert "main · last 90 days (the longest it reads)" in strip and "1 of 1 settled commits" in strip
    app.server.extensions["buildmon"].close()
