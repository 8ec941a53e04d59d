"""The metric arithmetic of metrics.md, checked against hand-computed values."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.metrics import cards, mean, percentile, percentile_counts, rate


def test_rate_over_nothing_is_none():
    assert rate(0, 0) is None and rate(1, 4) == 0.25


@pytest.mark.parametrize(
    "values, q, expected",
    [
        ([], 50, None),
        ([7], 90, 7.0),
        ([1, 2, 3, 4], 50, 2.5),
        ([10, 20, 30, 40, 50], 90, 46.0),  # pos 3.6: 40 + 0.6 * 10
        ([3, None, 1, 2], 50, 2.0),
    ],
)
def test_percentile(values, q, expected):
    assert percentile(values, q) == expected


def test_cards_empty():
    c = cards(success=0, failed=0, cancelled=0, runs=0, build_times=[], queue_times=[], tts=[], active=0, stale=0)
    assert c["success_rate"] is None and c["failure_rate"] is None and c["build_time_avg"] is None
    assert c["queue_time_p50"] is None and c["runs"] == 0


def test_cards_rates_add_up():
    c = cards(success=6, failed=3, cancelled=1, runs=12, build_times=[60, 120], queue_times=[5],
              tts=[], active=2, stale=1)
    assert (c["success_rate"], c["failure_rate"], c["cancelled_rate"]) == (0.6, 0.3, 0.1)
    assert c["build_time_avg"] == 90 and c["build_time_p50"] == 90 and c["queue_time_p90"] == 5
    assert mean([]) is None


def test_percentile_equals_the_counts_arithmetic_exactly():
    """The cards sort each list once and index it; the rollups count (value, n) pairs: same numbers."""
    import random

    from store.metrics import percentile_counts

    rng = random.Random(7)
    for _ in range(300):
        values = [rng.choice([None, float("nan"), rng.randint(0, 900), rng.random() * 5000])
                  for _ in range(rng.randint(0, 60))]
        kept = [v for v in values if v is not None and v == v]
        for q in (0, 50, 90, 100):
            assert percentile(values, q) == percentile_counts(((v, 1) for v in kept), q)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.floats(min_value=0, max_value=1e6, allow_nan=False),
                          st.integers(min_value=0, max_value=50).map(float)), min_size=1, max_size=60),
       st.sampled_from([0, 10, 50, 90, 99, 100]))
def test_percentile_counts_is_percentile_exactly(values, q):
    """The rollups take a day's percentiles from (value, how many) rows that SQLite groups: the very
    same float as the percentile of the values (`store/derived/rollups.py` keeps them identical)."""
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    assert percentile_counts(counts.items(), q) == percentile(values, q)
