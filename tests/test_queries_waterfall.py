"""`store.queries.waterfall`: the glyph rules of metrics.md and the paged commit grid, on small stores."""
import pandas as pd
import pytest

from store.queries import waterfall as q
from store.queries.filters import Filters
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores


@pytest.mark.parametrize("status, conclusion, earlier_failed, glyph", [
    ("completed", "success", False, "O"),
    ("completed", "success", True, "F"),
    ("completed", "failure", False, "X"),
    ("completed", "failure", True, "X"),
    ("completed", "startup_failure", False, "X"),
    ("completed", "timed_out", False, "T"),
    ("completed", "cancelled", True, "C"),
    ("completed", "skipped", False, "S"),
    ("completed", "neutral", False, "N"),
    ("in_progress", None, True, "?"),
    ("requested", None, False, "Q"),
    ("queued", None, False, "Q"),
    ("waiting", None, False, "Q"),
    ("pending", None, False, "Q"),
    (None, None, False, ""),
])
def test_cell_state_per_glyph(status, conclusion, earlier_failed, glyph):
    assert q.cell_state(status, conclusion, earlier_failed) == glyph


@pytest.mark.parametrize("glyphs, state", [
    (["O", "X", "F", "?"], "red"),
    (["O", "T"], "red"),
    (["O", "F", "Q"], "flaky"),
    (["O", "?"], "pending"),
    (["O", "Q", "C"], "pending"),
    (["O", "C", "S", "N"], "green"),
    (["O"], "green"),
])
def test_commit_state(glyphs, state):
    assert q.commit_state(glyphs) == state


def _grid(engine, branch="main", **kwargs):
    with engine.connect() as conn:
        return q.commit_grid(conn, "o/app", branch, **kwargs)


def _cells(grid):
    """{(sha, workflow): glyph} of a grid."""
    shas = dict(zip(grid["commits"]["commitid"], grid["commits"]["sha"]))
    return {(shas[c["commitid"]], c["workflow"]): c["glyph"] for c in grid["cells"].to_dict("records")}


def test_empty_store(new_store):
    engine = store_with(new_store("empty"), [])
    grid = _grid(engine)
    assert grid["commits"].empty and grid["cells"].empty and grid["workflows"] == [] and not grid["has_older"]
    with engine.connect() as conn:
        assert q.stream_rows(conn) == []
        assert q.performance_runs(conn, Filters()).empty


def test_single_run(new_store):
    engine = store_with(new_store("one"), [commit("c1"), run(1, sha="c1", queue=12, duration=345)])
    grid = _grid(engine)
    assert grid["commits"][["sha", "message", "author", "state"]].values.tolist() == [
        ["c1", "commit c1", "alice", "green"]]
    cell = grid["cells"].to_dict("records")[0]
    assert (cell["glyph"], cell["attempts"], cell["duration"], cell["queuetime"]) == ("O", 1, 345, 12)
    assert cell["url"] == "https://github.com/o/app/actions/runs/1"
    assert grid["workflows"] == ["CI"]


@pytest.fixture
def engine(new_store):
    """Four commits on main (c4 newest) and one on a feature branch."""
    records = [
        commit("c1", time=T0 + 10), commit("c2", time=T0 + 20), commit("c3", time=T0 + 30),
        commit("c4", time=T0 + 40, author="bob", message="fix: the thing\n\nlong body"),
        commit("f1", time=T0 + 50),
        # c1: green; Lint cancelled.
        run(1, sha="c1"), run(2, sha="c1", workflow="Lint", conclusion="cancelled"),
        # c2: red (CI timed out), Lint flaky.
        run(3, sha="c2", conclusion="timed_out"),
        run(4, sha="c2", workflow="Lint", conclusion="failure"),
        run(4, sha="c2", workflow="Lint", attempt=2, created=T0 + 300),
        # c3: flaky through two runs of CI: the older run failed, a newer run succeeded.
        run(5, sha="c3", conclusion="failure"), run(6, sha="c3", created=T0 + 600),
        # c4: pending (CI running, Lint queued); a re-run that failed then is running again.
        run(7, sha="c4", conclusion="failure"), run(7, sha="c4", attempt=2, status="in_progress", created=T0 + 700),
        run(8, sha="c4", workflow="Lint", status="queued"),
        # Another branch: must not appear on main.
        run(9, sha="f1", branch="feature", conclusion="failure"),
        run(10, sha="c1", branch="feature", workflow="Docs", conclusion="failure"),
    ]
    return store_with(new_store("grid"), records)


