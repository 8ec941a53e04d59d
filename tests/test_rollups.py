"""Derived state (`store.derived`): kept by the writer exactly as a rebuild computes it; read as the runs say."""
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from store import derived, metrics
from store.engine import make_engine, writer_options
from store.migrate import upgrade
from store.queries.cards import metric_cards
from store.queries.filters import Filters
from store.schema import commits, person_runs, rollup_days, rollup_hist, rollup_streaks, workflowruns
from store.writer import apply
from tests.builders import T0, commit, run

pytestmark = pytest.mark.both_stores

DAY = 86400


def _rounded(rows) -> list:
    return sorted(tuple(round(v, 6) if isinstance(v, float) else v for v in row) for row in rows)


def _snapshot(engine):
    """(rollup_days rows, every other registered table's rows, every registered column by run)."""
    with engine.connect() as conn:
        days = _rounded(conn.execute(select(rollup_days)).all())
        others = []
        for part in derived.REGISTRY:
            for table in part.tables:
                if table is not rollup_days:
                    others += [(table.name, *row) for row in _rounded(conn.execute(select(table)).all())]
        columns = [c for part in derived.REGISTRY for c in part.columns]
        causes = sorted(tuple(row) for row in conn.execute(select(workflowruns.c.gitid, *columns)).all())
    return days, others, causes


def _rebuilt(engine):
    with engine.connect().execution_options(**writer_options()) as conn:
        with conn.begin():
            derived.rebuild(conn)
    return _snapshot(engine)


def _history():
    """Runs over three days on two branches, re-runs, a commit whose runs straddle midnight; runs of
    commits others wrote; a commit whose time, when it arrives, reorders main's CI cells (c4: older
    than c1, so main's CI streak is c2 alone after c1's success; before it arrives, c4 and c2)."""
    records = [commit("c1"), commit("c2", author="bob", time=T0 + DAY - 100), commit("c3", author="carol",
                                                                                      time=T0 + 2 * DAY),
               commit("c4", author="dave", time=T0 - 120)]
    records += [
        run(1, sha="c1", conclusion="success", created=T0, queue=5, duration=100),
        run(2, sha="c1", workflow="Lint", conclusion="failure", created=T0 + 30, queue=15, duration=250),
        run(2, sha="c1", workflow="Lint", attempt=2, conclusion="success", created=T0 + 900, queue=3, duration=240),
        run(3, sha="c2", conclusion="timed_out", created=T0 + DAY - 50, queue=70, duration=3000),
        run(4, sha="c2", workflow="Lint", conclusion="success", created=T0 + DAY + 20, queue=1, duration=95.5),
        run(5, sha="c3", branch="feature", conclusion="cancelled", created=T0 + 2 * DAY, queue=0, duration=7),
        run(6, sha="c3", branch="feature", workflow="Lint", status="in_progress", created=T0 + 2 * DAY + 60),
        run(7, sha="c3", workflow="Docs", conclusion="skipped", created=T0 + 2 * DAY + 90, duration=0),
        run(8, sha="c4", conclusion="failure", created=T0 + 2 * DAY + 200, author="erin"),
        run(8, sha="c4", attempt=2, conclusion="failure", created=T0 + 2 * DAY + 900, author="bob"),
    ]
    return records


def _store(path, batches):
    engine = make_engine(str(path))
    upgrade(engine)
    for batch in batches:
        with engine.connect().execution_options(**writer_options()) as conn:
            with conn.begin():
                apply(conn, batch)
    return engine


