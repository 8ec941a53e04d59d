"""Runner queries (`store.queries.runners`) on a small hand-made store: every number computed by hand here."""
import pytest

from domain import billing
from domain import records as r
from store.queries import runners as q
from store.sqlfunctions import minutes_up
from store.queries.filters import Filters
from store.schema import rollup_runner_days
from tests.builders import T0, commit, run, store_with

pytestmark = pytest.mark.both_stores

NOW = T0 + 7200  # two hours after the runs were created
LINUX_POOL = ["self-hosted", "linux", "x64"]


def job(gitid, run_gitid, labels, *, queue=None, duration=None, group=None, status="completed", repo="o/app", created=T0, attempt=1, name="test"):
    """A job created at `created`, started `queue` s later (None: never started), ended `duration` s after."""
    started = None if queue is None else created + queue
    ended = None if started is None or duration is None else started + duration
    return r.Job(repo=repo, gitid=gitid, run_gitid=run_gitid, run_attempt=attempt, name=name, workflow_name="CI",
                 head_branch="main", head_sha="c1", status=status,
                 conclusion="success" if status == "completed" and started is not None else None, createtime=created,
                 starttime=started, endtime=ended, runner_name=None if started is None else "r1",
                 runner_id=None if started is None else 1, labels=tuple(labels), runner_group=group,
                 url=f"https://github.com/{repo}/actions/runs/{run_gitid}/job/{gitid}")


def history() -> list:
    """The small store's records (the runners page's browser test shows the same numbers)."""
    records = [r.Repo("o/app", default_branch="main"), r.Repo("o/lib", default_branch="main"), commit("c1"),
               commit("d1", repo="o/lib"),
               run(1, created=T0), run(2, created=T0 + 60, workflow="Lint"),
               run(3, created=T0 + 120, status="in_progress", updated=NOW - 60),  # active: its queued job waits
               run(4, created=T0 - 5 * 86400, status="queued", updated=T0 - 5 * 86400),  # stale
               run(5, repo="o/lib", sha="d1", created=T0)]
    records += [
        # ubuntu-latest: queues 10, 20, 30, 40, 100 (and one job that never started)
        job(11, 1, ["ubuntu-latest"], queue=10, duration=61, group="GitHub Actions"),
        job(12, 1, ["ubuntu-latest"], queue=20, duration=59, group="GitHub Actions"),
        job(13, 1, ["ubuntu-latest"], queue=30, duration=120, group="GitHub Actions"),
        job(14, 2, ["ubuntu-latest"], queue=40, duration=0.5, group="GitHub Actions"),
        job(15, 2, ["ubuntu-latest"], queue=100, duration=3600),  # runner group not recorded
        job(16, 3, ["ubuntu-latest"], status="queued", created=NOW - 300),  # waiting now, 300 s
        # one label set written in two orders: queues 5 and 15
        job(21, 1, LINUX_POOL, queue=5, duration=300, group="linux-pool"),
        job(22, 2, ["x64", "linux", "self-hosted"], queue=15, duration=301, group="linux-pool"),
        job(23, 3, LINUX_POOL, status="queued", created=NOW - 900),  # waiting now, 900 s
        job(24, 3, LINUX_POOL, status="queued", created=NOW - 100),
        job(41, 4, LINUX_POOL, status="queued", created=T0 - 5 * 86400),  # its run is stale
        job(31, 1, ["windows-latest"], queue=60, duration=90, group="GitHub Actions"),
        job(51, 5, ["macos-14"], queue=7, duration=60.0001, group="GitHub Actions", repo="o/lib"),
    ]
    return records


@pytest.fixture(scope="module")
def engine(module_stores):
    engine = store_with(module_stores.new("runners"), history())
    yield engine
    engine.dispose()


def _by(rows, key):
    return {row[key]: row for row in rows}