def test_grid_rows_and_cells(engine):
    grid = _grid(engine)
    assert grid["commits"]["sha"].tolist() == ["c4", "c3", "c2", "c1"]
    assert grid["commits"]["state"].tolist() == ["pending", "flaky", "red", "green"]
    assert grid["workflows"] == ["CI", "Lint"]
    assert _cells(grid) == {
        ("c4", "CI"): "?", ("c4", "Lint"): "Q", ("c3", "CI"): "F", ("c2", "CI"): "T", ("c2", "Lint"): "F",
        ("c1", "CI"): "O", ("c1", "Lint"): "C",
    }
    c3 = grid["cells"][grid["cells"]["glyph"] == "F"].sort_values("commitid").to_dict("records")
    assert [c["attempts"] for c in c3] == [2, 2]  # Lint on c2: 2 attempts; CI on c3: 2 runs
    assert grid["cells"].set_index(["commitid", "workflow"]).loc[(3, "CI"), "url"].endswith("/runs/6")


def test_red_row_when_any_failure(new_store):
    engine = store_with(new_store("red"), [
        commit("c1"), run(1, sha="c1", conclusion="startup_failure"), run(2, sha="c1", workflow="Lint",
                                                                          status="in_progress")])
    grid = _grid(engine)
    assert grid["commits"]["state"].tolist() == ["red"] and _cells(grid)[("c1", "CI")] == "X"


def test_other_branch_and_workflow_filter(engine):
    feature = _grid(engine, branch="feature")
    assert feature["commits"]["sha"].tolist() == ["f1", "c1"]
    assert _cells(feature) == {("f1", "CI"): "X", ("c1", "Docs"): "X"}
    lint = _grid(engine, workflow="Lint")
    assert lint["workflows"] == ["Lint"] and lint["commits"]["sha"].tolist() == ["c4", "c2", "c1"]
    assert lint["commits"]["state"].tolist() == ["pending", "flaky", "green"]
    assert _grid(engine, branch="nope")["commits"].empty


def test_paging(engine):
    first = _grid(engine, limit=3)
    assert first["commits"]["sha"].tolist() == ["c4", "c3", "c2"] and first["has_older"]
    assert set(first["cells"]["commitid"]) == set(first["commits"]["commitid"])
    second = _grid(engine, limit=3, offset=3)
    assert second["commits"]["sha"].tolist() == ["c1"] and not second["has_older"] and second["offset"] == 3
    assert _grid(engine, limit=3, offset=9)["commits"].empty
    assert not _grid(engine, limit=4)["has_older"]


def test_page_of_many_commits(new_store):
    records = [commit(f"s{i:03d}", time=T0 + i) for i in range(120)]
    records += [run(i + 1, sha=f"s{i:03d}", created=T0 + i) for i in range(120)]
    engine = store_with(new_store("many"), records)
    pages = [_grid(engine, offset=o) for o in (0, 50, 100)]
    assert [len(p["commits"]) for p in pages] == [50, 50, 20]
    assert [p["has_older"] for p in pages] == [True, True, False]
    assert pages[0]["commits"]["sha"].iloc[0] == "s119" and pages[2]["commits"]["sha"].iloc[-1] == "s000"


def test_stream_rows_are_raw_newest_first(engine):
    with engine.connect() as conn:
        rows = q.stream_rows(conn, repo="o/app", limit=3)
        # By the run's creation (a re-run attempt does not move it up), ties newest id first.
        assert [row["id"] for row in rows] == [6, 10, 9]
        assert set(rows[0]) == {"id", "repo", "workflow", "branch", "sha", "message", "title", "author",
                                "commit_author", "event", "status", "conclusion", "attempt", "createtime",
                                "starttime", "endtime", "updatetime", "runtime", "queuetime", "url"}
        assert isinstance(rows[0]["createtime"], float)
        assert [row["id"] for row in q.stream_rows(conn, workflow="Docs")] == [10]
        assert q.stream_rows(conn, repo="x/none") == []


