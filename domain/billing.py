"""What a job costs in GitHub Actions minutes: pure arithmetic, as metrics.md's "Runners and cost" defines it.

- A job's **minutes** are its duration (`endtime − starttime`, the jobs table's `runtime`) rounded UP to the
  whole minute, per job (GitHub: "rounds the minutes and partial minutes each job uses up to the nearest
  whole minute"): 61 s is 2 minutes, 60 s is 1, 0 s or a job that never ran is 0.
- Its **runner OS** comes from its `runs-on` labels: `ubuntu-*`/`linux` is Linux, `windows-*` Windows,
  `macos-*` macOS (case-insensitive; self-hosted runners' `Linux`/`Windows`/`macOS` labels included).
  Labels naming no OS, or two different ones, give `unknown`.
- A job is **self-hosted** when `self-hosted` is one of its labels: its minutes are counted apart and never
  billed.  Every other job runs on a GitHub-hosted runner.
- A hosted job's **billable minutes** are its minutes times its OS's multiplier (GitHub documents Linux 1,
  Windows 2, macOS 10).  A hosted job of unknown OS (a larger runner known by a custom label, a job with
  no labels) is billed at the `unknown` multiplier, 1 unless configured: counted, on a row of its own, so
  that a reader sees it rather than loses it.

The multipliers come from a setting written `linux=1,windows=2,macos=10[,unknown=1]` (`parse_multipliers`).
"""
import json
import math
import re
from dataclasses import dataclass

LINUX, WINDOWS, MACOS, UNKNOWN = "Linux", "Windows", "macOS", "unknown"
OS_NAMES = (LINUX, WINDOWS, MACOS, UNKNOWN)
SELF_HOSTED_LABEL = "self-hosted"
DEFAULT_MULTIPLIERS = "linux=1,windows=2,macos=10"
DEFAULTS = {LINUX: 1.0, WINDOWS: 2.0, MACOS: 10.0, UNKNOWN: 1.0}
_KEYS = {"linux": LINUX, "windows": WINDOWS, "macos": MACOS, "unknown": UNKNOWN}
MAX_MULTIPLIER = 1000.0  # far past any documented rate: a larger value is a typo
NO_LABELS = "(no labels)"
_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")  # ASCII only: int("٣") is 3 to Python


def parse_labels(stored) -> tuple[str, ...]:
    """The labels of the jobs table's JSON text (or a list/tuple); anything unreadable is no labels."""
    if isinstance(stored, (list, tuple)):
        values = stored
    else:
        try:
            values = json.loads(stored) if isinstance(stored, str) and stored else []
        except ValueError:
            return ()
    if not isinstance(values, list) and not isinstance(values, tuple):
        return ()
    return tuple(v for v in values if isinstance(v, str))


def label_set(labels) -> str:
    """A job's label set as shown and grouped: its labels sorted, joined by ", "."""
    return ", ".join(sorted(set(labels))) or NO_LABELS


def is_self_hosted(labels) -> bool:
    return any(label.lower() == SELF_HOSTED_LABEL for label in labels)


def _os_of(label: str) -> str | None:
    name = label.lower()
    if name == "linux" or name.startswith("ubuntu"):
        return LINUX
    if name == "windows" or name.startswith("windows-"):
        return WINDOWS
    if name == "macos" or name.startswith("macos-"):
        return MACOS
    return None


def runner_os(labels) -> str:
    """Linux, Windows or macOS as the labels name it; `unknown` when none does, or two different ones do."""
    found = {os for os in map(_os_of, labels) if os}
    return found.pop() if len(found) == 1 else UNKNOWN


def minutes(seconds) -> int:
    """A job's duration rounded up to the whole minute; None, NaN or ≤ 0 (never ran, no end) is 0."""
    if seconds is None or seconds != seconds or seconds <= 0:
        return 0
    return math.ceil(seconds / 60)


def parse_multipliers(text: str | None) -> dict[str, float]:
    """{OS: multiplier} from `linux=1,windows=2,macos=10`; keys left out keep GitHub's defaults
    (`unknown` defaults to 1).  Raises ValueError naming what is wrong."""
    out = dict(DEFAULTS)
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = (s.strip() for s in part.partition("="))
        if not sep or key.lower() not in _KEYS:
            raise ValueError(f"billing multipliers: expected OS=NUMBER with OS one of "
                             f"{', '.join(_KEYS)}, got {part!r}")
        if not _NUMBER.fullmatch(value) or float(value) > MAX_MULTIPLIER:
            raise ValueError(f"billing multipliers: {key} must be a number from 0 to {MAX_MULTIPLIER:g}, "
                             f"got {value!r}")
        out[_KEYS[key.lower()]] = float(value)
    return out


@dataclass(frozen=True)
class Charge:
    """What some jobs of one runner kind cost: `minutes` rounded per job; `billable` = minutes × multiplier,
    0 for self-hosted."""

    os: str
    self_hosted: bool
    jobs: int
    minutes: int
    multiplier: float  # 0 for self-hosted
    billable: float


def charge(labels, rounded_minutes: int, jobs: int, multipliers: dict[str, float]) -> Charge:
    """The charge of `jobs` jobs with these labels whose per-job rounded minutes add up to `rounded_minutes`
    (the sum of `minutes` over the jobs: one multiplier per label set, so multiplying the sum is exact)."""
    os = runner_os(labels)
    if is_self_hosted(labels):
        return Charge(os, True, jobs, rounded_minutes, 0.0, 0.0)
    rate = multipliers.get(os, DEFAULTS[os])
    return Charge(os, False, jobs, rounded_minutes, rate, rounded_minutes * rate)


def job_charge(labels, seconds, multipliers: dict[str, float]) -> Charge:
    """One job's charge: its duration in seconds rounded up to the minute, times its OS multiplier."""
    return charge(labels, minutes(seconds), 1, multipliers)
