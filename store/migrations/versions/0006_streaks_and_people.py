"""each pair's current streak and unfixed run; each person's runs and times to signal

`rollup_streaks` holds the current failure streak and unfixed failure of every
(workflow, branch) pair that has one, so Triage and the Developer view look
them up instead of walking each pair's runs; `person_runs` and
`person_signals` hold each person's runs (as actor or commit author) and times
to signal, clustered by person and time, for the Developer view.  The day
index of `rollup_days` now covers the counts, so windows over every branch
read an index range.  Existing stores are filled in place.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # IF EXISTS: stores made by an early draft of 0004 never had it.
    op.execute(sa.text("DROP INDEX IF EXISTS idx_rollup_days_day"))
    op.create_index("idx_rollup_days_day_counts", "rollup_days",
                    ["day", "repo", "runs", "decisive", "success", "failed", "cancelled", "flaky", "successful",
                     "build_n", "build_sum", "last_run"], unique=False)
    op.create_table(
        "rollup_streaks",
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.Integer(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("streak", sa.Integer(), nullable=False),
        sa.Column("first_bad", sa.Integer(), nullable=True),
        sa.Column("red_since", sa.Float(), nullable=True),
        sa.Column("newest_run", sa.Integer(), nullable=True),
        sa.Column("after", sa.Text(), nullable=True),
        sa.Column("unfixed_run", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("branch", "workflow"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_rollup_streaks_unfixed", "rollup_streaks", ["unfixed_run"], unique=False)
    op.create_table(
        "person_runs",
        sa.Column("person", sa.Text(), nullable=False),
        sa.Column("createtime", sa.Float(), nullable=False),
        sa.Column("run", sa.Integer(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("conclusion", sa.Text(), nullable=True),
        sa.Column("runtime", sa.Float(), nullable=True),
        sa.Column("updatetime", sa.Float(), nullable=True),
        sa.Column("queues", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("person", "createtime", "run"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_person_runs_run", "person_runs", ["run"], unique=False)
    op.create_table(
        "person_signals",
        sa.Column("person", sa.Text(), nullable=False),
        sa.Column("first", sa.Float(), nullable=False),
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("commitid", sa.Integer(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("tts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("person", "first", "branch", "commitid"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_person_signals_commit", "person_signals", ["commitid", "branch"], unique=False)

    from store import derived  # the same code the writer keeps them with

    derived.rebuild(op.get_bind(), parts=("streaks", "people"))


def downgrade() -> None:
    op.drop_index("idx_rollup_days_day_counts", table_name="rollup_days")
    op.create_index("idx_rollup_days_day", "rollup_days", ["day"], unique=False)
    op.drop_table("person_signals")
    op.drop_table("person_runs")
    op.drop_table("rollup_streaks")