def test_rq001_queue_time_per_label_set_equals_the_hand_computation(engine):
    with engine.connect() as conn:
        found = q.queue_times(conn, Filters(repo="o/app"))
    labels = _by(found["labels"], "label_set")
    assert set(labels) == {"ubuntu-latest", "linux, self-hosted, x64", "windows-latest"}
    # 10, 20, 30, 40, 100: p50 = the 3rd; p90 at rank 0.9 × 4 = 3.6: 40 + 0.6 × 60; p99 at 3.96: 40 + 0.96 × 60
    assert labels["ubuntu-latest"] == {"label_set": "ubuntu-latest", "jobs": 6, "started": 5, "p50": 30.0,
                                       "p90": pytest.approx(76.0), "p99": pytest.approx(97.6)}
    # 5, 15: p50 = 10, p90 = 5 + 0.9 × 10, p99 = 5 + 0.99 × 10 (the 3 queued jobs, the stale run's too: counted,
    # not sampled)
    assert labels["linux, self-hosted, x64"] == {"label_set": "linux, self-hosted, x64", "jobs": 5, "started": 2,
                                                 "p50": 10.0, "p90": pytest.approx(14.0), "p99": pytest.approx(14.9)}
    assert labels["windows-latest"] == {"label_set": "windows-latest", "jobs": 1, "started": 1, "p50": 60.0,
                                        "p90": 60.0, "p99": 60.0}
    assert [row["label_set"] for row in found["labels"]] == ["ubuntu-latest", "linux, self-hosted, x64",
                                                             "windows-latest"]  # most jobs first


def test_rq002_queue_time_per_runner_group(engine):
    with engine.connect() as conn:
        found = q.queue_times(conn, Filters(repo="o/app"))
    groups = _by(found["groups"], "runner_group")
    # GitHub Actions: 10, 20, 30, 40 (ubuntu) and 60 (windows): p50 30, p90 at 3.6: 40 + 0.6 × 20
    assert groups["GitHub Actions"] == {"runner_group": "GitHub Actions", "jobs": 5, "started": 5, "p50": 30.0,
                                        "p90": pytest.approx(52.0), "p99": pytest.approx(59.2)}
    assert groups["linux-pool"]["started"] == 2 and groups["linux-pool"]["p50"] == 10.0
    # Not recorded: job 15 (queue 100) and the four queued jobs without a runner.
    assert groups[None] == {"runner_group": None, "jobs": 5, "started": 1, "p50": 100.0, "p90": 100.0, "p99": 100.0}


def test_rq003_the_filters_select_the_jobs(engine):
    with engine.connect() as conn:
        lint = q.queue_times(conn, Filters(repo="o/app", workflow="Lint"))
        later = q.queue_times(conn, Filters(repo="o/app", since=T0 + 30))
        lib = q.queue_times(conn, Filters(repo="o/lib"))
    # Run 2 (Lint): jobs 14 (40 s), 15 (100 s), 22 (15 s)
    assert {row["label_set"]: (row["jobs"], row["p50"]) for row in lint["labels"]} == {
        "ubuntu-latest": (2, 70.0), "linux, self-hosted, x64": (1, 15.0)}
    # Runs created from T0 + 30: runs 2 and 3
    assert _by(later["labels"], "label_set")["ubuntu-latest"]["jobs"] == 3
    assert [(row["label_set"], row["p90"]) for row in lib["labels"]] == [("macos-14", 7.0)]


