"""each run's jobs as one string, for the flake statistics

`rollup_run_jobs` (see `store/derived/run_jobs.py`), filled from the jobs already stored.

Revision ID: 0015
Revises: 0014
"""
import sqlalchemy as sa
from alembic import op

from store import derived

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rollup_run_jobs",
        sa.Column("run", sa.BigInteger(), primary_key=True),
        sa.Column("signature", sa.Text(), nullable=False),
        sqlite_with_rowid=False,
    )
    derived.rebuild(op.get_bind(), parts=("run_jobs",))


def downgrade() -> None:
    op.drop_table("rollup_run_jobs")
