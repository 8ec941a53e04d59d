"""Normalized records: what a webhook payload or REST response means for the store.

Parsing produces these; `store.writer` applies them.  They carry plain
values only (strings, numbers, epoch seconds), never payload dictionaries.

Every text a record is made with is cleaned here (`domain.text.clean`: NUL,
other control characters and bidi controls removed), whichever path made it
(webhook, backfill, demo): the one place text is cleaned before it is stored.
"""
from dataclasses import dataclass, field

from domain.text import clean


def _cleaned(cls):
    """Give a (not yet dataclass) record class a `__post_init__` cleaning its text fields and tuples of text."""
    names = tuple(cls.__annotations__)

    def __post_init__(self):
        for name in names:
            value = getattr(self, name)
            if isinstance(value, str):
                cleaned = clean(value)
                if cleaned is not value:
                    object.__setattr__(self, name, cleaned)
            elif isinstance(value, tuple) and any(isinstance(v, str) for v in value):
                object.__setattr__(self, name, tuple(clean(v) if isinstance(v, str) else v for v in value))

    cls.__post_init__ = __post_init__
    return cls


@dataclass(frozen=True)
@_cleaned
class Repo:
    name: str  # owner/name
    default_branch: str | None = None
    url: str | None = None


@dataclass(frozen=True)
@_cleaned
class Branch:
    repo: str
    name: str
    author: str | None = None
    time: float | None = None
    deleted: bool = False


@dataclass(frozen=True)
@_cleaned
class Commit:
    repo: str
    hash: str
    author: str | None
    message: str | None
    time: float


@dataclass(frozen=True)
@_cleaned
class Workflow:
    repo: str
    name: str
    url: str
    gitid: int | None = None
    path: str | None = None


class _Timed:
    """Queue and run time of a record with `createtime`, `starttime` and `endtime` (runs, jobs)."""

    @property
    def queuetime(self) -> float | None:
        if self.starttime is None or self.createtime is None:
            return None
        return max(0.0, self.starttime - self.createtime)

    @property
    def runtime(self) -> float | None:
        if self.endtime is None or self.starttime is None:
            return None
        return max(0.0, self.endtime - self.starttime)


@dataclass(frozen=True)
@_cleaned
class Run(_Timed):
    """One attempt of one workflow run."""

    repo: str
    gitid: int
    attempt: int
    workflow: str
    branch: str
    head_sha: str
    author: str | None
    event: str | None
    status: str
    conclusion: str | None
    createtime: float
    starttime: float | None
    endtime: float | None
    updatetime: float | None
    url: str | None
    run_number: int | None = None
    title: str | None = None
    pull_requests: tuple[int, ...] = ()  # the numbers of the pull requests it ran for (same repository)


@dataclass(frozen=True)
@_cleaned
class Step:
    number: int
    name: str
    status: str | None
    conclusion: str | None
    starttime: float | None
    endtime: float | None


@dataclass(frozen=True)
@_cleaned
class Job(_Timed):
    repo: str
    gitid: int
    run_gitid: int
    run_attempt: int
    name: str
    workflow_name: str | None
    head_branch: str | None
    head_sha: str | None
    status: str
    conclusion: str | None
    createtime: float | None
    starttime: float | None  # only once the job really started
    endtime: float | None
    runner_name: str | None
    runner_id: int | None
    labels: tuple[str, ...] = ()
    url: str | None = None
    steps: tuple[Step, ...] = field(default_factory=tuple)
    runner_group: str | None = None  # GitHub's runner_group_name ("GitHub Actions" for hosted runners)
