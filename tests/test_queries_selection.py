"""`store.queries.selection`: the pages' selection lists by index searches, equal to the plain queries."""
import pytest

from domain import records as r
from sqlalchemy import desc, func, select, union

from store.queries import selection as s
from store.schema import commits, repos, workflowruns
from tests.builders import T0, commit, run, store_with
from tests.test_queries_triage import triage_records

pytestmark = pytest.mark.both_stores


w = workflowruns.c


def _plain_repo_names(conn):
    """The plain query the index searches must equal: every repository in `repos` or with runs."""
    return sorted(conn.execute(union(select(repos.c.name), select(w.repo).distinct())).scalars().all())


def _plain_branch_names(conn, repo, limit):
    """The plain GROUP BY: branches of `repo` with runs, most recently built first."""
    query = (select(w.archivedbranchname).where(w.repo == repo).group_by(w.archivedbranchname)
             .order_by(desc(func.max(w.createtime))).limit(limit))
    return [b for b in conn.execute(query).scalars().all() if b]


def _plain_authors(conn, repo=None):
    """The plain UNION: every login that triggered a run or wrote a commit (of `repo`)."""
    runs = select(w.author.label("login")).where(w.author.is_not(None))
    written = select(commits.c.author.label("login")).where(commits.c.author.is_not(None))
    if repo:
        runs, written = runs.where(w.repo == repo), written.where(commits.c.repo == repo)
    logins = conn.execute(union(runs, written)).scalars().all()
    return sorted((a for a in logins if a and a.strip()), key=str.lower)


def test_selection_helpers(new_store):
    engine = store_with(new_store("sel"), [
        r.Repo(name="o/lib", default_branch="trunk"), commit("c1"), commit("c2", repo="o/web"),
        run(1, sha="c1", branch="dev", created=T0), run(2, sha="c1", branch="main", created=T0 - 50),
        run(3, sha="c2", repo="o/web", branch="release", created=T0 + 10),
    ])
    with engine.connect() as conn:
        assert s.repo_names(conn) == ["o/app", "o/lib", "o/web"]
        assert s.most_recent_repo(conn) == "o/web"
        assert s.default_branch(conn, "o/lib") == "trunk"  # from repos.default_branch
        assert s.default_branch(conn, "o/app") == "main"  # main has runs
        assert s.default_branch(conn, "o/web") == "release"  # the only branch built
        assert s.branch_names(conn, "o/app") == ["dev", "main"]
        assert s.branch_names(conn, "o/none") == []
        assert s.workflow_names(conn, "o/app") == ["CI"]


def test_empty_store(new_store):
    engine = store_with(new_store("empty"), [])
    with engine.connect() as conn:
        assert s.repo_names(conn) == [] and s.most_recent_repo(conn) is None and s.authors(conn) == []
        assert s.default_branch(conn, "o/app") is None and s.branch_names(conn, "o/app") == []


@pytest.fixture(scope="module")
def many_branches(module_stores):
    """300 branches built in turn, over two workflows; an old branch rebuilt last; a second repository."""
    records = [commit("c1"), commit("c2", repo="o/web", author="erin")]
    gitid = 0
    for i in range(300):
        for wf in ("CI", "Lint"):
            gitid += 1
            records.append(run(gitid, branch=f"b{i:03d}", workflow=wf, created=T0 + i * 10 + (wf == "Lint"),
                               author=f"user{i % 7}"))
    records.append(run(gitid + 1, branch="b005", created=T0 + 10_000))  # b005 rebuilt: newest again
    records.append(run(gitid + 2, repo="o/web", sha="c2", branch="main", created=T0 + 20_000, author="Zoe"))
    return store_with(module_stores.new("branches"), records)


@pytest.mark.parametrize("first_slice, cap, few", [(2_000, 128_000, 0), (7, 56, 0), (3, 3, 0), (2_000, 128_000, 1_000)])
def test_branch_names_equal_the_group_by(many_branches, monkeypatch, first_slice, cap, few):
    # Small slices force the widening and the (workflow, branch) fallback on a small store; `few`
    # 0 reads slices, 1,000 asks each branch.
    monkeypatch.setattr(s, "FIRST_SLICE", first_slice)
    monkeypatch.setattr(s, "SLICE_CAP", cap)
    monkeypatch.setattr(s, "FEW_BRANCHES", few)
    with many_branches.connect() as conn:
        for limit in (1, 5, 200, 1000):
            assert s.branch_names(conn, "o/app", limit=limit) == _plain_branch_names(conn, "o/app", limit)
        assert s.branch_names(conn, "o/app", limit=3) == ["b005", "b299", "b298"]
        assert s.branch_names(conn, "o/web") == ["main"]


def test_repo_names_and_authors_equal_the_plain_queries(many_branches):
    with many_branches.connect() as conn:
        assert s.repo_names(conn) == _plain_repo_names(conn) == ["o/app", "o/web"]
        assert s.authors(conn) == _plain_authors(conn)
        assert s.authors(conn, "o/web") == _plain_authors(conn, "o/web") == ["erin", "Zoe"]
        assert s.authors(conn, "o/none") == []


def test_authors_from_runs_and_commits(new_store):
    engine = store_with(new_store("dev"), triage_records())
    with engine.connect() as conn:
        assert s.authors(conn) == _plain_authors(conn) == ["alice", "bob", "dave"]
        assert s.authors(conn, "nobody/none") == []
