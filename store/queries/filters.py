"""The filters every view, the API and the export share, as SQL conditions."""
from dataclasses import dataclass, fields, replace

from sqlalchemy import select, union

from store.schema import branches, commits, workflowruns

MAX_WINDOW_DAYS = 3660


@dataclass(frozen=True)
class Filters:
    """Which runs a number or a list is about; None means any."""

    repo: str | None = None
    branch: str | None = None
    workflow: str | None = None
    author: str | None = None
    status: str | None = None
    conclusion: str | None = None
    event: str | None = None
    since: float | None = None  # on the run's createtime, epoch seconds, inclusive
    until: float | None = None  # exclusive

    def conditions(self, *, window: bool = True) -> list:
        """WHERE conditions on `workflowruns` (joined to `commits` when `author` is set)."""
        w = workflowruns.c
        out = []
        if self.branch is not None:
            # Through the branch's id (the same name the run archived), so its indexes serve.
            out.append(w.branch.in_(select(branches.c.id).where(branches.c.name == self.branch)))
        for name, column in (("repo", w.repo), ("workflow", w.archivedworkflowname), ("status", w.status),
                             ("conclusion", w.conclusion), ("event", w.event)):
            value = getattr(self, name)
            if value is not None:
                out.append(column == value)
        if self.author is not None:
            # A developer's runs: those they triggered, or of commits they wrote.  As one id
            # list (a UNION of two index searches): an OR here made SQLite scan every run.
            mine = workflowruns.alias("author_runs")
            written = select(commits.c.id).where(commits.c.author == self.author)
            out.append(w.id.in_(union(select(mine.c.id).where(mine.c.author == self.author),
                                      select(mine.c.id).where(mine.c.commitid.in_(written)))))
        if window and self.since is not None:
            out.append(w.createtime >= self.since)
        if window and self.until is not None:
            out.append(w.createtime < self.until)
        return out

    def without_window(self) -> "Filters":
        return replace(self, since=None, until=None)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
