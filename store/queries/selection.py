"""The pages' selection lists: repositories, branches, workflows, authors.

Every page's layout reads these before it can draw anything, so none of them
may read the whole history.  Each one is a handful of index searches:

- distinct values of an indexed column by a *loose index scan* (a recursive
  CTE that jumps from one value to the next through the index: one search
  per distinct value, not one row per run);
- the most recently built branches: for a repository with few branches, one
  search per branch for its newest run; else from the newest runs of the
  repository, read in widening slices until enough branches are found (exact:
  a branch outside a slice was last built before every branch inside it), and
  when even that finds too few, one search per (workflow, branch) pair.

Same results as the straightforward GROUP BY / DISTINCT queries (the tests
compare them); plain SQL of SQLite and PostgreSQL alike.
"""
from sqlalchemy import bindparam, desc, func, literal, select
from sqlalchemy.engine import Connection

from store.schema import branches, commits, repos, workflowruns, workflows

w = workflowruns.c
# Newest runs read per slice when looking for a repository's recent branches; widened ×8 each time.
FIRST_SLICE = 2_000
# Past this many runs read without finding `limit` branches, ask each (workflow, branch) pair instead.
SLICE_CAP = 128_000
# A repository with up to this many branches asks each branch for its newest run (an index search
# each) rather than reading its newest runs in slices (each slice re-read when it was too thin).
FEW_BRANCHES = 1_000


def _distinct_statement(column, *where):
    first = select(func.min(column).label("v")).where(*where)
    steps = first.cte("steps", recursive=True)
    following = (select(func.min(column)).where(column > steps.c.v, *where).scalar_subquery())
    steps = steps.union_all(select(following).where(steps.c.v.is_not(None)))
    return select(steps.c.v).where(steps.c.v.is_not(None))


_DISTINCT: dict = {}  # statements over a whole column, built once (a CTE's set-up is most of the cost)


def _distinct(conn: Connection, column, *where) -> list:
    """Distinct non-null values of the indexed `column` (under `where`), by jumping through its index."""
    if where:
        statement = _distinct_statement(column, *where)
    else:
        key = (column.table.name, column.name)
        statement = _DISTINCT.get(key)
        if statement is None:
            statement = _DISTINCT[key] = _distinct_statement(column)
    return [v for v in conn.execute(statement).scalars().all()]


def repo_names(conn: Connection) -> list[str]:
    """Every repository known: those in `repos` and those with runs, sorted."""
    named = set(conn.execute(select(repos.c.name)).scalars().all())
    return sorted(named | set(_distinct(conn, w.repo)))


def most_recent_repo(conn: Connection) -> str | None:
    """The repository with the newest run (the default of "All repositories")."""
    return conn.execute(select(w.repo).order_by(desc(w.createtime)).limit(1)).scalar()


def default_branch(conn: Connection, repo: str) -> str | None:
    """`repos.default_branch`; else `main`/`master` if they have runs; else the most recently built branch."""
    named = conn.execute(select(repos.c.default_branch).where(repos.c.name == repo)).scalar()
    if named:
        return named
    built = branch_names(conn, repo)
    for name in ("main", "master"):
        if name in built:
            return name
    return built[0] if built else None


def branch_names(conn: Connection, repo: str, limit: int = 200) -> list[str]:
    """Branches of `repo` that have runs, most recently built first (at most `limit`)."""
    if conn.execute(select(func.count()).where(branches.c.repo == repo)).scalar_one() <= FEW_BRANCHES:
        return _branch_names_by_branch(conn, repo, limit)
    size = FIRST_SLICE
    while size <= SLICE_CAP:
        newest = (select(w.archivedbranchname.label("name"), w.createtime.label("t"))
                  .where(w.repo == repo).order_by(desc(w.createtime)).limit(size).subquery())
        rows = conn.execute(select(newest.c.name, func.max(newest.c.t).label("last"), func.count().label("n"))
                            .group_by(newest.c.name)).all()
        found = sorted(((r.last, r.name) for r in rows if r.name), key=lambda lt: (-(lt[0] or 0), lt[1]))
        if len(found) >= limit or sum(r.n for r in rows) < size:  # enough branches, or every run read
            return [name for _t, name in found[:limit]]
        size *= 8
    return _branch_names_by_pair(conn, repo, limit)


def _branch_names_by_branch(conn: Connection, repo: str, limit: int) -> list[str]:
    """The same list, one index search per branch of `repo` for its newest run (a run with no time
    counts as built at 0, as the slices sort it; a branch with no run reads NULL and is left out)."""
    rows = conn.execute(_NEWEST_PER_BRANCH, {"repo": repo}).all()
    found = sorted(((t, name) for name, t in rows if t is not None and name), key=lambda tn: (-tn[0], tn[1]))
    return [name for _t, name in found[:limit]]


_runs = workflowruns.alias("runs")
# Built once: an alias's column set-up cost more than the ~200 index searches it makes.
_NEWEST_PER_BRANCH = select(
    branches.c.name,
    select(func.coalesce(_runs.c.createtime, 0)).where(_runs.c.branch == branches.c.id)
    .order_by(desc(_runs.c.createtime)).limit(1).scalar_subquery(),
).where(branches.c.repo == bindparam("repo"))


def _branch_names_by_pair(conn: Connection, repo: str, limit: int) -> list[str]:
    """The same list, one index search per (workflow, branch) pair of `repo` (few branches, many runs)."""
    last = (select(func.max(w.createtime)).where(w.workflow == workflows.c.id, w.branch == branches.c.id)
            .scalar_subquery())
    pairs = (select(branches.c.name.label("name"), last.label("t"))
             .select_from(branches.join(workflows, workflows.c.repo == branches.c.repo))
             .where(branches.c.repo == repo).subquery())
    query = (select(pairs.c.name, func.max(pairs.c.t).label("last")).where(pairs.c.t.is_not(None))
             .group_by(pairs.c.name).order_by(desc("last"), pairs.c.name).limit(limit))
    return [name for name, _t in conn.execute(query).all() if name]


def workflow_names(conn: Connection, repo: str | None) -> list[str]:
    """Workflow names of `repo` (of every repository when None), from the small `workflows` table."""
    query = select(workflows.c.name).distinct()
    if repo:
        query = query.where(workflows.c.repo == repo)
    return sorted(n for n in conn.execute(query).scalars().all() if n)


def authors(conn: Connection, repo: str | None = None) -> list[str]:
    """Every login that triggered a run or wrote a commit (of `repo`), sorted case-insensitively.

    The logins come from the author indexes of runs and commits (one search per login); with `repo`,
    each is kept if it has a run or a commit there (an index search per login, stopping at the first).
    """
    logins = set(_distinct(conn, w.author)) | set(_distinct(conn, commits.c.author))
    logins = {a for a in logins if a and a.strip()}
    if repo:
        kept = set()
        for login in logins:
            found = conn.execute(select(literal(1)).where(
                select(w.id).where(w.author == login, w.repo == repo).exists()
                | select(commits.c.id).where(commits.c.author == login, commits.c.repo == repo).exists())).first()
            if found:
                kept.add(login)
        logins = kept
    return sorted(logins, key=str.lower)


__all__ = ["repo_names", "most_recent_repo", "default_branch", "branch_names", "workflow_names", "authors"]
