"""Episodes: a watched pair's cells in commit order, cut into runs of red commits (pure functions).

A *cell* is one workflow on one commit of a branch: its newest run's latest attempt.  Each is red (a
counted failure), green (a success), waiting (a failure whose verdict is not known yet) or skipped
(cancelled, unfinished, or a failure the rule ignores).  An *episode* is a run of red and waiting
cells with no green between them, closed by the green cell after it.
"""
import fnmatch
from dataclasses import dataclass, field

from alerts.config import Rule

RED, GREEN, SKIP, WAIT = "red", "green", "skip", "wait"


@dataclass
class Cell:
    commit: int
    sha: str
    ctime: float
    run: int  # workflowruns.id
    gitid: int
    attempt: int
    created: float
    conclusion: str
    url: str | None
    state: str = RED

    @property
    def pos(self) -> tuple:
        return (self.ctime, self.sha)


@dataclass
class Episode:
    cells: list = field(default_factory=list)  # red and waiting cells, oldest first
    last_green: Cell | None = None
    fixer: Cell | None = None  # the green cell that closed it
    truncated: bool = False  # it starts at the oldest cell read: its beginning may lie further back

    @property
    def reds(self) -> int:
        return sum(cell.state == RED for cell in self.cells)

    @property
    def waiting(self) -> bool:
        return any(cell.state == WAIT for cell in self.cells)

    def overlaps(self, found: dict) -> bool:
        if found["first_pos"] is None or found["last_pos"] is None:
            return False
        return self.cells[0].pos <= found["last_pos"] and found["first_pos"] <= self.cells[-1].pos


def episodes(cells: list[Cell], complete: bool) -> list[Episode]:
    """The episodes of `cells` (oldest first, each classified), newest first.  `complete`: the cells
    are the pair's whole history (else the oldest episode may have begun before them)."""
    found, current, green, seen = [], None, None, False
    for cell in cells:
        if cell.state == SKIP:
            continue
        if cell.state == GREEN:
            if current is not None:
                current.fixer = cell
                found.append(current)
                current = None
            green = cell
        else:
            if current is None:
                current = Episode(last_green=green, truncated=not seen and not complete)
            current.cells.append(cell)
        seen = True
    if current is not None:
        found.append(current)
    return found[::-1]


def matches(rule: Rule, repo: str, workflow: str, branch: str, default_branch: str | None) -> bool:
    if not any(fnmatch.fnmatchcase(repo, glob) for glob in rule.repos):
        return False
    if not any(fnmatch.fnmatchcase(workflow, glob) for glob in rule.workflows):
        return False
    if rule.branches:
        return any(fnmatch.fnmatchcase(branch, glob) for glob in rule.branches)
    return branch == default_branch if default_branch else branch in ("main", "master")
