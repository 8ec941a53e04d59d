"""Pure metric arithmetic, as defined in the shared metrics.md.

No I/O: callers pass counts and lists of seconds, and get back the numbers
the metric cards show.  A rate over nothing is None (shown as "—").
"""
import math


def rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between order statistics."""
    return _sorted_percentile(_sorted(values), q)


def _sorted(values) -> list:
    """The values that count (no None, no NaN), in order."""
    return sorted(v for v in values if v is not None and v == v)


def _sorted_percentile(data: list, q: float) -> float | None:
    """`percentile` of already sorted values (the same arithmetic as `percentile_counts`)."""
    if not data:
        return None
    pos = (len(data) - 1) * q / 100.0
    low = math.floor(pos)
    low_value = float(data[low])
    high_value = float(data[min(low + 1, len(data) - 1)])
    return float(low_value + (high_value - low_value) * (pos - low))


def mean(values) -> float | None:
    data = [v for v in values if v is not None]
    return sum(data) / len(data) if data else None


def _pct(values, q: float) -> float | None:
    """`values` is a histogram, or a list already `_sorted` (sorted once for p50 and p90)."""
    return percentile_buckets(values, q) if isinstance(values, dict) else _sorted_percentile(values, q)


def cards(*, success: int, failed: int, cancelled: int, runs: int, build_times, queue_times,
          tts, active: int, stale: int, build_time_avg: float | None = None) -> dict:
    """The metric cards from pre-counted runs and durations in seconds.

    Each of `build_times`, `queue_times`, `tts` is a list of seconds, or a {bucket: n}
    histogram of `bucket` (the rollups); `build_time_avg`, when given, is the exact mean
    (a histogram has no exact mean).
    """
    decisive = success + failed + cancelled
    build_times, queue_times, tts = (v if isinstance(v, dict) else list(v) for v in (build_times, queue_times, tts))
    if build_time_avg is None and not isinstance(build_times, dict):
        build_time_avg = mean(build_times)
    build_times, queue_times, tts = (v if isinstance(v, dict) else _sorted(v) for v in (build_times, queue_times, tts))
    return {
        "runs": runs,
        "decisive": decisive,
        "success": success,
        "failed": failed,
        "cancelled": cancelled,
        "success_rate": rate(success, decisive),
        "failure_rate": rate(failed, decisive),
        "cancelled_rate": rate(cancelled, decisive),
        "build_time_avg": build_time_avg,
        "build_time_p50": _pct(build_times, 50),
        "build_time_p90": _pct(build_times, 90),
        "queue_time_p50": _pct(queue_times, 50),
        "queue_time_p90": _pct(queue_times, 90),
        "tts_p50": _pct(tts, 50),
        "tts_p90": _pct(tts, 90),
        "active": active,
        "stale": stale,
    }


# --- durations as counts, for the rollups ---------------------------------------------------------
#
# Below 100 s a duration is counted in whole seconds (GitHub's times have one-second resolution,
# so real durations are exact there); from 100 s on, in buckets 1 % wide, each standing for its
# geometric middle (within 0.5 % of every duration it holds).

EXACT_BELOW = 100
RATIO = 1.01
_LOG_RATIO = math.log(RATIO)


def bucket(seconds) -> int | None:
    """The bucket of a duration in seconds (None for no duration; negative ones count as 0)."""
    if seconds is None or seconds != seconds:
        return None
    if seconds < EXACT_BELOW:
        return max(int(seconds), 0)
    return EXACT_BELOW + int(math.log(seconds / EXACT_BELOW) / _LOG_RATIO)


def bucket_value(b: int) -> float:
    """The duration a bucket stands for."""
    if b < EXACT_BELOW:
        return float(b)
    return EXACT_BELOW * RATIO ** (b - EXACT_BELOW + 0.5)


def percentile_counts(counts, q: float) -> float | None:
    """`percentile` over values given as (value, how many) pairs, without expanding them."""
    items = sorted((v, n) for v, n in counts if n and n > 0 and v is not None)
    total = sum(n for _v, n in items)
    if not total:
        return None
    pos = (total - 1) * q / 100.0
    low = math.floor(pos)

    def at(rank: int) -> float:
        seen = 0
        for value, n in items:
            seen += n
            if rank < seen:
                return float(value)
        return float(items[-1][0])

    low_value = at(low)
    high_value = at(min(low + 1, total - 1))
    return float(low_value + (high_value - low_value) * (pos - low))


def percentile_buckets(counts: dict, q: float) -> float | None:
    """`percentile` over a {bucket: how many} histogram, each bucket standing for `bucket_value`."""
    return percentile_counts(((bucket_value(b), n) for b, n in counts.items()), q)
