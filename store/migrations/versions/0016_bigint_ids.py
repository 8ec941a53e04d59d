"""64-bit ids on PostgreSQL

Surrogate ids, the columns that refer to them and those holding GitHub's ids become BIGINT, with
their sequences: GitHub's run ids passed 2^31 (a 32-bit `rollup_streaks.newest_run` failed the whole
batch of a failed run's delivery), and every upsert's conflict takes a sequence value.  SQLite's
integers are 64-bit whatever the declared type: nothing to do there.

Revision ID: 0016
Revises: 0015
"""
from alembic import op
from sqlalchemy import inspect, text

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COLUMNS = {
    "repos": ("id",),
    "branches": ("id",),
    "commits": ("id",),
    "workflows": ("id",),
    "workflowruns": ("id", "branch", "commitid", "workflow"),
    "runattempts": ("id", "run"),
    "jobs": ("id",),
    "steps": ("id", "job"),
    "deliveries": ("id",),
    "rollup_days": ("branch", "workflow"),
    "rollup_pairs": ("branch", "workflow"),
    "rollup_workflow_days": ("workflow",),
    "rollup_runner_days": ("workflow",),
    "rollup_signals": ("branch", "commitid", "workflow"),
    "rollup_hist": ("branch", "workflow"),
    "rollup_streaks": ("branch", "workflow", "first_bad", "newest_run", "unfixed_run"),
    "person_runs": ("run",),
    "person_signals": ("branch", "commitid"),
    "export_lines": ("run",),
    "alert_breaks": ("id", "workflow", "branch", "first_bad", "last_bad", "last_green", "fixed_by"),
    "alert_messages": ("id", "break_id"),
    "inbox": ("id",),  # store/inbox.py's table, in the store itself on PostgreSQL (when created yet)
}


def _retype(sql_type: str) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    tables = set(inspect(bind).get_table_names())
    for table, columns in COLUMNS.items():
        if table not in tables:
            continue
        op.execute(f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {c} TYPE {sql_type}" for c in columns))
        for column in columns:
            sequence = bind.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()
            if sequence:
                op.execute(f"ALTER SEQUENCE {sequence} AS {sql_type}")


def upgrade() -> None:
    _retype("BIGINT")


def downgrade() -> None:
    _retype("INTEGER")
