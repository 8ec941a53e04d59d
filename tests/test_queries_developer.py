"""`store.queries.developer` on the Triage test history (see tests/test_queries_triage.py)."""
import pytest

from store.queries.developer import history, is_author, unfixed_failures
from store.queries.filters import Filters
from store.queries.selection import authors
from tests.builders import T0, commit, run, store_with
from tests.test_queries_triage import triage_records

pytestmark = pytest.mark.both_stores


@pytest.fixture(scope="module")
def engine(module_stores):
    return store_with(module_stores.new("dev"), triage_records())


def test_authors_from_runs_and_commits(engine):
    with engine.connect() as conn:
        # dave only wrote commit m3 (alice's runs built it).
        assert authors(conn) == ["alice", "bob", "dave"]
        assert authors(conn, "nobody/none") == []
        assert is_author(conn, "dave") and not is_author(conn, "zed")


def test_unfixed_failures(engine):
    with engine.connect() as conn:
        alice = unfixed_failures(conn, Filters(author="alice", since=T0 + 10_000_000))  # window ignored
        bob = unfixed_failures(conn, Filters(author="bob"))
        dave = unfixed_failures(conn, Filters(author="dave"))
    # main: CI 5 and Lint 13 are the newest results; Docs 43 is newer than Docs 42; E2E 23 was followed by 22.
    assert alice["id"].tolist() == [43, 5, 13]
    # feat: CI 31 is the newest; Lint 32 was fixed by 33.
    assert bob["id"].tolist() == [31]
    assert bob.iloc[0]["url"] == "https://github.com/o/app/actions/runs/31"
    # dave's commit m3: CI 3 is not CI's newest result any more, Lint 12 was cancelled.
    assert dave.empty


def test_unfixed_failures_leave_deleted_branches_out(new_store):
    from domain import records as r

    engine = store_with(new_store("deleted"), [
        commit("c1", author="erin"), run(1, sha="c1", author="erin", branch="gone", conclusion="failure"),
        r.Branch(repo="o/app", name="gone", time=T0 + 500, deleted=True)])
    with engine.connect() as conn:
        assert unfixed_failures(conn, Filters(author="erin")).empty


def test_history_pages_sorts_and_filters(engine):
    with engine.connect() as conn:
        rows, total = history(conn, Filters(author="bob"), start=0, end=2)
        assert total == 4 and [r["id"] for r in rows] == [33, 31]  # same createtime: newer id first
        rows, _ = history(conn, Filters(author="bob"), start=2, end=4)
        assert [r["id"] for r in rows] == [32, 30]
        rows, total = history(conn, Filters(author="bob"),
                              filter_model={"conclusion": {"filterType": "text", "type": "equals", "filter": "Failure"}})
        assert total == 3 and [r["id"] for r in rows] == [31, 32, 30]
        rows, _ = history(conn, Filters(author="bob"), sort_model=[{"colId": "workflow", "sort": "desc"}])
        assert [r["workflow"] for r in rows] == ["Lint", "Lint", "CI", "CI"]
        rows, total = history(conn, Filters(author="dave"),
                              filter_model={"workflow": {"filterType": "text", "operator": "OR", "conditions": [
                                  {"filterType": "text", "type": "contains", "filter": "e2"},
                                  {"filterType": "text", "type": "startsWith", "filter": "ci"}]}})
        assert (total, sorted(r["id"] for r in rows)) == (2, [3, 20])
        rows, total = history(conn, Filters(author="zed"))
        assert (rows, total) == ([], 0)


def test_single_run(new_store):
    engine = store_with(new_store("one"), [commit("c1", author="erin"), run(1, sha="c1", author="erin",
                                                                            conclusion="failure")])
    with engine.connect() as conn:
        assert unfixed_failures(conn, Filters(author="erin"))["id"].tolist() == [1]
        rows, total = history(conn, Filters(author="erin"))
        assert total == 1 and rows[0]["sha"] == "c1" and rows[0]["conclusion"] == "failure"


def test_empty_database(new_store):
    engine = store_with(new_store("empty"), [])
    with engine.connect() as conn:
        assert authors(conn) == [] and unfixed_failures(conn, Filters(author="alice")).empty
        assert history(conn, Filters(author="alice")) == ([], 0)
