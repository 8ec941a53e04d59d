"""Reading the rollups (`store.derived.rollups`): which rollup rows and which runs make up a window.

A window [since, now) is its whole UTC days, read from the rollups, plus the
partial day before the first whole day, read from the runs.  Only filters
the rollups keep (repository, branch, workflow, window start) can be served;
`scope` says None for any other selection, and callers read the runs.
"""
import math
from collections import Counter
from dataclasses import dataclass, replace

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from store import metrics
from store.queries.filters import Filters
from store.derived.rollups import ALL_WORKFLOWS, DAY, month_of, next_month
from store.schema import branches, rollup_days, rollup_hist, workflows

d = rollup_days.c
h = rollup_hist.c


@dataclass(frozen=True)
class Scope:
    repo: str | None
    branch_ids: tuple | None  # None: every branch
    workflow_ids: tuple | None  # None: every workflow
    first_day: int | None  # the first whole day; None: all days
    raw: Filters | None  # the partial day before `first_day`, read from the runs; None: none

    def conditions(self, table=rollup_days) -> list:
        """WHERE conditions on a rollup table keyed by some of repo, branch, workflow and day."""
        out = []
        for name, value in (("repo", self.repo), ("branch", self.branch_ids), ("workflow", self.workflow_ids),
                            ("day", self.first_day)):
            if value is None:
                continue
            assert name in table.c, f"{table.name} has no {name}: it cannot serve this scope"
            column = table.c[name]
            out.append(column == value if name == "repo" else column >= value if name == "day"
                       else column.in_(value))
        return out

    def histogram(self, conn: Connection, kind: str) -> Counter:
        """{bucket: n} of `kind` over the whole days (months where a whole month is inside)."""
        assert self.branch_ids is not None, "histograms are kept per branch"
        wf = self.workflow_ids if self.workflow_ids is not None else (ALL_WORKFLOWS,)
        base = [h.branch.in_(self.branch_ids), h.workflow.in_(wf), h.kind == kind]
        if self.first_day is None:
            parts = [[h.span == "month"]]
        else:
            first_month = self.first_day if month_of(self.first_day) == self.first_day else next_month(self.first_day)
            parts = [[h.span == "month", h.period >= first_month],
                     [h.span == "day", h.period >= self.first_day, h.period < first_month]]
        out: Counter = Counter()
        for extra in parts:
            for b, n in conn.execute(select(h.bucket, func.sum(h.n)).where(*base, *extra).group_by(h.bucket)).all():
                out[b] += n
        return out


def _ids(conn: Connection, table, name: str, repo: str | None) -> tuple:
    query = select(table.c.id).where(table.c.name == name)
    if repo is not None:
        query = query.where(table.c.repo == repo)
    return tuple(conn.execute(query).scalars().all())


def scope(conn: Connection, filters: Filters) -> Scope | None:
    """How the rollups serve `filters`, or None when they cannot."""
    if any(v is not None for v in (filters.author, filters.status, filters.conclusion, filters.event,
                                   filters.until)):
        return None
    branch_ids = None if filters.branch is None else _ids(conn, branches, filters.branch, filters.repo)
    workflow_ids = None if filters.workflow is None else _ids(conn, workflows, filters.workflow, filters.repo)
    if filters.since is None:
        return Scope(filters.repo, branch_ids, workflow_ids, None, None)
    first_day = math.ceil(filters.since / DAY)
    raw = None if first_day * DAY <= filters.since else replace(filters, until=float(first_day * DAY))
    return Scope(filters.repo, branch_ids, workflow_ids, first_day, raw)


def add_buckets(histogram: Counter, values) -> Counter:
    """`histogram` plus raw durations counted into their buckets."""
    for v in values:
        b = metrics.bucket(v)
        if b is not None:
            histogram[b] += 1
    return histogram
