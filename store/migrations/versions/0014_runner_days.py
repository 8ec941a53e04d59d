"""the Runners page's numbers per workflow, day, runner labels and group

`rollup_runner_days` (see `store/derived/runner_days.py`), filled from the
jobs already stored.

Revision ID: 0014
Revises: 0013
"""
import sqlalchemy as sa
from alembic import op

from store import derived

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_runner_days",
        sa.Column("workflow", sa.Integer(), primary_key=True),
        sa.Column("day", sa.Integer(), primary_key=True),
        sa.Column("labels", sa.Text(), primary_key=True),
        sa.Column("runner_group", sa.Text(), primary_key=True),
        sa.Column("repo", sa.Text(), nullable=False),
        sa.Column("jobs", sa.Integer(), nullable=False),
        sa.Column("finished", sa.Integer(), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("queue", sa.Text(), nullable=False),
        sa.Column("hours", sa.Text(), nullable=False),
        sqlite_with_rowid=False,
    )
    op.create_index("idx_rollup_runner_days_day", "rollup_runner_days", ["day", "repo"])
    derived.rebuild(op.get_bind(), parts=("runner_days",))


def downgrade() -> None:
    op.drop_table("rollup_runner_days")
