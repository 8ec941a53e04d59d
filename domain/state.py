"""State precedence: which of two reports of the same run or job wins.

GitHub delivers late and out of order, so the store keeps, for each run
attempt and each job, the report that is greatest in one total order:
status rank first (a run never goes back from completed to in_progress),
then GitHub's own update time, then a digest of the report's content.  The
digest makes the order total, so any arrival order of the same reports,
with any duplicates, ends in the same stored row.
"""
import hashlib

STATUS_RANK = {
    "requested": 0,
    "pending": 1,
    "queued": 1,
    "waiting": 1,
    "in_progress": 2,
    "completed": 3,
}

ACTIVE_STATUSES = ("requested", "pending", "queued", "waiting", "in_progress")
QUEUED_STATUSES = ("requested", "pending", "queued", "waiting")
DECISIVE = ("success", "failure", "timed_out", "startup_failure", "cancelled")
FAILED = ("failure", "timed_out", "startup_failure")


def status_rank(status: str | None) -> int:
    return STATUS_RANK.get(status or "", -1)


def state_key(record, updatetime: float | None = None) -> str:
    """A string that orders reports of one run attempt or job; greater wins."""
    # repr() of a frozen dataclass lists every field, nested steps included,
    # without astuple's deep copy.
    digest = hashlib.sha1(repr(record).encode()).hexdigest()[:16]
    rank = status_rank(record.status) + 1
    return f"{rank:02d}|{int(updatetime or 0):012d}|{digest}"


def run_key(run) -> str:
    return state_key(run, run.updatetime)


def job_key(job) -> str:
    return state_key(job, job.endtime or job.starttime or job.createtime)
