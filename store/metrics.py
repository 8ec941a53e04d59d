"""Pure metric arithmetic, as defined in the shared metrics.md.

No I/O: callers pass counts and lists of seconds, and get back the numbers
the metric cards show.  A rate over nothing is None (shown as "—").
"""
import math


def rate(part: int, whole: int) -> float | None:
    return None if not whole else part / whole


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0-100) by linear interpolation between order statistics."""
    data = sorted(v for v in values if v is not None and not math.isnan(v))
    if not data:
        return None
    if len(data) == 1:
        return float(data[0])
    pos = (len(data) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(data) - 1)
    return float(data[low] + (data[high] - data[low]) * (pos - low))


def mean(values) -> float | None:
    data = [v for v in values if v is not None]
    return sum(data) / len(data) if data else None


def cards(*, success: int, failed: int, cancelled: int, runs: int, build_times, queue_times,
          tts, active: int, stale: int) -> dict:
    """The metric cards from pre-counted runs and lists of durations in seconds."""
    decisive = success + failed + cancelled
    build_times = list(build_times)
    queue_times = list(queue_times)
    tts = list(tts)
    return {
        "runs": runs,
        "decisive": decisive,
        "success": success,
        "failed": failed,
        "cancelled": cancelled,
        "success_rate": rate(success, decisive),
        "failure_rate": rate(failed, decisive),
        "cancelled_rate": rate(cancelled, decisive),
        "build_time_avg": mean(build_times),
        "build_time_p50": percentile(build_times, 50),
        "build_time_p90": percentile(build_times, 90),
        "queue_time_p50": percentile(queue_times, 50),
        "queue_time_p90": percentile(queue_times, 90),
        "tts_p50": percentile(tts, 50),
        "tts_p90": percentile(tts, 90),
        "active": active,
        "stale": stale,
    }
