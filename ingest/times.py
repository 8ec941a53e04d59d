"""RFC 3339 time parsing into UTC epoch seconds."""
from datetime import datetime, timezone

# Anything outside this range is not a GitHub Actions time: refuse it rather
# than store a run that started in the year 9999.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()


class BadTime(ValueError):
    """A timestamp that is not an RFC 3339 time GitHub could have sent."""


def epoch(value) -> float | None:
    """Parse `2021-08-05T10:26:27.000Z` or `...-08:00` into epoch seconds; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadTime(f"expected an RFC 3339 time string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadTime(f"not an RFC 3339 time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    seconds = parsed.timestamp()
    if not EARLIEST <= seconds < LATEST:
        raise BadTime(f"time out of range: {value[:40]!r}")
    return seconds


def iso(seconds: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (`2021-08-05T10:26:27Z`)."""
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