def test_rollups_count_what_the_runs_hold(new_store):
    engine = _store(new_store("r"), [_history()])
    with engine.connect() as conn:
        rows = {(r.day - int(T0 // DAY), r.workflow): r for r in conn.execute(select(rollup_days)).all()}
        main_ci_day0 = rows[(0, 1)]
        assert (main_ci_day0.runs, main_ci_day0.success, main_ci_day0.build_n, main_ci_day0.build_sum) == (1, 1, 1, 100)
        lint_day0 = rows[(0, 2)]
        assert (lint_day0.runs, lint_day0.flaky, lint_day0.successful, lint_day0.failed) == (1, 1, 0, 0)
        # The timed-out run was created 50 s before midnight: it counts on its own day.
        day = int((T0 + DAY - 50) // DAY) - int(T0 // DAY)
        assert rows[(day, 1)].failed == 1
        tts = dict(conn.execute(select(rollup_hist.c.bucket, rollup_hist.c.n).where(
            rollup_hist.c.span == "month", rollup_hist.c.kind == "tts", rollup_hist.c.workflow == 0)).all())
    # Time to signal on main over first attempts only: c1 from T0 to run 2's first attempt's end (T0 + 295);
    # c2 from T0 + DAY - 50 to run 3's end (T0 + DAY + 3020); c3 (the skipped Docs run) 10 s.  c3 on the
    # feature branch has a run in progress: no signal yet.  c4's first attempt took 10 s + 100 s.
    assert sum(tts.values()) == 4
    assert set(tts) == {metrics.bucket(295.0), metrics.bucket(3070.0), metrics.bucket(10.0), metrics.bucket(110.0)}


def test_incremental_rollups_equal_a_rebuild_in_any_order(new_store):
    records = _history()
    for seed in range(4):
        shuffled = records[:]
        random.Random(seed).shuffle(shuffled)
        batches = [shuffled[i:i + 2] for i in range(0, len(shuffled), 2)] + [shuffled[:3]]  # with duplicates
        engine = _store(new_store(f"r{seed}"), batches)
        incremental = _snapshot(engine)
        assert incremental == _rebuilt(engine)
        assert incremental[0], "rollups were written"


def test_demo_rollups_equal_a_rebuild(writable_demo):
    engine = make_engine(writable_demo)
    before = _snapshot(engine)
    assert before == _rebuilt(engine)


@pytest.mark.parametrize("days", [None, 1, 7, 30])
def test_cards_from_rollups_agree_with_the_runs(demo_location, days):
    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(workflowruns.c.createtime).order_by(workflowruns.c.createtime.desc())).first()[0]
        for repo, branch, workflow in conn.execute(
                select(workflowruns.c.repo, workflowruns.c.archivedbranchname, workflowruns.c.archivedworkflowname)
                .distinct().limit(12)).all():
            for wf in (None, workflow):
                filters = Filters(repo=repo, branch=branch, workflow=wf,
                                  since=None if days is None else newest - days * DAY + 1234.5)
                exact = metric_cards(conn, filters, now=newest, exact_limit=10 ** 9)
                rolled = metric_cards(conn, filters, now=newest, exact_limit=0)
                for key, value in exact.items():
                    other = rolled[key]
                    if value is None or other is None:
                        assert value == other, key
                    else:  # counts and means exactly; percentiles within the buckets' 0.5 %
                        assert other == pytest.approx(value, rel=0.006, abs=1.0), (key, filters)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=60),
       st.sampled_from([0, 10, 50, 90, 99, 100]))
def test_percentile_counts_equals_percentile_of_the_expanded_values(values, q):
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    assert metrics.percentile_counts(counts.items(), q) == pytest.approx(metrics.percentile(values, q))


@given(st.floats(min_value=0, max_value=1e7, allow_nan=False))
def test_a_bucket_stands_for_its_durations_within_half_a_percent(seconds):
    value = metrics.bucket_value(metrics.bucket(seconds))
    if seconds < metrics.EXACT_BELOW:
        assert value == int(seconds)  # whole seconds: exact for GitHub's times
    else:
        assert value == pytest.approx(seconds, rel=0.0051)


def test_failing_job_and_step_are_kept_whichever_arrives_first(new_store):
    from tests.test_queries_triage import job

    failed_run = run(9, sha="c1", conclusion="failure")
    first = job(91, 9, "test", "failure", ended=80, steps=((1, "checkout", "success"), (2, "pytest", "failure")))
    earlier = job(92, 9, "lint", "failure", ended=40, steps=((1, "ruff", "failure"),))
    for i, order in enumerate(([failed_run, first, earlier], [first, earlier, failed_run], [earlier, failed_run, first])):
        engine = _store(new_store(f"c{i}"), [[commit("c1")]] + [[item] for item in order])
        with engine.connect() as conn:
            row = conn.execute(select(workflowruns.c.fail_job, workflowruns.c.fail_step,
                                      workflowruns.c.fail_step_number)).one()
        assert tuple(row) == ("lint", "ruff", 1), order  # the failed job that ended first
    # A re-run that passes clears it.
    engine = _store(new_store("rerun"), [[commit("c1"), failed_run, first, run(9, sha="c1", attempt=2)]])
    with engine.connect() as conn:
        assert conn.execute(select(workflowruns.c.fail_job)).scalar() is None


@pytest.mark.parametrize("days", [None, 1, 7, 30])
def test_analysis_totals_from_rollups_equal_the_runs(demo_location, days):
    from store.queries.triage import _pair_totals

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(workflowruns.c.createtime).order_by(workflowruns.c.createtime.desc())).first()[0]
        since = None if days is None else newest - days * DAY + 1234.5
        # 3 pairs: fewer than the pairs that failed, so only the most failed are summed (ties too).
        for repo, top in ((None, 50), ("acme/webapp", 50), (None, 3), ("acme/webapp", 3)):
            filters = Filters(repo=repo, since=since)
            rolled = _pair_totals(conn, filters, top)
            raw = _pair_totals(conn, filters, top, rollups=False)
            assert len(rolled) == len(raw) > 0
            assert [r[:-1] for r in rolled] == [r[:-1] for r in raw]
            assert [r[-1] for r in rolled] == pytest.approx([r[-1] for r in raw])  # last_run


