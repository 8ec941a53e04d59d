"""the pull requests of each run, and each job's runner group

`run_pulls` keeps the numbers of the pull requests a run ran for
(`workflow_run.pull_requests`, the REST run's too): the pull-request page reads
them.  `jobs.runner_group` keeps GitHub's `runner_group_name`: the Runners
page counts by it.  Rows stored before stay without either until their runs
and jobs are reported again.

Revision ID: 0013
Revises: 0012
"""
import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_pulls",
        sa.Column("run", sa.BigInteger(), primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("repo", sa.Text(), nullable=False),
    )
    op.create_index("idx_run_pulls_repo_number", "run_pulls", ["repo", "number"])
    op.add_column("jobs", sa.Column("runner_group", sa.Text()))  # ALTER TABLE ADD COLUMN: no copy of the table


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("runner_group")
    op.drop_table("run_pulls")