def test_performance_series(new_store):
    day = 86400
    engine = store_with(new_store("perf"), [
        commit("c1"),
        run(1, sha="c1", created=T0, queue=10, duration=100),
        run(2, sha="c1", created=T0 + 60, queue=30, duration=300, conclusion="failure"),
        run(3, sha="c1", created=T0 + 120, queue=20, duration=5, conclusion="cancelled"),
        run(4, sha="c1", created=T0 + day, status="queued"),
    ])
    with engine.connect() as conn:
        runs = q.performance_runs(conn, Filters(repo="o/app"))
    series = q.performance_series(runs, day)
    assert len(series) == 2
    first, second = series.to_dict("records")
    # Build time over success/failed only (the cancelled run's 5 s is left out); queue time over started runs.
    assert (first["runtime_p50"], first["runtime_p90"]) == (200, 280)
    assert (first["queue_p50"], first["failures"], first["runs"]) == (20, 1, 3)
    assert pd.isna(second["runtime_p50"]) and pd.isna(second["queue_p50"]) and second["failures"] == 0
    assert q.performance_series(runs.iloc[0:0], day).empty


def test_busy_and_quiet_branches_page_the_same_commits(demo_location, monkeypatch):
    from store.engine import make_engine
    from store.queries import waterfall

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        pages = {}
        for busy in (10 ** 9, 1):  # every branch read as quiet, then as busy
            monkeypatch.setattr(waterfall, "BUSY_BRANCH", busy)
            pages[busy] = [waterfall.commit_page(conn, "acme/webapp", "main", workflow=wf, offset=offset)
                           for wf in (None, "CI") for offset in (0, 50, 10_000)]
    for quiet, busy in zip(pages[10 ** 9], pages[1]):
        assert quiet[0].values.tolist() == busy[0].values.tolist() and quiet[1] == busy[1]
    assert len(pages[1][0][0]) > 0


# --- the jobs of expanded workflows (store.queries.waterfall_jobs) ------------------------------

def _job(gitid, run_gitid, name, conclusion="success", *, attempt=1, status="completed"):
    from domain import records as r

    return r.Job(repo="o/app", gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name="CI",
                 head_branch="main", head_sha=None, status=status,
                 conclusion=conclusion if status == "completed" else None, createtime=T0,
                 starttime=T0 + 1 if status != "queued" else None, endtime=T0 + 31 if status == "completed" else None,
                 runner_name="r1", runner_id=1, url=f"https://github.com/o/app/actions/runs/{run_gitid}/job/{gitid}")