def test_rq004_the_series_is_the_p90_per_label_set_and_bucket(engine):
    with engine.connect() as conn:
        daily = q.queue_times(conn, Filters(repo="o/app"))["series"]
        hourly = q.queue_times(conn, Filters(repo="o/app"), bucket=3600)["series"]
    day = int(T0 // 86400) * 86400
    assert [(row["label_set"], row["bucket"], row["started"], round(row["p90"], 9)) for row in daily] == [
        ("linux, self-hosted, x64", day, 2, 14.0), ("ubuntu-latest", day, 5, 76.0), ("windows-latest", day, 1, 60.0)]
    assert {row["bucket"] for row in hourly} == {int(T0 // 3600) * 3600}  # every started job was created at T0


def test_rq005_jobs_waiting_now_per_label_set_with_the_oldest_wait(engine):
    with engine.connect() as conn:
        rows = q.waiting_now(conn, Filters(repo="o/app", since=NOW), stale_hours=24, now=NOW)  # window ignored
        lib = q.waiting_now(conn, Filters(repo="o/lib"), stale_hours=24, now=NOW)
    assert rows == [
        {"label_set": "linux, self-hosted, x64", "waiting": 2, "oldest": NOW - 900, "stale": 1, "oldest_wait": 900.0},
        {"label_set": "ubuntu-latest", "waiting": 1, "oldest": NOW - 300, "stale": 0, "oldest_wait": 300.0},
    ]
    assert lib == []


def test_rq006_busiest_hours_count_started_jobs_per_utc_weekday_and_hour(engine):
    with engine.connect() as conn:
        grid = q.busiest_hours(conn, Filters(repo="o/app"))
    # T0 is Tuesday 2023-11-14 22:13:20 UTC; every started job started within 100 s of it: 8 jobs at Tue 22h
    assert grid[1][22] == 8 and sum(map(sum, grid)) == 8


def test_rq007_billable_minutes_per_repository_workflow_and_os(engine):
    with engine.connect() as conn:
        rows = q.billing_rows(q.minutes_by_labels(conn, Filters()), billing.DEFAULTS)
    got = {(row["repo"], row["workflow"], row["os"], row["self_hosted"]): (row["jobs"], row["minutes"], row["billable"])
           for row in rows}
    assert got == {
        ("o/app", "CI", "Linux", False): (3, 2 + 1 + 2, 5.0),  # 61 s, 59 s, 120 s
        ("o/app", "Lint", "Linux", False): (2, 1 + 60, 61.0),  # 0.5 s, 3600 s
        ("o/app", "CI", "Linux", True): (1, 5, 0.0),  # self-hosted 300 s: not billed
        ("o/app", "Lint", "Linux", True): (1, 6, 0.0),  # 301 s
        ("o/app", "CI", "Windows", False): (1, 2, 4.0),  # 90 s × 2
        ("o/lib", "CI", "macOS", False): (1, 2, 20.0),  # 60.0001 s: 2 minutes × 10
    }
    totals = q.billing_totals(rows)
    assert totals["billable"] == 5 + 61 + 4 + 20 == 90
    assert totals["self_hosted"] == 11 and totals["self_hosted_jobs"] == 2
    assert totals["by_os"]["Linux"] == {"minutes": 66, "billable": 66.0, "jobs": 5}


@pytest.mark.parametrize("seconds", [0, 0.5, 1, 59.999, 60, 60.0001, 61, 119.5, 3600, 86399.9])
def test_rq008_sql_rounding_equals_the_python_rounding(engine, seconds):
    from sqlalchemy import literal, select

    with engine.connect() as conn:
        assert conn.execute(select(minutes_up(literal(float(seconds))))).scalar_one() == billing.minutes(seconds)


@pytest.mark.parametrize("since", [None, T0 - 6 * 86400, T0 - 3600, T0 + 30])
def test_rq009_the_rollup_of_whole_days_equals_reading_every_job(engine, since):
    """`rollup_runner_days` serves the whole days (and the partial first day is read from the jobs); a branch
    filter reads every job: on this store (every run on main) both give the same numbers."""
    rolled, raw = Filters(repo="o/app", since=since), Filters(repo="o/app", branch="main", since=since)
    with engine.connect() as conn:
        day = rollup_runner_days.c.day  # which path each takes:
        assert q._split(conn, rolled, day)[1] != rolled and q._split(conn, raw, day) == ([], raw)
        assert q.queue_times(conn, rolled) == q.queue_times(conn, raw)
        assert q.busiest_hours(conn, rolled) == q.busiest_hours(conn, raw)
        key = lambda row: (row["workflow"], row["labels"])  # noqa: E731
        assert sorted(q.minutes_by_labels(conn, rolled), key=key) == sorted(q.minutes_by_labels(conn, raw), key=key)