@pytest.mark.parametrize("days", [None, 1, 30])
def test_flaky_counts_from_rollups_equal_the_runs(demo_location, days):
    from store.queries.triage import flaky_counts

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(workflowruns.c.createtime).order_by(workflowruns.c.createtime.desc())).first()[0]
        for repo in (None, "acme/api"):
            filters = Filters(repo=repo, since=None if days is None else newest - days * DAY + 1234.5)
            rolled, raw = flaky_counts(conn, filters), flaky_counts(conn, filters, rollups=False)
            key = lambda f: sorted(map(tuple, f.astype(str).values.tolist()))  # noqa: E731
            assert key(rolled) == key(raw)
            if days is None:
                assert len(raw) > 0, "the demo has flaky runs"


@pytest.mark.parametrize("days", [None, 7, 30])
def test_daily_performance_from_rollups_equals_the_runs(demo_location, days):
    from store.queries.waterfall import performance, performance_runs, performance_series

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(workflowruns.c.createtime).order_by(workflowruns.c.createtime.desc())).first()[0]
        filters = Filters(repo="acme/webapp", branch="main", since=None if days is None else newest - days * DAY + 99)
        rolled = performance(conn, filters, 86400)
        raw = performance_series(performance_runs(conn, filters), 86400)
    assert len(rolled) == len(raw) > 0
    assert rolled["bucket"].tolist() == raw["bucket"].tolist()
    assert rolled["workflow"].tolist() == raw["workflow"].tolist()
    assert rolled["failures"].astype(int).tolist() == raw["failures"].astype(int).tolist()
    for column in ("runtime_p50", "runtime_p90", "queue_p50", "queue_p90"):
        assert rolled[column].fillna(-1).tolist() == pytest.approx(raw[column].fillna(-1).tolist())


def test_a_window_with_no_runs_reads_empty(demo_location):
    from store.queries.triage import build_analysis, flaky_counts
    from store.queries.waterfall import performance

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(workflowruns.c.createtime).order_by(workflowruns.c.createtime.desc())).first()[0]
        future = Filters(repo="acme/webapp", branch="main", since=newest + 3 * DAY + 5)
        assert build_analysis(conn, future).empty
        assert flaky_counts(conn, future).empty
        assert performance(conn, future, 86400).empty
        assert metric_cards(conn, future, now=newest, exact_limit=0)["success_rate"] is None


@pytest.mark.parametrize("days", [None, 1, 7])
def test_person_cards_equal_the_general_path(demo_location, days, monkeypatch):
    from store.queries import cards

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        newest = conn.execute(select(workflowruns.c.createtime).order_by(workflowruns.c.createtime.desc())).first()[0]
        authors = conn.execute(select(workflowruns.c.author).distinct().limit(4)).scalars().all()
        for author in authors:
            filters = Filters(author=author, since=None if days is None else newest - days * DAY + 77)
            person = cards.metric_cards(conn, filters, now=newest)
            general = cards.metrics.cards(
                **cards._run_counts(conn, filters)[0], build_times=cards._build_times(conn, filters),
                queue_times=cards._queue_times(conn, filters), tts=cards.time_to_signal(conn, filters),
                **dict(zip(("active", "stale"), cards._active_and_stale(conn, filters, newest - 24 * 3600))))
            assert person.keys() == general.keys()
            for key, value in general.items():
                assert person[key] == pytest.approx(value) if value is not None else person[key] is None, key
            assert person["runs"] > 0 or days is not None