def test_job_groups_of_expanded_workflows(new_store):
    from store.queries.waterfall_jobs import job_groups, worst

    records = [commit("c1", time=T0 - 120), commit("c2", time=T0 - 60),
               # c1: CI attempt 1 failed at "test (3.11, ubuntu)"; attempt 2 passed (that job F); lint skipped.
               run(1, sha="c1", conclusion="failure", created=T0 - 100),
               run(1, sha="c1", conclusion="success", created=T0 - 50, attempt=2),
               _job(10, 1, "test (3.11, ubuntu)", "failure"), _job(11, 1, "test (3.12, ubuntu)"),
               _job(12, 1, "test (3.11, ubuntu)", attempt=2), _job(13, 1, "test (3.12, ubuntu)", attempt=2),
               _job(14, 1, "lint", "skipped", attempt=2),
               # c2: CI failed at one matrix leg, another still running; Lint's jobs are never read.
               run(2, sha="c2", conclusion="failure", created=T0),
               _job(20, 2, "test (3.11, ubuntu)", "failure"), _job(21, 2, "test (3.12, ubuntu)", status="in_progress"),
               _job(22, 2, "Build"), run(3, sha="c2", workflow="Lint", created=T0), _job(30, 3, "eslint")]
    engine = store_with(new_store("jobs"), records)
    with engine.connect() as conn:
        grid = q.grid_records(conn, "o/app", "main")
        found = job_groups(conn, grid["cells"], ["CI"])
        assert job_groups(conn, grid["cells"], []) == {}
    ids = {c["sha"]: c["commitid"] for c in grid["commits"]}
    ci = found["CI"]
    assert list(found) == ["CI"] and ci["groups"] == ["Build", "lint", "test"]  # base names, case-insensitive
    c1_test = ci["cells"][(ids["c1"], "test")]
    assert c1_test["glyph"] == "F"  # the latest attempt's jobs; 3.11 failed in attempt 1
    assert [(m["name"], m["glyph"], m["earlier_failed"]) for m in c1_test["members"]] == [
        ("test (3.11, ubuntu)", "F", True), ("test (3.12, ubuntu)", "O", False)]
    assert ci["cells"][(ids["c1"], "lint")]["glyph"] == "S"
    assert (ids["c1"], "Build") not in ci["cells"]  # not run on c1
    c2_test = ci["cells"][(ids["c2"], "test")]
    assert c2_test["glyph"] == "X"  # the worst member: X before ?
    assert [m["glyph"] for m in c2_test["members"]] == ["X", "?"]
    assert c2_test["members"][0]["url"] == "https://github.com/o/app/actions/runs/2/job/20"
    assert c2_test["members"][0]["duration"] == 30
    assert worst(["O", "S", "C"]) == "C" and worst(["O", "F", "?"]) == "F" and worst([]) == ""


def test_job_groups_read_once_for_the_page(new_store):
    """One statement for every expanded cell of the page, however many workflows are expanded."""
    from sqlalchemy import event

    from store.queries.waterfall_jobs import job_groups

    records = [commit(f"c{i}", time=T0 + i) for i in range(30)]
    records += [run(100 * (k + 1) + i, sha=f"c{i}", workflow=wf, created=T0 + i + k)
                for i in range(30) for k, wf in enumerate(("CI", "Lint"))]
    records += [_job(1000 + i, 100 + i, "test") for i in range(30)]
    engine = store_with(new_store("many"), records)
    statements = []
    with engine.connect() as conn:
        grid = q.grid_records(conn, "o/app", "main")
        event.listen(conn, "before_cursor_execute", lambda *args: statements.append(args[2]))
        found = job_groups(conn, grid["cells"], ["CI", "Lint"])
    assert len(statements) == 1
    assert len(found["CI"]["cells"]) == 30 and found["Lint"]["cells"] == {}


def test_expand_in_the_url_names_known_workflows_only(new_store):
    """`expand=`: comma-joined or repeated; a workflow whose name holds a comma still matches; unknown
    names and other repositories' workflows are dropped; the header links toggle one name."""
    from dashapp.callbacks.waterfall import resolve_selection
    from dashapp.grid_jobs import expanded_names, toggle_href

    engine = store_with(new_store("expand"), [
        commit("c1"), run(1, sha="c1"), run(2, sha="c1", workflow="Build, test"),
        commit("d1", repo="o/lib"), run(3, sha="d1", repo="o/lib", workflow="Docs")])
    with engine.connect() as conn:
        sel = resolve_selection(conn, {"repo": "o/app", "expand": ["Build, test,CI", "Docs,nope"]})
        assert sel["expand"] == ["Build, test", "CI"]  # in the order of the repository's workflows
        assert resolve_selection(conn, {"repo": "o/app", "expand": "x" * 5000})["expand"] == []
        assert resolve_selection(conn, {"repo": "o/app"})["expand"] == []
    assert expanded_names(None, ["CI"]) == [] and expanded_names([7, None], ["CI"]) == []
    assert toggle_href("?repo=o%2Fapp&offset=50", [], "CI") == "/?repo=o%2Fapp&offset=50&expand=CI"
    assert toggle_href("?repo=o%2Fapp&expand=CI%2CLint", ["CI", "Lint"], "CI") == "/?repo=o%2Fapp&expand=Lint"
    assert toggle_href("?expand=CI", ["CI"], "CI") == "/"
