"""The derived-state registry (`store.derived`): what it names, and how marks are batched and flushed."""
import dataclasses
from collections import Counter

import pytest
from sqlalchemy import func, select

from store import derived
from store.engine import make_engine, writer_options
from store.migrate import upgrade
from store.schema import metadata, rollup_days, workflowruns
from store.writer import apply
from tests.builders import T0, commit, run

pytestmark = pytest.mark.both_stores

# job_logs and failure_lines are what GitHub's logs of failed jobs said (failures/, ingest/joblogs.py);
# alert_breaks and alert_messages are decisions made once and kept (alerts/), not recomputable state.
BASE_TABLES = {"repos", "branches", "commits", "workflows", "workflowruns", "runattempts", "jobs", "steps",
               "deliveries", "alembic_version", "job_logs", "failure_lines", "run_pulls"}
DECISION_TABLES = {"alert_breaks", "alert_messages"}
# Who may do what and what they did (store/accounts.py), and what retention archived: kept, not derived.
ACCOUNT_TABLES = {"web_sessions", "access_tokens", "audit_log", "server_secrets", "admin_jobs", "archive_parts",
                  "saved_views", "pins", "rate_limits"}


def test_the_registry_names_every_derived_table_once():
    named = [table.name for part in derived.REGISTRY for table in part.tables]
    assert len(named) == len(set(named))
    assert set(named) == set(metadata.tables) - BASE_TABLES - DECISION_TABLES - ACCOUNT_TABLES
    assert all(name.startswith(("rollup_", "person_", "export_")) for name in named)


def test_derived_columns_belong_to_base_tables_and_are_named_once():
    columns = [column for part in derived.REGISTRY for column in part.columns]
    assert len(columns) == len(set(columns))
    assert {column.table.name for column in columns} <= BASE_TABLES
    assert {c.name for c in columns} == {c.name for c in workflowruns.c if c.name.startswith("fail_")}


def test_part_names_are_unique_and_every_kind_is_read_by_a_part():
    names = [part.name for part in derived.REGISTRY]
    assert len(names) == len(set(names))
    read = {kind for part in derived.REGISTRY for kind in part.kinds}
    assert derived.KINDS == read | {"commit_row"}  # a commit row is expanded into kinds the parts read


def _engine(new_store):
    engine = make_engine(new_store("d"))
    upgrade(engine)
    return engine


def _connect(engine):
    return engine.connect().execution_options(**writer_options())


def _day_rows(conn) -> int:
    return conn.execute(select(func.count()).select_from(rollup_days)).scalar()


def test_apply_flushes_at_its_end_outside_a_batch(new_store):
    with _connect(_engine(new_store)) as conn, conn.begin():
        apply(conn, [commit("c1"), run(1)])
        assert _day_rows(conn) == 1


@pytest.fixture
def refreshed(monkeypatch) -> Counter:
    """(part name, key) -> how many times the part refreshed the key."""
    counts = Counter()

    def counting(part):
        def refresh(conn, keys):
            counts.update((part.name, key) for key in keys)
            part.refresh(conn, keys)
        return dataclasses.replace(part, refresh=refresh)

    monkeypatch.setattr(derived, "REGISTRY", tuple(counting(part) for part in derived.REGISTRY))
    return counts


def test_a_batch_defers_the_refresh_to_one_flush(new_store, refreshed):
    with _connect(_engine(new_store)) as conn, conn.begin():
        with derived.batch(conn):
            assert derived.in_batch(conn)
            apply(conn, [commit("c1"), run(1, status="in_progress")])
            apply(conn, [run(1), run(2, workflow="Lint", conclusion="failure", created=T0 + 5)])
            with derived.batch(conn):  # nested: still deferred after the inner block
                apply(conn, [run(2, workflow="Lint", attempt=2, created=T0 + 50)])
            assert derived.in_batch(conn)
            assert _day_rows(conn) == 0, "nothing refreshed inside the batch"
            derived.flush(conn)
        assert not derived.in_batch(conn)
        assert _day_rows(conn) == 2
    assert refreshed and max(refreshed.values()) == 1, "every touched key refreshed once"
    assert {name for name, _key in refreshed} == {"failure_causes", "rollups", "streaks", "people", "runner_days"}


def test_discard_forgets_the_marks_of_a_rolled_back_transaction(new_store, refreshed):
    engine = _engine(new_store)
    with _connect(engine) as conn:
        with conn.begin() as transaction:
            with derived.batch(conn):
                apply(conn, [commit("c1"), run(1)])
            transaction.rollback()
        derived.discard(conn)
        with conn.begin():
            derived.flush(conn)
            assert not refreshed, "nothing left to refresh"
            assert conn.execute(select(func.count()).select_from(workflowruns)).scalar() == 0


def test_unknown_kinds_and_parts_are_refused(new_store):
    with _connect(_engine(new_store)) as conn, conn.begin():
        with pytest.raises(ValueError):
            derived.mark(conn, {("days", 1, 1, 1)})
        with pytest.raises(ValueError):
            derived.rebuild(conn, parts=("rollup",))


def test_keys_with_unknown_ids_change_nothing(new_store):
    """A key naming rows that are gone (a rolled-back write) is harmless: a refresh reads the base tables."""
    with _connect(_engine(new_store)) as conn, conn.begin():
        derived.mark(conn, {("day", 7, 7, 19000), ("commit", 7, 7), ("commit_row", "o/none", "c9"), ("run", 42),
                            ("pair", 7, 7), ("commit_author", 7), ("day", None, 1, 1)})
        derived.flush(conn)
        assert _day_rows(conn) == 0