def test_person_rows_hold_each_run_of_its_actor_and_of_its_commit_author(demo_location):
    w = workflowruns.c
    engine = make_engine(demo_location)
    with engine.connect() as conn:
        kept = set(conn.execute(select(person_runs.c.person, person_runs.c.run)).all())
        actors = set(conn.execute(select(w.author, w.id).where(w.author.is_not(None))).all())
        writers = set(conn.execute(select(commits.c.author, w.id).join(commits, commits.c.id == w.commitid)
                                   .where(commits.c.author.is_not(None))).all())
    assert kept == actors | writers
    assert len(actors | writers) > len(actors), "the demo has runs of commits someone else wrote"


def test_unfixed_runs_are_the_failed_runs_no_newer_decisive_run_settled(demo_location):
    from sqlalchemy.orm import aliased

    from domain.state import DECISIVE, FAILED

    w = workflowruns.c
    newer = aliased(workflowruns)
    settled_later = select(newer.c.id).where(
        newer.c.workflow == w.workflow, newer.c.branch == w.branch, newer.c.status == "completed",
        newer.c.conclusion.in_(DECISIVE),
        (newer.c.createtime > w.createtime) | ((newer.c.createtime == w.createtime) & (newer.c.gitid > w.gitid))).exists()
    engine = make_engine(demo_location)
    with engine.connect() as conn:
        expected = set(conn.execute(select(w.id).where(w.status == "completed", w.conclusion.in_(FAILED),
                                                       ~settled_later)).scalars())
        kept = set(conn.execute(select(rollup_streaks.c.unfixed_run)
                                .where(rollup_streaks.c.unfixed_run.is_not(None))).scalars())
    assert kept == expected and expected


def test_kept_streaks_equal_a_walk_of_every_pair(demo_location):
    from store.derived import streaks

    engine = make_engine(demo_location)
    with engine.connect() as conn:
        pairs = conn.execute(select(workflowruns.c.workflow, workflowruns.c.branch).distinct()).all()
        walked = {(wf, br): streaks.walk(conn, wf, br, limits=(None,)) for wf, br in pairs}
        kept = {(row.workflow, row.branch): {c: getattr(row, c) for c in streaks.COLUMNS}
                for row in conn.execute(select(rollup_streaks)).all()}
    assert kept == {pair: row for pair, row in walked.items() if row}
    assert any(row["streak"] for row in kept.values())


def _busy_commit():
    """One commit with many runs of two workflows by three people (the load generator's shape, and
    more): fractional and repeated durations, runs left queued then completed, re-runs (flaky, and by
    someone else), a run created the next day."""
    records = [commit("c1", author="dave")]
    for i in range(40):
        wf = "CI" if i % 3 else "Lint"
        created = T0 + 7 * i + (DAY if i == 39 else 0)
        kw = dict(sha="c1", workflow=wf, author=("alice", "bob", "erin")[i % 3], created=created, queue=i % 4 + 0.25,
                  duration=(33.3, 60.0, 60.0, 101.7, 7.1)[i % 5])
        records.append(run(100 + i, status="queued", **kw))
        records.append(run(100 + i, conclusion=("success", "failure", "cancelled", "success")[i % 4], **kw))
        if i % 4 == 1:
            records.append(run(100 + i, attempt=2, **{**kw, "created": created + 500, "author": "bob"}))
    return records


def test_a_busy_commit_kept_in_batches_equals_a_rebuild_exactly(new_store):
    """Batches that leave runs open (the signals settled from the written runs alone) and that close
    them (read from the whole commit), in any order: the rows equal a rebuild's, floats unrounded."""
    records = _busy_commit()
    for seed in range(3):
        shuffled = records[1:]
        random.Random(seed).shuffle(shuffled)
        batches = [records[:1]] + [shuffled[i:i + 7] for i in range(0, len(shuffled), 7)]
        engine = _store(new_store(f"b{seed}"), batches)

        def exact():
            with engine.connect() as conn:
                return sorted(((table.name, *row) for part in derived.REGISTRY for table in part.tables
                               for row in conn.execute(select(table)).all()), key=repr)
        kept = exact()
        _rebuilt(engine)
        assert kept == exact()
        with engine.connect() as conn:
            assert conn.execute(select(rollup_hist.c.n).where(rollup_hist.c.kind == "tts")).first(), "signals kept"
