"""The filters every view, the API and the export share, as SQL conditions."""
from dataclasses import dataclass, fields, replace

from sqlalchemy import select

from store.schema import branches, person_runs, workflowruns

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
        """WHERE conditions on `workflowruns`."""
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
            # A developer's runs: those they triggered, or of commits they wrote; the writer
            # keeps them in person_runs, clustered by person and time (store/derived/people.py).
            out.append(w.id.in_(self.person_runs(window=window)))
        if window and self.since is not None:
            out.append(w.createtime >= self.since)
        if window and self.until is not None:
            out.append(w.createtime < self.until)
        return out

    def person_runs(self, *, window: bool = True):
        """SELECT of the ids of `author`'s runs (in the window unless `window` is False)."""
        p = person_runs.c
        conditions = [p.person == self.author]
        if window and self.since is not None:
            conditions.append(p.createtime >= self.since)
        if window and self.until is not None:
            conditions.append(p.createtime < self.until)
        return select(p.run).where(*conditions)

    def without_window(self) -> "Filters":
        return replace(self, since=None, until=None)

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
