"""`store.queries.cards` on small fixed histories, against hand-computed values."""
import pytest

from store.queries.cards import metric_cards
from store.queries.filters import Filters
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores

NOW = T0 + 3600


@pytest.fixture
def engine(new_store):
    records = [
        commit("c1"), commit("c2", author="bob", time=T0),
        run(1, sha="c1", conclusion="success", queue=10, duration=100),
        run(2, sha="c1", conclusion="failure", queue=20, duration=200, workflow="Lint"),
        run(3, sha="c2", conclusion="cancelled", queue=30, duration=5, author="bob"),
        run(4, sha="c2", conclusion="skipped", queue=0, duration=0, author="bob", workflow="Lint"),
        run(5, sha="c2", conclusion="timed_out", queue=40, duration=400, author="bob", workflow="Docs"),
        # A flaky run: attempt 1 failed, attempt 2 succeeded.
        run(6, sha="c2", conclusion="failure", queue=50, duration=60, author="bob", workflow="E2E"),
        run(6, sha="c2", attempt=2, conclusion="success", created=T0 + 500, queue=5, duration=300,
            author="bob", workflow="E2E"),
        run(7, sha="c3", status="in_progress", created=NOW - 100, branch="feature", author="carol"),
        run(8, sha="c3", status="queued", created=T0 - 86400 * 3, branch="feature", author="carol"),
    ]
    return store_with(new_store("cards"), records)


def _cards(engine, **filters):
    with engine.connect() as conn:
        return metric_cards(conn, Filters(**filters), now=NOW)


def test_all_runs(engine):
    c = _cards(engine)
    # Decisive completed (latest attempts): success 1, 6; failed 2, 5; cancelled 3. Skipped 4 left out.
    assert (c["success"], c["failed"], c["cancelled"], c["decisive"]) == (2, 2, 1, 5)
    assert (c["success_rate"], c["failure_rate"], c["cancelled_rate"]) == (0.4, 0.4, 0.2)
    # Build times of success or failed latest attempts: 100, 200, 400, 300.
    assert c["build_time_avg"] == 250 and c["build_time_p50"] == 250
    assert c["build_time_p90"] == pytest.approx(370)  # 300 + 0.7 * 100
    # Queue times of every started attempt: 10 20 30 0 40 50 5 10(in progress).
    assert c["queue_time_p50"] == 15
    # Active: run 7 (in progress, fresh); stale: run 8 (queued 3 days ago).
    assert (c["active"], c["stale"], c["runs"]) == (1, 1, 8)


def test_time_to_signal_per_commit(engine):
    # c1 on main: first attempts created T0, ends T0+110 and T0+220 -> 220.
    # c2 on main: created T0, last first-attempt end: run 5 at T0+440 -> 440.
    c = _cards(engine, branch="main")
    assert (c["tts_p50"], c["tts_p90"]) == (330, pytest.approx(418))


def test_filters_author_and_workflow(engine):
    bob = _cards(engine, author="bob")
    assert (bob["success"], bob["failed"], bob["cancelled"]) == (1, 1, 1)
    single = _cards(engine, workflow="Lint", conclusion="failure")
    assert single["failure_rate"] == 1.0 and single["build_time_p90"] == 200 and single["runs"] == 1


def test_empty_selection_shows_no_rates(engine):
    c = _cards(engine, repo="nobody/none")
    assert c["runs"] == 0 and c["success_rate"] is None and c["build_time_avg"] is None
    assert c["queue_time_p50"] is None and c["tts_p50"] is None and c["active"] == 0


def test_window_leaves_active_alone(engine):
    c = _cards(engine, since=T0 + 10_000_000)
    assert c["runs"] == 0 and c["active"] == 1
