"""rollups kept by ingest, and each failed run's failing job and step

`rollup_days` and `rollup_hist` hold per-day (and per-month) counts and
duration histograms so that long windows read thousands of rollup rows, not
millions of runs; `workflowruns.fail_*` hold the failing job and step of a
failed run so Triage groups failures without a lookup per run.  Existing
stores are filled in place (`store.derived.rebuild`).

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table copy): quick on a store of millions of runs.
    op.add_column("workflowruns", sa.Column("fail_job", sa.Text(), nullable=True))
    op.add_column("workflowruns", sa.Column("fail_step", sa.Text(), nullable=True))
    op.add_column("workflowruns", sa.Column("fail_step_number", sa.Integer(), nullable=True))
    op.create_index("idx_workflowruns_branch_createtime", "workflowruns", ["branch", "createtime"], unique=False)
    failed = sa.text("status = 'completed' AND conclusion IN ('failure', 'timed_out', 'startup_failure')")
    op.create_index("idx_workflowruns_failed", "workflowruns",
                    ["conclusion", "status", "repo", "archivedworkflowname", "fail_job", "fail_step", "createtime",
                     "gitid", "commitid", "author", "fail_step_number", "archivedbranchname", "archivedcommithash",
                     "url"],
                    unique=False, sqlite_where=failed, postgresql_where=failed)
    active = sa.text("status IN ('requested', 'pending', 'queued', 'waiting', 'in_progress')")
    op.create_index("idx_workflowruns_active", "workflowruns", ["repo", "updatetime"], unique=False,
                    sqlite_where=active, postgresql_where=active)
    op.create_table(
        "rollup_days",
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.Integer(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("decisive", sa.Integer(), nullable=False),
        sa.Column("success", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("cancelled", sa.Integer(), nullable=False),
        sa.Column("flaky", sa.Integer(), nullable=False),
        sa.Column("successful", sa.Integer(), nullable=False),
        sa.Column("build_n", sa.Integer(), nullable=False),
        sa.Column("build_sum", sa.Float(), nullable=False),
        sa.Column("last_run", sa.Float(), nullable=True),
        sa.Column("build_p50", sa.Float(), nullable=True),
        sa.Column("build_p90", sa.Float(), nullable=True),
        sa.Column("queue_p50", sa.Float(), nullable=True),
        sa.Column("queue_p90", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("branch", "workflow", "day"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_rollup_days_repo_day", "rollup_days", ["repo", "day"], unique=False)
    op.create_index("idx_rollup_days_workflow_day", "rollup_days", ["workflow", "day"], unique=False)
    op.create_index("idx_rollup_days_day", "rollup_days", ["day"], unique=False)
    def counts():
        return [sa.Column(name, sa.Integer(), nullable=False)
                for name in ("runs", "decisive", "success", "failed", "cancelled", "flaky", "successful")]

    op.create_table(
        "rollup_pairs",
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.Integer(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        *counts(),
        sa.Column("last_run", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("branch", "workflow"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_rollup_pairs_failed_runs", "rollup_pairs", ["failed", "runs"], unique=False)
    op.create_table(
        "rollup_workflow_days",
        sa.Column("workflow", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("repo", sa.Text(), nullable=False),
        *counts(),
        sa.PrimaryKeyConstraint("workflow", "day"),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_rollup_workflow_days_day", "rollup_workflow_days", ["day"], unique=False)
    op.create_table(
        "rollup_signals",
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("commitid", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.Integer(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("tts", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("branch", "commitid", "workflow"),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "rollup_hist",
        sa.Column("span", sa.Text(), nullable=False),
        sa.Column("branch", sa.Integer(), nullable=False),
        sa.Column("workflow", sa.Integer(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("span", "branch", "workflow", "kind", "period", "bucket"),
        sqlite_with_rowid=False,
    )
    from store import derived  # the same code the writer keeps them with

    # What this revision created; later tables and columns come in 0005, 0006, 0007.
    derived.rebuild(op.get_bind(), parts=("failure_causes", "rollups"))


def downgrade() -> None:
    op.drop_table("rollup_hist")
    op.drop_table("rollup_signals")
    op.drop_table("rollup_workflow_days")
    op.drop_table("rollup_pairs")
    op.drop_index("idx_rollup_days_day", table_name="rollup_days")
    op.drop_index("idx_rollup_days_workflow_day", table_name="rollup_days")
    op.drop_index("idx_rollup_days_repo_day", table_name="rollup_days")
    op.drop_table("rollup_days")
    op.drop_index("idx_workflowruns_active", table_name="workflowruns")
    op.drop_index("idx_workflowruns_failed", table_name="workflowruns")
    op.drop_index("idx_workflowruns_branch_createtime", table_name="workflowruns")
    with op.batch_alter_table("workflowruns", schema=None) as batch_op:
        batch_op.drop_column("fail_step_number")
        batch_op.drop_column("fail_step")
        batch_op.drop_column("fail_job")
